"""Figures: sample grids of real against synthetic images."""

from __future__ import annotations

from pathlib import Path

import torch

from synthaug.data import ImageDataset


def save_sample_grid(
    real: ImageDataset,
    synthetic: torch.Tensor,
    synthetic_labels: torch.Tensor,
    path: str | Path,
    *,
    per_class: int = 8,
    title: str = "real (left) vs synthetic (right)",
) -> Path:
    """Save a PNG with one row per class: ``per_class`` real images, then as many synthetic ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = [
        c
        for c in range(real.n_classes)
        if (synthetic_labels == c).any() or (real.labels == c).any()
    ]
    # Column 0 holds the class name, then real images, a blank spacer, synthetic images.
    cols = 2 * per_class + 2
    fig, axes = plt.subplots(
        len(classes), cols, figsize=(cols * 0.6, len(classes) * 0.62 + 0.4), squeeze=False
    )
    for row, c in enumerate(classes):
        reals = real.images[real.labels == c][:per_class]
        synths = synthetic[synthetic_labels == c][:per_class]
        for col in range(cols):
            ax = axes[row, col]
            ax.axis("off")
            img = None
            if 1 <= col <= per_class and col - 1 < len(reals):
                img = reals[col - 1]
            elif col > per_class + 1 and col - per_class - 2 < len(synths):
                img = synths[col - per_class - 2]
            if img is not None:
                shown = img[0] if img.shape[0] == 1 else img.permute(1, 2, 0)
                ax.imshow(shown.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[row, 0].text(
            0.9, 0.5, real.classes[c], transform=axes[row, 0].transAxes, ha="right", va="center"
        )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
