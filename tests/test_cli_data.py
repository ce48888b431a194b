"""How the commands read ``--data``: DICOM class folders next to digits, ``.npz`` and image
folders, the reading options, skipped files, and the one check that data suits a saved model."""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.data import get_testdata_file

from synthaug.bench import read_results
from synthaug.cli import build_parser, main
from synthaug.data import (
    ImageDataset,
    load_dicom_folder,
    load_npz,
    make_phantoms,
    save_image_folder,
    save_npz,
    write_dicom,
)
from synthaug.generators import CVAE, load

FAST = ["--device", "cpu"]
TINY = ["--epochs", "1", "--param", "hidden_dims=[32]", "--param", "latent_dim=4", "--quiet"]


def fails(argv, capsys, *texts):
    """Run a command that must fail with one ``synthaug: error:`` line holding ``texts``.

    The exit code is only asserted to be non-zero: which failures count as usage errors (2)
    rather than other failures (1) is the entry point's decision, not this module's.
    """
    capsys.readouterr()
    assert main(argv) != 0, argv
    err = capsys.readouterr().err
    assert err.startswith("synthaug: error: ") and err.count("\n") == 1, err
    for text in texts:
        assert text in err, (text, err)
    return err


def usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2, argv
    return capsys.readouterr().err


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """32x32 CT phantom slices written as DICOM: scans/normal/*.dcm (16) and scans/lesion/*.dcm (8)."""
    root = tmp_path_factory.mktemp("data") / "scans"
    write_dicom(make_phantoms((16, 8), size=32, seed=0), out_dir=root, modality="CT")
    return root


@pytest.fixture(scope="module")
def model_path(scans, tmp_path_factory):
    """A tiny CVAE fitted on the train part of the scans read at 16x16, as evaluate splits them."""
    train, _ = load_dicom_folder(scans, size=16).split(0.25, seed=0)
    model = CVAE(epochs=1, hidden_dims=(32,), latent_dim=4, verbose=False, device="cpu")
    return model.fit(train).save(tmp_path_factory.mktemp("model") / "scans.safetensors")


def copy_of(scans, tmp_path):
    return Path(shutil.copytree(scans, tmp_path / "scans"))


# -- DICOM in every command -------------------------------------------------------------------
def test_train_on_a_dicom_folder(scans, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    argv = ["train", "--data", str(scans), "--size", "16", "--model", "cvae", "--out", str(out)]
    assert main([*argv, *TINY, *FAST]) == 0
    assert "trained cvae on 24 samples (lesion: 8, normal: 16)" in capsys.readouterr().out
    model = load(out)
    assert model.sample_shape_ == (1, 16, 16) and model.class_names_ == ["lesion", "normal"]


def test_dicom_files_are_found_by_content_without_a_suffix(tmp_path, capsys):
    # Scanner exports often have no suffix: pydicom's CT and MR test files, renamed.
    for cls, name in [("ct", "CT_small.dcm"), ("mr", "MR_small.dcm")]:
        (tmp_path / "scans" / cls).mkdir(parents=True)
        shutil.copy(get_testdata_file(name), tmp_path / "scans" / cls / Path(name).stem)
    argv = ["train", "--data", str(tmp_path / "scans"), "--size", "16x12", "--model", "cvae"]
    assert main([*argv, "--out", str(tmp_path / "m"), *TINY, *FAST]) == 0
    assert "trained cvae on 2 samples (ct: 1, mr: 1)" in capsys.readouterr().out
    assert load(tmp_path / "m.safetensors").sample_shape_ == (1, 16, 12)


def test_augment_from_a_dicom_folder_with_a_window(scans, model_path, tmp_path, capsys):
    out = tmp_path / "aug.npz"
    argv = ["augment", "--data", str(scans), "--size", "16", "--window", "minmax"]
    assert main([*argv, "--model", str(model_path), "--out", str(out), *FAST]) == 0
    assert "added 8 synthetic samples (lesion: 8)" in capsys.readouterr().out
    aug = load_npz(out)
    assert aug.classes == ["lesion", "normal"] and aug.sample_shape == (1, 16, 16)
    minmax = load_dicom_folder(scans, size=16, window="minmax").images
    # The real rows come first, read with --window minmax, not the files' own window.
    assert not torch.allclose(minmax, load_dicom_folder(scans, size=16).images)
    torch.testing.assert_close(aug.images[:24], minmax)


def test_grid_with_dicom_data(scans, model_path, tmp_path, capsys):
    out = tmp_path / "grid.png"
    argv = ["grid", str(model_path), "--data", str(scans), "--size", "16", "--per-class", "2"]
    assert main([*argv, "--out", str(out), *FAST]) == 0
    assert f"saved a 2 x 2 sample grid to {out}" in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_on_a_dicom_folder(scans, model_path, tmp_path, capsys):
    out = tmp_path / "eval.json"
    argv = ["evaluate", str(model_path), "--data", str(scans), "--size", "16", "--out", str(out)]
    assert main([*argv, "--feature-epochs", "2", *FAST]) == 0
    result = json.loads(out.read_text())
    assert result["data"] == f"{scans} (split test_size=0.25, seed=0)"
    assert (result["n_train"], result["n_test"]) == (18, 6)
    # The model was fitted on the same train part: same class counts, no warning.
    assert result["warnings"] == [] and "fd" in result["fidelity"]


def test_bench_reads_a_dicom_folder_from_its_config(scans, tmp_path, capsys):
    config = tmp_path / "dicom.toml"
    config.write_text(
        f"""
seeds = 1
[dataset]
name = "dicom"
root = "{scans.resolve().as_posix()}"
size = 16
[imbalance]
counts = [[2, 4]]
[classifiers]
logreg = {{ max_iter = 100 }}
[methods]
none = {{}}
"""
    )
    assert main(["bench", str(config), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert "dicom, counts=2/4, logreg" in capsys.readouterr().out
    [record] = read_results(tmp_path / "out" / "results.jsonl")
    assert record["cell"]["dataset"]["name"] == "dicom"
    assert record["metrics"]["n_train_real"] == 6


# -- DICOM out: the modality, and where the pixels come from -----------------------------------
def _scanner_folder(tmp_path, classes):
    """pydicom's real CT and MR test files, ``{class: [file name, ...]}``, as class folders."""
    root = tmp_path / "scanner"
    for cls, names in classes.items():
        (root / cls).mkdir(parents=True)
        for i, name in enumerate(names):
            shutil.copy(get_testdata_file(name), root / cls / f"{i}_{name}")
    return root


def _read_all(folder):
    return [pydicom.dcmread(f) for f in sorted(folder.glob("*/*.dcm"))]


def test_generated_dicom_carries_the_modality_of_ct_input(tmp_path, capsys):
    root = _scanner_folder(tmp_path, {"a": ["CT_small.dcm"] * 3, "b": ["CT_small.dcm"] * 2})
    data = load_dicom_folder(root, size=16)
    model = CVAE(epochs=1, hidden_dims=(16,), latent_dim=2, verbose=False, device="cpu")
    path = model.fit(data).save(tmp_path / "ct.safetensors")
    argv = ["augment", "--data", str(root), "--size", "16", "--model", str(path), *FAST]
    argv += ["--format", "dicom", "--synthetic-only"]
    assert main([*argv, "--out", str(tmp_path / "ct")]) == 0
    (ds,) = _read_all(tmp_path / "ct")  # class b topped up by one
    assert ds.Modality == "CT" and ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    # A generator's samples keep the synthetic marking.
    assert ds.ConversionType == "SYN" and ds.PatientIdentityRemoved == "YES"
    assert ds.SeriesDescription.startswith("SYNTHETIC") and "DerivationDescription" not in ds
    assert main([*argv, "--out", str(tmp_path / "mr"), "--modality", "mr"]) == 0
    assert [ds.Modality for ds in _read_all(tmp_path / "mr")] == ["MR"]
    # sample has no input data: OT, unless --modality says.
    out = tmp_path / "sampled"
    argv = ["sample", str(path), "--n", "2", "--format", "dicom", "--out", str(out), *FAST]
    assert main([*argv, "--modality", "CT"]) == 0
    assert [ds.Modality for ds in _read_all(out)] == ["CT", "CT"]


def test_real_pixels_from_dicom_input_are_written_derived_with_their_study(tmp_path, capsys):
    root = _scanner_folder(tmp_path, {"a": ["CT_small.dcm"] * 2, "b": ["CT_small.dcm"]})
    study = pydicom.dcmread(get_testdata_file("CT_small.dcm")).StudyInstanceUID
    out = tmp_path / "out"
    argv = ["augment", "--data", str(root), "--size", "16", "--source", "random-oversampling"]
    argv += ["--format", "dicom", "--synthetic-only", "--out", str(out), *FAST]
    fails(argv, capsys, "--source random-oversampling keeps real pixels", "--allow-real-pixels")
    assert not out.exists()
    assert main([*argv, "--allow-real-pixels"]) == 0
    assert "marked derived from patient images, not synthetic" in capsys.readouterr().out
    (ds,) = _read_all(out)
    assert ds.Modality == "CT" and ds.ConversionType == "WSD"
    assert ds.PatientIdentityRemoved == "NO" and "not de-identified" in ds.DeidentificationMethod
    assert "random-oversampling" in ds.DerivationDescription
    assert ds.DerivationDescription.endswith(f"of 1 study, Study Instance UID: {study}")


def test_mixed_modalities_are_refused_unless_modality_names_one(tmp_path, capsys):
    root = _scanner_folder(tmp_path, {"ct": ["CT_small.dcm"] * 2, "mr": ["MR_small.dcm"]})
    out = tmp_path / "out"
    argv = ["augment", "--data", str(root), "--size", "16", "--source", "random-oversampling"]
    argv += ["--format", "dicom", "--synthetic-only", "--allow-real-pixels", *FAST]
    fails([*argv, "--out", str(out)], capsys, "mixes modalities (CT, MR)", "--modality")
    assert not out.exists()
    assert main([*argv, "--out", str(out), "--modality", "OT"]) == 0
    assert [ds.Modality for ds in _read_all(out)] == ["OT"]
    # Mixed modalities do not matter to a format without a Modality.
    argv = ["augment", "--data", str(root), "--size", "16", "--source", "random-oversampling"]
    assert main([*argv, "--out", str(tmp_path / "aug.npz"), *FAST]) == 0


def test_modality_and_allow_real_pixels_are_refused_where_they_do_nothing(
    scans, model_path, tmp_path, capsys
):
    augment = ["augment", "--data", str(scans), "--size", "16", *FAST]
    npz = ["--out", str(tmp_path / "a.npz")]
    dicom = ["--out", str(tmp_path / "d"), "--format", "dicom", "--synthetic-only"]
    err = usage_error([*augment, "--model", str(model_path), *npz, "--modality", "CT"], capsys)
    assert "--modality sets the Modality of DICOM files; --format npz has none" in err
    err = usage_error([*augment, "--source", "copy-paste", *npz, "--allow-real-pixels"], capsys)
    assert "--allow-real-pixels lets --format dicom write images derived from patient" in err
    fails(
        [*augment, "--model", str(model_path), *dicom, "--allow-real-pixels"],
        capsys,
        f"--model {model_path} generates new images, written marked synthetic",
    )
    sample = ["sample", str(model_path), "--n", "2", "--out", str(tmp_path / "s.npz")]
    assert "--format npz has none" in usage_error([*sample, "--modality", "CT"], capsys)
    assert "DICOM modality code" in usage_error([*sample, "--modality", "C1"], capsys)
    release = ["release", str(model_path), "--n", "2", "--out", str(tmp_path / "r")]
    assert "--format npz has none" in usage_error([*release, "--modality", "CT"], capsys)
    assert not any(tmp_path.iterdir())


# -- bad files, mixed folders -----------------------------------------------------------------
def test_a_truncated_file_stops_the_command_or_is_skipped(scans, tmp_path, monkeypatch, capsys):
    # pytest's log handlers sit on the root logger; without them a warning goes to logging's
    # last-resort stderr handler, as in a real run of the command.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    root = copy_of(scans, tmp_path)
    good = sorted((root / "lesion").glob("*.dcm"))[0].read_bytes()
    (root / "lesion" / "broken.dcm").write_bytes(good[: len(good) // 2])
    argv = ["train", "--data", str(root), "--size", "16", "--model", "cvae", "--out"]
    argv = [*argv, str(tmp_path / "m"), *TINY, *FAST]
    fails(argv, capsys, f"cannot use DICOM file '{root / 'lesion' / 'broken.dcm'}'")
    assert not (tmp_path / "m.safetensors").exists()

    for i in range(3):
        (root / "normal" / f"notes{i}.txt").write_text("not an image")
    assert main([*argv, "--on-error", "skip"]) == 0
    captured = capsys.readouterr()
    assert "trained cvae on 24 samples (lesion: 8, normal: 16)" in captured.out
    # One summary line, not one logging line per file; the tiny model's blank samples are
    # said on a warning line of their own.
    lines = captured.err.splitlines()
    warned = [line for line in lines if line.startswith("synthaug: warning: ")]
    assert all("samples nearly blank images" in line for line in warned), warned
    [summary] = [line for line in lines if line not in warned]
    assert "skipping DICOM file" not in captured.err
    assert summary.startswith(
        f"synthaug: skipped 4 of 28 DICOM files under {root} (--on-error skip): lesion/broken.dcm ("
    )
    assert "normal/notes0.txt (not a DICOM file" in summary
    assert "normal/notes2.txt" not in summary and summary.endswith("; and 1 more")


def test_a_folder_mixing_images_and_dicom_is_refused(scans, tmp_path, capsys):
    root = copy_of(scans, tmp_path)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "normal" / "extra.png")
    argv = ["train", "--data", str(root), "--model", "cvae", "--out", str(tmp_path / "m")]
    fails([*argv, *TINY, *FAST], capsys, "mixes image files", "extra.png", ".dcm", "one kind")


def test_folders_without_classes_or_files_are_refused(tmp_path, capsys):
    argv = ["train", "--model", "cvae", "--out", str(tmp_path / "m"), *TINY, *FAST]
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path)
    fails([*argv, "--data", str(tmp_path)], capsys, "no class subfolders", "DICOM files")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("x")
    fails(
        [*argv, "--data", str(tmp_path)], capsys, "no images (.jpg, .jpeg, .png", "or DICOM files"
    )


# -- the reading options ----------------------------------------------------------------------
def test_size_resizes_image_folders_too(tiny_images, tmp_path, capsys):
    save_image_folder(tiny_images, tmp_path / "pngs")
    argv = ["train", "--data", str(tmp_path / "pngs"), "--size", "4x6", "--model", "cvae"]
    assert main([*argv, "--out", str(tmp_path / "m"), *TINY, *FAST]) == 0
    assert load(tmp_path / "m.safetensors").sample_shape_ == (1, 4, 6)


def test_options_that_do_not_apply_are_refused(tiny_images, tmp_path, capsys):
    save_image_folder(tiny_images, tmp_path / "pngs")
    save_npz(tiny_images, tmp_path / "tiny.npz")
    argv = ["train", "--model", "cvae", "--out", str(tmp_path / "m"), *TINY, *FAST]
    fails([*argv, "--data", "digits", "--size", "16"], capsys, "--size does not apply to digits")
    fails(
        [*argv, "--data", str(tmp_path / "tiny.npz"), "--size", "8", "--window", "auto"],
        capsys,
        "--size and --window do not apply",
    )
    pngs = str(tmp_path / "pngs")
    fails([*argv, "--data", pngs, "--on-error", "skip"], capsys, "--on-error does not apply")
    fails([*argv, "--data", pngs, "--window", "40,400"], capsys, "a folder of images")
    assert not (tmp_path / "m.safetensors").exists()


def test_size_and_window_values(capsys):
    parser = build_parser()
    base = ["grid", "m.safetensors", "--out", "g.png", "--data", "scans"]
    args = parser.parse_args([*base, "--size", "16x24", "--window=-600,1500"])
    assert args.size == (16, 24) and args.window == (-600.0, 1500.0)
    args = parser.parse_args([*base, "--size", "16", "--window", "minmax", "--on-error", "skip"])
    assert (args.size, args.window, args.on_error) == ((16, 16), "minmax", "skip")
    for bad in (["--size", "0"], ["--size", "3x"], ["--size", "axb"], ["--size", "2x3x4"]):
        assert "must be N or HxW" in usage_error([*base, *bad], capsys), bad
    for bad in (["--window", "bone"], ["--window", "40"], ["--window", "40,400,1"]):
        assert "auto, minmax or CENTER,WIDTH" in usage_error([*base, *bad], capsys), bad
    assert "WIDTH must be >= 1" in usage_error([*base, "--window", "40,0"], capsys)
    assert "invalid choice" in usage_error([*base, "--on-error", "ignore"], capsys)


def test_evaluate_help_describes_folders_of_images_and_dicom(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "a folder with one subfolder per class holding images (PNG, JPEG, ...) or DICOM" in text
    assert "test_images/test_labels" in text and "X/y" not in text
    assert "--window" in text and "--on-error" in text and "--split " not in text


# -- data that does not fit the model ----------------------------------------------------------
def _never_sample(*args, **kwargs):
    raise AssertionError("sampled before the data was checked")


def _argv(command, model, data, tmp_path):
    if command == "grid":
        return ["grid", model, "--data", data, "--out", str(tmp_path / "g.png"), *FAST]
    if command == "augment":
        return ["augment", "--data", data, "--model", model, "--out", str(tmp_path / "a.npz")]
    return ["evaluate", model, "--data", data, "--out", str(tmp_path / "e.json"), *FAST]


@pytest.mark.parametrize("command", ["grid", "augment", "evaluate"])
def test_data_of_another_shape_or_class_order_is_refused_before_sampling(
    command, scans, model_path, tmp_path, monkeypatch, capsys
):
    model = load(model_path)
    monkeypatch.setattr(model, "sample", _never_sample)
    monkeypatch.setattr(f"synthaug.cli._{command}.load", lambda path, device="auto": model)
    # The scans at load_dicom_folder's default 64x64, not the 16x16 the model was fitted at.
    fails(
        _argv(command, "m.safetensors", str(scans), tmp_path),
        capsys,
        "the model makes samples of shape (1, 16, 16) but ",
        "has (1, 64, 64); give the data it was trained on",
    )
    # The same classes in another order: the model's label 0 is "normal", the folder's "lesion".
    phantoms = make_phantoms((6, 6), size=16, seed=1)
    assert phantoms.classes == ["normal", "lesion"]
    other = CVAE(epochs=1, hidden_dims=(16,), verbose=False, device="cpu").fit(phantoms)
    monkeypatch.setattr(other, "sample", _never_sample)
    monkeypatch.setattr(f"synthaug.cli._{command}.load", lambda path, device="auto": other)
    fails(
        [*_argv(command, "m.safetensors", str(scans), tmp_path), "--size", "16"],
        capsys,
        "the model knows classes ['normal', 'lesion'] but ",
        "has ['lesion', 'normal']; give data with the same classes in the same order",
    )
    assert not any(tmp_path.iterdir())


def test_grid_refuses_digits_for_a_model_of_other_images(scans, model_path, tmp_path, capsys):
    out = tmp_path / "grid.png"
    argv = ["grid", str(model_path), "--data", "digits", "--out", str(out), *FAST]
    fails(argv, capsys, "samples of shape (1, 16, 16) but digits has (1, 8, 8)")
    # Same 8x8 shape as digits but other classes.
    g = torch.Generator().manual_seed(0)
    letters = ImageDataset(
        torch.rand(12, 1, 8, 8, generator=g), torch.arange(3).repeat(4), list("abc")
    )
    path = (
        CVAE(epochs=1, hidden_dims=(16,), verbose=False, device="cpu")
        .fit(letters)
        .save(tmp_path / "letters.safetensors")
    )
    argv = ["grid", str(path), "--data", "digits", "--out", str(out), *FAST]
    fails(argv, capsys, "the model knows classes ['a', 'b', 'c'] but digits has ['0', '1',")
    assert not out.exists()
