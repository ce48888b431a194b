"""One unconditional generator per class, saved together in one file."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
from sklearn.base import clone
from torch import nn

from synthaug._params import REQUIRED, Param, Satisfies, any_of, int_range, one_of
from synthaug._utils import check_seed, fitting_one_class, resolve_device
from synthaug.data import ImageDataset
from synthaug.errors import ConstantSamplesWarning
from synthaug.generators._base import BaseGenerator
from synthaug.generators._cgan import CGAN
from synthaug.generators._cvae import CVAE
from synthaug.generators._persistence import as_params
from synthaug.generators._registry import GENERATORS, register_generator
from synthaug.nn import (
    DP,
    CountRelease,
    KeyedRandom,
    Randomness,
    release_counts,
    seeded,
    select_rows,
)
from synthaug.registry import Preset


def _member_seed(seed: int, label: int) -> int:
    """A distinct, reproducible seed for the model of class ``label``."""
    return (seed * 1_000_003 + label * 7_919 + 1) % (2**63 - 1)


def _fit_member(
    member: BaseGenerator, images: torch.Tensor, name: str, counts: CountRelease | None
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Fit one class's model; returns its fitted state and CPU weights (runs in a worker)."""
    # Parallel workers share the cores: one intra-op thread each avoids oversubscription.
    torch.set_num_threads(1)
    _fit_one(member, images, name, counts)
    weights = {k: v.detach().cpu() for k, v in member.modules_.state_dict().items()}
    return member._fitted_state(), weights


def _fit_one(
    member: BaseGenerator, images: torch.Tensor, name: str, counts: CountRelease | None
) -> None:
    """Fit ``member`` on one class's images; ``counts``: the class's released count (dp)."""
    data = ImageDataset(images, torch.zeros(len(images), dtype=torch.int64), [name])
    with fitting_one_class(), warnings.catch_warnings():  # each member models one class by design
        # The per-class model checks its samples once, over every class; not each member.
        warnings.simplefilter("ignore", ConstantSamplesWarning)
        if counts is None:
            member.fit(data)
        else:
            member._fit_released(data, counts)


def _is_template(value: Any) -> bool:
    if isinstance(value, str) and value in GENERATORS and isinstance(GENERATORS.get(value), type):
        value = GENERATORS.get(value)
        return issubclass(value, BaseGenerator) and not issubclass(value, PerClass)
    return isinstance(value, BaseGenerator) and not isinstance(value, PerClass)


_ESTIMATOR_RULE = Satisfies(
    _is_template,
    "a generator instance such as CVAE(...) or a registered generator name",
    "generator or str",
)


@register_generator("perclass")
class PerClass(BaseGenerator):
    """One unconditional generator per class (the "trained per class" design).

    Each class gets its own clone of ``estimator`` (with one class, the label conditioning of
    :class:`CVAE` or :class:`CGAN` is inert, so they are plain VAEs/GANs with the same
    architectures and trainer); ``sample`` draws each requested class from its own model.
    Classes train one after another, or ``n_jobs`` at a time in separate processes. One
    ``save`` file holds every class's model.

    Per-class models cannot share what the classes have in common, so they need more data per
    class than the conditional models; each class needs at least 2 samples.

    Attributes
    ----------
    estimator_ : BaseGenerator
        The resolved (unfitted) template.
    members_ : dict of int to BaseGenerator
        The fitted model of each class, by label.
    privacy_spent_ : tuple of float
        With a ``dp=synthaug.DP(...)`` estimator: the largest per-class ``(epsilon, delta)``,
        the guarantee of the whole model (each record trains one class's model only: parallel
        composition). The class counts are then released once with noise, before training;
        ``class_counts_`` and each member's schedule (sampling rate, steps) come from that
        release, and every class's figure includes its cost.
    privacy_per_class_ : dict of int to tuple of float
        With ``dp``: each class's ``(epsilon, delta)`` (the count release and that class's
        training), by label.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.generators import CVAE, PerClass
    >>> model = PerClass(CVAE(epochs=2, verbose=False)).fit(load_digits())
    >>> images, labels = model.sample(6, y=[0, 1, 2, 0, 1, 2], seed=0)
    >>> labels.tolist()
    [0, 1, 2, 0, 1, 2]
    """

    estimator = Param(
        REQUIRED,
        _ESTIMATOR_RULE,
        """The model trained for each class, e.g. ``CVAE(latent_dim=8)``; it is cloned, never
        fitted itself. A registered name (``"cvae"``) uses that generator's defaults. Class
        ``c``'s clone gets the seed ``f(estimator.seed, c)``, so classes differ and the whole
        is reproducible; the estimator's ``device`` places every member. The registry's
        ``perclass-vae`` and ``perclass-gan`` build this with a CVAE or a CGAN from flat
        parameters (``create_generator("perclass-vae", latent_dim=8)``).""",
    )
    n_jobs = Param(
        1,
        any_of(one_of(-1), int_range(1)),
        """Classes trained in parallel processes (1: in this process, one after another; -1: one
        per CPU core). Results with ``n_jobs > 1`` match ``n_jobs=1`` up to floating-point
        differences from the thread count.""",
    )

    _min_samples_per_class = 2

    @property
    def keyed_sampling(self) -> bool:  # type: ignore[override]
        """Whether keyed samples are drawn in one batch per class: the members' family's answer
        (each member's own ``_sample_keyed`` falls back to one row at a time otherwise)."""
        return bool(self._members_kind().keyed_sampling)

    @property
    def stores_training_images(self) -> bool:  # type: ignore[override]
        """Whether the members keep training images: their family's answer."""
        return bool(self._members_kind().stores_training_images)

    @property
    def exemplar_conditioned(self) -> bool:  # type: ignore[override]
        """Whether the members sample variants of stored training images: their family's answer."""
        return bool(self._members_kind().exemplar_conditioned)

    def _members_kind(self) -> BaseGenerator | type[BaseGenerator]:
        """What answers for the members before any is built: the configured template, or the
        registered family a name stands for (its class attributes)."""
        template = self.estimator
        return GENERATORS.get(template) if isinstance(template, str) else template

    @property
    def _exemplar_use(self) -> str:  # type: ignore[override]
        template = self.estimator
        family = GENERATORS.get(template) if isinstance(template, str) else type(template)
        return f"per class, {family._exemplar_use}"

    def _template(self) -> BaseGenerator:
        if isinstance(self.estimator, str):
            return GENERATORS.create(self.estimator)
        return clone(self.estimator)

    # -- fit / sample -----------------------------------------------------------------------
    def _fit(self, dataset: ImageDataset) -> None:
        self.estimator_ = self._template()
        self.device_ = resolve_device(self.estimator_.device)
        seed = check_seed(self.estimator_.seed)
        dp = self.estimator_.get_params().get("dp")
        counts = None if dp is None else release_counts(self.class_counts_, dp, seed)
        if counts is not None:
            self.class_counts_ = dict(counts.counts)
        member_dp = None if dp is None else self._member_dp(dp, len(dataset), counts)
        jobs = []
        for label in self.classes_:
            member = clone(self.estimator_).set_params(
                seed=_member_seed(seed, label), device=str(self.device_)
            )
            if member_dp is not None:
                member.set_params(dp=member_dp)
            checkpoint_dir = member.get_params().get("checkpoint_dir")
            if checkpoint_dir is not None:
                member.set_params(checkpoint_dir=str(Path(checkpoint_dir) / f"class_{label}"))
            images = dataset.images[dataset.labels == label]
            member_counts = None if counts is None else counts.for_class(label)
            jobs.append((member, images, self.class_names_[label], member_counts))
        n_jobs = (os.cpu_count() or 1) if self.n_jobs == -1 else self.n_jobs
        self.members_ = {}
        if n_jobs > 1 and len(jobs) > 1:
            # spawn: CUDA and forked torch threads do not mix.
            with ProcessPoolExecutor(
                min(n_jobs, len(jobs)), mp_context=get_context("spawn")
            ) as pool:
                results = list(pool.map(_fit_member, *zip(*jobs, strict=True)))
            for (member, *_), label, (fitted, weights) in zip(
                jobs, self.classes_, results, strict=True
            ):
                member._restore_state(fitted, self.device_)
                member.modules_.load_state_dict(weights)
                self.members_[label] = member
        else:
            for (member, images, name, member_counts), label in zip(
                jobs, self.classes_, strict=True
            ):
                _fit_one(member, images, name, member_counts)
                self.members_[label] = member
        self.modules_ = self._build_modules()
        self._collect_privacy()
        # One record per epoch, each class's losses suffixed with its label ("loss_3").
        n_epochs = max(len(m.history_) for m in self.members_.values())
        self.history_ = [{"epoch": float(i + 1)} for i in range(n_epochs)]
        for c, m in self.members_.items():
            for record, member_record in zip(self.history_, m.history_, strict=False):
                record.update({f"{k}_{c}": v for k, v in member_record.items() if k != "epoch"})

    def _abort_fit(self) -> None:
        self._forget("members_")
        super()._abort_fit()

    def _sample(self, labels: torch.Tensor, generator: Randomness) -> torch.Tensor:
        out = torch.empty((len(labels), *self.sample_shape_), device=self.device_)
        for label in torch.unique(labels).tolist():  # sorted: a fixed order of draws
            idx = torch.nonzero(labels == label).flatten()
            member = self.members_[label]
            rows = select_rows(generator, idx)
            if isinstance(rows, KeyedRandom):
                out[idx] = member._sample_keyed(torch.zeros_like(idx), rows)
            else:
                out[idx] = member._sample(torch.zeros_like(idx), rows)
        return out

    # -- persistence ------------------------------------------------------------------------
    def _fitted_state(self) -> dict[str, Any]:
        state = super()._fitted_state()
        state["members"] = {
            str(c): {"params": self._member_params(m), "fitted": m._fitted_state()}
            for c, m in self.members_.items()
        }
        return state

    def _member_params(self, member: BaseGenerator) -> dict[str, Any]:
        """A member's parameters as saved. A private model fitted with ``seed=None`` keeps no
        member seed: each is a function of the fresh seed its noise came from (the count
        release's too), so a saved one would let a reader regenerate that noise."""
        params = member.get_params(deep=False)
        if params.get("dp") is not None and self.estimator_.get_params().get("seed") is None:
            params["seed"] = None
        return params

    def _restore_state(self, state: dict[str, Any], device: torch.device) -> None:
        self.estimator_ = self._template()
        self.members_ = {}
        for key, member_state in state["members"].items():
            params = {**as_params(member_state["params"]), "device": str(device)}
            member = type(self.estimator_)(**params)
            with seeded(0):  # building modules initialises weights; they are overwritten
                member._restore_state(member_state["fitted"], device)
            self.members_[int(key)] = member
        super()._restore_state(state, device)
        self._collect_privacy()

    # -- differential privacy ---------------------------------------------------------------
    @staticmethod
    def _member_dp(dp: DP, n_samples: int, counts: CountRelease) -> DP:
        """Every class's budget, with delta resolved (and checked) on the whole data set.

        Each record trains one class's model only, so by parallel composition (McSherry,
        SIGMOD 2009) the whole model is as private as its least private member; delta is
        chosen for all n records, not for each class's share. A given delta is checked on the
        true n (the error only reaches the data owner); the default one follows the released
        total, since the members' saved budgets would otherwise reveal n.
        """
        delta = dp.resolve_delta(n_samples)
        if dp.delta is None:
            delta = dp.resolve_delta(counts.total)
        return DP(epsilon=dp.epsilon, delta=delta, max_grad_norm=dp.max_grad_norm)

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
        counts = [m.privacy_["counts"] for m in self.members_.values() if "counts" in m.privacy_]
        self.privacy_ = {
            "epsilon": epsilon,
            "delta": delta,
            "composition": "parallel: disjoint classes, the largest per-class epsilon (each "
            "with the class count release)",
            "per_class": {str(c): {"epsilon": e, "delta": d} for c, (e, d) in spent.items()},
            **({"counts": counts[0]} if counts else {}),
        }

    def _build_modules(self) -> nn.ModuleDict:
        return nn.ModuleDict({str(c): m.modules_ for c, m in self.members_.items()})


# Flat parameters for the CLI and benchmark configs: perclass-vae = { latent_dim = 8 }.
register_generator("perclass-vae", Preset(PerClass, "estimator", CVAE))
register_generator("perclass-gan", Preset(PerClass, "estimator", CGAN))
