"""Arguments of ``synthaug info`` (the work: :mod:`synthaug.cli._info`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.cli._options import FIGURE_SUFFIXES, add_model_argument


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "info",
        help="describe a saved model or lesion source: family, classes, training, privacy, "
        "file digest",
        description="Check a saved model's integrity and print its family, classes with "
        "training counts, sample shape, parameters, training epochs, time and losses, "
        "privacy spent, whether the file stores training images, and the file's SHA-256 "
        "content digest. A saved lesion source (copy-paste, lesion-transplant) is described "
        "by what it samples from: its normal backgrounds and lesions, real training pixels.",
    )
    add_model_argument(p)
    p.add_argument("--plot", metavar="FILE", help="also write the loss curves (.png, .pdf, .svg)")
    p.add_argument("--json", action="store_true", help="print the facts as JSON instead")
    return p


def check(args: argparse.Namespace) -> None:
    if args.plot is not None and Path(args.plot).suffix.lower() not in FIGURE_SUFFIXES:
        args.parser.error(f"--plot must end in .png, .pdf or .svg, got {args.plot}")
