"""A whole generator family in one file: the example of docs/extending.md.

Per class it learns the class's mean image; it samples that mean plus Gaussian pixel noise.
It is registered as ``tiny-means`` when the tests start (``conftest.py`` imports it), so the
generator contract suites, the privacy suite and the estimator checks run on it untouched.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from synthaug.generators import TorchGenerator, TrainingContext, register_generator
from synthaug.params import Default, Param, real_range


class _ClassMeans(nn.Module):
    """One learned image per class, as logits (a sigmoid keeps it in [0, 1])."""

    def __init__(self, n_classes: int, n_features: int) -> None:
        super().__init__()
        self.logits = nn.Embedding(n_classes, n_features)
        nn.init.zeros_(self.logits.weight)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(y))


@register_generator("tiny-means")
class ClassMeans(TorchGenerator):
    """Each class's mean image plus Gaussian pixel noise: the smallest generator family."""

    # What the family adds: a default, a rule the docs and errors read, a one-line doc.
    noise = Param(
        0.05,
        real_range(0),
        "Standard deviation of the pixel noise added to a class's mean when sampling.",
    )
    # Inherited training parameters whose default changes (the rest are TorchGenerator's).
    epochs = Default(20)
    batch_size = Default(32)
    lr = Default(0.1)
    verbose = Default(False)

    # The network that sees real data: trained with DP-SGD when dp= is given.
    _dp_modules = ("means",)

    def _build_modules(self) -> nn.ModuleDict:
        # Fitted shape attributes (n_classes_, sample_shape_) are set before this is called.
        n_features = math.prod(self.sample_shape_)
        return nn.ModuleDict({"means": _ClassMeans(self.n_classes_, n_features)})

    def _train_step(
        self, x: torch.Tensor, y: torch.Tensor, ctx: TrainingContext
    ) -> dict[str, torch.Tensor]:
        net = self.modules_["means"]
        with ctx.autocast():
            loss = (net(y) - x.flatten(1)).pow(2).mean()
        ctx.update("means", loss, net.parameters())
        return {"loss": loss}

    def _sample(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mean = self.modules_["means"](labels)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        return mean + self.noise * noise  # fit's caller clips to [0, 1] and reshapes
