"""``synthaug demo``: the end-to-end comparison on imbalanced digits, or (``--medical``) phantom slices."""

from __future__ import annotations

import argparse

from synthaug.cli._types import fraction, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo",
        help="imbalanced digits: none vs oversampling vs classical augmentation vs CVAE",
        description="Train a CVAE on imbalanced digits, rebalance, and compare downstream classifiers.",
    )
    demo.add_argument(
        "--out", default=None, help="output folder (default: synthaug-demo, synthaug-medical-demo)"
    )
    demo.add_argument(
        "--seeds", type=positive_int, default=None, help="number of seeds (default: 3, medical 1)"
    )
    demo.add_argument(
        "--ratio",
        type=fraction,
        default=0.05,
        help="fraction of classes 5-9 kept; with --medical, the lesion share of the training "
        "slices (default: %(default)s)",
    )
    demo.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="generator training epochs (default: 150, medical 30)",
    )
    demo.add_argument(
        "--classifier-epochs",
        type=positive_int,
        default=None,
        help="CNN epochs (default: 30, medical 15)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.add_argument(
        "--medical",
        action="store_true",
        help="phantom CT/MR slices with 5%% lesions through DICOM: none vs classical vs "
        "synthetic lesions vs both (see docs/medical.md)",
    )
    demo.add_argument(
        "--kind",
        choices=("chest", "brain"),
        default="chest",
        help="phantom kind for --medical (default: %(default)s)",
    )
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.medical:
        return run_medical(args)
    from synthaug.bench import run_demo

    run_demo(
        args.out or "synthaug-demo",
        seeds=args.seeds or 3,
        ratio=args.ratio,
        epochs=args.epochs or 150,
        classifier_epochs=args.classifier_epochs or 30,
        verbose=not args.quiet,
    )
    return 0


def run_medical(args: argparse.Namespace) -> int:
    from synthaug.bench import run_medical_demo

    run_medical_demo(
        args.out or "synthaug-medical-demo",
        kind=args.kind,
        seeds=args.seeds or 1,
        lesion_fraction=args.ratio,
        epochs=args.epochs or 30,
        classifier_epochs=args.classifier_epochs or 15,
        verbose=not args.quiet,
    )
    return 0
