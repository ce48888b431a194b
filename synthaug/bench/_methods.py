"""Benchmark methods: how a grid turns its training set into a fitted sample source.

A method name in ``[methods]`` resolves, in this order, to an entry of :data:`METHODS`
(``"none"``, the ``"full-data"`` ceiling, the free baselines that change how the downstream
classifier trains — ``"class-weighted"``, ``"logit-adjusted"``, ``"balanced"``,
``"balanced-online"``, ``"mixup"`` — or a user's own function), a generator of
:data:`~synthaug.generators.GENERATORS` (``"cvae"``, ``"perclass-vae"``) or a sample source
of :data:`~synthaug.augment.SOURCES` (``"classical"``, ``"smote"``). ``"a+b"`` mixes the
sources of ``a`` and ``b`` (:class:`~synthaug.augment.MixedSource`) and applies the classifier
training of any training method among the parts (``"cvae+balanced-online"``: a CVAE top-up,
then class-balanced batches with online augmentation). A method's table may name
the registered method it configures with ``method = "..."``, so one grid can hold variants
(``cvae-small = { method = "cvae", latent_dim = 4 }``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from synthaug._params import configure
from synthaug.augment import SOURCES, AugmentedDataset, LesionLocalizer, MixedSource
from synthaug.bench._config import (
    HARNESS_PARAMS,
    check_classifier_values,
    check_keywords,
    fail,
)
from synthaug.bench._task import Cell, CellContext, stable_hash
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.generators import GENERATORS
from synthaug.registry import Preset, Registry

METHODS: Registry = Registry("method")
"""Benchmark methods that are plain functions ``fn(train, *, seed, device, **params)``
returning a fitted sample source, or ``None`` for no augmentation (``"none"``), and
:class:`TrainingMethod` entries (free baselines that change the classifier's training)."""

# The ceiling row: the classification task trains on the training split before any cut.
FULL_DATA = "full-data"


@dataclass(frozen=True)
class TrainingMethod:
    """A free baseline: no samples added; the downstream classifier trains differently.

    Its ``classifier_params`` are set on the cell's classifier (``{"loss":
    "class-weighted"}``); a config may override their values in the method's table
    (``mixup = { mixup = 0.4 }``). A classifier without those parameters (logistic
    regression has no sampler) does not run the method: the grid leaves that pair out.
    """

    description: str
    classifier_params: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, train: ImageDataset, *, seed: int, device: str, **params: Any) -> None:
        return None


@dataclass
class Recipe:
    """What a method makes of a training set: samples to add and how to train on them.

    Attributes
    ----------
    source : fitted sample source or None
        ``None``: no samples added.
    classifier_params : dict
        Parameters set on the downstream classifier before it trains.
    reused_seconds : float
        Fit seconds of generators reused from an earlier cell of this process (their cost,
        not paid again here).
    """

    source: Any
    classifier_params: dict[str, Any]
    reused_seconds: float = 0.0


# Generators fitted in this process, reused by cells that ask for the same fit (``cvae`` and
# ``cvae+classical`` of one seed): identical inputs give identical weights on the CPU.
_FITS: OrderedDict[str, tuple[Any, float]] = OrderedDict()
_MAX_FITS = 4


@METHODS.register("none")
def no_augmentation(train: ImageDataset, *, seed: int, device: str) -> None:
    """Train on the imbalanced data as it is: the row every table must have."""
    return None


@METHODS.register(FULL_DATA)
def full_data(train: ImageDataset, *, seed: int, device: str) -> None:
    """The ceiling: the same classifier on the training split before the imbalance cut.

    The classification task reads this name and skips the cut; the row shows how much of the
    gap between ``none`` and the full data each method closes.
    """
    return None


for _name, _doc, _params in (
    (
        "class-weighted",
        "Cross-entropy weighted by inverse class frequency.",
        {"loss": "class-weighted"},
    ),
    (
        "logit-adjusted",
        "Logit-adjusted loss (Menon et al., ICLR 2021; balanced softmax).",
        {"loss": "logit-adjusted"},
    ),
    (
        "balanced",
        "Class-balanced batches (each batch draws every class equally often).",
        {"sampler": "balanced"},
    ),
    (
        "balanced-online",
        "Class-balanced batches with online classical augmentation of every class.",
        {"sampler": "balanced", "augment": "jitter"},
    ),
    (
        "mixup",
        "Mixup (Zhang et al., ICLR 2018) on class-balanced batches.",
        {"sampler": "balanced", "mixup": 0.2},
    ),
):
    METHODS.register(_name, TrainingMethod(_doc, _params))


def method_parts(name: str) -> list[str]:
    """``"cvae+classical"`` -> ``["cvae", "classical"]`` (a plain name gives one part)."""
    parts = [p.strip() for p in name.split("+")]
    if any(not p for p in parts):
        raise fail(f"methods.{name}", "empty part in a combined method name")
    if len(parts) > 1 and "none" in parts:
        raise fail(f"methods.{name}", "'none' cannot be combined with other methods")
    if len(set(parts)) != len(parts):
        raise fail(f"methods.{name}", "a method appears twice in a combination")
    return parts


def _split_params(name: str, params: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(part, registered method, its parameters)`` for each part of the method ``name``."""
    parts = method_parts(name)
    if len(parts) == 1:
        params = dict(params)
        return [(name, params.pop("method", name), params)]
    for key in params:
        if key not in parts:
            raise fail(
                f"methods.{name}.{key}",
                f"a combined method takes one table per part ({', '.join(parts)}), not {key!r}",
            )
    out = []
    for part in parts:
        sub = params.get(part, {})
        if not isinstance(sub, dict):
            raise fail(f"methods.{name}.{part}", "must be a table of parameters")
        sub = dict(sub)
        out.append((part, sub.pop("method", part), sub))
    return out


def registered_parts(name: str, params: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(part, registered method, its parameters)`` for each part of the method ``name``
    (``"copy-paste+balanced"`` -> the ``copy-paste`` and ``balanced`` entries), for tasks
    that decide per part what a method does."""
    return _split_params(name, params)


def kind_of(method: str, where: str) -> str:
    """What ``method`` is: ``"training"``, ``"function"``, ``"generator"`` or ``"source"``."""
    if not isinstance(method, str):
        raise fail(f"{where}.method", f"must be a method name, got {method!r}")
    if method in METHODS:
        return "training" if isinstance(METHODS.get(method), TrainingMethod) else "function"
    if method in GENERATORS:
        return "generator"
    if method in SOURCES:
        return "source"
    known = sorted(set(METHODS.list()) | set(GENERATORS.list()) | set(SOURCES.list()))
    raise fail(
        where,
        f"unknown method {method!r}; available: {', '.join(known)} "
        f"(or combinations such as 'cvae+classical')",
    )


def validate_method(name: str, params: dict[str, Any]) -> None:
    """Check up front that ``name`` resolves and ``params`` fit it; errors name the bad key."""
    parts = _split_params(name, params)
    if FULL_DATA in [method for _, method, _ in parts] and len(parts) > 1:
        raise fail(f"methods.{name}", f"{FULL_DATA!r} is the ceiling row; it takes no other part")
    for part, method, sub in parts:
        where = f"methods.{name}" if part == name else f"methods.{name}.{part}"
        validate_single(method, sub, where)
    training_params(name, params)


def training_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The classifier parameters the training methods among ``name``'s parts set.

    Two parts may not set the same parameter (``class-weighted+logit-adjusted`` both set the
    loss): that is an error naming the method.
    """
    out: dict[str, Any] = {}
    for _, method, sub in _split_params(name, params):
        if kind_of(method, f"methods.{name}") != "training":
            continue
        for key, value in {**METHODS.get(method).classifier_params, **sub}.items():
            if key in out:
                raise fail(f"methods.{name}", f"two parts set the classifier's {key!r}")
            out[key] = value
    return out


def validate_single(method: str, params: dict[str, Any], where: str) -> None:
    """Check one registered method and its parameters; errors start with ``where``."""
    kind = kind_of(method, where)
    if kind == "training":
        check_keywords(list(METHODS.get(method).classifier_params), params, where)
        check_classifier_values(params, where)
        return
    if kind == "function":
        accepted = METHODS.accepted_params(method)
        check_keywords(accepted, params, where, skip=("train", "seed", "device"))
        return
    registry = GENERATORS if kind == "generator" else SOURCES
    for key in params:
        if key in HARNESS_PARAMS:
            raise fail(f"{where}.{key}", "set by the harness per cell; remove it from the config")
    accepted = registry.accepted_params(method)
    check_keywords(
        None if accepted is None else [a for a in accepted if a not in HARNESS_PARAMS],
        params,
        where,
    )
    try:
        estimator = registry.create(method, **params)
        estimator.check_params()
    except InvalidParameterError as exc:
        raise fail(where, str(exc)) from None
    if kind == "generator" and "seed" in configure(estimator, seed=0):
        raise fail(
            where,
            f"generator {method!r} has no seed parameter (nested or not) for the harness to "
            f"set per cell; use a preset such as 'perclass-vae' that builds its inner model",
        )


def build_part(
    method: str,
    params: dict[str, Any],
    train: ImageDataset,
    *,
    seed: int,
    device: str,
    masks: torch.Tensor | None = None,
) -> tuple[Any, float]:
    """Fit one registered method on ``train``; returns the source and the seconds a reused
    generator fit took (0 when fitted here).

    ``masks``, the ``(N, 1, H, W)`` lesion masks of ``train``'s items when they are known (the
    ``segmentation`` task), are what a lesion source fits on instead of localising the lesions
    from the image labels; other methods ignore them."""
    kind = kind_of(method, "methods")
    if kind == "training":
        return None, 0.0
    if kind == "function":
        return METHODS.get(method)(train, seed=seed, device=device, **params), 0.0
    if kind == "source" and not is_lesion_source(method):
        return SOURCES.create(method, **params).fit(train), 0.0
    masks = masks if kind == "source" else None
    key = _fit_key(method, params, train, seed, device, masks)
    if key in _FITS:
        _FITS.move_to_end(key)
        return _FITS[key]
    reused = 0.0
    if kind == "source":
        model = SOURCES.create(method, **params)
        configure(model, seed=seed, device=device, verbose=False)
        if masks is None and model.get_params()["localizer"] is None:
            localizer, reused = _fitted_localizer(model, train, seed, device)
            model.set_params(localizer=localizer)
    else:
        model = GENERATORS.create(method, **params)
        configure(model, seed=seed, device=device, verbose=False)
    t0 = time.perf_counter()
    if masks is None:
        model.fit(train)
    else:
        model.fit(train, masks=masks)
    _FITS[key] = (model, time.perf_counter() - t0 + reused)
    while len(_FITS) > _MAX_FITS:
        _FITS.popitem(last=False)
    return model, reused


def is_lesion_source(method: str) -> bool:
    """Whether ``method`` is a registered lesion source (``copy-paste``, ``lesion-transplant``):
    its fits are cached like a generator's, and its cells share one lesion localizer."""
    if method not in SOURCES:
        return False
    entry = SOURCES.get(method)
    cls = entry.outer if isinstance(entry, Preset) else entry
    return isinstance(cls, type) and bool(getattr(cls, "makes_masks", False))


def uses_lesion_source(name: str, params: dict[str, Any]) -> bool:
    """Whether any part of the method ``name`` is a lesion source."""
    return any(is_lesion_source(method) for _, method, _ in _split_params(name, params))


# Lesion localizers fitted in this process (with their fit seconds), by normal images, seed
# and device: copy-paste and lesion-transplant of one cell's data find the same lesions.
_LOCALIZERS: OrderedDict[str, tuple[LesionLocalizer, float]] = OrderedDict()


def _fitted_localizer(
    source: Any, train: ImageDataset, seed: int, device: str
) -> tuple[LesionLocalizer | None, float]:
    """A fitted default localizer for ``source`` on ``train``'s normal images, and the seconds
    its fit took when it was reused from an earlier cell (0 when fitted here)."""
    normal = (
        train.classes.index(source.normal_class)
        if isinstance(source.normal_class, str) and source.normal_class in train.classes
        else source.normal_class
    )
    if not isinstance(normal, int) or not 0 <= normal < train.n_classes:
        return None, 0.0  # the source's own fit reports the bad class
    images = train.images[train.labels == normal]
    if len(images) < 2:
        return None, 0.0
    h = hashlib.sha256(images.numpy().tobytes())
    h.update(json.dumps([seed, device]).encode())
    key = h.hexdigest()
    if key in _LOCALIZERS:
        _LOCALIZERS.move_to_end(key)
        return _LOCALIZERS[key]
    t0 = time.perf_counter()
    localizer = LesionLocalizer(seed=seed, device=device).fit(images)
    _LOCALIZERS[key] = (localizer, time.perf_counter() - t0)
    while len(_LOCALIZERS) > _MAX_FITS:
        _LOCALIZERS.popitem(last=False)
    return localizer, 0.0


def build_source(
    name: str, params: dict[str, Any], train: ImageDataset, *, seed: int, device: str
) -> tuple[Any, float]:
    """Fit the sample sources of the method ``name`` (possibly combined) on ``train``.

    Returns
    -------
    source : sample source or None
        ``None`` means no samples added (``none`` and the training methods).
    reused_seconds : float
        Fit seconds of generators reused from an earlier cell of this process (their cost,
        not paid again here).
    """
    parts = _split_params(name, params)
    sources, reused = [], 0.0
    for i, (_, method, sub) in enumerate(parts):
        # Part i draws from its own seed, so "cvae" and "cvae+classical" share one CVAE fit.
        source, seconds = build_part(method, sub, train, seed=seed + 104729 * i, device=device)
        if source is not None:
            sources.append(source)
        reused += seconds
    if len(sources) <= 1:
        return (sources[0] if sources else None), reused
    return MixedSource(sources, prefit=True).fit(train), reused


def build_recipe(
    name: str, params: dict[str, Any], train: ImageDataset, *, seed: int, device: str
) -> Recipe:
    """The method ``name`` applied to ``train``: its fitted samples and its classifier
    training (see :class:`Recipe`)."""
    source, reused = build_source(name, params, train, seed=seed, device=device)
    return Recipe(source, training_params(name, params), reused)


def augment_cell(cell: Cell, ctx: CellContext, train: ImageDataset) -> tuple[Recipe, ImageDataset]:
    """The cell's method applied to ``train``: its :class:`Recipe` and ``train`` with the
    recipe's samples added (``train`` itself when it adds none).

    Timed as ``augment``; a generator fit reused from an earlier cell adds its seconds as
    ``augment_reused_fit``, so that what the method cost is reported whichever cell paid it.
    """
    with ctx.timed("augment"):
        recipe = build_recipe(
            cell.method, cell.method_params, train, seed=cell.seed, device=ctx.device
        )
        source = recipe.source
        augmented = train if source is None else AugmentedDataset(train, source, seed=cell.seed)
    if recipe.reused_seconds:
        ctx.timings["augment_reused_fit"] = recipe.reused_seconds
    return recipe, augmented


def has_generator(name: str, params: dict[str, Any]) -> bool:
    """Whether any part of the method ``name`` is a generator (its samples are worth a look)."""
    return bool(generator_fits(name, params))


def generator_fits(name: str, params: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    """``(part index, generator, its parameters)`` for each generator part of ``name``: with
    the cell's data, seed and device these decide a fit, so cells that list the same ones
    share it (``cvae`` and ``cvae+classical`` of one seed)."""
    return [
        (i, method, sub)
        for i, (_, method, sub) in enumerate(_split_params(name, params))
        if method in GENERATORS
    ]


def shared_fit_group(cell: Cell) -> str | None:
    """The :meth:`~synthaug.bench.Task.fit_group` of tasks whose methods come from
    :data:`METHODS`: the cell's data, seed and device with its generator parts, or None when
    it fits no generator."""
    fits = generator_fits(cell.method, cell.method_params)
    if not fits:
        return None
    # Everything that decides the generator's training data, not what is done with it.
    unused = ("method", "method_params", "classifier", "classifier_params")
    data = {k: v for k, v in cell.to_dict().items() if k not in unused}
    return stable_hash({"data": data, "fits": fits})


def is_free_baseline(name: str, params: dict[str, Any]) -> bool:
    """Whether ``name`` is a free baseline: it changes the data or the training without a
    generator or a lesion source (``random-oversampling``, ``classical``, ``logit-adjusted``
    ...), and is neither ``none`` nor the ``full-data`` ceiling."""
    parts = [method for _, method, _ in _split_params(name, params)]
    return not any(
        m in GENERATORS or m in ("none", FULL_DATA) or is_lesion_source(m) for m in parts
    )


def _fit_key(
    method: str,
    params: dict[str, Any],
    train: ImageDataset,
    seed: int,
    device: str,
    masks: torch.Tensor | None = None,
) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([method, params, seed, device], sort_keys=True, default=repr).encode())
    if masks is not None:
        h.update(b"masks" + masks.numpy().tobytes())
    h.update(train.images.numpy().tobytes())
    h.update(train.labels.numpy().tobytes())
    h.update(json.dumps(train.classes).encode())
    return h.hexdigest()
