"""Experiments that measure what synthetic data is worth: the demo and the benchmark harness."""

from synthaug.bench._demo import format_table, run_demo, summarize
from synthaug.bench._medical_demo import (
    format_medical_table,
    lesion_scores,
    medical_generator_name,
    run_medical_demo,
)
from synthaug.bench._plots import save_sample_grid

__all__ = [
    "format_medical_table",
    "format_table",
    "lesion_scores",
    "medical_generator_name",
    "run_demo",
    "run_medical_demo",
    "save_sample_grid",
    "summarize",
]
