"""``synthaug train``: private training from the command line (``--dp-epsilon``), the record a
private model file keeps, ``--out`` suffixes, ``--param`` against the options that set the same
parameter, ``--split`` and ``--feature-range``; ``release --no-class-names``."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

import synthaug
from synthaug.cli import main
from synthaug.cli._evaluate import evaluation_data
from synthaug.cli._release import not_covered
from synthaug.data import load_npz

# Small networks on a shared machine: one thread each.
pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUIET = ["--quiet", "--device", "cpu"]
TINY = ["--epochs", "1", "--param", "hidden_dims=[16]", "--param", "latent_dim=2", *QUIET]
# 90 images, 37 of "benign" and 53 of "melanoma": counts no model file may hold under DP.
EXACT = {"benign": 37, "melanoma": 53}


@pytest.fixture(scope="module")
def named(tmp_path_factory, small_digits):
    """An .npz with named classes (names a release may have to leave out) and a test split."""
    root = tmp_path_factory.mktemp("train_cli")
    images = (small_digits.images[:, 0].numpy() * 255).astype(np.uint8)
    labels = np.array([0] * EXACT["benign"] + [1] * EXACT["melanoma"])
    path = root / "named.npz"
    np.savez(
        path,
        train_images=images[: len(labels)],
        train_labels=labels,
        test_images=images[100:110],
        test_labels=np.array([0, 1] * 5),
        classes=np.array(list(EXACT)),
    )
    return path


def _header_numbers(path) -> list[float]:
    """Every number in a model file's header, the JSON held in its strings included."""
    raw = path.read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])["__metadata__"]
    found: list[float] = []

    def walk(value) -> None:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return
            if not isinstance(value, (dict, list)):
                return
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found.append(value)

    walk(header)
    return found


def _fails(argv, capsys, *fragments) -> str:
    """Run a command that must fail with one line (exit 2) holding every fragment."""
    capsys.readouterr()
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith("synthaug: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


# -- private training ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def private_model(named, tmp_path_factory):
    path = tmp_path_factory.mktemp("dp") / "dp.safetensors"
    argv = ["train", "--data", str(named), "--model", "cvae", "--out", str(path), *TINY]
    argv += ["--param", "batch_size=16", "--dp-epsilon", "4", "--holdout", "0.25"]
    assert main(argv) == 0
    return path


def test_dp_epsilon_trains_a_private_model(private_model, capsys):
    model = synthaug.load(private_model, device="cpu")
    assert model.dp == synthaug.DP(epsilon=4.0)
    epsilon, delta = model.privacy_spent_
    assert 0 < epsilon <= 4.0 and delta == pytest.approx(1e-5)
    # No seed given: a fresh one that the file does not keep (the noise cannot be regenerated).
    assert model.seed is None


def test_a_private_model_file_records_nothing_the_guarantee_does_not_cover(private_model, named):
    model = synthaug.load(private_model, device="cpu")
    record = model.metadata_["training_data"]
    assert record["private"] is True
    assert record["holdout"] == {"fraction": 0.25, "seed": 0}  # no indices
    assert not {"n_items", "fingerprint"} & set(record)
    # The losses and the fit time are not noised: one entry per epoch, no loss, no time.
    assert model.history_ == [{"epoch": 1.0}] and model.fit_seconds_ is None
    numbers = Counter(_header_numbers(private_model))
    assert sum(numbers.values()) > 20  # the walk reached the fitted state and privacy record
    # The noisy counts are the release (one may equal an exact count by chance: the seed is
    # fresh); every other number must be none of the exact counts of the data, nor a
    # sampling rate computed from one.
    numbers.subtract(model.class_counts_.values())
    found = {v for v, k in numbers.items() if k > 0}
    data = load_npz(named)
    train_idx, held = data.split_indices(0.25, seed=0)
    exact = {len(data), len(train_idx), len(held)}
    exact |= set(data.subset(train_idx).class_counts().values())
    exact |= set(data.subset(held).class_counts().values()) | set(EXACT.values())
    assert not found & exact, found & exact
    assert not any(math.isclose(v, 16 / m) for v in found for m in exact)


def test_a_release_card_names_the_class_names_alone_as_unnoised(private_model):
    # No seed, no losses, no fit time in the file: what it holds unnoised is its class names.
    items = not_covered(synthaug.load(private_model, device="cpu"))
    assert "the model file itself when shared (its class names: not private)" in items


def test_info_and_evaluate_read_a_private_record(private_model, named, capsys):
    capsys.readouterr()
    assert main(["info", str(private_model)]) == 0
    out = capsys.readouterr().out
    assert "(private: no item count or fingerprint recorded)" in out
    assert "held out fraction 0.25 (seed 0; the items are not recorded" in out
    assert "losses          not recorded" in out and "(time not recorded)" in out
    assert "the file keeps seed" not in out
    # evaluate recomputes the hold-out from the fraction and seed: the very items train kept out.
    model = synthaug.load(private_model, device="cpu")
    train, test, name, refusal, warnings = evaluation_data(model, None, 0.25, 0, {})
    data = load_npz(named)
    _, held = data.split_indices(0.25, seed=0)
    assert len(test) == len(held) and np.array_equal(test.images.numpy(), data.images[held].numpy())
    assert refusal is None and "held out when training" in name
    assert any("keeps no fingerprint" in w for w in warnings)


def test_a_seed_under_dp_is_kept_and_said(named, tmp_path, capsys):
    out = tmp_path / "seeded.safetensors"
    argv = ["train", "--data", str(named), "--model", "cvae", "--out", str(out), *TINY]
    capsys.readouterr()
    assert main([*argv, "--param", "batch_size=16", "--dp-epsilon", "8", "--seed", "3"]) == 0
    err = capsys.readouterr().err
    assert "synthaug: warning: a seed with --dp-epsilon" in err and err.count("\n") == 1
    assert synthaug.load(out).seed == 3
    assert main(["info", str(out)]) == 0
    assert "the file keeps seed=3: whoever reads it can regenerate" in capsys.readouterr().out


def test_bad_dp_options_are_refused_with_the_dp_rules(named, tmp_path, capsys):
    base = ["train", "--data", str(named), "--model", "cvae", "--out", str(tmp_path / "m")]
    for value in ["0", "-1", "nan", "inf"]:
        _fails([*base, f"--dp-epsilon={value}"], capsys, f"--dp-epsilon {float(value)}", "DP: ")
    _fails([*base, "--dp-epsilon", "1", "--dp-delta", "1.5"], capsys, "DP: delta=1.5 is invalid")
    # A delta not below 1/n is caught by the library's fit, against the true n.
    _fails([*base, *TINY, "--dp-epsilon", "1", "--dp-delta", "0.05"], capsys, "not below 1/n")
    with pytest.raises(SystemExit) as exc:
        main([*base, "--dp-delta", "1e-6"])
    assert exc.value.code == 2
    assert "give --dp-epsilon too" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*base, "--dp-epsilon", "ten"])
    assert exc.value.code == 2
    assert not (tmp_path / "m.safetensors").exists()


def test_a_family_that_cannot_train_privately_is_refused_before_the_data_is_read(tmp_path, capsys):
    # The data does not exist: the refusal comes first, from the family's own rule.
    base = ["train", "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "m")]
    for family in ["dagan", "deepsmote", "delta-transfer"]:
        _fails([*base, "--model", family, "--dp-epsilon", "1"], capsys, "cannot train with dp")
    # A preset around a private family reaches the inner model's dp.
    _fails([*base, "--model", "perclass-vae", "--dp-epsilon", "1"], capsys, "no data file at")


def test_a_per_class_preset_trains_privately(named, tmp_path):
    out = tmp_path / "pc.safetensors"
    argv = ["train", "--data", str(named), "--model", "perclass-vae", "--out", str(out), *TINY]
    assert main([*argv, "--param", "batch_size=8", "--dp-epsilon", "8"]) == 0
    model = synthaug.load(out)
    assert model.privacy_spent_[0] <= 8.0
    assert [m.seed for m in model.members_.values()] == [None, None]
    assert all(m.history_ == [{"epoch": 1.0}] for m in model.members_.values())
    assert "n_items" not in model.metadata_["training_data"]


# -- --out, --param conflicts, --split, --feature-range ----------------------------------------
def test_out_must_be_a_safetensors_file(named, tmp_path, capsys):
    base = ["train", "--data", str(named), "--model", "cvae", *TINY]
    for name in ["x.npz", "model.v2", "m.pt"]:
        _fails([*base, "--out", str(tmp_path / name)], capsys, "a model file ends in .safetensors")
    assert not list(tmp_path.iterdir())  # refused before any training, nothing written
    assert main([*base, "--out", str(tmp_path / "bare")]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["bare.safetensors"]


def test_a_param_that_an_option_also_sets_is_refused(tmp_path, capsys):
    base = ["train", "--data", "digits", "--model", "cvae", "--out", str(tmp_path / "m")]
    cases = [
        (["--param", "seed=5", "--seed", "3"], "--param seed=5 and --seed 3 both set seed"),
        (["--param", "seed=5", "--seed", "0"], "--seed 0"),  # a given default is given
        (["--param", "device=cpu", "--device", "cpu"], "--device cpu both set device"),
        (["--param", "epochs=3", "--epochs", "2"], "--epochs 2 both set epochs"),
        (["--param", "verbose=false", "--quiet"], "--quiet both set verbose"),
        (["--param", "dp=null", "--dp-epsilon", "1"], "--dp-epsilon 1.0 both set dp"),
    ]
    for extra, fragment in cases:
        _fails([*base, *extra], capsys, fragment)
    assert not list(tmp_path.iterdir())


def test_a_param_alone_is_honoured(named, tmp_path):
    out = tmp_path / "m.safetensors"
    argv = ["train", "--data", str(named), "--model", "cvae", "--out", str(out), *TINY]
    assert main([*argv, "--param", "seed=5"]) == 0
    assert synthaug.load(out).seed == 5  # was silently replaced by --seed's default 0
    argv = ["train", "--data", str(named), "--model", "cvae", "--out", str(out), "--overwrite"]
    assert main([*argv, "--param", "epochs=1", "--param", "hidden_dims=[16]", *QUIET]) == 0
    assert synthaug.load(out).epochs == 1


def test_split_is_honoured_for_npz_and_refused_where_there_is_none(
    named, tmp_path, tiny_images, capsys
):
    from synthaug.data import save_image_folder

    out = tmp_path / "test_split.safetensors"
    argv = ["train", "--data", str(named), "--model", "cvae", "--out", str(out), *TINY]
    capsys.readouterr()
    assert main([*argv, "--split", "test"]) == 0
    assert "trained cvae on 10 samples (benign: 5, melanoma: 5)" in capsys.readouterr().out
    assert synthaug.load(out).metadata_["training_data"]["split"] == "test"
    save_image_folder(tiny_images, tmp_path / "folder")
    for data in ["digits", str(tmp_path / "folder")]:
        base = ["train", "--data", data, "--model", "cvae", "--out", str(tmp_path / "x")]
        _fails([*base, "--split", "test"], capsys, "--split test does not apply to")
    _fails([*argv, "--split", "val", "--overwrite"], capsys, "no 'val_images'")


def test_feature_range_reads_values_in_other_units(tmp_path, small_digits, capsys):
    # Hounsfield-like floats: unusable without their known range, read with it.
    hu = small_digits.images[:, 0].numpy() * 4000 - 1000
    path = tmp_path / "hu.npz"
    np.savez(path, train_images=hu, train_labels=small_digits.labels.numpy())
    out = tmp_path / "hu.safetensors"
    argv = ["train", "--data", str(path), "--model", "cvae", "--out", str(out), *TINY]
    _fails(argv, capsys, "image values must lie in [0, 1]")
    assert main([*argv, "--feature-range=-1000,3000"]) == 0
    model = synthaug.load(out)
    assert model.metadata_["training_data"]["read_options"] == {"feature_range": [-1000, 3000]}
    # evaluate reads the data back the same way, from the record: the same fingerprint.
    _, _, _, refusal, _ = evaluation_data(model, None, 0.25, 0, {})
    assert refusal.startswith("the model was trained on all of")
    # Values outside the range are clipped, and said.
    capsys.readouterr()
    argv += ["--feature-range=-500,3000", "--overwrite"]
    assert main(argv) == 0
    assert "values lie outside feature_range (-500, 3000) and were clipped" in (
        capsys.readouterr().err
    )
    _fails([*argv[:-2], "--feature-range=3000,-1000", "--overwrite"], capsys, "low < high")
    base = ["train", "--data", "digits", "--model", "cvae", "--out", str(tmp_path / "d")]
    _fails([*base, "--feature-range=0,16"], capsys, "--feature-range does not apply to digits")
    with pytest.raises(SystemExit):
        main([*base, "--feature-range", "0"])


# -- release --no-class-names -------------------------------------------------------------------
@pytest.mark.slow
def test_release_without_class_names_writes_none_of_them(named, tmp_path, capsys):
    # A seeded private model: the noisy counts set the classes' shares of the release, and
    # with a fresh seed a 20-sample release could hold too few of a class for the audit.
    model = tmp_path / "dp.safetensors"
    train = ["train", "--data", str(named), "--model", "cvae", "--out", str(model), *TINY]
    assert main([*train, "--param", "batch_size=16", "--dp-epsilon", "4", "--seed", "1"]) == 0
    fast = ["--feature-epochs", "1", "--classifier-epochs", "1", *QUIET]
    out = tmp_path / "rel"
    argv = ["release", str(model), "--n", "60", "--format", "dicom", "--out", str(out)]
    assert main([*argv, "--no-class-names", *fast]) == 0
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".dcm" for p in files) and (out / "dicom" / "manifest.csv").is_file()
    for p in files:
        content = p.read_bytes().lower()
        for name in EXACT:
            assert name.encode() not in content, (p, name)
    assert {p.parent.name for p in files if p.suffix == ".dcm"} <= {"class_0", "class_1"}
    card = json.loads((out / "card.json").read_text())
    assert card["release"]["class_names_omitted"] is True
    # The card names what the model file holds unnoised: here the class names and the seed.
    not_covered = card["privacy_guarantee"]["not_covered"]
    assert "the model file itself when shared (its class names, seed: not private)" in not_covered
    assert set(card["generator"]["training_class_counts"]) == {"class_0", "class_1"}
    assert "the class names are left out" in (out / "DATA_CARD.md").read_text()
    # Without the flag the names are there: the check above can fail.
    capsys.readouterr()
    assert main([*argv[:-1], str(tmp_path / "named"), *fast]) == 0
    manifest = (tmp_path / "named" / "dicom" / "manifest.csv").read_text()
    assert any(name in manifest for name in EXACT)
