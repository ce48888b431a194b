"""Arguments of ``synthaug evaluate`` (the work: :mod:`synthaug.cli._evaluate`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.cli._options import add_data_arguments, add_quiet_option, add_seed_option
from synthaug.cli._types import fraction, positive_int
from synthaug.errors import InvalidParameterError


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate",
        help="fidelity, utility and privacy of a saved generator's samples",
        description=(
            "Sample a saved generator and compare its samples with real data: fidelity (FD, "
            "precision/recall/density/coverage, C2ST, label fidelity), utility (TRTR, TSTR, "
            "TRTS, real+synthetic) and privacy (DCR, memorization, membership attacks: "
            "distance, the model's likelihood, density ratio). "
            "A model trained with 'synthaug train --holdout FRAC' is scored against exactly the "
            "items it held out; privacy figures are refused when no part of the data is known "
            "to be unseen by the model (trained on all of it, or other data)."
        ),
    )
    p.add_argument("model", help="a generator saved with .save() (.safetensors)")
    add_data_arguments(
        p,
        required=False,
        default=None,
        split=False,
        help="'digits'; a MedMNIST-style .npz file with train_images/train_labels (and "
        "test_images/test_labels, then used as the test part); or a folder with one subfolder "
        "per class holding images (PNG, JPEG, ...) or DICOM files. Default: the data the model "
        "recorded at 'synthaug train', tested against the part it held out (--holdout); "
        "'digits' for a model without that record. Other data without a test split is split "
        "by --test-size and --split-seed",
    )
    p.add_argument("--out", default="eval.json", help="JSON output file (default: %(default)s)")
    p.add_argument(
        "--test-size",
        type=fraction,
        default=0.25,
        help="held-out fraction when the data has no test split (default: %(default)s)",
    )
    p.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of that train/test split (default: %(default)s)",
    )
    p.add_argument(
        "--n-synthetic",
        type=positive_int,
        default=None,
        help="samples to generate (default: as many as the train part, with its labels)",
    )
    p.add_argument(
        "--classifier",
        choices=("logreg", "cnn"),
        default="logreg",
        help="utility classifier (default: %(default)s)",
    )
    p.add_argument(
        "--classifier-epochs",
        type=positive_int,
        default=30,
        help="CNN epochs (default: %(default)s)",
    )
    p.add_argument("--features", help="a saved FeatureExtractor to embed with (reuse across runs)")
    p.add_argument("--save-features", help="save the trained FeatureExtractor to this file")
    p.add_argument(
        "--feature-epochs",
        type=positive_int,
        default=30,
        help="epochs of a newly trained FeatureExtractor (default: %(default)s)",
    )
    p.add_argument(
        "--k", type=positive_int, default=5, help="k of the k-NN metrics (default: %(default)s)"
    )
    add_seed_option(p, "sampling and metric")
    # Not add_device_option: this help is worded otherwise, and --help stays as it was.
    p.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda[:N]'")
    add_quiet_option(p, "stage lines on stderr")
    return p


def check(args: argparse.Namespace) -> None:
    if args.seed < 0 or args.split_seed < 0:
        raise InvalidParameterError("--seed and --split-seed must be >= 0")
    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise InvalidParameterError(f"--out is a JSON file; end it in .json, got {out}")
