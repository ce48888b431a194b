"""Choose the diffusion anomaly detector's settings on phantoms no reported cell uses (issue 33).

    PYTHONPATH=. python benchmarks/tuning/phantoms_ddpm_anomaly.py "epochs=100, width=16"

The argument is DDPM keyword arguments (``name=value`` pairs, values as Python literals).
The data are those of ``phantoms_synthetic_anomalies.py`` (DRAEM's tuning): training on the
255 normal slices of make_graded_phantoms(255, 60, size=32, seed=77), image AUROC on
make_graded_phantoms(100, 60, size=32, seed=177) (normal against all lesions, then per
grade), pixel AUROC on 50 + 50 medium-grade slices of make_phantoms(seed=277,
return_masks=True). One model is fitted; every scoring setting (noise level, residual,
reduction, draws) is then scored on it, with PCA (20 components) for reference. The reported
grid (``benchmarks/phantoms_anomaly.toml``) draws seeds 0-9 of other data. Results:
benchmarks/results/tuning/phantoms_ddpm_anomaly.txt.
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

import torch

# Run as a script, this folder is on the path: DRAEM's tuning script has the parsing and AUROCs.
from phantoms_synthetic_anomalies import aurocs, detector_params
from sklearn.metrics import roc_auc_score

from synthaug.anomaly import DDPMAnomalyDetector, PCADetector
from synthaug.data import make_graded_phantoms, make_phantoms
from synthaug.generators import DDPM

NOISE_LEVELS = (0.1, 0.2, 0.3, 0.5)
SCORINGS = [  # (residual, reduction, window)
    ("squared", "sum", 3),
    ("squared", "local-max", 3),
    ("positive", "local-max", 3),
    ("positive", "local-max", 5),
    ("positive", "local-max-z", 5),
]


def main(params: dict[str, Any]) -> None:
    torch.set_num_threads(1)
    ds = make_graded_phantoms(255, 60, size=32, kind="chest", seed=77)
    test = make_graded_phantoms(100, 60, size=32, kind="chest", seed=177)
    normal = ds.subset((ds.labels == 0).nonzero().flatten())
    labels = test.labels.numpy()
    y = labels != 0
    px, masks = make_phantoms(
        (50, 50),
        size=32,
        seed=277,
        return_masks=True,
        lesion_radius=(0.04, 0.06),
        lesion_contrast=(0.2, 0.3),
    )
    model = DDPM(device="cpu", guidance=0.0, label_dropout=0.0, verbose=False, **params)
    started = time.time()
    det = DDPMAnomalyDetector(ddpm=model, validation_fraction=0.0, n_draws=1).fit(normal)
    print(f"fit {time.time() - started:.1f}s; last loss {det.ddpm_.history_[-1]}", flush=True)
    pca = PCADetector(n_components=20, validation_fraction=0.0).fit(normal)
    print("pca", *aurocs(y, labels, pca.decision_function(test)), flush=True)
    for level, draws in itertools.product(NOISE_LEVELS, (1, 2)):
        for residual, reduction, window in SCORINGS:
            det.set_params(
                noise_level=level,
                n_draws=draws,
                residual=residual,
                reduction=reduction,
                window=window,
            )
            started = time.time()
            det._calibrate(normal.images)  # local-max-z's statistics, on the training normals
            image = aurocs(y, labels, det.decision_function(test))
            pixel = roc_auc_score(masks.flatten().numpy(), det.anomaly_map(px).flatten().numpy())
            print(
                f"noise {level} draws {draws} {residual} {reduction} w{window}: image",
                *image,
                f"pixel {pixel:.4f} ({time.time() - started:.0f}s)",
                flush=True,
            )


if __name__ == "__main__":
    main(detector_params(sys.argv[1] if len(sys.argv) > 1 else ""))
