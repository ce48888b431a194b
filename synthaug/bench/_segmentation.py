"""The ``segmentation`` task type: segment rare lesions, trained on slices with their masks.

Config (``benchmarks/phantoms_segmentation.toml`` is one)::

    task = "segmentation"
    seeds = 10

    [dataset]
    name = "phantoms"          # a loader taking n_per_class, seed and return_masks
    size = 64

    [segmentation]
    kinds = ["chest"]          # optional: one setting per kind (default dataset.kind)
    n_normal = 400             # normal training slices
    n_lesion = [5, 20]         # lesion training slices with their masks: one setting each
    n_test_per_class = 100     # a separate test set: this many lesion and normal slices
    steps = 500                # the U-Net's optimiser steps, equal for every method
    batch_size = 16
    channels = [8, 16, 32, 64] # the U-Net's channels per level
    lr = 0.001
    fp_per_image = 0.25        # the operating point of lesion_sensitivity

    [split]
    protocol = "fresh-draws"

    [methods]
    none = {}
    balanced = {}              # half of every batch lesion slices (on average)
    classical = {}             # flip, small affine, intensity jitter of image and mask together
    "classical+balanced" = {}
    copy-paste = {}            # + synthetic lesion slices with their masks
    "copy-paste+balanced" = {}
    full-data = {}             # the ceiling: as many real lesion slices as normal ones

Per cell (setting x method x seed): the seed's phantoms with their true masks (training set
from seed ``2s``, test set from ``2s + 1``, as the ``lesion`` task draws them); a lesion source
fits on the real lesion slices and their true masks and tops the lesion slices up to the
normal count with synthetic slices and the masks of the lesions it pasted; a MONAI U-Net
(:class:`~synthaug.metrics.UNetSegmenter`) trains with Dice + cross-entropy for ``steps``
steps on what the method gives; the test set is scored with
:func:`~synthaug.metrics.segmentation_scores`: Dice and HD95 (pixels; an empty prediction
scores the image diagonal) per lesion slice, lesion-wise sensitivity at ``fp_per_image``
false-positive components per slice, and the false-positive pixel rate on normal slices.
"""

from __future__ import annotations

from typing import Any

import torch

from synthaug.bench._config import check_keys, fail, is_int
from synthaug.bench._methods import (
    FULL_DATA,
    build_part,
    is_free_baseline,
    is_lesion_source,
    registered_parts,
    training_params,
    validate_method,
)
from synthaug.bench._resampling import FRESH_DRAWS
from synthaug.bench._task import (
    SMALLEST_TEST_CLASS,
    TASKS,
    BaseTask,
    Cell,
    CellContext,
    DatasetRef,
    Setting,
    TaskResult,
    example_images,
    smallest_class,
    stable_hash,
)
from synthaug.data import DATASETS, ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.metrics import UNetSegmenter, segmentation_scores

_SEGMENTATION_KEYS = (
    "kinds",
    "n_normal",
    "n_lesion",
    "n_test_per_class",
    "steps",
    "batch_size",
    "channels",
    "lr",
    "fp_per_image",
)
# The segmenter's parameters a config sets in [segmentation]; their rules are the segmenter's.
_SEGMENTER_KEYS = ("steps", "batch_size", "channels", "lr")
_SEGMENTER_DEFAULTS = {k: UNetSegmenter.parameters()[k].default for k in _SEGMENTER_KEYS}
# Methods with a meaning of their own here: classical augmentation acts on image and mask
# together, online; balanced sampling draws lesion slices for half of every batch.
_CLASSICAL = "classical"
_PLAIN = ("none", FULL_DATA, "balanced", _CLASSICAL)
_DEVELOPMENT_SEEDS = 10**9
LESION = "lesion"


@TASKS.register("segmentation")
class SegmentationTask(BaseTask):
    """Lesion segmentation on phantom slices with lesion slices as a small minority.

    Settings are the ``[segmentation]`` table (one setting per kind and lesion count). Methods:
    ``none``; the free baselines ``balanced`` (lesion-balanced batches), ``classical``
    (online image+mask augmentation) and ``classical+balanced``; the lesion sources
    (``copy-paste``, ``lesion-transplant``, alone or ``+balanced`` / ``+classical``), whose
    synthetic slices come with their masks; and the ``full-data`` ceiling.
    """

    settings_table = "segmentation"
    uses_classifiers = False
    # Every seed draws fresh phantoms: the seeds are independent.
    protocols = (FRESH_DRAWS,)
    baselines = ("none",)
    references = (FULL_DATA,)
    example = '["none", "balanced", "classical", "copy-paste", "full-data"]'
    reported = ("dice", "hd95", "lesion_sensitivity", "fp_pixel_rate")
    best_is_highest = ("dice", "lesion_sensitivity")

    def parse_settings(self, table: Any, dataset: DatasetRef) -> list[Setting]:
        check_keys(table, _SEGMENTATION_KEYS, "segmentation")
        kinds = table.get("kinds", [dataset.params.get("kind", "chest")])
        if (
            not isinstance(kinds, list)
            or not kinds
            or any(k not in ("chest", "brain") for k in kinds)
            or len(set(kinds)) != len(kinds)
        ):
            raise fail(
                "segmentation.kinds", f"must be a list of 'chest' and/or 'brain', got {kinds!r}"
            )
        n_normal = table.get("n_normal", 400)
        if not is_int(n_normal) or n_normal < 2:
            raise fail("segmentation.n_normal", f"must be an integer >= 2, got {n_normal!r}")
        n_lesion = table.get("n_lesion", 20)
        lesions = n_lesion if isinstance(n_lesion, list) else [n_lesion]
        if not lesions or any(not is_int(k) or k < 2 for k in lesions):
            raise fail(
                "segmentation.n_lesion",
                f"must be an integer >= 2 or a list of them (a lesion source needs two lesion "
                f"slices to vary its lesions), got {n_lesion!r}",
            )
        n_test = table.get("n_test_per_class", 100)
        if not is_int(n_test) or n_test < 1:
            raise fail("segmentation.n_test_per_class", f"must be an integer >= 1, got {n_test!r}")
        fp = table.get("fp_per_image", 0.25)
        if isinstance(fp, bool) or not isinstance(fp, (int, float)) or not fp >= 0:
            raise fail("segmentation.fp_per_image", f"must be a number >= 0, got {fp!r}")
        segmenter = {k: table.get(k, v) for k, v in _SEGMENTER_DEFAULTS.items()}
        rules = UNetSegmenter._parameter_rules()
        for key, value in segmenter.items():
            msg = rules[key](value)
            if msg is not None:
                raise fail(f"segmentation.{key}", f"must be {msg}, got {value!r}")
        segmenter["channels"] = list(segmenter["channels"])
        _check_loader(dataset)
        try:  # two slices: checks the loader's parameters (kind, size) at once
            params = {**dataset.params, **({"kind": kinds[0]} if "kinds" in table else {})}
            probe = DATASETS.create(dataset.name, n_per_class=1, seed=0, **params)
        except InvalidParameterError as exc:
            raise fail("dataset", str(exc)) from None
        side = min(probe.sample_shape[-2:])
        halvings = len(segmenter["channels"]) - 1
        if side % 2**halvings:
            raise fail(
                "segmentation.channels",
                f"{len(segmenter['channels'])} levels halve the slices {halvings} times: their "
                f"side ({side}) must be divisible by {2**halvings}; give fewer channels",
            )
        settings = []
        for kind in kinds:
            for k in lesions:
                prefix = f"{kind} " if "kinds" in table else ""
                settings.append(
                    {
                        "label": f"{prefix}lesions={k}/{n_normal + k}",
                        "segmentation": {
                            **({"kind": kind} if "kinds" in table else {}),
                            "n_normal": n_normal,
                            "n_lesion": k,
                            "n_test_per_class": n_test,
                            "fp_per_image": fp,
                            **segmenter,
                        },
                    }
                )
        return settings

    def validate_method(self, name: str, params: dict[str, Any]) -> None:
        sources = []
        for part, method, sub in registered_parts(name, params):
            where = f"methods.{name}" if part == name else f"methods.{name}.{part}"
            if is_lesion_source(method):
                sources.append(part)
            elif method == _CLASSICAL and sub:
                raise fail(
                    where,
                    "the segmentation task's classical augmentation (flip, small affine, "
                    "intensity jitter of image and mask together) takes no parameters",
                )
            elif method not in _PLAIN:
                raise fail(
                    where,
                    f"task 'segmentation' trains on slices with lesion masks and {method!r} "
                    f"makes none; use none, balanced, classical, full-data, a lesion source "
                    f"(copy-paste, lesion-transplant) or combinations such as "
                    f"'copy-paste+balanced'",
                )
        if len(sources) > 1:
            raise fail(f"methods.{name}", "give one lesion source per method")
        # Names resolve and parameters fit their methods (after the checks above, whose
        # messages say what this task can run).
        validate_method(name, params)
        extra = set(training_params(name, params)) - {"sampler"}
        if extra:
            raise fail(f"methods.{name}", f"the segmenter has no {', '.join(sorted(extra))}")

    def is_free_baseline(self, method: str, params: dict[str, Any]) -> bool:
        return is_free_baseline(method, params)

    def fit_group(self, cell: Cell) -> str | None:
        fits = _source_parts(cell)
        if not fits:
            return None
        # Cells of one data set and seed with the same source part share its fit.
        unused = ("method", "method_params", "classifier", "classifier_params")
        data = {k: v for k, v in cell.to_dict().items() if k not in unused}
        return stable_hash({"data": data, "lesion-sources": fits})

    def load(self, cell: Cell) -> dict[str, Any]:
        """The seed's training and test phantoms with their true masks; the development pool
        draws them from seeds offset by a billion. The ``full-data`` row trains on as many
        lesion slices as normal ones."""
        name, params = cell.dataset["name"], dict(cell.dataset.get("params", {}))
        setting = cell.settings
        if "kind" in setting:
            params["kind"] = setting["kind"]
        n_normal = setting["n_normal"]
        ceiling = FULL_DATA in (cell.method, cell.method_params.get("method"))
        counts = (n_normal, n_normal if ceiling else setting["n_lesion"])
        development = cell.dataset.get("pool") == "development"
        base = 2 * cell.seed + (_DEVELOPMENT_SEEDS if development else 0)
        train, masks = DATASETS.create(
            name, n_per_class=counts, seed=base, return_masks=True, **params
        )
        test, test_masks = DATASETS.create(
            name,
            n_per_class=setting["n_test_per_class"],
            seed=base + 1,
            return_masks=True,
            **params,
        )
        return {"train": train, "train_masks": masks, "test": test, "test_masks": test_masks}

    def run(self, cell: Cell, ctx: CellContext) -> TaskResult:
        setting = cell.settings
        train, masks = ctx.data["train"], ctx.data["train_masks"].bool()
        test, test_masks = ctx.data["test"], ctx.data["test_masks"].bool()
        lesion = train.classes.index(LESION) if LESION in train.classes else 1
        parts = registered_parts(cell.method, cell.method_params)
        images, all_masks, labels = train.images, masks, train.labels
        source = None
        with ctx.timed("augment"):
            for i, (_, method, sub) in enumerate(parts):
                if not is_lesion_source(method):
                    continue
                # Part i's seed as build_source gives it, so "copy-paste" and
                # "copy-paste+balanced" share one fit.
                source, reused = build_part(
                    method,
                    sub,
                    train,
                    seed=cell.seed + 104729 * i,
                    device=ctx.device,
                    masks=masks,
                )
                if reused:
                    ctx.timings["augment_reused_fit"] = reused
                # Top the lesion slices up to the normal count, as the lesion task does.
                is_lesion = train.labels == lesion
                n_synthetic = max(0, int((~is_lesion).sum() - is_lesion.sum()))
                if n_synthetic:
                    new, new_labels, new_masks = source.sample(
                        n_synthetic, y=lesion, seed=cell.seed, return_masks=True
                    )
                    images = torch.cat([images, new.float()])
                    all_masks = torch.cat([all_masks, new_masks.bool()])
                    labels = torch.cat([labels, torch.as_tensor(new_labels).long()])
        training = training_params(cell.method, cell.method_params)
        augment = any(method == _CLASSICAL for _, method, _ in parts)
        segmenter = UNetSegmenter(
            **{k: setting[k] for k in _SEGMENTER_KEYS},
            sampler=training.get("sampler", "shuffle"),
            augment=_CLASSICAL if augment else "none",
            seed=cell.seed,
            device=ctx.device,
        )
        with ctx.timed("segmenter_fit"):
            segmenter.fit(images, all_masks)
        with ctx.timed("evaluate"):
            proba = segmenter.predict_proba(test.images)
            metrics: dict[str, Any] = segmentation_scores(
                proba.numpy(), test_masks, fp_per_image=setting["fp_per_image"]
            )
        metrics.update(
            {
                "n_train_synthetic": len(images) - len(train),
                "final_loss": segmenter.history_[-1]["loss"],
                SMALLEST_TEST_CLASS: smallest_class(test),
            }
        )
        samples = None
        if source is not None:
            augmented = ImageDataset(images, labels, train.classes)
            samples = example_images(train, augmented)
        return TaskResult(metrics, samples)


def _source_parts(cell: Cell) -> list[tuple[int, str, dict[str, Any]]]:
    """``(part index, lesion source, its parameters)`` of the cell's method."""
    return [
        (i, method, sub)
        for i, (_, method, sub) in enumerate(registered_parts(cell.method, cell.method_params))
        if is_lesion_source(method)
    ]


def _check_loader(dataset: DatasetRef) -> None:
    """The loader must draw a given number of slices per class from a seed, with masks."""
    accepted = DATASETS.accepted_params(dataset.name)
    needed = {"n_per_class", "seed", "return_masks"}
    if accepted is not None and not needed <= set(accepted):
        raise fail(
            "dataset.name",
            f"task 'segmentation' needs a loader that takes n_per_class, seed and return_masks, "
            f"such as 'phantoms'; {dataset.name!r} does not",
        )
    for key in ("n_per_class", "seed"):  # return_masks: the config refuses it for every task
        if key in dataset.params:
            raise fail(
                f"dataset.{key}",
                "set by task 'segmentation' per cell (from [segmentation] and the seed); remove it",
            )
