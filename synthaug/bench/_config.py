"""Benchmark grids described in TOML, validated up front.

A config names a task type, a data set, the settings of the task (for ``classification``, the
``[imbalance]`` table: ratios for chosen minority classes and/or explicit per-class count
lists; for ``anomaly``, the ``[anomaly]`` table: normal classes; for ``tstr``, the
``[privacy]`` table: privacy budgets), the split protocol, downstream classifiers (for tasks
that train one), the methods to compare and the seeds. Every cell of the grid (setting x
method x classifier x seed) is one independent task. The task type decides what its settings
table holds and which methods it accepts (see :func:`~synthaug.bench.register_task`).
``benchmarks/digits_imbalanced.toml`` is a complete example::

    task = "classification"
    seeds = 5

    [dataset]
    name = "digits"

    [imbalance]
    minority_classes = [5, 6, 7, 8, 9]
    ratios = [0.1, 0.02]

    [split]
    test_size = 0.4

    [classifiers]
    logreg = {}
    cnn = { epochs = 30 }

    [methods]
    none = {}
    smote = { k_neighbors = 5 }
    cvae = { epochs = 150 }
    "cvae+classical" = { cvae = { epochs = 150 } }

    [quick]            # merged over the rest by --quick
    seeds = 2
    classifiers.cnn = { epochs = 10 }
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthaug.errors import DataFileError, InvalidParameterError

_COMMON_KEYS = (
    "name",
    "task",
    "seeds",
    "device",
    "dataset",
    "split",
    "classifiers",
    "methods",
    "baselines",
)
_IMBALANCE_KEYS = ("minority_classes", "ratios", "counts")
_SPLIT_KEYS = ("test_size",)
# A task that trains no downstream classifier still has the axis, with this one entry.
NO_CLASSIFIER = "-"


def _top_keys() -> tuple[str, ...]:
    """Keys a config may have: the common ones, every task's settings table, and ``quick``."""
    from synthaug.bench._registry import _TASKS

    tables = tuple(dict.fromkeys(t.settings_table for t in _TASKS.values()))
    return (*_COMMON_KEYS, *tables, "quick")


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        from synthaug._utils import import_optional

        tomllib = import_optional("tomli", "all")
    return tomllib.loads(text)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short SHA-256 of ``obj``'s canonical JSON: same content, same hash, on any machine."""
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()[:length]


@dataclass
class BenchConfig:
    """A validated benchmark grid (build it with :func:`load_config` or :func:`parse_config`)."""

    name: str
    task: str
    seeds: list[int]
    device: str
    dataset: dict[str, Any]
    settings: list[dict[str, Any]]
    split: dict[str, Any]
    classifiers: dict[str, dict[str, Any]]
    methods: dict[str, dict[str, Any]]
    baselines: list[str] = field(default_factory=list)
    quick: bool = False
    source: str = "<dict>"
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything that decides the results (not where the config came from)."""
        return {
            "name": self.name,
            "task": self.task,
            "seeds": self.seeds,
            "device": self.device,
            "dataset": self.dataset,
            "settings": self.settings,
            "split": self.split,
            "classifiers": self.classifiers,
            "methods": self.methods,
            "baselines": self.baselines,
            "quick": self.quick,
        }

    @property
    def hash(self) -> str:
        """Hash of :meth:`to_dict`; recorded with every result line."""
        return stable_hash(self.to_dict(), 12)

    def cells(self) -> list[dict[str, Any]]:
        """Every cell of the grid, seed-major so that early results already compare methods.

        A cell carries its setting under the task's settings-table name (``cell["imbalance"]``
        for classification), so the task reads it where the config wrote it.
        """
        from synthaug.bench._registry import get_task

        table = get_task(self.task).settings_table
        out = []
        for seed in self.seeds:
            for setting in self.settings:
                for method, method_params in self.methods.items():
                    for clf, clf_params in self.classifiers.items():
                        cell = {
                            "task": self.task,
                            "dataset": self.dataset,
                            "split": self.split,
                            "setting": setting["label"],
                            table: setting[table],
                            "method": method,
                            "method_params": method_params,
                            "classifier": clf,
                            "classifier_params": clf_params,
                            "seed": seed,
                            "device": self.device,
                        }
                        cell["cell_id"] = stable_hash(cell)
                        out.append(cell)
        return out


def load_config(path: str | Path, *, quick: bool = False) -> BenchConfig:
    """Read and validate a TOML grid; ``quick`` merges its ``[quick]`` table over the rest.

    Examples
    --------
    >>> cfg = load_config("benchmarks/digits_imbalanced.toml", quick=True)  # doctest: +SKIP
    >>> len(cfg.cells())  # doctest: +SKIP
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DataFileError(f"cannot read benchmark config {path}: {exc.strerror}") from exc
    try:
        data = _toml_loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError derives from ValueError
        raise InvalidParameterError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, quick=quick, source=str(path))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _fail(where: str, msg: str) -> InvalidParameterError:
    return InvalidParameterError(f"{where}: {msg}")


def _check_keys(table: Any, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _fail(where, f"must be a table, got {type(table).__name__}")
    for key in table:
        if key not in allowed:
            prefix = f"{where}." if where != "config" else ""
            raise _fail(f"{prefix}{key}", f"unknown key; allowed: {', '.join(allowed)}")
    return table


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _params_table(value: Any, where: str) -> dict[str, dict[str, Any]]:
    """``[a, b]`` or ``{a = {...}, b = {...}}`` -> ``{a: {...}, b: {...}}``."""
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise _fail(where, "a list of names must hold strings only")
        if len(set(value)) != len(value):
            raise _fail(where, "a name appears twice")
        value = {v: {} for v in value}
    if not isinstance(value, dict) or not value:
        raise _fail(where, "give at least one name, as a list or as a table of parameter tables")
    for name, params in value.items():
        if not isinstance(params, dict):
            raise _fail(f"{where}.{name}", f"must be a table of parameters, got {params!r}")
    return value


def parse_config(
    data: dict[str, Any], *, quick: bool = False, source: str = "<dict>"
) -> BenchConfig:
    """Validate a config given as a dict (the parsed TOML); errors name the bad key."""
    from synthaug.bench import _methods, _tasks  # noqa: F401  (register the built-ins)
    from synthaug.bench._registry import check_params, get_classifier, get_dataset, get_task

    top_keys = _top_keys()
    _check_keys(data, top_keys, "config")
    if quick:
        over = _check_keys(data.get("quick", {}), top_keys[:-1], "quick")
        data = _merge({k: v for k, v in data.items() if k != "quick"}, over)

    name = data.get("name", Path(source).stem if source != "<dict>" else "bench")
    if not isinstance(name, str) or not name:
        raise _fail("name", f"must be a non-empty string, got {name!r}")

    task = data.get("task", "classification")
    if not isinstance(task, str):
        raise _fail("task", f"must be a string, got {task!r}")
    task_cls = get_task(task, "task")
    own_table = task_cls.settings_table
    for other in top_keys:
        if other in data and other != own_table and other not in _COMMON_KEYS + ("quick",):
            users = [n for n, t in _tasks_by_table().items() if t == other]
            raise _fail(
                other,
                f"only used with task = {' or '.join(repr(u) for u in users)}; this config's "
                f"task is {task!r}, whose settings go in [{own_table}]",
            )

    seeds = data.get("seeds", 5)
    if _is_int(seeds):
        if seeds < 1:
            raise _fail("seeds", f"must be >= 1, got {seeds}")
        seeds = list(range(seeds))
    elif isinstance(seeds, list) and seeds and all(_is_int(s) and s >= 0 for s in seeds):
        if len(set(seeds)) != len(seeds):
            raise _fail("seeds", "a seed appears twice")
    else:
        raise _fail(
            "seeds", f"must be a count >= 1 or a list of non-negative integers, got {seeds!r}"
        )

    device = data.get("device", "cpu")
    if not isinstance(device, str) or device.split(":")[0] not in ("auto", "cpu", "cuda", "mps"):
        raise _fail("device", f"must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")

    if "dataset" not in data:
        raise _fail("dataset", 'missing; add a [dataset] table with at least name = "digits"')
    ds = data["dataset"]
    if not isinstance(ds, dict) or not isinstance(ds.get("name"), str):
        raise _fail("dataset.name", 'missing; give the data set\'s registered name, e.g. "digits"')
    loader = get_dataset(ds["name"], "dataset.name")
    params = {k: v for k, v in ds.items() if k != "name"}
    from synthaug.bench._tasks import load_dataset, resolve_lazy

    check_params(resolve_lazy(loader), params, "dataset")
    dataset = {"name": ds["name"], "params": params}

    settings = task_cls.parse_settings(data.get(own_table, {}), lambda: load_dataset(dataset))

    split = _check_keys(data.get("split", {}), _SPLIT_KEYS, "split")
    test_size = split.get("test_size", 0.4)
    if (
        isinstance(test_size, bool)
        or not isinstance(test_size, (int, float))
        or not 0 < test_size < 1
    ):
        raise _fail("split.test_size", f"must be a number in (0, 1), got {test_size!r}")
    split = {"test_size": float(test_size)}

    if task_cls.uses_classifiers:
        classifiers = _params_table(data.get("classifiers", ["cnn"]), "classifiers")
        for clf, clf_params in classifiers.items():
            fn = get_classifier(clf, "classifiers")
            check_params(fn, clf_params, f"classifiers.{clf}", skip=("seed", "device"))
    elif "classifiers" in data:
        raise _fail("classifiers", f"task {task!r} trains no downstream classifier; remove it")
    else:
        classifiers = {NO_CLASSIFIER: {}}

    if "methods" not in data:
        raise _fail("methods", f"missing; list the methods to compare, e.g. {task_cls.example}")
    methods = _params_table(data["methods"], "methods")
    for method, method_params in methods.items():
        task_cls.validate_method(method, method_params)

    baselines = data.get("baselines", [b for b in task_cls.baselines if b in methods])
    if not isinstance(baselines, list) or not all(isinstance(b, str) for b in baselines):
        raise _fail("baselines", f"must be a list of method names, got {baselines!r}")
    for b in baselines:
        if b not in methods:
            raise _fail("baselines", f"{b!r} is not one of the methods ({', '.join(methods)})")

    if not quick and "quick" in data:
        # Check the reduced grid now too, so a typo in [quick] cannot wait for the smoke run.
        try:
            parse_config(data, quick=True, source=source)
        except InvalidParameterError as exc:
            text = str(exc)
            raise InvalidParameterError(
                text if text.startswith("quick") else f"quick.{text}"
            ) from None
    return BenchConfig(
        name=name,
        task=task,
        seeds=seeds,
        device=device,
        dataset=dataset,
        settings=settings,
        split=split,
        classifiers=classifiers,
        methods=methods,
        baselines=list(baselines),
        quick=quick,
        source=source,
        raw=data,
    )


def _tasks_by_table() -> dict[str, str]:
    from synthaug.bench._registry import _TASKS

    return {name: cls.settings_table for name, cls in _TASKS.items()}


def imbalance_settings(table: Any) -> list[dict[str, Any]]:
    """The settings of the ``[imbalance]`` table: one per ratio and one per count list."""
    imbalance = _check_keys(table, _IMBALANCE_KEYS, "imbalance")
    ratios = imbalance.get("ratios", [])
    counts = imbalance.get("counts", [])
    if not ratios and not counts:
        raise _fail(
            "imbalance", "give ratios = [...] (with minority_classes) and/or counts = [[...]]"
        )
    settings: list[dict[str, Any]] = []
    if not isinstance(ratios, list):
        raise _fail("imbalance.ratios", f"must be a list of numbers in (0, 1], got {ratios!r}")
    if ratios:
        minority = imbalance.get("minority_classes")
        if (
            not isinstance(minority, list)
            or not minority
            or not all(_is_int(c) or isinstance(c, str) for c in minority)
        ):
            raise _fail(
                "imbalance.minority_classes",
                f"ratios need a non-empty list of class labels or names, got {minority!r}",
            )
        for r in ratios:
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 1:
                raise _fail("imbalance.ratios", f"each ratio must be in (0, 1], got {r!r}")
            settings.append(
                {
                    "label": f"ratio={r:g}",
                    "imbalance": {"ratio": float(r), "minority_classes": minority},
                }
            )
    elif "minority_classes" in imbalance:
        raise _fail("imbalance.minority_classes", "only used with ratios; counts name every class")
    if not isinstance(counts, list) or (counts and not all(isinstance(c, list) for c in counts)):
        raise _fail(
            "imbalance.counts", "must be a list of per-class count lists, e.g. [[100, 50, 10]]"
        )
    for c in counts:
        if not c or not all(_is_int(n) and n >= 0 for n in c):
            raise _fail(
                "imbalance.counts", f"each count list holds non-negative integers, got {c!r}"
            )
        settings.append(
            {"label": "counts=" + "/".join(str(n) for n in c), "imbalance": {"counts": c}}
        )
    labels = [s["label"] for s in settings]
    if len(set(labels)) != len(labels):
        raise _fail("imbalance", "the same setting appears twice")
    return settings
