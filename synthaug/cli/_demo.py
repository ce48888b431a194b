"""``synthaug demo``: the bundled digits grid, or (``--medical``) the phantom-lesion grid.

Both demos are benchmark configs shipped inside synthaug (``synthaug/bench/configs``), run
by the harness (resumably: a rerun with the same options reprints the table at once) with the
command's options written into them; the command then prints the demo's table.
Arguments: :mod:`synthaug.cli._args.demo`.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthaug.bench import BenchConfig, bundled_config, load_records, parse_config, run_bench

DIGITS_COLUMNS = ("balanced_accuracy", "macro_f1", "minority_recall")
MEDICAL_COLUMNS = ("lesion_recall", "balanced_accuracy", "auroc", "specificity")


def run(args: argparse.Namespace) -> int:
    if args.medical:
        config = medical_config(
            seeds=args.seeds,
            lesion_fraction=args.ratio,
            epochs=args.epochs,
            classifier_steps=args.classifier_steps,
            kind=args.kind,
            generator=args.generator,
        )
        out = args.out or "synthaug-medical-demo"
    else:
        config = digits_config(
            seeds=args.seeds,
            ratio=args.ratio,
            epochs=args.epochs,
            classifier_steps=args.classifier_steps,
        )
        out = args.out or "synthaug-demo"
    run_demo(config, out, jobs=args.jobs, progress=not args.quiet)
    return 0


def digits_config(
    *,
    seeds: int | None = None,
    ratio: float | None = None,
    epochs: int | None = None,
    classifier_steps: int | None = None,
) -> BenchConfig:
    """The bundled ``digits_demo`` config with the demo's options (``None`` keeps the default)."""
    data = _bundled_demo("digits_demo", seeds=seeds, classifier_steps=classifier_steps)
    if ratio is not None:
        data["imbalance"]["ratios"] = [ratio]
    if epochs is not None:
        data["methods"]["cvae"]["epochs"] = epochs
    return parse_config(data, source="bundled digits_demo.toml")


def medical_config(
    *,
    seeds: int | None = None,
    lesion_fraction: float | None = None,
    epochs: int | None = None,
    classifier_steps: int | None = None,
    kind: str | None = None,
    generator: str | None = None,
) -> BenchConfig:
    """The bundled ``medical_demo`` config with the demo's options (``None`` keeps the default)."""
    data = _bundled_demo("medical_demo", seeds=seeds, classifier_steps=classifier_steps)
    methods = data["methods"]
    synthetic = [methods["synthetic"], methods["synthetic+classical"]["synthetic"]]
    if lesion_fraction is not None:
        data["lesion"]["lesion_fraction"] = lesion_fraction
    if kind is not None:
        data["dataset"]["kind"] = kind
    for entry in synthetic:
        if epochs is not None:
            entry["epochs"] = epochs
        if generator is not None:
            entry["method"] = generator
    return parse_config(data, source="bundled medical_demo.toml")


def _bundled_demo(name: str, *, seeds: int | None, classifier_steps: int | None) -> dict[str, Any]:
    """The bundled config ``name`` as a dict, with the options every demo takes applied."""
    data = bundled_config(name)
    if seeds is not None:
        data["seeds"] = seeds
    if classifier_steps is not None:
        for params in data["classifiers"].values():
            params["steps"] = classifier_steps
    return data


def run_demo(
    config: BenchConfig,
    out: str | Path,
    *,
    jobs: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> str:
    """Run a demo config with the harness into ``out`` and print (and return) its table.

    ``jobs`` cells run at once, each on one torch thread when there are several, on every
    core when there is one. The default is what ran fastest on 2 cores: the digits demo one
    cell per core (at most 8; a 1,000-step ``resnet`` cell took 39 s on two threads alone and
    about 13 s on one thread beside another cell: 3 min 16 s in all), the medical demo one
    cell at a time, since a single CGAN fit is most of its work (3 min 6 s, against 4 min
    46 s with two one-thread workers, measured before its lesion rows were added). Cells
    that share a generator fit run in one worker, which fits it once.
    """
    if jobs is None:
        jobs = 1 if config.task == "lesion" else min(os.cpu_count() or 1, 8)
    threads = 1 if jobs > 1 else None
    run_bench(config, out, jobs=jobs, threads=threads, progress=progress, echo=echo)
    records = load_records(out)
    if config.task == "lesion":
        setting = config.settings[0]["lesion"]
        n_train = setting["n_normal"] + setting["n_lesion"]
        size = config.dataset["params"].get("size", 64)
        kind = config.dataset["params"].get("kind", "chest")
        title = (
            f"{kind} phantoms {size}x{size}, lesions {setting['n_lesion']} of {n_train} training "
            f"slices, {len(config.seeds)} seed(s), mean ± std"
        )
        columns = MEDICAL_COLUMNS
    else:
        imbalance = config.settings[0]["imbalance"]
        title = (
            f"{config.dataset['name']}, classes {imbalance['minority_classes']} kept at "
            f"{imbalance['ratio']:g}, {len(config.seeds)} seed(s), mean ± std"
        )
        columns = DIGITS_COLUMNS
    table = format_table(summarize(records, list(config.methods), columns), title, columns)
    echo("")
    echo(table)
    echo(f"\nreport: {Path(out) / 'report.md'}; sample grids: {Path(out) / 'plots'}")
    return table


def summarize(
    records: list[dict[str, Any]], methods: Sequence[str], columns: Sequence[str]
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and sample standard deviation over seeds, per method and column, and of the
    augmentation seconds (a generator fit reused from an earlier cell counts as paid here)."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for method in methods:
        rows = [r for r in records if r["cell"]["method"] == method]
        if not rows:
            continue
        values = {key: [r["metrics"][key] for r in rows] for key in columns}
        values["augment_seconds"] = [
            r["timings"].get("augment", 0.0) + r["timings"].get("augment_reused_fit", 0.0)
            for r in rows
        ]
        summary[method] = {}
        for key, vals in values.items():
            arr = np.array([math.nan if v is None else v for v in vals], dtype=float)
            std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
            summary[method][key] = {"mean": float(arr.mean()), "std": std}
    return summary


def format_table(
    summary: dict[str, dict[str, dict[str, float]]],
    title: str = "",
    columns: Sequence[str] = DIGITS_COLUMNS,
) -> str:
    """A fixed-width text table of ``summary``, one column per metric, then seconds."""
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
