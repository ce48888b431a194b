"""3D phantoms: determinism, true label maps, lesions spanning slices, the difficulty knob,
bad parameters, the memory check, and NIfTI / DICOM-series round trips."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy import ndimage

import synthaug.data._phantoms3d as phantoms3d_module
from synthaug.data import (
    PHANTOM_DIFFICULTIES,
    VolumeDataset,
    load_volume_folder,
    make_phantom_volumes,
    read_nifti,
    write_dicom_series,
    write_nifti,
)
from synthaug.errors import InvalidParameterError

SMALL = (16, 32, 32)


def _stack(ds: VolumeDataset) -> tuple[np.ndarray, np.ndarray]:
    volumes = [ds.volume(i) for i in range(len(ds))]
    return np.stack([v.array for v in volumes]), np.stack([v.mask for v in volumes])


def test_docstring_examples_run() -> None:
    assert doctest.testmod(phantoms3d_module).failed == 0


@pytest.mark.parametrize("kind", ["chest", "brain"])
def test_same_seed_same_volumes_other_seed_other_volumes(kind: str) -> None:
    a, ma = _stack(make_phantom_volumes((2, 2), SMALL, kind, seed=3))
    b, mb = _stack(make_phantom_volumes((2, 2), SMALL, kind, seed=3))
    c, _ = _stack(make_phantom_volumes((2, 2), SMALL, kind, seed=4))
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("kind", ["chest", "brain"])
def test_volumes_geometry_classes_and_metadata(kind: str) -> None:
    ds = make_phantom_volumes({"normal": 2, "lesion": 1}, SMALL, kind, spacing=(2.0, 0.8, 0.7))
    assert ds.classes == ["normal", "lesion"] and ds.labels.tolist() == [0, 0, 1]
    assert ds.sample_shape == (1, *SMALL) and ds.has_masks
    assert np.allclose(ds.spacing, [2.0, 0.8, 0.7])
    # Centred on the origin: the middle of the grid is at (0, 0, 0) mm.
    centre = ds.affines[0] @ np.array(
        [(SMALL[0] - 1) / 2, (SMALL[1] - 1) / 2, (SMALL[2] - 1) / 2, 1]
    )
    assert np.allclose(centre[:3], 0.0)
    for i in range(3):
        v = ds.volume(i)
        assert v.array.dtype == np.float32 and 0 <= v.array.min() and v.array.max() <= 1
        assert v.metadata["kind"] == kind and v.metadata["origin"] == "synthetic"
    meta = ds.volume(2).metadata
    assert meta["n_lesions"] == len(meta["lesion_radii_mm"]) == len(meta["lesion_centres"]) >= 1
    assert ("lesion_on_vessel" in meta) == (kind == "chest")


@pytest.mark.parametrize("kind", ["chest", "brain"])
def test_masks_only_in_lesion_volumes_and_only_where_intensity_was_raised(kind: str) -> None:
    # The anatomy of volume i does not depend on the class counts: the same volumes drawn as
    # normal and as lesion volumes differ by the lesions alone (no noise here).
    normal, normal_masks = _stack(make_phantom_volumes({"normal": 3}, SMALL, kind, 7, noise=0.0))
    sick, sick_masks = _stack(make_phantom_volumes({"lesion": 3}, SMALL, kind, 7, noise=0.0))
    assert not normal_masks.any()
    for i in range(3):
        mask = sick_masks[i].astype(bool)
        assert mask.any()
        raised = sick[i, 0] - normal[i, 0]
        assert (raised[mask] > 0.005).all()
        assert (raised >= -1e-6).all()  # lesions only ever add intensity
        # Beyond two voxels (any direction) of a lesion nothing changed: its rim reaches one
        # voxel past the mask, the scanner blur one more.
        near = ndimage.binary_dilation(mask, structure=np.ones((3, 3, 3)), iterations=2)
        assert np.abs(raised[~near]).max() < 1e-6


def test_some_chest_nodules_sit_on_a_vessel_the_others_in_lung() -> None:
    normal, _ = _stack(make_phantom_volumes({"normal": 12}, SMALL, "chest", 2, noise=0.0))
    sick = make_phantom_volumes({"lesion": 12}, SMALL, "chest", 2, noise=0.0, n_lesions=(3, 3))
    on_vessel, in_lung = [], []
    for i in range(12):
        meta = sick.volume(i).metadata
        for (d, h, w), attached in zip(
            meta["lesion_centres"], meta["lesion_on_vessel"], strict=True
        ):
            # The same anatomy without the nodule: a vessel is bright, lung parenchyma dark.
            (on_vessel if attached else in_lung).append(float(normal[i, 0, d, h, w]))
    assert 3 <= len(on_vessel) <= 24  # about 3 in 10 of 36
    # Thin vessels at 32 x 32, blurred: brighter than the lung around them (0.06-0.13).
    assert min(on_vessel) > 0.15
    assert np.median(in_lung) < 0.15 < np.median(on_vessel) - 0.05


@pytest.mark.parametrize("difficulty", sorted(PHANTOM_DIFFICULTIES))
def test_lesions_span_more_than_one_slice(difficulty: str) -> None:
    # One lesion per volume, at the default geometry (2.5 mm slices, 1.5 mm pixels).
    ds = make_phantom_volumes({"lesion": 4}, kind="brain", difficulty=difficulty, n_lesions=(1, 1))
    for i in range(len(ds)):
        slices = np.nonzero(ds.volume(i).mask.any(axis=(1, 2)))[0]
        assert len(slices) >= 2, (difficulty, i, slices)


def test_difficulty_presets_shrink_size_and_contrast_monotonically() -> None:
    order = ["easy", "medium", "hard"]
    for key in ("lesion_radius", "lesion_contrast"):
        ranges = [PHANTOM_DIFFICULTIES[d][key] for d in order]
        assert ranges[0][0] > ranges[1][0] > ranges[2][0]
        assert ranges[0][1] > ranges[1][1] > ranges[2][1]
    # Measured on the volumes drawn: mean lesion volume (voxels per lesion) and contrast fall.
    sizes, contrasts = [], []
    for difficulty in order:
        ds = make_phantom_volumes({"lesion": 6}, SMALL, "brain", 1, difficulty=difficulty)
        volumes = [ds.volume(i) for i in range(len(ds))]
        n = sum(v.metadata["n_lesions"] for v in volumes)
        sizes.append(sum(int(v.mask.sum()) for v in volumes) / n)
        contrasts.append(np.mean([c for v in volumes for c in v.metadata["lesion_contrasts"]]))
    assert sizes[0] > sizes[1] > sizes[2] > 0
    assert contrasts[0] > contrasts[1] > contrasts[2] > 0


def test_explicit_ranges_replace_the_preset() -> None:
    ds = make_phantom_volumes(
        {"lesion": 2},
        SMALL,
        "chest",
        difficulty="hard",
        lesion_radius=(0.1, 0.1),
        lesion_contrast=(0.3, 0.3),
        n_lesions=(2, 2),
    )
    for i in range(2):
        meta = ds.volume(i).metadata
        assert meta["n_lesions"] == 2 and meta["difficulty"] == "hard"
        assert meta["lesion_radii_mm"] == [4.8, 4.8]  # 0.1 x 32 columns x 1.5 mm
        assert meta["lesion_contrasts"] == [0.3, 0.3]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"n_per_class": 0}, "no images"),
        ({"n_per_class": (2, -1)}, "non-negative"),
        ({"n_per_class": {"tumour": 2}}, "keys"),
        ({"kind": "knee"}, "kind"),
        ({"shape": (4, 32, 32)}, "shape"),
        ({"shape": (16, 8, 32)}, "shape"),
        ({"shape": (16, 32)}, "shape"),
        ({"shape": (16.0, 32, 32)}, "shape"),
        ({"difficulty": "extreme"}, "difficulty"),
        ({"lesion_radius": (0.2, 0.1)}, "lesion_radius"),
        ({"lesion_radius": (0.001, 0.01)}, "lesion_radius"),
        ({"lesion_contrast": (0.1, 1.5)}, "lesion_contrast"),
        ({"lesion_contrast": 0.2}, "lesion_contrast"),
        ({"n_lesions": (0, 2)}, "n_lesions"),
        ({"n_lesions": (3, 2)}, "n_lesions"),
        ({"n_lesions": (1.0, 2)}, "n_lesions"),
        ({"n_lesions": (1, 11)}, "n_lesions"),
        ({"spacing": (2.5, 0.0, 1.0)}, "spacing"),
        ({"spacing": (2.5, 1.0)}, "spacing"),
        ({"noise": -0.1}, "noise"),
        ({"noise": "0.1"}, "noise"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_parameters_raise_synthaug_errors(params: dict, words: str) -> None:
    call = {"n_per_class": 1, "shape": SMALL, **params}
    with pytest.raises(InvalidParameterError, match=words):
        make_phantom_volumes(**call)


def test_memory_check_refuses_an_absurd_request_before_drawing() -> None:
    with pytest.raises(InvalidParameterError, match="memory"):
        make_phantom_volumes(10**6, shape=(512, 512, 512))


@pytest.mark.parametrize("kind", ["chest", "brain"])
def test_nifti_round_trip_keeps_spacing_and_mask(tmp_path, kind: str) -> None:
    pytest.importorskip("nibabel")
    vol = make_phantom_volumes({"lesion": 1}, SMALL, kind, 2).volume(0)
    write_nifti(vol, tmp_path / "case.nii.gz", tmp_path / "case_seg.nii.gz")
    back = read_nifti(tmp_path / "case.nii.gz", tmp_path / "case_seg.nii.gz", window="minmax")
    assert back.spacing == pytest.approx(vol.spacing, abs=1e-6)
    assert np.allclose(back.affine, vol.affine, atol=1e-5)
    assert np.array_equal(back.mask, vol.mask)
    # float32 is stored; min-max windowing maps it back onto the same [0, 1] range.
    low, high = vol.array.min(), vol.array.max()
    assert np.allclose(back.array, (vol.array - low) / (high - low), atol=1e-5)


def test_dicom_series_round_trip_keeps_spacing_and_mask(tmp_path) -> None:
    pytest.importorskip("highdicom")
    ds = make_phantom_volumes((1, 1), SMALL, "chest", 5)
    write_dicom_series(ds, tmp_path / "out", modality="CT")
    back = load_volume_folder(tmp_path / "out")
    assert back.classes == ["lesion", "normal"] or back.classes == ["normal", "lesion"]
    for i in range(len(back)):
        got = back.volume(i)
        name = back.classes[int(back.labels[i])]
        want = ds.volume(ds.classes.index(name))
        assert np.allclose(got.spacing, want.spacing, atol=1e-6)
        assert np.allclose(got.affine, want.affine, atol=1e-5)
        assert np.abs(got.array - want.array).max() <= 1 / 65535
        if name == "lesion":
            assert np.array_equal(got.mask, want.mask)
