"""The ``anomaly`` task type: the one-class protocol over a grid of normal classes and detectors.

Config::

    task = "anomaly"
    seeds = 3

    [dataset]
    name = "digits"

    [anomaly]
    normal_classes = "all"     # or a list of labels / class names
    n_normal = 20              # optional: train on 20 normal images only (few-normals)
    per_anomaly_class = false  # also report AUROC of the normals against each anomalous class

    [split]
    test_size = 0.3

    [methods]                  # the detectors; a name that is not a detector says which it is
    pca = { n_components = 10 }
    vae-reconstruction = { detector = "vae", score = "reconstruction", epochs = 200 }
    "vae+cvae-normals" = { detector = "vae", n_synthetic = 200, augment_with = { generator = "cvae", epochs = 200 } }

Per cell (normal class x detector x seed): the seed's stratified split, the detector fitted on
the normal class of the training part only, every test sample scored; anomalies (every other
class) are the positive class of AUROC and AUPRC (Ruff et al., Deep SVDD, ICML 2018).
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import torch

from synthaug._params import configure
from synthaug.anomaly import DETECTORS, evaluate_one_class
from synthaug.augment import SOURCES
from synthaug.bench._config import check_keys, fail, is_int, lookup, resolve_classes
from synthaug.bench._methods import validate_single
from synthaug.bench._task import (
    SMALLEST_TEST_CLASS,
    TASKS,
    BaseTask,
    Cell,
    CellContext,
    DatasetRef,
    Setting,
    TaskResult,
    load_dataset,
    smallest_class,
    split_data,
    split_indices,
)
from synthaug.data import DATASETS, ImageDataset, pool_indices
from synthaug.errors import InvalidParameterError
from synthaug.generators import GENERATORS

_ANOMALY_KEYS = ("normal_classes", "n_normal", "per_anomaly_class")
_LOCALISATION = ("pixel_auroc", "region_overlap")
# Set by the harness per cell; a config may not set them.
_HARNESS_PARAMS = ("seed", "verbose")


def build_detector(
    name: str, params: dict[str, Any], *, seed: int, device: str, where: str = "methods"
) -> Any:
    """An unfitted detector from a methods entry; raises with the config key on bad input."""
    params = dict(params)
    detector = params.pop("detector", name)
    augment = params.pop("augment_with", None)
    where = f"{where}.{name}"
    if not isinstance(detector, str) or detector not in DETECTORS:
        raise fail(
            f"{where}.detector" if detector != name else where,
            f"unknown detector {detector!r}; available: {', '.join(DETECTORS.list())} "
            f'(name it with detector = "...")',
        )
    for key in params:
        if key in _HARNESS_PARAMS:
            raise fail(f"{where}.{key}", "set by the harness per cell; remove it from the config")
    accepted = set(DETECTORS.accepted_params(detector) or ())
    for key in params:
        if key not in accepted:
            raise fail(
                f"{where}.{key}",
                f"unknown parameter of detector {detector!r}; allowed: "
                f"{', '.join(sorted(accepted - set(_HARNESS_PARAMS)))}",
            )
    if "device" in accepted and "device" not in params:
        params["device"] = device
    if augment is not None:
        params["augment_with"] = _normals_source(augment, seed=seed, device=device, where=where)
    det = DETECTORS.create(detector, seed=seed, **params)
    try:
        det.check_params()
    except InvalidParameterError as exc:
        raise fail(where, str(exc)) from None
    return det


def _normals_source(spec: Any, *, seed: int, device: str, where: str) -> Any:
    """Synthetic normals for ``augment_with``: an unfitted generator or sample source.

    ``"cvae"`` or ``{ generator = "cvae", epochs = 100 }`` is a registered generator;
    ``"classical"`` or ``{ method = "smote", k_neighbors = 3 }`` a registered sample source
    (the classical baselines for synthetic normals).
    """
    where = f"{where}.augment_with"
    if isinstance(spec, str):
        spec = {"method" if spec in SOURCES else "generator": spec}
    kinds = [k for k in ("generator", "method") if k in (spec if isinstance(spec, dict) else {})]
    if len(kinds) != 1 or not isinstance(spec[kinds[0]], str):
        raise fail(
            where,
            'give a generator or sample source name, or a table { generator = "cvae", ... } / '
            '{ method = "classical" }',
        )
    kind = kinds[0]
    name = spec[kind]
    params = {k: v for k, v in spec.items() if k != kind}
    if kind == "method":
        lookup(SOURCES, name, f"{where}.method")
        validate_single(name, params, where)
        return SOURCES.create(name, **params)
    lookup(GENERATORS, name, f"{where}.generator")
    validate_single(name, params, where)  # the same checks as a generator method of a grid
    generator = GENERATORS.create(name, **params)
    configure(generator, seed=seed, device=device, verbose=False)
    return generator


@functools.lru_cache(maxsize=2)
def _dataset_masks(name: str, params_json: str) -> torch.Tensor | None:
    """The true anomaly masks of a registered data set whose loader can return them
    (``return_masks=True``, as the phantom loaders), else None."""
    if "return_masks" not in (DATASETS.accepted_params(name) or ()):
        return None
    _, masks = DATASETS.create(name, **json.loads(params_json), return_masks=True)
    return masks


def _test_masks(cell: Cell, data: ImageDataset) -> torch.Tensor | None:
    """The masks of the cell's test split, when its data set has masks: the loader's masks
    taken through the same pool and split as the images."""
    spec = cell.dataset
    masks = _dataset_masks(spec["name"], json.dumps(spec.get("params", {}), sort_keys=True))
    if masks is None:
        return None
    full = load_dataset({"name": spec["name"], "params": spec.get("params", {}), "pool": "all"})
    pooled = masks[pool_indices(full, spec.get("pool", "all"))]
    if len(pooled) != len(data):
        return None  # the task's data are not the pool as loaded
    _, test_idx = split_indices(cell, data)
    return pooled[torch.as_tensor(test_idx)]


@TASKS.register("anomaly")
class AnomalyTask(BaseTask):
    """One-class anomaly detection: fit on one class, flag every other class in the test split.

    Settings are the ``[anomaly]`` table: one setting per normal class. Methods are anomaly
    detectors (:data:`synthaug.anomaly.DETECTORS`), named directly or through a
    ``detector = "..."`` key, with their parameters; ``augment_with`` takes a generator or
    sample source name, or a table ``{ generator = "cvae", ... }``, for synthetic normal
    samples. The report adds the mean over normal classes (per seed, then mean ± 95% CI
    across seeds), as the one-class protocol reports it.
    """

    settings_table = "anomaly"
    uses_classifiers = False
    baselines = ("pca", "knn")
    example = '["pca", "knn", "vae"]'
    reported = ("auroc", "auprc")
    best_is_highest = (*reported, "pixel_auroc", "region_overlap")
    chance_at_half = ("auroc", "pixel_auroc")
    mean_over_settings = "mean over normal classes"

    def parse_settings(self, table: Any, dataset: DatasetRef) -> list[Setting]:
        check_keys(table, _ANOMALY_KEYS, "anomaly")
        n_normal = table.get("n_normal")
        if n_normal is not None and (not is_int(n_normal) or n_normal < 2):
            raise fail("anomaly.n_normal", f"must be an integer >= 2, got {n_normal!r}")
        per_class = table.get("per_anomaly_class", False)
        if not isinstance(per_class, bool):
            raise fail("anomaly.per_anomaly_class", f"must be true or false, got {per_class!r}")
        classes = dataset().classes
        wanted = table.get("normal_classes", "all")
        if wanted == "all":
            wanted = list(classes)
        if not isinstance(wanted, list) or not wanted:
            raise fail("anomaly.normal_classes", f'give "all" or a list of classes, got {wanted!r}')
        if len(classes) < 2:
            raise fail("dataset", "the one-class protocol needs at least two classes")
        settings = []
        for name in resolve_classes(wanted, dataset, "anomaly.normal_classes"):
            label = f"normal={name}" + (f", n={n_normal}" if n_normal else "")
            settings.append(
                {
                    "label": label,
                    "anomaly": {
                        "normal_class": name,
                        "n_normal": n_normal,
                        "per_anomaly_class": per_class,
                    },
                }
            )
        return settings

    def validate_method(self, name: str, params: dict[str, Any]) -> None:
        build_detector(name, params, seed=0, device="cpu")

    def reported_metrics(self, metrics: list[dict[str, Any]]) -> tuple[str, ...]:
        """``reported`` plus the per-anomaly-class AUROCs when the config asked for them, and
        the localisation scores when a detector made anomaly maps and the data have masks."""
        keys = dict.fromkeys(k for m in metrics for k in m)
        extra = [k for k in keys if k.startswith("auroc[")]
        local = [k for k in _LOCALISATION if k in keys]
        local += [k for k in keys if k.startswith("pixel_auroc[")]
        return (*self.reported, *extra, *local)

    def run(self, cell: Cell, ctx: CellContext) -> TaskResult:
        seed = cell.seed
        setting = cell.settings
        with ctx.timed("split"):
            train, test = split_data(cell, ctx.data)
        detector = build_detector(cell.method, cell.method_params, seed=seed, device=ctx.device)
        t0 = time.perf_counter()
        record = evaluate_one_class(
            detector,
            train,
            test,
            setting["normal_class"],
            seed=seed,
            n_normal=setting["n_normal"],
            per_anomaly_class=setting["per_anomaly_class"],
            test_masks=_test_masks(cell, ctx.data),
        )
        ctx.timings["detector_fit"] = record.pop("fit_seconds")
        ctx.timings["score"] = time.perf_counter() - t0 - ctx.timings["detector_fit"]
        for key in ("normal_class", "seed"):
            record.pop(key)
        record[SMALLEST_TEST_CLASS] = smallest_class(test)
        return TaskResult(record)
