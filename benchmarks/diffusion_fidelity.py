"""A development-pool fidelity check of the diffusion family (``ddpm``) beside the CVAE.

Digits' development pool (``select_pool(load_digits(), "development")``, 15% of the digits,
which no reported result touches) is split 2:1 into a training and a test part. ``CVAE`` (its
defaults) and ``DDPM`` (``--ddpm-epochs``) are fitted on the training part; each samples as
many images as the test part holds, with its labels, and ``synthaug.metrics.fidelity`` scores
them against the test part in one embedding (a ``FeatureExtractor`` trained on the training
part). Real training digits drawn with the same labels give the reference a generator can
hope for. The fit wall time of each model is printed beside its scores. Not a grid: one seed,
a small test part, so FD is biased upwards and noisy; compare rows within one run.

With ``--grid DIR`` it also saves each model's samples beside held-out digits, per class
(``DIR/fidelity_<model>.png``).

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/diffusion_fidelity.py [--ddpm-epochs 300]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from synthaug.bench._plots import save_sample_grid
from synthaug.data import ImageDataset, load_digits, select_pool
from synthaug.generators import CVAE, DDPM
from synthaug.metrics import FeatureExtractor, fidelity

KEYS = ("fd", "precision", "recall", "density", "coverage", "c2st_auc", "label_fidelity")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ddpm-epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--grid", type=Path, default=None, help="folder for sample grids")
    args = parser.parse_args(argv)
    train, test = select_pool(load_digits(), "development").split(1 / 3, seed=args.seed)
    fx = FeatureExtractor(seed=args.seed, device="cpu").fit(train)
    rng = np.random.default_rng(args.seed)
    drawn = [
        int(i)
        for c, n in test.class_counts().items()
        for i in rng.choice(np.flatnonzero(train.labels.numpy() == c), n, replace=False)
    ]
    rows: dict = {}

    def score(name: str, data: ImageDataset, seconds: float | None) -> None:
        result = fidelity(test, data, features=fx, per_class=False, seed=args.seed, device="cpu")
        rows[name] = {k: float(result[k]) for k in KEYS} | {"fit_seconds": seconds}

    score("real training digits", train.subset(drawn), None)
    models = {
        "cvae (defaults)": CVAE(seed=args.seed, verbose=False, device="cpu"),
        f"ddpm ({args.ddpm_epochs} epochs)": DDPM(
            epochs=args.ddpm_epochs, seed=args.seed, verbose=False, device="cpu"
        ),
    }
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(train)
        seconds = time.perf_counter() - start
        images, labels = model.sample(len(test), y=test.labels, seed=args.seed)
        score(name, ImageDataset(images, labels, train.classes), seconds)
        if args.grid is not None:
            title = f"held-out digits (left) vs {name} (right)"
            path = args.grid / f"fidelity_{model.registry_name}.png"
            save_sample_grid(test, images, labels, path, per_class=8, title=title)
        if isinstance(model, DDPM):
            for guidance in (0.0, 3.0):
                model.set_params(guidance=guidance)
                images, labels = model.sample(len(test), y=test.labels, seed=args.seed)
                score(
                    f"{name}, guidance {guidance:g}",
                    ImageDataset(images, labels, train.classes),
                    seconds,
                )
    print(f"train {len(train)} digits, test {len(test)}; torch threads {torch.get_num_threads()}")
    print(f"{'':<34}" + "".join(f"{k:>15}" for k in (*KEYS, "fit s")))
    for name, r in rows.items():
        fit_s = "" if r["fit_seconds"] is None else f"{r['fit_seconds']:.0f}"
        print(f"{name:<34}" + "".join(f"{r[k]:>15.3f}" for k in KEYS) + f"{fit_s:>15}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
