"""Progress on long steps (on stderr, off when quiet) and one-line warnings (issue 17)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file

import synthaug
from synthaug._params import configure
from synthaug._utils import warning_line
from synthaug.anomaly import VAEAnomalyDetector
from synthaug.augment import (
    LesionLocalizer,
    LesionTransplant,
    RandomOverSampling,
    SMOTESource,
    SyntheticDataset,
)
from synthaug.bench import parse_config, read_results, run_bench, write_report
from synthaug.bench._task import load_dataset
from synthaug.cli import main
from synthaug.cli._evaluate import load_evaluation_data
from synthaug.data import ImageDataset, load_dicom_folder, make_phantoms
from synthaug.errors import ConstantSamplesWarning, SingleClassWarning, SynthaugWarning
from synthaug.generators import CVAE, create_generator, list_generators
from synthaug.nn import DP

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = str(Path(synthaug.__file__).resolve().parent.parent)

SMALL = {"epochs": 1, "batch_size": 16, "latent_dim": 4, "hidden_dims": (16,), "width": 4}
REQUIRED = {"perclass": lambda: {"estimator": CVAE()}}


def make(name: str, **extra):
    """The registered generator ``name``, made tiny, on the CPU, quiet unless told."""
    model = create_generator(name, **REQUIRED.get(name, dict)())
    configure(model, **SMALL)
    configure(model, **{"verbose": False, "device": "cpu", **extra})
    return model


def ours(seen) -> list:
    """The synthaug warnings among those a ``pytest.warns`` block recorded, but the one that
    says a model samples constant images: these one-epoch models on random pixels do, and
    tests/test_fuzz.py checks that warning."""
    return [
        w
        for w in seen
        if issubclass(w.category, SynthaugWarning)
        and not issubclass(w.category, ConstantSamplesWarning)
    ]


def images(counts: dict[str, int], seed: int = 0) -> ImageDataset:
    """Random 1x8x8 images, ``counts[name]`` of each class."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), i) for i, n in enumerate(counts.values())])
    return ImageDataset(torch.rand(len(labels), 1, 8, 8, generator=g), labels, list(counts))


@pytest.fixture
def no_synthaug_warning():
    """Turn every synthaug warning into an error for the test's duration (but the one that
    says a one-epoch model samples constant images: see ``ours``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SynthaugWarning)
        warnings.simplefilter("ignore", ConstantSamplesWarning)
        yield


# -- warnings: generators ----------------------------------------------------------------------
@pytest.mark.parametrize("name", list_generators())
def test_every_generator_warns_on_a_single_class(name):
    with pytest.warns(SingleClassWarning, match=r"fitted on a single class \('only'\)") as seen:
        make(name).fit(images({"only": 6}))
    (warning,) = ours(seen)  # once: a per-class model's members stay quiet
    assert warning.filename == __file__  # the user's line, not synthaug's


@pytest.mark.parametrize("name", list_generators())
def test_two_adequate_classes_fit_without_a_warning(name, no_synthaug_warning):
    make(name).fit(images({"a": 4, "b": 4}))  # per-class members model one class each, quietly


def test_a_class_of_one_image_warns_with_its_name():
    data = images({"many": 7, "one": 1})
    with pytest.warns(SynthaugWarning, match=r"CVAE: class\(es\) \['one'\] have fewer than 2"):
        make("cvae").fit(data)


def test_an_anomaly_detector_models_its_normal_class_without_a_warning(no_synthaug_warning):
    tiny = CVAE(**SMALL, verbose=False, device="cpu")
    detector = VAEAnomalyDetector(vae=tiny, augment_with=tiny, n_synthetic=4)
    detector.fit(images({"normal": 12}))
    assert len(detector.synthetic_generator_.classes_) == 1


def test_lesion_models_of_one_class_fit_without_a_warning(no_synthaug_warning):
    tiny = CVAE(**SMALL, verbose=False)
    LesionLocalizer(vae=tiny, device="cpu").fit(torch.rand(6, 1, 8, 8))  # normal anatomy
    data, masks = make_phantoms((6, 3), size=32, seed=3, return_masks=True)
    source = LesionTransplant(generator=tiny, device="cpu").fit(data, masks=masks)
    assert source.generator_.classes_ == [0]  # the patches of the one lesion class


# -- warnings: SMOTE ---------------------------------------------------------------------------
def test_smote_warns_for_a_class_below_k_neighbors_plus_one():
    data = images({"big": 10, "small": 3})
    with pytest.warns(SynthaugWarning, match=r"k_neighbors \+ 1 = 6 .*\{'small': 3\}"):
        source = SMOTESource(k_neighbors=5).fit(data)
    new, labels = source.sample(4, y="small", seed=0)  # still works, with 2 neighbours
    assert new.shape == (4, 1, 8, 8) and labels.tolist() == [1] * 4


def test_smote_with_enough_samples_per_class_is_quiet(no_synthaug_warning):
    SMOTESource(k_neighbors=3).fit(images({"a": 4, "b": 9}))


# -- warnings: DICOM ---------------------------------------------------------------------------
@pytest.fixture
def tall_and_square(tmp_path):
    """A 128x64 CT slice (its left half) in class 'tall', the 128x128 slice in 'square'."""
    (tmp_path / "tall").mkdir()
    (tmp_path / "square").mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "square" / "ct.dcm")
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    half = np.ascontiguousarray(ds.pixel_array[:, :64])
    ds.PixelData, ds.Columns = half.tobytes(), 64
    ds.save_as(tmp_path / "tall" / "half.dcm")
    return tmp_path


def test_dicom_stretched_to_other_proportions_warns_once(tall_and_square):
    with pytest.warns(SynthaugWarning, match=r"stretched 1 file\(s\) .* to 32x32") as seen:
        ds = load_dicom_folder(tall_and_square, size=32)
    (warning,) = ours(seen)
    assert "half.dcm" in str(warning.message) and "128x64" in str(warning.message)
    assert ds.sample_shape == (1, 32, 32) and len(ds) == 2


def test_dicom_resized_in_proportion_is_quiet(tall_and_square, no_synthaug_warning):
    ds = load_dicom_folder(tall_and_square / "tall", labels={"half.dcm": "t"}, size=(64, 32))
    assert ds.sample_shape == (1, 64, 32)


# -- warnings: the command line ----------------------------------------------------------------
def test_warning_line_is_one_line_and_names_foreign_kinds():
    assert warning_line("two\nlines", SynthaugWarning) == "synthaug: warning: two lines"
    assert warning_line("x", RuntimeWarning) == "synthaug: warning: RuntimeWarning: x"


def test_the_cli_shows_a_warning_as_one_line_on_stderr(tmp_path, capsys):
    data = tmp_path / "one.npz"
    pixels = np.random.default_rng(0).integers(0, 256, (6, 8, 8), dtype=np.uint8)
    np.savez(data, train_images=pixels, train_labels=np.zeros(6, dtype=np.int64))
    before = warnings.showwarning
    out = tmp_path / "m.safetensors"
    argv = ["train", "--data", str(data), "--model", "cvae", "--out", str(out), "--epochs", "1"]
    assert main([*argv, "--device", "cpu", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "synthaug: warning: CVAE is fitted on a single class ('0'), so there is no other class "
        "to balance; check the labels (one folder or label per class), or filter "
        "SingleClassWarning when one class is meant",
        # One epoch on six random images: what it samples is uniform grey, and said so.
        "synthaug: warning: CVAE samples nearly blank images for class(es) ['0'], unlike its "
        "training images: too little data or too few epochs? Look at its samples before "
        "using them (filter ConstantSamplesWarning if this is meant)",
    ]
    assert "synthaug: warning" not in captured.out
    assert warnings.showwarning is before  # the command's display is undone


# -- warnings: the bench report ----------------------------------------------------------------
def records(n_seeds: int, smallest: int | None) -> list[dict]:
    out = []
    for method, base in (("none", 0.7), ("classical", 0.8), ("cvae", 0.9)):
        for seed in range(n_seeds):
            metrics = {"balanced_accuracy": base + 0.01 * seed, "macro_f1": base, "gmean": 0.0}
            metrics["minority_recall"] = None
            if smallest is not None:
                metrics["smallest_test_class"] = smallest
            cell = {
                "task": "classification",
                "dataset": {"name": "digits"},
                "setting": "ratio=0.1",
                "classifier": "cnn",
                "method": method,
                "seed": seed,
            }
            out.append(
                {
                    "cell_id": f"{method}{seed}",
                    "cell": cell,
                    "seed": seed,
                    "metrics": metrics,
                    "timings": {"total": 1.0},
                }
            )
    return out


def write_results(folder, recs):
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))


@pytest.mark.parametrize(
    ("n_seeds", "smallest", "why"),
    [
        (2, None, "2 seeds (fewer than 3)"),
        (5, 4, "a test class of 4 items (fewer than 10)"),
        (1, 9, "1 seed (fewer than 3) and a test class of 9 items (fewer than 10)"),
    ],
)
def test_report_on_too_little_evidence_says_so_and_warns_once(tmp_path, n_seeds, smallest, why):
    write_results(tmp_path, records(n_seeds, smallest))
    lines = []
    with pytest.warns(SynthaugWarning, match="names a best method from too little") as seen:
        paths = write_report(tmp_path, echo=lines.append)
    (warning,) = ours(seen)
    assert why in str(warning.message)
    md = paths["md"].read_text().splitlines()
    winner = next(line for line in md if "**cvae**" in line)
    free = next(line for line in md if "best free baseline **classical**" in line)
    assert winner.endswith(f" — not conclusive: {why}") and free.endswith(why)
    assert f"not conclusive: {why}" in lines[0]  # what the command prints too


def test_report_on_enough_seeds_and_test_items_is_quiet(tmp_path, no_synthaug_warning):
    write_results(tmp_path, records(3, 10))
    paths = write_report(tmp_path, echo=lambda _: None)
    assert "not conclusive" not in paths["md"].read_text()


def test_cells_record_their_smallest_test_class_and_the_cli_prints_one_line(tmp_path, capsys):
    cfg = parse_config(
        {
            "seeds": 1,
            "dataset": {"name": "digits"},
            "imbalance": {"minority_classes": [9], "ratios": [0.1]},
            "split": {"test_size": 0.5},
            "classifiers": {"logreg": {"max_iter": 200}},
            "methods": ["none"],
        }
    )
    run_bench(cfg, tmp_path, progress=False, echo=lambda _: None, report=False)
    (record,) = read_results(tmp_path / "results.jsonl")
    data = load_dataset(record["cell"]["dataset"])  # the evaluation pool of digits
    _, test = data.split(0.5, seed=record["seed"])
    assert record["metrics"]["smallest_test_class"] == min(test.class_counts().values())
    capsys.readouterr()
    before = warnings.showwarning
    assert main(["report", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    shown = [line for line in captured.err.splitlines() if "warning" in line]
    assert shown == [line for line in captured.err.splitlines() if line]  # nothing else
    assert len(shown) == 1
    assert shown[0].startswith("synthaug: warning: the report names a best method from too ")
    assert "1 seed (fewer than 3)" in shown[0] and ".py" not in shown[0]
    assert "synthaug: warning" not in captured.out
    assert warnings.showwarning is before  # the command's display is undone


# -- progress: SyntheticDataset ----------------------------------------------------------------
@pytest.fixture
def terminal(capsys, monkeypatch):
    """Captured stderr that says it is a terminal: progress bars are drawn only there.

    On the class: capsys hands the test another capture object than its fixtures saw.
    """
    monkeypatch.setattr(type(sys.stderr), "isatty", lambda self: True)


@pytest.fixture
def oversampling():
    return RandomOverSampling().fit(images({"a": 5, "b": 5}))


def test_pregeneration_shows_a_bar_on_stderr(oversampling, capsys, terminal):
    SyntheticDataset(oversampling, n_per_class=40, block_size=8, verbose=True)
    captured = capsys.readouterr()
    assert "SyntheticDataset:" in captured.err and "/80" in captured.err  # n of 80 samples
    assert captured.out == ""


def test_pregeneration_is_quiet_when_not_verbose(oversampling, capsys):
    lazy = SyntheticDataset(oversampling, n_per_class=40, pregenerate=False, verbose=False)
    SyntheticDataset(oversampling, n_per_class=40, verbose=False)
    assert len(lazy.to_dataset()) == 80
    assert capsys.readouterr() == ("", "")


def test_lazy_data_set_shows_the_bar_only_when_made_whole(oversampling, capsys, terminal):
    lazy = SyntheticDataset(oversampling, n_per_class=40, pregenerate=False, verbose=True)
    lazy[0]
    assert capsys.readouterr().err == ""  # one block on demand: no bar
    lazy.to_dataset()
    assert "SyntheticDataset" in capsys.readouterr().err


# -- progress: training, private or not --------------------------------------------------------
@pytest.mark.parametrize("dp", [None, DP(epsilon=10)], ids=["plain", "private"])
def test_training_shows_the_same_epoch_bar_private_or_not(dp, capsys, terminal):
    if dp is not None:
        pytest.importorskip("opacus")
    data = images({"a": 8, "b": 8})
    make("cvae", dp=dp, epochs=2, verbose=True).fit(data)
    captured = capsys.readouterr()
    assert "CVAE:" in captured.err and "/2 [" in captured.err and "epoch" in captured.err
    assert captured.out == ""
    make("cvae", dp=dp, epochs=2, verbose=False).fit(data)
    assert capsys.readouterr() == ("", "")


# -- progress: no bars where stderr is no terminal ---------------------------------------------
def test_no_bar_when_stderr_is_not_a_terminal(oversampling, capsys):
    # Redirected to a file or a pipe, a bar is kilobytes of carriage returns: none is drawn.
    SyntheticDataset(oversampling, n_per_class=40, block_size=8, verbose=True)
    make("cvae", epochs=2, verbose=True).fit(images({"a": 8, "b": 8}))
    assert capsys.readouterr() == ("", "")


def test_train_writes_no_bar_into_a_log(tmp_path):
    # The command as a user runs it with stderr to a file: the one line of its output is on
    # stdout, and nothing, not a bar's redraws (about 10 KB before), is in the log.
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = tmp_path / "m.safetensors"
    argv = ["train", "--data", "digits", "--model", "cvae", "--out", str(out), "--epochs", "2"]
    argv += ["--param", "hidden_dims=[16]", "--param", "latent_dim=2", "--device", "cpu"]
    with open(tmp_path / "log", "w") as log:
        done = subprocess.run(
            [sys.executable, "-m", "synthaug.cli", *argv],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            text=True,
            timeout=600,
        )
    assert done.returncode == 0, (tmp_path / "log").read_text()
    assert "saved" in done.stdout
    assert (tmp_path / "log").read_text() == ""


# -- progress: synthaug evaluate ---------------------------------------------------------------
@pytest.fixture(scope="module")
def npz_and_model(small_digits_npz):
    train, _, _ = load_evaluation_data(
        str(small_digits_npz), 0.25, 0
    )  # the part evaluate trains on
    model = CVAE(epochs=1, hidden_dims=(16,), verbose=False, device="cpu").fit(train)
    return small_digits_npz, model.save(small_digits_npz.parent / "cvae-progress.safetensors")


def test_evaluate_shows_its_stages_on_stderr_and_quiet_hides_them(tmp_path, npz_and_model, capsys):
    data, model = npz_and_model
    argv = ["evaluate", str(model), "--data", str(data), "--out", str(tmp_path / "e.json")]
    argv += ["--feature-epochs", "1", "--device", "cpu"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    stages = [line for line in captured.err.splitlines() if line.startswith("synthaug evaluate [")]
    assert [line.split("]")[0][-3:] for line in stages] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    words = ("sampling", "feature", "fidelity", "utility", "privacy")
    for word, line in zip(words, stages, strict=True):
        assert word in line
    assert "synthaug evaluate [" not in captured.out and "fidelity  " in captured.out
    assert main([*argv, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "synthaug evaluate [" not in captured.err and "fidelity  " in captured.out


_WORKER_WARNING_SCRIPT = """
import os, warnings
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from synthaug.bench._runner import watch_parent
from synthaug.errors import SynthaugWarning

def cell():
    warnings.warn("a class has\\nfew images", SynthaugWarning)
    return os.getpid()

if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=watch_parent,
                             initargs=(os.getpid(),)) as pool:
        pool.submit(cell).result()
"""


@pytest.mark.slow
def test_bench_workers_show_warnings_as_one_line(tmp_path):
    # Cells run in spawn workers, outside the CLI's display hook: the pool initializer sets it.
    script = tmp_path / "worker_warning.py"
    script.write_text(_WORKER_WARNING_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["synthaug: warning: a class has few images"]
