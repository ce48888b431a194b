"""The honest yardstick: equal step budgets, free baselines, online augmentation, the full-data
ceiling, corrected statistics and the development pool."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from synthaug.bench import (
    bundled_config,
    load_config,
    parse_config,
    read_results,
    run_bench,
    summarize_results,
)
from synthaug.bench._task import get_task, load_dataset
from synthaug.bench._tstr import generator_params
from synthaug.cli._demo import medical_config
from synthaug.data import load_digits, split_pools
from synthaug.errors import InvalidParameterError
from synthaug.metrics import holm

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FREE = ["class-weighted", "logit-adjusted", "balanced-online", "mixup"]


def yardstick_config(**over):
    cfg = {
        "seeds": 2,
        "dataset": {"name": "digits"},
        "imbalance": {"minority_classes": [8, 9], "ratios": [0.1]},
        "split": {"test_size": 0.5},
        "classifiers": {"logreg": {"max_iter": 200}, "cnn": {"steps": 6, "batch_size": 16}},
        "methods": ["none", "full-data", "random-oversampling", *FREE, "classical+balanced-online"],
    }
    cfg.update(over)
    return cfg


def test_steps_are_equal_across_methods_and_recorded(tmp_path):
    config = parse_config(yardstick_config())
    run_bench(config, tmp_path, jobs=1, progress=False)
    records = read_results(tmp_path / "results.jsonl")
    cnn = [r for r in records if r["cell"]["classifier"] == "cnn"]
    assert {r["cell"]["method"] for r in cnn} == set(config.methods)
    # Topped-up, cut and full training sets alike: the same six optimiser steps.
    assert {r["metrics"]["train_steps"] for r in cnn} == {6}
    sizes = {r["cell"]["method"]: r["metrics"]["n_train_real"] for r in cnn if r["seed"] == 0}
    assert sizes["full-data"] > sizes["none"]
    synthetic = {r["cell"]["method"]: r["metrics"]["n_train_synthetic"] for r in cnn}
    assert synthetic["random-oversampling"] > 0 and synthetic["logit-adjusted"] == 0
    assert all(r["timings"]["fit_seconds"] >= 0 for r in records)
    # Logistic regression has no sampler: the pairs that need one are left out of the grid.
    logreg = {r["cell"]["method"] for r in records if r["cell"]["classifier"] == "logreg"}
    assert logreg == {
        "none",
        "full-data",
        "random-oversampling",
        "class-weighted",
        "logit-adjusted",
    }
    assert all(
        r["metrics"]["train_steps"] is None for r in records if r["cell"]["classifier"] == "logreg"
    )


def test_harness_requires_a_step_budget_and_owns_the_training_options():
    cfg = yardstick_config(classifiers={"cnn": {"epochs": 3}})
    with pytest.raises(InvalidParameterError, match=r"classifiers\.cnn: give steps"):
        parse_config(cfg)
    cfg = yardstick_config(classifiers={"cnn": {"steps": 3, "loss": "class-weighted"}})
    with pytest.raises(InvalidParameterError, match=r"classifiers\.cnn\.loss"):
        parse_config(cfg)
    with pytest.raises(InvalidParameterError, match="full-data"):
        parse_config(yardstick_config(methods=["none", "full-data+classical"]))
    with pytest.raises(InvalidParameterError, match="two parts set the classifier's 'sampler'"):
        parse_config(yardstick_config(methods=["balanced-online+mixup"]))
    with pytest.raises(InvalidParameterError, match=r"methods\.mixup\.alpha"):
        parse_config(yardstick_config(methods={"mixup": {"alpha": 1.0}}))
    with pytest.raises(InvalidParameterError, match=r"dataset\.pool"):
        parse_config(yardstick_config(dataset={"name": "digits", "pool": "test"}))
    # A variant of a registered classifier under its own name.
    config = parse_config(
        yardstick_config(classifiers={"resnet-4": {"classifier": "resnet", "steps": 4}})
    )
    assert config.classifiers == {"resnet-4": {"classifier": "resnet", "steps": 4}}
    with pytest.raises(InvalidParameterError, match=r"classifiers\.x: .*unknown classifier"):
        parse_config(yardstick_config(classifiers={"x": {"classifier": "nope", "steps": 4}}))


def test_mixup_strength_can_be_set_in_the_method_table(tmp_path):
    config = parse_config(
        yardstick_config(
            seeds=1,
            classifiers={"cnn": {"steps": 3}},
            methods={"mixup": {"mixup": 1.0}, "none": {}},
        )
    )
    run_bench(config, tmp_path, jobs=1, progress=False)
    assert len(read_results(tmp_path / "results.jsonl")) == 2


def test_development_pool_is_disjoint_from_every_reported_split():
    evaluation, development = split_pools(load_digits())
    assert (len(evaluation), len(development)) == (1527, 270)
    dev = {img.numpy().tobytes() for img in development.images}
    config = parse_config(yardstick_config(seeds=3))
    task = get_task(config.task)
    for cell in config.cells():
        assert cell.dataset["pool"] == "evaluation"
        data = task.load(cell)
        train, test = data.split(cell.split["test_size"], seed=cell.seed)
        for part in (train, test):
            assert not dev & {img.numpy().tobytes() for img in part.images}
    # --tune runs the same grid on the development pool only.
    tuned = parse_config(yardstick_config(dataset={"name": "digits", "pool": "development"}))
    data = load_dataset(tuned.cells()[0].dataset)
    assert {img.numpy().tobytes() for img in data.images} == dev


def test_tune_flag_selects_the_development_pool(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(
        'seeds = 1\n[dataset]\nname = "digits"\n[imbalance]\nminority_classes = [9]\n'
        "ratios = [0.5]\n[classifiers]\nlogreg = {}\n[methods]\nnone = {}\n"
    )
    assert load_config(path).dataset["pool"] == "evaluation"
    assert load_config(path, tune=True).dataset["pool"] == "development"


def _records(values, fraction=0.5):
    out = []
    for method, scores in values.items():
        for seed, score in enumerate(scores):
            cell = {
                "task": "classification",
                "dataset": {"name": "digits", "pool": "evaluation"},
                "split": {"test_size": fraction},
                "setting": "ratio=0.1",
                "classifier": "cnn",
                "method": method,
                "method_params": {},
                "seed": seed,
            }
            metrics = {"balanced_accuracy": score, "macro_f1": score, "gmean": score}
            metrics["minority_recall"] = score
            out.append({"cell": cell, "seed": seed, "metrics": metrics, "timings": {}})
    return out


def test_report_corrects_intervals_adjusts_p_and_finds_the_best_free_baseline():
    values = {
        "none": [0.70, 0.72, 0.68, 0.71, 0.69],
        "full-data": [0.95, 0.96, 0.94, 0.95, 0.96],
        "classical": [0.80, 0.84, 0.83, 0.82, 0.81],
        "logit-adjusted": [0.85, 0.86, 0.84, 0.88, 0.83],
        "cvae": [0.90, 0.92, 0.78, 0.95, 0.99],
    }
    rows = summarize_results(_records(values, fraction=0.4))
    ba = {r["method"]: r for r in rows if r["metric"] == "balanced_accuracy"}
    # The best free baseline is the best of classical and logit-adjusted (not full-data).
    assert {r["best_free"] for r in ba.values()} == {"logit-adjusted"}
    # Corrected resampled t: variance x (1/5 + 0.4/0.6) instead of 1/5.
    diff = np.array(values["cvae"]) - np.array(values["logit-adjusted"])
    se = diff.std(ddof=1) * math.sqrt(1 / 5 + 0.4 / 0.6)
    t = diff.mean() / se
    p = 2 * stats.t.sf(abs(t), 4)
    row = ba["cvae"]
    assert row["gain_vs_best-free"] == pytest.approx(diff.mean())
    assert row["ci95_gain_vs_best-free"] == pytest.approx(stats.t.ppf(0.975, 4) * se)
    assert row["p_vs_best-free"] == pytest.approx(p)
    assert row["wtl_vs_best-free"] == "4/0/1"  # [.05, .06, -.06, .07, .16]
    # A record written before protocols were named ran random splits.
    assert row["protocol"] == "random-splits"
    assert row["interval"] == "corrected resampled t (Nadeau & Bengio, 2003)"
    # Holm within the documented families: every method but none and the ceiling against the
    # best free baseline; every free baseline against none; the rest apart.
    raw, family = {}, {}
    for r in ba.values():
        for base, other in (
            ("none", "none"),
            ("classical", "classical"),
            ("best-free", "logit-adjusted"),
        ):
            if r["method"] != other:
                pair = frozenset((r["method"], other))
                raw[pair] = r[f"p_vs_{base}"]
                family[pair] = r[f"holm_family_vs_{base}"]
    assert len(raw) == 4 + 3 + 2
    expected = {
        "vs best free": {("classical", "logit-adjusted"), ("cvae", "logit-adjusted")},
        "free vs none": {("classical", "none"), ("logit-adjusted", "none")},
        "other": {
            ("full-data", "none"),
            ("cvae", "none"),
            ("full-data", "classical"),
            ("cvae", "classical"),
            ("full-data", "logit-adjusted"),
        },
    }
    for name, pairs in expected.items():
        members = [frozenset(p) for p in pairs]
        assert {pair for pair, f in family.items() if f == name} == set(members)
        by_hand = dict(zip(members, holm([raw[m] for m in members]), strict=True))
        for r in ba.values():
            for base, other in (("none", "none"), ("classical", "classical")):
                pair = frozenset((r["method"], other))
                if pair in by_hand and r["method"] != other:
                    assert r[f"p_holm_vs_{base}"] == pytest.approx(by_hand[pair])
    # cvae against the best free baseline: Holm over a family of 2, not 9.
    assert row["p_holm_vs_best-free"] == pytest.approx(
        holm([raw[frozenset(("classical", "logit-adjusted"))], row["p_vs_best-free"]])[1]
    )
    assert row["holm_family_vs_best-free"] == "vs best free"
    assert math.isnan(ba["logit-adjusted"]["p_holm_vs_best-free"])
    # Share of the none -> full-data gap closed.
    assert row["gap_closed"] == pytest.approx((0.908 - 0.70) / (0.952 - 0.70))
    assert ba["none"]["gap_closed"] == pytest.approx(0.0)


def test_generated_phantoms_draw_the_development_pool_from_other_seeds():
    reported = medical_config()
    data = bundled_config("medical_demo")
    data["dataset"]["pool"] = "development"
    tuned = parse_config(data)
    task = get_task("lesion")
    a = task.load(reported.cells()[0])["train"].images
    b = task.load(tuned.cells()[0])["train"].images
    assert a.shape == b.shape and not torch.equal(a, b)
    # Fresh phantoms per seed: the lesion task's seeds are independent, so the plain t.
    assert task.test_fraction(reported.cells()[0].to_dict()) is None


def test_tstr_variants_name_their_generator():
    cfg = {
        "task": "tstr",
        "seeds": 1,
        "dataset": {"name": "digits"},
        "privacy": {"epsilons": [1.0]},
        "classifiers": {"logreg": {}},
        "methods": {
            "real": {},
            "cvae-b64": {"method": "cvae", "epochs": 2, "private": {"batch_size": 64}},
        },
    }
    config = parse_config(cfg)
    params = config.methods["cvae-b64"]
    assert generator_params(params, 1.0) == {"epochs": 2, "batch_size": 64}
    cfg["methods"]["x"] = {"method": "nope"}
    with pytest.raises(InvalidParameterError, match=r"methods\.x: task 'tstr' compares"):
        parse_config(cfg)
