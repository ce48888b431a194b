"""The free private baseline: a downstream classifier trained with DP-SGD on the private data.

What a user who needs a model, not data, would do (DPImageBench and DPDM report it beside
their generators): train the classifier itself with DP-SGD (Abadi et al., CCS 2016) at the
budget a generator would have spent on its release. A private synthetic release is worth its
extra steps only where its TSTR accuracy reaches this classifier's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthaug._params import (
    Estimator,
    Param,
    device_like,
    int_range,
    one_of,
    real_range,
    seed_like,
)
from synthaug._utils import check_seed, resolve_device
from synthaug.data import ImageDataset
from synthaug.errors import InvalidDataError, NotFittedError
from synthaug.metrics._classifiers import CLASSIFIERS, _check_training_set
from synthaug.nn import (
    Poisson,
    PrivateTraining,
    Shuffled,
    SmallCNN,
    SmallResNet,
    Trainer,
    TrainingSettings,
    batched,
    dp_rule,
    make_dp_compatible,
    optimizer_step,
    private_step,
    quiet_hooks,
    seeded,
)

#: The networks :class:`DPSGDClassifier` trains: multinomial logistic regression on the
#: pixels, and the two convolutional classifiers of the grids.
NETWORKS = ("linear", "cnn", "resnet")


def _network(name: str, sample_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    if name == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(sample_shape)), n_classes))
    if name == "cnn":
        return SmallCNN(sample_shape[0], n_classes)
    return SmallResNet(sample_shape[0], n_classes)


@CLASSIFIERS.register("dp-sgd")
class DPSGDClassifier(Estimator):
    """A classifier trained with DP-SGD on the data itself: the free private baseline.

    With ``dp`` the network is trained by the DP-SGD machinery the generators use (Opacus'
    per-sample gradients clipped to ``dp.max_grad_norm``, Gaussian noise calibrated so that
    ``epochs`` passes of Poisson-sampled batches spend at most ``(epsilon, delta)`` by the RDP
    accountant); without it, by plain Adam on shuffled batches (its non-private ceiling).
    The training-set size is treated as public (the sampling rate is ``batch_size / n``):
    unlike a generator it releases no class counts, so all of the budget goes to training.

    Attributes
    ----------
    privacy_spent_ : tuple of float
        ``(epsilon, delta)`` spent, from the accountant; only with ``dp``.
    privacy_ : dict
        The run's accounting (noise multiplier, sampling rate, steps), as the generators
        record it; only with ``dp``.
    n_steps_ : int
        Optimiser steps taken.

    Examples
    --------
    >>> import synthaug
    >>> from synthaug.data import load_digits
    >>> from synthaug.metrics import DPSGDClassifier
    >>> clf = DPSGDClassifier(network="linear", epochs=2, dp=synthaug.DP(epsilon=10))
    >>> clf = clf.fit(load_digits())
    >>> clf.privacy_spent_[0] <= 10
    True
    """

    network = Param("linear", one_of(*NETWORKS), "The classifier trained (see ``NETWORKS``).")
    epochs = Param(
        40, int_range(1), "Passes over the data; the noise is calibrated to all of them."
    )
    batch_size = Param(
        256,
        int_range(2),
        "Expected Poisson batch size (DP-SGD favours large batches: less noise per signal).",
    )
    lr = Param(2e-3, real_range(0, None, low_open=True), "Adam learning rate.")
    dp = Param(None, dp_rule, "The budget (``synthaug.DP``); None trains without privacy.")
    seed = Param(0, seed_like, "Seeds the initial weights, the batches and the noise.")
    device = Param(
        "auto", device_like, 'Where the network trains and runs; ``"auto"``: CUDA when available.'
    )

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "net_")

    def fit(self, dataset: ImageDataset) -> DPSGDClassifier:
        """Train on ``dataset`` (images or feature vectors; ``linear`` takes both) and return
        ``self``."""
        self.check_params()
        _check_training_set(dataset, "DPSGDClassifier")
        shape = tuple(dataset.sample_shape)
        if self.network != "linear" and not dataset.is_image:
            raise InvalidDataError(
                f"DPSGDClassifier: network={self.network!r} needs (N, C, H, W) images; use "
                f"network='linear' for feature vectors"
            )
        self.device_ = resolve_device(self.device)
        seed = check_seed(self.seed)
        with seeded(seed):
            net = _network(self.network, shape, dataset.n_classes)
        if self.dp is not None:
            net = make_dp_compatible(net)
        net = net.to(self.device_)
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        optimizer = torch.optim.Adam(net.parameters(), lr=self.lr)
        run = None
        if self.dp is not None:
            run = PrivateTraining(
                self.dp,
                n_samples=len(dataset),
                batch_size=self.batch_size,
                epochs=self.epochs,
                generator=gen,
            )
            optimizer = run.make_private(net, optimizer)
        settings = TrainingSettings(
            epochs=self.epochs, batch_size=self.batch_size, verbose=False, amp=False
        )
        trainer = Trainer(
            settings,
            device=self.device_,
            desc="DPSGDClassifier",
            batches=Poisson() if run is not None else Shuffled(skip_lone=False),
        )
        x, y = dataset.images.to(self.device_), dataset.labels.to(self.device_)

        def step(xb: torch.Tensor, yb: torch.Tensor) -> dict[str, torch.Tensor]:
            if run is None:
                loss = F.cross_entropy(net(xb), yb)
                optimizer_step(optimizer, loss)
                return {"loss": loss}
            losses: list[torch.Tensor] = []

            def loss_of(start: int, stop: int) -> torch.Tensor:
                losses.append(F.cross_entropy(net(xb[start:stop]), yb[start:stop]))
                return losses[-1]

            private_step(optimizer, len(xb), loss_of)
            return {"loss": losses[0].detach() if losses else torch.zeros((), device=xb.device)}

        net.train()
        try:
            with seeded(seed), quiet_hooks():
                self.history_ = trainer.run(
                    step, x, y, gen, [], modules=net, optimizers={"net": optimizer}
                )
        finally:
            if run is not None:
                run.close()
        net.eval()
        self.n_steps_ = self.epochs * trainer.batches.steps_per_epoch(len(x), self.batch_size)
        if run is not None:
            self.privacy_ = run.summary(self.epochs)
            self.privacy_spent_ = (self.privacy_["epsilon"], self.privacy_["delta"])
        self.n_classes_ = dataset.n_classes
        self.net_ = net
        return self

    @torch.no_grad()
    def predict_proba(self, images: Any) -> np.ndarray:
        """Class probabilities, ``(N, n_classes)``."""
        if not self.is_fitted:
            raise NotFittedError("DPSGDClassifier is not fitted; call fit(dataset) first")
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        probs = batched(
            lambda b: F.softmax(self.net_(b), dim=1).cpu(),
            x,
            network=self.net_,
            device=self.device_,
        )
        return probs.numpy()

    def predict(self, images: Any) -> np.ndarray:
        """Predicted labels, ``(N,)``."""
        return self.predict_proba(images).argmax(axis=1)
