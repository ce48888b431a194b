"""Variational-autoencoder anomaly detector, built on synthaug's CVAE."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from synthaug._params import int_range, one_of
from synthaug.anomaly._base import BaseDetector, register_detector
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.generators import CVAE

# CVAE parameters a user may pass through; the detector owns the seed.
_VAE_PARAMS = tuple(
    p for p in inspect.signature(CVAE.__init__).parameters if p not in ("self", "seed")
)


@register_detector("vae")
class VAEAnomalyDetector(BaseDetector):
    """Anomaly score from a VAE fitted on normal samples (An & Cho, SNU Data Mining Center
    technical report 2015; the ELBO of Kingma & Welling, ICLR 2014).

    A :class:`~synthaug.generators.CVAE` with a single (normal) class learns the normal
    samples; a sample that the model explains badly is anomalous.

    Parameters
    ----------
    score : {"reconstruction", "elbo"}
        ``"reconstruction"``: squared error between a sample and its deterministic
        reconstruction (decoder mean at the encoder mean). ``"elbo"``: the negative evidence
        lower bound, estimated with ``n_samples`` latent draws (seeded).
    n_samples : int
        Latent draws per sample for ``score="elbo"``.
    validation_fraction, threshold_quantile, augment_with, n_synthetic,
    allow_multiple_classes, seed
        See :class:`~synthaug.anomaly.BaseDetector`.
    **vae_params
        Passed to :class:`~synthaug.generators.CVAE` (``latent_dim``, ``hidden_dims``,
        ``epochs``, ``batch_size``, ``lr``, ``beta``, ``grad_clip``, ``device``, ``verbose``);
        defaults here are ``epochs=200`` and ``verbose=False``.

    Attributes
    ----------
    vae_ : CVAE
        The fitted model.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.anomaly import VAEAnomalyDetector
    >>> digits = load_digits()
    >>> zeros = digits.subset((digits.labels == 0).nonzero().flatten())
    >>> det = VAEAnomalyDetector(score="elbo", epochs=5, device="cpu").fit(zeros)
    >>> det.score(digits).shape
    (1797,)
    """

    _parameter_constraints = {
        "score": one_of("reconstruction", "elbo"),
        "n_samples": int_range(1),
    }
    _VAE_DEFAULTS = {"epochs": 200, "verbose": False}

    def __init__(
        self,
        *,
        score: str = "reconstruction",
        n_samples: int = 8,
        validation_fraction: float = 0.1,
        threshold_quantile: float = 0.95,
        augment_with: Any = None,
        n_synthetic: int = 0,
        allow_multiple_classes: bool = False,
        seed: int | None = 0,
        **vae_params: Any,
    ) -> None:
        self.score_kind = score
        self.n_samples = n_samples
        self.vae_params = vae_params
        self._store_common(
            validation_fraction,
            threshold_quantile,
            augment_with,
            n_synthetic,
            allow_multiple_classes,
            seed,
        )

    # ``score`` is both a parameter and the scoring method; the value lives in ``score_kind``.
    def get_params(self) -> dict[str, Any]:
        params = {
            name: getattr(self, "score_kind" if name == "score" else name)
            for name in self._param_names()
        }
        params.update(self.vae_params)
        return params

    def set_params(self, **params: Any) -> VAEAnomalyDetector:
        for name, value in params.items():
            if name == "score":
                self.score_kind = value
            elif name in self._param_names():
                setattr(self, name, value)
            elif name in _VAE_PARAMS:
                self.vae_params[name] = value
            else:
                raise InvalidParameterError(
                    f"VAEAnomalyDetector has no parameter {name!r}; valid: "
                    f"{sorted(set(self._param_names()) | set(_VAE_PARAMS))}"
                )
        return self

    def _fit(self, images: torch.Tensor, seed: int) -> None:
        unknown = sorted(set(self.vae_params) - set(_VAE_PARAMS))
        if unknown:
            raise InvalidParameterError(
                f"VAEAnomalyDetector: {unknown} are not CVAE parameters; valid: {list(_VAE_PARAMS)}"
            )
        params = {**self._VAE_DEFAULTS, **self.vae_params}
        normal = ImageDataset(images, torch.zeros(len(images), dtype=torch.int64))
        self.vae_ = CVAE(**params, seed=seed).fit(normal)
        self._score_seed = seed

    def _score(self, images: torch.Tensor) -> np.ndarray:
        labels = torch.zeros(len(images), dtype=torch.int64)
        if self.score_kind == "elbo":
            scores = self.vae_.negative_elbo(
                images, labels, n_samples=self.n_samples, seed=self._score_seed
            )
        else:
            recon = self.vae_.reconstruct(images, labels)
            scores = (images - recon).reshape(len(images), -1).pow(2).sum(1)
        return scores.double().numpy()
