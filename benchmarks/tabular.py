"""Tabular oversampling: the transfer generators against SMOTE and random oversampling.

Two real tables that ship with scikit-learn: breast cancer (569 rows, 30 features; the
malignant class) and wine (178 rows, 13 features; class 2). Per seed, the training and test
parts of the harness's resampling protocol (``--protocol``: 10 random stratified 60/40
splits, or ``repeats`` x ``folds`` stratified k-fold, the folds the harness itself draws);
the chosen class keeps 10% of its training rows (at least 2); a
pipeline of standard scaling, the oversampler (every class topped up to the majority count)
and logistic regression is fitted on the cut training part and scored on the untouched 40%.
The free baselines are no resampling, a class-weighted logistic regression, post-hoc logit
adjustment (Menon et al., ICLR 2021: the unweighted model's log-probabilities minus the log
training prior, as ``synthaug``'s ``LogisticRegressionClassifier(loss="logit-adjusted")``),
random oversampling and SMOTE (imbalanced-learn); the generators run through
``synthaug.augment.GenerativeOverSampler`` with their default settings (no tuning on these
tables). Differences against SMOTE and against the best free baseline (by mean balanced
accuracy) use the protocol's corrected t (Nadeau & Bengio 2003 for random splits, Bouckaert
& Frank 2004 for repeated k-fold) with Holm's adjustment within the harness's families
(``synthaug.bench.holm_families``).

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/tabular.py --out benchmarks/results/tabular --protocol repeated-kfold --folds 5 --repeats 10

Writes ``results.json`` (every seed's scores) and ``report.md``. CPU only, deterministic: a
rerun into the same ``--out`` with the same protocol keeps the methods already there and runs
only the missing ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.pipeline import Pipeline
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score
from sklearn.preprocessing import StandardScaler

from synthaug.augment import GenerativeOverSampler
from synthaug.bench import RandomSplits, RepeatedKFold, holm_families, resampling_of
from synthaug.data import ImageDataset
from synthaug.generators import CVAE, DeepSMOTE, DeltaTransfer
from synthaug.metrics import corrected_t, holm, mean_ci

KEEP = 0.1
TABLES = {
    # name: (loader, the class cut to 10%)
    "breast-cancer": (load_breast_cancer, 0),
    "wine": (load_wine, 2),
}
FREE = ["class-weighted", "logit-adjusted", "random-oversampling", "smote"]


def _generator(make: Callable[[int], object]) -> Callable[[int], object]:
    return lambda seed: GenerativeOverSampler(make(seed), random_state=seed)


METHODS: dict[str, Callable[[int], object] | None] = {
    "none": None,
    "class-weighted": None,
    "logit-adjusted": None,
    "random-oversampling": lambda seed: RandomOverSampler(random_state=seed),
    "smote": lambda seed: SMOTE(random_state=seed),
    "cvae": _generator(lambda seed: CVAE(verbose=False, device="cpu", seed=seed)),
    "deepsmote": _generator(lambda seed: DeepSMOTE(verbose=False, device="cpu", seed=seed)),
    "delta-transfer": _generator(
        lambda seed: DeltaTransfer(verbose=False, device="cpu", seed=seed)
    ),
}


def cut(X: np.ndarray, y: np.ndarray, label: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep ``KEEP`` of class ``label``'s rows (at least 2), chosen with ``seed``."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(y == label)
    keep = rng.choice(rows, size=max(2, round(KEEP * len(rows))), replace=False)
    mask = (y != label) | np.isin(np.arange(len(y)), keep)
    return X[mask], y[mask]


def split(y: np.ndarray, protocol, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The harness's own ``(train, test)`` indices for ``seed``: the protocol's split depends
    on the labels alone, so a stand-in data set holds nothing else."""
    labels = ImageDataset(torch.zeros(len(y), 1), torch.as_tensor(y), sorted(set(y.tolist())))
    return protocol.indices(labels, seed)


def run_cell(X, y, label: int, method: str, seed: int, protocol) -> dict[str, float]:
    train, test = split(y, protocol, seed)
    X_tr, X_te, y_tr, y_te = X[train], X[test], y[train], y[test]
    X_tr, y_tr = cut(X_tr, y_tr, label, seed)
    weight = "balanced" if method == "class-weighted" else None
    clf = LogisticRegression(max_iter=5000, class_weight=weight)
    steps = [("scale", StandardScaler())]
    make = METHODS[method]
    if make is not None:
        sampler = make(seed)
        if method == "smote":  # its k neighbours must exist among the class's other rows
            sampler.set_params(k_neighbors=min(5, int((y_tr == label).sum()) - 1))
        steps.append(("sample", sampler))
    steps.append(("clf", clf))
    started = time.perf_counter()
    pipe = Pipeline(steps).fit(X_tr, y_tr)
    if method == "logit-adjusted":
        # The Bayes-optimal rule for balanced error subtracts the log prior from the logits.
        prior = np.bincount(y_tr)[pipe.classes_] / len(y_tr)
        pred = pipe.classes_[(pipe.predict_log_proba(X_te) - np.log(prior)).argmax(axis=1)]
    else:
        pred = pipe.predict(X_te)
    return {
        "balanced_accuracy": float(balanced_accuracy_score(y_te, pred)),
        "minority_recall": float(recall_score(y_te, pred, labels=[label], average="macro")),
        "macro_f1": float(f1_score(y_te, pred, average="macro")),
        "n_minority_train": int((y_tr == label).sum()),
        "seconds": time.perf_counter() - started,
    }


def report(results: dict, seeds: list[int], protocol, command: str) -> str:
    fraction = protocol.test_fraction
    lines = [
        "# Tabular oversampling: transfer generators against SMOTE",
        "",
        f"Made by `{command}`. Protocol {protocol.name} ({protocol.describe(len(seeds))}); mean "
        f"± 95% interval of the {protocol.test} (test fraction {fraction:g}); Δ is the "
        "paired difference in balanced accuracy ± its interval, then (p; p Holm-adjusted "
        "within its family: ᴮ every method but none against the best free baseline, ᴺ every "
        "free baseline against none, ᴼ the rest; wins/ties/losses over seeds).",
        "",
    ]
    for table, by_method in results.items():
        by_method = {m: by_method[m] for m in METHODS if m in by_method}  # the script's order
        means = {
            m: float(np.mean([by_method[m][str(s)]["balanced_accuracy"] for s in seeds]))
            for m in by_method
        }
        best_free = max(FREE, key=lambda m: means[m])
        comparisons, raw = [], {}
        for m in by_method:
            for ref in dict.fromkeys(["smote", best_free]):
                if m == ref:
                    continue
                diff = np.array(
                    [
                        by_method[m][str(s)]["balanced_accuracy"]
                        - by_method[ref][str(s)]["balanced_accuracy"]
                        for s in seeds
                    ]
                )
                mean, half, p = corrected_t(diff, test_fraction=fraction)
                wins = int((diff > 0).sum()), int((diff == 0).sum()), int((diff < 0).sum())
                comparisons.append((m, ref, mean, half, wins))
                raw.setdefault(frozenset((m, ref)), 1.0 if np.isnan(p) else p)
        family = holm_families(
            list(by_method), [(m, r) for m, r, *_ in comparisons], best_free=best_free, free=FREE
        )
        adjusted = {}
        for name in set(family.values()):
            members = [pair for pair in raw if family[pair] == name]
            adjusted.update(zip(members, holm([raw[m] for m in members]), strict=True))
        tags = {"vs best free": "ᴮ", "free vs none": "ᴺ", "other": "ᴼ"}
        n_min = by_method["none"][str(seeds[0])]["n_minority_train"]
        refs = list(dict.fromkeys(["smote", best_free]))
        lines += [
            f"## {table} (the cut class keeps {n_min} training rows; best free baseline: "
            f"**{best_free}**)",
            "",
            "| method | balanced accuracy | minority recall | macro F1 | "
            + " | ".join(f"Δ vs {r} (p, Holm; W/T/L)" for r in refs)
            + " |",
            "|---|---:|---:|---:|" + "---:|" * len(refs),
        ]
        for m in by_method:
            cells = []
            for metric in ["balanced_accuracy", "minority_recall", "macro_f1"]:
                mean, half = mean_ci(
                    [by_method[m][str(s)][metric] for s in seeds], test_fraction=fraction
                )
                cells.append(f"{mean:.3f} ± {half:.3f}")
            deltas = []
            for ref in refs:
                hit = [c for c in comparisons if c[0] == m and c[1] == ref]
                if not hit:
                    deltas.append("—")
                    continue
                _, _, mean, half, (w, t, lo) = hit[0]
                pair = frozenset((m, ref))
                deltas.append(
                    f"{mean:+.3f} ± {half:.3f} (p {raw[pair]:.3g}, Holm{tags[family[pair]]} "
                    f"{adjusted[pair]:.3g}; {w}/{t}/{lo})"
                )
            lines.append(f"| {m} | " + " | ".join(cells + deltas) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--protocol", choices=("random-splits", "repeated-kfold"))
    parser.add_argument("--seeds", type=int, default=10, help="random-splits: seeds")
    parser.add_argument("--folds", type=int, default=5, help="repeated-kfold: folds")
    parser.add_argument("--repeats", type=int, default=2, help="repeated-kfold: repeats")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite report.md from OUT/results.json"
    )
    args = parser.parse_args()
    command = "OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/tabular.py " + " ".join(
        sys.argv[1:]
    )
    if args.report_only:
        saved = json.loads((args.out / "results.json").read_text())
        # Results from before protocols were named hold the tables alone (random 60/40 splits).
        results = saved.get("results", saved)
        protocol = resampling_of(saved.get("protocol", {"test_size": 0.4}))
        seeds = sorted(int(s) for s in next(iter(next(iter(results.values())).values())))
        (args.out / "report.md").write_text(report(results, seeds, protocol, command) + "\n")
        return
    if args.protocol == "repeated-kfold":
        protocol, seeds = RepeatedKFold(args.folds), list(range(args.folds * args.repeats))
    else:
        protocol, seeds = RandomSplits(0.4), list(range(args.seeds))
    torch.set_num_threads(1)
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    saved_file = args.out / "results.json"
    if saved_file.exists():
        saved = json.loads(saved_file.read_text())
        if saved.get("protocol") == protocol.to_dict():
            results = saved["results"]
    for table, (load, label) in TABLES.items():
        X, y = load(return_X_y=True)
        results.setdefault(table, {})
        for method in METHODS:
            have = results[table].get(method, {})
            if sorted(have) == sorted(str(s) for s in seeds):
                print(f"{table} {method}: kept from {saved_file}", flush=True)
                continue
            results[table][method] = {
                str(s): run_cell(X, y, label, method, s, protocol) for s in seeds
            }
            scores = [results[table][method][str(s)]["balanced_accuracy"] for s in seeds]
            print(f"{table} {method}: balanced accuracy {np.mean(scores):.3f}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    saved = {"protocol": protocol.to_dict(), "results": results}
    (args.out / "results.json").write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
    (args.out / "report.md").write_text(report(results, seeds, protocol, command) + "\n")
    print(f"wrote {args.out / 'report.md'}")


if __name__ == "__main__":
    main()
