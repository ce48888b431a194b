"""One-class anomaly detection benchmark: synthaug's VAE and f-AnoGAN detectors against the
classical baselines (IsolationForest, OC-SVM, PCA reconstruction, kNN distance), all measured
in the same run with the same seeds and splits.

Settings (see docs/anomaly.md):

- ``digits``: scikit-learn digits, each of the 10 classes normal in turn (Ruff et al. 2018
  protocol), 30% stratified test split per seed.
- ``phantoms``: chest-CT-like phantoms (``synthaug.data.make_phantoms``); train on normal
  slices only; test normal slices against lesion slices of three grades (large/bright,
  medium, small/faint lesions), one AUROC per grade.
- ``few-normals``: digits with only 20 normal training images per class; the VAE and kNN
  also run with 200 synthetic normals from a CVAE fitted on those 20.

Examples::

    python benchmarks/anomaly.py --setting digits --quick
    python benchmarks/anomaly.py --setting all --out anomaly-results
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

import synthaug
from synthaug.anomaly import (
    GANAnomalyDetector,
    IsolationForestDetector,
    KNNDetector,
    OneClassSVMDetector,
    PCADetector,
    VAEAnomalyDetector,
    format_one_class_table,
    run_one_class,
    summarize_one_class,
)
from synthaug.data import load_digits

# Lesion grades for the phantom setting: (radius range as a fraction of the width, contrast).
PHANTOM_GRADES = {
    "large-bright": ((0.06, 0.09), (0.30, 0.45)),
    "medium": ((0.04, 0.06), (0.15, 0.30)),
    "small-faint": ((0.03, 0.04), (0.08, 0.15)),
}
CLASSICAL = ("isolation-forest", "ocsvm", "pca", "knn")


def detectors(setting: str, quick: bool, vae_epochs: int | None = None) -> dict:
    """The detectors of one setting. Thresholds are not needed for AUROC/AUPRC, so every
    detector trains on all normal samples (``validation_fraction=0``)."""
    common = {"validation_fraction": 0.0}
    epochs = vae_epochs or (60 if quick else 200)
    vae = {"device": "cpu", "epochs": epochs, "latent_dim": 8, **common}
    gan = {
        "device": "cpu",
        "epochs": 60 if quick else 300,
        "encoder_epochs": 40 if quick else 200,
        **common,
    }
    dets = {
        "isolation-forest": IsolationForestDetector(**common),
        "ocsvm": OneClassSVMDetector(**common),
        "pca": PCADetector(n_components=10, **common),
        "knn": KNNDetector(n_neighbors=5, **common),
        "vae-reconstruction": VAEAnomalyDetector(score="reconstruction", **vae),
        "vae-elbo": VAEAnomalyDetector(score="elbo", **vae),
        "f-anogan": GANAnomalyDetector(**gan),
    }
    if setting == "few-normals":
        from synthaug.generators import CVAE

        # The generator sees only the 20 real normals. With 20 + 200 samples the VAE makes 4
        # steps per epoch instead of 1, so it gets a quarter of the epochs: same step count.
        cvae = CVAE(epochs=100 if quick else 200, latent_dim=8, device="cpu", verbose=False)
        syn = {"augment_with": cvae, "n_synthetic": 200}
        dets["knn+cvae-synthetic"] = KNNDetector(n_neighbors=5, **syn, **common)
        dets["vae-reconstruction+cvae-synthetic"] = VAEAnomalyDetector(
            score="reconstruction", **syn, **{**vae, "epochs": vae["epochs"] // 4}
        )
    if setting == "phantoms":
        # 32x32 slices: PCA keeps more components; the VAE runs as an MLP (a convolutional
        # CVAE is ~10x slower on a shared CPU) and scores the most anomalous 3x3 patch, as
        # lesions are small and local; f-AnoGAN trains fewer epochs (1024-wide inputs).
        dets["pca"] = PCADetector(n_components=20, **common)
        flat = {**vae, "flatten": True, "epochs": 40 if quick else 100}
        dets["vae-reconstruction"] = VAEAnomalyDetector(score="reconstruction", **flat)
        dets["vae-reconstruction-local-max"] = VAEAnomalyDetector(
            score="reconstruction", reduction="local-max", **flat
        )
        dets["vae-elbo"] = VAEAnomalyDetector(score="elbo", **flat)
        # Tuned on phantom seeds 10-13 (never on the reported seeds 0-2): a near-autoencoder
        # (beta=0.1, 32 latents, 300 epochs) reconstructs the anatomy more closely, and lung
        # nodules are brighter than the lung, so only positive residuals count (5x5 window).
        # The "-z" variant also standardizes the residual per pixel on the training normals.
        tuned = {**flat, "epochs": 100 if quick else 300, "latent_dim": 32, "beta": 0.1}
        dets["vae-reconstruction-local-max-positive"] = VAEAnomalyDetector(
            score="reconstruction", reduction="local-max", residual="positive", window=5, **tuned
        )
        dets["vae-reconstruction-local-max-z-positive"] = VAEAnomalyDetector(
            score="reconstruction", reduction="local-max-z", residual="positive", window=5, **tuned
        )
        dets["f-anogan"] = GANAnomalyDetector(
            **{**gan, "epochs": 40 if quick else 150, "encoder_epochs": 30 if quick else 100}
        )
    return dets


def run_digits(seeds: list[int], quick: bool, few: bool, echo, only=None, vae_epochs=None) -> dict:
    setting = "few-normals" if few else "digits"
    dets = detectors(setting, quick, vae_epochs)
    if only:
        dets = {k: v for k, v in dets.items() if k in only}
    return run_one_class(
        load_digits(),
        dets,
        seeds=seeds,
        normal_classes=[0, 4, 8] if quick else None,
        test_size=0.3,
        n_normal=20 if few else None,
        echo=echo,
    )


def run_phantoms(seeds: list[int], quick: bool, echo, size: int, only=None) -> dict | None:
    try:
        from synthaug.data import make_phantoms
    except ImportError:
        echo("phantoms skipped: synthaug.data.make_phantoms is not available in this checkout")
        return None
    from sklearn.metrics import average_precision_score, roc_auc_score

    from synthaug.anomaly import clone_detector

    n_train, n_test = (100, 40) if quick else (300, 100)
    dets = detectors("phantoms", quick)
    if only:
        dets = {k: v for k, v in dets.items() if k in only}
    records = []
    for seed in seeds:
        train = make_phantoms({"normal": n_train}, size=size, seed=1000 * seed)
        tests = {
            grade: make_phantoms(
                n_test, size=size, seed=1000 * seed + 1 + g, lesion_radius=r, lesion_contrast=c
            )
            for g, (grade, (r, c)) in enumerate(PHANTOM_GRADES.items())
        }
        for name, template in dets.items():
            start = time.perf_counter()
            det = clone_detector(template, seed=seed).fit(train)
            seconds = time.perf_counter() - start
            for grade, test in tests.items():
                y, s = test.labels.numpy(), det.score(test)
                records.append(
                    {
                        "detector": name,
                        "normal_class": grade,
                        "seed": seed,
                        "auroc": float(roc_auc_score(y, s)),
                        "auprc": float(average_precision_score(y, s)),
                        "fit_seconds": seconds,
                        "n_train": det.n_train_,
                    }
                )
                echo(
                    f"seed {seed} {grade} {name}: AUROC {records[-1]['auroc']:.4f} ({seconds:.0f}s)"
                )
    return {
        "records": records,
        "summary": summarize_one_class(records),
        "settings": {
            "seeds": seeds,
            "size": size,
            "kind": "chest",
            "n_train_normal": n_train,
            "n_test_per_class": n_test,
            "grades": {k: {"radius": r, "contrast": c} for k, (r, c) in PHANTOM_GRADES.items()},
            "detectors": {name: repr(d) for name, d in dets.items()},
        },
    }


def verdict(summary: dict, metric: str = "auroc") -> list[str]:
    """Compare the best synthaug detector with every classical baseline, with their CIs."""
    ours = {k: v for k, v in summary.items() if k not in CLASSICAL}
    best = max(ours, key=lambda k: ours[k][f"mean_{metric}"])
    b = summary[best]
    lines = [
        f"best synthaug detector: {best} {b[f'mean_{metric}']:.4f} ± {b[f'ci95_{metric}']:.4f}"
    ]
    for base in [c for c in CLASSICAL if c in summary]:
        s = summary[base]
        gap = b[f"mean_{metric}"] - s[f"mean_{metric}"]
        margin = max(b[f"ci95_{metric}"], s[f"ci95_{metric}"])
        if margin != margin:  # one seed: no CI, so only the sign of the gap is known
            margin = 0.0
        word = "beats" if gap > margin else ("ties" if gap >= -margin else "loses to")
        lines.append(
            f"  {word} {base} {s[f'mean_{metric}']:.4f} ± {s[f'ci95_{metric}']:.4f} "
            f"(gap {gap:+.4f}, larger 95% CI {margin:.4f})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--setting", choices=["digits", "phantoms", "few-normals", "all"], default="all"
    )
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    parser.add_argument(
        "--seed-offset",
        type=int,
        default=0,
        help="first seed (tune on seeds other than the reported 0, 1, 2, e.g. --seed-offset 10)",
    )
    parser.add_argument("--quick", action="store_true", help="3 classes, 1 seed, fewer epochs")
    parser.add_argument("--phantom-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("anomaly-results"))
    parser.add_argument(
        "--only",
        nargs="+",
        help="run only these detectors (names as in the tables)",
    )
    parser.add_argument("--vae-epochs", type=int, help="digits settings: VAE epochs (default 200)")
    args = parser.parse_args(argv)
    # The benchmark, unlike the library, may set process-wide state: small networks on a
    # shared machine run far faster on one thread than on contended ones.
    torch.set_num_threads(args.threads)
    n_seeds = 1 if args.quick and args.seeds == 3 else args.seeds
    seeds = list(range(args.seed_offset, args.seed_offset + n_seeds))
    settings = ["digits", "phantoms", "few-normals"] if args.setting == "all" else [args.setting]
    args.out.mkdir(parents=True, exist_ok=True)

    def echo(line: str) -> None:
        print(line, flush=True)

    for setting in settings:
        start = time.perf_counter()
        if setting == "phantoms":
            result = run_phantoms(seeds, args.quick, echo, args.phantom_size, args.only)
        else:
            result = run_digits(
                seeds, args.quick, setting == "few-normals", echo, args.only, args.vae_epochs
            )
        if result is None:
            continue
        result["seconds"] = time.perf_counter() - start
        result["environment"] = {
            "synthaug": synthaug.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": args.threads,
            "quick": args.quick,
            "command": " ".join(sys.argv),
        }
        lines = [f"## {setting} ({result['seconds']:.0f} s)", ""]
        for metric in ("auroc", "auprc"):
            lines += [format_one_class_table(result["summary"], metric), ""]
        if any(k in CLASSICAL for k in result["summary"]) and any(
            k not in CLASSICAL for k in result["summary"]
        ):
            lines += verdict(result["summary"])
        text = "\n".join(lines)
        print(text, flush=True)
        (args.out / f"{setting}.json").write_text(json.dumps(result, indent=1))
        (args.out / f"{setting}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
