"""``synthaug make-data``: registered data sets written as files the other commands read."""

from __future__ import annotations

import csv

import numpy as np
import pydicom
import pytest
import torch

from synthaug.cli import main
from synthaug.cli._files import read_data
from synthaug.cli._make_data import DRAWN_IN_CODE
from synthaug.data import DATASETS, load_digits, load_npz, make_phantoms

PHANTOMS = ["--param", "n_per_class=[6,3]", "--param", "size=16"]


def manifest(folder):
    with open(folder / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_digits_npz_is_the_digits(tmp_path, capsys):
    assert main(["make-data", "digits", "--out", str(tmp_path / "d.npz")]) == 0
    assert "wrote 1797 digits images" in capsys.readouterr().out
    made, digits = load_npz(tmp_path / "d.npz"), load_digits()
    assert made.classes == digits.classes
    assert torch.equal(made.labels, digits.labels)
    assert torch.allclose(made.images, digits.images)


def test_phantoms_npz_with_masks_follow_the_parameters(tmp_path):
    out = tmp_path / "brain.npz"
    argv = ["make-data", "phantoms", *PHANTOMS, "--param", "kind=brain", "--param", "seed=3"]
    assert main([*argv, "--masks", "--out", str(out)]) == 0
    expected, masks = make_phantoms((6, 3), size=16, kind="brain", seed=3, return_masks=True)
    made = load_npz(out)
    assert made.class_counts() == {0: 6, 1: 3} and made.classes == ["normal", "lesion"]
    assert torch.allclose(made.images, expected.images)
    with np.load(out) as npz:
        assert np.array_equal(npz["train_masks"], masks.numpy())
        assert "train_synthetic" not in npz  # a plain data set, nothing mixed


def test_phantoms_as_dicom_read_back_marked_synthetic(tmp_path, capsys):
    out = tmp_path / "scans"
    argv = ["make-data", "phantoms", *PHANTOMS, "--out", str(out), "--format", "dicom", "--masks"]
    assert main(argv) == 0
    assert "[dicom, Modality CT]" in capsys.readouterr().out
    back = read_data(str(out), size=(16, 16))
    # A folder's classes are its sorted subfolders.
    assert {back.classes[c]: n for c, n in back.class_counts().items()} == {
        "lesion": 3,
        "normal": 6,
    }
    first = next((out / "lesion").glob("*.dcm"))
    ds = pydicom.dcmread(first)
    assert ds.Modality == "CT" and ds.ConversionType == "SYN"
    assert {row["synthetic"] for row in manifest(out)} == {"yes"}
    assert len(list((out / "segmentations").glob("*.dcm"))) == 3  # one per lesion image
    brain = tmp_path / "brain"
    argv = ["make-data", "phantoms", *PHANTOMS, "--param", "kind=brain", "--format", "dicom"]
    assert main([*argv, "--out", str(brain)]) == 0
    assert pydicom.dcmread(next((brain / "normal").glob("*.dcm"))).Modality == "MR"


def test_digits_as_png_are_marked_real(tmp_path):
    assert main(["make-data", "digits", "--out", str(tmp_path / "pngs")]) == 0
    rows = manifest(tmp_path / "pngs")
    assert len(rows) == 1797 and {row["synthetic"] for row in rows} == {"no"}


def test_refusals_write_nothing(tmp_path, capsys):
    out = str(tmp_path / "x")
    failing = [
        # digits are real handwriting: DICOM would mark them generated
        (["make-data", "digits", "--out", out, "--format", "dicom"], "holds real images"),
        (["make-data", "digits", "--out", out + ".npz", "--masks"], "no lesion masks"),
        (["make-data", "phantoms", "--out", out + ".npz"], "n_per_class"),
        (["make-data", "phantoms", *PHANTOMS, "--param", "kind=knee", "--out", out], "kind"),
    ]
    for argv, text in failing:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("synthaug: error: ") and err.count("\n") == 1, err
        assert text in err, err
    usage = [
        (["make-data", "nope", "--out", out], "argument NAME: invalid choice: 'nope'"),
        (["make-data", "phantoms", *PHANTOMS, "--masks", "--out", out], "--masks has no place"),
        (["make-data", "digits", "--out", out + ".npz", "--modality", "CT"], "--modality"),
        (["make-data", "--out", out], "required: NAME"),
    ]
    for argv, text in usage:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv
        assert text in capsys.readouterr().err, argv
    assert not list(tmp_path.iterdir())


def test_an_existing_output_needs_overwrite(tmp_path, capsys):
    out = str(tmp_path / "d.npz")
    assert main(["make-data", "digits", "--out", out]) == 0
    assert main(["make-data", "digits", "--out", out]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["make-data", "digits", "--out", out, "--overwrite"]) == 0


def test_the_data_sets_drawn_in_code_are_registered():
    assert set(DRAWN_IN_CODE) <= set(DATASETS.list())
