"""``synthaug report``: tables and plots of a benchmark folder.

Arguments: :mod:`synthaug.cli._args.report`.
"""

from __future__ import annotations

import argparse

from synthaug.bench import write_report


def run(args: argparse.Namespace) -> int:
    write_report(args.dir)
    return 0
