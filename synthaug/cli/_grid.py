"""``synthaug grid``: a labelled grid of a saved generator's samples, one row per class."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from synthaug.cli._types import positive_int

if TYPE_CHECKING:
    import torch

_FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grid",
        help="save a labelled grid of samples (one row per class)",
        description="Save a grid of samples, one labelled row per class; with --data, real "
        "images are shown to the left of the synthetic ones.",
    )
    p.add_argument("model", help="a model saved by 'synthaug train' (.safetensors)")
    p.add_argument("--out", required=True, help="figure file (.png, .pdf or .svg)")
    p.add_argument(
        "--per-class", type=positive_int, default=8, help="samples per row (default: %(default)s)"
    )
    p.add_argument("--data", help="real data to show beside the samples ('digits', .npz, folder)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: %(default)s)")
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    import torch

    from synthaug.bench import save_sample_grid
    from synthaug.cli._files import read_data
    from synthaug.errors import ShapeMismatchError
    from synthaug.generators import load

    out = Path(args.out)
    if out.suffix.lower() not in _FIGURE_SUFFIXES:
        args.parser.error(f"--out must end in one of {', '.join(_FIGURE_SUFFIXES)}, got {out}")
    model = load(args.model, device=args.device)
    if len(model.sample_shape_) != 3:
        raise ShapeMismatchError(
            f"{args.model} generates feature vectors of shape {model.sample_shape_}, not images"
        )
    labels = torch.tensor(model.classes_).repeat_interleave(args.per_class)
    images, labels = model.sample(len(labels), y=labels, seed=args.seed)
    if args.data is not None:
        real = read_data(args.data)
        path = save_sample_grid(real, images, labels, out, per_class=args.per_class)
    else:
        path = save_synthetic_grid(images, labels, model.class_names_, out, args.per_class)
    print(f"saved a {len(model.classes_)} x {args.per_class} sample grid to {path}")
    return 0


def save_synthetic_grid(
    images: torch.Tensor, labels: torch.Tensor, classes: list[str], path: Path, per_class: int
) -> Path:
    """One row per class present in ``labels``: its name, then up to ``per_class`` images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = sorted(set(labels.tolist()))
    cols = per_class + 1
    fig, axes = plt.subplots(
        len(present), cols, figsize=(cols * 0.6, len(present) * 0.62 + 0.4), squeeze=False
    )
    for row, c in enumerate(present):
        chosen = images[labels == c][:per_class]
        for col in range(cols):
            ax = axes[row, col]
            ax.axis("off")
            if 1 <= col <= len(chosen):
                img = chosen[col - 1]
                shown = img[0] if img.shape[0] == 1 else img.permute(1, 2, 0)
                ax.imshow(shown.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[row, 0].text(
            0.9, 0.5, classes[c], transform=axes[row, 0].transAxes, ha="right", va="center"
        )
    fig.suptitle("synthetic samples", fontsize=9)
    fig.tight_layout(pad=0.2)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    except OSError as exc:
        from synthaug.errors import DataFileError

        raise DataFileError(f"cannot write {path}: {exc}") from exc
    finally:
        plt.close(fig)
    return path
