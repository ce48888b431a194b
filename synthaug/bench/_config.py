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

    [dataset]
    name = "digits"

    [imbalance]
    minority_classes = [5, 6, 7, 8, 9]
    ratios = [0.1, 0.02]

    [split]
    protocol = "repeated-kfold"   # or "random-splits" (test_size = 0.4) with seeds = N
    folds = 5
    repeats = 2

    [classifiers]
    logreg = {}
    cnn = { epochs = 30 }

    [methods]
    none = {}
    smote = { k_neighbors = 5 }
    cvae = { epochs = 150 }
    "cvae+classical" = { cvae = { epochs = 150 } }

    [quick]            # merged over the rest by --quick
    split.repeats = 1
    classifiers.cnn = { epochs = 10 }
"""

from __future__ import annotations

import copy
import inspect
import os
import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path, PurePath
from typing import Any

from synthaug._params import Estimator, seed_like, validate_params
from synthaug.bench._resampling import (
    RANDOM_SPLITS,
    REPEATED_KFOLD,
    RESAMPLING,
    FreshDraws,
    RandomSplits,
    RepeatedKFold,
)
from synthaug.bench._task import (
    NO_CLASSIFIER,
    TASKS,
    Cell,
    DatasetRef,
    Setting,
    Task,
    classifier_name,
    get_task,
    stable_hash,
)
from synthaug.data import DATASETS, POOLS
from synthaug.errors import DataFileError, InvalidParameterError, SynthaugError
from synthaug.metrics import CLASSIFIERS
from synthaug.registry import Registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

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
_SPLIT_KEYS = ("protocol", "test_size", "folds", "repeats")
# Seeds of a config that names none (random splits, fresh draws).
DEFAULT_SEEDS = 5
# The classifier of a config without [classifiers]: the residual CNN for 1,000 Adam steps.
DEFAULT_STEPS = 1000
# Parameters the harness sets per cell; a config may not set them.
HARNESS_PARAMS = ("seed", "device", "verbose")
# Loader parameters only a task may set (a loader then returns (data, masks)).
_TASK_LOADER_PARAMS = ("return_masks",)
# More seeds than this (or repeats x folds) would never finish: refused before the list of
# seeds, and of cells, is made.
MAX_SEEDS = 100_000


def _top_keys() -> tuple[str, ...]:
    """Keys a config may have: the common ones, every task's settings table, and ``quick``."""
    tables = tuple(dict.fromkeys(TASKS.get(n).settings_table for n in TASKS.list()))
    return (*_COMMON_KEYS, *tables, "quick")


@dataclass
class BenchConfig:
    """A validated benchmark grid (build it with :func:`load_config` or :func:`parse_config`)."""

    name: str
    task: str
    seeds: list[int]
    device: str
    dataset: dict[str, Any]
    settings: list[Setting]
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

    def cells(self) -> list[Cell]:
        """Every cell of the grid, seed-major so that early results already compare methods."""
        task = get_task(self.task)
        table = task.settings_table
        return [
            Cell(
                task=self.task,
                dataset=self.dataset,
                split=self.split,
                setting=setting["label"],
                settings_table=table,
                settings=setting[table],
                method=method,
                method_params=method_params,
                classifier=clf,
                classifier_params=clf_params,
                seed=seed,
                device=self.device,
            )
            for seed in self.seeds
            for setting in self.settings
            for method, method_params in self.methods.items()
            for clf, clf_params in self.classifiers.items()
            if task.applies(method, method_params, classifier_name(clf, clf_params))
        ]


def load_config(path: str | Path, *, quick: bool = False, tune: bool = False) -> BenchConfig:
    """Read and validate a TOML grid; ``quick`` merges its ``[quick]`` table over the rest;
    ``tune`` runs it on the development pool (``[dataset] pool = "development"``).

    Examples
    --------
    >>> cfg = load_config("benchmarks/digits_imbalanced.toml", quick=True)  # doctest: +SKIP
    >>> len(cfg.cells())  # doctest: +SKIP
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"cannot read benchmark config {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidParameterError(
            f"{path}: not valid TOML: TOML files are UTF-8 ({exc})"
        ) from exc
    try:
        data = tomllib.loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError derives from ValueError
        raise InvalidParameterError(f"{path}: not valid TOML: {exc}") from exc
    if tune:
        data.setdefault("dataset", {})
        if isinstance(data["dataset"], dict):
            data["dataset"]["pool"] = "development"
    try:
        return parse_config(data, quick=quick, source=str(path), base=path.absolute().parent)
    except SynthaugError as exc:
        if type(exc).__module__ != SynthaugError.__module__:
            raise  # a plugin's own error type: its constructor may take other arguments
        # The key is in front already; say which file, for a user juggling several configs.
        raise type(exc)(f"{exc} (in {path})").with_traceback(exc.__traceback__) from None


def bundled_config(name: str) -> dict[str, Any]:
    """The parsed TOML of a config shipped inside synthaug (``"digits_demo"``,
    ``"medical_demo"``), to adjust and pass to :func:`parse_config`.

    Examples
    --------
    >>> data = bundled_config("digits_demo")
    >>> data["methods"]["cvae"]
    {'epochs': 150}
    """
    folder = files("synthaug.bench") / "configs"
    names = sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))
    if name not in names:
        raise InvalidParameterError(f"no bundled config {name!r}; bundled: {', '.join(names)}")
    return tomllib.loads((folder / f"{name}.toml").read_text())


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in, tables recursively (neither is changed)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def fail(where: str, msg: str) -> InvalidParameterError:
    """The error for a bad config value: ``where`` is the key (``imbalance.ratios``)."""
    return InvalidParameterError(f"{where}: {msg}")


def check_keys(table: Any, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    """``table`` if it is a table holding only ``allowed`` keys; else an error naming the key."""
    if not isinstance(table, dict):
        raise fail(where, f"must be a table, got {type(table).__name__}")
    for key in table:
        if key not in allowed:
            prefix = f"{where}." if where != "config" else ""
            raise fail(f"{prefix}{key}", f"unknown key; allowed: {', '.join(allowed)}")
    return table


def check_keywords(
    accepted: list[str] | None, params: dict[str, Any], where: str, *, skip: tuple[str, ...] = ()
) -> None:
    """Raise if ``params`` holds a keyword outside ``accepted`` (or in ``skip``), naming it."""
    if accepted is None:
        return
    for key in params:
        if key not in accepted or key in skip:
            usable = [n for n in accepted if n not in skip]
            raise fail(
                f"{where}.{key}", f"unknown parameter; allowed: {', '.join(usable) or '(none)'}"
            )


def check_estimator(registry: Registry, name: str, params: dict[str, Any], where: str) -> None:
    """Build ``name`` from ``registry`` with ``params`` as a cell will, and check its parameter
    rules (an :class:`~synthaug.params.Estimator`'s ``check_params``); a bad value is an error
    naming ``where``, the config key, instead of a failure in every cell."""
    try:
        estimator = registry.create(name, **params)
        check = getattr(estimator, "check_params", None)
        if check is not None:
            check()
    except InvalidParameterError as exc:
        raise fail(where, str(exc)) from None


def check_classifier_values(params: dict[str, Any], where: str) -> None:
    """Check values a method sets on the cells' classifiers (a training method's ``mixup``)
    against the rules of every registered classifier that declares them."""
    for name in CLASSIFIERS.list():
        entry = CLASSIFIERS.get(name)
        if not (isinstance(entry, type) and issubclass(entry, Estimator)):
            continue
        declared = entry.parameters()
        rules = {k: declared[k].rule for k in params if k in declared and declared[k].rule}
        try:
            validate_params(entry.__name__, params, rules)
        except InvalidParameterError as exc:
            raise fail(where, str(exc)) from None


def _without(params: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in keys}


def lookup(registry: Registry, name: Any, where: str) -> Any:
    """``registry.get(name)``, with the config key in front of an unknown name's error."""
    try:
        return registry.get(name)
    except InvalidParameterError as exc:
        raise fail(where, str(exc)) from None


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _params_table(value: Any, where: str) -> dict[str, dict[str, Any]]:
    """``[a, b]`` or ``{a = {...}, b = {...}}`` -> ``{a: {...}, b: {...}}``."""
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise fail(where, "a list of names must hold strings only")
        if len(set(value)) != len(value):
            raise fail(where, "a name appears twice")
        value = {v: {} for v in value}
    if not isinstance(value, dict) or not value:
        raise fail(where, "give at least one name, as a list or as a table of parameter tables")
    for name, params in value.items():
        if not isinstance(params, dict):
            raise fail(f"{where}.{name}", f"must be a table of parameters, got {params!r}")
    return value


def _parse_seeds(seeds: Any) -> list[int]:
    if seeds is None:
        seeds = DEFAULT_SEEDS
    if is_int(seeds):
        if seeds < 1:
            raise fail("seeds", f"must be >= 1, got {seeds}")
        _check_seed_count(seeds, "seeds")
        return list(range(seeds))
    # Each seed is checked by the rule every seed parameter of synthaug has (the range
    # torch's generators take; scikit-learn and numpy's legacy generator get the low 32 bits).
    if isinstance(seeds, list) and seeds and all(seed_like.inner.accepts(s) for s in seeds):
        if len(set(seeds)) != len(seeds):
            raise fail("seeds", "a seed appears twice")
        _check_seed_count(len(seeds), "seeds")
        return list(seeds)
    raise fail(
        "seeds",
        f"must be a count >= 1 or a list of seeds, each {seed_like.inner}; got {seeds!r}",
    )


def _check_seed_count(n: int, where: str) -> None:
    if n > MAX_SEEDS:
        raise fail(
            where,
            f"{n:,} seeds would never finish (at most {MAX_SEEDS:,}); a reported grid uses 5 to 50",
        )


def parse_split(table: Any, seeds: Any, task: Task) -> tuple[dict[str, Any], list[int]]:
    """The ``[split]`` table (the resampling protocol) and the grid's seeds.

    ``protocol`` is one of the task's protocols (its first by default): ``random-splits``
    takes ``test_size`` (default 0.4) and the top-level ``seeds``; ``repeated-kfold`` takes
    ``folds`` (default 5) and ``repeats`` (default 10), which make its seeds (``repeats x
    folds`` of them: seed ``s`` is fold ``s % folds`` of repeat ``s // folds``), so a config
    with it gives no ``seeds``; ``fresh-draws`` takes nothing. Returns the protocol as cells
    record it and the seeds.
    """
    split = check_keys(table, _SPLIT_KEYS, "split")
    protocols = task.protocols
    name = split.get("protocol", protocols[0])
    if name not in protocols:
        known = [n for n in RESAMPLING.list() if n not in protocols]
        why = f" ({', '.join(repr(n) for n in known)} do not apply to it)" if known else ""
        raise fail(
            "split.protocol",
            f"{name!r} is not a protocol of this task; use "
            + " or ".join(repr(p) for p in protocols)
            + why,
        )
    own = {RANDOM_SPLITS: ("test_size",), REPEATED_KFOLD: ("folds", "repeats")}.get(name, ())
    for key in _SPLIT_KEYS[1:]:
        if key in split and key not in own:
            raise fail(f"split.{key}", f"not used by protocol {name!r}; remove it")
    if name == RANDOM_SPLITS:
        test_size = split.get("test_size", 0.4)
        if (
            isinstance(test_size, bool)
            or not isinstance(test_size, (int, float))
            or not 0 < test_size < 1
        ):
            raise fail("split.test_size", f"must be a number in (0, 1), got {test_size!r}")
        return RandomSplits(float(test_size)).to_dict(), _parse_seeds(seeds)
    if name == REPEATED_KFOLD:
        folds, repeats = split.get("folds", 5), split.get("repeats", 10)
        if not is_int(folds) or folds < 2:
            raise fail("split.folds", f"must be an integer >= 2, got {folds!r}")
        if not is_int(repeats) or repeats < 1:
            raise fail("split.repeats", f"must be an integer >= 1, got {repeats!r}")
        if seeds is not None:
            raise fail(
                "seeds",
                f"repeated k-fold makes its own seeds (repeats x folds = {repeats * folds}); "
                "remove seeds and set split.repeats",
            )
        _check_seed_count(repeats * folds, "split.repeats")
        return RepeatedKFold(int(folds)).to_dict(), list(range(repeats * folds))
    return FreshDraws().to_dict(), _parse_seeds(seeds)


def parse_config(
    data: dict[str, Any],
    *,
    quick: bool = False,
    source: str = "<dict>",
    base: str | Path | None = None,
) -> BenchConfig:
    """Validate a config given as a dict (the parsed TOML); errors name the bad key.

    ``base`` is the folder that relative paths of ``[dataset]`` are read from:
    :func:`load_config` passes the config file's folder; by default it is the current folder.
    The data set is loaded (or, by the ``lesion`` task, probed) here, so that the classes and
    counts the task's settings name are checked against it before any cell runs.
    """
    top_keys = _top_keys()
    check_keys(data, top_keys, "config")
    if quick:
        over = check_keys(data.get("quick", {}), top_keys[:-1], "quick")
        data = merge({k: v for k, v in data.items() if k != "quick"}, over)

    name = data.get("name", Path(source).stem if source != "<dict>" else "bench")
    if not isinstance(name, str) or not name:
        raise fail("name", f"must be a non-empty string, got {name!r}")

    task_name = data.get("task", "classification")
    if not isinstance(task_name, str):
        raise fail("task", f"must be a string, got {task_name!r}")
    lookup(TASKS, task_name, "task")
    task = get_task(task_name)
    own_table = task.settings_table
    for other in top_keys:
        if other in data and other != own_table and other not in _COMMON_KEYS + ("quick",):
            users = [n for n in TASKS.list() if TASKS.get(n).settings_table == other]
            raise fail(
                other,
                f"only used with task = {' or '.join(repr(u) for u in users)}; this config's "
                f"task is {task_name!r}, whose settings go in [{own_table}]",
            )

    device = data.get("device", "cpu")
    if not isinstance(device, str) or device.split(":")[0] not in ("auto", "cpu", "cuda", "mps"):
        raise fail("device", f"must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")

    if "dataset" not in data:
        raise fail("dataset", 'missing; add a [dataset] table with at least name = "digits"')
    dataset = parse_dataset(data["dataset"], base)
    # The task resolves what its settings name (classes, counts per class) against the data.
    ref = DatasetRef(dataset["name"], dataset["params"], dataset["pool"])
    settings = task.parse_settings(data.get(own_table, {}), ref)

    split, seeds = parse_split(data.get("split", {}), data.get("seeds"), task)

    if task.uses_classifiers:
        classifiers = _params_table(
            data.get("classifiers", {"resnet": {"steps": DEFAULT_STEPS}}), "classifiers"
        )
        for clf, clf_params in classifiers.items():
            registered = classifier_name(clf, clf_params)
            if not isinstance(registered, str):
                raise fail(f"classifiers.{clf}.classifier", "must be a classifier name")
            lookup(
                CLASSIFIERS,
                registered,
                f"classifiers.{clf}" if registered != clf else "classifiers",
            )
            own = CLASSIFIERS.accepted_params(registered)
            accepted = None if own is None else [*own, "classifier"]
            check_keywords(accepted, clf_params, f"classifiers.{clf}", skip=("seed", "device"))
            for key in ("loss", "sampler", "mixup", "augment"):
                if key in clf_params:
                    raise fail(
                        f"classifiers.{clf}.{key}",
                        "set by the training methods (class-weighted, logit-adjusted, "
                        "balanced-online, mixup) per cell, so that every method starts from "
                        "the same classifier; remove it",
                    )
            if "steps" in (own or []) and "steps" not in clf_params:
                raise fail(
                    f"classifiers.{clf}",
                    "give steps = N, the optimiser-step budget every method gets (epochs "
                    "would give a topped-up training set more steps than the imbalanced one)",
                )
            # The classifier's own rules, now rather than in every cell.
            check_estimator(
                CLASSIFIERS, registered, _without(clf_params, "classifier"), f"classifiers.{clf}"
            )
    elif "classifiers" in data:
        raise fail("classifiers", f"task {task_name!r} trains no downstream classifier; remove it")
    else:
        classifiers = {NO_CLASSIFIER: {}}

    if "methods" not in data:
        raise fail("methods", f"missing; list the methods to compare, e.g. {task.example}")
    methods = _params_table(data["methods"], "methods")
    for method, method_params in methods.items():
        task.validate_method(method, method_params)

    baselines = data.get("baselines", [b for b in task.baselines if b in methods])
    if not isinstance(baselines, list) or not all(isinstance(b, str) for b in baselines):
        raise fail("baselines", f"must be a list of method names, got {baselines!r}")
    for b in baselines:
        if b not in methods:
            raise fail("baselines", f"{b!r} is not one of the methods ({', '.join(methods)})")

    if not quick and "quick" in data:
        # Check the reduced grid now too, so a typo in [quick] cannot wait for the smoke run.
        try:
            parse_config(data, quick=True, source=source, base=base)
        except InvalidParameterError as exc:
            text = str(exc)
            raise InvalidParameterError(
                text if text.startswith("quick") else f"quick.{text}"
            ) from None
    config = BenchConfig(
        name=name,
        task=task_name,
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
    if not config.cells():
        raise fail(
            "methods",
            f"no cell to run: none of the methods ({', '.join(methods)}) runs with any of the "
            f"classifiers ({', '.join(classifiers)}); a training method needs a classifier "
            f"that has its parameters (a sampler, mixup), such as resnet",
        )
    return config


def parse_dataset(table: Any, base: str | Path | None = None) -> dict[str, Any]:
    """The ``[dataset]`` table checked: ``{"name": ..., "params": {...}, "pool": ...}``.

    The name must be registered (:data:`~synthaug.data.DATASETS`) and every other key but
    ``pool`` a parameter of its loader. A loader parameter typed as a path (``root``, ``path``,
    ``labels``) that is relative is read from ``base`` (default: the current folder) and must
    exist.

    Examples
    --------
    >>> parse_dataset({"name": "phantoms", "size": 32})
    {'name': 'phantoms', 'params': {'size': 32}, 'pool': 'evaluation'}
    """
    if not isinstance(table, dict) or not isinstance(table.get("name"), str):
        raise fail("dataset.name", 'missing; give the data set\'s registered name, e.g. "digits"')
    name = table["name"]
    lookup(DATASETS, name, "dataset.name")
    params = {k: v for k, v in table.items() if k not in ("name", "pool")}
    accepted = DATASETS.accepted_params(name)
    if accepted is not None:
        usable = [p for p in accepted if p not in _TASK_LOADER_PARAMS]
        for key in params:
            if key not in usable:
                takes = f"takes {', '.join(usable)}" if usable else "takes no parameters"
                raise fail(f"dataset.{key}", f"unknown parameter; loader {name!r} {takes}")
    for key in _TASK_LOADER_PARAMS:
        if key in params:
            # A loader then returns (data, masks): only a task may ask for that.
            raise fail(f"dataset.{key}", "set by the tasks that use masks; remove it")
    pool = table.get("pool", "evaluation")
    if pool not in POOLS:
        raise fail(
            "dataset.pool",
            f"must be one of {', '.join(POOLS)}, got {pool!r} (reported grids use "
            f"'evaluation'; tuning uses 'development')",
        )
    folder = Path.cwd() if base is None else Path(base).absolute()
    for key, default in loader_paths(name).items():
        if key not in params and default is inspect.Parameter.empty:
            # Paths are the config's to give (a task sets counts and seeds, never paths).
            raise fail(
                f"dataset.{key}", f"missing; give the path loader {name!r} reads its data from"
            )
        value = params.get(key)
        # A string default of a path parameter is a keyword (dicom's labels = "folders").
        if isinstance(value, str) and value != default:
            params[key] = _existing_path(
                value, f"dataset.{key}", folder, from_file=base is not None
            )
    return {"name": name, "params": params, "pool": pool}


def loader_paths(name: str) -> dict[str, Any]:
    """The parameters of data set ``name``'s loader that name a file or folder (those typed
    :class:`pathlib.Path`), with their defaults (``inspect.Parameter.empty`` when required).

    Examples
    --------
    >>> sorted(loader_paths("dicom"))
    ['labels', 'root']
    >>> loader_paths("digits")
    {}
    """
    entry = DATASETS.get(name)
    target = entry.__init__ if inspect.isclass(entry) else entry
    try:
        hints = typing.get_type_hints(target)
        params = inspect.signature(target).parameters
    except (NameError, TypeError, ValueError):  # hints that do not resolve: no known paths
        return {}
    return {
        key: params[key].default
        for key, hint in hints.items()
        if key in params and any(_is_path_type(t) for t in (hint, *typing.get_args(hint)))
    }


def _is_path_type(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, PurePath)


def _existing_path(value: str, where: str, folder: Path, *, from_file: bool) -> str:
    """``value`` as an absolute path (a relative one read from ``folder``); it must exist.

    The absolute path is what a cell records and hashes: cells run in worker processes (and
    on Ray, on other machines) with their own current folder, and the absolute path means the
    same file in each of them. So a run resumed from any folder finds the same cell ids; a
    data folder that moved is new data to the harness, and its cells run again.
    """
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = folder / path
    path = Path(os.path.normpath(path))
    if not path.exists():
        relative = (
            f"relative paths are read from the config's folder, {folder}"
            if from_file
            else f"a config given as a dict reads relative paths from the current folder, {folder}"
        )
        raise DataFileError(f"{where}: no file or folder {path} ({relative}); give its path")
    return str(path)


def resolve_classes(values: Sequence[Any], dataset: DatasetRef, where: str) -> list[str]:
    """The class names that ``values`` (labels or class names) stand for in the config's data
    set (which this loads); an unknown name or a label out of range raises, naming ``where``,
    the value and the classes the data set has. A class named twice raises too.
    """
    classes = list(dataset().classes)
    names = []
    for value in values:
        if is_int(value) and 0 <= value < len(classes):
            names.append(classes[value])
        elif isinstance(value, str) and value in classes:
            names.append(value)
        else:
            raise fail(
                where,
                f"{value!r} is not a class of data set {dataset.name!r}, which has "
                f"{describe_classes(classes)}",
            )
    if len(set(names)) != len(names):
        raise fail(where, f"a class appears twice in {list(values)!r}")
    return names


def describe_classes(classes: Sequence[str]) -> str:
    """``labels 0-9 and names '0', '1', ...``: a data set's classes, for messages."""
    if not classes:
        return "no classes"
    shown = ", ".join(repr(c) for c in classes[:12]) + (", ..." if len(classes) > 12 else "")
    return f"labels 0-{len(classes) - 1} and names {shown}"
