"""Fidelity, utility and privacy of the CVAE on digits, as ``synthaug evaluate`` measures them.

Trains ``CVAE`` with its default settings on the train part of
``load_digits().split(0.25, seed=0)`` (1,347 images), saves it, and runs the CLI twice on it:
once with the logistic-regression utility classifier (training and saving the embedding) and
once with the CNN (reusing that embedding). ``synthaug evaluate`` scores fidelity against the
450 held-out digits of the test part. For scale, it also scores 450 real training digits (drawn
with the test part's labels) against the test part in the same embedding, the fidelity of
real data a generator can hope for, next to 450 CVAE samples with those labels.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/evaluate_cvae.py --out cvae-eval

Everything runs on the CPU and is deterministic for ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from synthaug.cli import main
from synthaug.data import ImageDataset, load_digits
from synthaug.generators import CVAE
from synthaug.metrics import FeatureExtractor, fidelity


def run(out: Path, seed: int, epochs: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    train, test = load_digits().split(0.25, seed=0)
    t0 = time.perf_counter()
    model = CVAE(epochs=epochs, seed=seed, verbose=False, device="cpu").fit(train)
    model_path = model.save(out / "cvae-digits.safetensors")
    print(f"CVAE: {epochs} epochs on {len(train)} digits in {time.perf_counter() - t0:.0f} s\n")
    features = out / "digits-features.safetensors"
    common = ["--data", "digits", "--seed", str(seed), "--device", "cpu"]
    main(["evaluate", str(model_path), *common, "--out", str(out / "eval-logreg.json"),
          "--save-features", str(features)])  # fmt: skip
    print()
    main(["evaluate", str(model_path), *common, "--out", str(out / "eval-cnn.json"),
          "--features", str(features), "--classifier", "cnn"])  # fmt: skip
    # Coverage and recall depend on how many samples there are, so the reference (450 real
    # training digits, one per test digit of the same class) is set against 450 CVAE samples
    # with the same labels; both are scored against the 450 held-out digits, as evaluate does.
    fx = FeatureExtractor.load(features, device="cpu")
    images, labels = model.sample(len(test), y=test.labels, seed=seed)
    rng = np.random.default_rng(seed)
    drawn = [
        int(i)
        for c, n in test.class_counts().items()
        for i in rng.choice(np.flatnonzero(train.labels.numpy() == c), n, replace=False)
    ]
    rows = {
        "real train digits (450)": fidelity(test, train.subset(drawn), features=fx, seed=seed),
        "cvae (450, test labels)": fidelity(
            test, ImageDataset(images, labels, train.classes), features=fx, seed=seed
        ),
    }
    (out / "fidelity-450.json").write_text(json.dumps(rows, indent=2))
    keys = ("fd", "precision", "recall", "density", "coverage", "c2st_auc", "label_fidelity")
    print("\nfidelity against the held-out test part at equal size, same embedding")
    print(f"{'':<26}" + "".join(f"{k:>15}" for k in keys))
    for name, r in rows.items():
        print(f"{name:<26}" + "".join(f"{r[k]:>15.3f}" for k in keys))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("cvae-eval"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=100, help="CVAE epochs (default: 100)")
    args = parser.parse_args()
    run(args.out, args.seed, args.epochs)
