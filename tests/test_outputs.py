"""Outputs are checked before any work, built aside, renamed into place, never mixed, and
listed in a manifest."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

import synthaug
from synthaug.cli import main
from synthaug.data import (
    MANIFEST_NAME,
    check_output,
    load_digits,
    load_image_folder,
    save_image_folder,
    save_npz,
    write_dicom,
)
from synthaug.errors import DataFileError
from synthaug.generators import CVAE

TRAIN = ["--epochs", "1", "--param", "hidden_dims=[16]", "--quiet", "--device", "cpu"]


def _manifest(folder):
    with open(folder / MANIFEST_NAME, newline="") as f:
        return list(csv.DictReader(f))


def _siblings(path):
    """Everything next to ``path`` whose name starts with it (partial or old copies)."""
    return sorted(p.name for p in path.parent.iterdir() if path.name in p.name)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    digits = load_digits()
    small = digits.subset(np.flatnonzero(digits.labels.numpy() < 3)[:60])
    path = CVAE(epochs=1, hidden_dims=(16,), verbose=False).fit(small).save(root / "m.safetensors")
    return path


def test_sample_refuses_a_non_empty_folder_and_replaces_it_with_overwrite(model, tmp_path, capsys):
    out = tmp_path / "pngs"
    assert main(["sample", str(model), "--n", "6", "--out", str(out)]) == 0
    first = sorted(p.relative_to(out) for p in out.rglob("*.png"))
    assert len(first) == 6
    capsys.readouterr()
    assert main(["sample", str(model), "--n", "4", "--out", str(out), "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "already holds" in err and "--overwrite" in err and err.count("\n") == 1
    assert sorted(p.relative_to(out) for p in out.rglob("*.png")) == first  # untouched
    assert main(["sample", str(model), "--n", "4", "--out", str(out), "--overwrite"]) == 0
    assert len(list(out.rglob("*.png"))) == 4  # replaced whole, not added to
    assert len(_manifest(out)) == 4 and _siblings(out) == ["pngs"]


def test_an_existing_npz_or_model_file_is_refused_without_overwrite(model, tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert main(["sample", str(model), "--n", "3", "--out", str(out)]) == 0
    before = out.read_bytes()
    assert main(["sample", str(model), "--n", "5", "--out", str(out)]) == 2
    assert out.read_bytes() == before
    assert main(["sample", str(model), "--n", "5", "--out", str(out), "--overwrite"]) == 0
    with np.load(out) as npz:
        assert len(npz["train_labels"]) == 5
    # train: an existing model is never silently replaced, and the check comes before training.
    digest = synthaug.load(model).file_digest_
    capsys.readouterr()
    argv = ["train", "--data", "digits", "--model", "cvae", "--out", str(model), *TRAIN]
    assert main(argv) == 2 and "already exists" in capsys.readouterr().err
    assert synthaug.load(model).file_digest_ == digest


def test_sample_writes_a_manifest_with_synthetic_names_and_the_model_digest(model, tmp_path):
    out = tmp_path / "pngs"
    assert main(["sample", str(model), "--n", "5", "--out", str(out)]) == 0
    rows = _manifest(out)
    digest = synthaug.load(model).file_digest_
    assert sorted(r["file"] for r in rows) == sorted(
        str(p.relative_to(out)) for p in out.rglob("*.png")
    )
    for row in rows:
        assert row["synthetic"] == "yes" and row["model_sha256"] == digest and row["source"] == ""
        cls, name = row["file"].split("/")
        assert cls == row["class"] and name.startswith("synthetic_")
    assert len(load_image_folder(out)) == 5  # the manifest does not get in the way of reading


def test_augment_png_keeps_real_names_and_lists_their_source(model, tmp_path):
    digits = load_digits()
    real = digits.subset(np.flatnonzero(digits.labels.numpy() < 3)[:12])
    save_image_folder(real, tmp_path / "real", names=[f"scan{i:02d}" for i in range(12)])
    out = tmp_path / "aug"
    argv = ["augment", "--data", str(tmp_path / "real"), "--model", str(model), "--out", str(out)]
    assert main([*argv, "--strategy", "ratio", "--ratio", "0.5"]) == 0
    rows = _manifest(out)
    real_rows = [r for r in rows if r["synthetic"] == "no"]
    synthetic_rows = [r for r in rows if r["synthetic"] == "yes"]
    assert len(real_rows) == 12 and len(synthetic_rows) == 6
    for row in real_rows:
        assert row["file"].split("/")[1].startswith("scan")  # the original name
        assert row["source"].endswith(row["file"].split("/")[1])
        assert (tmp_path / "real" / row["file"]).is_file() and row["model_sha256"] == ""
    assert all(r["file"].split("/")[1].startswith("synthetic_") for r in synthetic_rows)
    assert {r["model_sha256"] for r in synthetic_rows} == {synthaug.load(model).file_digest_}


def test_dicom_output_never_mixes_two_studies(model, tmp_path):
    out = tmp_path / "dcm"
    argv = ["sample", str(model), "--n", "3", "--out", str(out), "--format", "dicom"]
    assert main(argv) == 0
    assert main([*argv, "--seed", "1"]) == 2
    assert main([*argv, "--seed", "1", "--overwrite"]) == 0
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == 3 and all(f.name.startswith("synthetic_") for f in files)
    assert len({pydicom.dcmread(f).StudyInstanceUID for f in files}) == 1
    rows = _manifest(out)
    assert {r["file"] for r in rows} == {str(f.relative_to(out)) for f in files}
    uids = {pydicom.dcmread(out / r["file"]).SOPInstanceUID for r in rows}
    assert uids == {r["sop_instance_uid"] for r in rows}


def test_train_checks_its_output_before_training(tmp_path, capsys, monkeypatch):
    def no_training(self, dataset):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(CVAE, "fit", no_training)
    (tmp_path / "existing_dir.safetensors").mkdir()
    (tmp_path / "a_file").write_text("x")
    for out, text in [
        (tmp_path / "existing_dir", "is a folder, but a file is written there"),
        (tmp_path / "a_file" / "m.safetensors", "is a file, not a folder"),
    ]:
        argv = ["train", "--data", "digits", "--model", "cvae", "--out", str(out), *TRAIN]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("synthaug: error: ") and text in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv, text",
    [
        (["grid", "{model}", "--out", "{tmp}/fig.png"], "is a folder"),
        (["evaluate", "{model}", "--out", "{tmp}/fig.png"], "end it in .json"),
        (["evaluate", "{model}", "--out", "{tmp}/report.json"], "is a folder"),
        (["info", "{model}", "--plot", "{tmp}/fig.png"], "is a folder"),
        (["sample", "{model}", "--n", "2", "--out", "{tmp}/a_file"], "is a file"),
        (["sample", "{model}", "--n", "2", "--out", "{tmp}/x.dcm"], "--format dicom, e.g."),
        (["sample", "{model}", "--n", "2", "--out", "{tmp}/x.tiff"], "cannot tell the output"),
        (["bench", "{config}", "--out", "{tmp}/a_file", "--quick"], "is a file"),
    ],
)
def test_every_command_checks_its_output_before_working(
    argv, text, model, tmp_path, capsys, monkeypatch
):
    (tmp_path / "fig.png").mkdir()
    (tmp_path / "report.json").mkdir()
    (tmp_path / "a_file").write_text("x")

    def no_work(*args, **kwargs):
        raise AssertionError("loaded the model before checking the output")

    monkeypatch.setattr("synthaug.generators._persistence.read_checkpoint", no_work)
    capsys.readouterr()
    config = Path(synthaug.__file__).parents[1] / "benchmarks" / "digits_imbalanced.toml"
    assert main([a.format(model=model, tmp=tmp_path, config=config) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synthaug: error: ") and text in err and err.count("\n") == 1


def test_an_interrupted_write_leaves_nothing_and_keeps_the_old_output(tmp_path, monkeypatch):
    data = load_digits().subset(range(20))
    out = tmp_path / "pngs"
    save_image_folder(data.subset(range(5)), out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    calls = {"n": 0}
    real_save = Image.Image.save

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_image_folder(data, out, overwrite=True)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert _siblings(out) == ["pngs"]
    with pytest.raises(KeyboardInterrupt):
        calls["n"] = 0
        save_image_folder(data, tmp_path / "new")
    assert not (tmp_path / "new").exists() and _siblings(tmp_path / "new") == []


def test_an_interrupted_npz_or_model_write_keeps_the_old_file(tmp_path, monkeypatch):
    data = load_digits().subset(range(30))
    path = save_npz(data, tmp_path / "d.npz")
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_npz(data.subset(range(3)), path)
    assert path.read_bytes() == before and _siblings(path) == ["d.npz"]
    model = CVAE(epochs=1, hidden_dims=(16,), verbose=False).fit(data)
    monkeypatch.setattr("synthaug.nn._checkpoint.save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save(tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == [path]


def test_library_writers_refuse_to_mix_folders(tmp_path):
    data = load_digits().subset(range(4))
    save_image_folder(data, tmp_path / "png")
    with pytest.raises(DataFileError, match="already holds"):
        save_image_folder(data, tmp_path / "png")
    write_dicom(data, out_dir=tmp_path / "dcm")
    with pytest.raises(DataFileError, match="already holds"):
        write_dicom(data, out_dir=tmp_path / "dcm")
    files = write_dicom(data, out_dir=tmp_path / "dcm", overwrite=True)
    assert all(f.is_file() and f.parent.parent == tmp_path / "dcm" for f in files)
    (tmp_path / "empty").mkdir()
    save_image_folder(data, tmp_path / "empty")  # an empty folder is fine
    assert len(load_image_folder(tmp_path / "empty")) == 4
    (tmp_path / "dir.safetensors").mkdir()
    with pytest.raises(DataFileError, match="is a folder"):
        model = CVAE(epochs=1, verbose=False).fit(load_digits().subset(range(30)))
        model.save(tmp_path / "dir.safetensors")
    with pytest.raises(DataFileError, match="is a folder"):
        save_npz(data, tmp_path / "png")


def test_png_names_must_be_unique_per_class(tmp_path):
    data = load_digits().subset([0, 10])  # both class 0
    assert data.labels.tolist() == [0, 0]
    with pytest.raises(synthaug.errors.InvalidParameterError, match="unique"):
        save_image_folder(data, tmp_path / "x", names=["a", "a"])
    assert not (tmp_path / "x").exists()


def test_check_output_refuses_an_unwritable_place(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):
            with pytest.raises(DataFileError, match="no permission"):
                check_output(locked / "out.npz", folder=False, overwrite=False)
        else:  # running as root: permissions do not bind, so there is nothing to refuse
            assert check_output(locked / "out.npz", folder=False, overwrite=False)
    finally:
        locked.chmod(0o700)
