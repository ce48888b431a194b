"""How often does the harness's test cry wolf, and how often does it see a real gap?

The calibration study behind the default resampling protocol (issue 32). On digits (the
evaluation pool, as the shipped grids), for each protocol the harness offers, it measures

* the **false-positive rate** of the test the report uses for that protocol, under two nulls:
  the same method twice with different training seeds on the same data (the difference is 0
  by construction), and two free baselines measured to tie (random oversampling against the
  class-weighted loss, logistic regression, ratio 0.1);
* its **power** to detect real gaps: ``classical`` against ``balanced-online`` at ratio 0.02
  with the resnet (0.09 under random splits), logistic regression's ``classical`` against
  ``logit-adjusted`` at ratio 0.02 (0.02), and a gap of 0.02 added to the resnet's
  same-method null (its noise, a known shift).

Every cell is a real harness cell (``ClassificationTask.run``); the data seed (split and
imbalance) and the training seed are set apart, so that two arms of a null share their data.
Cells are computed once into a pool per protocol (random splits: one per data seed; k-fold:
every fold of each repeat) and stored in ``pool.jsonl`` (resumable). One replication of a
protocol draws its units from the pool (10 random splits; 2 or 10 repeats of 5-fold ...)
without replacement and runs the test; a rate is the share of 2,000 replications with
p < alpha. The two arms of a same-method null are exchangeable (independent training seeds),
so each cell's difference is symmetric about 0 given the data: a replication gives each a
random sign, which keeps the null exact however small the pool (a pool's own mean difference
is never exactly 0, and would otherwise count as a real gap in every replication). Its 95% interval comes from a bootstrap over the pool's units (the pool is a
sample of the splits the protocol could have drawn), 200 resamples.

    python benchmarks/yardstick_calibration.py run --out benchmarks/results/yardstick_calibration --jobs 2
    python benchmarks/yardstick_calibration.py analyse --out benchmarks/results/yardstick_calibration

``run`` is resumable and interleaves units, so a run stopped early leaves smaller pools that
``analyse`` can already use (it states the pool sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

# One BLAS thread per worker, set before numpy loads: two workers share the two cores.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from synthaug.bench import Cell, run_cell  # noqa: E402

ALPHA = 0.05
MINORITY = [5, 6, 7, 8, 9]
# Training seeds of a null's second arm: far from every data seed the pool uses.
OTHER_SEED = 1_000_000
METRIC = "balanced_accuracy"


@dataclass(frozen=True)
class Arm:
    """One method run on every unit of every pool."""

    name: str
    classifier: str
    ratio: float
    method: str
    seed_offset: int = 0

    @property
    def classifier_params(self) -> dict:
        return {"steps": 1000} if self.classifier == "resnet" else {}


ARMS = (
    Arm("resnet/0.02/classical", "resnet", 0.02, "classical"),
    Arm("resnet/0.02/balanced-online", "resnet", 0.02, "balanced-online"),
    Arm("resnet/0.02/balanced-online#2", "resnet", 0.02, "balanced-online", OTHER_SEED),
    Arm("logreg/0.1/random-oversampling", "logreg", 0.1, "random-oversampling"),
    Arm("logreg/0.1/class-weighted", "logreg", 0.1, "class-weighted"),
    Arm("logreg/0.1/smote", "logreg", 0.1, "smote"),
    Arm("logreg/0.1/smote#2", "logreg", 0.1, "smote", OTHER_SEED),
    Arm("logreg/0.02/classical", "logreg", 0.02, "classical"),
    Arm("logreg/0.02/logit-adjusted", "logreg", 0.02, "logit-adjusted"),
)

# The comparisons: (label, kind, arm a, arm b, shift added to a - b).
COMPARISONS = (
    ("resnet, ratio 0.02: balanced-online twice", "null", ARMS[1], ARMS[2], 0.0),
    ("logreg, ratio 0.1: smote twice", "null", ARMS[5], ARMS[6], 0.0),
    ("logreg, ratio 0.1: random-oversampling vs class-weighted", "tie", ARMS[3], ARMS[4], 0.0),
    ("resnet, ratio 0.02: balanced-online vs classical", "gap", ARMS[1], ARMS[0], 0.0),
    ("logreg, ratio 0.02: logit-adjusted vs classical", "gap", ARMS[8], ARMS[7], 0.0),
    ("resnet, ratio 0.02: null + 0.02", "shifted", ARMS[1], ARMS[2], 0.02),
)

# Pools: protocol -> (its split record, units per classifier). A unit is one split (random
# splits) or one repeat of every fold (k-fold).
POOLS = {
    "random-splits": ({"protocol": "random-splits", "test_size": 0.4}, 1),
    "5-fold": ({"protocol": "repeated-kfold", "folds": 5}, 5),
    "10-fold": ({"protocol": "repeated-kfold", "folds": 10}, 10),
}
# The resnet's pools are what the session's CPU allows (a resnet cell is ~20 s on one core);
# a later run with larger numbers here adds units to the same pool.jsonl.
POOL_UNITS = {"resnet": {"random-splits": 30, "5-fold": 12, "10-fold": 0}}
POOL_UNITS["logreg"] = {"random-splits": 300, "5-fold": 60, "10-fold": 30}
QUICK_UNITS = {"random-splits": 3, "5-fold": 1, "10-fold": 1}

# The protocols compared: (label, pool, units per replication).
PROTOCOLS = (
    ("random splits 60/40, 10 seeds", "random-splits", 10),
    ("random splits 60/40, 20 seeds", "random-splits", 20),
    ("2 x 5-fold", "5-fold", 2),
    ("4 x 5-fold", "5-fold", 4),
    ("10 x 5-fold", "5-fold", 10),
    ("1 x 10-fold", "10-fold", 1),
    ("2 x 10-fold", "10-fold", 2),
    ("5 x 10-fold", "10-fold", 5),
)


def _key(arm: Arm, pool: str, data_seed: int) -> str:
    return f"{arm.name}|{pool}|{data_seed}"


def _tasks(quick: bool) -> list[tuple[Arm, str, int]]:
    """Every (arm, pool, data seed), unit-major so that a stopped run leaves even pools."""
    todo = []
    depth = max(max(u.values()) for u in POOL_UNITS.values())
    for unit in range(depth):
        for pool, (_, per_unit) in POOLS.items():
            for arm in ARMS:
                units = QUICK_UNITS[pool] if quick else POOL_UNITS[arm.classifier][pool]
                if unit < units:
                    todo += [(arm, pool, unit * per_unit + f) for f in range(per_unit)]
    return todo


def _run_cell(arm: Arm, pool: str, data_seed: int) -> dict:

    split = {**POOLS[pool][0], "data_seed": data_seed}
    cell = Cell(
        task="classification",
        dataset={"name": "digits", "params": {}, "pool": "evaluation"},
        split=split,
        setting=f"ratio={arm.ratio:g}",
        settings_table="imbalance",
        settings={"ratio": arm.ratio, "minority_classes": MINORITY},
        method=arm.method,
        method_params={},
        classifier=arm.classifier,
        classifier_params=arm.classifier_params,
        seed=data_seed + arm.seed_offset,
        device="cpu",
    )
    with tempfile.TemporaryDirectory() as tmp:
        record = run_cell(cell, threads=1, workdir=tmp)
    return {
        "key": _key(arm, pool, data_seed),
        "arm": arm.name,
        "pool": pool,
        "data_seed": data_seed,
        "value": float(record["metrics"][METRIC]),
        "seconds": record["timings"]["total"],
    }


def run(out: Path, jobs: int, quick: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pool.jsonl"
    done = set()
    if path.exists():
        done = {json.loads(line)["key"] for line in path.read_text().splitlines() if line}
    todo = [t for t in _tasks(quick) if _key(*t) not in done]
    print(f"{len(done)} cells done, {len(todo)} to run", flush=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool, path.open("a") as f:
        # Submit in order, a window at a time, so that the pools fill unit by unit.
        pending: dict = {}
        it = iter(todo)
        finished = 0
        while True:
            while len(pending) < 4 * jobs:
                task = next(it, None)
                if task is None:
                    break
                pending[pool.submit(_run_cell, *task)] = task
            if not pending:
                break
            future = next(as_completed(pending))
            del pending[future]
            f.write(json.dumps(future.result()) + "\n")
            f.flush()
            finished += 1
            if finished % 50 == 0:
                rate = (time.perf_counter() - t0) / finished
                print(
                    f"{finished}/{len(todo)} cells, {rate:.2f} s each, "
                    f"about {rate * (len(todo) - finished) / 60:.0f} min left",
                    flush=True,
                )


# -- analysis ------------------------------------------------------------------------------


def _t_p(diffs: np.ndarray, correction: float | None) -> np.ndarray:
    """Two-sided p of the (corrected) paired t, per row of ``diffs`` (replications x n)."""
    n = diffs.shape[1]
    mean = diffs.mean(axis=1)
    var = diffs.var(axis=1, ddof=1)
    factor = 1 / n + (correction or 0.0)
    se = np.sqrt(var * factor)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, mean / se, np.where(mean == 0, 0.0, np.inf))
    return 2 * stats.t.sf(np.abs(t), n - 1)


def _units(values: dict[int, float], per_unit: int) -> dict[int, np.ndarray]:
    """Unit index -> the unit's values (one per fold), complete units only."""
    out = {}
    for unit in sorted({s // per_unit for s in values}):
        seeds = [unit * per_unit + f for f in range(per_unit)]
        if all(s in values for s in seeds):
            out[unit] = np.array([values[s] for s in seeds])
    return out


def _rates(
    diffs: dict[int, np.ndarray],
    per_replication: int,
    correction: float,
    alphas: tuple[float, ...],
    rng: np.random.Generator,
    *,
    exchangeable: bool = False,
    shift: float = 0.0,
    replications: int = 2000,
    bootstraps: int = 200,
) -> dict:
    """Rejection rates of the corrected and the plain t at each alpha, with bootstrap CIs.

    ``exchangeable``: the two arms are the same method with independent training seeds, so
    each cell's difference is symmetric about 0 given the data, and a random sign per cell
    keeps the null exact; without it a finite pool's own mean (never exactly 0) would leak
    into every replication drawn from it. ``shift`` is then added (a known gap).
    """
    if len(diffs) < per_replication:
        return {}
    units = np.stack([diffs[u] for u in sorted(diffs)])  # pool units x folds
    n_units = len(units)

    def rates_of(pool: np.ndarray) -> np.ndarray:
        idx = np.argsort(rng.random((replications, len(pool))), axis=1)[:, :per_replication]
        d = pool[idx].reshape(replications, -1)
        if exchangeable:
            d = d * rng.choice((-1.0, 1.0), size=d.shape)
        d = d + shift
        p_corr, p_plain = _t_p(d, correction), _t_p(d, None)
        return np.array([[np.mean(p_corr < a), np.mean(p_plain < a)] for a in alphas])

    point = rates_of(units)
    boot = np.stack([rates_of(units[rng.integers(0, n_units, n_units)]) for _ in range(bootstraps)])
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    return {
        "pool_units": n_units,
        "mean_difference": shift if exchangeable else float(units.mean()),
        "sd_difference": float(units.std(ddof=1)),
        "rates": {
            f"{a:g}": {
                "corrected": [float(point[i, 0]), float(low[i, 0]), float(high[i, 0])],
                "plain": [float(point[i, 1]), float(low[i, 1]), float(high[i, 1])],
            }
            for i, a in enumerate(alphas)
        },
    }


def analyse(out: Path, family: int) -> dict:
    rows = [json.loads(line) for line in (out / "pool.jsonl").read_text().splitlines() if line]
    values: dict[tuple[str, str], dict[int, float]] = {}
    for r in rows:
        values.setdefault((r["arm"], r["pool"]), {})[r["data_seed"]] = r["value"]
    alphas = (ALPHA, ALPHA / family)
    rng = np.random.default_rng(0)
    table = []
    for label, pool, per_replication in PROTOCOLS:
        split, per_unit = POOLS[pool]
        test_fraction = split.get("test_size", 1 / split.get("folds", 1))
        correction = test_fraction / (1 - test_fraction)
        for name, kind, a, b, shift in COMPARISONS:
            va, vb = values.get((a.name, pool), {}), values.get((b.name, pool), {})
            shared = {s: va[s] - vb[s] for s in va.keys() & vb.keys()}
            diffs = _units(shared, per_unit)
            exchangeable = kind in ("null", "shifted")
            result = _rates(
                diffs,
                per_replication,
                correction,
                alphas,
                rng,
                exchangeable=exchangeable,
                shift=shift,
            )
            if result:
                table.append({"protocol": label, "comparison": name, "kind": kind, **result})
    seconds = {}
    for r in rows:
        seconds.setdefault(r["arm"].split("/")[0], []).append(r["seconds"])
    summary = {
        "alpha": ALPHA,
        "family": family,
        "cells": len(rows),
        "mean_seconds_per_cell": {k: float(np.mean(v)) for k, v in seconds.items()},
        "table": table,
    }
    (out / "calibration.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "calibration.md").write_text(format_markdown(summary))
    (out / "calibration_summary.md").write_text(format_summary(summary))
    print(format_markdown(summary))
    return summary


def _rate(r: list[float]) -> str:
    return f"{r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}]"


def format_markdown(summary: dict) -> str:
    family, alpha = summary["family"], summary["alpha"]
    # No heading: docs/benchmarks.md includes this file under its own.
    lines = [
        f"Made by `python benchmarks/yardstick_calibration.py analyse` from "
        f"{summary['cells']} harness cells (digits, evaluation pool). Rates: share of 2,000 replications with "
        f"p < {alpha:g} (corrected t of the protocol; the plain paired t beside it), and at "
        f"{alpha:g}/{family} (Bonferroni over a family of {family}, a lower bound on Holm's "
        "power in such a family); 95% bootstrap intervals over the pool's units.",
        "",
        "| protocol | comparison | kind | pool units | mean diff | corrected t | plain t | "
        f"corrected t at {alpha:g}/{family} |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in summary["table"]:
        at, adj = row["rates"][f"{alpha:g}"], row["rates"][f"{alpha / family:g}"]
        lines.append(
            f"| {row['protocol']} | {row['comparison']} | {row['kind']} | {row['pool_units']} | "
            f"{row['mean_difference']:+.3f} | {_rate(at['corrected'])} | {_rate(at['plain'])} | "
            f"{_rate(adj['corrected'])} |"
        )
    return "\n".join(lines) + "\n"


# The compact table of docs/benchmarks.md: per protocol, the comparisons as columns.
_SUMMARY_COLUMNS = (
    ("false positives, resnet null", "resnet, ratio 0.02: balanced-online twice", "0.05"),
    ("false positives, logreg null", "logreg, ratio 0.1: smote twice", "0.05"),
    (
        "false positives, logreg tie",
        "logreg, ratio 0.1: random-oversampling vs class-weighted",
        "0.05",
    ),
    ("power, resnet gap", "resnet, ratio 0.02: balanced-online vs classical", "0.05"),
    ("power, resnet gap, family", "resnet, ratio 0.02: balanced-online vs classical", "family"),
    ("power, resnet +0.02", "resnet, ratio 0.02: null + 0.02", "0.05"),
    ("power, logreg gap", "logreg, ratio 0.02: logit-adjusted vs classical", "0.05"),
)


def format_summary(summary: dict) -> str:
    """Protocols as rows, the corrected t's rates as columns (intervals in brackets)."""
    family, alpha = summary["family"], summary["alpha"]
    by = {(r["protocol"], r["comparison"]): r for r in summary["table"]}
    protocols = list(dict.fromkeys(r["protocol"] for r in summary["table"]))
    head = [name.replace("family", f"alpha {alpha:g}/{family}") for name, *_ in _SUMMARY_COLUMNS]
    lines = [
        "| protocol | " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(head),
    ]
    for protocol in protocols:
        cells = []
        for _, comparison, level in _SUMMARY_COLUMNS:
            row = by.get((protocol, comparison))
            if row is None:
                cells.append("")
                continue
            key = f"{alpha / family:g}" if level == "family" else level
            point, low, high = row["rates"][key]["corrected"]
            cells.append(f"{point:.2f} [{low:.2f}, {high:.2f}]")
        lines.append(f"| {protocol} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("run", "analyse"))
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/yardstick_calibration")
    )
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="tiny pools (a smoke run)")
    parser.add_argument(
        "--family",
        type=int,
        default=24,
        help="the Holm family size to report power at (23: methods against the best free "
        "baseline in benchmarks/digits_imbalanced.toml's resnet tables)",
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.out, args.jobs, args.quick)
    else:
        analyse(args.out, args.family)
    return 0


if __name__ == "__main__":
    sys.exit(main())
