"""Figures of a benchmark folder: metric plots and sample grids of real against synthetic images.

Drawn with matplotlib's object-oriented API (``Figure``), which needs no display and leaves
the user's pyplot backend alone.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from synthaug.bench._task import NO_CLASSIFIER
from synthaug.data import ImageDataset, atomic_output
from synthaug.errors import DataFileError, InvalidParameterError


def where_parts(*parts: str) -> list[str]:
    """Heading parts, without the placeholder classifier of tasks that train none."""
    return [p for p in parts if p != NO_CLASSIFIER]


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-+=." else "_" for ch in text)


def _save(fig: Figure, path: Path) -> Path:
    # Drawn aside and renamed into place: an interrupted save leaves no broken figure.
    with atomic_output(path, folder=False, overwrite=True) as partial:
        try:
            fig.savefig(partial, dpi=_DPI, format=path.suffix.lstrip(".").lower() or "png")
        except (OSError, ValueError) as exc:
            raise DataFileError(f"cannot write {path}: {exc}") from exc
    return path


def save_plots(rows: list[dict[str, Any]], folder: str | Path) -> list[Path]:
    """One PNG per (dataset, classifier, metric): mean and 95% CI per method, a panel per setting."""
    folder = Path(folder)
    paths = []
    keys = dict.fromkeys((r["dataset"], r["classifier"], r["metric"]) for r in rows)
    for dataset, clf, metric in keys:
        mine = [
            r
            for r in rows
            if (r["dataset"], r["classifier"], r["metric"]) == (dataset, clf, metric)
        ]
        settings = list(dict.fromkeys(r["setting"] for r in mine))
        # Wide enough that each method's label has room of its own, however long the grid.
        n_methods = max(sum(r["setting"] == s for r in mine) for s in settings)
        panel = max(3.2, 0.32 * n_methods + 0.6)
        fig = Figure(figsize=(panel * len(settings) + 0.5, 3.4 if n_methods <= 10 else 4.4))
        axes = fig.subplots(1, len(settings), squeeze=False, sharey=True)
        for ax, setting in zip(axes[0], settings, strict=True):
            block = [r for r in mine if r["setting"] == setting]
            x = np.arange(len(block))
            err = [0.0 if math.isnan(r["ci95_half_width"]) else r["ci95_half_width"] for r in block]
            # Points with error bars, not bars from zero: the differences are a few points.
            for xi, r, e in zip(x, block, err, strict=True):
                color = "tab:orange" if r["best"] else "tab:blue"
                ax.errorbar(xi, r["mean"], yerr=e, fmt="o", capsize=4, color=color)
            ax.set_xlim(-0.6, len(block) - 0.4)
            ax.set_xticks(x, [r["method"] for r in block], rotation=45, ha="right", fontsize=8)
            ax.set_title(setting, fontsize=9)
            ax.grid(axis="y", alpha=0.3)
        axes[0][0].set_ylabel(f"{metric} (mean, 95% CI)")
        fig.suptitle(" · ".join(where_parts(dataset, clf)), fontsize=10)
        fig.tight_layout()
        name = "_".join(where_parts(dataset, clf, metric))
        paths.append(_save(fig, folder / f"{_safe(name)}.png"))
    return paths


# Figures are drawn at this resolution; matplotlib's Agg renderer draws fewer than 2**16
# pixels each way, so a sample grid wider or taller than that cannot be drawn at all.
_DPI = 100
_MAX_PIXELS = 2**16 - 1
# Inches per column and row of a sample grid, and the margins around them.
_COLUMN, _ROW, _MARGIN_W, _MARGIN_H = 0.6, 0.62, 0.6, 0.4


def check_sample_grid(n_rows: int, per_class: int, *, with_real: bool) -> None:
    """Refuse a sample grid too large to draw, before any sample is made for it.

    Raises
    ------
    InvalidParameterError
        ``per_class`` is not a positive integer, or the figure of ``n_rows`` rows of
        ``per_class`` samples (as many real ones beside them ``with_real``) would be 2**16
        pixels or more wide or tall, which matplotlib cannot draw.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise InvalidParameterError(f"per_class must be a positive integer, got {per_class!r}")
    width = round((_grid_columns(per_class, with_real) * _COLUMN + _MARGIN_W) * _DPI)
    height = round((n_rows * _ROW + _MARGIN_H) * _DPI)
    if width > _MAX_PIXELS or height > _MAX_PIXELS:
        most = max(1, int((_MAX_PIXELS / _DPI - _MARGIN_W) / _COLUMN))
        most = (most - 1) // 2 if with_real else most
        rows = int((_MAX_PIXELS / _DPI - _MARGIN_H) / _ROW)
        fix = [f"at most {most} samples per class"] if width > _MAX_PIXELS else []
        fix += [f"at most {rows} classes (rows)"] if height > _MAX_PIXELS else []
        beside = " beside real ones" if with_real else ""
        raise InvalidParameterError(
            f"a grid of {n_rows} row(s) of {per_class:,} samples{beside} would be {width:,} x "
            f"{height:,} pixels; matplotlib draws fewer than 65,536 each way: use "
            + " and ".join(fix)
        )


def _grid_columns(per_class: int, with_real: bool) -> int:
    """Columns of a sample grid: the synthetic ones, and the real ones and a gap beside them."""
    return 2 * per_class + 1 if with_real else per_class


def save_sample_grid(
    real: ImageDataset | None,
    synthetic: torch.Tensor,
    synthetic_labels: torch.Tensor,
    path: str | Path,
    *,
    classes: list[str] | None = None,
    per_class: int = 8,
    title: str = "real (left) vs synthetic (right)",
) -> Path:
    """Save a PNG (or PDF, SVG) with one labelled row per class.

    With ``real``, a row holds ``per_class`` real images, then as many synthetic ones; without
    it, only synthetic ones (then ``classes`` names the labels).
    """
    names = real.classes if real is not None else (classes or [])
    present = set(synthetic_labels.tolist())
    if real is not None:
        present |= set(real.labels.tolist())
    rows = sorted(present)
    check_sample_grid(len(rows), per_class, with_real=real is not None)
    # One mosaic drawn by a single imshow: an axes per image cost about 2 s a grid.
    n_real = per_class if real is not None else 0
    first_synth = n_real + 1 if real is not None else 0  # a blank column between the halves
    cols = _grid_columns(per_class, real is not None)
    height, width = synthetic.shape[-2:]
    pad = max(1, height // 8)
    cell_h, cell_w = height + pad, width + pad
    canvas = np.ones((len(rows) * cell_h + pad, cols * cell_w + pad, 3), dtype=np.float32)
    for row, c in enumerate(rows):
        reals = real.images[real.labels == c][:per_class] if real is not None else synthetic[:0]
        synths = synthetic[synthetic_labels == c][:per_class]
        placed = list(enumerate(reals))
        placed += [(first_synth + i, img) for i, img in enumerate(synths)]
        for col, img in placed:
            rgb = img.float().clamp(0, 1).expand(3, -1, -1) if img.shape[0] == 1 else img[:3]
            top, left = pad + row * cell_h, pad + col * cell_w
            canvas[top : top + height, left : left + width] = rgb.permute(1, 2, 0).numpy()
    fig = Figure(figsize=(cols * _COLUMN + _MARGIN_W, len(rows) * _ROW + _MARGIN_H))
    ax = fig.subplots()
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks(
        [pad + row * cell_h + height / 2 for row in range(len(rows))],
        [names[c] if c < len(names) else str(c) for c in rows],
    )
    ax.tick_params(left=False)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.2)
    return _save(fig, Path(path))


def save_sample_grids(out: str | Path) -> list[Path]:
    """One PNG per setting and generator method (first seed): real training images vs generated."""
    out = Path(out)
    chosen: dict[tuple[str, str], tuple[int, Path]] = {}
    for path in sorted((out / "samples").glob("*.npz")):
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
        key = (meta["setting"], meta["method"])
        if key not in chosen or meta["seed"] < chosen[key][0]:
            chosen[key] = (meta["seed"], path)
    paths = []
    for (setting, method), (seed, path) in chosen.items():
        with np.load(path) as z:
            real = ImageDataset(
                torch.from_numpy(z["real_images"]),
                torch.from_numpy(z["real_labels"]),
                [str(c) for c in z["classes"]],
            )
            images = torch.from_numpy(z["synthetic_images"])
            labels = torch.from_numpy(z["synthetic_labels"])
        if not len(images) or real.images.dim() != 4:
            continue
        paths.append(
            save_sample_grid(
                real,
                images,
                labels,
                out / "plots" / f"samples_{_safe(f'{setting}_{method}')}.png",
                title=f"{setting}, seed {seed}: real training images (left) vs {method} (right)",
            )
        )
    return paths


def save_loss_curves(history: list[dict[str, float]], path: str | Path, title: str = "") -> Path:
    """One panel per loss in a generator's ``history_`` (every key but ``epoch``), by epoch."""
    path = Path(path)
    keys = list(dict.fromkeys(k for record in history for k in record if k != "epoch"))
    if not keys:
        raise DataFileError("this model recorded no training losses; there is nothing to plot")
    epochs = [record.get("epoch", i + 1) for i, record in enumerate(history)]
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(3.6 * cols, 2.6 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        ax.plot(epochs, [record.get(key, math.nan) for record in history], lw=1.2)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
