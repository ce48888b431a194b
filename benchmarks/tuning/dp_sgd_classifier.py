"""Choose the DP-SGD classifier baseline's settings on the digits development pool.

    OMP_NUM_THREADS=1 python benchmarks/tuning/dp_sgd_classifier.py [--seeds 3]

The development pool (270 of the 1,797 digits, which no reported split touches) is split per
seed into a stratified 75% training part (202 digits) and a 25% held-out part (68), as the DP
grid (benchmarks/digits_dp.toml) splits the evaluation pool. Each candidate (network, epochs,
learning rate, clipping bound) is a ``DPSGDClassifier`` trained on the training part at each
epsilon and scored on the held-out part (balanced accuracy). The Poisson sampling rate is the
grid's (batch 256 of its 1,145 training digits), so a candidate's steps and noise multiplier
are exactly those it has in the grid; only the record count differs (202 here), so the noise
weighs about 5.7 times more per record here and these accuracies understate the grid's.

Prints every candidate's mean (and each seed's) per epsilon and the one with the best mean
over the epsilons, which benchmarks/digits_dp.toml's ``dp-sgd`` row uses.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

import synthaug
from synthaug.data import load_digits, split_pools
from synthaug.metrics import DPSGDClassifier

EPSILONS = (1.0, 10.0)
# The grid's sampling rate: batch_size 256 of 1,145 training digits.
GRID_RATE = 256 / 1145
EPOCHS = (20, 60, 150)
LRS = (2e-3, 1e-2, 5e-2, 2e-1)
CLIPS = (0.1, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--networks", nargs="+", default=["linear"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    _, development = split_pools(load_digits())
    splits = [development.split(0.25, seed=seed) for seed in range(args.seeds)]
    batch_size = max(2, round(GRID_RATE * len(splits[0][0])))
    print(f"{len(splits[0][0])} training, {len(splits[0][1])} held-out digits; batch {batch_size}")
    means: dict[tuple, float] = {}
    for network, epochs, lr, clip in itertools.product(args.networks, EPOCHS, LRS, CLIPS):
        key = (network, epochs, lr, clip)
        per_eps = []
        for epsilon in EPSILONS:
            dp = synthaug.DP(epsilon=epsilon, max_grad_norm=clip)
            scores, started = [], time.perf_counter()
            for seed, (train, test) in enumerate(splits):
                clf = DPSGDClassifier(
                    network=network,
                    epochs=epochs,
                    batch_size=batch_size,
                    lr=lr,
                    dp=dp,
                    seed=seed,
                    device="cpu",
                ).fit(train)
                predicted = clf.predict(test.images)
                scores.append(balanced_accuracy_score(test.labels.numpy(), predicted))
            seconds = (time.perf_counter() - started) / len(splits)
            per_eps.append(float(np.mean(scores)))
            print(
                f"{network:6s} epochs {epochs:3d} lr {lr:<6g} clip {clip:<4g} eps {epsilon:<4g} "
                f"{np.mean(scores):.3f} ({' '.join(f'{s:.3f}' for s in scores)}) "
                f"{seconds:.1f} s/fit",
                flush=True,
            )
        means[key] = float(np.mean(per_eps))
    best = max(means, key=means.get)
    network, epochs, lr, clip = best
    print(
        f"best mean over epsilons {EPSILONS}: network={network!r} epochs={epochs} lr={lr:g} "
        f"max_grad_norm={clip:g} ({means[best]:.3f})"
    )


if __name__ == "__main__":
    main()
