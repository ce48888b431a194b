"""A development check of dp-merf on the digits development pool (not the DP grid).

    python benchmarks/dp_merf_dev.py [--seeds 2] [--epochs 200]

The development pool (270 of the 1,797 digits, which no reported split touches) is split per
seed into a stratified 60% training part (162 digits, about 16 per class) and a 40% held-out
part (108). DP-MERF is fitted on the training part at each epsilon (delta: the default 1e-5;
"none" = no dp) and samples a class-balanced set as large as the training part; a logistic
regression trained on those samples is scored on the held-out part (balanced accuracy: TSTR).
The same logistic regression trained on the real training part is the ceiling. Prints one row
per epsilon: mean and each seed's figure, and the seconds per fit.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

import synthaug
from synthaug.data import ImageDataset, load_digits, split_pools
from synthaug.generators import DPMERF

EPSILONS = (0.2, 1.0, 10.0, math.inf)


def tstr(train: ImageDataset, test: ImageDataset, seed: int) -> float:
    clf = LogisticRegression(max_iter=2000, random_state=seed)
    clf.fit(train.images.flatten(1).numpy(), train.labels.numpy())
    predicted = clf.predict(test.images.flatten(1).numpy())
    return float(balanced_accuracy_score(test.labels.numpy(), predicted))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="default: the family's")
    args = parser.parse_args()
    torch.set_num_threads(1)
    _, development = split_pools(load_digits())
    rows: dict[str, list[tuple[float, float]]] = {}
    ceiling = []
    for seed in range(args.seeds):
        train, test = development.split(0.4, seed=seed)
        ceiling.append(tstr(train, test, seed))
        for epsilon in EPSILONS:
            dp = None if math.isinf(epsilon) else synthaug.DP(epsilon=epsilon)
            params = {"seed": seed, "dp": dp, "verbose": False, "device": "cpu"}
            if args.epochs is not None:
                params["epochs"] = args.epochs
            started = time.perf_counter()
            model = DPMERF(**params).fit(train)
            seconds = time.perf_counter() - started
            labels = torch.arange(len(train)) % train.n_classes
            images, labels = model.sample(len(train), y=labels, seed=seed)
            synthetic = ImageDataset(images, labels, train.classes)
            score = tstr(synthetic, test, seed)
            name = "none" if dp is None else f"{epsilon:g}"
            rows.setdefault(name, []).append((score, seconds))
            spent = "" if dp is None else f", epsilon spent {model.privacy_spent_[0]:.4f}"
            print(f"seed {seed} epsilon {name}: TSTR {score:.3f}, {seconds:.1f} s{spent}")
    print(f"\n{len(train)} training / {len(test)} held-out digits per seed, {args.seeds} seeds")
    print("| epsilon | TSTR (balanced acc.), mean | per seed | seconds per fit |")
    print("|---|---|---|---|")
    for name, values in rows.items():
        scores, seconds = np.array(values).T
        per_seed = ", ".join(f"{s:.3f}" for s in scores)
        print(f"| {name} | {scores.mean():.3f} | {per_seed} | {seconds.mean():.1f} |")
    per_seed = ", ".join(f"{s:.3f}" for s in ceiling)
    print(f"| real data (ceiling) | {np.mean(ceiling):.3f} | {per_seed} | - |")


if __name__ == "__main__":
    main()
