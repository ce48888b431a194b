"""One unconditional generator per class, saved together in one file."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from synthaug._params import (
    Rule,
    boolean,
    device_like,
    int_range,
    none_or,
    one_of,
    real_range,
    seed_like,
    validate_params,
)
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.generators._base import BaseGenerator, seeded
from synthaug.generators._dp import DP
from synthaug.generators._registry import get_generator_class, register_generator

BASES = {"vae": "cvae", "gan": "cgan"}


def _member_seed(seed: int, label: int) -> int:
    """A distinct, reproducible seed for the model of class ``label``."""
    return (seed * 1_000_003 + label * 7_919 + 1) % (2**63 - 1)


def _fit_member(
    base: str, params: dict[str, Any], images: torch.Tensor, name: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Fit one class's model; returns its fitted state and CPU weights (runs in a worker too)."""
    model = get_generator_class(BASES[base])(**params)
    labels = torch.zeros(len(images), dtype=torch.int64)
    model.fit(ImageDataset(images, labels, [name]))
    weights = {k: v.detach().cpu() for k, v in model.modules_.state_dict().items()}
    return model._fitted_state(), weights


def _fit_member_in_worker(*args: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    # Parallel workers share the cores: one intra-op thread each avoids oversubscription.
    torch.set_num_threads(1)
    return _fit_member(*args)


class PerClass(BaseGenerator):
    """One unconditional generator per class (the "trained per class" design).

    Each class gets its own CVAE or CGAN (with one class, their label conditioning is inert, so
    they are plain VAEs/GANs with the same architectures and trainer); ``sample`` draws each
    requested class from its own model. Classes train one after another, or ``n_jobs`` at a
    time in separate processes. One ``save`` file holds every class's model.

    Per-class models cannot share what the classes have in common, so they need more data per
    class than the conditional models; each class needs at least 2 samples.

    Parameters
    ----------
    base : {"vae", "gan"}
        The model trained for each class (:class:`CVAE` or :class:`CGAN`).
    n_jobs : int
        Classes trained in parallel processes (1: in this process, one after another; -1: one
        per CPU core). Results with ``n_jobs > 1`` match ``n_jobs=1`` up to floating-point
        differences from the thread count.
    epochs, batch_size, lr, device, seed, verbose
        Passed to every class's model (``lr=None`` keeps the base model's default); each class
        gets its own seed derived from ``seed``.
    **base_params
        Any other parameter of the base model (``latent_dim``, ``hidden_dims``, ...).

    Attributes
    ----------
    members_ : dict of int to BaseGenerator
        The fitted model of each class, by label.
    privacy_spent_ : tuple of float
        With ``dp=synthaug.DP(...)``: the largest per-class ``(epsilon, delta)``, the guarantee
        of the whole model (each record trains one class's model only: parallel composition).
    privacy_per_class_ : dict of int to tuple of float
        With ``dp``: each class's ``(epsilon, delta)``, by label.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.generators import PerClass
    >>> model = PerClass(base="vae", epochs=2, verbose=False).fit(load_digits())
    >>> images, labels = model.sample(6, y=[0, 1, 2, 0, 1, 2], seed=0)
    >>> labels.tolist()
    [0, 1, 2, 0, 1, 2]
    """

    _min_samples_per_class = 2
    _fixed_base: ClassVar[str | None] = None
    _parameter_constraints: ClassVar[dict[str, Rule]] = {
        "base": one_of(*BASES),
        "n_jobs": lambda v: None if v == -1 or int_range(1)(v) is None else "-1 or >= 1",
        "epochs": int_range(1),
        "batch_size": int_range(2),
        "lr": none_or(real_range(0, None, low_open=True)),
        "device": device_like,
        "seed": seed_like,
        "verbose": boolean,
    }

    def __init__(
        self,
        *,
        base: str = "vae",
        n_jobs: int = 1,
        epochs: int = 100,
        batch_size: int = 64,
        lr: float | None = None,
        device: str = "auto",
        seed: int = 0,
        verbose: bool = True,
        **base_params: Any,
    ) -> None:
        self.base = base
        self.n_jobs = n_jobs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.device = device
        self.seed = seed
        self.verbose = verbose
        self.base_params = base_params

    # The base model's own parameters travel in base_params; fit checks them.
    _passthrough_attr = "base_params"

    @property
    def registry_name(self) -> str:  # type: ignore[override]
        return f"perclass-{self.base}"

    def _base_class(self) -> type[BaseGenerator]:
        return get_generator_class(BASES[self.base])

    def _member_params(self, label: int, seed: int) -> dict[str, Any]:
        params: dict[str, Any] = {
            **self.base_params,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "device": str(self.device_),
            "seed": _member_seed(seed, label),
            "verbose": self.verbose,
        }
        if self.lr is not None:
            params["lr"] = self.lr
        if params.get("checkpoint_dir") is not None:
            params["checkpoint_dir"] = str(Path(params["checkpoint_dir"]) / f"class_{label}")
        return params

    # -- fit / sample -----------------------------------------------------------------------
    def _fit(self, dataset: ImageDataset, seed: int) -> None:
        base_cls = self._base_class()
        unknown = set(self.base_params) - set(base_cls._param_names())
        if unknown:
            raise InvalidParameterError(
                f"{type(self).__name__}(base={self.base!r}): unknown parameter(s) "
                f"{sorted(unknown)} for {base_cls.__name__}; valid: {sorted(base_cls._param_names())}"
            )
        member_dp = self._member_dp(len(dataset))
        jobs = []
        for label in self.classes_:
            params = self._member_params(label, seed)
            if member_dp is not None:
                params["dp"] = member_dp
            validate_params(base_cls.__name__, params, base_cls._parameter_constraints)
            images = dataset.images[dataset.labels == label]
            jobs.append((self.base, params, images, self.class_names_[label]))
        n_jobs = (os.cpu_count() or 1) if self.n_jobs == -1 else self.n_jobs
        if n_jobs > 1 and len(jobs) > 1:
            # spawn: CUDA and forked torch threads do not mix.
            with ProcessPoolExecutor(
                min(n_jobs, len(jobs)), mp_context=get_context("spawn")
            ) as pool:
                results = list(pool.map(_fit_member_in_worker, *zip(*jobs, strict=True)))
        else:
            results = [_fit_member(*job) for job in jobs]
        self.members_ = {}
        for (_, params, _, _), label, (fitted, weights) in zip(
            jobs, self.classes_, results, strict=True
        ):
            member = base_cls(**params)
            member._restore_state(fitted, self.device_)
            member.modules_.load_state_dict(weights)
            self.members_[label] = member
        self.modules_ = nn.ModuleDict({str(c): m.modules_ for c, m in self.members_.items()})
        self._collect_privacy()
        # One record per epoch, each class's losses suffixed with its label ("loss_3").
        n_epochs = max(len(m.history_) for m in self.members_.values())
        self.history_ = [{"epoch": float(i + 1)} for i in range(n_epochs)]
        for c, m in self.members_.items():
            for record, member_record in zip(self.history_, m.history_, strict=False):
                record.update({f"{k}_{c}": v for k, v in member_record.items() if k != "epoch"})

    def _sample(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        out = torch.empty((len(labels), *self.sample_shape_), device=self.device_)
        for label in torch.unique(labels).tolist():  # sorted: a fixed order of draws
            idx = torch.nonzero(labels == label).flatten()
            member = self.members_[label]
            out[idx] = member._sample(torch.zeros_like(idx), generator)
        return out

    # -- persistence ------------------------------------------------------------------------
    def _fitted_state(self) -> dict[str, Any]:
        state = super()._fitted_state()
        state["members"] = {
            str(c): {"params": {**m.get_params(), "device": "auto"}, "fitted": m._fitted_state()}
            for c, m in self.members_.items()
        }
        return state

    def _restore_state(self, state: dict[str, Any], device: torch.device) -> None:
        base_cls = self._base_class()
        self.members_ = {}
        for key, member_state in state["members"].items():
            params = {**member_state["params"], "device": str(device)}
            if "hidden_dims" in params:
                params["hidden_dims"] = tuple(params["hidden_dims"])
            member = base_cls(**params)
            with seeded(0):  # building modules initialises weights; they are overwritten
                member._restore_state(member_state["fitted"], device)
            self.members_[int(key)] = member
        super()._restore_state(state, device)
        self._collect_privacy()

    # -- differential privacy ---------------------------------------------------------------
    def _member_dp(self, n_samples: int) -> DP | None:
        """Every class's budget, with delta resolved (and checked) on the whole data set.

        Each record trains one class's model only, so by parallel composition (McSherry,
        SIGMOD 2009) the whole model is as private as its least private member; delta is
        chosen for all n records, not for each class's share.
        """
        dp = self.base_params.get("dp")
        if dp is None:
            return None
        if not isinstance(dp, DP):
            return dp  # refused with the parameter rules' message when members are validated
        return DP(
            epsilon=dp.epsilon,
            delta=dp.resolve_delta(n_samples),
            max_grad_norm=dp.max_grad_norm,
        )

    def _collect_privacy(self) -> None:
        """``privacy_spent_`` = the largest per-class (epsilon, delta); each in ``privacy_per_class_``."""
        spent = {
            c: m.privacy_spent_ for c, m in self.members_.items() if hasattr(m, "privacy_spent_")
        }
        if not spent:
            return
        self.privacy_per_class_ = dict(spent)
        epsilon = max(e for e, _ in spent.values())
        delta = max(d for _, d in spent.values())
        self.privacy_spent_ = (epsilon, delta)
        self.privacy_ = {
            "epsilon": epsilon,
            "delta": delta,
            "composition": "parallel: disjoint classes, the largest per-class epsilon",
            "per_class": {str(c): {"epsilon": e, "delta": d} for c, (e, d) in spent.items()},
        }

    def _build_modules(self) -> nn.ModuleDict:
        return nn.ModuleDict({str(c): m.modules_ for c, m in self.members_.items()})


@register_generator("perclass-vae")
class PerClassVAE(PerClass):
    """:class:`PerClass` with ``base="vae"``: one VAE per class (the registry's ``perclass-vae``)."""

    def __init__(
        self,
        *,
        n_jobs: int = 1,
        epochs: int = 100,
        batch_size: int = 64,
        lr: float | None = None,
        device: str = "auto",
        seed: int = 0,
        verbose: bool = True,
        **base_params: Any,
    ) -> None:
        if base_params.pop("base", "vae") != "vae":
            raise InvalidParameterError("PerClassVAE has base='vae'; use PerClass(base=...)")
        super().__init__(
            base="vae",
            n_jobs=n_jobs,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            device=device,
            seed=seed,
            verbose=verbose,
            **base_params,
        )


@register_generator("perclass-gan")
class PerClassGAN(PerClass):
    """:class:`PerClass` with ``base="gan"``: one GAN per class (the registry's ``perclass-gan``)."""

    def __init__(
        self,
        *,
        n_jobs: int = 1,
        epochs: int = 200,
        batch_size: int = 64,
        lr: float | None = None,
        device: str = "auto",
        seed: int = 0,
        verbose: bool = True,
        **base_params: Any,
    ) -> None:
        if base_params.pop("base", "gan") != "gan":
            raise InvalidParameterError("PerClassGAN has base='gan'; use PerClass(base=...)")
        super().__init__(
            base="gan",
            n_jobs=n_jobs,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            device=device,
            seed=seed,
            verbose=verbose,
            **base_params,
        )
