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
from synthaug.nn import DP


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
    """Each class's mean image plus Gaussian pixel noise: the smallest generator family.

    Parameters
    ----------
    noise : float
        Standard deviation of the pixel noise added to a class's mean when sampling.
    epochs, batch_size, lr, grad_clip, checkpoint_dir, checkpoint_every, resume, amp, device,
    seed, verbose, dp
        The training parameters every torch generator has (see ``TorchGenerator``).
    """

    # The network that sees real data: trained with DP-SGD when dp= is given.
    _dp_modules = ("means",)
    # A rule returns None for a good value, else what the value must be.
    _parameter_constraints = {
        "noise": lambda v: None if isinstance(v, (int, float)) and v >= 0 else "a number >= 0"
    }

    def __init__(
        self,
        *,
        noise: float = 0.05,
        epochs: int = 20,
        batch_size: int = 32,
        lr: float = 0.1,
        grad_clip: float | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 10,
        resume: bool = False,
        amp: bool | str = True,
        compile: bool = False,
        device: str = "auto",
        seed: int = 0,
        verbose: bool = False,
        dp: DP | None = None,
    ) -> None:
        self.noise = noise
        super().__init__(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            grad_clip=grad_clip,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            resume=resume,
            amp=amp,
            compile=compile,
            device=device,
            seed=seed,
            verbose=verbose,
            dp=dp,
        )

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
