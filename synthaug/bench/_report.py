"""Reports of a benchmark folder: Markdown, CSV and LaTeX tables, plots.

Per setting, classifier and method: the mean of each metric across seeds with a 95%
interval, and the paired difference to each baseline method (``none`` and ``classical`` for
classification; the config's ``baselines``) and to the best free baseline of the table, over
the same seeds, so the same splits. When seeds re-split one data set, intervals and tests use
the corrected t of the config's resampling protocol, since overlapping training sets make the
seeds' results dependent; the p-values of a table are Holm-adjusted within their families
(:func:`holm_families`), and each comparison counts wins, ties and losses over seeds. Tasks whose settings are replicates of
one question (the normal classes of the one-class protocol) also get a "mean over settings"
block: per seed the mean across settings, then mean ± CI across seeds. A best method named
from fewer than 3 seeds, or from a test class of fewer than 10 items, is marked as such in the
report and :func:`write_report` warns once. A ranking score with chance at 0.5 (AUROC) whose
mean and whole 95% interval lie below 0.5 is flagged as inverted, and warned about once.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthaug._utils import warn
from synthaug.bench._plots import save_plots, save_sample_grids, where_parts
from synthaug.bench._resampling import RANDOM_SPLITS, REPEATED_KFOLD, Resampling, resampling_of
from synthaug.bench._results import CONFIG, RESULTS, load_records
from synthaug.bench._task import SMALLEST_TEST_CLASS, TASKS, Task
from synthaug.errors import DataFileError
from synthaug.metrics import (
    corrected_t,
    holm,
    mean_ci,
    paired_differences,
    paired_gain,
    win_tie_loss,
)

BASELINES = ("none", "classical")
# The Holm families of a table (see holm_families).
FAMILY_BEST_FREE = "vs best free"
FAMILY_FREE_NONE = "free vs none"
FAMILY_OTHER = "other"
FAMILIES = (FAMILY_BEST_FREE, FAMILY_FREE_NONE, FAMILY_OTHER)
# The comparison with the best free baseline of each table is named like a baseline.
BEST_FREE = "best-free"
_FIELDS = (
    "task",
    "dataset",
    "setting",
    "classifier",
    "method",
    "metric",
    "n",
    "mean",
    "ci95_low",
    "ci95_high",
    "ci95_half_width",
    "protocol",
    "interval",
    "best",
    "best_free",
    "gap_closed",
    "inverted",
    "inverted_interval",
)
MEAN_SETTING = "mean over settings"
# Below these a best method is named from too little: with 2 seeds the 95% interval spans
# +-12.7 standard errors; in a test class of 9 items one item moves its recall by 0.11.
MIN_SEEDS = 3
MIN_TEST_CLASS = 10
# Chance level of the task's ``chance_at_half`` scores (AUROC). A mean whose whole 95%
# interval lies below it ranks the two classes the wrong way round: an inverted or broken
# score (a sign error, a network that learnt the wrong thing), not merely a weak one.
CHANCE = 0.5
INVERTED_MARK = "†"
# Two-sided 95% normal quantile, for an interval from a recorded standard error (one seed).
_Z95 = 1.959963984540054


def csv_fields(baselines: Sequence[str] = BASELINES) -> tuple[str, ...]:
    """The CSV columns: the summary, then per baseline the paired gain, its CI half-width, the
    t-test p, the Holm-adjusted p and its family, the Wilcoxon p, wins/ties/losses and the
    pairs used."""
    per = (
        "gain_vs_{}",
        "ci95_gain_vs_{}",
        "p_vs_{}",
        "p_holm_vs_{}",
        "holm_family_vs_{}",
        "wilcoxon_p_vs_{}",
        "wtl_vs_{}",
        "n_pairs_vs_{}",
    )
    return _FIELDS + tuple(f.format(b) for b in baselines for f in per)


def _task(task: str) -> Task | None:
    return TASKS.get(task)() if task in TASKS else None


def default_baselines(task: str, methods: Sequence[str]) -> list[str]:
    """The task's baseline methods that the results hold (``none``, ``classical`` ...)."""
    t = _task(task)
    names = t.baselines if t is not None else BASELINES
    return [b for b in names if b in methods]


def _reported_metrics(task: str, records: list[dict[str, Any]]) -> tuple[str, ...]:
    t = _task(task)
    if t is not None:
        return tuple(t.reported_metrics([r["metrics"] for r in records]))
    keys = [
        k
        for k, v in records[0]["metrics"].items()
        if isinstance(v, (int, float)) and k != SMALLEST_TEST_CLASS  # a fact, not a score
    ]
    return tuple(keys)


def _best_is_highest(task: str, metric: str) -> bool:
    t = _task(task)
    if t is None:
        return True
    # Per-class variants ("auroc[medium]") follow their base metric.
    return metric.split("[")[0] in t.best_is_highest


def _chance_at_half(task: str, metric: str) -> bool:
    t = _task(task)
    # Per-class variants ("auroc[medium]") follow their base metric.
    return t is not None and metric.split("[")[0] in t.chance_at_half


def _inverted(row: dict[str, Any], standard_errors: list[float | None]) -> tuple[bool | None, str]:
    """Whether ``row``'s score is inverted (None: chance is not 0.5 for its metric), and the
    interval that decided, in words. ``standard_errors``: the recorded ``se_<metric>`` of
    each seed that has the score.

    Two seeds or more: the row's own interval across seeds. One seed: the recorded standard
    error of the score over test samples (``se_<metric>``, DeLong et al. 1988 for AUROC), a
    normal 95% interval; for a mean over settings that is the settings' mean standard error,
    an upper bound on the standard error of their mean whatever their correlation. Without
    either, nothing is claimed (False).
    """
    if not _chance_at_half(row["task"], row["metric"]):
        return None, ""
    mean, half, n = row["mean"], row["ci95_half_width"], row["n"]
    if math.isnan(mean) or mean >= CHANCE:
        return False, ""
    if n >= 2 and not math.isnan(half):
        how = f"{row['interval']} across {_runs_text(row['protocol'], n)}"
    elif (
        n == 1
        and isinstance(standard_errors[0], (int, float))
        and math.isfinite(standard_errors[0])
    ):
        half = _Z95 * float(standard_errors[0])
        how = "DeLong, over the test samples of 1 seed"
    else:
        return False, ""
    if mean + half >= CHANCE:
        return False, ""
    return True, f"[{mean - half:.3f}, {mean + half:.3f}] ({how})"


def _mean_label(task: str) -> str | None:
    t = _task(task)
    return None if t is None else t.mean_over_settings


def _mean_over_settings(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pseudo-records of the "mean over settings" block, for tasks that ask for one.

    Per (task, dataset, classifier, method, seed): the mean of every metric across the
    settings, kept only when that seed has every setting (a partial mean would be biased).
    """
    out = []
    groups: dict[tuple, dict[int, dict[str, dict[str, Any]]]] = {}
    settings: dict[tuple, set[str]] = {}
    for r in records:
        c = r["cell"]
        if not _mean_label(c["task"]):
            continue
        key = (c["task"], c["dataset"]["name"], c["classifier"])
        settings.setdefault(key, set()).add(c["setting"])
        groups.setdefault((*key, c["method"]), {}).setdefault(r["seed"], {})[c["setting"]] = r[
            "metrics"
        ]
    for (task, dataset, clf, method), by_seed in groups.items():
        wanted = settings[(task, dataset, clf)]
        if len(wanted) < 2:
            continue
        for seed, by_setting in by_seed.items():
            if set(by_setting) != wanted:
                continue
            keys = set.intersection(*(set(m) for m in by_setting.values()))
            metrics = {}
            for k in keys:
                values = [m[k] for m in by_setting.values()]
                if all(isinstance(v, (int, float)) and v is not None for v in values):
                    # The block is as thin as its thinnest setting.
                    pool = np.min if k == SMALLEST_TEST_CLASS else np.mean
                    metrics[k] = float(pool(values))
            label = _mean_label(task) or MEAN_SETTING
            cell = {
                "task": task,
                "dataset": {"name": dataset},
                "setting": f"{label} ({len(wanted)})",
                "classifier": clf,
                "method": method,
            }
            out.append({"cell": cell, "seed": seed, "metrics": metrics})
    return out


def _test_fraction(task: str, cell: dict[str, Any]) -> float | None:
    t = _task(task)
    return None if t is None or "split" not in cell else t.test_fraction(cell)


def _protocol(task: str, cell: dict[str, Any]) -> Resampling:
    """The resampling protocol a recorded cell ran under (records older than protocols name
    none: they ran the task's first, which is what :func:`resampling_of` reads)."""
    t = _task(task)
    return resampling_of(cell.get("split", {}), t.protocols if t is not None else (RANDOM_SPLITS,))


def holm_families(
    methods: Sequence[str],
    comparisons: Sequence[tuple[str, str]],
    *,
    best_free: str | None,
    free: Sequence[str],
    references: Sequence[str] = (),
) -> dict[frozenset[str], str]:
    """The Holm family of each distinct comparison of one table.

    A table asks two questions, and each is one family (Holm's step-down method runs within
    it): :data:`FAMILY_BEST_FREE`, every method but ``none`` and the references against the
    best free baseline (does it beat what costs nothing?); :data:`FAMILY_FREE_NONE`, every
    free baseline against ``none`` (does the free fix help at all?). The table's other
    comparisons (a generator against ``none`` or ``classical``, the ceiling against
    anything) form :data:`FAMILY_OTHER`. A pair that two columns share (``classical`` against
    the best free baseline is also the best free baseline's ``vs classical`` cell) is tested
    once, in the first family that holds it.

    Parameters
    ----------
    methods : sequence of str
        The table's methods.
    comparisons : sequence of (str, str)
        Every ``(method, other)`` comparison the table shows.
    best_free : str or None
        The table's best free baseline.
    free : sequence of str
        The free baselines of the table.
    references : sequence of str
        Methods shown for reference (the ``full-data`` ceiling).
    """
    families: dict[frozenset[str], str] = {}
    if best_free is not None:
        for m in methods:
            if m not in (best_free, "none", *references):
                families.setdefault(frozenset((m, best_free)), FAMILY_BEST_FREE)
    if "none" in methods:
        for m in free:
            families.setdefault(frozenset((m, "none")), FAMILY_FREE_NONE)
    for a, b in comparisons:
        if a != b:
            families.setdefault(frozenset((a, b)), FAMILY_OTHER)
    return families


def _is_free(task: str, cell: dict[str, Any]) -> bool:
    t = _task(task)
    return t is not None and t.is_free_baseline(cell["method"], cell.get("method_params", {}))


def summarize_results(
    records: list[dict[str, Any]], baselines: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One row per (task, dataset, setting, classifier, method, metric): see :func:`csv_fields`.

    Means and paired differences get t-intervals; when the task's seeds re-split one data set
    (:meth:`~synthaug.bench.Task.test_fraction`), the corrected t of the resampling protocol
    (Nadeau & Bengio 2003 for random splits, Bouckaert & Frank 2004 for repeated k-fold), else
    the plain t (``protocol`` and ``interval`` say which). Each difference is tested with the
    same t (two-sided) and the p-values of a table (setting x classifier x metric) are
    Holm-adjusted within their family (:func:`holm_families`; ``p_holm_vs_*`` and
    ``holm_family_vs_*``); ``wtl_vs_*`` counts the seeds a method wins, ties and loses. Tasks with free baselines also compare every method with the best of
    them in the table (``best_free``, the ``best-free`` columns); with a ``none`` row and a
    reference ceiling (``full-data``), ``gap_closed`` is the share of the gap between them a
    method closes.

    Parameters
    ----------
    records : list of dict
        Result records (``read_results``).
    baselines : sequence of str, optional
        Methods every other method is compared with; default the task's baselines
        (``none`` and ``classical`` for classification) that the records hold.
    """
    records = records + _mean_over_settings(records)
    groups: dict[tuple, dict[str, dict[int, dict[str, float]]]] = {}
    cells: dict[tuple, dict[str, dict[str, Any]]] = {}
    fractions: dict[tuple, float | None] = {}
    protocols: dict[tuple, Resampling] = {}
    for r in records:
        c = r["cell"]
        key = (c["task"], c["dataset"]["name"], c["setting"], c["classifier"])
        groups.setdefault(key, {}).setdefault(c["method"], {})[r["seed"]] = r["metrics"]
        cells.setdefault(key, {})[c["method"]] = c
        fractions.setdefault(key, _test_fraction(c["task"], c))
        if "split" in c:
            protocols.setdefault(key, _protocol(c["task"], c))
    rows = []
    for key, by_method in groups.items():
        task, dataset, setting, classifier = key
        fraction = fractions[key]
        metrics = _reported_metrics(task, [r for r in records if r["cell"]["task"] == task])
        bases = list(baselines) if baselines is not None else default_baselines(task, by_method)
        free = [m for m in by_method if _is_free(task, cells[key][m])]
        t = _task(task)
        ceiling = next((m for m in (t.references if t else ()) if m in by_method), None)
        for i, metric in enumerate(metrics):
            series = {
                m: {s: v.get(metric) for s, v in by_seed.items()}
                for m, by_seed in by_method.items()
            }
            means = {
                m: mean_ci(list(v.values()), test_fraction=fraction)[0] for m, v in series.items()
            }
            higher = _best_is_highest(task, metric)
            ranked = [m for m in free if not math.isnan(means[m])]
            if i == 0 or not ranked:
                # The best free baseline is chosen on the table's primary metric.
                best_free = max(
                    ranked, key=lambda m: means[m] if higher else -means[m], default=None
                )
            comparisons = [*bases, BEST_FREE] if best_free is not None else list(bases)
            block = []
            for method, values in series.items():
                mean, half = mean_ci(list(values.values()), test_fraction=fraction)
                row = {
                    "task": task,
                    "dataset": dataset,
                    "setting": setting,
                    "classifier": classifier,
                    "method": method,
                    "metric": metric,
                    "n": sum(v is not None for v in values.values()),
                    "mean": mean,
                    "ci95_low": mean - half,
                    "ci95_high": mean + half,
                    "ci95_half_width": half,
                    "protocol": protocols[key].name if key in protocols else "",
                    "interval": protocols[key].test if fraction else "paired t",
                    "best_free": best_free or "",
                    "gap_closed": _gap_closed(means, method, ceiling),
                }
                ses = [
                    by_method[method][s].get(f"se_{metric}")
                    for s, v in values.items()
                    if v is not None
                ]
                row["inverted"], row["inverted_interval"] = _inverted(row, ses)
                for base in comparisons:
                    other = best_free if base == BEST_FREE else base
                    _compare(row, base, values, series.get(other), fraction, method != other)
                block.append(row)
            # Holm within each family of the table (holm_families); a pair two columns share
            # is one test.
            shown = [
                (row["method"], best_free if base == BEST_FREE else base)
                for row in block
                for base in comparisons
                if not math.isnan(row[f"p_vs_{base}"])
            ]
            family = holm_families(
                list(series),
                shown,
                best_free=best_free,
                free=free,
                references=t.references if t else (),
            )
            pairs: dict[frozenset[str], float] = {}
            for row in block:
                for base in comparisons:
                    pair = frozenset((row["method"], best_free if base == BEST_FREE else base))
                    if pair in family:
                        pairs.setdefault(pair, row[f"p_vs_{base}"])
            adjusted = {}
            for name in FAMILIES:
                members = [pair for pair in pairs if family[pair] == name]
                adjusted.update(zip(members, holm([pairs[m] for m in members]), strict=True))
            for row in block:
                for base in comparisons:
                    pair = frozenset((row["method"], best_free if base == BEST_FREE else base))
                    row[f"p_holm_vs_{base}"] = float(adjusted.get(pair, math.nan))
                    row[f"holm_family_vs_{base}"] = family.get(pair, "")
            finite = [v for v in means.values() if not math.isnan(v)]
            top = max(finite) if finite and higher else math.nan
            for row in block:
                row["best"] = not math.isnan(top) and math.isclose(row["mean"], top, abs_tol=1e-12)
            rows.extend(block)
    return rows


def _gap_closed(means: dict[str, float], method: str, ceiling: str | None) -> float:
    """``(method - none) / (ceiling - none)``; NaN without both rows or with no gap."""
    if ceiling is None or "none" not in means:
        return math.nan
    gap = means[ceiling] - means["none"]
    if math.isnan(gap) or abs(gap) < 1e-12:
        return math.nan
    return (means[method] - means["none"]) / gap


def _compare(
    row: dict[str, Any],
    base: str,
    values: dict[int, float | None],
    other: dict[int, float | None] | None,
    fraction: float | None,
    distinct: bool,
) -> None:
    """Fill ``row``'s columns for the paired comparison with ``base``."""
    if other is None or not distinct:
        gain = half = p = wilcoxon = math.nan
        n, wtl = 0, ""
    else:
        diff = paired_differences(values, other)
        n = len(diff)
        gain, half, p = corrected_t(diff, test_fraction=fraction) if n else (math.nan,) * 3
        wilcoxon = paired_gain(values, other)[1]
        wtl = "/".join(str(k) for k in win_tie_loss(diff)) if n else ""
    row[f"gain_vs_{base}"], row[f"ci95_gain_vs_{base}"] = gain, half
    row[f"p_vs_{base}"], row[f"n_pairs_vs_{base}"] = p, n
    row[f"wilcoxon_p_vs_{base}"], row[f"wtl_vs_{base}"] = wilcoxon, wtl


def _baselines_in(rows: list[dict[str, Any]]) -> list[str]:
    keys = [k[len("gain_vs_") :] for r in rows for k in r if k.startswith("gain_vs_")]
    return list(dict.fromkeys(keys))


# -- formatting -----------------------------------------------------------------------------


def _num(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _signed(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.3f}"


def _p(x: float) -> str:
    return "n/a" if math.isnan(x) else (f"{x:.3f}" if x >= 0.001 else f"{x:.1e}")


def _mark(row: dict[str, Any]) -> str:
    return INVERTED_MARK if row.get("inverted") else ""


def _cell_text(row: dict[str, Any]) -> str:
    if math.isnan(row["ci95_half_width"]):
        return _num(row["mean"]) + _mark(row)
    return f"{_num(row['mean'])} ± {_num(row['ci95_half_width'])}{_mark(row)}"


def _blocks(rows: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    blocks: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["task"], row["dataset"], row["setting"], row["classifier"])
        blocks.setdefault(key, []).append(row)
    return blocks


def _methods_in(block: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["method"] for r in block))


def _metrics_in(block: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["metric"] for r in block))


def _thin_tables(rows: list[dict[str, Any]], records: list[dict[str, Any]]) -> dict[tuple, str]:
    """Tables too thin to name a best method in: ``{(task, dataset, setting, classifier): why}``.

    Thin: fewer than :data:`MIN_SEEDS` seeds behind a method of the table's primary metric, or
    a cell whose smallest test class has fewer than :data:`MIN_TEST_CLASS` items (cells that
    record ``smallest_test_class``).
    """
    smallest: dict[tuple, float] = {}
    for r in records + _mean_over_settings(records):
        c, value = r["cell"], r["metrics"].get(SMALLEST_TEST_CLASS)
        if isinstance(value, (int, float)):
            key = (c["task"], c["dataset"]["name"], c["setting"], c["classifier"])
            smallest[key] = min(smallest.get(key, math.inf), value)
    out = {}
    for key, block in _blocks(rows).items():
        primary = _metrics_in(block)[0]
        seeds = min(
            (r["n"] for r in block if r["metric"] == primary and not math.isnan(r["mean"])),
            default=0,
        )
        why = []
        if seeds < MIN_SEEDS:
            why.append(f"{seeds} seed{'s' * (seeds != 1)} (fewer than {MIN_SEEDS})")
        if smallest.get(key, math.inf) < MIN_TEST_CLASS:
            why.append(f"a test class of {int(smallest[key])} items (fewer than {MIN_TEST_CLASS})")
        if why:
            out[key] = " and ".join(why)
    return out


def _thin_note(thin: dict[tuple, str], key: tuple) -> str:
    return f" — not conclusive: {thin[key]}" if key in thin else ""


def _winners(rows: list[dict[str, Any]], thin: dict[tuple, str] | None = None) -> list[str]:
    thin = thin or {}
    lines = []
    for (task, dataset, setting, clf), block in _blocks(rows).items():
        primary = _metrics_in(block)[0]
        by_method = {r["method"]: r for r in block if r["metric"] == primary}
        # A reference that no method is meant to beat (the real data of TSTR) is not a winner.
        t = _task(task)
        references = t.references if t is not None else ()
        best = max(
            (
                r
                for r in by_method.values()
                if not math.isnan(r["mean"]) and r["method"] not in references
            ),
            key=lambda r: r["mean"],
            default=None,
        )
        if best is None:
            continue
        others = dict.fromkeys(("smote", *references, *reversed(_baselines_in(block))))
        margins = [
            f"{best['mean'] - by_method[b]['mean']:+.3f} over {b}"
            for b in others
            if b in by_method and b != best["method"]
        ]
        lines.append(
            f"- {', '.join(where_parts(dataset, setting, clf))}: **{best['method']}** "
            f"{primary} {_cell_text(best)}"
            + (f" ({', '.join(margins)})" if margins else "")
            + _thin_note(thin, (task, dataset, setting, clf))
        )
    return lines


def _inverted_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per inverted score: where, method, metric, mean and the deciding interval."""
    return [
        f"- {', '.join(where_parts(r['dataset'], r['setting'], r['classifier']))}: "
        f"**{r['method']}** {r['metric']} {_num(r['mean'])}, 95% interval "
        f"{r['inverted_interval']}"
        for r in rows
        if r.get("inverted")
    ]


def _gain_text(row: dict[str, Any], base: str) -> str:
    gain, half = row[f"gain_vs_{base}"], row[f"ci95_gain_vs_{base}"]
    if math.isnan(gain):
        return "—"
    ci = "" if math.isnan(half) else f" ± {half:.3f}"
    family = _FAMILY_TAGS.get(row.get(f"holm_family_vs_{base}", ""), "")
    return (
        f"{_signed(gain)}{ci} (p {_p(row[f'p_vs_{base}'])}, Holm{family} "
        f"{_p(row[f'p_holm_vs_{base}'])}; {row[f'wtl_vs_{base}']})"
    )


# How the Markdown tables name a p-value's Holm family (the note under the header says which).
_FAMILY_TAGS = {FAMILY_BEST_FREE: "ᴮ", FAMILY_FREE_NONE: "ᴺ", FAMILY_OTHER: "ᴼ"}


def _baseline_label(base: str, block: list[dict[str, Any]]) -> str:
    best_free = block[0]["best_free"]
    if base == BEST_FREE:
        return f"best free ({best_free})"
    return f"{base} (best free)" if base == best_free else base


def _shown_baselines(block: list[dict[str, Any]]) -> list[str]:
    """The comparison columns of a table: the best free baseline's only when it is not
    already a named baseline's column."""
    bases = _baselines_in(block)
    if block[0]["best_free"] in bases:
        bases = [b for b in bases if b != BEST_FREE]
    return bases


def _protocol_text(records: list[dict[str, Any]]) -> str:
    """What the records' protocols were and which test each implies, in words."""
    seeds: dict[tuple[str, str], set[int]] = {}
    found: dict[tuple[str, str], Resampling] = {}
    for r in records:
        c = r["cell"]
        if "split" not in c and _task(c["task"]) is None:
            continue
        protocol = _protocol(c["task"], c)
        key = (c["task"], json.dumps(protocol.to_dict(), sort_keys=True))
        found[key] = protocol
        seeds.setdefault(key, set()).add(r["seed"])
    parts = []
    for key, protocol in found.items():
        fraction = protocol.test_fraction
        why = (
            f"variance x (1/n + n_test/n_train), n_test/n_train = {fraction / (1 - fraction):.3g}"
            ", because the seeds' training sets overlap; the plain t would be overconfident"
            if fraction
            else "the seeds are independent"
        )
        parts.append(
            f"protocol **{protocol.name}** ({protocol.describe(len(seeds[key]))}): the "
            f"{protocol.test}, {why}"
        )
    return "; ".join(parts) if parts else "the plain Student t"


def _statistics_note(rows: list[dict[str, Any]], records: list[dict[str, Any]]) -> str:
    return (
        f"Cells: mean ± 95% interval across seeds; {_protocol_text(records)}. Best mean per "
        "column in bold. Δ: mean paired difference (same seeds, same data) ± its 95% "
        "interval, then (the two-sided p of the same t; that p Holm-adjusted within its "
        f"family: ᴮ {FAMILY_BEST_FREE}, every method against the table's best free baseline; "
        f"ᴺ {FAMILY_FREE_NONE}, every free baseline against none; ᴼ {FAMILY_OTHER}, the "
        "table's remaining comparisons; wins/ties/losses over seeds). The Wilcoxon "
        "signed-rank p-values are in report.csv."
    )


def _free_verdicts(rows: list[dict[str, Any]], thin: dict[tuple, str] | None = None) -> list[str]:
    """Per table, the best free baseline and every other method tested against it."""
    thin = thin or {}
    lines = []
    for (task, dataset, setting, clf), block in _blocks(rows).items():
        primary = _metrics_in(block)[0]
        mine = [r for r in block if r["metric"] == primary]
        best_free = mine[0]["best_free"] if mine else ""
        if not best_free:
            continue
        base = next(r for r in mine if r["method"] == best_free)
        t = _task(task)
        skip = {best_free, *(t.references if t else ())}
        verdicts = []
        for r in mine:
            if r["method"] in skip or math.isnan(r[f"gain_vs_{BEST_FREE}"]):
                continue
            p = r[f"p_holm_vs_{BEST_FREE}"]
            word = "above" if r[f"gain_vs_{BEST_FREE}"] > 0 else "below"
            sig = "significant" if p < 0.05 else "not significant"
            verdicts.append(
                f"{r['method']} {_signed(r[f'gain_vs_{BEST_FREE}'])} ({word}, p "
                f"{_p(r[f'p_vs_{BEST_FREE}'])}, p_holm {_p(p)}, {sig})"
            )
        lines.append(
            f"- {', '.join(where_parts(dataset, setting, clf))}: best free baseline "
            f"**{best_free}** {primary} {_cell_text(base)}; "
            + ("; ".join(verdicts) if verdicts else "no other method")
            + _thin_note(thin, (task, dataset, setting, clf))
        )
    return lines


def _overview(rows: list[dict[str, Any]], metric: str) -> str:
    """Methods x settings for one metric, the mean over settings last (one-class protocol)."""
    rows = [r for r in rows if r["metric"] == metric]
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    mean_col = [st for st in settings if st.startswith("mean over ")]
    plain = [st for st in settings if st not in mean_col]
    head = ["method", *(st.split("=", 1)[-1] for st in plain), *mean_col]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for method in _methods_in(rows):
        cells = [method]
        for st in plain:
            row = next((r for r in rows if r["method"] == method and r["setting"] == st), None)
            cells.append("" if row is None else _num(row["mean"]) + _mark(row))
        for st in mean_col:
            row = next((r for r in rows if r["method"] == method and r["setting"] == st), None)
            text = "" if row is None else _cell_text(row)
            cells.append(f"**{text}**" if row is not None and row["best"] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _runs_text(protocol: str, n: int) -> str:
    """``"10 seeds"``, or ``"50 runs: 10 x 5-fold"`` for a k-fold table."""
    if protocol == REPEATED_KFOLD:
        return f"{n} runs"
    return f"{n} seed{'s' * (n != 1)}"


def format_markdown(rows: list[dict[str, Any]], records: list[dict[str, Any]]) -> str:
    """The Markdown report: winners, one table per setting and classifier, timings."""
    seeds = sorted({r["seed"] for r in records})
    out = io.StringIO()
    out.write("# Benchmark report\n\n")
    pools = {r["cell"]["dataset"].get("pool", "all") for r in records}
    if "development" in pools:
        out.write(
            "**Development pool (a tuning run): these numbers chose settings; do not report "
            "them.**\n\n"
        )
    out.write(
        f"{len(records)} finished cells, seeds {seeds}. {_statistics_note(rows, records)}\n\n"
    )
    thin = _thin_tables(rows, records)
    out.write("## Best method per setting\n\n" + "\n".join(_winners(rows, thin)) + "\n")
    inverted = _inverted_lines(rows)
    if inverted:
        out.write(
            f"\n## Inverted scores\n\nBelow chance ({CHANCE}) with the whole 95% interval "
            f"below it too: these rank the two classes the wrong way round (an AUROC of 0.1 "
            f"puts most positives below most negatives), a broken or inverted score, not a "
            f"weak one. Check the score's sign and the training budget before reading them. "
            f"Marked {INVERTED_MARK} in the tables.\n\n" + "\n".join(inverted) + "\n"
        )
    verdicts = _free_verdicts(rows, thin)
    if verdicts:
        out.write("\n## Against the best free baseline\n\n" + "\n".join(verdicts) + "\n")
    for task, dataset, clf in dict.fromkeys(
        (r["task"], r["dataset"], r["classifier"]) for r in rows
    ):
        if not _mean_label(task):
            continue
        mine = [
            r for r in rows if (r["task"], r["dataset"], r["classifier"]) == (task, dataset, clf)
        ]
        for metric in _metrics_in(mine):
            out.write(f"\n## {' · '.join(where_parts(dataset, clf))}: {metric} per setting\n\n")
            out.write(_overview(mine, metric))
    for (_, dataset, setting, clf), block in _blocks(rows).items():
        metrics = _metrics_in(block)
        primary = metrics[0]
        bases = _shown_baselines(block)
        n = max(r["n"] for r in block)
        runs = _runs_text(block[0]["protocol"], n)
        out.write(f"\n## {' · '.join(where_parts(dataset, setting, clf))} ({runs})\n\n")
        gap = any(not math.isnan(r["gap_closed"]) for r in block if r["metric"] == primary)
        header = ["method", *metrics] + (["gap closed"] if gap else [])
        header += [f"Δ {primary} vs {_baseline_label(b, block)} (p, Holm; W/T/L)" for b in bases]
        out.write("| " + " | ".join(header) + " |\n")
        out.write("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|\n")
        for method in _methods_in(block):
            cells = [method]
            for metric in metrics:
                row = next(r for r in block if r["method"] == method and r["metric"] == metric)
                text = _cell_text(row)
                cells.append(f"**{text}**" if row["best"] else text)
            row = next(r for r in block if r["method"] == method and r["metric"] == primary)
            if gap:
                cells.append("" if math.isnan(row["gap_closed"]) else f"{row['gap_closed']:.0%}")
            cells += [_gain_text(row, b) for b in bases]
            out.write("| " + " | ".join(cells) + " |\n")
    out.write("\n## Mean seconds per cell and phase\n\n")
    phases = list(dict.fromkeys(k for r in records for k in r["timings"]))
    out.write("| method | classifier | " + " | ".join(phases) + " |\n")
    out.write("|---|---|" + "|".join(["---:"] * len(phases)) + "|\n")
    pairs = dict.fromkeys((r["cell"]["method"], r["cell"]["classifier"]) for r in records)
    for method, clf in pairs:
        mine = [
            r for r in records if (r["cell"]["method"], r["cell"]["classifier"]) == (method, clf)
        ]
        times = [np.mean([r["timings"].get(p, 0.0) for r in mine]) for p in phases]
        out.write(f"| {method} | {clf} | " + " | ".join(f"{t:.2f}" for t in times) + " |\n")
    versions = records[0].get("versions", {}) if records else {}
    device = records[0].get("device", {}) if records else {}
    out.write(
        "\nVersions: "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f". Device: {device.get('device', '?')} ({device.get('cpu_count', '?')} CPUs, "
        f"{device.get('torch_threads', '?')} torch threads per cell).\n"
    )
    return out.getvalue()


def format_csv(rows: list[dict[str, Any]]) -> str:
    """Long-format CSV: one line per (setting, classifier, method, metric)."""
    buf = io.StringIO()
    fields = csv_fields(_baselines_in(rows))
    writer = csv.DictWriter(buf, fieldnames=fields, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        )
    return buf.getvalue()


def _tex_escape(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("%", r"\%"),
        ("&", r"\&"),
        ("#", r"\#"),
    ):
        text = text.replace(a, b)
    return text


def format_latex(rows: list[dict[str, Any]]) -> str:
    """booktabs tables (``\\usepackage{booktabs}``), one per setting and classifier."""
    out = io.StringIO()
    out.write("% Generated by `synthaug report`; needs \\usepackage{booktabs}.\n")
    for (_, dataset, setting, clf), block in _blocks(rows).items():
        metrics = _metrics_in(block)
        primary = metrics[0]
        bases = _shown_baselines(block)
        n = max(r["n"] for r in block)
        where = ", ".join(_tex_escape(w) for w in where_parts(dataset, setting, clf))
        out.write("\\begin{table}[t]\n\\centering\n\\small\n")
        inverted = (
            " $^\\dagger$: inverted score (below 0.5, chance, with its whole 95\\% interval)."
            if any(r.get("inverted") for r in block)
            else ""
        )
        out.write(
            f"\\caption{{{where}: "
            f"mean $\\pm$ 95\\% CI over {_runs_text(block[0]['protocol'], n)} "
            f"({block[0]['interval']}); $\\Delta$ = paired gain in {_tex_escape(primary)}, "
            f"$p$ of the same t Holm-adjusted within its family.{inverted}}}\n"
        )
        out.write("\\begin{tabular}{l" + "r" * (len(metrics) + len(bases)) + "}\n\\toprule\n")
        head = ["Method", *(_tex_escape(m) for m in metrics)]
        head += [
            f"$\\Delta$ vs {_tex_escape(_baseline_label(b, block))} ($p_\\mathrm{{Holm}}$)"
            for b in bases
        ]
        out.write(" & ".join(head) + " \\\\\n\\midrule\n")
        for method in _methods_in(block):
            cells = [_tex_escape(method)]
            for metric in metrics:
                row = next(r for r in block if r["method"] == method and r["metric"] == metric)
                text = _cell_text(row).replace("±", "$\\pm$")
                text = text.replace(INVERTED_MARK, "$^\\dagger$")
                cells.append(f"\\textbf{{{text}}}" if row["best"] else text)
            row = next(r for r in block if r["method"] == method and r["metric"] == primary)
            for b in bases:
                gain, p = row[f"gain_vs_{b}"], row[f"p_holm_vs_{b}"]
                cells.append("--" if math.isnan(gain) else f"${_signed(gain)}$ ({_p(p)})")
            out.write(" & ".join(cells) + " \\\\\n")
        out.write("\\bottomrule\n\\end{tabular}\n\\end{table}\n\n")
    return out.getvalue()


def write_report(out: str | Path, *, echo: Callable[[str], None] = print) -> dict[str, Path]:
    """Write ``report.md``, ``report.csv``, ``report.tex`` and ``plots/*.png`` into ``out``.

    Returns
    -------
    dict
        The paths written, by kind.

    Warns
    -----
    SynthaugWarning
        Once, when a best method is named from fewer than 3 seeds or from a test class of
        fewer than 10 items (the report marks those lines "not conclusive"); once more when
        a score is inverted (the report lists them under "Inverted scores").
    """
    out = Path(out)
    records = load_records(out)
    if not records:
        raise DataFileError(f"{out / RESULTS} holds no finished cells yet; nothing to report")
    baselines = None
    if (out / CONFIG).exists():
        baselines = json.loads((out / CONFIG).read_text()).get("config", {}).get("baselines")
    rows = summarize_results(records, baselines)
    paths = {"md": out / "report.md", "csv": out / "report.csv", "tex": out / "report.tex"}
    paths["md"].write_text(format_markdown(rows, records))
    paths["csv"].write_text(format_csv(rows))
    paths["tex"].write_text(format_latex(rows))
    save_plots(rows, out / "plots")
    save_sample_grids(out)
    paths["plots"] = out / "plots"
    thin = _thin_tables(rows, records)
    echo("\n".join(_winners(rows, thin)))
    if thin:
        (task, dataset, setting, clf), why = next(iter(thin.items()))
        where = ", ".join(where_parts(dataset, setting, clf))
        warn(
            f"the report names a best method from too little evidence in {len(thin)} of "
            f"{len(_blocks(rows))} table(s) (e.g. {where}: {why}); run at least {MIN_SEEDS} "
            f"seeds with at least {MIN_TEST_CLASS} test items per class"
        )
    inverted = [r for r in rows if r.get("inverted")]
    if inverted:
        r = inverted[0]
        where = ", ".join(where_parts(r["dataset"], r["setting"], r["classifier"]))
        warn(
            f"{len(inverted)} score(s) below chance (0.5) with the 95% interval below it too, "
            f"inverted (e.g. {where}: {r['method']} {r['metric']} {_num(r['mean'])}); check "
            f"the score's sign and the training budget (see 'Inverted scores' in report.md)"
        )
    echo(f"wrote {paths['md']}, {paths['csv']}, {paths['tex']} and {paths['plots']}/")
    return paths
