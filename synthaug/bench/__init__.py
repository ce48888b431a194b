"""Experiments that measure what synthetic data is worth: the demo and the benchmark harness."""

from synthaug.bench._demo import format_table, run_demo, summarize
from synthaug.bench._plots import save_sample_grid

__all__ = ["format_table", "run_demo", "save_sample_grid", "summarize"]
