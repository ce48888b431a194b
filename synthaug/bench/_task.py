"""What a benchmark task is: the ``Task`` protocol the runner types against, and the ``Cell``,
``CellContext`` and ``TaskResult`` types that go in and out of one grid cell.

A task type is one class registered in :data:`TASKS`. The runner reads only what the
:class:`Task` protocol declares; :class:`BaseTask` gives every optional part a default, so a
new task states only what differs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from synthaug._params import configure
from synthaug.bench._resampling import (
    RANDOM_SPLITS,
    REPEATED_KFOLD,
    data_seed,
    resampling_of,
)
from synthaug.data import DATASETS, ImageDataset, select_pool
from synthaug.errors import DataFileError, InvalidDataError, InvalidParameterError
from synthaug.metrics import CLASSIFIERS
from synthaug.registry import Registry

TASKS: Registry = Registry("task")
"""Task types by name: ``@TASKS.register("classification")`` on a :class:`Task` class."""

# A task that trains no downstream classifier still has the axis, with this one entry.
NO_CLASSIFIER = "-"

# The metric a cell records so that the report can tell a best method named from a test class
# too small to measure it (see ``smallest_class``).
SMALLEST_TEST_CLASS = "smallest_test_class"

Setting = dict[str, Any]
"""One setting of a grid: ``{"label": "ratio=0.1", <settings table>: {...payload...}}``."""


@dataclass(frozen=True)
class DatasetRef:
    """The config's data set as a task sees it when it reads its settings.

    Attributes
    ----------
    name : str
        The registered name (:data:`~synthaug.data.DATASETS`).
    params : dict
        The loader's parameters from ``[dataset]`` (paths made absolute).
    pool : str
        ``"evaluation"``, ``"development"`` or ``"all"`` (:func:`~synthaug.data.select_pool`).

    Calling it loads the data set (cached per process); what the loader refuses (a parameter
    value, a file, the data) raises its error under the ``dataset`` key.
    """

    name: str
    params: dict[str, Any]
    pool: str = "all"

    def __call__(self) -> ImageDataset:
        try:
            return load_dataset({"name": self.name, "params": self.params, "pool": self.pool})
        except (InvalidParameterError, InvalidDataError, DataFileError) as exc:
            if type(exc).__module__ != InvalidDataError.__module__:
                raise  # a plugin's own error type: its constructor may take other arguments
            # The loader's message, under the config key its parameters come from.
            raise type(exc)(f"dataset: {exc}").with_traceback(exc.__traceback__) from None


@dataclass(frozen=True)
class Cell:
    """One cell of a grid: a setting, a method, a classifier and a seed; run independently.

    Its JSON form (:meth:`to_dict`) is what results record, and its hash is :attr:`cell_id`,
    so a cell whose inputs did not change is never run twice.

    Attributes
    ----------
    task : str
        The registered task type.
    dataset : dict
        ``{"name": registered data set, "params": {...}, "pool": "evaluation"}``.
    split : dict
        The resampling protocol (:mod:`~synthaug.bench._resampling`), e.g.
        ``{"protocol": "repeated-kfold", "folds": 5}`` or, for random splits (recorded
        without their name), ``{"test_size": 0.4}``; tasks split through
        :func:`split_data`. A calibration study may add ``"data_seed"`` to hold the data
        fixed while the seed of training varies; no config writes it.
    setting : str
        The setting's label (``"ratio=0.1"``).
    settings_table : str
        The task's settings table (``"imbalance"``); the payload is recorded under this name.
    settings : dict
        The setting's payload, as the task's ``parse_settings`` made it.
    method, method_params : str, dict
        The method and its parameters from ``[methods]``.
    classifier, classifier_params : str, dict
        The downstream classifier (``"-"`` for tasks that train none) and its parameters.
    seed : int
    device : str
        The config's device (``"cpu"``, ``"auto"``, ``"cuda:0"``).
    """

    task: str
    dataset: dict[str, Any]
    split: dict[str, Any]
    setting: str
    settings_table: str
    settings: dict[str, Any]
    method: str
    method_params: dict[str, Any]
    classifier: str
    classifier_params: dict[str, Any]
    seed: int
    device: str

    def to_dict(self) -> dict[str, Any]:
        """The cell as recorded in ``results.jsonl`` (without its id)."""
        return {
            "task": self.task,
            "dataset": self.dataset,
            "split": self.split,
            "setting": self.setting,
            self.settings_table: self.settings,
            "method": self.method,
            "method_params": self.method_params,
            "classifier": self.classifier,
            "classifier_params": self.classifier_params,
            "seed": self.seed,
            "device": self.device,
        }

    @property
    def cell_id(self) -> str:
        """Hash of :meth:`to_dict`: everything that decides the cell's result."""
        return stable_hash(self.to_dict())


@dataclass
class CellContext:
    """What the runner hands a task besides the cell.

    Attributes
    ----------
    data : Any
        What the task's ``load(cell)`` returned (by default the cell's data set).
    device : str
        The cell's device, resolved (``"cpu"`` or ``"cuda:N"``).
    workdir : Path
        A folder of this cell's own for files it keeps (DICOM exports, say); created by the
        task when it writes. On Ray it is a temporary folder on the worker's machine: its
        files travel back with the result and the driver writes them under ``DIR/cells/``.
    timings : dict of str to float
        Seconds per phase; :meth:`timed` adds to it.
    """

    data: Any
    device: str
    workdir: Path
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the wall time of the block to ``timings[phase]`` (seconds)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - t0


@dataclass
class TaskResult:
    """What one cell produced.

    Attributes
    ----------
    metrics : dict
        Metric name to value (numbers, or short strings such as a chosen model's name).
        ``smallest_test_class`` (:func:`smallest_class` of the test set), when recorded, lets
        the report flag a best method named from a test class of fewer than 10 items.
    samples : dict of str to numpy.ndarray, optional
        Example images for the report's sample grids: ``real_images``, ``real_labels``,
        ``synthetic_images``, ``synthetic_labels`` and ``classes``
        (see :func:`example_images`).
    """

    metrics: dict[str, Any]
    samples: dict[str, np.ndarray] | None = None


@runtime_checkable
class Task(Protocol):
    """A task type: what one grid cell does and how its part of the config is read.

    Class attributes
    ----------------
    settings_table : str
        The config table holding the task's settings (``"imbalance"``).
    uses_classifiers : bool
        Whether cells cross the ``[classifiers]`` axis.
    baselines : tuple of str
        Methods every other method is compared with, when the config has them.
    references : tuple of str
        Methods shown for reference but never named the best (the real data of TSTR).
    example : str
        A methods list for error messages.
    reported : tuple of str
        The metrics of the tables; the first one ranks methods.
    best_is_highest : tuple of str
        Metrics whose highest mean is marked best (per-class variants such as
        ``auroc[medium]`` follow their base metric).
    chance_at_half : tuple of str
        Ranking scores in [0, 1] with 0.5 at chance (AUROC; per-class variants follow their
        base metric): the report flags a mean below 0.5 whose 95% interval excludes 0.5 as an
        inverted score. A cell may record ``se_<metric>``, the score's standard error over
        test samples, for the interval of a single seed.
    mean_over_settings : str or None
        The label of a per-seed mean across settings that the report adds (the one-class
        protocol's "mean over normal classes"), or None.
    protocols : tuple of str
        The resampling protocols the task can run (``[split] protocol``), its default first.
    """

    settings_table: ClassVar[str]
    uses_classifiers: ClassVar[bool]
    baselines: ClassVar[tuple[str, ...]]
    references: ClassVar[tuple[str, ...]]
    example: ClassVar[str]
    reported: ClassVar[tuple[str, ...]]
    best_is_highest: ClassVar[tuple[str, ...]]
    chance_at_half: ClassVar[tuple[str, ...]]
    mean_over_settings: ClassVar[str | None]
    protocols: ClassVar[tuple[str, ...]]

    def parse_settings(self, table: Any, dataset: DatasetRef) -> list[Setting]:
        """The settings of the task's table; ``dataset`` names the config's data set and
        ``dataset()`` loads it.

        Errors name the bad key (``imbalance.ratios: ...``).
        """
        ...

    def validate_method(self, name: str, params: dict[str, Any]) -> None:
        """Raise for a method the task cannot run, naming the config key."""
        ...

    def reported_metrics(self, metrics: list[dict[str, Any]]) -> tuple[str, ...]:
        """The metrics the tables show, given every cell's metrics."""
        ...

    def load(self, cell: Cell) -> Any:
        """The data a cell runs on (it becomes ``CellContext.data``)."""
        ...

    def run(self, cell: Cell, ctx: CellContext) -> TaskResult:
        """Run one cell."""
        ...

    def applies(self, method: str, params: dict[str, Any], classifier: str) -> bool:
        """Whether the grid has a cell for ``method`` with ``classifier`` (a method that
        changes the classifier's training needs a classifier with those parameters)."""
        ...

    def is_free_baseline(self, method: str, params: dict[str, Any]) -> bool:
        """Whether ``method`` is a free baseline (no generator; not the ``none`` row nor a
        reference): the report names the best of them per table and tests every other
        method against it."""
        ...

    def fit_group(self, cell: Cell) -> str | None:
        """A key shared by the cells that reuse one generator fit (same data, seed and
        generator), so that the runner gives them to one worker process, where the fit is
        made once; None for a cell that fits no generator."""
        ...

    def test_fraction(self, cell: dict[str, Any]) -> float | None:
        """The share of the data each seed holds out for testing when seeds re-split one
        data set (their training sets overlap), for the corrected t of the report; None when
        every seed draws fresh data. ``cell`` is the cell as recorded (:meth:`Cell.to_dict`)."""
        ...


class BaseTask:
    """Defaults for the optional parts of :class:`Task`; subclass it for a new task type.

    A subclass sets ``settings_table``, ``example`` and ``reported`` and implements
    ``parse_settings``, ``validate_method`` and ``run``.
    """

    uses_classifiers: ClassVar[bool] = True
    baselines: ClassVar[tuple[str, ...]] = ()
    references: ClassVar[tuple[str, ...]] = ()
    chance_at_half: ClassVar[tuple[str, ...]] = ()
    mean_over_settings: ClassVar[str | None] = None
    protocols: ClassVar[tuple[str, ...]] = (RANDOM_SPLITS, REPEATED_KFOLD)

    @property
    def best_is_highest(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.reported  # type: ignore[attr-defined]

    def reported_metrics(self, metrics: list[dict[str, Any]]) -> tuple[str, ...]:
        return tuple(self.reported)  # type: ignore[attr-defined]

    def load(self, cell: Cell) -> Any:
        return load_dataset(cell.dataset)

    def applies(self, method: str, params: dict[str, Any], classifier: str) -> bool:
        return True

    def is_free_baseline(self, method: str, params: dict[str, Any]) -> bool:
        return False

    def fit_group(self, cell: Cell) -> str | None:
        return None

    def test_fraction(self, cell: dict[str, Any]) -> float | None:
        return resampling_of(cell.get("split", {}), self.protocols).test_fraction


def split_indices(cell: Cell, data: ImageDataset) -> tuple[np.ndarray, np.ndarray]:
    """The sorted ``(train, test)`` item indices of ``cell``'s part of its protocol."""
    protocol = resampling_of(cell.split, TASKS.get(cell.task).protocols)
    return protocol.indices(data, data_seed(cell.split, cell.seed))


def split_data(cell: Cell, data: ImageDataset) -> tuple[ImageDataset, ImageDataset]:
    """``cell``'s ``(train, test)`` parts of ``data`` under the config's resampling protocol
    (a random split, or one fold of one repeat of a k-fold)."""
    train_idx, test_idx = split_indices(cell, data)
    return data.subset(train_idx), data.subset(test_idx)


def smallest_class(dataset: ImageDataset) -> int:
    """Items in the smallest class of ``dataset`` (0 when a class is absent from it)."""
    return min(dataset.class_counts().values(), default=0)


def get_task(name: str) -> Task:
    """An instance of the task type registered as ``name``."""
    return TASKS.get(name)()


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short SHA-256 of ``obj``'s canonical JSON: same content, same hash, on any machine."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, params_json: str) -> ImageDataset:
    data = DATASETS.create(name, **json.loads(params_json))
    if not isinstance(data, ImageDataset):
        raise InvalidDataError(
            f"dataset {name!r} loader returned {type(data).__name__}, not an ImageDataset"
        )
    return data


def load_dataset(spec: dict[str, Any]) -> ImageDataset:
    """Load a cell's data set (cached per process: many cells share one data set).

    ``spec["pool"]`` picks the part (:func:`~synthaug.data.select_pool`): ``"evaluation"``
    for reported grids (a config's default), ``"development"`` for tuning, ``"all"`` (the
    default of a spec without the key) for the whole data set.
    """
    data = _load_cached(spec["name"], json.dumps(spec.get("params", {}), sort_keys=True))
    return _pool_cached(data, spec.get("pool", "all"))


@functools.lru_cache(maxsize=4)
def _pool_cached(data: ImageDataset, pool: str) -> ImageDataset:
    return select_pool(data, pool)


def classifier_name(name: str, params: dict[str, Any]) -> str:
    """The registered classifier of a ``[classifiers]`` entry: its ``classifier = "..."`` key,
    else the entry's own name (``resnet-500 = { classifier = "resnet", steps = 500 }``)."""
    return params.get("classifier", name)


def build_classifier(cell: Cell, device: str) -> Any:
    """The cell's unfitted downstream classifier, with the cell's seed and device."""
    params = {k: v for k, v in cell.classifier_params.items() if k != "classifier"}
    clf = CLASSIFIERS.create(classifier_name(cell.classifier, cell.classifier_params), **params)
    configure(clf, seed=cell.seed, device=device)
    return clf


def example_images(
    train: ImageDataset, augmented: ImageDataset, per_class: int = 8
) -> dict[str, np.ndarray]:
    """Up to ``per_class`` real and synthetic training images per class, for the report.

    ``augmented`` holds ``train``'s samples first, then the synthetic ones.
    """
    real_idx, synth_idx = [], []
    n_real = len(train)
    for c in range(train.n_classes):
        real_idx.extend(np.flatnonzero(train.labels.numpy() == c)[:per_class])
        synth = np.flatnonzero(augmented.labels[n_real:].numpy() == c)[:per_class] + n_real
        synth_idx.extend(synth)
    return {
        "real_images": train.images[real_idx].numpy(),
        "real_labels": train.labels[real_idx].numpy(),
        "synthetic_images": augmented.images[synth_idx].numpy(),
        "synthetic_labels": augmented.labels[synth_idx].numpy(),
        "classes": np.array(train.classes),
    }
