"""Arguments of ``synthaug report`` (the work: :mod:`synthaug.cli._report`)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    report = sub.add_parser(
        "report",
        help="write report.md/.csv/.tex and plots/ for a benchmark folder",
        description="Summarize DIR/results.jsonl: mean ± 95%% CI per metric, paired Wilcoxon "
        "tests against 'none' and 'classical', best method in bold, plots.",
    )
    report.add_argument("dir", metavar="DIR", help="folder written by `synthaug bench`")
    return report
