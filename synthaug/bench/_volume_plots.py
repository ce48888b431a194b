"""A slice montage of volumes: a few evenly spaced slices per volume, label maps outlined."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from synthaug.bench._plots import _DPI, _MAX_PIXELS, _save
from synthaug.data import VolumeDataset
from synthaug.errors import EmptyDatasetError, InvalidParameterError

# Inches per slice column and volume row, and room for the row labels and the title.
_CELL, _LABEL_W, _TITLE_H = 0.9, 2.2, 0.4
_OUTLINE = np.array([1.0, 0.15, 0.15], dtype=np.float32)  # label map outlines, red


def montage_slices(depth: int, slices: int) -> np.ndarray:
    """``slices`` evenly spaced slice indices of a ``depth``-slice volume: the centres of
    ``slices`` equal parts (all slices when there are fewer).

    Examples
    --------
    >>> montage_slices(32, 4).tolist()
    [4, 12, 20, 28]
    """
    count = min(int(slices), int(depth))
    return ((np.arange(count) + 0.5) * depth / count).astype(np.int64)


def check_volume_montage(n_rows: int, slices: int) -> None:
    """Refuse a montage too large to draw, before any volume is read for it."""
    width = round((slices * _CELL + _LABEL_W) * _DPI)
    height = round((n_rows * _CELL + _TITLE_H) * _DPI)
    if width > _MAX_PIXELS or height > _MAX_PIXELS:
        raise InvalidParameterError(
            f"a montage of {n_rows} volumes x {slices} slices would be {width:,} x {height:,} "
            f"pixels; matplotlib draws fewer than 65,536 each way: show fewer volumes or slices"
        )


def save_volume_montage(
    dataset: VolumeDataset,
    path: str | Path,
    *,
    slices: int = 5,
    per_class: int = 4,
    title: str = "",
) -> Path:
    """Save a PNG (or PDF, SVG): one row per volume (the first ``per_class`` of each class),
    ``slices`` evenly spaced slices of it (:func:`montage_slices`), each volume's label map
    outlined in red on the slices where it has labels. Volumes are read one at a time.

    Rows are labelled with the class, the volume's file name (when it has one) and the slice
    indices shown; volumes of other sizes sit in the top-left corner of their cells.
    """
    if isinstance(slices, bool) or not isinstance(slices, int) or slices < 1:
        raise InvalidParameterError(f"slices must be an integer >= 1, got {slices!r}")
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise InvalidParameterError(f"per_class must be an integer >= 1, got {per_class!r}")
    if len(dataset) == 0:
        raise EmptyDatasetError("no volumes to show")
    labels = dataset.labels.numpy()
    rows = [i for c in range(dataset.n_classes) for i in np.flatnonzero(labels == c)[:per_class]]
    check_volume_montage(len(rows), slices)
    shapes = [dataset.shapes[i] for i in rows]
    height, width = max(s[2] for s in shapes), max(s[3] for s in shapes)
    pad = max(1, height // 16)
    cell_h, cell_w = height + pad, width + pad
    canvas = np.ones((len(rows) * cell_h + pad, slices * cell_w + pad, 3), dtype=np.float32)
    names = []
    for row, index in enumerate(rows):
        volume = dataset.volume(int(index))
        shown = montage_slices(volume.shape[1], slices)
        for col, d in enumerate(shown):
            image = volume.array[0, d]
            rgb = np.repeat(image[:, :, None], 3, axis=2)
            if volume.mask is not None:
                rgb[_outline(volume.mask[d] > 0)] = _OUTLINE
            top, left = pad + row * cell_h, pad + col * cell_w
            canvas[top : top + image.shape[0], left : left + image.shape[1]] = rgb
        source = volume.metadata.get("file")
        name = dataset.classes[int(labels[index])]
        if source:
            name += f"\n{Path(str(source)).name}"
        names.append(f"{name}\nslices {', '.join(str(int(d)) for d in shown)}")
    fig = Figure(figsize=(slices * _CELL + _LABEL_W, len(rows) * _CELL + _TITLE_H))
    ax = fig.subplots()
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([pad + row * cell_h + height / 2 for row in range(len(rows))], names, fontsize=6)
    ax.tick_params(left=False)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout(pad=0.2)
    return _save(fig, Path(path))


def _outline(region: np.ndarray) -> np.ndarray:
    """The pixels of ``region`` with a 4-neighbour outside it (its one-pixel boundary)."""
    padded = np.pad(region, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & region
    return region & ~inner
