"""The benchmark harness: grids described in TOML, run resumably, reported with statistics.

A config names a task type (:data:`TASKS`), a data set, the methods (:data:`METHODS`, plus
every generator and sample source) and the seeds; every cell of the grid runs independently
and lands in ``results.jsonl``; the report gives means, confidence intervals and paired tests
against the baselines. A task type is one class following the :class:`Task` protocol.
"""

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
from synthaug.bench._report import summarize_results, write_report
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
)

# The built-in task types register themselves.
from synthaug.bench import _anomaly, _classification, _lesion, _tstr  # noqa: F401  isort: skip

__all__ = [
    "METHODS",
    "TASKS",
    "BaseTask",
    "BenchConfig",
    "Cell",
    "CellContext",
    "DatasetRef",
    "Recipe",
    "Task",
    "TaskResult",
    "TrainingMethod",
    "build_classifier",
    "build_recipe",
    "build_source",
    "bundled_config",
    "load_config",
    "load_records",
    "parse_config",
    "read_results",
    "run_bench",
    "run_cell",
    "save_loss_curves",
    "save_sample_grid",
    "summarize_results",
    "validate_method",
    "write_report",
]
