"""Differential privacy for generator training: DP-SGD through Opacus.

:class:`DP` is what a user passes (``dp=DP(epsilon=10)``); :class:`PrivateTraining` is what a
generator's ``fit`` uses: it calibrates the noise multiplier, makes the networks that see real
data compute per-sample gradients (Opacus hooks), swaps their optimisers for Opacus'
``DPOptimizer`` (per-sample clipping and Gaussian noise, seeded by the training generator) and
reports the privacy spent from the Rényi-DP accountant.

DP-SGD: Abadi et al., "Deep Learning with Differential Privacy", CCS 2016. Accounting for the
sampled Gaussian mechanism: Mironov, Talwar & Zhang, "Rényi Differential Privacy of the
Sampled Gaussian Mechanism", 2019 (Opacus' ``RDPAccountant``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.spectral_norm import SpectralNorm, SpectralNormLoadStateDictPreHook

from synthaug._utils import import_optional
from synthaug.errors import InvalidParameterError
from synthaug.nn._trainer import poisson_schedule

# Published DP generators on MNIST report delta = 1e-5 (see docs/privacy.md); for larger data
# sets the default shrinks to 1/(n ln n) so that it stays well below 1/n.
DEFAULT_DELTA = 1e-5

# Rényi orders the accountant optimises over: Opacus' default range on a 0.25 grid below 11
# (fractional orders are the slow ones; the bound moves by well under 1%), plus large orders,
# which give tighter bounds for short runs.
_ALPHAS = tuple([1 + x / 4.0 for x in range(1, 40)] + list(range(11, 64)) + [80, 128, 256, 512])

# The torch warning Opacus' backward hooks trigger on the first layer (whose input needs no
# gradient); it is expected and says nothing about the user's code.
_HOOK_WARNING = "Full backward hook is firing when gradients are computed"


@contextlib.contextmanager
def quiet_hooks() -> Iterator[None]:
    """Silence the torch warning Opacus' hooks raise on every step (expected, not actionable)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_HOOK_WARNING)
        yield


@contextlib.contextmanager
def _quiet_accountant() -> Iterator[None]:
    # "Optimal order is the largest alpha": the bound is still valid, only not the tightest.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        yield


@functools.lru_cache(maxsize=64)
def _noise_multiplier(
    epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str
) -> float:
    """Smallest noise multiplier (to 0.01 in epsilon) whose spent epsilon is below the target."""
    from opacus.accountants.utils import get_noise_multiplier

    with _quiet_accountant():
        return float(
            get_noise_multiplier(
                target_epsilon=epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=accountant,
                alphas=list(_ALPHAS),
            )
        )


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


@dataclass(frozen=True)
class DP:
    """A differential-privacy budget for training a generator with DP-SGD.

    Pass it as ``dp=`` to any generator. Training then clips each training sample's gradient
    to ``max_grad_norm`` and adds Gaussian noise calibrated so that, when training ends, the
    privacy spent (read from Opacus' Rényi-DP accountant) is at most ``(epsilon, delta)``.
    Only the networks that see real data are trained privately: the whole VAE, a GAN's
    discriminator (its generator learns only through the private discriminator).

    Parameters
    ----------
    epsilon : float
        Target epsilon, > 0 and finite (for no privacy, pass ``dp=None``).
    delta : float, optional
        Target delta, in (0, 1/n) for a training set of n samples. ``None`` (default) uses
        ``min(1e-5, 1 / (n ln n))``: the 1e-5 of published DP-GAN results on MNIST, and
        smaller for data sets above about 12,000 samples so it stays well below 1/n.
    max_grad_norm : float
        Per-sample gradient clipping bound C (> 0).

    Examples
    --------
    >>> import synthaug
    >>> synthaug.DP(epsilon=10)
    DP(epsilon=10, delta=None, max_grad_norm=1.0)
    >>> synthaug.DP(epsilon=1).resolve_delta(1797)
    1e-05
    """

    epsilon: float
    delta: float | None = None
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        if not _is_real(self.epsilon) or not 0 < self.epsilon < math.inf:
            raise InvalidParameterError(
                f"DP: epsilon={self.epsilon!r} is invalid; it must be a finite number > 0 "
                f"(smaller is more private; for no privacy pass dp=None)"
            )
        if self.delta is not None and (not _is_real(self.delta) or not 0 < self.delta < 1):
            raise InvalidParameterError(
                f"DP: delta={self.delta!r} is invalid; it must be a number in (0, 1/n) for n "
                f"training samples, or None for the default min(1e-5, 1/(n ln n))"
            )
        if not _is_real(self.max_grad_norm) or not 0 < self.max_grad_norm < math.inf:
            raise InvalidParameterError(
                f"DP: max_grad_norm={self.max_grad_norm!r} is invalid; it must be a finite "
                f"number > 0 (the per-sample gradient clipping bound)"
            )

    def resolve_delta(self, n_samples: int) -> float:
        """The delta to train with on ``n_samples`` records; a delta not below 1/n raises.

        A delta of 1/n or more allows a mechanism that publishes one whole record, so it is
        no guarantee at all.
        """
        if self.delta is None:
            if n_samples < 3:
                return DEFAULT_DELTA
            return min(DEFAULT_DELTA, 1.0 / (n_samples * math.log(n_samples)))
        if self.delta >= 1.0 / n_samples:
            raise InvalidParameterError(
                f"DP: delta={self.delta!r} is not below 1/n = {1.0 / n_samples:.3g} for "
                f"n={n_samples} training samples, so it would allow publishing a record "
                f"outright; use a smaller delta (e.g. {min(DEFAULT_DELTA, 0.1 / n_samples):.1g}) "
                f"or delta=None for the default"
            )
        return float(self.delta)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for model files."""
        return asdict(self)


def dp_rule(v: Any) -> str | None:
    """Parameter rule for ``dp=``: None or a :class:`DP`."""
    return None if v is None or isinstance(v, DP) else "None or synthaug.DP(epsilon=...)"


def make_dp_compatible(module: nn.Module) -> nn.Module:
    """Replace the layers DP-SGD cannot train in ``module``; returns the module to use.

    Batch norm mixes samples, so per-sample gradients do not exist: it becomes group norm
    (Opacus' ``ModuleValidator.fix``, as Opacus recommends). Spectral normalisation keeps
    power-iteration buffers and computes the weight outside the layer, which Opacus' per-sample
    gradients do not see: it is removed (a GAN then bounds its discriminator with
    :func:`project_spectral_norm_` after each private step).
    Works without Opacus installed, so a saved DP model can be loaded anywhere.
    """
    for sub in module.modules():
        names = [h.name for h in sub._forward_pre_hooks.values() if isinstance(h, SpectralNorm)]
        for name in names:
            torch.nn.utils.remove_spectral_norm(sub, name)
            _drop_spectral_load_hook(sub, name)
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()):
        validators = import_optional("opacus.validators")
        module = validators.ModuleValidator.fix(module)
    return module


@torch.no_grad()
def project_spectral_norm_(module: nn.Module, bound: float = 1.0) -> None:
    """Scale every weight matrix of ``module`` down to spectral norm ``bound`` (in place).

    Stands in for spectral normalisation (Miyato et al., ICLR 2018) when it cannot be trained
    through (DP-SGD): applied after each private step, it keeps every layer ``bound``-Lipschitz.
    It only transforms already private weights, so it costs no privacy. Conv kernels are
    viewed as ``(out, in * kh * kw)`` matrices, as spectral normalisation does.
    """
    for name, weight in module.named_parameters():
        if weight.dim() < 2 or not name.endswith("weight"):
            continue
        matrix = weight.reshape(weight.shape[0], -1)
        sigma = torch.linalg.matrix_norm(matrix.float(), ord=2)
        weight.mul_(torch.clamp(bound / sigma, max=1.0).to(weight.dtype))


def _drop_spectral_load_hook(module: nn.Module, name: str) -> None:
    # remove_spectral_norm misses its load_state_dict pre-hook when torch stores it wrapped
    # (torch 2.x ``_WrappedHook``); left behind, it makes loading ask for ``weight_orig``.
    for key, hook in list(module._load_state_dict_pre_hooks.items()):
        inner = getattr(hook, "hook", hook)
        if isinstance(inner, SpectralNormLoadStateDictPreHook) and inner.fn.name == name:
            del module._load_state_dict_pre_hooks[key]


class PrivateTraining:
    """One DP-SGD training run: noise calibration, per-sample gradients and accounting.

    Parameters
    ----------
    dp : DP
        The target budget.
    n_samples : int
        Training set size (the records the guarantee protects).
    batch_size : int
        Expected Poisson batch size.
    epochs : int
        Planned epochs; the noise is calibrated so that all of them fit the budget.
    generator : torch.Generator
        Draws the Gaussian noise (on the training device), so a seeded run is reproducible.
        Seeded noise is for reproducible research; it is not a cryptographically secure source
        (see docs/privacy.md).

    Raises
    ------
    MissingDependencyError
        Opacus is not installed.
    InvalidParameterError
        A delta not below 1/n, or a budget too small for any noise level.
    """

    accountant_name = "rdp"

    def __init__(
        self,
        dp: DP,
        *,
        n_samples: int,
        batch_size: int,
        epochs: int,
        generator: torch.Generator,
    ) -> None:
        self.opacus = import_optional("opacus")
        self.dp = dp
        self.delta = dp.resolve_delta(n_samples)
        self.sample_rate, self.steps_per_epoch = poisson_schedule(n_samples, batch_size)
        self.expected_batch_size = max(1, round(self.sample_rate * n_samples))
        self.generator = generator
        planned = epochs * self.steps_per_epoch
        try:
            self.noise_multiplier = _noise_multiplier(
                dp.epsilon, self.delta, self.sample_rate, planned, self.accountant_name
            )
        except ValueError as exc:
            raise InvalidParameterError(
                f"DP: no noise level reaches epsilon={dp.epsilon} with delta={self.delta:.3g} "
                f"over {planned} steps at sampling rate {self.sample_rate:.3g} ({exc}); raise "
                f"epsilon, or lower epochs or batch_size"
            ) from exc
        self._hooked: list[Any] = []

    def make_private(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> Any:
        """Attach per-sample gradient hooks to ``module``; return ``optimizer`` as DP-SGD.

        ``module`` keeps its own class and state-dict keys (the hooks sit on its layers), so it
        saves and loads like any network. Its loss must be a mean over the batch.
        """
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        self._hooked.append(GradSampleModule(module, loss_reduction="mean", strict=True))
        return DPOptimizer(
            optimizer,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.dp.max_grad_norm,
            expected_batch_size=self.expected_batch_size,
            loss_reduction="mean",
            generator=self.generator,
        )

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Passes through the private networks that are no DP step (a GAN's generator step)."""
        for gsm in self._hooked:
            gsm.disable_hooks()
        try:
            yield
        finally:
            for gsm in self._hooked:
                gsm.enable_hooks()

    def close(self) -> None:
        """Remove the hooks and per-sample state; the trained networks come out plain."""
        for gsm in self._hooked:
            gsm.remove_hooks()
            for p in gsm.parameters():
                for attr in ("grad_sample", "summed_grad", "_forward_counter"):
                    if hasattr(p, attr):
                        delattr(p, attr)
        self._hooked.clear()

    def spent(self, epochs_done: int) -> tuple[float, float]:
        """``(epsilon, delta)`` spent by ``epochs_done`` epochs, from the RDP accountant."""
        from opacus.accountants import RDPAccountant

        steps = epochs_done * self.steps_per_epoch
        if steps == 0:
            return 0.0, self.delta
        accountant = RDPAccountant()
        accountant.history = [(self.noise_multiplier, self.sample_rate, steps)]
        with _quiet_accountant():
            epsilon = float(accountant.get_epsilon(delta=self.delta, alphas=list(_ALPHAS)))
        return epsilon, self.delta

    def summary(self, epochs_done: int) -> dict[str, Any]:
        """What a model file records about the run (JSON-able)."""
        epsilon, delta = self.spent(epochs_done)
        return {
            "target": self.dp.to_dict(),
            "epsilon": epsilon,
            "delta": delta,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": epochs_done * self.steps_per_epoch,
            "accountant": self.accountant_name,
        }
