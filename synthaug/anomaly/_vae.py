"""Variational-autoencoder anomaly detector, built on synthaug's CVAE."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synthaug._params import boolean, int_range, one_of
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
    reduction : {"sum", "local-max"}
        How ``score="reconstruction"`` turns the squared residual image into one number:
        its sum, or (images only) the largest mean residual over a ``window`` x ``window``
        neighbourhood, which keeps a small, local anomaly (a lesion) from drowning in the
        residuals of normal anatomy spread over the whole image.
    window : int
        Side of the neighbourhood for ``reduction="local-max"`` (odd).
    flatten : bool
        Fit the VAE on flattened samples (a multilayer perceptron) even when the CVAE would
        choose a convolutional network for images this size: much faster on a CPU.
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
        "reduction": one_of("sum", "local-max"),
        "window": int_range(1),
        "flatten": boolean,
    }
    _VAE_DEFAULTS = {"epochs": 200, "verbose": False}

    def __init__(
        self,
        *,
        score: str = "reconstruction",
        n_samples: int = 8,
        reduction: str = "sum",
        window: int = 3,
        flatten: bool = False,
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
        self.reduction = reduction
        self.window = window
        self.flatten = flatten
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
        if self.window % 2 == 0:
            raise InvalidParameterError(f"window must be odd, got {self.window}")
        if self.reduction == "local-max" and images.dim() != 4:
            raise InvalidParameterError(
                "reduction='local-max' needs (N, C, H, W) images; use 'sum' for feature vectors"
            )
        params = {**self._VAE_DEFAULTS, **self.vae_params}
        normal = ImageDataset(
            self._model_input(images), torch.zeros(len(images), dtype=torch.int64)
        )
        self.vae_ = CVAE(**params, seed=seed).fit(normal)
        self.score_seed_ = seed

    def _model_input(self, images: torch.Tensor) -> torch.Tensor:
        return images.reshape(len(images), -1) if self.flatten else images

    def _score(self, images: torch.Tensor) -> np.ndarray:
        labels = torch.zeros(len(images), dtype=torch.int64)
        x = self._model_input(images)
        if self.score_kind == "elbo":
            scores = self.vae_.negative_elbo(
                x, labels, n_samples=self.n_samples, seed=self.score_seed_
            )
            return scores.double().numpy()
        residual = (x - self.vae_.reconstruct(x, labels)).reshape(images.shape).pow(2)
        if self.reduction == "local-max" and residual.dim() == 4:
            local = F.avg_pool2d(
                residual.sum(1, keepdim=True),
                self.window,
                stride=1,
                padding=self.window // 2,
                count_include_pad=False,
            )
            return local.flatten(1).amax(1).double().numpy()
        return residual.flatten(1).sum(1).double().numpy()
