"""Arguments of ``synthaug grid`` (the work: :mod:`synthaug.cli._grid`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.cli._options import (
    DATA_HELP,
    FIGURE_SUFFIXES,
    VOLUMES_HELP,
    add_data_arguments,
    add_device_option,
    add_seed_option,
    is_volume_path,
)
from synthaug.cli._types import positive_int


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "grid",
        help="save a labelled grid of samples (one row per class), or a slice montage of volumes",
        description="Save a grid of samples, one labelled row per class; with --data, real "
        "images are shown to the left of the synthetic ones. Given volumes instead of a "
        "model, save a slice montage: one row per volume (the first --per-class of each "
        "class), --slices evenly spaced slices of it, its label map outlined in red.",
    )
    p.add_argument(
        "model",
        metavar="MODEL_OR_VOLUMES",
        help=f"a model saved by 'synthaug train' (.safetensors), or volumes: {VOLUMES_HELP}",
    )
    p.add_argument("--out", required=True, help="figure file (.png, .pdf or .svg)")
    p.add_argument(
        "--per-class",
        type=positive_int,
        default=None,
        help="samples per row (default: 8); for volumes, volumes per class (default: 4)",
    )
    p.add_argument(
        "--slices",
        type=positive_int,
        default=None,
        help="volumes only: evenly spaced slices shown per volume (default: 5)",
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
    if is_volume_path(args.model):
        if args.data is not None:
            args.parser.error(
                "--data shows real images beside a model's samples; a volume montage shows "
                "the volumes themselves: drop --data"
            )
        args.per_class = 4 if args.per_class is None else args.per_class
        args.slices = 5 if args.slices is None else args.slices
    else:
        if args.slices is not None:
            args.parser.error("--slices is for a montage of volumes, not a model's samples")
        args.per_class = 8 if args.per_class is None else args.per_class
