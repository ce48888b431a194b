"""Print the compact tables of the docs from a report.csv: the digits table of
docs/benchmarks.md and the README, and the lesion grid's tables of docs/medical.md.

    python benchmarks/digits_table.py benchmarks/results/digits_imbalanced/report.csv
    python benchmarks/digits_table.py benchmarks/results/phantoms_lesions/report.csv auroc

One row per method, per setting and classifier: the mean of the metric (default balanced
accuracy), and the paired difference to the table's best free baseline with its p-value,
Holm-adjusted within its family (the report's test and ``p_holm_vs_best-free``). Nothing is
computed here that the report does not hold.
"""

from __future__ import annotations

import csv
import sys


def main(path: str, metric: str = "balanced_accuracy") -> None:
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["metric"] == metric]
    blocks = list(dict.fromkeys((r["setting"], r["classifier"]) for r in rows))
    # The config's order: that of the table holding the most methods.
    widest = max(blocks, key=lambda b: sum((r["setting"], r["classifier"]) == b for r in rows))
    methods = [r["method"] for r in rows if (r["setting"], r["classifier"]) == widest]
    by = {(r["setting"], r["classifier"], r["method"]): r for r in rows}
    head = [f"{clf}, {setting.split('=')[-1]}" for setting, clf in blocks]
    print("| method | " + " | ".join(head) + " |")
    print("|---|" + "---:|" * len(blocks))
    for method in methods:
        cells = []
        for setting, clf in blocks:
            r = by.get((setting, clf, method))
            if r is None:
                cells.append("n/a")
                continue
            text = f"{float(r['mean']):.3f}"
            if r["best_free"] == method:
                text = f"**{text}** (best free)"
            elif r.get("gain_vs_best-free") not in (None, ""):
                gain = float(r["gain_vs_best-free"])
                p = float(r["p_holm_vs_best-free"])
                ptext = f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"
                text += f" ({gain:+.3f}, p {ptext})"
            cells.append(text)
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:])
