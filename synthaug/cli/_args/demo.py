"""Arguments of ``synthaug demo`` (the work: :mod:`synthaug.cli._demo`).

``--kind`` and ``--generator`` belong to the medical demo: given without ``--medical`` they
are a usage error that says to add it, not ignored (nor taken to mean ``--medical``: the
digits demo is what ``synthaug demo`` runs, and an option should not switch demos).
"""

from __future__ import annotations

import argparse

from synthaug.cli._options import add_quiet_option
from synthaug.cli._types import fraction, positive_int

# Options of the medical demo only.
MEDICAL_ONLY = ("kind", "generator")


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    demo = sub.add_parser(
        "demo",
        help="imbalanced digits: none vs oversampling vs classical augmentation vs CVAE",
        description="Train a CVAE on imbalanced digits, rebalance, and compare downstream "
        "classifiers; with --medical, synthetic lesions on phantom CT/MR slices through DICOM. "
        "Both are bundled benchmark configs run by the harness; the output folder holds its "
        "report (report.md, plots/) and results.",
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
        "--classifier-steps",
        type=positive_int,
        default=None,
        help="optimiser steps of the classifier, the same for every method (default: 1000, "
        "medical 200)",
    )
    demo.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        help="cells run at once, one torch thread each when more than one (default: the CPU "
        "cores, at most 8; with --medical 1, on every core): small networks run several "
        "times faster as parallel one-thread cells than as one cell on every core",
    )
    add_quiet_option(demo, "progress bars")
    demo.add_argument(
        "--medical",
        action="store_true",
        help="phantom CT/MR slices with 5%% lesions through DICOM: none vs classical vs "
        "synthetic lesions vs both (see docs/medical.md)",
    )
    demo.add_argument(
        "--kind",
        choices=("chest", "brain"),
        help="phantom kind; needs --medical, and without it is an error (default: chest)",
    )
    demo.add_argument(
        "--generator",
        metavar="NAME",
        help="registered generator of the synthetic lesion slices; needs --medical, and without "
        "it is an error (default: cgan)",
    )
    return demo


def check(args: argparse.Namespace) -> None:
    given = [f"--{name} {getattr(args, name)}" for name in MEDICAL_ONLY if getattr(args, name)]
    if given and not args.medical:
        args.parser.error(
            f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} for the medical demo: "
            f"add --medical (synthaug demo --medical {' '.join(given)}), or drop "
            f"{'it' if len(given) == 1 else 'them'} for the digits demo"
        )
