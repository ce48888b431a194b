"""Experiments that measure what synthetic data is worth: the demo and the benchmark harness."""

from synthaug.bench._config import BenchConfig, load_config, parse_config
from synthaug.bench._demo import format_table, run_demo, summarize
from synthaug.bench._medical_demo import (
    format_medical_table,
    lesion_scores,
    medical_generator_name,
    run_medical_demo,
)
from synthaug.bench._plots import save_sample_grid
from synthaug.bench._registry import (
    list_classifiers,
    list_datasets,
    list_methods,
    list_tasks,
    register_classifier,
    register_dataset,
    register_method,
    register_task,
)
from synthaug.bench._report import mean_ci, paired_gain, summarize_results, write_report
from synthaug.bench._runner import read_results, run_bench, run_cell

# Register the built-in methods, data sets, classifiers and task types.
from synthaug.bench import _methods, _tasks  # noqa: E402, F401  isort: skip

__all__ = [
    "BenchConfig",
    "format_medical_table",
    "format_table",
    "lesion_scores",
    "list_classifiers",
    "list_datasets",
    "list_methods",
    "list_tasks",
    "load_config",
    "mean_ci",
    "medical_generator_name",
    "paired_gain",
    "parse_config",
    "read_results",
    "register_classifier",
    "register_dataset",
    "register_method",
    "register_task",
    "run_bench",
    "run_cell",
    "run_demo",
    "run_medical_demo",
    "save_sample_grid",
    "summarize",
    "summarize_results",
    "write_report",
]
