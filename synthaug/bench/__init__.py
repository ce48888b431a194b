"""The benchmark harness: grids described in TOML, run resumably, reported with statistics.

A config names a task type (:data:`TASKS`), a data set, the methods (:data:`METHODS`, plus
every generator and sample source) and the seeds; every cell of the grid runs independently
and lands in ``results.jsonl``; the report gives means, confidence intervals and paired tests
against the baselines under the resampling protocol of the config (:data:`RESAMPLING`). A
task type is one class following the :class:`Task` protocol. :func:`advise` builds and runs
a budgeted grid for a user's own data and answers whether synthetic data help on it.
"""

from synthaug.bench._advise import Advice, advise, parse_budget
from synthaug.bench._config import BenchConfig, bundled_config, load_config, parse_config
from synthaug.bench._methods import (
    METHODS,
    Recipe,
    TrainingMethod,
    build_recipe,
    build_source,
    validate_method,
)
from synthaug.bench._plots import save_loss_curves, save_sample_grid
from synthaug.bench._report import holm_families, summarize_results, write_report
from synthaug.bench._resampling import (
    RESAMPLING,
    FreshDraws,
    RandomSplits,
    RepeatedKFold,
    resampling_of,
)
from synthaug.bench._results import load_records, read_results
from synthaug.bench._runner import run_bench, run_cell
from synthaug.bench._task import (
    TASKS,
    BaseTask,
    Cell,
    CellContext,
    DatasetRef,
    Task,
    TaskResult,
    build_classifier,
    split_data,
    split_indices,
)
from synthaug.bench._volume_plots import save_volume_montage

# The built-in task types register themselves.
from synthaug.bench import _anomaly, _classification, _lesion, _segmentation, _tstr  # noqa: F401  isort: skip

__all__ = [
    "Advice",
    "METHODS",
    "RESAMPLING",
    "TASKS",
    "BaseTask",
    "BenchConfig",
    "Cell",
    "CellContext",
    "DatasetRef",
    "FreshDraws",
    "RandomSplits",
    "Recipe",
    "RepeatedKFold",
    "Task",
    "TaskResult",
    "TrainingMethod",
    "advise",
    "build_classifier",
    "build_recipe",
    "build_source",
    "bundled_config",
    "holm_families",
    "load_config",
    "load_records",
    "parse_budget",
    "parse_config",
    "read_results",
    "resampling_of",
    "run_bench",
    "run_cell",
    "save_loss_curves",
    "save_sample_grid",
    "save_volume_montage",
    "split_data",
    "split_indices",
    "summarize_results",
    "validate_method",
    "write_report",
]
