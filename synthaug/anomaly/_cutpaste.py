"""CutPaste: a detector that learns from normal images with parts of themselves moved.

Li, Sohn, Yoon and Pfister, "CutPaste: Self-Supervised Learning for Anomaly Detection and
Localization", CVPR 2021: a network learns to tell normal images from cut-and-pasted ones
(and from thin "scars"); a Gaussian density on its features of the normal training images
scores new images (their Mahalanobis distance).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.covariance import LedoitWolf

from synthaug._params import Param, int_range, none_or, one_of, pair_in, real_range
from synthaug._utils import resolve_device
from synthaug.anomaly._base import NetworkDetector
from synthaug.anomaly._registry import register_detector
from synthaug.anomaly._simulate import (
    SmallConvNet,
    cutpaste,
    depth_for,
    require_images,
)
from synthaug.nn import (
    batched,
    optimizer_step,
    seeded,
)


@register_detector("cutpaste")
class CutPasteDetector(NetworkDetector):
    """CutPaste anomaly detector (Li et al., CVPR 2021), a small CNN for small images.

    Every step takes a batch of normal images and makes a cut-and-pasted copy (a rectangle of
    the image moved elsewhere in it, its brightness jittered) and, for ``variant="3way"``, a
    scar copy (a thin turned strip moved likewise); a small CNN learns which is which (cross
    entropy). After training, a Gaussian (mean and Ledoit-Wolf shrunk covariance) is fitted
    to the CNN's pooled features of the normal training images; the anomaly score of an image
    is its squared Mahalanobis distance under that Gaussian.

    Attributes
    ----------
    network_ : torch.nn.Module
        The trained CNN.
    feature_mean_, feature_precision_ : numpy.ndarray
        The Gaussian of the normal training features.
    history_ : list of dict
        Mean classification loss and accuracy of every 50 steps (the last record may cover
        fewer), with the steps done (``"steps"``).

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.anomaly import CutPasteDetector
    >>> digits = load_digits()
    >>> zeros = digits.subset((digits.labels == 0).nonzero().flatten())
    >>> det = CutPasteDetector(steps=20, width=4, device="cpu").fit(zeros)
    >>> det.decision_function(digits).shape
    (1797,)
    """

    variant = Param(
        "3way",
        one_of("3way", "binary", "scar"),
        """``"binary"``: normal against cut-paste; ``"scar"``: normal against scar; ``"3way"``:
        all three classes (the paper's best).""",
    )
    steps = Param(
        500,
        int_range(1),
        """Optimiser steps (Adam), each on ``batch_size`` normal images drawn with replacement
        and their altered copies.""",
    )
    width = Param(16, int_range(1), "Channels of the first block (doubling per halving).")
    depth = Param(
        None,
        none_or(int_range(1, 6)),
        """Halvings; ``None`` halves until the short side is about 2 pixels (at most 4).""",
    )
    patch_area = Param(
        (0.02, 0.15),
        pair_in(0.0, 1.0, low_open=True),
        "Range of the share of the image a cut-paste rectangle covers.",
        type="(float, float)",
    )
    jitter = Param(0.1, real_range(0, 1), "Most brightness change of the moved content.")
    shrinkage = Param(
        None,
        none_or(real_range(0, 1)),
        """Covariance shrinkage in [0, 1]; ``None`` takes Ledoit and Wolf's estimate.""",
    )

    def _altered(self, clean: torch.Tensor, gen: torch.Generator) -> list[torch.Tensor]:
        """The batch's altered copies, one tensor per anomalous class of ``variant``."""
        out = []
        if self.variant in ("3way", "binary"):
            out.append(
                cutpaste(clean, gen, scar=False, area=tuple(self.patch_area), jitter=self.jitter)[0]
            )
        if self.variant in ("3way", "scar"):
            out.append(cutpaste(clean, gen, scar=True, jitter=self.jitter)[0])
        return out

    def _fit(self, images: torch.Tensor, seed: int) -> None:
        require_images(images, type(self).__name__)
        self.device_ = resolve_device(self.device)
        n, c, h, w = images.shape
        self.depth_ = depth_for(h, w, self.depth, smallest=2, most=4)
        n_classes = 3 if self.variant == "3way" else 2
        with seeded(seed):
            self.network_ = SmallConvNet(c, n_classes, self.width, self.depth_).to(self.device_)
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        opt = torch.optim.Adam(self.network_.parameters(), lr=self.lr)
        labels = torch.arange(n_classes, device=self.device_).repeat_interleave(self.batch_size)
        trainer = self._step_trainer(self.steps)

        def step(clean: torch.Tensor, _: torch.Tensor) -> dict[str, torch.Tensor]:
            with trainer.autocast():
                logits, _ = self.network_(torch.cat([clean, *self._altered(clean, gen)]))
                loss = F.cross_entropy(logits, labels)
            optimizer_step(opt, loss, scaler=trainer.scaler)
            accuracy = (logits.detach().argmax(1) == labels).float().mean()
            return {"loss": loss.detach(), "accuracy": accuracy}

        self.history_: list[dict[str, float]] = []
        self.network_.train()
        x_all = images.to(self.device_)
        unlabelled = torch.zeros(n, dtype=torch.int64, device=self.device_)
        trainer.run(
            step,
            x_all,
            unlabelled,
            gen,
            self.history_,
            modules=self.network_,
            optimizers={"adam": opt},
        )
        self.network_.eval()
        features = self._features(images)
        self.feature_mean_ = features.mean(0)
        centred = features - self.feature_mean_
        if self.shrinkage is None:
            cov = LedoitWolf(assume_centered=True).fit(centred).covariance_
        else:
            emp = centred.T @ centred / max(len(features), 1)
            target = np.trace(emp) / emp.shape[0] * np.eye(emp.shape[0])
            cov = (1 - self.shrinkage) * emp + self.shrinkage * target
        self.feature_precision_ = np.linalg.pinv(cov, hermitian=True)

    def _features(self, images: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            features = batched(
                lambda x: self.network_(x)[1].cpu(),
                images,
                network=self.network_,
                device=self.device_,
            )
        return features.double().numpy()

    def _score(self, images: torch.Tensor) -> np.ndarray:
        centred = self._features(images) - self.feature_mean_
        return np.einsum("nd,de,ne->n", centred, self.feature_precision_, centred)
