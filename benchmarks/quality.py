"""Label fidelity of each registered generator on digits.

Train a classifier (synthaug.metrics.CNNClassifier) on the real digits' training split; train
each generator on the same split; report the classifier's accuracy on the generator's samples
(equal numbers per class). High accuracy means a sample of class 3 looks like a 3 to a model
that learned real 3s. The classifier's accuracy on the real test split is the reference row.

    PYTHONPATH=. python benchmarks/quality.py [--quick] [--out quality.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

import synthaug
from synthaug.data import load_digits
from synthaug.generators import create_generator
from synthaug.metrics import CNNClassifier

EPOCHS = {"cvae": 100, "cgan": 150, "perclass-vae": 100, "perclass-gan": 150}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the epochs")
    parser.add_argument("--generators", nargs="+", default=sorted(EPOCHS))
    parser.add_argument("--per-class", type=int, default=200, help="samples per class")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="quality.json")
    args = parser.parse_args(argv)
    scale = 0.25 if args.quick else 1.0
    train, test = load_digits().split(0.3, seed=args.seed)
    t0 = time.perf_counter()
    clf = CNNClassifier(epochs=10 if args.quick else 20, seed=args.seed, device=args.device)
    clf.fit(train)
    real_acc = float((clf.predict(test.images) == test.labels.numpy()).mean())
    print(f"classifier on real test digits: {real_acc:.3f} ({time.perf_counter() - t0:.0f} s)")
    labels = torch.arange(train.n_classes).repeat_interleave(args.per_class)
    rows = [{"generator": "real test split", "label_fidelity": real_acc, "fit_s": 0.0}]
    for name in args.generators:
        epochs = max(1, round(EPOCHS.get(name, 100) * scale))
        t0 = time.perf_counter()
        model = create_generator(
            name, epochs=epochs, seed=args.seed, device=args.device, verbose=False
        ).fit(train)
        fit_s = time.perf_counter() - t0
        images, y = model.sample(len(labels), y=labels, seed=args.seed)
        pred = clf.predict(images)
        acc = float((pred == y.numpy()).mean())
        per_class = [float((pred[y.numpy() == c] == c).mean()) for c in range(train.n_classes)]
        rows.append(
            {
                "generator": name,
                "epochs": epochs,
                "label_fidelity": acc,
                "per_class": per_class,
                "fit_s": fit_s,
            }
        )
        print(
            f"{name:<14} epochs {epochs:>4}  label fidelity {acc:.3f}  fit {fit_s:.0f} s",
            flush=True,
        )
    print()
    print(f"{'generator':<16}{'epochs':>7}{'label fidelity':>16}{'worst class':>13}{'fit s':>8}")
    for r in rows:
        worst = f"{np.min(r['per_class']):.2f}" if "per_class" in r else "-"
        print(
            f"{r['generator']:<16}{r.get('epochs', '-'):>7}{r['label_fidelity']:>16.3f}"
            f"{worst:>13}{r['fit_s']:>8.0f}"
        )
    result = {
        "config": {
            "quick": args.quick,
            "per_class": args.per_class,
            "seed": args.seed,
            "device": args.device,
            "load_average": os.getloadavg(),
            "synthaug": synthaug.__version__,
        },
        "rows": rows,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
