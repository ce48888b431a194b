"""The lesion grid: kinds x lesion counts, the lesion sources through the harness, the CLI."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import torch

from synthaug.bench import load_config, parse_config, read_results, run_bench
from synthaug.bench._runner import fit_groups
from synthaug.cli import main
from synthaug.data import (
    load_dicom_folder,
    load_npz,
    make_phantoms,
    read_dicom_seg,
    save_npz,
    write_dicom,
)
from synthaug.errors import InvalidParameterError


def quiet(*_):
    pass


def lesion_config(**over):
    data = {
        "name": "tiny-lesions",
        "task": "lesion",
        "seeds": 1,
        "device": "cpu",
        "baselines": ["balanced"],
        "dataset": {"name": "phantoms", "size": 32},
        "lesion": {
            "kinds": ["chest", "brain"],
            "n_normal": 30,
            "n_lesion": [3, 4],
            "n_test_per_class": 8,
            "classifier_size": 16,
            "dicom": False,
        },
        "classifiers": {"maxpool-cnn": {"steps": 3}},
        "methods": {"balanced": {}, "copy-paste": {}, "full-data": {}},
    }
    data.update(over)
    return data


def test_kinds_and_lesion_counts_make_one_setting_each():
    cfg = parse_config(lesion_config())
    labels = [s["label"] for s in cfg.settings]
    assert labels == [
        "chest lesions=3/33",
        "chest lesions=4/34",
        "brain lesions=3/33",
        "brain lesions=4/34",
    ]
    assert [s["lesion"]["kind"] for s in cfg.settings] == ["chest", "chest", "brain", "brain"]


@pytest.mark.parametrize(
    "change, where",
    [
        ({"kinds": ["knee"]}, "lesion.kinds"),
        ({"kinds": []}, "lesion.kinds"),
        ({"n_lesion": [1]}, "lesion.n_lesion"),
        ({"n_lesion": 0}, "lesion.n_lesion"),
        ({"n_normal": 1}, "lesion.n_normal"),
        ({"lesion_fraction": 0.1}, "lesion.lesion_fraction"),
    ],
)
def test_bad_lesion_settings_name_the_key(change, where):
    data = lesion_config()
    data["lesion"].update(change)
    with pytest.raises(InvalidParameterError, match=where):
        parse_config(data)


def test_the_loader_masks_are_the_tasks_to_ask_for():
    data = lesion_config()
    data["dataset"]["return_masks"] = True
    with pytest.raises(InvalidParameterError, match="dataset.return_masks"):
        parse_config(data)


def test_lesion_sources_of_one_cell_data_run_together():
    cfg = parse_config(
        lesion_config(
            methods={
                "balanced": {},
                "copy-paste": {},
                "lesion-transplant": {"epochs": 1},
                "lesion-transplant+balanced-online": {"lesion-transplant": {"epochs": 1}},
            }
        )
    )
    batches = [sorted(c.method for c in b) for b in fit_groups(cfg.cells())]
    together = ["copy-paste", "lesion-transplant", "lesion-transplant+balanced-online"]
    assert batches.count(together) == len(cfg.settings)
    assert batches.count(["balanced"]) == len(cfg.settings)


def test_lesion_grid_end_to_end_scores_localisation_and_the_ceiling(tmp_path, one_torch_thread):
    data = lesion_config()
    data["lesion"].update(kinds=["chest"], n_lesion=[4])
    cfg = parse_config(data)
    run_bench(cfg, tmp_path, progress=False, echo=quiet)
    results = {r["cell"]["method"]: r for r in read_results(tmp_path / "results.jsonl")}
    assert set(results) == {"balanced", "copy-paste", "full-data"}
    for r in results.values():
        assert 0 <= r["metrics"]["sensitivity_at_90_specificity"] <= 1
    paste = results["copy-paste"]["metrics"]
    assert 0 < paste["localisation_dice"] <= 1
    assert paste["n_train_synthetic"] == 26  # 4 lesion slices topped up to 30
    assert "localisation_dice" not in results["balanced"]["metrics"]
    # The ceiling trains on as many lesion slices as normal ones, and adds nothing.
    assert results["full-data"]["metrics"]["n_train_synthetic"] == 0
    report = (tmp_path / "report.md").read_text()
    assert "localisation_dice" in report and "copy-paste" in report


def test_shipped_lesion_grids_parse():
    for path, n_settings in (
        ("benchmarks/phantoms_lesions.toml", 2),
        ("benchmarks/tuning/phantoms_lesions.toml", 4),
    ):
        cfg = load_config(path)
        assert len(cfg.settings) == n_settings
        assert {"copy-paste", "lesion-transplant", "classical"} <= set(cfg.methods)
    cfg = load_config("benchmarks/phantoms_lesions.toml")
    assert cfg.seeds == list(range(10))
    assert {"none", "balanced", "cgan", "full-data"} <= set(cfg.methods)
    assert len(load_config("benchmarks/phantoms_lesions.toml", quick=True).cells()) == 9


# -- the command line ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def phantom_npz(tmp_path_factory):
    data = make_phantoms((20, 3), size=32, seed=2, lesion_radius=(0.07, 0.09))
    return save_npz(data, tmp_path_factory.mktemp("data") / "phantoms.npz")


def test_cli_augment_with_copy_paste_writes_masks(phantom_npz, tmp_path, capsys):
    out = tmp_path / "aug.npz"
    rc = main(
        ["augment", "--data", str(phantom_npz), "--source", "copy-paste", "--out", str(out)]
        + ["--param", "intensity=[0.9,1.1]", "--device", "cpu"]
    )
    assert rc == 0
    assert "wrote the lesion masks" in capsys.readouterr().out
    back = load_npz(out)
    assert back.class_counts() == {0: 20, 1: 20}
    with np.load(out) as f:
        masks, derived, origin = f["train_masks"], f["train_derived"], f["train_origin"]
        # Real slices with real lesions pasted in: derived, never called synthetic.
        assert not f["train_synthetic"].any()
    assert origin.tolist() == ["real"] * 23 + ["derived"] * 17
    assert masks.shape == (40, 1, 32, 32) and derived.sum() == 17
    assert masks[derived].reshape(17, -1).any(1).all()
    assert not masks[:20].any()  # normal real items carry no lesion


def test_cli_augment_lesions_to_dicom_is_refused_or_written_derived(tmp_path, capsys):
    # The case: copy-paste slices are real anatomy, so DICOM of them from scanner
    # files must not say "synthetic, contains no patient data".
    pytest.importorskip("highdicom")
    data = make_phantoms((8, 3), size=32, seed=2, lesion_radius=(0.08, 0.1))
    scans = tmp_path / "scans"
    write_dicom(data, out_dir=scans, modality="CT")  # stands for a scanner's CT export
    study = pydicom.dcmread(next(scans.glob("normal/*.dcm"))).StudyInstanceUID
    out = tmp_path / "dicom"
    argv = ["augment", "--data", str(scans), "--size", "32", "--source", "copy-paste"]
    argv += ["--out", str(out), "--format", "dicom", "--synthetic-only", "--device", "cpu"]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("synthaug: error: --source copy-paste keeps")
    assert "--allow-real-pixels" in err and "nothing was written" in err
    assert not out.exists()

    assert main([*argv, "--allow-real-pixels"]) == 0
    images = load_dicom_folder(out)
    assert images.class_counts() == {0: 5}  # the synthetic lesion slices only
    scans_read = load_dicom_folder(scans, size=32)
    uids = {
        m["SOPInstanceUID"]: scans_read.classes[c]
        for m, c in zip(scans_read.metadata, scans_read.labels.tolist(), strict=True)
    }
    for path in sorted(out.glob("lesion/*.dcm")):
        ds = pydicom.dcmread(path)
        assert path.name.startswith("derived_lesion_")
        assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert ds.ConversionType == "WSD" and ds.Modality == "CT"
        assert ds.PatientIdentityRemoved == "NO"
        assert "no patient data" not in ds.DeidentificationMethod
        assert "not de-identified" in ds.DeidentificationMethod
        assert "copy-paste" in ds.DerivationDescription and study in ds.DerivationDescription
        assert not ds.SeriesDescription.startswith("SYNTHETIC")
        # Each file references the normal slice it was made from and its lesions' donors.
        refs = [uids[r.ReferencedSOPInstanceUID] for r in ds.SourceImageSequence]
        assert refs[0] == "normal" and set(refs[1:]) == {"lesion"} and len(refs) >= 2
        assert [c.CodeValue for c in ds.DerivationCodeSequence] == ["113085", "113042"]
    segs = sorted((out / "segmentations").glob("*.dcm"))
    assert len(segs) == 5
    mask, referenced = read_dicom_seg(segs[0])
    assert mask.any() and isinstance(referenced, str)
    seg = pydicom.dcmread(segs[0])
    assert seg.PatientIdentityRemoved == "NO" and seg.ContentLabel == "DERIVED_MASK"


def test_cli_augment_refuses_a_mixed_set_as_dicom_and_params_without_a_source(
    phantom_npz, tmp_path, capsys
):
    with pytest.raises(SystemExit):  # a usage error, before any fitting
        main(
            ["augment", "--data", str(phantom_npz), "--source", "copy-paste", "--out"]
            + [str(tmp_path / "d"), "--format", "dicom", "--device", "cpu"]
        )
    assert "--synthetic-only" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    with pytest.raises(SystemExit):
        main(["augment", "--data", "digits", "--model", "m.pt", "--param", "a=1", "--out", "x"])
    assert "--param configures --source" in capsys.readouterr().err
    rc = main(
        ["augment", "--data", str(phantom_npz), "--source", "copy-paste", "--out"]
        + [str(tmp_path / "e.npz"), "--param", "scale=[3,1]"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "scale" in err and len(err.strip().splitlines()) == 1


def test_masks_round_trip_through_dicom_seg_in_image_order(tmp_path):
    pytest.importorskip("highdicom")
    data, masks = make_phantoms((0, 3), size=16, seed=1, return_masks=True)
    files = write_dicom(data, out_dir=tmp_path, masks=masks)
    segs = sorted((tmp_path / "segmentations").glob("*.dcm"))
    assert len(segs) == len(files) == 3
    for i, seg in enumerate(segs):
        mask, _ = read_dicom_seg(seg)
        assert torch.equal(mask, masks[i, 0])
