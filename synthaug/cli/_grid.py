"""``synthaug grid``: a labelled grid of a saved generator's samples, one row per class, or
a slice montage of volumes.

Arguments: :mod:`synthaug.cli._args.grid`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from synthaug.bench import save_sample_grid
from synthaug.bench._plots import check_sample_grid
from synthaug.bench._volume_plots import check_volume_montage, save_volume_montage
from synthaug.cli._files import check_data_fits_model, data_options, read_data
from synthaug.cli._options import is_volume_path
from synthaug.cli._volumes import open_volumes
from synthaug.data import check_output, sample_origin
from synthaug.errors import ShapeMismatchError
from synthaug.generators import load


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    check_output(out, folder=False, overwrite=True)  # a figure is replaced, never mixed
    if is_volume_path(args.model):
        return montage(args, out)
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


def montage(args: argparse.Namespace, out: Path) -> int:
    """The slice montage of the volumes at ``args.model``."""
    volumes = open_volumes(args.model)
    shown = sum(min(n, args.per_class) for n in volumes.class_counts().values())
    check_volume_montage(shown, args.slices)  # before any volume is read
    path = save_volume_montage(
        volumes,
        out,
        slices=args.slices,
        per_class=args.per_class,
        title=f"{Path(args.model).name}: {args.slices} evenly spaced slices per volume, label "
        f"maps outlined",
    )
    print(f"saved a montage of {shown} of {len(volumes)} volumes x {args.slices} slices to {path}")
    return 0
