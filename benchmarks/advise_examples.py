"""``synthaug advise`` on the two cases issue 37's closing note asks for, at a 20-minute budget.

- digits at ratio 0.02: scikit-learn's 1,797 digits with classes 5-9 cut to 2% of their
  items (at least 2), as ``benchmarks/digits_imbalanced.toml`` cuts its training parts; the
  command line's way in is ``--data`` on the ``.npz`` this script writes.
- breast cancer, the malignant class cut to 10% of its rows (at least 2), as
  ``benchmarks/tabular.py`` cuts it; feature vectors scaled to [0, 1] by each feature's range
  over the table (the values advise takes; no domain ranges ship with the table).

The cuts are drawn with ``--seed``. Each run writes its advice folder under ``--out``; calling
again with the same folders continues (advise's own resume), so a run cut short by the session
is resumed, not restarted.

    OMP_NUM_THREADS=1 python benchmarks/advise_examples.py --out benchmarks/results/advise --budget 20m --threads 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits

import synthaug
from synthaug.data import ImageDataset, from_arrays


def cut(y: np.ndarray, classes: list[int], keep: float, seed: int) -> np.ndarray:
    """The rows that stay when each of ``classes`` keeps ``keep`` of its rows (at least 2)."""
    rng = np.random.default_rng(seed)
    rows = [np.flatnonzero(~np.isin(y, classes))]
    for c in classes:
        members = np.flatnonzero(y == c)
        rows.append(rng.choice(members, size=max(2, round(keep * len(members))), replace=False))
    return np.sort(np.concatenate(rows))


def digits_r002(seed: int) -> ImageDataset:
    data = load_digits()
    rows = cut(data.target, [5, 6, 7, 8, 9], 0.02, seed)
    images = torch.as_tensor(data.images[rows] / 16.0, dtype=torch.float32)[:, None]
    return ImageDataset(images, torch.as_tensor(data.target[rows]), [str(c) for c in range(10)])


def breast_cancer_10(seed: int) -> ImageDataset:
    data = load_breast_cancer()
    rows = cut(data.target, [0], 0.1, seed)
    X = data.data[rows]
    X = (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))
    return from_arrays(X.astype(np.float32), data.target[rows], classes=list(data.target_names))


CASES = {"digits-r0.02": digits_r002, "breast-cancer-10pct": breast_cancer_10}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/advise"))
    parser.add_argument("--budget", default="20m")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    for name in args.cases.split(","):
        dataset = CASES[name](args.seed)
        print(f"== {name}: {len(dataset)} items, {dataset.class_counts()}")
        advice = synthaug.advise(
            dataset,
            budget=args.budget,
            out=args.out / name,
            threads=args.threads,
            device="cpu",
            data_name=name,
            progress=False,
        )
        print(advice.verdict)


if __name__ == "__main__":
    main()
