"""``synthaug grid``: a labelled grid of a saved generator's samples, one row per class.

Arguments: :mod:`synthaug.cli._args.grid`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from synthaug.bench import save_sample_grid
from synthaug.bench._plots import check_sample_grid
from synthaug.cli._files import check_data_fits_model, data_options, read_data
from synthaug.data import check_output, sample_origin
from synthaug.errors import ShapeMismatchError
from synthaug.generators import load


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    check_output(out, folder=False, overwrite=True)  # a figure is replaced, never mixed
    model = load(args.model, device=args.device)
    if len(model.sample_shape_) != 3:
        raise ShapeMismatchError(
            f"{args.model} generates feature vectors of shape {model.sample_shape_}, not images"
        )
    # A grid too large to draw is refused before any sample is made for it.
    check_sample_grid(len(model.classes_), args.per_class, with_real=args.data is not None)
    real = None
    if args.data is not None:
        real = read_data(args.data, args.split, **data_options(args))
        check_data_fits_model(model, real, args.data)
    labels = torch.tensor(model.classes_).repeat_interleave(args.per_class)
    images, labels = model.sample(len(labels), y=labels, seed=args.seed)
    # Variants of a model's stored training images are not called synthetic.
    made = sample_origin(model)
    path = save_sample_grid(
        real,
        images,
        labels,
        out,
        classes=model.class_names_,
        per_class=args.per_class,
        title=f"real (left) vs {made} (right)" if real is not None else f"{made} samples",
    )
    print(f"saved a {len(model.classes_)} x {args.per_class} sample grid to {path}")
    return 0
