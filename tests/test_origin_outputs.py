"""Every output says which items are real, synthetic or derived from real training images: the
.npz arrays, the PNG and DICOM manifests, the DICOM marking and references, the release card;
for a generator, a source that keeps real pixels, and a model that samples stored exemplars."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from synthaug.augment import CopyPaste
from synthaug.cli import main
from synthaug.data import load_dicom_folder, load_digits, make_phantoms, save_npz
from synthaug.generators import CVAE, DAGAN

FAST = ["--device", "cpu"]


def _manifest(folder):
    with open(folder / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def fails(argv, capsys, *texts):
    """A command that stops with one ``synthaug: error:`` line holding ``texts``."""
    capsys.readouterr()
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith("synthaug: error: ") and err.count("\n") == 1, err
    for text in texts:
        assert text in err, (text, err)


def usage_error(argv, capsys, text):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert text in capsys.readouterr().err


@pytest.fixture(scope="module")
def digits_part():
    digits = load_digits()
    return digits.subset(np.flatnonzero(digits.labels.numpy() < 3)[:60])


@pytest.fixture(scope="module")
def digits_npz(digits_part, tmp_path_factory):
    return save_npz(digits_part, tmp_path_factory.mktemp("data") / "digits.npz")


@pytest.fixture(scope="module")
def models(digits_part, tmp_path_factory):
    """A tiny CVAE (synthetic samples) and a tiny DAGAN (variants of its stored images)."""
    folder = tmp_path_factory.mktemp("models")
    small = {"epochs": 1, "hidden_dims": (16,), "verbose": False, "device": "cpu"}
    cvae = CVAE(latent_dim=2, **small).fit(digits_part).save(folder / "cvae.safetensors")
    dagan = DAGAN(noise_dim=2, **small).fit(digits_part).save(folder / "dagan.safetensors")
    return {"cvae": cvae, "dagan": dagan}


@pytest.fixture(scope="module")
def scanner(tmp_path_factory):
    """pydicom's CT test file, 3 times in class a and once in class b."""
    root = tmp_path_factory.mktemp("scanner")
    for cls, n in (("a", 3), ("b", 1)):
        (root / cls).mkdir()
        for i in range(n):
            shutil.copy(get_testdata_file("CT_small.dcm"), root / cls / f"{i}.dcm")
    return root


# -- a source that keeps real pixels: every format says derived -------------------------------
def test_real_pixel_rows_are_derived_in_npz_and_png(scanner, tmp_path, capsys):
    argv = ["augment", "--data", str(scanner), "--size", "16", "--source", "random-oversampling"]
    assert main([*argv, "--out", str(tmp_path / "a.npz"), *FAST]) == 0
    assert "added 2 derived samples (b: 2): --source random-oversampling makes them" in (
        capsys.readouterr().out
    )
    with np.load(tmp_path / "a.npz") as f:
        assert f["train_origin"].tolist() == ["real"] * 4 + ["derived"] * 2
        assert not f["train_synthetic"].any()  # copies of real scans are not synthetic
        assert f["train_derived"].tolist() == [False] * 4 + [True] * 2
    out = tmp_path / "png"
    assert main([*argv, "--out", str(out), *FAST]) == 0
    rows = _manifest(out)
    assert [r["origin"] for r in rows] == ["real"] * 4 + ["derived"] * 2
    for row in rows[4:]:
        assert row["synthetic"] == "no" and row["file"].startswith("b/derived_")
        # A copy of the one scan of class b, named by its file.
        assert row["made_from"] == f"image={scanner / 'b' / '0.dcm'}" and row["source"] == ""
    assert all(r["source"].endswith(".dcm") and r["made_from"] == "" for r in rows[:4])


def test_real_pixel_dicom_references_the_scan_each_file_was_made_from(scanner, tmp_path):
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    out = tmp_path / "dicom"
    argv = ["augment", "--data", str(scanner), "--size", "16", "--source", "classical"]
    argv += ["--format", "dicom", "--synthetic-only", "--allow-real-pixels", "--out", str(out)]
    assert main([*argv, *FAST]) == 0
    files = sorted(out.glob("b/*.dcm"))
    assert len(files) == 2
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.ConversionType == "WSD" and ds.PatientIdentityRemoved == "NO"
        (ref,) = ds.SourceImageSequence
        assert ref.ReferencedSOPClassUID == ct.SOPClassUID
        assert ref.ReferencedSOPInstanceUID == ct.SOPInstanceUID
        assert [c.CodeValue for c in ds.DerivationCodeSequence] == ["113085"]  # the affine warp
        assert ds.DerivationDescription.startswith(
            "made by synthaug augment --source classical from real training images; a real "
            "training image with random affine jitter and noise; the patient images are of 1 "
            f"study, Study Instance UID: {ct.StudyInstanceUID}"
        )
    rows = _manifest(out)
    assert {r["origin"] for r in rows} == {"derived"} and {r["synthetic"] for r in rows} == {"no"}


# -- a model that samples its stored training images ------------------------------------------
def test_an_exemplar_models_samples_are_derived_in_npz_and_png(models, tmp_path, capsys):
    sample = ["sample", str(models["dagan"]), "--n", "4", *FAST]
    assert main([*sample, "--out", str(tmp_path / "s.npz")]) == 0
    assert "derived from patient images, not synthetic: dagan: a network's variant" in (
        capsys.readouterr().out
    )
    with np.load(tmp_path / "s.npz") as f:
        assert f["train_origin"].tolist() == ["derived"] * 4 and not f["train_synthetic"].any()
    assert main([*sample, "--out", str(tmp_path / "png")]) == 0
    rows = _manifest(tmp_path / "png")
    assert [r["origin"] for r in rows] == ["derived"] * 4
    assert all(r["file"].split("/")[1].startswith("derived_") for r in rows)
    assert all(r["synthetic"] == "no" and r["made_from"] == "" for r in rows)  # items unknown
    # A generator's samples stay synthetic.
    assert main(["sample", str(models["cvae"]), "--n", "3", "--out", str(tmp_path / "c.npz")]) == 0
    with np.load(tmp_path / "c.npz") as f:
        assert f["train_origin"].tolist() == ["synthetic"] * 3 and f["train_synthetic"].all()
        assert not f["train_derived"].any()


def test_an_exemplar_models_dicom_needs_allow_exemplars_and_is_derived(
    models, digits_npz, tmp_path, capsys
):
    out = tmp_path / "dcm"
    sample = ["sample", str(models["dagan"]), "--n", "3", "--format", "dicom", "--out", str(out)]
    fails([*sample, *FAST], capsys, "each sample is a variant of one of them", "--allow-exemplars")
    assert not out.exists()
    assert main([*sample, "--allow-exemplars", *FAST]) == 0
    for path in sorted(out.glob("*/*.dcm")):
        ds = pydicom.dcmread(path)
        assert path.name.startswith("derived_") and ds.ConversionType == "WSD"
        assert ds.PatientIdentityRemoved == "NO" and "SourceImageSequence" not in ds
        # The file names the model file, not its folders, and knows no study.
        assert ds.DerivationDescription.startswith(
            "made by synthaug sample from dagan model dagan.safetensors; dagan: a network's "
            "variant of one of its stored training images"
        )
        assert ds.DerivationDescription.endswith(
            "the studies of the patient images are unknown to synthaug"
        )
        assert str(models["dagan"].parent) not in ds.DerivationDescription
    # augment --model: the same refusal and marking.
    augment = ["augment", "--data", str(digits_npz), "--model", str(models["dagan"]), *FAST]
    assert (
        main([*augment, "--out", str(tmp_path / "r.npz"), "--strategy", "ratio", "--ratio", "0.1"])
        == 0
    )
    with np.load(tmp_path / "r.npz") as f:
        assert f["train_origin"].tolist() == ["real"] * 60 + ["derived"] * 6
        assert not f["train_synthetic"].any()
    augment += ["--format", "dicom", "--synthetic-only", "--out", str(tmp_path / "aug")]
    augment += ["--strategy", "ratio", "--ratio", "0.1"]
    fails(augment, capsys, f"--model {models['dagan']} stores training images", "--allow-exemplars")
    assert main([*augment, "--allow-exemplars"]) == 0
    rows = _manifest(tmp_path / "aug")
    assert len(rows) == 6 and {r["origin"] for r in rows} == {"derived"}


def test_each_allow_flag_is_refused_where_it_allows_nothing(models, tmp_path, capsys):
    dicom = ["--format", "dicom", "--out", str(tmp_path / "d"), *FAST]
    cvae, dagan = str(models["cvae"]), str(models["dagan"])
    fails(
        ["sample", cvae, "--n", "2", *dicom, "--allow-exemplars"], capsys, "drop --allow-exemplars"
    )
    augment = ["augment", "--data", "digits", "--synthetic-only", *dicom]
    fails(
        [*augment, "--model", dagan, "--allow-real-pixels"],
        capsys,
        "--allow-real-pixels is for sources whose samples are real pixels",
        "use --allow-exemplars instead",
    )
    fails(
        [*augment, "--source", "smote", "--allow-exemplars"],
        capsys,
        "--allow-exemplars is for models whose samples are variants",
        "use --allow-real-pixels instead",
    )
    npz = ["--out", str(tmp_path / "s.npz")]
    usage_error(["sample", dagan, "--n", "2", *npz, "--allow-exemplars"], capsys, "other formats")
    usage_error(
        ["augment", "--data", "digits", "--model", dagan, *npz, "--allow-exemplars"],
        capsys,
        "--allow-exemplars lets --format dicom write images derived from patient images",
    )
    assert not any(tmp_path.iterdir())


def test_a_release_of_an_exemplar_model_says_derived_in_card_and_files(
    digits_npz, tmp_path, capsys
):
    model = tmp_path / "dagan.safetensors"
    train = ["train", "--data", str(digits_npz), "--model", "dagan", "--epochs", "1", "--quiet"]
    train += ["--param", "hidden_dims=[16]", "--holdout", "0.25", "--out", str(model), *FAST]
    assert main(train) == 0
    out = tmp_path / "rel"
    argv = ["release", str(model), "--n", "12", "--out", str(out), "--format", "dicom"]
    argv += ["--allow-exemplars", "--feature-epochs", "1", "--classifier-epochs", "1", "--quiet"]
    assert main([*argv, *FAST]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["release"]["origin"] == "derived"
    assert card["release"]["how"].startswith("dagan: a network's variant")
    text = (out / "DATA_CARD.md").read_text()
    assert text.startswith("# Data card: samples derived from training images")
    assert "**Every item is derived from patient images, not synthetic**" in text
    assert "Every item is generated" not in text
    files = sorted((out / "dicom").glob("*/*.dcm"))
    assert len(files) == 12 and all(f.name.startswith("derived_") for f in files)
    assert {pydicom.dcmread(f).ConversionType for f in files} == {"WSD"}
    assert load_dicom_folder(out / "dicom", size=8).classes  # still reads back


def test_rows_of_input_without_files_are_named_by_their_index(digits_npz, digits_part, tmp_path):
    out = tmp_path / "png"
    argv = ["augment", "--data", str(digits_npz), "--source", "random-oversampling"]
    assert main([*argv, "--out", str(out), *FAST]) == 0
    added = [r for r in _manifest(out) if r["origin"] == "derived"]
    assert len(added) == 3  # classes of 19 and 20 topped up to 21
    for row in added:
        role, ref = row["made_from"].split("=")
        index = int(ref.removeprefix("#"))
        assert (
            role == "image" and digits_part.classes[int(digits_part.labels[index])] == row["class"]
        )


def test_a_grid_of_variants_of_stored_images_is_not_titled_synthetic(models, tmp_path, monkeypatch):
    titles = []

    def record(real, images, labels, out, **options):
        titles.append(options["title"])
        return out

    # Wherever the command finds the function (imported at the top, or when it runs).
    monkeypatch.setattr("synthaug.bench.save_sample_grid", record)
    monkeypatch.setattr("synthaug.cli._grid.save_sample_grid", record, raising=False)
    for name in ("dagan", "cvae"):
        argv = ["grid", str(models[name]), "--out", str(tmp_path / f"{name}.png"), *FAST]
        assert main([*argv, "--per-class", "2"]) == 0
    assert titles == ["derived samples", "synthetic samples"]


def test_a_saved_lesion_source_samples_derived_files_with_allow_real_pixels(tmp_path, capsys):
    data, masks = make_phantoms(
        (12, 4), size=32, seed=4, return_masks=True, lesion_radius=(0.07, 0.09)
    )
    path = CopyPaste(device="cpu").fit(data, masks=masks).save(tmp_path / "cp.safetensors")
    out = tmp_path / "dcm"
    argv = ["sample", str(path), "--n", "2", "--class", "lesion", "--format", "dicom"]
    argv += ["--out", str(out), *FAST]
    fails(argv, capsys, "keeps real pixels", "pass --allow-real-pixels")
    fails([*argv, "--allow-exemplars"], capsys, "use --allow-real-pixels instead")
    assert main([*argv, "--allow-real-pixels"]) == 0
    files = sorted(out.glob("lesion/*.dcm"))
    assert len(files) == 2 and all(f.name.startswith("derived_") for f in files)
    for ds in map(pydicom.dcmread, files):
        # A saved source does not keep its training rows: no scan to reference, said so.
        assert ds.ConversionType == "WSD" and "SourceImageSequence" not in ds
        assert [c.CodeValue for c in ds.DerivationCodeSequence] == ["113085", "113042"]
        assert ds.DerivationDescription.endswith("unknown to synthaug")
    assert (
        main(
            [
                "sample",
                str(path),
                "--n",
                "2",
                "--class",
                "lesion",
                "--out",
                str(tmp_path / "s.npz"),
                *FAST,
            ]
        )
        == 0
    )
    with np.load(tmp_path / "s.npz") as f:
        assert f["train_origin"].tolist() == ["derived"] * 2
