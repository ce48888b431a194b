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

from collections.abc import Callable
from typing import Any

from synthaug.bench._registry import register_task
from synthaug.bench._tasks import timed
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError

_ANOMALY_KEYS = ("normal_classes", "n_normal", "per_anomaly_class")
# Set by the harness per cell; a config may not set them.
_HARNESS_PARAMS = ("seed", "verbose")


def _fail(where: str, msg: str) -> InvalidParameterError:
    return InvalidParameterError(f"{where}: {msg}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _detector_parts(name: str, params: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """``(registered detector name, its parameters, augment_with spec)`` of a methods entry."""
    params = dict(params)
    detector = params.pop("detector", name)
    augment = params.pop("augment_with", None)
    return detector, params, augment


def build_detector(
    name: str, params: dict[str, Any], *, seed: int, device: str, where: str = "methods"
) -> Any:
    """An unfitted detector from a methods entry; raises with the config key on bad input."""
    from synthaug.anomaly import create_detector, list_detectors
    from synthaug.anomaly._base import _REGISTRY

    detector, own, augment = _detector_parts(name, params)
    where = f"{where}.{name}"
    if not isinstance(detector, str) or detector not in list_detectors():
        raise _fail(
            f"{where}.detector" if detector != name else where,
            f"unknown detector {detector!r}; available: {', '.join(list_detectors())} "
            f'(name it with detector = "...")',
        )
    for key in own:
        if key in _HARNESS_PARAMS:
            raise _fail(f"{where}.{key}", "set by the harness per cell; remove it from the config")
    accepted = set(_REGISTRY[detector].accepted_params())
    for key in own:
        if key not in accepted:
            raise _fail(
                f"{where}.{key}",
                f"unknown parameter of detector {detector!r}; allowed: "
                f"{', '.join(sorted(accepted - set(_HARNESS_PARAMS)))}",
            )
    if "device" in accepted and "device" not in own:
        own["device"] = device
    if augment is not None:
        own["augment_with"] = _normals_source(augment, seed=seed, device=device, where=where)
    det = create_detector(detector, seed=seed, **own)
    try:
        det.check_params()
    except InvalidParameterError as exc:
        raise _fail(where, str(exc)) from None
    return det


class MethodSource:
    """A harness method (``"classical"``, ``"smote"`` ...) as an unfitted sample source.

    A detector fits its ``augment_with`` source on its own normal training part; harness
    methods are functions that return a fitted source, so this defers the call to ``fit``.
    """

    def __init__(self, name: str, params: dict[str, Any], *, seed: int, device: str) -> None:
        self.name = name
        self.params = params
        self.seed = seed
        self.device = device

    def fit(self, dataset: ImageDataset) -> MethodSource:
        from synthaug.bench._registry import get_method

        fn = get_method(self.name)
        self.source_ = fn(dataset, seed=self.seed, device=self.device, **self.params)
        return self

    def sample(self, n: int, y: int, seed: int | None = None) -> Any:
        return self.source_.sample(n, y=y, seed=seed)


def _normals_source(spec: Any, *, seed: int, device: str, where: str) -> Any:
    """Synthetic normals for ``augment_with``: a generator or a harness method, unfitted.

    ``"cvae"`` or ``{ generator = "cvae", epochs = 100 }`` is a registered generator;
    ``"classical"`` or ``{ method = "smote", k_neighbors = 3 }`` a harness method (the
    classical baselines for synthetic normals).
    """
    from synthaug.bench._methods import validate_method
    from synthaug.bench._registry import _METHODS, check_params
    from synthaug.generators import create_generator, list_generators

    where = f"{where}.augment_with"
    if isinstance(spec, str):
        spec = {"method" if spec in _METHODS else "generator": spec}
    kinds = [k for k in ("generator", "method") if k in (spec if isinstance(spec, dict) else {})]
    if len(kinds) != 1 or not isinstance(spec[kinds[0]], str):
        raise _fail(
            where,
            'give a generator or method name, or a table { generator = "cvae", ... } / '
            '{ method = "classical" }',
        )
    kind = kinds[0]
    name = spec[kind]
    params = {k: v for k, v in spec.items() if k != kind}
    if kind == "method":
        if name not in _METHODS or name == "none":
            usable = sorted(m for m in _METHODS if m != "none")
            raise _fail(f"{where}.method", f"unknown method {name!r}; available: {usable}")
        check_params(_METHODS[name], params, where, skip=("train", "seed", "device"))
        return MethodSource(name, params, seed=seed, device=device)
    if name not in list_generators():
        raise _fail(
            f"{where}.generator",
            f"unknown generator {name!r}; available: {', '.join(list_generators())}",
        )
    validate_method(name, params)  # the same checks as a generator method of a grid
    return create_generator(name, seed=seed, device=device, verbose=False, **params)


@register_task("anomaly")
class AnomalyTask:
    """One-class anomaly detection: fit on one class, flag every other class in the test split.

    Settings are the ``[anomaly]`` table: one setting per normal class. Methods are anomaly
    detectors (:func:`synthaug.anomaly.list_detectors`), named directly or through a
    ``detector = "..."`` key, with their parameters; ``augment_with`` takes a generator name or
    a table ``{ generator = "cvae", ... }`` for synthetic normal samples. The report adds the
    mean over normal classes (per seed, then mean ± 95% CI across seeds), as the one-class
    protocol reports it.
    """

    settings_table = "anomaly"
    uses_classifiers = False
    baselines = ("pca", "knn")
    example = '["pca", "knn", "vae"]'
    reported = ("auroc", "auprc")
    best_is_highest = reported
    mean_over_settings = "mean over normal classes"

    @staticmethod
    def parse_settings(table: Any, dataset: Callable[[], ImageDataset]) -> list[dict[str, Any]]:
        from synthaug.bench._config import _check_keys

        _check_keys(table, _ANOMALY_KEYS, "anomaly")
        n_normal = table.get("n_normal")
        if n_normal is not None and (not _is_int(n_normal) or n_normal < 2):
            raise _fail("anomaly.n_normal", f"must be an integer >= 2, got {n_normal!r}")
        per_class = table.get("per_anomaly_class", False)
        if not isinstance(per_class, bool):
            raise _fail("anomaly.per_anomaly_class", f"must be true or false, got {per_class!r}")
        classes = dataset().classes
        wanted = table.get("normal_classes", "all")
        if wanted == "all":
            wanted = list(classes)
        if not isinstance(wanted, list) or not wanted:
            raise _fail(
                "anomaly.normal_classes", f'give "all" or a list of classes, got {wanted!r}'
            )
        if len(classes) < 2:
            raise _fail("dataset", "the one-class protocol needs at least two classes")
        settings = []
        for c in wanted:
            if _is_int(c) and 0 <= c < len(classes):
                name = classes[c]
            elif isinstance(c, str) and c in classes:
                name = c
            else:
                raise _fail(
                    "anomaly.normal_classes", f"{c!r} is not a label or class name of {classes}"
                )
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
        if len({s["label"] for s in settings}) != len(settings):
            raise _fail("anomaly.normal_classes", "a class appears twice")
        return settings

    @staticmethod
    def validate_method(name: str, params: dict[str, Any]) -> None:
        build_detector(name, params, seed=0, device="cpu")

    @classmethod
    def reported_metrics(cls, metrics: list[dict[str, Any]]) -> tuple[str, ...]:
        """``reported`` plus the per-anomaly-class AUROCs when the config asked for them."""
        extra = dict.fromkeys(k for m in metrics for k in m if k.startswith("auroc["))
        return (*cls.reported, *extra)

    def run(self, cell: dict[str, Any], dataset: ImageDataset, timings: dict[str, float]) -> dict:
        from synthaug.anomaly import evaluate_one_class

        seed = cell["seed"]
        setting = cell["anomaly"]
        with timed(timings, "split"):
            train, test = dataset.split(cell["split"]["test_size"], seed=seed)
        detector = build_detector(
            cell["method"], cell["method_params"], seed=seed, device=cell["device"]
        )
        scored: dict[str, float] = {}
        with timed(scored, "fit_and_score"):
            record = evaluate_one_class(
                detector,
                train,
                test,
                setting["normal_class"],
                seed=seed,
                n_normal=setting["n_normal"],
                per_anomaly_class=setting["per_anomaly_class"],
            )
        timings["detector_fit"] = record.pop("fit_seconds")
        timings["score"] = scored["fit_and_score"] - timings["detector_fit"]
        for key in ("normal_class", "seed"):
            record.pop(key)
        return record
