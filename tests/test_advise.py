"""``synthaug advise``: the budget, the data it refuses, the methods it picks, the planner, the
verdict, and the whole thing end to end on a tiny budget (Python and command line)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch

from synthaug.bench import advise, load_config, parse_budget, read_results
from synthaug.bench._advise import (
    KIND_FREE,
    KIND_GENERATOR,
    KIND_NONE,
    Candidate,
    _Ledger,
    _Progress,
    _run_within_budget,
    _Runner,
    candidate_methods,
    check_data,
    format_toml,
    load_snapshot,
    make_verdict,
    save_snapshot,
    usage_commands,
)
from synthaug.cli import main
from synthaug.data import DATASETS, ImageDataset, save_npz
from synthaug.errors import DataFileError, InvalidDataError, InvalidParameterError


def dataset(counts, shape=(1, 8, 8), names=None):
    labels = torch.cat([torch.full((n,), i) for i, n in enumerate(counts)])
    g = torch.Generator().manual_seed(0)
    images = torch.rand(len(labels), *shape, generator=g)
    return ImageDataset(images, labels, names or [f"c{i}" for i in range(len(counts))])


@pytest.fixture(scope="module")
def imbalanced_digits(digits):
    """Digits 0-3 with 60, 40, 15 and 10 images: small, imbalanced, quick to learn."""
    idx = torch.cat(
        [torch.nonzero(digits.labels == c).flatten()[:n] for c, n in enumerate([60, 40, 15, 10])]
    )
    part = digits.subset(idx)
    return ImageDataset(part.images, part.labels, digits.classes[:4])


# -- the budget -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("1h", 3600),
        ("1h30m", 5400),
        ("1.5m", 90),
        (" 2M ", 120),
        (45, 45),
    ],
)
def test_budgets_read(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "30", "abc", "m", "30x", "1m1h", "-5m", "5 m", None, True, [30]]
)
def test_bad_budget_formats_say_what_to_give(text):
    with pytest.raises(InvalidParameterError, match="budget must be a duration such as 90s, 30m"):
        parse_budget(text)


@pytest.mark.parametrize("value", ["0m", "0s", 0, -3, math.inf, math.nan])
def test_budgets_must_be_positive(value):
    with pytest.raises(InvalidParameterError, match="budget must be more than 0 seconds"):
        parse_budget(value)


# -- the data it refuses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ([10], "needs at least 2 classes; the data have one, 'c0' \\(10 items\\)"),
        ([10, 10], "every class has 10 items, so there is no imbalance to correct"),
        ([50, 1], "class\\(es\\) \\['c1'\\] have a single item"),
        (
            [20, 3],
            "class 'c1' has 3 items, 2 once the development part \\(15%\\) is held out: too "
            "few for 3-fold cross-validation",
        ),
        (
            [4, 3, 2, 2],
            "11 items in 4 classes are too few to hold out the stratified development part "
            "\\(15%: cannot make a stratified split",
        ),
        ([10, 0, 4], "class\\(es\\) \\['c1'\\] have no items"),
    ],
)
def test_data_that_cannot_answer_the_question_is_refused(counts, message):
    with pytest.raises(InvalidDataError, match=message):
        check_data(dataset(counts))


def test_folds_follow_the_smallest_class():
    assert check_data(dataset([30, 6])).folds == 5  # 5 left once the development part is out
    assert check_data(dataset([20, 5])).folds == 4
    assert check_data(dataset([20, 4])).folds == 3
    facts = check_data(dataset([30, 6, 12]))
    assert facts.minority == ["c1", "c2"] and facts.is_image and facts.shape == (1, 8, 8)


def test_not_a_dataset_is_refused():
    with pytest.raises(InvalidDataError, match="takes a synthaug.data.ImageDataset, got ndarray"):
        advise(np.zeros((10, 4)), budget="1m")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"classifier_steps": 0}, "classifier_steps must be an integer >= 1, got 0"),
        ({"folds": 2}, "folds must be an integer >= 3, got 2"),
        ({"repeats": 1.5}, "repeats must be an integer >= 1, got 1.5"),
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"threads": 0}, "threads must be an integer >= 1, got 0"),
        ({"generators": "cvae"}, "generators must be a list of names, got 'cvae'"),
        ({"generators": ["cvea"]}, "unknown generator 'cvea'; available: cgan, cvae"),
        ({"generators": ["smote"]}, "'smote' is a baseline, not a generator"),
        ({"generators": ["copy-paste"]}, "pastes lesions into images of the class 'normal'"),
        ({"budget": "half an hour"}, "budget must be a duration"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(options, message, tmp_path):
    with pytest.raises(InvalidParameterError, match=message):
        advise(dataset([30, 8]), out=tmp_path / "advice", **options)
    assert not (tmp_path / "advice").exists()


def test_lesion_sources_need_images(tmp_path):
    vectors = ImageDataset(torch.rand(40, 5), torch.tensor([0] * 30 + [1] * 10), ["normal", "x"])
    with pytest.raises(InvalidParameterError, match="moves lesions between images; the data are"):
        advise(vectors, generators=["copy-paste"], out=tmp_path / "a")


def test_a_folder_of_something_else_is_refused(tmp_path, imbalanced_digits):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(DataFileError, match="is not empty and holds no advice; give a new"):
        advise(imbalanced_digits, out=tmp_path / "busy")
    (tmp_path / "file").write_text("")
    with pytest.raises(DataFileError, match="is a file"):
        advise(imbalanced_digits, out=tmp_path / "file")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "advise.json").write_text(
        json.dumps({"fingerprint": "0" * 64, "data": "scans/"})
    )
    with pytest.raises(DataFileError, match=r"holds the advice for other data \(scans/\)"):
        advise(imbalanced_digits, out=tmp_path / "other")


# -- the methods it picks ----------------------------------------------------------------------


def names(methods):
    return [m.name for m in methods]


def test_images_get_the_image_baselines_and_generators_with_balanced_online():
    methods, left_out = candidate_methods(check_data(dataset([30, 8])))
    assert names(methods) == [
        "none",
        "balanced-online",
        "classical",
        "logit-adjusted",
        "mixup",
        "delta-transfer+balanced-online",
        "deepsmote+balanced-online",
        "dagan+balanced-online",
        "cvae+balanced-online",
        "cgan+balanced-online",
    ]
    assert [m.kind for m in methods[:5]] == [KIND_NONE] + [KIND_FREE] * 4
    assert methods[8] == Candidate(
        "cvae+balanced-online", {"cvae": {"epochs": 150}}, KIND_GENERATOR, "cvae"
    )
    assert left_out == []


def test_feature_vectors_get_the_tabular_baselines_and_generators():
    vectors = ImageDataset(torch.rand(40, 6), torch.tensor([0] * 30 + [1] * 10))
    methods, _ = candidate_methods(check_data(vectors), epochs=7)
    assert names(methods) == [
        "none",
        "class-weighted",
        "logit-adjusted",
        "random-oversampling",
        "smote",
        "deepsmote",
        "delta-transfer",
        "cvae",
    ]
    assert methods[-1].params == {"epochs": 7}


def test_lesion_sources_join_when_the_largest_class_is_normal():
    facts = check_data(dataset([30, 8], names=["normal", "lesion"]))
    methods, _ = candidate_methods(facts)
    assert names(methods)[5:8] == [
        "copy-paste",
        "lesion-transplant",
        "delta-transfer+balanced-online",
    ]
    assert methods[5].params == {} and methods[6].params == {"epochs": 100}
    # Normal as the minority: copy-paste would have to make normal images, which it cannot.
    facts = check_data(dataset([8, 30], names=["normal", "lesion"]))
    assert "copy-paste" not in names(candidate_methods(facts)[0])


def test_large_images_leave_the_generators_out_and_say_why():
    facts = check_data(dataset([24, 8], shape=(1, 4, 160)))
    methods, left_out = candidate_methods(facts)
    assert names(methods) == ["none", "balanced-online", "classical", "logit-adjusted", "mixup"]
    assert [name for name, _ in left_out][:2] == ["delta-transfer", "deepsmote"]
    assert "up to 128 pixels on a side, these are 4 x 160" in left_out[0][1]
    # Named generators are tried anyway.
    methods, _ = candidate_methods(facts, generators=["dagan"], epochs=3)
    assert names(methods)[-1] == "dagan+balanced-online"
    assert methods[-1].params == {"dagan": {"epochs": 3}}


# -- the planner -------------------------------------------------------------------------------


class ClockRunner(_Runner):
    """The planner's runner with a clock of its own: each run costs what ``costs`` says."""

    def __init__(self, methods, budget, costs, fail=()):
        kinds = {m.name: m.kind for m in methods}
        super().__init__(_Ledger(None), Path("."), budget, 0.0, kinds, _Progress(False))
        self.clock, self.costs, self.fail, self.order = 0.0, costs, fail, []

    def spent(self):
        return self.clock

    def run(self, method, seed):
        if self.ledger.done(method, seed):
            return True
        if self.left() <= 0:
            return False
        if method in self.fail:
            self.ledger.failed[method] = "boom"
            return False
        self.clock += self.costs[method]
        self.ledger.seconds[(method, seed)] = self.costs[method]
        self.order.append((method, seed))
        return True


def grid(*generators):
    return [
        Candidate("none", {}, KIND_NONE),
        Candidate("a", {}, KIND_FREE),
        *(Candidate(g, {}, KIND_GENERATOR, g) for g in generators),
    ]


def test_generators_join_while_enough_runs_fit_then_runs_are_added():
    methods = grid("g1", "g2", "g3")
    runner = ClockRunner(methods, 38, {"none": 1, "a": 1, "g1": 3, "g2": 3, "g3": 50})
    members, left_out = _run_within_budget(runner, methods, folds=5, max_runs=50)
    # The baselines' first runs (2 s), then g1's, timed (5 s in all) and kept: 3 runs of
    # every method fit. g2 and g3 are judged by g1's run: the runs still missing for a whole
    # repeat of 5 folds of 4 methods would take 35 s, and 33 s were left.
    assert members == ["none", "a", "g1"]
    too_dear = (
        "a generator's run took about 3 s; 5 runs of it beside the others did not fit what "
        "was left of the budget"
    )
    assert left_out == [("g2", too_dear), ("g3", too_dear)]
    # Seed-major: every method's run 1, then every method's run 2, ...
    assert runner.order[:6] == [("none", 0), ("a", 0), ("g1", 0), ("none", 1), ("a", 1), ("g1", 1)]
    # Then whole runs of 5 s while they fit: 7 in all, 35 s of the 38.
    assert runner.ledger.runs("g1") == runner.ledger.runs("none") == 7
    assert runner.clock == 35


def test_an_expensive_first_run_overshoots_by_at_most_that_run():
    methods = grid("slow")
    runner = ClockRunner(methods, 20, {"none": 2, "a": 2, "slow": 30})
    members, left_out = _run_within_budget(runner, methods, folds=5, max_runs=50)
    assert members == ["none", "a"]
    assert left_out == [
        (
            "slow",
            "one run takes about 30 s; 3 runs of it beside the others did not fit what "
            "was left of the budget",
        )
    ]
    assert runner.clock == 34 <= 20 + 30  # no run started after the budget was spent
    assert runner.ledger.runs("none") == 1


def test_a_tiny_budget_keeps_the_baselines_it_could_run():
    methods = grid("g")
    runner = ClockRunner(methods, 1, {"none": 5, "a": 5, "g": 5})
    members, left_out = _run_within_budget(runner, methods, folds=5, max_runs=50)
    assert members == ["none"] and runner.clock == 5
    assert left_out == [
        ("a", "the budget ran out before its first run"),
        ("g", "no time left for it once 3 runs of the methods already in were set aside"),
    ]


def test_a_failing_method_is_left_out_with_its_error():
    methods = grid("bad", "good")
    runner = ClockRunner(methods, 100, {"none": 1, "a": 1, "good": 1}, fail=("bad",))
    members, left_out = _run_within_budget(runner, methods, folds=5, max_runs=10)
    assert members == ["none", "a", "good"] and left_out == [("bad", "its first run failed: boom")]
    assert runner.ledger.runs("good") == 10  # max_runs, well within the budget


# -- the verdict -------------------------------------------------------------------------------


def row(method, kind, mean, gain=math.nan, p_holm=math.nan, gain_vs_none=0.1, p_none=0.01):
    return {
        "method": method,
        "kind": kind,
        "n": 10,
        "mean": mean,
        "ci95_half_width": 0.01,
        "gain": gain,
        "ci95_gain": 0.004,
        "p": p_holm,
        "p_holm": p_holm,
        "wtl": "",
        "gain_vs_none": gain_vs_none,
        "p_holm_vs_none": p_none,
        "best_free": "balanced-online",
    }


def test_verdict_no_generator_beat_the_best_free_baseline():
    table = [
        row("balanced-online", KIND_FREE, 0.90),
        row("cvae+balanced-online", KIND_GENERATOR, 0.904, 0.004, 0.8),
        row("none", KIND_NONE, 0.80, -0.1, 0.001, math.nan, math.nan),
    ]
    assert make_verdict(table, 10) == (
        "use balanced-online: no generator beat balanced-online on your data; best "
        "cvae+balanced-online +0.004, Holm p 0.800",
        "balanced-online",
    )


def test_verdict_a_generator_that_wins_is_named_with_its_p():
    table = [
        row("cvae+balanced-online", KIND_GENERATOR, 0.95, 0.05, 0.003),
        row("balanced-online", KIND_FREE, 0.90),
        row("none", KIND_NONE, 0.80, -0.1, 0.001, math.nan, math.nan),
    ]
    text, use = make_verdict(table, 10)
    assert use == "cvae+balanced-online"
    assert text == (
        "use cvae+balanced-online: it beat balanced-online, the best free baseline, on your "
        "data: balanced accuracy +0.050 ± 0.004, Holm p 0.003"
    )


def test_verdict_too_few_runs_recommends_nothing():
    table = [row("balanced-online", KIND_FREE, 0.9), row("none", KIND_NONE, 0.8)]
    text, use = make_verdict(table, 2)
    assert use is None
    assert text.startswith("too few runs to conclude: the budget allowed 2 runs of each method")


def test_verdict_without_generators_and_with_a_doubtful_free_baseline():
    table = [
        row("balanced-online", KIND_FREE, 0.82, gain_vs_none=0.02, p_none=0.4),
        row("none", KIND_NONE, 0.80, -0.02, 0.4, math.nan, math.nan),
    ]
    text, use = make_verdict(table, 5)
    assert use == "balanced-online"
    assert text == (
        "use balanced-online: no generator was compared (none fit the budget or the data), so "
        "whether one helps is untested (balanced-online itself is not significantly above "
        "none: +0.020, Holm p 0.400)"
    )
    # Training as usual beating every free baseline is said, and recommended.
    table = [
        row("none", KIND_NONE, 0.85, 0.03, 0.2, math.nan, math.nan),
        row("balanced-online", KIND_FREE, 0.82, gain_vs_none=-0.03, p_none=0.2),
    ]
    assert make_verdict(table, 5)[1] == "none"


def test_what_to_run_for_each_kind_of_winner():
    methods = {
        "dagan+balanced-online": {"dagan": {"epochs": 50}},
        "copy-paste": {},
        "cvae": {"epochs": 3},
        "classical": {},
        "mixup": {"mixup": 0.4},
    }
    options = {
        "data_option": "--data scans/ --size 64x64",
        "is_image": True,
        "classifier": "resnet",
    }
    assert usage_commands("dagan+balanced-online", methods, "dagan", **options) == [
        "synthaug train --data scans/ --size 64x64 --model dagan --epochs 50 --out "
        "dagan.safetensors",
        "synthaug augment --data scans/ --size 64x64 --model dagan.safetensors --out augmented.npz",
        "# Python: AugmentedDataset(data, create_generator('dagan', epochs=50).fit(data), "
        'strategy="balance")',
        "# then train on it the balanced-online way (class-balanced batches with online "
        "classical augmentation of every class): resnet with sampler='balanced', "
        "augment='jitter'",
    ]
    assert usage_commands("copy-paste", methods, "copy-paste", **options)[0] == (
        "synthaug augment --data scans/ --size 64x64 --source copy-paste --out augmented.npz"
    )
    assert usage_commands("classical", methods, None, **options) == [
        "synthaug augment --data scans/ --size 64x64 --source classical --out augmented.npz"
    ]
    assert usage_commands("mixup", methods, None, **options) == [
        "# no data to add: train your classifier this way: Mixup (Zhang et al., ICLR 2018) on "
        "class-balanced batches (synthaug.metrics.CLASSIFIERS 'resnet' with sampler='balanced', "
        "mixup=0.4)"
    ]
    # Feature vectors: the command line reads no feature vectors, so the Python form only.
    vectors = {**options, "is_image": False, "classifier": "logreg"}
    assert usage_commands("cvae", methods, "cvae", **vectors) == [
        "# Python: AugmentedDataset(data, create_generator('cvae', epochs=3).fit(data), "
        'strategy="balance")'
    ]
    assert usage_commands(None, methods, None, **vectors) == []
    assert usage_commands("none", methods, None, **vectors)[0].startswith("# nothing to add")


# -- files ----------------------------------------------------------------------------------------


def test_snapshot_round_trip_and_its_fingerprint(tmp_path):
    data = dataset([12, 5], shape=(7,))
    fingerprint = save_snapshot(data, tmp_path / "data.npz")
    back = load_snapshot(tmp_path / "data.npz", fingerprint)
    assert back.fingerprint() == fingerprint and back.classes == data.classes
    assert DATASETS.get("snapshot") is load_snapshot
    save_snapshot(dataset([12, 6], shape=(7,)), tmp_path / "data.npz")
    with pytest.raises(InvalidDataError, match="holds other data than the advice was made on"):
        load_snapshot(tmp_path / "data.npz", fingerprint)
    with pytest.raises(DataFileError, match="cannot read the advice's data"):
        load_snapshot(tmp_path / "absent.npz")


def test_toml_text_round_trips(tmp_path):
    table = {
        "name": "x",
        "seeds": 3,
        "dataset": {"name": "digits"},
        "methods": {"none": {}, "cvae+balanced-online": {"cvae": {"epochs": 2}}, "q": {"r": 0.5}},
        "imbalance": {"minority_classes": ['a "b"', "c"], "ratios": [1.0]},
    }
    path = tmp_path / "x.toml"
    path.write_text(format_toml(table, "a comment"))
    assert tomllib.loads(path.read_text()) == table


# -- end to end ---------------------------------------------------------------------------------


# The harness's report warns that a best method is named from too few runs or test items:
# expected with these tiny data, and said in the verdict too.
thin_report = pytest.mark.filterwarnings(
    "ignore:the report names a best method:synthaug.errors.SynthaugWarning"
)
TINY = {"generators": ["cvae"], "epochs": 1, "classifier_steps": 2, "repeats": 1, "device": "cpu"}


@pytest.mark.slow
@thin_report
def test_advise_end_to_end_tiny(tmp_path, imbalanced_digits, one_torch_thread):
    out = tmp_path / "advice"
    lines = []
    tiny = advise(
        imbalanced_digits, budget="3s", out=out, progress=False, echo=lines.append, **TINY
    )
    assert tiny.table and tiny.runs >= 1 and tiny.folds == 5
    assert {"none", "balanced-online"} <= {r["method"] for r in tiny.table}
    assert any(line.startswith("\nverdict: ") for line in lines)
    text = (out / "advice.md").read_text()
    assert f"**Verdict: {tiny.verdict}.**" in text
    assert "development part (19 items, 15%) that no run used" in text
    assert (out / "report.md").read_text().startswith("# Benchmark report")
    # A larger budget continues in the same folder, up to every run allowed (repeats=1: the
    # 5 folds of one repeat) of every method.
    full = advise(
        imbalanced_digits, budget="10m", out=out, progress=False, echo=lines.append, **TINY
    )
    methods = [r["method"] for r in full.table]
    assert full.runs == 5 and full.recommended is not None and full.left_out == []
    assert sorted(methods) == [
        "balanced-online",
        "classical",
        "cvae+balanced-online",
        "logit-adjusted",
        "mixup",
        "none",
    ]
    assert not full.verdict.startswith("too few runs")
    records = read_results(out / "results.jsonl")
    assert len(records) == 5 * 6
    # The same call again reuses every run: nothing new, the same answer.
    again = advise(
        imbalanced_digits, budget="10m", out=out, progress=False, echo=lines.append, **TINY
    )
    assert len(read_results(out / "results.jsonl")) == len(records)
    assert again.verdict == full.verdict and again.table == full.table
    # advice.toml is a harness config of the same cells at full scale: synthaug bench with it
    # into this folder would reuse every run.
    config = load_config(out / "advice.toml")
    assert config.split == {"protocol": "repeated-kfold", "folds": 5}
    assert len(config.seeds) == 50 and sorted(config.methods) == sorted(methods)
    assert {r["cell_id"] for r in records} <= {c.cell_id for c in config.cells()}


@pytest.mark.slow
@thin_report
def test_advise_on_feature_vectors(tmp_path, one_torch_thread):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0.4, 0.1, (80, 6)), rng.normal(0.6, 0.1, (16, 6))])
    data = ImageDataset(torch.tensor(x.clip(0, 1), dtype=torch.float32), [0] * 80 + [1] * 16)
    out = tmp_path / "advice"
    advice = advise(
        data,
        budget="10m",
        out=out,
        generators=["deepsmote"],
        epochs=1,
        repeats=1,
        progress=False,
        echo=lambda _: None,
    )
    assert advice.runs == 5 and advice.left_out == []
    assert sorted(r["method"] for r in advice.table) == [
        "class-weighted",
        "deepsmote",
        "logit-adjusted",
        "none",
        "random-oversampling",
        "smote",
    ]
    assert load_config(out / "advice.toml").classifiers == {"logreg": {}}
    text = (out / "advice.md").read_text()
    assert "96 items in 2 classes (0: 80, 1: 16); 6-dimensional feature vectors" in text
    assert "logistic regression (logreg)" in text
    assert "# Python: advise(data, budget='20m'" in text  # the command line reads no vectors
    assert all(not c.startswith("synthaug ") for c in advice.commands)


@pytest.mark.slow
@thin_report
def test_advise_command_end_to_end_tiny(
    tmp_path, imbalanced_digits, one_torch_thread, capsys, monkeypatch
):
    # Captured stderr that says it is a terminal: progress bars are drawn only there.
    monkeypatch.setattr(type(sys.stderr), "isatty", lambda self: True)
    data = save_npz(imbalanced_digits, tmp_path / "small.npz")
    out = tmp_path / "advice"
    argv = [
        "advise",
        "--data",
        str(data),
        "--budget",
        "3s",
        "--out",
        str(out),
        "--generators",
        "cvae",
        "--epochs",
        "1",
        "--classifier-steps",
        "2",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "balanced accuracy" in captured.out and "\nverdict: " in captured.out
    # The progress bar, on stderr: runs done of those planned, and the time left once timed.
    assert "advise none run 1: 1/" in captured.err and " runs |" in captured.err
    assert "ETA: timing the first runs" in captured.err and "ETA 0 s" in captured.err
    text = (out / "advice.md").read_text()
    assert f"Data: {data}: 125 items in 4 classes (0: 60, 1: 40, 2: 15, 3: 10)" in text
    assert f"synthaug advise --data {data} --budget 6s --out {out}" in text
    assert load_config(out / "advice.toml").cells()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "30"], "argument --budget: must be a duration such as 90s, 30m, 1h or 1h30m"),
        (["--budget", "0m"], "argument --budget: must be more than 0 seconds, got '0m'"),
        (["--generators", ","], "argument --generators: must name at least one generator"),
        (["--classifier-steps", "0"], "argument --classifier-steps: must be a positive integer"),
    ],
)
def test_advise_command_usage_errors(extra, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["advise", "--data", "digits", *extra])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_advise_command_refuses_data_it_cannot_use(tmp_path, capsys):
    one = tmp_path / "one.npz"
    np.savez(one, train_images=np.zeros((12, 8, 8), np.uint8), train_labels=np.zeros(12, int))
    few = tmp_path / "few.npz"
    np.savez(few, train_images=np.zeros((23, 8, 8), np.uint8), train_labels=[0] * 20 + [1] * 3)
    for path, text in [
        (one, "needs at least 2 classes; the data have one, '0' (12 items)"),
        (few, "class '1' has 3 items, 2 once the development part (15%) is held out"),
    ]:
        assert main(["advise", "--data", str(path), "--out", str(tmp_path / "a")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("synthaug: error: ") and err.count("\n") == 1 and text in err
    fine = tmp_path / "fine.npz"
    np.savez(fine, train_images=np.zeros((28, 8, 8), np.uint8), train_labels=[0] * 20 + [1] * 8)
    assert main(["advise", "--data", str(fine), "--generators", "smote"]) == 2
    assert "'smote' is a baseline, not a generator" in capsys.readouterr().err
