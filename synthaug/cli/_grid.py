"""``synthaug grid``: a labelled grid of a saved generator's samples, one row per class."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from synthaug.bench import save_sample_grid
from synthaug.cli._files import (
    DATA_HELP,
    add_data_arguments,
    check_data_fits_model,
    data_options,
    read_data,
)
from synthaug.cli._options import add_device_option, add_model_argument, add_seed_option
from synthaug.cli._types import positive_int
from synthaug.data import check_output
from synthaug.errors import ShapeMismatchError
from synthaug.generators import load

_FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grid",
        help="save a labelled grid of samples (one row per class)",
        description="Save a grid of samples, one labelled row per class; with --data, real "
        "images are shown to the left of the synthetic ones.",
    )
    add_model_argument(p)
    p.add_argument("--out", required=True, help="figure file (.png, .pdf or .svg)")
    p.add_argument(
        "--per-class", type=positive_int, default=8, help="samples per row (default: %(default)s)"
    )
    add_data_arguments(
        p,
        required=False,
        help=f"real data to show beside the samples, with the model's classes and sample shape: "
        f"{DATA_HELP}",
    )
    add_seed_option(p, "sampling")
    add_device_option(p)
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in _FIGURE_SUFFIXES:
        args.parser.error(f"--out must end in one of {', '.join(_FIGURE_SUFFIXES)}, got {out}")
    check_output(out, folder=False, overwrite=True)  # a figure is replaced, never mixed
    model = load(args.model, device=args.device)
    if len(model.sample_shape_) != 3:
        raise ShapeMismatchError(
            f"{args.model} generates feature vectors of shape {model.sample_shape_}, not images"
        )
    real = None
    if args.data is not None:
        real = read_data(args.data, args.split, **data_options(args))
        check_data_fits_model(model, real, args.data)
    labels = torch.tensor(model.classes_).repeat_interleave(args.per_class)
    images, labels = model.sample(len(labels), y=labels, seed=args.seed)
    path = save_sample_grid(
        real,
        images,
        labels,
        out,
        classes=model.class_names_,
        per_class=args.per_class,
        title="real (left) vs synthetic (right)" if real is not None else "synthetic samples",
    )
    print(f"saved a {len(model.classes_)} x {args.per_class} sample grid to {path}")
    return 0
