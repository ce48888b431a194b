"""Print the table of docs/privacy.md from the report.csv of the digits_dp grid.

    python benchmarks/dp_table.py benchmarks/results/digits_dp/report.csv

One row per generator and epsilon (and the `real` release once): the mean across seeds ± the
half-width of the report's 95% interval. Nothing is computed here that the report does not hold.
"""

from __future__ import annotations

import csv
import math
import sys

COLUMNS = (
    ("balanced_accuracy", "TSTR balanced acc."),
    ("label_fidelity", "label fidelity"),
    ("mia_auc", "MIA AUC"),
    ("attack_auc_strongest", "strongest attack AUC"),
    ("attack_tpr_at_1fpr_strongest", "its TPR at 1% FPR"),
    ("dcr_median_ratio", "DCR median ratio"),
    ("memorization_rate", "memorization (baseline 0.75)"),
)
NAMES = {"real": "real", "cvae": "CVAE", "cgan": "CGAN"}


def cell(row: dict[str, str] | None) -> str:
    if row is None:
        return "-"
    mean, half = float(row["mean"]), float(row["ci95_half_width"] or "nan")
    return f"{mean:.3f}" if math.isnan(half) else f"{mean:.3f} ± {half:.3f}"


def main(path: str) -> None:
    with open(path, newline="") as f:
        by = {(r["setting"], r["method"], r["metric"]): r for r in csv.DictReader(f)}
    settings = list(dict.fromkeys(s for s, _, _ in by))
    print("| method | epsilon | " + " | ".join(t for _, t in COLUMNS) + " | epsilon spent |")
    print("|---|---|" + "---|" * (len(COLUMNS) + 1))
    rows = [("real", settings[0])] + [(m, s) for m in ("cvae", "cgan") for s in settings]
    for method, setting in rows:
        eps = "-" if method == "real" else setting.split("=")[-1]
        cells = [cell(by.get((setting, method, metric))) for metric, _ in COLUMNS]
        spent = by.get((setting, method, "epsilon_spent"))
        spent_text = f"{float(spent['mean']):.3f}" if spent and eps not in ("-", "inf") else "-"
        print(f"| {NAMES[method]} | {eps} | " + " | ".join(cells) + f" | {spent_text} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
