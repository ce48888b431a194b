"""``synthaug report``: tables and plots of a benchmark folder."""

from __future__ import annotations

import argparse

from synthaug.bench import write_report


def register(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser(
        "report",
        help="write report.md/.csv/.tex and plots/ for a benchmark folder",
        description="Summarize DIR/results.jsonl: mean ± 95%% CI per metric, paired Wilcoxon "
        "tests against 'none' and 'classical', best method in bold, plots.",
    )
    report.add_argument("dir", metavar="DIR", help="folder written by `synthaug bench`")
    report.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    write_report(args.dir)
    return 0
