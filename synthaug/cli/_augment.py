"""``synthaug augment``: real data topped up with a saved generator's samples."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.augment import AugmentedDataset
from synthaug.cli._files import (
    WRITERS,
    class_counts_text,
    output_format,
    read_data,
    write_dataset,
)
from synthaug.generators import load


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "augment",
        help="add synthetic samples to a data set",
        description="Add samples of a saved model to real data and write the result; the .npz "
        "output marks synthetic rows in train_synthetic.",
    )
    p.add_argument("--data", required=True, help="'digits', a .npz file or an image folder")
    p.add_argument("--split", default="train", help="split of a .npz file (default: %(default)s)")
    p.add_argument("--model", required=True, help="a model saved by 'synthaug train'")
    p.add_argument(
        "--strategy",
        choices=["balance", "ratio"],
        default="balance",
        help="balance: every class to the majority count; ratio: --ratio synthetic per real "
        "sample (default: %(default)s)",
    )
    p.add_argument("--ratio", type=_positive_float, help="synthetic per real sample (ratio)")
    p.add_argument("--out", required=True, help="augmented.npz, or a folder for PNG files")
    p.add_argument(
        "--format", choices=sorted(WRITERS), help="output format (default: from --out's suffix)"
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: %(default)s)")
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    if (args.strategy == "ratio") != (args.ratio is not None):
        args.parser.error("--ratio is required with --strategy ratio and only allowed with it")
    out = Path(args.out)
    fmt = output_format(out, args.format)
    real = read_data(args.data, args.split)
    model = load(args.model, device=args.device)
    aug = AugmentedDataset(real, model, args.strategy, seed=args.seed, ratio=args.ratio)
    path = write_dataset(aug, out, fmt, synthetic=aug.synthetic_mask)
    added = sum(aug.synthetic_counts.values())
    print(f"added {added} synthetic samples ({class_counts_text(aug, aug.synthetic_counts)})")
    print(f"wrote {len(aug)} samples ({class_counts_text(aug)}) to {path} [{fmt}]")
    return 0
