"""The harness's other task types: ``anomaly`` (one-class protocol) and ``tstr`` (private release)."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from synthaug.anomaly import KNNDetector, PCADetector, evaluate_one_class
from synthaug.bench import (
    TASKS,
    load_config,
    parse_config,
    read_results,
    run_bench,
    run_cell,
    summarize_results,
)
from synthaug.bench._report import format_csv
from synthaug.data import LESION_GRADES, make_graded_phantoms
from synthaug.errors import BenchmarkError, EmptyDatasetError, InvalidParameterError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def quiet(*_):
    pass


def anomaly_config(**over):
    cfg = {
        "task": "anomaly",
        "seeds": 2,
        "dataset": {"name": "digits"},
        "anomaly": {"normal_classes": [0, 8]},
        "split": {"test_size": 0.3},
        "methods": {"pca": {"n_components": 5}, "knn": {}},
    }
    cfg.update(over)
    return cfg


def tstr_config(**over):
    cfg = {
        "task": "tstr",
        "seeds": 1,
        "dataset": {"name": "digits"},
        "privacy": {"epsilons": [math.inf]},
        "split": {"test_size": 0.25},
        "classifiers": {"logreg": {"max_iter": 200}},
        "methods": {"real": {}, "cvae": {"epochs": 1}},
    }
    cfg.update(over)
    return cfg


# -- graded phantoms -----------------------------------------------------------------------------


def test_graded_phantoms_classes_counts_and_determinism():
    ds = make_graded_phantoms(5, 3, size=16, seed=4)
    assert ds.classes == ["normal", *LESION_GRADES]
    assert ds.class_counts() == {0: 5, 1: 3, 2: 3, 3: 3}
    assert ds.sample_shape == (1, 16, 16)
    assert all(m["n_lesions"] == 0 for m in ds.metadata[:5])
    assert all(m["n_lesions"] >= 1 for m in ds.metadata[5:])
    # Grade 1's lesions are larger than grade 3's, as the grades say.
    radii = [max(m["lesion_radii"]) for m in ds.metadata[5:]]
    assert min(radii[:3]) >= LESION_GRADES["large-bright"]["radius"][0] - 1e-4
    assert max(radii[6:]) <= LESION_GRADES["small-faint"]["radius"][1] + 1e-4
    assert torch.equal(make_graded_phantoms(5, 3, size=16, seed=4).images, ds.images)
    custom = make_graded_phantoms(
        2, 2, size=16, grades={"big": {"radius": (0.1, 0.12), "contrast": (0.4, 0.5)}}
    )
    assert custom.classes == ["normal", "big"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"grades": {}},
        {"grades": {"normal": {"radius": (0.1, 0.12), "contrast": (0.4, 0.5)}}},
        {"grades": {"g": {"radius": (0.1, 0.12)}}},
        {"n_per_grade": 0},
        {"n_normal": True},
    ],
)
def test_graded_phantoms_bad_input(kwargs):
    args = {"n_normal": 2, "n_per_grade": 2, "size": 16, **kwargs}
    with pytest.raises(InvalidParameterError):
        make_graded_phantoms(**args)


# -- the one-class run behind the anomaly task ---------------------------------------------------


def test_evaluate_one_class_per_anomaly_class_and_few_normals():
    data = make_graded_phantoms(60, 20, size=16, seed=1)
    train, test = data.split(0.5, seed=0)
    rec = evaluate_one_class(
        PCADetector(n_components=5, validation_fraction=0.0),
        train,
        test,
        "normal",
        seed=0,
        n_normal=12,
        per_anomaly_class=True,
    )
    assert rec["n_train"] == 12 and rec["normal_class"] == "normal"
    grades = [f"auroc[{g}]" for g in LESION_GRADES]
    assert set(grades) <= set(rec)
    assert all(0.0 <= rec[k] <= 1.0 for k in ("auroc", "auprc", *grades))
    with pytest.raises(EmptyDatasetError, match="fewer than n_normal"):
        evaluate_one_class(PCADetector(), train, test, "normal", seed=0, n_normal=1000)
    with pytest.raises(InvalidParameterError, match="not one of"):
        evaluate_one_class(PCADetector(), train, test, "tumour", seed=0)


# -- anomaly configs -----------------------------------------------------------------------------


def test_anomaly_config_settings_and_cells():
    cfg = parse_config(anomaly_config(anomaly={}))
    assert [s["label"] for s in cfg.settings] == [f"normal={c}" for c in range(10)]
    assert cfg.classifiers == {"-": {}} and cfg.baselines == ["pca", "knn"]
    cells = cfg.cells()
    assert len(cells) == 10 * 2 * 2
    assert cells[0].settings == {
        "normal_class": "0",
        "n_normal": None,
        "per_anomaly_class": False,
    }
    few = parse_config(anomaly_config(anomaly={"normal_classes": ["3"], "n_normal": 20}))
    assert few.settings[0]["label"] == "normal=3, n=20"


@pytest.mark.parametrize(
    "change, where",
    [
        ({"anomaly": {"normal": [0]}}, "anomaly.normal"),
        ({"anomaly": {"normal_classes": [42]}}, "anomaly.normal_classes"),
        ({"anomaly": {"normal_classes": []}}, "anomaly.normal_classes"),
        ({"anomaly": {"normal_classes": [0, "0"]}}, "anomaly.normal_classes"),
        ({"anomaly": {"n_normal": 1}}, "anomaly.n_normal"),
        ({"anomaly": {"per_anomaly_class": "yes"}}, "anomaly.per_anomaly_class"),
        ({"imbalance": {"ratios": [0.1]}}, "imbalance"),
        ({"classifiers": ["logreg"]}, "classifiers"),
        ({"methods": {"lof": {}}}, "methods.lof"),
        ({"methods": {"x": {"detector": "lof"}}}, "methods.x.detector"),
        ({"methods": {"pca": {"n_componentz": 3}}}, "methods.pca.n_componentz"),
        ({"methods": {"pca": {"seed": 3}}}, "methods.pca.seed"),
        ({"methods": {"pca": {"n_components": 0}}}, "methods.pca"),
        ({"methods": {"vae": {"latent": 3}}}, "methods.vae.latent"),
        ({"methods": {"vae": {"window": 4}}}, "window=4 is invalid; it must be an odd integer"),
        ({"methods": {"vae": {"residual": "abs"}}}, "methods.vae"),
        ({"methods": {"knn": {"augment_with": "gan9"}}}, "methods.knn.augment_with.generator"),
        ({"methods": {"knn": {"augment_with": {"generator": "cvae", "epoch": 1}}}}, "epoch"),
        ({"methods": {"knn": {"augment_with": {"method": "none"}}}}, "augment_with.method"),
        ({"methods": {"knn": {"augment_with": {"method": "smote", "k": 3}}}}, "augment_with.k"),
        ({"methods": {"knn": {"augment_with": {"generator": "cvae", "method": "smote"}}}}, "or"),
        ({"baselines": ["ocsvm"]}, "baselines"),
    ],
)
def test_bad_anomaly_config_names_the_key(change, where):
    with pytest.raises(InvalidParameterError) as info:
        parse_config(anomaly_config(**change))
    assert where in str(info.value)


def test_anomaly_grid_end_to_end_with_mean_over_classes(tmp_path):
    cfg = parse_config(anomaly_config())
    assert run_bench(cfg, tmp_path, progress=False, echo=quiet)["failed"] == 0
    records = read_results(tmp_path / "results.jsonl")
    assert len(records) == 2 * 2 * 2
    assert {"detector_fit", "score", "total"} <= set(records[0]["timings"])
    rows = summarize_results(records)
    mean_rows = [r for r in rows if r["setting"] == "mean over normal classes (2)"]
    pca = next(r for r in mean_rows if r["method"] == "pca" and r["metric"] == "auroc")
    # By hand: per seed the mean over the two normal classes, then the mean over seeds.
    per_seed = [
        np.mean(
            [
                r["metrics"]["auroc"]
                for r in records
                if r["seed"] == s and r["cell"]["method"] == "pca"
            ]
        )
        for s in (0, 1)
    ]
    assert pca["mean"] == pytest.approx(np.mean(per_seed)) and pca["n"] == 2
    assert pca["gain_vs_knn"] == pytest.approx(
        np.mean(per_seed)
        - np.mean([r["metrics"]["auroc"] for r in records if r["cell"]["method"] == "knn"])
    )
    md = (tmp_path / "report.md").read_text()
    assert "## digits: auroc per setting" in md and "mean over normal classes (2)" in md
    assert "Δ auroc vs pca (p, Holm; W/T/L)" in md and "· -" not in md
    header = next(csv.reader(io.StringIO((tmp_path / "report.csv").read_text())))
    assert "ci95_gain_vs_knn" in header and "gain_vs_none" not in header
    # The same detectors through the plain-function protocol give the same numbers.
    from synthaug.anomaly import run_one_class
    from synthaug.data import load_digits, select_pool

    direct = run_one_class(
        select_pool(load_digits(), "evaluation"),  # the harness's grids use the evaluation pool
        {"pca": PCADetector(n_components=5), "knn": KNNDetector()},
        seeds=[0, 1],
        normal_classes=[0, 8],
        test_size=0.3,
    )
    assert direct["summary"]["pca"]["mean_auroc"] == pytest.approx(pca["mean"])


def test_classical_and_smote_normals_through_the_grid(tmp_path):
    cfg = parse_config(
        anomaly_config(
            seeds=1,
            anomaly={"normal_classes": [3], "n_normal": 10},
            methods={
                "knn+classical": {
                    "detector": "knn",
                    "n_synthetic": 30,
                    "augment_with": "classical",
                },
                "knn+smote": {
                    "detector": "knn",
                    "n_synthetic": 30,
                    "augment_with": {"method": "smote", "k_neighbors": 3},
                },
            },
        )
    )
    # SMOTE cannot interpolate a one-class set through imbalanced-learn: that cell fails with
    # an error that says so, the other one is kept.
    with pytest.raises(BenchmarkError, match="1 of 2 cells failed"):
        run_bench(cfg, tmp_path, progress=False, echo=quiet, report=False)
    (record,) = read_results(tmp_path / "results.jsonl")
    # 10 normals, one held out for the threshold (validation_fraction 0.1), 30 jittered copies.
    assert record["cell"]["method"] == "knn+classical" and record["metrics"]["n_train"] == 39
    assert 0.5 < record["metrics"]["auroc"] <= 1
    error = json.loads((tmp_path / "errors.jsonl").read_text().splitlines()[0])
    assert "at least two classes" in error["error"]


def test_phantom_grid_reports_each_lesion_grade(tmp_path):
    cfg = parse_config(
        anomaly_config(
            seeds=1,
            dataset={"name": "phantoms-graded", "n_normal": 60, "n_per_grade": 20, "size": 16},
            anomaly={"normal_classes": ["normal"], "per_anomaly_class": True},
            split={"test_size": 0.5},
        )
    )
    run_bench(cfg, tmp_path, progress=False, echo=quiet)
    rows = summarize_results(read_results(tmp_path / "results.jsonl"))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    assert metrics == ["auroc", "auprc", *(f"auroc[{g}]" for g in LESION_GRADES)]
    # A single normal class: no mean-over-classes block.
    assert {r["setting"] for r in rows} == {"normal=normal"}
    assert (tmp_path / "plots" / "phantoms-graded_auroc_medium_.png").exists()


def test_shipped_anomaly_configs_parse():
    for name, n_settings in (
        ("digits_anomaly", 10),
        ("phantoms_anomaly", 1),
        ("few_normals_anomaly", 10),
    ):
        for quick in (False, True):
            cfg = load_config(f"benchmarks/{name}.toml", quick=quick)
            assert cfg.task == "anomaly"
            if not quick:
                assert len(cfg.settings) == n_settings
                assert cfg.seeds == list(range(10))  # every shipped grid: 10 seeds
            assert {"pca", "knn", "isolation-forest", "ocsvm"} <= set(cfg.methods)


# -- tstr configs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, where",
    [
        ({"privacy": {"epsilon": [1.0]}}, "privacy.epsilon"),
        ({"privacy": {"epsilons": []}}, "privacy.epsilons"),
        ({"privacy": {"epsilons": [0.0]}}, "privacy.epsilons"),
        ({"privacy": {"epsilons": ["ten"]}}, "privacy.epsilons"),
        ({"privacy": {"epsilons": [1.0, 1]}}, "privacy.epsilons"),
        ({"privacy": {"epsilons": [1.0], "delta": 2.0}}, "privacy"),
        ({"methods": {"smote": {}}}, "methods.smote"),
        ({"methods": {"real": {"epochs": 1}}}, "methods.real"),
        ({"methods": {"cvae": {"dp": 1}}}, "methods.cvae.dp"),
        ({"methods": {"cvae": {"private": {"dp": 1}}}}, "methods.cvae.private.dp"),
        ({"methods": {"cvae": {"private": {"epoch": 3}}}}, "methods.cvae.epoch"),
        ({"methods": {"cvae": {"private": 3}}}, "methods.cvae.private"),
        ({"anomaly": {}}, "anomaly"),
    ],
)
def test_bad_tstr_config_names_the_key(change, where):
    with pytest.raises(InvalidParameterError) as info:
        parse_config(tstr_config(**change))
    assert where in str(info.value)


@pytest.mark.slow
def test_tstr_grid_real_and_private_generator(tmp_path):
    cfg = parse_config(
        tstr_config(
            privacy={"epsilons": [50.0, math.inf]},
            methods={
                "real": {},
                "cvae": {"epochs": 2, "private": {"epochs": 1, "batch_size": 256}},
            },
        )
    )
    assert [s["label"] for s in cfg.settings] == ["epsilon=50", "epsilon=inf"]
    assert cfg.baselines == ["real"]
    run_bench(cfg, tmp_path, progress=False, echo=quiet)
    records = {
        (r["cell"]["method"], r["cell"]["setting"]): r
        for r in read_results(tmp_path / "results.jsonl")
    }
    real = records[("real", "epsilon=inf")]["metrics"]
    n_train = 1527 - math.ceil(1527 * 0.25)  # the evaluation pool: 1,797 digits less 270
    # Releasing the real data: every record is an exact copy, and membership is plain to see.
    assert real["exact_copies"] == n_train and real["mia_auc"] == pytest.approx(1.0)
    assert real["epsilon_spent"] is None  # infinite: no guarantee (written as null)
    private = records[("cvae", "epsilon=50")]
    assert 0 < private["metrics"]["epsilon_spent"] <= 50.0
    assert private["metrics"]["noise_multiplier"] > 0
    assert private["metrics"]["n_synthetic"] == n_train
    assert records[("cvae", "epsilon=inf")]["metrics"]["epsilon_spent"] is None
    assert {"generator_fit", "sample", "classifier_fit"} <= set(private["timings"])
    md = (tmp_path / "report.md").read_text()
    # The real data are a reference, never "the best method".
    assert "**real**" not in md.split("## Best method per setting")[1].split("\n## ")[0]
    assert "Δ balanced_accuracy vs real (p, Holm; W/T/L)" in md
    rows = list(csv.DictReader(io.StringIO(format_csv(summarize_results(list(records.values()))))))
    mia = [r for r in rows if r["metric"] == "mia_auc"]
    assert mia and all(r["best"] == "False" for r in mia)


def test_tstr_cells_report_the_membership_attacks(tmp_path):
    cfg = parse_config(tstr_config(methods={"real": {}, "cvae": {"epochs": 1}}))
    metrics = {c.method: run_cell(c, workdir=tmp_path)["metrics"] for c in cfg.cells()}
    attacks = ("distance", "likelihood", "density_ratio", "strongest")
    for m in metrics.values():
        assert {f"attack_{f}_{a}" for f in ("auc", "tpr_at_1fpr") for a in attacks} <= set(m)
        # 382 test digits: 191 calibrate, 191 are non-members, as many training members.
        assert m["attack_candidates"] == 382
    real = metrics["real"]
    # Releasing the training set: every member sits at distance 0 from a "synthetic" one.
    assert real["attack_auc_distance"] == 1.0 and real["attack_tpr_at_1fpr_strongest"] == 1.0
    assert real["attack_strongest"] == "distance"
    assert math.isnan(real["attack_auc_likelihood"])  # no model: white-box skipped
    assert 0 <= metrics["cvae"]["attack_auc_likelihood"] <= 1  # the CVAE's own ELBO
    # The report's tables gain the strongest attack where the results have it, not before.
    tstr = TASKS.get("tstr")()
    shown = tstr.reported_metrics(list(metrics.values()))
    assert shown[shown.index("mia_auc") + 1 : shown.index("mia_auc") + 3] == (
        "attack_auc_strongest",
        "attack_tpr_at_1fpr_strongest",
    )
    old = [{k: v for k, v in m.items() if not k.startswith("attack_")} for m in metrics.values()]
    assert tstr.reported_metrics(old) == tstr.reported


def test_shipped_dp_config_parses():
    cfg = load_config("benchmarks/digits_dp.toml")
    assert [s["label"] for s in cfg.settings] == ["epsilon=1", "epsilon=10", "epsilon=inf"]
    assert set(cfg.methods) == {"real", "cvae", "cgan"} and cfg.seeds == list(range(10))
    quick = load_config("benchmarks/digits_dp.toml", quick=True)
    assert quick.methods["cvae"]["private"] == cfg.methods["cvae"]["private"]


def test_cv_select_classifier_picks_by_cross_validation(small_digits):
    from synthaug.metrics import CVSelectClassifier

    clf = CVSelectClassifier(seed=0).fit(small_digits)
    assert clf.chosen_ in clf.cv_scores_ and clf.cv_scores_[clf.chosen_] == max(
        clf.cv_scores_.values()
    )
    assert clf.predict(small_digits.images).shape == (len(small_digits),)


def test_threads_option(tmp_path):
    cfg = parse_config(anomaly_config(seeds=1, methods={"pca": {}}))
    with pytest.raises(InvalidParameterError, match="threads"):
        run_bench(cfg, tmp_path, threads=0, echo=quiet)
    torch.set_num_threads(2)
    run_bench(cfg, tmp_path, threads=1, progress=False, echo=quiet, report=False)
    records = read_results(tmp_path / "results.jsonl")
    assert records[0]["device"]["torch_threads"] == 1
    # numpy's and scikit-learn's pools are held to the same count: lbfgs's answer depends on it.
    assert records[0]["device"]["blas_threads"] == 1
    assert records[0]["device"]["openmp_threads"] == 1
    assert torch.get_num_threads() == 2  # restored after the cells ran in this process
    with threadpool_limits(limits=2):
        run_bench(cfg, tmp_path / "again", threads=1, progress=False, echo=quiet, report=False)
        assert all(p["num_threads"] == 2 for p in threadpool_info())  # restored too
    json.dumps(records)  # the records stay plain JSON


def test_extended_grid_reuses_finished_cells_and_reports_them(tmp_path):
    small = parse_config(anomaly_config(seeds=1, methods={"pca": {}}))
    run_bench(small, tmp_path, progress=False, echo=quiet)
    grown = parse_config(anomaly_config(seeds=1, methods={"pca": {}, "knn": {}}))
    summary = run_bench(grown, tmp_path, progress=False, echo=quiet)
    assert summary == {"total": 4, "skipped": 2, "ran": 2, "failed": 0}
    rows = summarize_results(read_results(tmp_path / "results.jsonl"))
    md = (tmp_path / "report.md").read_text()
    assert "| pca |" in md and "| knn |" in md and rows
    # Back to a smaller grid: its report holds only its own cells.
    only_knn = parse_config(anomaly_config(seeds=1, methods={"knn": {}}))
    assert run_bench(only_knn, tmp_path, progress=False, echo=quiet)["ran"] == 0
    md = (tmp_path / "report.md").read_text()
    assert "| knn |" in md and "| pca |" not in md


def test_every_registered_task_follows_the_task_protocol():
    from synthaug.bench import TASKS, Task

    assert {"classification", "anomaly", "tstr", "lesion"} <= set(TASKS.list())
    for name in TASKS.list():
        task = TASKS.get(name)()
        assert isinstance(task, Task), name
        assert task.reported and task.settings_table and isinstance(task.best_is_highest, tuple)


def test_anomaly_grid_scores_localisation_where_the_data_have_masks(tmp_path):
    dataset = {"name": "phantoms-graded", "n_normal": 40, "n_per_grade": 12, "size": 16}
    cfg = parse_config(
        anomaly_config(
            seeds=1,
            dataset=dataset,
            anomaly={"normal_classes": ["normal"], "per_anomaly_class": True},
            split={"test_size": 0.5},
            methods={
                "pca": {"n_components": 5},
                "draem": {"steps": 3, "width": 2, "batch_size": 4, "validation_fraction": 0.0},
            },
        )
    )
    assert run_bench(cfg, tmp_path, progress=False, echo=quiet)["failed"] == 0
    records = {r["cell"]["method"]: r for r in read_results(tmp_path / "results.jsonl")}
    # Only a detector with an anomaly map is scored for localisation.
    assert "pixel_auroc" not in records["pca"]["metrics"]
    draem = records["draem"]["metrics"]
    grades = [f"pixel_auroc[{g}]" for g in LESION_GRADES]
    assert {"pixel_auroc", "region_overlap", *grades} <= set(draem)
    assert all(0 <= draem[k] <= 1 for k in ("pixel_auroc", "region_overlap", *grades))
    # The same number by hand: the loader's masks through the same pool and split.
    from synthaug.anomaly import DRAEMDetector, pixel_auroc
    from synthaug.data import pool_indices

    full, masks = make_graded_phantoms(40, 12, size=16, return_masks=True)
    evaluation = pool_indices(full, "evaluation")
    data = full.subset(evaluation)
    train, test = data.split(0.5, seed=0)
    _, test_idx = data.split_indices(0.5, seed=0)
    det = DRAEMDetector(steps=3, width=2, batch_size=4, validation_fraction=0.0, device="cpu")
    det.fit(train.subset((train.labels == 0).nonzero().flatten()))
    expected = pixel_auroc(det.anomaly_map(test.images), masks[evaluation][test_idx])
    assert draem["pixel_auroc"] == pytest.approx(expected)
    md = (tmp_path / "report.md").read_text()
    assert "pixel_auroc" in md and "region_overlap" in md
