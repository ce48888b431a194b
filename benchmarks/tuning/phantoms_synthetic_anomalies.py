"""Compare DRAEM settings on phantoms that no reported cell uses (issue 20's tuning).

    PYTHONPATH=. python benchmarks/tuning/phantoms_synthetic_anomalies.py "steps=600, batch_size=16" /tmp/maps.png

The argument is DRAEMDetector keyword arguments (``name=value`` pairs, values as Python
literals). Training: the 255 normal slices of make_graded_phantoms(255, 60, size=32,
seed=77); test: make_graded_phantoms(100, 60, size=32, seed=177) (the reported grid draws
seed 0 only). Prints the image AUROC (normal against all lesions, then per grade) for the
map's maximum after 1x1, 3x3 and 5x5 smoothing, PCA (20 components) on the same data, and the
pixel AUROC on 50 + 50 medium-grade slices of make_phantoms(seed=277, return_masks=True);
writes 8 normal and 8 medium slices with their maps to the PNG. Results:
benchmarks/results/tuning/phantoms_synthetic_anomalies.txt.
"""

from __future__ import annotations

import ast
import sys
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from synthaug.anomaly import DRAEMDetector, PCADetector
from synthaug.data import make_graded_phantoms, make_phantoms

GRADES = (1, 2, 3)


def detector_params(text: str) -> dict[str, Any]:
    """``"steps=600, batch_size=16"`` as keyword arguments (values read as Python literals)."""
    params = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        params[name.strip()] = ast.literal_eval(value.strip())
    return params


def aurocs(y: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> tuple[float, list[float]]:
    """The AUROC of normal against every lesion, then against each grade alone."""
    per_grade = []
    for grade in GRADES:
        keep = (labels == 0) | (labels == grade)
        per_grade.append(round(roc_auc_score(y[keep], scores[keep]), 3))
    return round(roc_auc_score(y, scores), 4), per_grade


def main(params: dict[str, Any], figure_path: str) -> None:
    torch.set_num_threads(1)
    # Tuning data: seeds no reported cell uses.
    ds = make_graded_phantoms(255, 60, size=32, kind="chest", seed=77)
    test = make_graded_phantoms(100, 60, size=32, kind="chest", seed=177)
    normal = ds.subset((ds.labels == 0).nonzero().flatten())
    labels = test.labels.numpy()
    y = labels != 0
    started = time.time()
    det = DRAEMDetector(device="cpu", validation_fraction=0.0, **params).fit(normal)
    fit = time.time() - started
    maps = det._maps(test.images)
    for k in (1, 3, 5):
        smoothed = F.avg_pool2d(maps, k, 1, k // 2, count_include_pad=False) if k > 1 else maps
        print("smooth", k, *aurocs(y, labels, smoothed.flatten(1).amax(1).numpy()))
    pca = PCADetector(n_components=20, validation_fraction=0.0).fit(normal)
    print("pca", *aurocs(y, labels, pca.decision_function(test)))
    px, masks = make_phantoms(
        (50, 50),
        size=32,
        seed=277,
        return_masks=True,
        lesion_radius=(0.04, 0.06),
        lesion_contrast=(0.2, 0.3),
    )
    pixel_maps = det._maps(px.images)
    pixel = roc_auc_score(masks.flatten().numpy(), pixel_maps.flatten().numpy())
    print("pixel auroc (medium-like)", round(pixel, 4))
    print(f"fit {fit:.1f}s", det.history_[-1])
    fig = Figure(figsize=(16, 4))
    shown = list(range(8)) + list(np.nonzero(labels == 2)[0][:8])
    for j, i in enumerate(shown):
        ax = fig.add_subplot(2, 16, j + 1)
        ax.imshow(test.images[i, 0], cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
        ax = fig.add_subplot(2, 16, 16 + j + 1)
        ax.imshow(maps[i, 0], cmap="magma", vmin=0, vmax=1)
        ax.axis("off")
        ax.set_title(f"{float(maps[i].max()):.2f}", fontsize=7)
    fig.savefig(figure_path, dpi=80)


if __name__ == "__main__":
    main(detector_params(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "/tmp/maps.png")
