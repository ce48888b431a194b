"""Resampling protocols (issue 32): random splits, repeated stratified k-fold, fresh draws;
the corrected repeated k-fold t; the Holm families of a table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from synthaug.bench import parse_config, summarize_results
from synthaug.bench._config import tomllib
from synthaug.bench._report import format_markdown, holm_families
from synthaug.bench._resampling import RESAMPLING, RepeatedKFold, resampling_of
from synthaug.bench._task import Cell, load_dataset, split_indices
from synthaug.errors import InvalidDataError, InvalidParameterError
from synthaug.metrics import corrected_t, holm

ROOT = Path(__file__).resolve().parents[1]


def config(**over):
    cfg = {
        "dataset": {"name": "digits"},
        "imbalance": {"minority_classes": [8, 9], "ratios": [0.1]},
        "split": {"protocol": "repeated-kfold", "folds": 5, "repeats": 2},
        "classifiers": {"logreg": {"max_iter": 200}},
        "methods": ["none", "random-oversampling"],
    }
    cfg.update(over)
    return cfg


def test_kfold_parts_partition_the_data_in_every_repeat(digits):
    labels = digits.labels.numpy()
    for seed in (0, 1):
        tests = []
        for fold in range(5):
            train, test = digits.kfold_indices(5, fold, seed=seed)
            assert not set(train) & set(test) and len(train) + len(test) == len(digits)
            assert list(test) == sorted(test)
            # Stratified: each class's share of a test fold within one item of its share.
            for c in range(digits.n_classes):
                assert abs((labels[test] == c).sum() - (labels == c).sum() / 5) <= 1
            tests.append(test)
        every = np.concatenate(tests)
        assert sorted(every) == list(range(len(digits)))
    # Repeats are different partitions; the same repeat is the same partition.
    assert not np.array_equal(digits.kfold_indices(5, 0, 0)[1], digits.kfold_indices(5, 0, 1)[1])
    assert np.array_equal(digits.kfold_indices(5, 3, 7)[1], digits.kfold_indices(5, 3, 7)[1])


def test_kfold_refuses_what_it_cannot_do(digits):
    with pytest.raises(InvalidParameterError, match="folds must be an integer >= 2"):
        digits.kfold_indices(1, 0)
    with pytest.raises(InvalidParameterError, match=r"fold must be an integer in \[0, 5\)"):
        digits.kfold_indices(5, 5)
    small = digits.subset(np.r_[np.flatnonzero(digits.labels.numpy() == 0), 1, 11, 21])
    with pytest.raises(InvalidDataError, match="fewer than 5 samples"):
        small.kfold_indices(5, 0)


def test_repeated_kfold_seeds_are_folds_of_repeats():
    cfg = parse_config(config())
    assert cfg.split == {"protocol": "repeated-kfold", "folds": 5}
    assert cfg.seeds == list(range(10))
    cells = [c for c in cfg.cells() if c.method == "none"]
    dataset = load_dataset(cfg.cells()[0].dataset)
    first = [split_indices(c, dataset)[1] for c in cells[:5]]
    second = [split_indices(c, dataset)[1] for c in cells[5:]]
    for repeat in (first, second):
        assert sorted(np.concatenate(repeat)) == list(range(len(dataset)))
    # Seed s is fold s % 5 of repeat s // 5.
    assert np.array_equal(second[2], dataset.kfold_indices(5, 2, seed=1)[1])
    # A calibration study may hold the data fixed while the training seed moves.
    held = Cell(**{**cells[7].__dict__, "split": {**cells[7].split, "data_seed": 2}, "seed": 99})
    assert np.array_equal(split_indices(held, dataset)[1], first[2])


def test_quick_grids_shrink_the_repeats():
    cfg = parse_config(config(quick={"split": {"repeats": 1}}), quick=True)
    assert cfg.seeds == list(range(5))


@pytest.mark.parametrize(
    ("over", "key", "words"),
    [
        ({"split": {"protocol": "bootstrap"}}, "split.protocol", "'random-splits' or"),
        ({"split": {"protocol": "fresh-draws"}}, "split.protocol", "not a protocol of this"),
        ({"split": {"protocol": "repeated-kfold", "test_size": 0.3}}, "split.test_size", "not"),
        ({"split": {"protocol": "random-splits", "repeats": 3}}, "split.repeats", "not used"),
        ({"split": {"protocol": "repeated-kfold", "folds": 1}}, "split.folds", ">= 2"),
        ({"split": {"protocol": "repeated-kfold", "folds": 2.5}}, "split.folds", ">= 2"),
        ({"split": {"protocol": "repeated-kfold", "repeats": 0}}, "split.repeats", ">= 1"),
        ({"seeds": 10}, "seeds", "remove seeds and set split.repeats"),
    ],
)
def test_protocol_errors_name_the_key(over, key, words):
    with pytest.raises(InvalidParameterError, match=key.replace(".", r"\.")) as info:
        parse_config(config(**over))
    assert words in str(info.value)


def test_lesion_task_draws_fresh_data_and_says_so():
    lesion = {
        "task": "lesion",
        "dataset": {"name": "phantoms"},
        "lesion": {"n_normal": 10, "n_lesion": 2, "n_test_per_class": 4},
        "methods": ["none"],
        "seeds": 1,
    }
    assert parse_config(lesion).split == {"protocol": "fresh-draws"}
    with pytest.raises(InvalidParameterError, match="split.protocol"):
        parse_config({**lesion, "split": {"protocol": "random-splits"}})


def test_records_from_before_protocols_read_as_the_tasks_first():
    assert resampling_of({"test_size": 0.4}).test_fraction == 0.4
    assert resampling_of({"test_size": 0.4}, ("fresh-draws",)).test_fraction is None
    assert resampling_of({"protocol": "repeated-kfold", "folds": 10}).test_fraction == 0.1
    assert sorted(RESAMPLING.list()) == ["fresh-draws", "random-splits", "repeated-kfold"]


def test_corrected_repeated_kfold_t_matches_the_hand_computation():
    """Bouckaert & Frank (2004): t = mean / sqrt((1/(k r) + n2/n1) s^2), k r - 1 degrees of
    freedom, n2/n1 = 1/(k - 1) for k folds; computed here by hand from the formula."""
    rng = np.random.default_rng(3)
    k, r = 5, 3
    diff = rng.normal(0.02, 0.03, k * r)
    mean = sum(diff) / len(diff)
    s2 = sum((d - mean) ** 2 for d in diff) / (k * r - 1)
    se = math.sqrt((1 / (k * r) + 1 / (k - 1)) * s2)
    t = mean / se
    p = 2 * (1 - stats.t.cdf(abs(t), k * r - 1))
    half = stats.t.ppf(0.975, k * r - 1) * se
    assert RepeatedKFold(k).test_fraction == pytest.approx(1 / k)
    got = corrected_t(diff, test_fraction=RepeatedKFold(k).test_fraction)
    assert got == pytest.approx((mean, half, p), rel=1e-9)
    # The report runs the same test on a k-fold grid's records.
    records = []
    for method, shift in (("none", 0.0), ("random-oversampling", 1.0)):
        for seed in range(k * r):
            value = 0.5 + shift * diff[seed]
            cell = {
                "task": "classification",
                "dataset": {"name": "digits"},
                "split": {"protocol": "repeated-kfold", "folds": k},
                "setting": "ratio=0.1",
                "classifier": "logreg",
                "method": method,
                "method_params": {},
                "seed": seed,
            }
            metrics = dict.fromkeys(("balanced_accuracy", "macro_f1", "gmean"), value)
            metrics["minority_recall"] = value
            records.append({"cell": cell, "seed": seed, "metrics": metrics, "timings": {}})
    rows = summarize_results(records)
    ros = next(
        r
        for r in rows
        if r["method"] == "random-oversampling" and r["metric"] == "balanced_accuracy"
    )
    assert ros["p_vs_none"] == pytest.approx(p, rel=1e-9)
    assert ros["ci95_gain_vs_none"] == pytest.approx(half, rel=1e-9)
    assert ros["protocol"] == "repeated-kfold"
    assert ros["interval"] == "corrected repeated k-fold t (Bouckaert & Frank, 2004)"
    md = format_markdown(rows, records)
    assert "protocol **repeated-kfold** (3 x 5-fold)" in md
    assert "(15 runs)" in md


def test_holm_families_are_the_documented_ones():
    methods = ["none", "full-data", "classical", "mixup", "cvae", "cvae+mixup"]
    shown = [(m, b) for m in methods for b in ("none", "classical", "mixup") if m != b]
    family = holm_families(
        methods, shown, best_free="mixup", free=["classical", "mixup"], references=["full-data"]
    )
    by = {}
    for pair, name in family.items():
        by.setdefault(name, set()).add(pair)
    fs = frozenset
    assert by["vs best free"] == {fs(("classical", "mixup")), fs(("cvae", "mixup")),
                                  fs(("cvae+mixup", "mixup"))}  # fmt: skip
    assert by["free vs none"] == {fs(("classical", "none")), fs(("mixup", "none"))}
    assert by["other"] == {
        fs(("full-data", "none")),
        fs(("cvae", "none")),
        fs(("cvae+mixup", "none")),
        fs(("full-data", "classical")),
        fs(("cvae", "classical")),
        fs(("cvae+mixup", "classical")),
        fs(("full-data", "mixup")),
    }
    # Without a best free baseline or a none row, only the shown comparisons remain.
    plain = holm_families(["a", "b"], [("a", "b")], best_free=None, free=[])
    assert plain == {fs(("a", "b")): "other"}
    assert holm([0.01, 0.04]).tolist() == pytest.approx([0.02, 0.04])


def _raw_config(path: Path) -> dict:
    return tomllib.loads(path.read_text())


SHIPPED = sorted(
    [
        *(ROOT / "benchmarks").glob("*.toml"),
        *(ROOT / "benchmarks" / "tuning").glob("*.toml"),
        *(ROOT / "synthaug" / "bench" / "configs").glob("*.toml"),
    ]
)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_names_its_protocol(path):
    raw = _raw_config(path)
    assert "protocol" in raw.get("split", {}), f"{path.name}: [split] protocol is not named"
