"""Does the 3D phantoms' difficulty knob make lesions harder to find? A PCA anomaly detector
fitted on normal brain volumes scores held-out normal and lesion volumes at each difficulty.

    PYTHONPATH=. OMP_NUM_THREADS=2 python benchmarks/phantom_volumes_difficulty.py

Per difficulty and seed: 40 normal training volumes and 10 + 10 test volumes (normal,
lesion), drawn with different seeds, 32 x 64 x 64 voxels at 2.5 x 1.5 x 1.5 mm. PCA (10
components) is fitted on the normal volumes; a test volume's score is its reconstruction
residual, either the mean squared residual over the volume (the usual PCA score) or the
largest residual after a 3x3x3 mean filter (a local score, better suited to one small
lesion). The lesion AUROC of each is printed per seed, and a montage of the first seed's test
volumes (2 per class, 5 slices each, label maps outlined) is saved per difficulty to
``docs/img/phantom_volumes_brain_<difficulty>.png``. A few minutes of CPU.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from synthaug.bench import save_volume_montage
from synthaug.data import PHANTOM_DIFFICULTIES, make_phantom_volumes

N_TRAIN, N_TEST, COMPONENTS, SEEDS = 40, 10, 10, (0, 1)
IMG = Path(__file__).resolve().parent.parent / "docs" / "img"


def scores(pca: PCA, volumes: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean squared residual and the largest 3x3x3-averaged residual of each volume."""
    flat = volumes.reshape(len(volumes), -1).numpy()
    residual = flat - pca.inverse_transform(pca.transform(flat))
    mean_sq = (residual**2).mean(axis=1)
    local = F.avg_pool3d(
        torch.from_numpy(residual**2).reshape(volumes.shape), 3, stride=1, padding=1
    )
    return mean_sq, local.flatten(1).amax(1).numpy()


def main() -> int:
    torch.set_num_threads(2)
    print("difficulty  seed  AUROC(mean sq. residual)  AUROC(max local residual)")
    summary = {}
    for difficulty in PHANTOM_DIFFICULTIES:
        rows = []
        for seed in SEEDS:
            start = time.perf_counter()
            train = make_phantom_volumes(
                {"normal": N_TRAIN}, kind="brain", seed=1000 + seed, difficulty=difficulty
            )
            test = make_phantom_volumes(
                (N_TEST, N_TEST), kind="brain", seed=2000 + seed, difficulty=difficulty
            )
            pca = PCA(n_components=COMPONENTS, random_state=seed)
            pca.fit(train.stacked().reshape(len(train), -1).numpy())
            y = test.labels.numpy()
            global_score, local_score = scores(pca, test.stacked())
            auc = (roc_auc_score(y, global_score), roc_auc_score(y, local_score))
            rows.append(auc)
            print(
                f"{difficulty:<10}  {seed:>4}  {auc[0]:>24.3f}  {auc[1]:>25.3f}"
                f"   ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
            if seed == SEEDS[0]:
                save_volume_montage(
                    test,
                    IMG / f"phantom_volumes_brain_{difficulty}.png",
                    slices=5,
                    per_class=2,
                    title=f"3D brain phantoms, difficulty {difficulty!r}: 5 of 32 slices, "
                    f"lesions outlined",
                )
        summary[difficulty] = np.mean(rows, axis=0)
    print()
    for difficulty, (g, loc) in summary.items():
        print(f"{difficulty:<10}  mean over seeds  {g:.3f}  {loc:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
