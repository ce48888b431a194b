"""A development check of ddpm under dp= on the digits development pool (not the DP grid).

    OMP_NUM_THREADS=1 python benchmarks/dp_ddpm_dev.py [--epsilon 10] [--epochs 20]
        [--width 8] [--multiplicity 1 4] [--seeds 1]

The development pool (270 of the 1,797 digits, which no reported split touches) is split per
seed into a stratified 75% training part (202 digits) and a 25% held-out part (68), as the DP
grid splits the evaluation pool. A DDPM is trained with DP-SGD on the training part at
``--epsilon`` (delta: the default 1e-5; batch 45: the grid's sampling rate of 256 in 1,145)
for each noise multiplicity, and samples a class-balanced set as large as the training part;
a logistic regression trained on those samples is scored on the held-out part (balanced
accuracy: TSTR). The same logistic regression on the real training part is the ceiling, and
the DP-SGD classifier baseline (benchmarks/digits_dp.toml's settings) is the floor to beat.
Prints one row per setting: TSTR, epsilon spent, noise multiplier and seconds per fit.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

import synthaug
from synthaug.data import ImageDataset, load_digits, split_pools
from synthaug.generators import DDPM
from synthaug.metrics import DPSGDClassifier

GRID_RATE = 256 / 1145  # the DP grid's Poisson sampling rate


def tstr(train: ImageDataset, test: ImageDataset, seed: int) -> float:
    clf = LogisticRegression(max_iter=2000, random_state=seed)
    clf.fit(train.images.flatten(1).numpy(), train.labels.numpy())
    predicted = clf.predict(test.images.flatten(1).numpy())
    return float(balanced_accuracy_score(test.labels.numpy(), predicted))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilon", type=float, default=10.0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--multiplicity", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    _, development = split_pools(load_digits())
    dp = synthaug.DP(epsilon=args.epsilon)
    for seed in range(args.seeds):
        train, test = development.split(0.25, seed=seed)
        batch_size = max(2, round(GRID_RATE * len(train)))
        print(f"seed {seed}: real-data ceiling {tstr(train, test, seed):.3f}", flush=True)
        # The settings benchmarks/tuning/dp_sgd_classifier.py chose (as in digits_dp.toml).
        baseline = DPSGDClassifier(
            network="linear",
            epochs=60,
            batch_size=batch_size,
            lr=0.05,
            dp=synthaug.DP(epsilon=args.epsilon, max_grad_norm=0.1),
            seed=seed,
        )
        baseline.fit(train)
        score = balanced_accuracy_score(test.labels.numpy(), baseline.predict(test.images))
        print(f"seed {seed}: DP-SGD linear classifier baseline {score:.3f}", flush=True)
        for k in args.multiplicity:
            started = time.perf_counter()
            model = DDPM(
                epochs=args.epochs,
                batch_size=batch_size,
                lr=args.lr,
                width=args.width,
                noise_multiplicity=k,
                dp=dp,
                seed=seed,
                device="cpu",
                verbose=False,
            ).fit(train)
            seconds = time.perf_counter() - started
            labels = torch.arange(len(train)) % train.n_classes
            images, labels = model.sample(len(train), y=labels, seed=seed)
            synthetic = ImageDataset(images, labels, train.classes)
            report = model.privacy_
            print(
                f"seed {seed}: ddpm K={k} width {args.width} epochs {args.epochs} "
                f"({report['steps']} steps, batch {batch_size}): TSTR "
                f"{tstr(synthetic, test, seed):.3f}, epsilon {report['epsilon']:.3f}, noise "
                f"{report['noise_multiplier']:.3f}, loss {model.history_[-1]['loss']:.3f}, "
                f"{seconds:.0f} s a fit, pixel std {float(np.std(images.numpy())):.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
