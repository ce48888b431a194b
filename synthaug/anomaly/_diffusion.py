"""Diffusion anomaly detector: noise part way, denoise, score what changed (AnoDDPM)."""

from __future__ import annotations

import torch
from sklearn.base import clone

from synthaug._params import Param, Satisfies, int_range, real_range
from synthaug._utils import fitting_one_class
from synthaug.anomaly._registry import register_detector
from synthaug.anomaly._residual import ResidualDetector
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.generators import DDPM
from synthaug.registry import Preset

# The diffusion model a detector trains when none is given: one class, so no guidance and no
# label dropout; quiet.
_DDPM_DEFAULTS = {"guidance": 0.0, "label_dropout": 0.0, "verbose": False}

_DDPM_RULE = Satisfies(
    lambda v: v is None or (isinstance(v, str) and v == "ddpm") or isinstance(v, DDPM),
    "None, 'ddpm' or a DDPM instance",
    'DDPM, "ddpm" or None',
)


class DDPMAnomalyDetector(ResidualDetector):
    """Anomaly score from a diffusion model of normal samples (AnoDDPM: Wyatt, Leach, Schmon &
    Willcocks, CVPR Workshops 2022).

    A :class:`~synthaug.generators.DDPM` with one (normal) class learns the normal samples.
    A sample is noised to the time step ``noise_level * (train_timesteps - 1)`` and denoised
    back with the deterministic solver in ``denoise_steps`` steps: the model restores what it
    expects of normal anatomy, keeping the coarse image the noise did not destroy, so a lesion
    comes back as healthy tissue and the residual ``x - restoration`` marks it. Unlike a VAE's
    reconstruction, the restoration keeps the sample's own fine detail where it is normal
    (the early noise steps leave it), so normal anatomy leaves smaller residuals.

    The noise is drawn once per draw from the detector's seed and shared by every sample
    (common random numbers): scores then differ by content alone, and a sample's score does
    not depend on what it is scored with. ``n_draws`` noises are averaged into one
    restoration. AnoDDPM's simplex noise is not implemented (Gaussian noise only).

    Attributes
    ----------
    ddpm_ : DDPM
        The fitted model.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.anomaly import DDPMAnomalyDetector
    >>> from synthaug.generators import DDPM
    >>> digits = load_digits()
    >>> zeros = digits.subset((digits.labels == 0).nonzero().flatten())
    >>> model = DDPM(epochs=2, width=8, guidance=0.0, verbose=False)
    >>> det = DDPMAnomalyDetector(ddpm=model, denoise_steps=2, n_draws=1).fit(zeros)
    >>> det.decision_function(digits).shape, tuple(det.anomaly_map(digits.images[:3]).shape)
    ((1797,), (3, 1, 8, 8))
    """

    noise_level = Param(
        0.25,
        real_range(0, 1, low_open=True, high_open=True),
        """How far samples are noised before the restoration, as a share of the noising
        process (AnoDDPM used 250 of 1,000 steps): more restores larger anomalies but keeps
        less of the sample's normal detail.""",
    )
    denoise_steps = Param(
        10, int_range(1), "Solver steps of the restoration (at most the noised-to step + 1)."
    )
    n_draws = Param(
        2, int_range(1), "Noise draws whose restorations are averaged (one network pass each)."
    )
    ddpm = Param(
        None,
        _DDPM_RULE,
        """The model of normal samples, cloned and fitted with this detector's seed. ``None``:
        ``DDPM(guidance=0, label_dropout=0, verbose=False)``; ``"ddpm"``: DDPM's own defaults.
        The registry name ``"ddpm"`` builds this detector with the DDPM's parameters given
        flat (``create_detector("ddpm", epochs=50, width=16)``).""",
        type='DDPM, "ddpm" or None',
    )

    def _fit(self, images: torch.Tensor, seed: int) -> None:
        self._check_reduction(images)
        if self.ddpm is None:
            model = DDPM(**_DDPM_DEFAULTS)
        elif isinstance(self.ddpm, str):
            model = DDPM()
        else:
            model = clone(self.ddpm)
        self._start(model.train_timesteps)  # refuse bad settings before training
        normal = ImageDataset(images, torch.zeros(len(images), dtype=torch.int64))
        with fitting_one_class():  # a model of the normal class alone
            self.ddpm_ = model.set_params(seed=seed).fit(normal)
        self.score_seed_ = seed

    def _start(self, train_timesteps: int) -> int:
        """The time step samples are noised to (read when scoring, so that one fitted model
        can be scored at several ``noise_level``s)."""
        start = round(self.noise_level * (train_timesteps - 1))
        if self.denoise_steps > start + 1:
            raise InvalidParameterError(
                f"denoise_steps={self.denoise_steps} exceeds the {start + 1} steps from the "
                f"noised-to step {start} (noise_level={self.noise_level}); lower denoise_steps "
                f"or raise noise_level"
            )
        return start

    def _signed_residual(self, images: torch.Tensor) -> torch.Tensor:
        """``x`` minus its restoration averaged over ``n_draws`` noises, shaped like ``x``."""
        start = self._start(self.ddpm_.train_timesteps)
        labels = torch.zeros(len(images), dtype=torch.int64)
        generator = torch.Generator().manual_seed(self.score_seed_)
        restored = torch.zeros_like(images)
        for _ in range(self.n_draws):
            noise = torch.randn(images.shape[1:], generator=generator)
            restored += self.ddpm_.reconstruct(
                images,
                labels,
                start=start,
                noise=noise.expand_as(images),
                steps=self.denoise_steps,
            )
        return images - restored / self.n_draws


# ``ddpm = { epochs = 100, width = 16 }`` flat: the DDPM's parameters next to the detector's.
register_detector("ddpm", Preset(DDPMAnomalyDetector, "ddpm", DDPM, defaults=_DDPM_DEFAULTS))
