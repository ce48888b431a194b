"""The ``synthaug`` command line.

Exit codes: 0 success, 2 usage error (argparse), 1 any other failure, printed as one line
(``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from synthaug.errors import SynthaugError


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthaug", description="Synthetic data augmentation, measured honestly."
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__import__('synthaug').__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="imbalanced digits: none vs oversampling vs classical augmentation vs CVAE",
        description="Train a CVAE on imbalanced digits, rebalance, and compare downstream classifiers.",
    )
    demo.add_argument("--out", default="synthaug-demo", help="output folder (default: %(default)s)")
    demo.add_argument(
        "--seeds", type=_positive_int, default=3, help="number of seeds (default: %(default)s)"
    )
    demo.add_argument(
        "--ratio",
        type=_fraction,
        default=0.05,
        help="fraction of classes 5-9 kept (default: %(default)s)",
    )
    demo.add_argument(
        "--epochs",
        type=_positive_int,
        default=150,
        help="CVAE training epochs (default: %(default)s)",
    )
    demo.add_argument(
        "--classifier-epochs",
        type=_positive_int,
        default=30,
        help="CNN epochs (default: %(default)s)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_cmd_demo)
    return parser


def _cmd_demo(args: argparse.Namespace) -> int:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SynthaugError as exc:
        if args.debug:
            raise
        print(f"synthaug: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("synthaug: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
