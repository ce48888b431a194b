"""Choosing LesionLocalizer's thresholds on development-pool phantoms (no reported seed).

    python benchmarks/tuning/lesion_masks.py

Per kind (chest, brain): 400 normal and 20 lesion 64x64 slices from seed 10**9 + 2 (the lesion
task's development pool draws from seeds offset by a billion; reported cells use seeds 0-19),
one default localizer VAE fitted on the normal slices, then the mean Dice of the weak masks
against the true ones for each smoothing, floor quantile and relative threshold. The
residual map is computed once per smoothing, so the grid costs one VAE fit per kind.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch

from synthaug.augment import LesionLocalizer
from synthaug.data import make_phantoms

SEED = 10**9 + 2
SIGMAS = (1.0, 1.5, 2.0)
QUANTILES = (0.98, 0.99, 0.995, 0.999)
RELATIVE = (0.3, 0.4, 0.5)


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten(1), b.flatten(1)
    overlap = 2 * (a & b).sum(1).double()
    return float((overlap / (a.sum(1) + b.sum(1)).clamp(min=1).double()).mean())


def main() -> None:
    torch.set_num_threads(1)
    for kind in ("chest", "brain"):
        data, masks = make_phantoms((400, 20), size=64, kind=kind, seed=SEED, return_masks=True)
        normal, lesion = data.images[data.labels == 0], data.images[data.labels == 1]
        true = masks[data.labels == 1]
        t0 = time.perf_counter()
        localizer = LesionLocalizer(seed=0, device="cpu").fit(normal)
        print(f"{kind}: localizer fitted in {time.perf_counter() - t0:.0f} s")
        rows = []
        for sigma in SIGMAS:
            localizer.set_params(sigma=sigma)
            on_normal = localizer.residual_map(normal).numpy()
            for q, rel in itertools.product(QUANTILES, RELATIVE):
                localizer.floor_ = float(np.quantile(on_normal, q))
                localizer.set_params(floor_quantile=q, relative_threshold=rel)
                rows.append((dice(localizer.masks(lesion), true), sigma, q, rel))
        for d, sigma, q, rel in sorted(rows, reverse=True)[:5]:
            print(f"  dice {d:.3f}  sigma {sigma}  floor_quantile {q}  relative_threshold {rel}")
        default = [r for r in rows if r[1:] == (1.5, 0.99, 0.4)][0]
        print(f"  default (1.5, 0.99, 0.4): dice {default[0]:.3f}")


if __name__ == "__main__":
    main()
