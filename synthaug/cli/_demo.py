"""``synthaug demo``: the end-to-end comparison on imbalanced digits."""

from __future__ import annotations

import argparse

from synthaug.cli._types import fraction, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo",
        help="imbalanced digits: none vs oversampling vs classical augmentation vs CVAE",
        description="Train a CVAE on imbalanced digits, rebalance, and compare downstream classifiers.",
    )
    demo.add_argument("--out", default="synthaug-demo", help="output folder (default: %(default)s)")
    demo.add_argument(
        "--seeds", type=positive_int, default=3, help="number of seeds (default: %(default)s)"
    )
    demo.add_argument(
        "--ratio",
        type=fraction,
        default=0.05,
        help="fraction of classes 5-9 kept (default: %(default)s)",
    )
    demo.add_argument(
        "--epochs",
        type=positive_int,
        default=150,
        help="CVAE training epochs (default: %(default)s)",
    )
    demo.add_argument(
        "--classifier-epochs",
        type=positive_int,
        default=30,
        help="CNN epochs (default: %(default)s)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synthaug.bench import run_demo

    run_demo(
        args.out,
        seeds=args.seeds,
        ratio=args.ratio,
        epochs=args.epochs,
        classifier_epochs=args.classifier_epochs,
        verbose=not args.quiet,
    )
    return 0
