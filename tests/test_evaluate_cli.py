"""``synthaug evaluate``: a saved generator scored on digits-like .npz data."""

import json

import numpy as np
import pytest
import torch

from synthaug.cli import main
from synthaug.cli._evaluate import classes_comparable, load_evaluation_data
from synthaug.data import ImageDataset
from synthaug.generators import CVAE

FAST = ["--feature-epochs", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def npz_and_model(small_digits_npz):
    """small_digits as a train-only MedMNIST-style .npz, and a tiny CVAE trained on the CLI's train part of it."""
    train, _, _ = load_evaluation_data(str(small_digits_npz), 0.25, 0)
    model = CVAE(epochs=2, hidden_dims=(32,), verbose=False, device="cpu").fit(train)
    return small_digits_npz, model.save(small_digits_npz.parent / "cvae.safetensors"), model


def test_evaluate_writes_all_three_groups(tmp_path, npz_and_model, capsys):
    data, model_path, _ = npz_and_model
    out = tmp_path / "eval.json"
    fx = tmp_path / "fx.safetensors"
    argv = ["evaluate", str(model_path), "--data", str(data), "--out", str(out), *FAST]
    assert main([*argv, "--save-features", str(fx)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["model_type"] == "cvae" and result["n_synthetic"] == result["n_train"] == 150
    assert {
        "fd",
        "precision",
        "recall",
        "density",
        "coverage",
        "c2st_auc",
        "label_fidelity",
    } <= set(result["fidelity"])
    assert {"trtr_balanced_accuracy", "tstr_macro_f1", "trts_balanced_accuracy"} <= set(
        result["utility"]
    )
    assert {
        "dcr_p5_ratio",
        "dcr_median_ratio",
        "memorization_rate",
        "mia_auc",
        "exact_copies",
    } <= set(result["privacy"])
    assert result["privacy_spent"] is None and result["warnings"] == []
    assert "FD / PRDC / C2ST embedding: penultimate layer" in printed
    assert "mia_auc" in printed and "tstr" in printed
    # The membership attacks, the white-box one on the CVAE itself: 50 test items, 25 of
    # them calibrate, 25 are non-members scored against 25 training members.
    attacks = result["privacy"]["attacks"]
    assert set(attacks["attacks"]) == {"distance", "likelihood", "density_ratio"}
    assert attacks["attacks"]["likelihood"]["access"] == "white-box"
    assert 0 <= attacks["attacks"]["likelihood"]["auc"] <= 1
    assert attacks["n_members"] == attacks["n_nonmembers"] == attacks["n_reference"] == 25
    best = attacks["strongest"]
    assert best["auc"] == max(a["auc"] for a in attacks["attacks"].values())
    assert "membership attacks (25 members vs 25 non-members scored" in printed
    assert f"strongest: {best['attack']} (AUC {best['auc']:.3f}" in printed

    # Reusing the saved embedding gives the same figures.
    again = tmp_path / "again.json"
    argv = ["evaluate", str(model_path), "--data", str(data), "--out", str(again), *FAST]
    assert main([*argv, "--features", str(fx)]) == 0
    assert json.loads(again.read_text())["fidelity"] == result["fidelity"]


def test_evaluate_reports_privacy_spent_and_foreign_training_data(
    tmp_path, npz_and_model, monkeypatch, capsys, small_digits
):
    data, _, _ = npz_and_model
    # A model trained on all of the data, not the train part: the CLI must say so.
    model = CVAE(epochs=1, hidden_dims=(16,), verbose=False, device="cpu").fit(small_digits)
    model.privacy_spent_ = (3.0, 1e-5)
    monkeypatch.setattr("synthaug.cli._evaluate.load", lambda path, device="auto": model)
    out = tmp_path / "eval.json"
    assert main(["evaluate", "m.safetensors", "--data", str(data), "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["privacy_spent"] == {"epsilon": 3.0, "delta": 1e-5}
    assert "epsilon=3" in printed
    assert len(result["warnings"]) == 1 and "warning: the model's training class counts" in printed


def test_evaluate_reads_medmnist_style_npz(tmp_path, small_digits):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(60, 8, 8), dtype=np.uint8)
    y = np.repeat(np.arange(3), 20)[:, None]  # MedMNIST keeps labels as (N, 1)
    path = tmp_path / "med.npz"
    np.savez(
        path, train_images=x[:40], train_labels=y[::1][:40], test_images=x[40:], test_labels=y[40:]
    )
    from synthaug.cli._evaluate import load_evaluation_data

    train, test, name = load_evaluation_data(str(path), 0.25, 0)
    assert (len(train), len(test), train.classes) == (40, 20, ["0", "1", "2"])
    assert "train/test splits" in name


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((4, 8, 8))}, "no 'train_images'"),
        (
            {"train_images": np.zeros((4, 8, 8)), "train_labels": np.zeros((4, 2), dtype=int)},
            "multi-label",
        ),
        ({"train_images": np.full((4, 8, 8), np.nan), "train_labels": np.arange(4)}, "NaN"),
    ],
)
def test_evaluate_rejects_bad_npz(tmp_path, npz_and_model, capsys, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    _, model_path, _ = npz_and_model
    assert main(["evaluate", str(model_path), "--data", str(path), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synthaug: error:") and message in err and err.count("\n") == 1


def test_evaluate_rejects_corrupt_files_and_mismatched_data(tmp_path, npz_and_model, capsys):
    _, model_path, _ = npz_and_model
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 truncated")
    assert main(["evaluate", str(model_path), "--data", str(junk), *FAST]) == 2
    assert "not a readable .npz" in capsys.readouterr().err
    assert main(["evaluate", str(model_path), "--data", str(tmp_path / "none.npz")]) == 2
    assert "no data file" in capsys.readouterr().err
    small = tmp_path / "small.npz"
    np.savez(
        small, train_images=np.zeros((60, 4, 4), np.uint8), train_labels=np.repeat(np.arange(10), 6)
    )
    assert main(["evaluate", str(model_path), "--data", str(small), *FAST]) == 2
    assert "shape (1, 8, 8)" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.safetensors"), *FAST]) == 2
    assert "no model file" in capsys.readouterr().err


def test_fidelity_is_pooled_when_a_class_has_too_few_samples_in_either_set():
    """A release of 20 samples drawn from noisy private counts can leave a class with none: the
    audit pools the classes instead of failing (it failed on 'synthetic 0' before)."""
    names = ["a", "b"]

    def data(per_class):
        labels = torch.cat([torch.full((n,), c) for c, n in enumerate(per_class)])
        return ImageDataset(torch.zeros(len(labels), 1, 4, 4), labels, names)

    assert classes_comparable(data([9, 9]), data([6, 14]), k=5)
    assert not classes_comparable(data([9, 9]), data([0, 20]), k=5)
    assert not classes_comparable(data([9, 9]), data([5, 15]), k=5)
    assert not classes_comparable(data([0, 9]), data([10, 10]), k=5)  # real has no 'a'
    assert classes_comparable(data([0, 9]), data([0, 10]), k=5)  # nobody has 'a'
