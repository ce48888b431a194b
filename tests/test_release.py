"""``synthaug release``: samples plus a data card that says what they are and how they audit."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import synthaug
from synthaug.cli import main
from synthaug.data import load_digits
from synthaug.generators import CVAE

TRAIN = ["--model", "cvae", "--epochs", "2", "--param", "hidden_dims=[32]", "--quiet"]
FAST = ["--feature-epochs", "2", "--classifier-epochs", "2", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    path = tmp_path_factory.mktemp("release") / "h.safetensors"
    argv = ["train", "--data", "digits", *TRAIN, "--holdout", "0.25", "--out", str(path)]
    assert main(argv) == 0
    return path


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_release_holds_samples_card_grid_and_hashes(held, tmp_path, capsys):
    out = tmp_path / "rel"
    assert main(["release", str(held), "--n", "120", "--out", str(out), *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "DATA_CARD.md",
        "card.json",
        "sample_grid.png",
        "synthetic.npz",
    ]
    card = json.loads((out / "card.json").read_text())
    assert card["files"] == {
        "sample_grid.png": _sha(out / "sample_grid.png"),
        "synthetic.npz": _sha(out / "synthetic.npz"),
    }
    with np.load(out / "synthetic.npz") as npz:
        assert len(npz["train_labels"]) == 120 == card["release"]["n"]
    assert card["generator"]["file_sha256"] == synthaug.load(held).file_digest_
    assert card["privacy_guarantee"]["differentially_private"] is False
    audit = card["audit"]
    assert audit["n_heldout"] == 450 and audit["privacy_refused"] is None
    attacks = audit["privacy"]["attacks"]
    assert set(attacks["attacks"]) == {"distance", "likelihood", "density_ratio"}
    assert 0 <= attacks["strongest"]["auc"] <= 1
    text = (out / "DATA_CARD.md").read_text()
    assert "**None.** No formal privacy guarantee" in text
    assert "| strongest (" in text and "TPR at 1% FPR" in text
    assert f"`synthetic.npz` `{_sha(out / 'synthetic.npz')}`" in text
    assert "NaN" not in (out / "card.json").read_text()  # valid JSON for every tool


def test_a_private_release_states_its_guarantee_and_noisy_counts(tmp_path, capsys):
    pytest.importorskip("opacus")
    train, _ = load_digits().split(0.25, seed=0)
    dp = synthaug.DP(epsilon=5.0, delta=1e-4)
    model = CVAE(epochs=1, hidden_dims=(32,), verbose=False, dp=dp).fit(train)
    path = model.save(tmp_path / "dp.safetensors")
    out = tmp_path / "rel"
    assert main(["release", str(path), "--n", "60", "--out", str(out), *FAST]) == 0
    card = json.loads((out / "card.json").read_text())
    guarantee = card["privacy_guarantee"]
    assert guarantee["differentially_private"] is True
    assert guarantee["epsilon"] <= 5.0 + 1e-9 and guarantee["delta"] == pytest.approx(1e-4)
    assert guarantee["not_covered"] and guarantee["covers"]
    assert card["generator"]["counts_are_noisy"] is True
    text = (out / "DATA_CARD.md").read_text()
    assert "-differential privacy with respect to adding or removing one training record" in text
    assert "Does not cover:" in text and "(**noisy**: a DP release" in text


def test_a_model_that_stores_training_images_needs_allow_exemplars(
    held, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(CVAE, "stores_training_images", True)
    out = tmp_path / "rel"
    capsys.readouterr()
    assert main(["release", str(held), "--n", "20", "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "--allow-exemplars" in err and err.count("\n") == 1 and not out.exists()
    argv = ["release", str(held), "--n", "20", "--out", str(out), "--allow-exemplars", *FAST]
    assert main(argv) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["generator"]["stores_training_images"] and card["generator"]["exemplars_allowed"]
    assert "can be (near) copies of real ones" in (out / "DATA_CARD.md").read_text()


def test_without_unseen_data_the_card_says_there_is_no_privacy_audit(tmp_path, capsys):
    model = tmp_path / "all.safetensors"
    assert main(["train", "--data", "digits", *TRAIN, "--out", str(model)]) == 0
    out = tmp_path / "rel"
    capsys.readouterr()
    assert main(["release", str(model), "--n", "30", "--out", str(out), *FAST]) == 0
    assert "the card has no privacy audit" in capsys.readouterr().out
    card = json.loads((out / "card.json").read_text())
    assert (
        card["audit"]["privacy"] is None
        and "trained on all of digits" in (card["audit"]["privacy_refused"])
    )
    assert "**No privacy audit**" in (out / "DATA_CARD.md").read_text()


def test_png_release_and_an_existing_folder(held, tmp_path):
    out = tmp_path / "rel"
    argv = ["release", str(held), "--n", "30", "--out", str(out), "--format", "png", *FAST]
    assert main(argv) == 0
    card = json.loads((out / "card.json").read_text())
    assert "images/manifest.csv" in card["files"]
    assert sum(name.endswith(".png") and name.startswith("images/") for name in card["files"]) == 30
    assert main(argv) == 2  # never mixed with an earlier release
    assert main([*argv, "--overwrite"]) == 0
