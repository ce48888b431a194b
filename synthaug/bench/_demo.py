"""The walking-skeleton demo: does a conditional VAE help an imbalanced digits classifier?"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import synthaug
from synthaug.augment import AugmentedDataset, ClassicalAugmentation, RandomOverSampling
from synthaug.data import ImageDataset, load_digits, make_imbalanced
from synthaug.errors import InvalidParameterError
from synthaug.generators import CVAE
from synthaug.metrics import CNNClassifier, classification_scores

METHODS = ("none", "random-oversampling", "classical", "cvae")
REPORTED = ("balanced_accuracy", "macro_f1", "minority_recall")


def _training_set(
    method: str, imbalanced: ImageDataset, seed: int, epochs: int, verbose: bool
) -> tuple[ImageDataset, Any]:
    if method == "none":
        return imbalanced, None
    if method == "random-oversampling":
        source = RandomOverSampling().fit(imbalanced)
    elif method == "classical":
        source = ClassicalAugmentation().fit(imbalanced)
    elif method == "cvae":
        source = CVAE(epochs=epochs, seed=seed, verbose=verbose).fit(imbalanced)
    else:  # pragma: no cover - guarded by run_demo
        raise InvalidParameterError(f"unknown method {method!r}")
    return AugmentedDataset(imbalanced, source, strategy="balance", seed=seed), source


def run_demo(
    out: str | Path = "synthaug-demo",
    *,
    seeds: int = 3,
    ratio: float = 0.05,
    epochs: int = 150,
    minority_classes: Sequence[int] = (5, 6, 7, 8, 9),
    classifier_epochs: int = 30,
    test_size: float = 0.4,
    verbose: bool = True,
    dataset: ImageDataset | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo and write ``results.json`` and ``samples.png`` into ``out``.

    For each seed: split the data (stratified, ``test_size`` held out), keep ``ratio`` of each
    minority class in the training part, and train the same small CNN on the imbalanced set and
    on the set rebalanced by each method; score it on the untouched test split.

    Returns
    -------
    dict
        ``config``, ``runs`` (one entry per seed and method) and ``summary`` (mean and std
        per method and metric).
    """
    if seeds < 1:
        raise InvalidParameterError(f"seeds must be >= 1, got {seeds}")
    if epochs < 1:
        raise InvalidParameterError(f"epochs must be >= 1, got {epochs}")
    if not 0 < ratio <= 1:
        raise InvalidParameterError(f"ratio must be in (0, 1], got {ratio}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_digits() if dataset is None else dataset
    config = {
        "data": "sklearn digits" if dataset is None else "custom",
        "seeds": seeds,
        "ratio": ratio,
        "minority_classes": list(minority_classes),
        "cvae_epochs": epochs,
        "classifier": f"CNNClassifier(epochs={classifier_epochs})",
        "test_size": test_size,
        "synthaug_version": synthaug.__version__,
        "torch_version": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads".strip(),
    }
    runs: list[dict[str, Any]] = []
    grid_source = None
    for seed in range(seeds):
        train, test = data.split(test_size, seed=seed)
        imbalanced = make_imbalanced(
            train, ratio=ratio, minority_classes=minority_classes, seed=seed
        )
        echo(
            f"seed {seed}: train counts {list(imbalanced.class_counts().values())}, test {len(test)}"
        )
        for method in METHODS:
            t0 = time.perf_counter()
            train_set, source = _training_set(method, imbalanced, seed, epochs, verbose)
            t1 = time.perf_counter()
            clf = CNNClassifier(epochs=classifier_epochs, seed=seed).fit(train_set)
            pred = clf.predict(test.images)
            t2 = time.perf_counter()
            scores = classification_scores(
                test.labels.numpy(),
                pred,
                minority_classes=minority_classes,
                labels=range(data.n_classes),
            )
            runs.append(
                {
                    "seed": seed,
                    "method": method,
                    **scores,
                    "augment_seconds": t1 - t0,
                    "classifier_seconds": t2 - t1,
                }
            )
            if method == "cvae":
                grid_source = (imbalanced, source)
    summary = summarize(runs)
    result = {"config": config, "summary": summary, "runs": runs}
    (out / "results.json").write_text(json.dumps(result, indent=2))
    if grid_source is not None:
        from synthaug.bench._plots import save_sample_grid

        real, model = grid_source
        labels = torch.arange(real.n_classes).repeat_interleave(8)
        images, labels = model.sample(len(labels), y=labels, seed=0)
        save_sample_grid(
            real,
            images,
            labels,
            out / "samples.png",
            title="digits: real (left) vs CVAE samples (right)",
        )
    echo("")
    echo(
        format_table(
            summary,
            title=f"digits, classes {list(minority_classes)} kept at {ratio:g}, {seeds} seed(s), mean ± std",
        )
    )
    echo(f"\nwrote {out / 'results.json'} and {out / 'samples.png'}")
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and sample standard deviation over seeds, per method and metric."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for method in dict.fromkeys(r["method"] for r in runs):
        rows = [r for r in runs if r["method"] == method]
        summary[method] = {}
        for key in (*REPORTED, "augment_seconds"):
            values = np.array([r[key] for r in rows], dtype=float)
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            summary[method][key] = {"mean": float(values.mean()), "std": std}
    return summary


def format_table(
    summary: dict[str, dict[str, dict[str, float]]],
    title: str = "",
    columns: tuple[str, ...] = REPORTED,
) -> str:
    """A fixed-width text table of ``summary`` (the one the demo prints), one column per metric."""
    header = f"{'method':<22}" + "".join(f"{k:>20}" for k in columns) + f"{'augment s':>12}"
    lines = [title, header, "-" * len(header)] if title else [header, "-" * len(header)]
    for method, stats in summary.items():
        cells = "".join(
            f"{stats[k]['mean']:>12.3f} ± {stats[k]['std']:.3f}"
            if not math.isnan(stats[k]["mean"])
            else f"{'n/a':>20}"
            for k in columns
        )
        lines.append(f"{method:<22}{cells}{stats['augment_seconds']['mean']:>12.1f}")
    return "\n".join(lines)
