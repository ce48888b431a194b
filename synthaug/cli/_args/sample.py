"""Arguments of ``synthaug sample`` (the work: :mod:`synthaug.cli._sample`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.cli._options import (
    add_allow_derived_options,
    add_device_option,
    add_model_argument,
    add_output_arguments,
    add_seed_option,
    check_allow_derived_options,
    check_modality_option,
    output_format,
)
from synthaug.cli._types import positive_int


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "sample",
        help="draw samples from a saved model",
        description="Draw samples from a saved model and write them as a MedMNIST-style .npz "
        "file, as PNG images in one folder per class, or as synthetic DICOM files.",
    )
    add_model_argument(p)
    p.add_argument("--n", type=positive_int, required=True, help="number of samples")
    p.add_argument(
        "--class",
        dest="label",
        help="only this class (name or label); default: classes in their training proportions",
    )
    add_output_arguments(p, "samples.npz, or a folder for PNG files")
    add_allow_derived_options(p)
    add_seed_option(p, "sampling")
    add_device_option(p)
    return p


def check(args: argparse.Namespace) -> None:
    fmt = output_format(Path(args.out), args.format)
    check_modality_option(args, fmt)
    check_allow_derived_options(args, fmt, "--format dicom")
