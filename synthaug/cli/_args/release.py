"""Arguments of ``synthaug release`` (the work: :mod:`synthaug.cli._release`)."""

from __future__ import annotations

import argparse

from synthaug.cli._options import (
    OUTPUT_FORMATS,
    add_data_arguments,
    add_device_option,
    add_modality_option,
    add_model_argument,
    add_overwrite_option,
    add_quiet_option,
    add_seed_option,
    check_modality_option,
)
from synthaug.cli._types import positive_int


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "release",
        help="write a synthetic data set to share, with DATA_CARD.md and card.json",
        description="Sample a saved model and write a release folder: the samples, a data card "
        "(DATA_CARD.md and card.json) with the generator, the privacy guarantee and what it "
        "does not cover, an audit of the released samples on held-out real data (fidelity, "
        "utility, privacy with each membership attack's AUC and TPR at 1%% FPR), a sample "
        "grid and the SHA-256 of every file.",
    )
    add_model_argument(p)
    p.add_argument("--n", type=positive_int, required=True, help="number of samples to release")
    p.add_argument("--out", required=True, metavar="DIR", help="the release folder")
    p.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        default="npz",
        help="format of the samples (default: %(default)s)",
    )
    add_modality_option(p)
    add_data_arguments(
        p,
        required=False,
        default=None,
        split=False,
        flag="--holdout",
        help="real data for the audit: the model's training data, whose held-out part "
        "(train --holdout) or .npz test split stands for data it never saw (default: the data "
        "the model recorded)",
    )
    p.add_argument(
        "--no-class-names",
        action="store_true",
        help="leave the class names out of every written file (samples, manifest, card, grid): "
        "classes are called class_0, class_1, ... in the model's order; for names that alone "
        "say something about a patient",
    )
    p.add_argument(
        "--allow-exemplars",
        action="store_true",
        help="release from a model that stores training images (its samples can be real "
        "images); the card says so",
    )
    add_seed_option(p, "sampling and audit")
    p.add_argument(
        "--feature-epochs", type=positive_int, default=30, help="audit embedding epochs (30)"
    )
    p.add_argument(
        "--classifier-epochs", type=positive_int, default=30, help="audit CNN epochs (30)"
    )
    p.add_argument("--classifier", choices=("logreg", "cnn"), default="logreg")
    add_overwrite_option(p)
    add_device_option(p)
    add_quiet_option(p, "stage lines on stderr")
    return p


def check(args: argparse.Namespace) -> None:
    check_modality_option(args, args.format)
