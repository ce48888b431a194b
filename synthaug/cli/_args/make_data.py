"""Arguments of ``synthaug make-data`` (the work: :mod:`synthaug.cli._make_data`).

``NAME`` is a data set of the registry :data:`synthaug.data.DATASETS`; like ``train --model``
it is checked against the registry when the command runs (torch-free ``--help``), and an
unknown name lists the registered ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.cli._options import (
    add_output_arguments,
    add_param_option,
    check_modality_option,
    output_format,
)


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "make-data",
        help="write a data set the library makes (digits, phantoms) as .npz, PNG or DICOM",
        description="Write a registered data set to files the other commands read with "
        "--data: a MedMNIST-style .npz (its train split), PNG images in one folder per "
        "class, or (for phantoms, which are drawn in code) a folder of DICOM files marked "
        "synthetic. Nothing is downloaded.",
        epilog="examples: 'synthaug make-data digits --out digits.npz'; 'synthaug make-data "
        "phantoms --param n_per_class=[200,20] --param kind=brain --out brain.npz'; "
        "'synthaug make-data phantoms --param n_per_class=40 --param size=32 --out scans "
        "--format dicom'",
    )
    p.add_argument(
        "name",
        metavar="NAME",
        help="a registered data set: digits (scikit-learn's 1,797 8x8 handwritten digits), "
        "phantoms (chest CT or brain MR slices, classes normal and lesion; needs --param "
        "n_per_class=N or [NORMAL,LESION]), phantoms-graded, ... (docs/medical.md; an unknown "
        "name lists them all)",
    )
    add_param_option(
        p,
        "a parameter of the data set (repeatable; JSON values), e.g. for phantoms "
        "n_per_class=[200,20], size=64, kind=chest|brain, seed=0",
    )
    p.add_argument(
        "--masks",
        action="store_true",
        help="also write the true lesion masks of phantoms: .npz as train_masks, DICOM as one "
        "Segmentation object per lesion image (PNG has no place for them)",
    )
    add_output_arguments(p, "a .npz file, or a folder for PNG (or --format dicom) files")
    return p


def check(args: argparse.Namespace) -> None:
    fmt = output_format(Path(args.out), args.format)
    check_modality_option(args, fmt)
    if args.masks and fmt == "png":
        args.parser.error("--masks has no place in PNG output; write .npz or --format dicom")
