"""``train --holdout`` keeps a part out and records it; ``evaluate`` tests against exactly that
part, and refuses privacy figures when no item is known to be unseen."""

from __future__ import annotations

import json

import numpy as np
import pytest

import synthaug
from synthaug.cli import main
from synthaug.data import load_digits, save_npz

TRAIN = ["--model", "cvae", "--epochs", "1", "--param", "hidden_dims=[16]", "--quiet"]
EVAL = ["--feature-epochs", "1", "--classifier-epochs", "1", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    root = tmp_path_factory.mktemp("holdout")
    path = root / "h.safetensors"
    argv = ["train", "--data", "digits", *TRAIN, "--holdout", "0.25", "--holdout-seed", "3"]
    assert main([*argv, "--out", str(path), "--device", "cpu"]) == 0
    return path


def test_the_held_out_part_is_recorded_and_never_trained_on(held):
    model = synthaug.load(held)
    record = model.metadata_["training_data"]
    digits = load_digits()
    train_idx, test_idx = digits.split_indices(0.25, seed=3)
    assert record["holdout"] == {"fraction": 0.25, "seed": 3, "indices": test_idx.tolist()}
    assert record["data"] == "digits" and record["n_items"] == len(digits)
    assert record["fingerprint"] == digits.fingerprint()
    trained = digits.subset(train_idx)
    assert model.class_counts_ == {c: n for c, n in trained.class_counts().items() if n}
    assert sum(model.class_counts_.values()) == len(digits) - len(test_idx)


def test_evaluate_tests_against_the_held_out_part_by_default(held, tmp_path, capsys):
    out = tmp_path / "e.json"
    assert main(["evaluate", str(held), "--out", str(out), *EVAL]) == 0
    result = json.loads(out.read_text())
    n_test = len(load_digits().split_indices(0.25, seed=3)[1])
    assert result["n_test"] == n_test and result["n_train"] == 1797 - n_test
    assert "held out when training" in result["data"]
    assert result["privacy"]["mia_auc"] == result["privacy"]["mia_auc"]  # a number, not NaN
    assert result["privacy"]["attacks"]["n_nonmembers"] > 0
    assert result["privacy_refused"] is None and result["warnings"] == []
    # --test-size / --split-seed do not move a recorded hold-out.
    again = tmp_path / "again.json"
    argv = ["evaluate", str(held), "--data", "digits", "--test-size", "0.5", "--out", str(again)]
    assert main([*argv, *EVAL]) == 0
    assert json.loads(again.read_text())["n_test"] == n_test


def test_privacy_is_refused_for_a_model_trained_on_all_of_the_data(tmp_path, capsys):
    model = tmp_path / "all.safetensors"
    assert main(["train", "--data", "digits", *TRAIN, "--out", str(model)]) == 0
    out = tmp_path / "e.json"
    capsys.readouterr()
    assert main(["evaluate", str(model), "--data", "digits", "--out", str(out), *EVAL]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["privacy"] is None
    assert "trained on all of digits" in result["privacy_refused"]
    assert "--holdout" in result["privacy_refused"]
    assert "privacy   not reported" in printed and "mia_auc" not in printed
    assert "membership attacks" not in printed
    assert any("optimistic" in w for w in result["warnings"])


def test_privacy_is_refused_on_data_the_model_was_not_trained_on(tmp_path):
    digits = load_digits()
    part = digits.subset(np.arange(0, len(digits), 2))
    save_npz(part, tmp_path / "half.npz")
    model = tmp_path / "half.safetensors"
    argv = ["train", "--data", str(tmp_path / "half.npz"), *TRAIN, "--holdout", "0.3"]
    assert main([*argv, "--out", str(model)]) == 0
    out = tmp_path / "e.json"
    assert main(["evaluate", str(model), "--data", "digits", "--out", str(out), *EVAL]) == 0
    result = json.loads(out.read_text())
    assert (
        result["privacy"] is None
        and "not the data the model was trained on" in (result["privacy_refused"])
    )
    # Its own data, found from the record (an absolute path), gives the figures.
    assert main(["evaluate", str(model), "--out", str(out), *EVAL]) == 0
    result = json.loads(out.read_text())
    assert result["privacy"] is not None and result["n_test"] == round(0.3 * len(part))


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.1", "half"])
def test_holdout_must_be_a_fraction(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(
            ["train", "--data", "digits", *TRAIN, "--holdout", value, "--out", str(tmp_path / "m")]
        )
    assert exc.value.code == 2
    assert "--holdout" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()


def test_info_shows_the_hold_out(held, capsys):
    capsys.readouterr()
    assert main(["info", str(held)]) == 0
    out = capsys.readouterr().out
    n_test = len(load_digits().split_indices(0.25, seed=3)[1])
    assert f"held out {n_test} (fraction 0.25, seed 3) for 'synthaug evaluate'" in out
