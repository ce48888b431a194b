"""``synthaug info`` and ``synthaug grid`` given volumes: a NIfTI file, a DICOM series folder,
a folder of them and a folder of class folders, all written by the library from 3D phantoms."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

import synthaug.bench._volume_plots as volume_plots_module
from synthaug.cli import main
from synthaug.cli._volumes import axis_codes
from synthaug.data import affine_from_spacing, make_phantom_volumes, write_dicom_series, write_nifti

pytest.importorskip("nibabel")
pytest.importorskip("highdicom")

SHAPE = (16, 32, 32)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("volumes")
    ds = make_phantom_volumes((1, 1), SHAPE, "brain", 0, difficulty="easy")
    write_dicom_series(ds, root / "series", modality="MR")
    lesion = ds.volume(1)
    write_nifti(lesion, root / "flat" / "case.nii.gz", root / "case_seg.nii.gz")
    normal_only = make_phantom_volumes({"normal": 2}, SHAPE, "chest", 1)
    write_dicom_series(normal_only, root / "normal_series", modality="CT")
    series = sorted((root / "series" / "lesion").iterdir())[0]
    return {
        "classes": root / "series",
        "series": series,
        "nifti": root / "flat" / "case.nii.gz",
        "flat": root / "flat",
        "normal": root / "normal_series",
        "root": root,
    }


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_info_describes_a_nifti_file(written, capsys) -> None:
    code, out, _ = _run(["info", str(written["nifti"])], capsys)
    assert code == 0
    assert "format          NIfTI" in out
    assert "16 slices x 32 rows x 32 columns, 1 channel" in out
    assert "2.5 mm between slices, 1.5 x 1.5 mm pixels" in out
    assert "orientation     LPS " in out
    assert "marking         not recorded (NIfTI has no field for it)" in out


def test_info_describes_a_series_folder_with_its_marking(written, capsys) -> None:
    code, out, _ = _run(["info", str(written["series"])], capsys)
    assert code == 0
    assert "DICOM series, 16 slice files, modality MR" in out
    assert "2.5 mm between slices, 1.5 x 1.5 mm pixels" in out
    assert "orientation     LPS " in out
    assert "marking         synthetic (Conversion Type SYN" in out


def test_info_on_class_folders_counts_classes_and_finds_label_maps(written, capsys) -> None:
    code, out, _ = _run(["info", str(written["classes"])], capsys)
    assert code == 0
    assert "2 volumes; classes lesion (1), normal (1)" in out
    blocks = out.split("\n/")[1:]
    lesion = next(b for b in blocks if "class           lesion" in b)
    normal = next(b for b in blocks if "class           normal" in b)
    assert "label map       yes" in lesion and "label map       none found" in normal


def test_info_json_of_a_flat_folder(written, capsys) -> None:
    code, out, _ = _run(["info", str(written["flat"]), "--json"], capsys)
    facts = json.loads(out)
    assert code == 0 and facts["kind"] == "volumes" and len(facts["volumes"]) == 1
    v = facts["volumes"][0]
    assert v["shape"] == [1, *SHAPE] and v["spacing_mm"] == [2.5, 1.5, 1.5]
    assert v["orientation"] == "LPS" and not v["oblique"]


def test_axis_codes_follow_the_affine() -> None:
    assert axis_codes(affine_from_spacing((2.5, 1.0, 1.0))) == ("LPS", False)
    flipped = affine_from_spacing((2.5, 1.0, 1.0)) @ np.diag([-1.0, -1.0, -1.0, 1.0])
    assert axis_codes(flipped) == ("RAI", False)
    turn = np.deg2rad(30)
    oblique = affine_from_spacing((2.5, 1.0, 1.0))
    oblique[:3, 2] = [np.cos(turn), np.sin(turn), 0.0]  # columns turned 30 degrees towards P
    assert axis_codes(oblique) == ("LPS", True)


def test_montage_slices_are_evenly_spaced_and_the_examples_run() -> None:
    assert doctest.testmod(volume_plots_module).failed == 0
    assert volume_plots_module.montage_slices(3, 5).tolist() == [0, 1, 2]


def _red_pixels(path: Path) -> int:
    rgb = imread(path)[..., :3]
    return int(((rgb[..., 0] > 0.8) & (rgb[..., 1] < 0.35) & (rgb[..., 2] < 0.35)).sum())


def test_grid_writes_a_montage_with_label_maps_outlined(written, capsys) -> None:
    out_png = written["root"] / "montage.png"
    code, out, _ = _run(["grid", str(written["classes"]), "--out", str(out_png)], capsys)
    assert code == 0 and "2 of 2 volumes x 5 slices" in out
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _red_pixels(out_png) > 0
    # Normal volumes have nothing to outline: no red at all.
    plain = written["root"] / "normal.png"
    code, out, _ = _run(
        ["grid", str(written["normal"]), "--out", str(plain), "--slices", "3", "--per-class", "1"],
        capsys,
    )
    assert code == 0 and "1 of 2 volumes x 3 slices" in out
    assert _red_pixels(plain) == 0


def test_grid_of_a_nifti_file(written, capsys) -> None:
    out_png = written["root"] / "one.png"
    code, out, _ = _run(["grid", str(written["nifti"]), "--out", str(out_png)], capsys)
    assert code == 0 and out_png.is_file() and "1 of 1 volumes" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["grid", "{classes}", "--out", "{root}/g.png", "--data", "digits"], "drop --data"),
        (["grid", "m.safetensors", "--out", "{root}/g.png", "--slices", "3"], "--slices is for"),
        (["info", "{classes}", "--plot", "{root}/l.png"], "drop --plot"),
    ],
)
def test_volume_options_misused_are_usage_errors(written, capsys, argv, words) -> None:
    argv = [a.format(**{k: str(v) for k, v in written.items()}) for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and words in capsys.readouterr().err


def test_a_folder_without_volumes_is_one_clear_error(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = _run(["info", str(tmp_path / "empty")], capsys)
    assert code == 2 and "found no volume in" in err
    code, _, err = _run(["grid", str(tmp_path / "empty"), "--out", str(tmp_path / "g.png")], capsys)
    assert code == 2 and "found no volume in" in err
    (tmp_path / "notes.nii").write_text("not a volume")
    code, _, err = _run(["info", str(tmp_path / "notes.nii")], capsys)
    assert code == 2 and "notes.nii" in err
