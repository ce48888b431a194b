"""Arguments of ``synthaug advise`` (the work: :mod:`synthaug.cli._advise`).

``--generators`` names registered generators and lesion sources; like ``train --model`` they
are checked when the command runs (torch-free ``--help``), by :func:`synthaug.bench.advise`,
which also knows which of them fit the data.
"""

from __future__ import annotations

import argparse

from synthaug._budget import parse_budget
from synthaug.cli._options import (
    add_data_arguments,
    add_device_option,
    add_quiet_option,
    add_threads_option,
)
from synthaug.cli._types import positive_int
from synthaug.errors import InvalidParameterError


def budget(text: str) -> str:
    """A ``--budget`` value: a duration such as ``90s``, ``30m``, ``1h`` or ``1h30m``."""
    try:
        parse_budget(text)
    except InvalidParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("budget ")) from None
    return text


def names(text: str) -> list[str]:
    """A ``--generators`` value: comma-separated names."""
    out = [name.strip() for name in text.split(",") if name.strip()]
    if not out:
        raise argparse.ArgumentTypeError(f"must name at least one generator, got {text!r}")
    return out


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "advise",
        help="does synthetic data help on your data? a budgeted comparison and a verdict",
        description="Compare training as usual, the free baselines and the generators that fit "
        "your data, within a time budget: cross-validated on all but a held-out development "
        "part, the same classifier steps for every method, as many runs as the budget allows. "
        "Prints a ranked table and a verdict, and writes DIR/advice.md, DIR/advice.toml (the "
        "comparison at full scale, for 'synthaug bench') and the harness's report. Rerun with "
        "the same --out to continue (finished runs are reused; a larger --budget adds runs).",
    )
    add_data_arguments(p)
    p.add_argument(
        "--budget",
        type=budget,
        default="30m",
        metavar="DURATION",
        help="time for the runs, e.g. 90s, 30m, 1h30m; exceeded by at most one run, and "
        "counting the runs an earlier call made in --out (default: %(default)s)",
    )
    p.add_argument(
        "--out",
        default="synthaug-advice",
        metavar="DIR",
        help="folder of the advice: new, empty, or the one of an earlier call on the same data "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--generators",
        type=names,
        metavar="NAMES",
        help="comma-separated generators or lesion sources to compare, e.g. cvae,dagan "
        "(default: those that fit the data; see docs/advise.md)",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        help="training epochs of every generator (default: the shipped grids' settings)",
    )
    p.add_argument(
        "--classifier-steps",
        type=positive_int,
        default=1000,
        metavar="N",
        help="optimiser steps of the image classifier, the same for every method "
        "(default: %(default)s)",
    )
    add_threads_option(p, "torch threads (default: torch's own)")
    add_device_option(p)
    add_quiet_option(p, "progress bar")
    return p
