"""Anomaly maps as pictures, and localisation scores against true masks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from synthaug.data import atomic_output
from synthaug.errors import InvalidDataError, ShapeMismatchError


def _grid_inputs(
    images: torch.Tensor, maps: torch.Tensor, masks: torch.Tensor | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if images.dim() != 4 or maps.dim() != 4 or maps.shape[1] != 1:
        raise ShapeMismatchError(
            f"images must be (N, C, H, W) and maps (N, 1, H, W), got {tuple(images.shape)} "
            f"and {tuple(maps.shape)}"
        )
    if images.shape[0] != maps.shape[0] or images.shape[-2:] != maps.shape[-2:]:
        raise ShapeMismatchError(
            f"images {tuple(images.shape)} and maps {tuple(maps.shape)} do not match"
        )
    if masks is not None and tuple(masks.shape) != tuple(maps.shape):
        raise ShapeMismatchError(f"masks {tuple(masks.shape)} must be shaped like the maps")
    if len(images) == 0:
        raise InvalidDataError("no images to draw")
    pictures = images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    m = maps.detach().float().cpu().numpy()[:, 0]
    k = None if masks is None else masks.detach().bool().cpu().numpy()[:, 0]
    return pictures, m, k


def save_map_overlays(
    path: str | Path,
    images: torch.Tensor,
    maps: torch.Tensor,
    *,
    masks: torch.Tensor | None = None,
    titles: Sequence[str] | None = None,
    columns: int = 8,
    overwrite: bool = False,
) -> Path:
    """Write a PNG grid: each image above its anomaly map laid over it (true masks outlined).

    Parameters
    ----------
    path : str or Path
        The PNG to write (written whole or not at all).
    images : torch.Tensor
        ``(N, C, H, W)`` images in [0, 1] (grayscale or RGB).
    maps : torch.Tensor
        ``(N, 1, H, W)`` anomaly maps, such as :meth:`DRAEMDetector.anomaly_map`'s, drawn on a
        fixed [0, 1] colour scale (a map of probabilities).
    masks : torch.Tensor, optional
        ``(N, 1, H, W)`` true anomaly masks, outlined in cyan on the overlay.
    titles : sequence of str, optional
        One caption per image (such as its score).
    columns : int
        Images per row.
    overwrite : bool

    Returns
    -------
    Path
        The written file.
    """
    pictures, m, k = _grid_inputs(images, maps, masks)
    n = len(pictures)
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    fig = Figure(figsize=(1.3 * columns, 2.7 * rows))
    gray = pictures.shape[-1] == 1
    for i in range(n):
        r, c = divmod(i, columns)
        for j, overlay in enumerate((False, True)):
            ax = fig.add_subplot(2 * rows, columns, (2 * r + j) * columns + c + 1)
            shown = pictures[i, ..., 0] if gray else pictures[i]
            ax.imshow(shown, cmap="gray" if gray else None, vmin=0, vmax=1)
            if overlay:
                ax.imshow(m[i], cmap="magma", vmin=0, vmax=1, alpha=0.6)
                if k is not None and k[i].any():
                    ax.contour(k[i], levels=[0.5], colors="cyan", linewidths=0.8)
            elif titles is not None:
                ax.set_title(str(titles[i]), fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    with atomic_output(path, folder=False, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return Path(path)


def pixel_auroc(maps: torch.Tensor, masks: torch.Tensor) -> float:
    """AUROC of every pixel's map value against the true masks (anomalous pixels positive),
    over all images together, normal ones included (MVTec AD's pixel-level AUROC)."""
    y = masks.detach().bool().flatten().cpu().numpy()
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, maps.detach().double().flatten().cpu().numpy()))


def region_overlap(maps: torch.Tensor, masks: torch.Tensor, max_fpr: float = 0.3) -> float:
    """Area under the per-region-overlap curve up to ``max_fpr``, normalised to [0, 1].

    Bergmann et al.'s PRO score (MVTec AD, IJCV 2021): for thresholds on the map, the mean over
    connected true regions of the share of each region above the threshold, against the share
    of normal pixels above it (false-positive rate); the area under that curve up to
    ``max_fpr``, divided by ``max_fpr``. Every region counts the same, so a small faint lesion
    found weighs as much as a large one.
    """
    m = maps.detach().double().cpu().numpy()[:, 0]
    k = masks.detach().bool().cpu().numpy()[:, 0]
    if not k.any() or k.all():
        return float("nan")
    labelled = np.zeros(k.shape, dtype=np.int64)
    count = 0
    for i in range(len(k)):  # connected components are per image
        lab, found = ndimage.label(k[i])
        labelled[i] = np.where(lab > 0, lab + count, 0)
        count += found
    values = m.ravel()
    region = labelled.ravel()
    normal = values[region == 0]
    sizes = np.bincount(region, minlength=count + 1)[1:]
    grid = np.linspace(0.0, max_fpr, 31)
    # One threshold per false-positive rate of the grid; each is one vectorised pass.
    fprs, pros = [], []
    for t in np.quantile(normal, 1 - grid):
        fprs.append(float((normal > t).mean()))
        hit = np.bincount(region[values > t], minlength=count + 1)[1:]
        pros.append(float((hit / sizes).mean()))
    fprs, pros = np.array(fprs), np.array(pros)
    # The overlap reachable at each rate: the best threshold whose false positives fit.
    best = np.array([pros[fprs <= g + 1e-12].max(initial=0.0) for g in grid])
    return float(np.trapezoid(best, grid) / max_fpr)
