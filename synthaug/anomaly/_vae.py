"""Variational-autoencoder anomaly detector, built on synthaug's CVAE."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import clone

from synthaug._params import Param, Satisfies, boolean, int_range, one_of
from synthaug._utils import fitting_one_class
from synthaug.anomaly._registry import register_detector
from synthaug.anomaly._residual import ResidualDetector
from synthaug.data import ImageDataset
from synthaug.generators import CVAE
from synthaug.registry import Preset

# The VAE a detector trains when none is given: longer than CVAE's default, and quiet.
_VAE_DEFAULTS = {"epochs": 200, "verbose": False}


_VAE_RULE = Satisfies(
    lambda v: v is None or (isinstance(v, str) and v == "cvae") or isinstance(v, CVAE),
    "None, 'cvae' or a CVAE instance",
    'CVAE, "cvae" or None',
)


class VAEAnomalyDetector(ResidualDetector):
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
        if self.score == "reconstruction":
            self._check_reduction(images)
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

    @property
    def has_anomaly_map(self) -> bool:
        """Only the reconstruction score has a map (the ELBO is scored as one number)."""
        return self.score == "reconstruction" and super().has_anomaly_map

    def _calibrate(self, images: torch.Tensor) -> None:
        if self.score == "reconstruction":
            super()._calibrate(images)

    def _score(self, images: torch.Tensor) -> np.ndarray:
        if self.score == "reconstruction":
            return super()._score(images)
        labels = torch.zeros(len(images), dtype=torch.int64)
        scores = self.vae_.negative_elbo(
            self._model_input(images), labels, n_samples=self.n_samples, seed=self.score_seed_
        )
        return scores.double().numpy()


# ``vae = { epochs = 200, latent_dim = 8 }`` flat: the CVAE's parameters next to the detector's.
register_detector("vae", Preset(VAEAnomalyDetector, "vae", CVAE, defaults=_VAE_DEFAULTS))
