"""Arguments of ``synthaug info`` (the work: :mod:`synthaug.cli._info`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.cli._options import FIGURE_SUFFIXES, VOLUMES_HELP, is_volume_path


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "info",
        help="describe a saved model or lesion source (family, classes, training, privacy, "
        "file digest), or volumes (shape, spacing, orientation, marking)",
        description="Check a saved model's integrity and print its family, classes with "
        "training counts, sample shape, parameters, training epochs, time and losses, "
        "privacy spent, whether the file stores training images, and the file's SHA-256 "
        "content digest. A saved lesion source (copy-paste, lesion-transplant) is described "
        "by what it samples from: its normal backgrounds and lesions, real training pixels. "
        "Given volumes instead, print each one's shape, spacing, orientation (the patient "
        "directions its columns, rows and slices point to, e.g. LPS), whether it has a label "
        "map, and how its files are marked (synthetic, derived or neither), from the headers.",
    )
    p.add_argument(
        "model",
        metavar="MODEL_OR_VOLUMES",
        help=f"a model saved by 'synthaug train' (.safetensors), or volumes: {VOLUMES_HELP}",
    )
    p.add_argument("--plot", metavar="FILE", help="also write the loss curves (.png, .pdf, .svg)")
    p.add_argument("--json", action="store_true", help="print the facts as JSON instead")
    return p


def check(args: argparse.Namespace) -> None:
    if args.plot is not None and is_volume_path(args.model):
        args.parser.error("--plot draws a model's loss curves; volumes have none: drop --plot")
    if args.plot is not None and Path(args.plot).suffix.lower() not in FIGURE_SUFFIXES:
        args.parser.error(f"--plot must end in .png, .pdf or .svg, got {args.plot}")
