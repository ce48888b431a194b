"""Detectors that score the residual between a sample and the model's restoration of it.

A model of normal samples (a VAE's reconstruction, a diffusion model's denoising) restores
what it has learnt to expect; where a sample differs from its restoration, it is unlike the
normal ones. :class:`ResidualDetector` declares once how that residual becomes a map and a
score; a family gives the signed residual ``x - restoration``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from synthaug._params import Param, odd_int, one_of
from synthaug.anomaly._base import BaseDetector
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError

REDUCTIONS = ("sum", "local-max", "local-max-z")


class ResidualDetector(BaseDetector):
    """A detector scoring ``x - restoration``: the residual, map and reduction parameters.

    Attributes
    ----------
    residual_mean_, residual_std_ : torch.Tensor
        ``reduction="local-max-z"`` only: per-pixel mean and standard deviation (floored at
        1% of its mean over pixels, so that pixels constant on normals, such as an empty
        background, do not divide by zero) of the signed residual on normal samples,
        shaped like one sample.
    """

    reduction = Param(
        "sum",
        one_of(*REDUCTIONS),
        """How the residual map turns into one number: its sum, or (images only) the largest
        mean over a ``window`` x ``window`` neighbourhood, which keeps a small, local anomaly
        (a lesion) from drowning in the residuals of normal anatomy spread over the whole
        image. ``"local-max-z"`` first standardizes the signed residual ``x - restoration``
        per pixel with the mean and standard deviation it has on normal samples (the held-out
        validation part, or the training samples when ``validation_fraction=0``, which
        underestimates the spread of unseen normals), so that regions every normal image
        restores badly (edges of anatomy that moves) count less than regions that normally
        restore well; the standardized residual then goes through ``residual`` as the raw one
        would.""",
    )
    residual = Param(
        "squared",
        one_of("squared", "positive"),
        """Per-pixel residual map: ``"squared"`` is ``(x - restoration) ** 2``; ``"positive"``
        is ``max(x - restoration, 0) ** 2`` and only counts pixels brighter than the model
        expects. Use ``"positive"`` when the anomalies are known to be hyperintense (lung
        nodules on CT, most lesions on T2/FLAIR MR): misplaced edges of normal anatomy leave
        residuals of both signs and lose half their weight, bright lesions keep all of
        theirs. It is domain knowledge: it misses dark anomalies.""",
    )
    window = Param(
        3, odd_int(1), 'Side of the neighbourhood for the ``"local-max"`` reductions (odd).'
    )

    # -- family hook --------------------------------------------------------------------------
    def _signed_residual(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """``x - restoration``, shaped like ``images``."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def _check_reduction(self, images: torch.Tensor) -> None:
        """At ``fit``: the local reductions need images."""
        if self.reduction.startswith("local-max") and images.dim() != 4:
            raise InvalidParameterError(
                f"reduction={self.reduction!r} needs (N, C, H, W) images; use 'sum' for "
                f"feature vectors"
            )

    def _calibrate(self, images: torch.Tensor) -> None:
        if self.reduction != "local-max-z":
            return
        residual = self._signed_residual(images)
        std = residual.std(0, unbiased=len(images) > 1)
        self.residual_mean_ = residual.mean(0)
        self.residual_std_ = std.clamp(min=0.01 * float(std.mean()) + 1e-12)

    def _residual_map(self, images: torch.Tensor) -> torch.Tensor:
        """The per-pixel residual summed over channels: ``(N, 1, H, W)`` for images, else
        ``(N, D)``; smoothed over the window for the local reductions."""
        residual = self._signed_residual(images)
        if self.reduction == "local-max-z":
            residual = (residual - self.residual_mean_) / self.residual_std_
        if self.residual == "positive":
            residual = residual.clamp(min=0)
        residual = residual.pow(2)
        if residual.dim() != 4:
            return residual
        residual = residual.sum(1, keepdim=True)
        if self.reduction.startswith("local-max"):
            residual = F.avg_pool2d(
                residual, self.window, stride=1, padding=self.window // 2, count_include_pad=False
            )
        return residual

    def _score(self, images: torch.Tensor) -> np.ndarray:
        residual = self._residual_map(images).flatten(1)
        if self.reduction.startswith("local-max"):
            return residual.amax(1).double().numpy()
        return residual.sum(1).double().numpy()

    @property
    def has_anomaly_map(self) -> bool:
        """Whether :meth:`anomaly_map` applies: fitted on images (the one-class protocol then
        scores the map against true masks)."""
        return len(getattr(self, "sample_shape_", ())) == 3

    def anomaly_map(self, images: ImageDataset | torch.Tensor) -> torch.Tensor:
        """Per pixel, how far the image is from the model's restoration of it.

        Parameters
        ----------
        images : ImageDataset or torch.Tensor
            ``(N, C, H, W)`` images shaped like the training images.

        Returns
        -------
        torch.Tensor
            ``(N, 1, H, W)`` float32: the residual map of ``residual`` and ``reduction``,
            summed over channels (and window-averaged for the local reductions, whose
            maximum is then :meth:`decision_function`). Not a probability: compare maps of
            one detector, or rank pixels (pixel AUROC).
        """
        if not self.has_anomaly_map:
            raise InvalidParameterError(
                f"{type(self).__name__} has no anomaly map with these parameters (it needs "
                f"images, and a residual score); use decision_function"
            )
        return self._residual_map(self._map_images(images)).float()
