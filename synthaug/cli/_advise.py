"""``synthaug advise``: does synthetic data help on your data? A budgeted comparison, a verdict.

Arguments: :mod:`synthaug.cli._args.advise`.
"""

from __future__ import annotations

import argparse
import shlex

from synthaug.bench import advise
from synthaug.cli._files import data_options, read_data


def run(args: argparse.Namespace) -> int:
    data = read_data(args.data, args.split, **data_options(args))
    advise(
        data,
        budget=args.budget,
        out=args.out,
        generators=args.generators,
        epochs=args.epochs,
        classifier_steps=args.classifier_steps,
        device=args.device,
        threads=args.threads,
        data_name=args.data,
        data_option=data_option(args),
        progress=not args.quiet,
    )
    return 0


def data_option(args: argparse.Namespace) -> str:
    """The data options as given, for the commands the advice shows."""
    words = ["--data", args.data]
    if args.split != "train":
        words += ["--split", args.split]
    if args.size is not None:
        words += ["--size", f"{args.size[0]}x{args.size[1]}"]
    if args.window is not None:
        window = args.window if isinstance(args.window, str) else ",".join(map(str, args.window))
        words.append(f"--window={window}")
    if args.on_error is not None:
        words += ["--on-error", args.on_error]
    if args.feature_range is not None:
        words.append(f"--feature-range={args.feature_range[0]:g},{args.feature_range[1]:g}")
    return shlex.join(words)
