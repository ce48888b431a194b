"""Arguments of ``synthaug grid`` (the work: :mod:`synthaug.cli._grid`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.cli._options import (
    DATA_HELP,
    FIGURE_SUFFIXES,
    add_data_arguments,
    add_device_option,
    add_model_argument,
    add_seed_option,
)
from synthaug.cli._types import positive_int


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "grid",
        help="save a labelled grid of samples (one row per class)",
        description="Save a grid of samples, one labelled row per class; with --data, real "
        "images are shown to the left of the synthetic ones.",
    )
    add_model_argument(p)
    p.add_argument("--out", required=True, help="figure file (.png, .pdf or .svg)")
    p.add_argument(
        "--per-class", type=positive_int, default=8, help="samples per row (default: %(default)s)"
    )
    add_data_arguments(
        p,
        required=False,
        help=f"real data to show beside the samples, with the model's classes and sample shape: "
        f"{DATA_HELP}",
    )
    add_seed_option(p, "sampling")
    add_device_option(p)
    return p


def check(args: argparse.Namespace) -> None:
    out = Path(args.out)
    if out.suffix.lower() not in FIGURE_SUFFIXES:
        args.parser.error(f"--out must end in one of {', '.join(FIGURE_SUFFIXES)}, got {out}")
