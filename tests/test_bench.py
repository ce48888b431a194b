"""The benchmark harness: config validation, running, resuming, statistics, report files."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from scipy import stats

from synthaug.augment import MixedSource, SMOTESource
from synthaug.bench import (
    METHODS,
    load_config,
    parse_config,
    read_results,
    run_bench,
    summarize_results,
    write_report,
)
from synthaug.bench._report import format_csv, format_latex
from synthaug.bench._runner import fit_groups
from synthaug.cli import main
from synthaug.data import DATASETS, ImageDataset, save_npz
from synthaug.errors import (
    BenchmarkError,
    DataFileError,
    InvalidDataError,
    InvalidParameterError,
    SynthaugWarning,
)
from synthaug.metrics import mean_ci, paired_gain

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(**over):
    """Digits, one ratio, logistic regression: a grid that runs in about a second per cell."""
    cfg = {
        "seeds": 2,
        "dataset": {"name": "digits"},
        "imbalance": {"minority_classes": [8, 9], "ratios": [0.1]},
        "split": {"test_size": 0.5},
        "classifiers": {"logreg": {"max_iter": 200}},
        "methods": ["none", "random-oversampling", "smote"],
    }
    cfg.update(over)
    return cfg


def quiet(*_):
    pass


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"sedes": 3}, "sedes"),
        ({"seeds": 0}, "seeds"),
        ({"seeds": [1, 1]}, "seeds"),
        ({"seeds": "five"}, "seeds"),
        ({"task": "regression"}, "task"),
        ({"device": "tpu"}, "device"),
        ({"dataset": {"name": "mnist"}}, "dataset.name"),
        ({"dataset": {"nmae": "digits"}}, "dataset.name"),
        ({"dataset": {"name": "digits", "path": "x"}}, "dataset.path"),
        ({"imbalance": {"ratios": [0.1]}}, "imbalance.minority_classes"),
        ({"imbalance": {"minority_classes": [9], "ratios": [1.5]}}, "imbalance.ratios"),
        ({"imbalance": {"minority_classes": [9], "ratios": 0.1}}, "imbalance.ratios"),
        ({"imbalance": {"counts": [[5, -1]]}}, "imbalance.counts"),
        ({"imbalance": {"ratio": [0.1]}}, "imbalance.ratio"),
        ({"imbalance": {}}, "imbalance"),
        ({"split": {"test_size": 1.0}}, "split.test_size"),
        ({"split": {"folds": 5}}, "split.folds"),
        ({"classifiers": ["svm"]}, "classifiers"),
        ({"classifiers": {"cnn": {"epochz": 3}}}, "classifiers.cnn.epochz"),
        ({"classifiers": []}, "classifiers"),
        ({"methods": ["none", "gan-of-dreams"]}, "methods"),
        ({"methods": {"smote": {"k": 3}}}, "methods.smote.k"),
        ({"methods": {"cvae": {"epochz": 3}}}, "methods.cvae.epochz"),
        ({"methods": {"cvae": {"epochs": 0}}}, "methods.cvae"),
        ({"methods": {"cvae": {"seed": 3}}}, "methods.cvae.seed"),
        ({"methods": ["cvae+none"]}, "methods.cvae+none"),
        ({"methods": ["classical+classical"]}, "methods.classical+classical"),
        ({"methods": {"cvae+classical": {"epochs": 3}}}, "methods.cvae+classical.epochs"),
        (
            {"methods": {"cvae+classical": {"cvae": {"latent": 3}}}},
            "methods.cvae+classical.cvae.latent",
        ),
        ({"methods": "none"}, "methods"),
    ],
)
def test_bad_config_names_the_key(change, where):
    with pytest.raises(InvalidParameterError) as info:
        parse_config(tiny_config(**change))
    assert str(info.value).startswith(where), str(info.value)


def test_missing_sections_are_named():
    cfg = tiny_config()
    del cfg["methods"]
    with pytest.raises(InvalidParameterError, match="^methods: missing"):
        parse_config(cfg)
    cfg = tiny_config()
    del cfg["dataset"]
    with pytest.raises(InvalidParameterError, match="^dataset: missing"):
        parse_config(cfg)


def test_config_grid_quick_and_hash(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(
        """
seeds = [3, 7]
[dataset]
name = "digits"
[imbalance]
minority_classes = [5, 6]
ratios = [0.1, 0.02]
counts = [[20, 20, 20, 20, 20, 20, 20, 20, 5, 2]]
[classifiers]
logreg = {}
cnn = { steps = 4 }
[methods]
none = {}
"cvae+classical" = { cvae = { epochs = 5 } }
[quick]
seeds = 1
classifiers.cnn = { steps = 1 }
"""
    )
    cfg = load_config(path)
    assert cfg.name == "grid"
    assert [s["label"] for s in cfg.settings] == [
        "ratio=0.1",
        "ratio=0.02",
        "counts=20/20/20/20/20/20/20/20/5/2",
    ]
    cells = cfg.cells()
    assert len(cells) == 2 * 3 * 2 * 2
    assert len({c.cell_id for c in cells}) == len(cells)
    assert cfg.hash == load_config(path).hash
    quick = load_config(path, quick=True)
    assert quick.seeds == [0] and quick.classifiers["cnn"] == {"steps": 1}
    assert list(quick.methods) == list(cfg.methods)  # --quick keeps every method
    assert quick.hash != cfg.hash


def test_config_file_errors(tmp_path):
    with pytest.raises(DataFileError, match="cannot read"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seeds = [1,\n")
    with pytest.raises(InvalidParameterError, match="not valid TOML"):
        load_config(bad)
    bad.write_text("seeds = 2\n[quick]\nbogus = 1\n")
    with pytest.raises(InvalidParameterError, match="^quick.bogus"):
        load_config(bad, quick=True)
    # [quick] is checked even without --quick.
    bad.write_text(
        '[dataset]\nname = "digits"\n[imbalance]\ncounts = [[5, 5, 5, 5, 5, 5, 5, 5, 5, 5]]\n'
        "[methods]\nnone = {}\n[quick]\nseeds = 0\n"
    )
    with pytest.raises(InvalidParameterError, match="^quick.seeds: must be >= 1"):
        load_config(bad)


def test_datasets_by_name(tiny_images, tmp_path, monkeypatch):
    save_npz(tiny_images, tmp_path / "x.npz")
    monkeypatch.chdir(tmp_path)
    cfg = parse_config(
        tiny_config(dataset={"name": "npz", "path": "x.npz"}, imbalance={"counts": [[5, 5, 3]]})
    )
    # A dict's relative path is read from the current folder and recorded absolute.
    path = str(tmp_path / "x.npz")
    assert cfg.dataset == {"name": "npz", "params": {"path": path}, "pool": "evaluation"}
    with pytest.raises(InvalidParameterError, match="^dataset.bogus"):
        parse_config(tiny_config(dataset={"name": "npz", "bogus": 1}))
    # A data set of one's own is one registration away.
    DATASETS.register("test-tiny-images", lambda: tiny_images)
    cfg = parse_config(
        tiny_config(dataset={"name": "test-tiny-images"}, imbalance={"counts": [[5, 5, 3]]})
    )
    assert cfg.cells()[0].dataset == {
        "name": "test-tiny-images",
        "params": {},
        "pool": "evaluation",
    }


# -- methods -----------------------------------------------------------------------------------


def test_smote_source(small_digits):
    source = SMOTESource(k_neighbors=5).fit(small_digits)
    images, labels = source.sample(7, y=3, seed=0)
    assert images.shape == (7, 1, 8, 8) and (labels == 3).all()
    assert images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, source.sample(7, y=3, seed=0)[0])
    one = ImageDataset(torch.rand(5, 1, 4, 4), torch.tensor([0, 0, 0, 0, 1]))
    with pytest.warns(SynthaugWarning, match=r"\{'0': 4\}"):  # class 1 cannot be sampled at all
        fitted = SMOTESource().fit(one)
    with pytest.raises(InvalidDataError, match="at least 2 samples"):
        fitted.sample(3, y=1)
    # Two samples: interpolation still works (k_neighbors shrinks to 1), with a warning.
    two = ImageDataset(torch.rand(6, 1, 4, 4), torch.tensor([0, 0, 0, 0, 1, 1]))
    with pytest.warns(SynthaugWarning, match=r"k_neighbors \+ 1 = 6 .*\{'0': 4, '1': 2\}"):
        fitted = SMOTESource().fit(two)
    assert fitted.sample(3, y=1, seed=1)[0].shape == (3, 1, 4, 4)


def test_mixed_source_splits_requests(small_digits):
    from synthaug.augment import ClassicalAugmentation, RandomOverSampling

    mixed = MixedSource([RandomOverSampling(), ClassicalAugmentation()]).fit(small_digits)
    images, labels = mixed.sample(5, y=2, seed=0)
    assert images.shape == (5, 1, 8, 8) and (labels == 2).all()
    # The first three are exact copies of real images, the last two are transformed.
    real = small_digits.images[small_digits.labels == 2].flatten(1)
    exact = [(real == im.flatten()).all(dim=1).any().item() for im in images]
    assert exact[:3] == [True, True, True]


# -- running and resuming ------------------------------------------------------------------------


@pytest.mark.slow
def test_tiny_grid_end_to_end_in_process(tmp_path):
    cfg = parse_config(
        tiny_config(
            methods={"none": {}, "cvae+classical": {"cvae": {"epochs": 1}}},
            classifiers={"logreg": {"max_iter": 100}, "cnn": {"steps": 2}},
            seeds=1,
        )
    )
    summary = run_bench(cfg, tmp_path, progress=False, echo=quiet)
    assert summary == {"total": 4, "skipped": 0, "ran": 4, "failed": 0}
    records = read_results(tmp_path / "results.jsonl")
    assert len(records) == 4
    rec = next(
        r
        for r in records
        if (r["cell"]["method"], r["cell"]["classifier"]) == ("cvae+classical", "cnn")
    )
    assert rec["config_hash"] == cfg.hash
    assert rec["metrics"]["n_train_synthetic"] > 0
    assert 0 <= rec["metrics"]["balanced_accuracy"] <= 1
    assert {"load_data", "imbalance", "augment", "classifier_fit", "evaluate", "total"} <= set(
        rec["timings"]
    )
    assert rec["versions"]["torch"] == torch.__version__
    assert rec["device"]["device"] == "cpu"
    for name in ("report.md", "report.csv", "report.tex"):
        assert (tmp_path / name).stat().st_size > 0
    assert len(list((tmp_path / "plots").glob("digits_*.png"))) == 2 * 4
    # One sample grid per setting and method that adds images (not per classifier).
    assert [p.name for p in (tmp_path / "plots").glob("samples_*.png")] == [
        "samples_ratio=0.1_cvae+classical.png"
    ]
    # Same seed, same cell, same numbers: the harness is reproducible.
    again = parse_config(
        tiny_config(
            methods={"cvae+classical": {"cvae": {"epochs": 1}}},
            classifiers={"cnn": {"steps": 2}},
            seeds=1,
        )
    )
    run_bench(again, tmp_path / "again", progress=False, echo=quiet, report=False)
    (redo,) = read_results(tmp_path / "again/results.jsonl")
    assert redo["cell_id"] == rec["cell_id"] and redo["metrics"] == rec["metrics"]


def test_resume_after_crash(tmp_path):
    cfg = parse_config(tiny_config(methods=["none", "random-oversampling"]))
    run_bench(cfg, tmp_path, progress=False, echo=quiet, report=False)
    path = tmp_path / "results.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 4
    # Simulate a crash: one cell never written, the last line cut off mid-write.
    kept = lines[1:-1]
    path.write_bytes(b"".join(kept) + lines[-1][: len(lines[-1]) // 2])
    assert len(read_results(path)) == 2
    messages = []
    summary = run_bench(cfg, tmp_path, progress=False, echo=messages.append, report=False)
    assert summary == {"total": 4, "skipped": 2, "ran": 2, "failed": 0}
    assert "2 already done, 2 to run" in messages[0]
    text = path.read_text()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]  # every line is whole
    assert sorted(r["cell_id"] for r in records) == sorted(c.cell_id for c in cfg.cells())
    assert [json.loads(line) for line in kept] == records[:2]  # finished cells untouched
    # Nothing left to do; --force reruns every cell and keeps one line per cell.
    assert run_bench(cfg, tmp_path, progress=False, echo=quiet, report=False)["ran"] == 0
    assert (
        run_bench(cfg, tmp_path, force=True, progress=False, echo=quiet, report=False)["ran"] == 4
    )
    assert len(path.read_text().splitlines()) == 4


def test_read_results_skips_garbage(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    path.write_text('{"cell_id": "a", "x": 1}\nnot json\n{"cell_id": "b"}\n{"cell_id": "c", "x"')
    assert [r["cell_id"] for r in read_results(path)] == ["a", "b"]
    assert "unreadable line 2" in capsys.readouterr().err
    assert read_results(tmp_path / "absent.jsonl") == []


def test_failing_cell_is_reported_and_others_kept(tmp_path):
    @METHODS.register("test-broken")
    def broken(train, *, seed, device):
        raise RuntimeError("boom")

    cfg = parse_config(tiny_config(methods=["none", "test-broken"], seeds=1))
    with (
        pytest.raises(BenchmarkError, match="1 of 2 cells failed"),
        pytest.warns(SynthaugWarning, match=r"1 seed \(fewer than 3\)"),
    ):
        run_bench(cfg, tmp_path, progress=False, echo=quiet)
    assert len(read_results(tmp_path / "results.jsonl")) == 1
    error = json.loads((tmp_path / "errors.jsonl").read_text())
    assert "boom" in error["error"] and error["cell"]["method"] == "test-broken"
    assert (tmp_path / "report.md").exists()  # the finished cells are still reported


def test_run_bench_bad_arguments(tmp_path):
    cfg = parse_config(tiny_config())
    with pytest.raises(InvalidParameterError, match="backend"):
        run_bench(cfg, tmp_path, backend="slurm")
    with pytest.raises(InvalidParameterError, match="jobs"):
        run_bench(cfg, tmp_path, jobs=0)
    with pytest.raises(InvalidParameterError, match="ray_address"):
        run_bench(cfg, tmp_path, ray_address="auto")


@pytest.mark.slow
def test_cli_bench_local_processes_and_report(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(
        """
seeds = 2
[dataset]
name = "digits"
[imbalance]
minority_classes = [9]
ratios = [0.1]
[classifiers]
logreg = { max_iter = 100 }
[methods]
none = {}
smote = {}
[quick]
seeds = 1
"""
    )
    out = tmp_path / "out"
    argv = ["bench", str(config), "--out", str(out), "--jobs", "2", "--quick", "--quiet"]
    assert main(argv) == 0
    assert len(read_results(out / "results.jsonl")) == 2
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert "smote" in (out / "report.md").read_text()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no results.jsonl" in capsys.readouterr().err
    assert main(["bench", str(config), "--out", str(out), "--ray-address", "auto"]) == 2


def test_cells_that_share_a_generator_fit_run_together_and_fit_once(tmp_path):
    methods = {
        "none": {},
        "cvae": {"epochs": 2},
        "cvae+classical": {"cvae": {"epochs": 2}},
        "classical+cvae": {"cvae": {"epochs": 2}},  # part 1 draws another seed: its own fit
        "cvae-wide": {"method": "cvae", "epochs": 2, "latent_dim": 4},
    }
    cfg = parse_config(
        tiny_config(
            methods=methods,
            classifiers={
                "logreg": {"max_iter": 200},
                "lr2": {"classifier": "logreg", "max_iter": 300},
            },
        )
    )
    batches = fit_groups(cfg.cells())
    grouped = sorted(sorted((c.method, c.classifier) for c in b) for b in batches)

    def both(*names):
        return sorted((m, c) for m in names for c in ("logreg", "lr2"))

    per_seed = [both("cvae", "cvae+classical"), both("classical+cvae"), both("cvae-wide")]
    per_seed += [[("none", "logreg")], [("none", "lr2")]]
    assert grouped == sorted(per_seed * 2)  # the same batches for each of the two seeds
    assert all(len({c.seed for c in b}) == 1 for b in batches)

    run_bench(cfg, tmp_path, jobs=2, progress=False, echo=quiet, report=False)
    records = read_results(tmp_path / "results.jsonl")
    for seed in (0, 1):
        mine = [
            r
            for r in records
            if r["seed"] == seed and r["cell"]["method"] in ("cvae", "cvae+classical")
        ]
        fitted = [r for r in mine if "augment_reused_fit" not in r["timings"]]
        assert len(mine) == 4 and len(fitted) == 1  # one fit, three reuses, on two workers
    # The same numbers as one process running the cells in grid order.
    run_bench(cfg, tmp_path / "one", jobs=1, progress=False, echo=quiet, report=False)
    one = {r["cell_id"]: r["metrics"] for r in read_results(tmp_path / "one/results.jsonl")}
    two = {r["cell_id"]: r["metrics"] for r in records}
    strip = lambda m: {k: v for k, v in m.items() if k != "fit_seconds"}  # noqa: E731
    assert {k: strip(v) for k, v in one.items()} == {k: strip(v) for k, v in two.items()}


@pytest.mark.slow
def test_ray_backend_local_cluster(tmp_path):
    pytest.importorskip("ray")
    cfg = parse_config(tiny_config(methods=["smote"]))
    summary = run_bench(cfg, tmp_path, jobs=2, backend="ray", progress=False, echo=quiet)
    assert summary["ran"] == 2
    local = run_bench(cfg, tmp_path / "local", progress=False, echo=quiet, report=False)
    assert local["ran"] == 2
    by_ray = {r["cell_id"]: r["metrics"] for r in read_results(tmp_path / "results.jsonl")}
    by_local = {r["cell_id"]: r["metrics"] for r in read_results(tmp_path / "local/results.jsonl")}
    assert by_ray == by_local  # the backend does not change a single number


# -- statistics and report files -------------------------------------------------------------


def fake_records(values: dict[str, list[float]], setting="ratio=0.1"):
    records = []
    for method, scores in values.items():
        for seed, score in enumerate(scores):
            cell = {
                "task": "classification",
                "dataset": {"name": "digits"},
                "setting": setting,
                "classifier": "cnn",
                "method": method,
                "seed": seed,
            }
            metrics = {
                "balanced_accuracy": score,
                "macro_f1": score / 2,
                "gmean": 0.0,
                "minority_recall": None,
            }
            records.append(
                {
                    "cell_id": f"{setting}{method}{seed}",
                    "cell": cell,
                    "seed": seed,
                    "metrics": metrics,
                    "timings": {"total": 1.0},
                }
            )
    return records


VALUES = {
    "none": [0.70, 0.72, 0.68, 0.71, 0.69],
    "classical": [0.80, 0.84, 0.83, 0.82, 0.81],
    "cvae": [0.90, 0.92, 0.78, 0.95, 0.99],
}


def test_statistics_match_hand_computation():
    # t(0.975, df=4) = 2.7764451; none: mean 0.70, sd 0.0158114 -> half width 0.0196324.
    mean, half = mean_ci(VALUES["none"])
    assert mean == pytest.approx(0.70)
    assert half == pytest.approx(2.7764451 * 0.0158114 / math.sqrt(5), rel=1e-6)
    assert math.isnan(mean_ci([0.5])[1])
    # cvae - classical = [.10, .08, -.05, .13, .18]: ranks 3, 2, 1(-), 4, 5 -> W- = 1;
    # exact two-sided p = 2 * P(W <= 1) = 2 * 2 / 32 = 0.125.
    gain, p, n = paired_gain(dict(enumerate(VALUES["cvae"])), dict(enumerate(VALUES["classical"])))
    assert (n, gain, p) == (5, pytest.approx(0.088), pytest.approx(0.125))
    # All five differences positive: p = 2 / 32.
    _, p, _ = paired_gain(dict(enumerate(VALUES["cvae"])), dict(enumerate(VALUES["none"])))
    assert p == pytest.approx(0.0625)
    # Pairs only over shared seeds; identical series give no p-value.
    gain, p, n = paired_gain({0: 0.5, 1: 0.6, 2: 0.9}, {1: 0.5, 2: 0.7})
    assert (n, gain) == (2, pytest.approx(0.15))
    assert math.isnan(paired_gain({0: 1.0, 1: 1.0}, {0: 1.0, 1: 1.0})[1])

    rows = summarize_results(fake_records(VALUES))
    ba = {r["method"]: r for r in rows if r["metric"] == "balanced_accuracy"}
    assert ba["cvae"]["best"] and not ba["classical"]["best"]
    assert ba["cvae"]["gain_vs_classical"] == pytest.approx(0.088)
    # No split recorded (every seed fresh data): the plain paired t, and Wilcoxon alongside.
    diff = [0.10, 0.08, -0.05, 0.13, 0.18]
    assert ba["cvae"]["p_vs_classical"] == pytest.approx(stats.ttest_1samp(diff, 0).pvalue)
    assert ba["cvae"]["wilcoxon_p_vs_classical"] == pytest.approx(0.125)
    assert ba["cvae"]["interval"] == "paired t" and ba["cvae"]["wtl_vs_classical"] == "4/0/1"
    assert ba["classical"]["gain_vs_none"] == pytest.approx(0.12)
    assert math.isnan(ba["none"]["gain_vs_none"]) and math.isnan(ba["classical"]["p_vs_classical"])
    minority = [r for r in rows if r["metric"] == "minority_recall"]
    assert all(math.isnan(r["mean"]) and not r["best"] for r in minority)


def test_csv_and_latex_output():
    rows = summarize_results(fake_records(VALUES))
    table = list(csv.DictReader(io.StringIO(format_csv(rows))))
    assert len(table) == 3 * 4
    row = next(r for r in table if r["method"] == "cvae" and r["metric"] == "balanced_accuracy")
    assert float(row["mean"]) == pytest.approx(0.908)
    assert float(row["wilcoxon_p_vs_classical"]) == pytest.approx(0.125)
    assert row["best"] == "True" and row["n"] == "5"
    none = next(r for r in table if r["method"] == "none" and r["metric"] == "balanced_accuracy")
    assert none["gain_vs_none"] == "" and none["n_pairs_vs_none"] == "0"

    tex = format_latex(rows)
    for token in ("\\toprule", "\\midrule", "\\bottomrule", "balanced\\_accuracy"):
        assert token in tex
    cvae_line = next(line for line in tex.splitlines() if line.startswith("cvae &"))
    assert "\\textbf{0.908 $\\pm$ " in cvae_line
    holm_p = next(r for r in rows if r["method"] == "cvae" and r["metric"] == "balanced_accuracy")
    assert f"$+0.088$ ({holm_p['p_holm_vs_classical']:.3f})" in cvae_line
    none_line = next(line for line in tex.splitlines() if line.startswith("none &"))
    assert "\\textbf" not in none_line.split("&")[1]


def test_write_report_files(tmp_path):
    records = fake_records(VALUES) + fake_records(VALUES, setting="ratio=0.02")
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    lines = []
    paths = write_report(tmp_path, echo=lines.append)
    md = paths["md"].read_text()
    assert "**cvae** balanced_accuracy 0.908 ± " in md
    assert "+0.088 over classical" in md and "+0.208 over none" in md
    assert "| cvae | **0.908 ± " in md
    assert sorted(p.name for p in (tmp_path / "plots").glob("*.png")) == [
        f"digits_cnn_{m}.png" for m in ("balanced_accuracy", "gmean", "macro_f1", "minority_recall")
    ]
    (tmp_path / "results.jsonl").write_text("")
    with pytest.raises(DataFileError, match="no finished cells"):
        write_report(tmp_path)


def test_report_follows_the_config_order_whatever_the_finishing_order(tmp_path):
    cfg = parse_config(tiny_config(methods=["smote", "none", "random-oversampling"], seeds=1))
    run_bench(cfg, tmp_path, progress=False, echo=quiet, report=False)
    path = tmp_path / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(reversed(lines)))  # as parallel workers may finish
    with pytest.warns(SynthaugWarning, match="too little evidence"):  # one seed
        write_report(tmp_path, echo=quiet)
    md = (tmp_path / "report.md").read_text()
    rows = [line.split(" | ")[0].strip("| ") for line in md.splitlines() if line.startswith("| ")]
    assert [r for r in rows if r in ("smote", "none", "random-oversampling")][:3] == [
        "smote",
        "none",
        "random-oversampling",
    ]


def test_meta_generators_take_their_inner_parameters_flat_in_configs(small_digits):
    # Rejected before the restructure: the per-class presets take the inner model's parameters.
    cfg = parse_config(tiny_config(methods={"perclass-vae": {"latent_dim": 8, "n_jobs": 1}}))
    assert cfg.methods["perclass-vae"] == {"latent_dim": 8, "n_jobs": 1}
    with pytest.raises(InvalidParameterError, match="^methods.perclass-gan.latent"):
        parse_config(tiny_config(methods={"perclass-gan": {"latent": 8}}))
    with pytest.raises(InvalidParameterError, match="^methods.perclass-vae.seed"):
        parse_config(tiny_config(methods={"perclass-vae": {"seed": 8}}))
    from synthaug.bench import build_source

    source, _ = build_source(
        "perclass-vae", {"latent_dim": 8, "epochs": 1}, small_digits, seed=3, device="cpu"
    )
    # The harness placed the cell's seed, device and verbosity on the inner model.
    assert source.estimator.latent_dim == 8 and source.estimator.seed == 3
    assert source.estimator.verbose is False and source.is_fitted
    # A variant names the method it configures, so one grid holds two CVAEs.
    cfg = parse_config(
        tiny_config(methods={"cvae": {}, "cvae-small": {"method": "cvae", "latent_dim": 2}})
    )
    assert list(cfg.methods) == ["cvae", "cvae-small"]
    with pytest.raises(InvalidParameterError, match="^methods.x: unknown method 'nope'"):
        parse_config(tiny_config(methods={"x": {"method": "nope"}}))


_ORPHAN_SCRIPT = """
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from synthaug.bench._runner import watch_parent

if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(2, mp_context=ctx, initializer=watch_parent, initargs=(os.getpid(), 0.2))
    pids = set(pool.submit(os.getpid).result() for _ in range(4))
    pool.submit(time.sleep, 600)
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_pool_workers_exit_when_the_run_is_killed(tmp_path):
    # A SIGKILLed `synthaug bench` cannot stop its workers; they must notice and exit.
    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert workers
    parent.send_signal(signal.SIGKILL)
    parent.wait()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A zombie (exited, not yet reaped by its new parent) counts as gone.
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"

    deadline = time.monotonic() + 15
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in workers)
