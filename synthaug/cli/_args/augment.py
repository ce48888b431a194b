"""Arguments of ``synthaug augment`` (the work: :mod:`synthaug.cli._augment`).

``--source`` names a registered sample source, checked against the registry when the command
runs (see :mod:`synthaug.cli._options`), so that ``--help`` needs no torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.cli._options import (
    SYNTHETIC_ONLY,
    add_allow_derived_options,
    add_data_arguments,
    add_device_option,
    add_output_arguments,
    add_param_option,
    add_seed_option,
    check_allow_derived_options,
    check_modality_option,
    output_format,
)
from synthaug.cli._types import positive_float


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "augment",
        help="add synthetic samples to a data set",
        description="Add samples of a saved model to real data and write the result; the .npz "
        "output marks each row real, synthetic or derived (from real training images) in "
        "train_origin.",
    )
    add_data_arguments(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="a model saved by 'synthaug train'")
    what.add_argument(
        "--source",
        metavar="NAME",
        help="a registered sample source fitted on --data here instead of a saved model "
        "(docs/medical.md; an unknown name lists them all); copy-paste and "
        "lesion-transplant move lesions into normal images and write their masks with .npz "
        "and DICOM output)",
    )
    add_param_option(p, "a parameter of --source (repeatable; JSON values)")
    p.add_argument(
        "--synthetic-only",
        action="store_true",
        help="write only the synthetic items (what --format dicom needs)",
    )
    add_allow_derived_options(p)
    p.add_argument(
        "--strategy",
        choices=["balance", "ratio"],
        default="balance",
        help="balance: every class to the majority count; ratio: --ratio synthetic per real "
        "sample (default: %(default)s)",
    )
    p.add_argument("--ratio", type=positive_float, help="synthetic per real sample (ratio)")
    add_output_arguments(p, "augmented.npz, or a folder for PNG files")
    add_seed_option(p, "sampling")
    add_device_option(p)
    return p


def check(args: argparse.Namespace) -> None:
    """The options' rules among themselves, before any file is read or model loaded."""
    if (args.strategy == "ratio") != (args.ratio is not None):
        args.parser.error("--ratio is required with --strategy ratio and only allowed with it")
    fmt = output_format(Path(args.out), args.format)
    if args.param and args.source is None:
        args.parser.error("--param configures --source; a saved --model is used as it is")
    if fmt == "dicom" and not args.synthetic_only:
        # Checked before any fitting: DICOM files are all marked synthetic or derived.
        args.parser.error(
            f"{SYNTHETIC_ONLY}; add --synthetic-only, or write the mixed real + synthetic set "
            f"as .npz or PNG"
        )
    check_modality_option(args, fmt)
    check_allow_derived_options(args, fmt, "--format dicom --synthetic-only")
