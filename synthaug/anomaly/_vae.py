"""Variational-autoencoder anomaly detector, built on synthaug's CVAE."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import clone

from synthaug._params import Param, Satisfies, boolean, int_range, odd_int, one_of
from synthaug._utils import fitting_one_class
from synthaug.anomaly._base import BaseDetector
from synthaug.anomaly._registry import register_detector
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.generators import CVAE
from synthaug.registry import Preset

# The VAE a detector trains when none is given: longer than CVAE's default, and quiet.
_VAE_DEFAULTS = {"epochs": 200, "verbose": False}


_VAE_RULE = Satisfies(
    lambda v: v is None or (isinstance(v, str) and v == "cvae") or isinstance(v, CVAE),
    "None, 'cvae' or a CVAE instance",
    'CVAE, "cvae" or None',
)


class VAEAnomalyDetector(BaseDetector):
    """Anomaly score from a VAE fitted on normal samples (An & Cho, SNU Data Mining Center
    technical report 2015; the ELBO of Kingma & Welling, ICLR 2014).

    A :class:`~synthaug.generators.CVAE` with a single (normal) class learns the normal
    samples; a sample that the model explains badly is anomalous.

    Attributes
    ----------
    vae_ : CVAE
        The fitted model.
    residual_mean_, residual_std_ : torch.Tensor
        ``reduction="local-max-z"`` only: per-pixel mean and standard deviation (floored at
        1% of its mean over pixels, so that pixels constant on normals, such as an empty
        background, do not divide by zero) of the signed residual on normal samples,
        shaped like one sample.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.anomaly import VAEAnomalyDetector
    >>> from synthaug.generators import CVAE
    >>> digits = load_digits()
    >>> zeros = digits.subset((digits.labels == 0).nonzero().flatten())
    >>> det = VAEAnomalyDetector(score="elbo", vae=CVAE(epochs=5, verbose=False)).fit(zeros)
    >>> det.decision_function(digits).shape
    (1797,)
    """

    score = Param(
        "reconstruction",
        one_of("reconstruction", "elbo"),
        """``"reconstruction"``: squared error between a sample and its deterministic
        reconstruction (decoder mean at the encoder mean). ``"elbo"``: the negative evidence
        lower bound, estimated with ``n_samples`` latent draws (seeded).""",
    )
    n_samples = Param(8, int_range(1), 'Latent draws per sample for ``score="elbo"``.')
    reduction = Param(
        "sum",
        one_of("sum", "local-max", "local-max-z"),
        """How ``score="reconstruction"`` turns the residual map into one number: its sum, or
        (images only) the largest mean over a ``window`` x ``window`` neighbourhood, which
        keeps a small, local anomaly (a lesion) from drowning in the residuals of normal
        anatomy spread over the whole image. ``"local-max-z"`` first standardizes the signed
        residual ``x - reconstruction`` per pixel with the mean and standard deviation it
        has on normal samples (the held-out validation part, or the training samples when
        ``validation_fraction=0``, which underestimates the spread of unseen normals), so
        that regions every normal image reconstructs badly (edges of anatomy that moves)
        count less than regions that normally reconstruct well; the standardized residual
        then goes through ``residual`` as the raw one would.""",
    )
    residual = Param(
        "squared",
        one_of("squared", "positive"),
        """Per-pixel residual map for ``score="reconstruction"``: ``"squared"`` is
        ``(x - reconstruction) ** 2``; ``"positive"`` is ``max(x - reconstruction, 0) ** 2``
        and only counts pixels brighter than the model expects. Use ``"positive"`` when the
        anomalies are known to be hyperintense (lung nodules on CT, most lesions on T2/FLAIR
        MR): misplaced edges of normal anatomy leave residuals of both signs and lose half
        their weight, bright lesions keep all of theirs. It is domain knowledge: it misses
        dark anomalies.""",
    )
    window = Param(
        3,
        odd_int(1),
        'Side of the neighbourhood for the ``"local-max"`` reductions (odd).',
    )
    flatten = Param(
        False,
        boolean,
        """Fit the VAE on flattened samples (a multilayer perceptron) even when the CVAE would
        choose a convolutional network for images this size: much faster on a CPU.""",
    )
    vae = Param(
        None,
        _VAE_RULE,
        """The model of normal samples, cloned and fitted with this detector's seed. ``None``:
        ``CVAE(epochs=200, verbose=False)``; ``"cvae"``: CVAE's own defaults. The registry
        name ``"vae"`` builds this detector with the CVAE's parameters given flat
        (``create_detector("vae", score="elbo", epochs=50, latent_dim=8)``).""",
        type='CVAE, "cvae" or None',
    )

    def _fit(self, images: torch.Tensor, seed: int) -> None:
        if self.reduction.startswith("local-max") and images.dim() != 4:
            raise InvalidParameterError(
                f"reduction={self.reduction!r} needs (N, C, H, W) images; use 'sum' for "
                f"feature vectors"
            )
        if self.vae is None:
            vae = CVAE(**_VAE_DEFAULTS)
        elif isinstance(self.vae, str):
            vae = CVAE()
        else:
            vae = clone(self.vae)
        normal = ImageDataset(
            self._model_input(images), torch.zeros(len(images), dtype=torch.int64)
        )
        with fitting_one_class():  # a model of the normal class alone
            self.vae_ = vae.set_params(seed=seed).fit(normal)
        self.score_seed_ = seed

    def _model_input(self, images: torch.Tensor) -> torch.Tensor:
        return images.reshape(len(images), -1) if self.flatten else images

    def _signed_residual(self, images: torch.Tensor) -> torch.Tensor:
        """``x - reconstruction``, shaped like ``images``."""
        x = self._model_input(images)
        labels = torch.zeros(len(images), dtype=torch.int64)
        return (x - self.vae_.reconstruct(x, labels)).reshape(images.shape)

    def _calibrate(self, images: torch.Tensor) -> None:
        if self.score != "reconstruction" or self.reduction != "local-max-z":
            return
        residual = self._signed_residual(images)
        std = residual.std(0, unbiased=len(images) > 1)
        self.residual_mean_ = residual.mean(0)
        self.residual_std_ = std.clamp(min=0.01 * float(std.mean()) + 1e-12)

    def _score(self, images: torch.Tensor) -> np.ndarray:
        labels = torch.zeros(len(images), dtype=torch.int64)
        if self.score == "elbo":
            scores = self.vae_.negative_elbo(
                self._model_input(images), labels, n_samples=self.n_samples, seed=self.score_seed_
            )
            return scores.double().numpy()
        residual = self._signed_residual(images)
        if self.reduction == "local-max-z":
            residual = (residual - self.residual_mean_) / self.residual_std_
        if self.residual == "positive":
            residual = residual.clamp(min=0)
        residual = residual.pow(2)
        if self.reduction.startswith("local-max"):
            local = F.avg_pool2d(
                residual.sum(1, keepdim=True),
                self.window,
                stride=1,
                padding=self.window // 2,
                count_include_pad=False,
            )
            return local.flatten(1).amax(1).double().numpy()
        return residual.flatten(1).sum(1).double().numpy()


# ``vae = { epochs = 200, latent_dim = 8 }`` flat: the CVAE's parameters next to the detector's.
register_detector("vae", Preset(VAEAnomalyDetector, "vae", CVAE, defaults=_VAE_DEFAULTS))
