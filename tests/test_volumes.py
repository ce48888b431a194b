"""Volumes: the data type, DICOM series and NIfTI in and out, lazy loading, malformed series.

pydicom's bundled test data (``get_testdata_files``) holds no multi-file series (only
single slices, and multi-frame objects): the series here are ones the library writes from
small arrays, then reads back; pydicom's MR_small slice is used where one real slice is
enough (a one-slice volume, two copies of one slice).
"""

from __future__ import annotations

import doctest
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file

import synthaug._memory as memory_module
import synthaug.data._dicom_series as dicom_series_module
import synthaug.data._nifti as nifti_module
import synthaug.data._volume as volume_module
import synthaug.data._volume_folder as volume_folder_module
from synthaug.bench._resampling import RandomSplits, RepeatedKFold
from synthaug.data import (
    Provenance,
    SourceItem,
    Volume,
    VolumeDataset,
    affine_from_spacing,
    from_arrays,
    load_volume_folder,
    lps_to_ras,
    ras_to_lps,
    read_dicom_series,
    read_dicom_series_lazy,
    read_nifti,
    read_series_segmentation,
    volumes_from_arrays,
    write_dicom_series,
    write_nifti,
)
from synthaug.errors import (
    DataFileError,
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    MissingDependencyError,
    ShapeMismatchError,
)

nib = pytest.importorskip("nibabel")
pytest.importorskip("highdicom")

SHAPE = (8, 16, 16)  # (D, H, W)
STEP = 1 / 65535  # the stored precision of 16-bit pixels


def _volume(seed: int = 0, affine: np.ndarray | None = None, mask: bool = True) -> Volume:
    rng = np.random.default_rng(seed)
    array = rng.random(SHAPE).astype(np.float32)
    labels = None
    if mask:
        labels = np.zeros(SHAPE, np.int64)
        labels[2:5, 4:9, 5:10] = 1
        labels[5:7, 10:13, 2:6] = 2
    if affine is None:
        affine = affine_from_spacing((2.5, 0.75, 0.6))
        affine[:3, 3] = (-40.0, 12.5, 100.0)
    return Volume(array, affine, labels, {})


def _oblique_affine() -> np.ndarray:
    """Rows and columns turned by two angles, spacing (3.0, 0.8, 0.7), origin away from zero."""
    a, b = np.deg2rad(25.0), np.deg2rad(-15.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rotation = rx @ rz
    row_dir, col_dir = rotation[:, 0], rotation[:, 1]
    affine = np.eye(4)
    affine[:3, 0] = np.cross(row_dir, col_dir) * 3.0
    affine[:3, 1] = col_dir * 0.8
    affine[:3, 2] = row_dir * 0.7
    affine[:3, 3] = (10.0, -20.0, 35.0)
    return affine


def _world(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The LPS position of every voxel, (D, H, W, 3)."""
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    return index @ affine[:3, :3].T + affine[:3, 3]


def _series(tmp_path: Path, volume: Volume | None = None, name: str = "out") -> Path:
    [folder] = write_dicom_series(volume or _volume(mask=False), tmp_path / name)
    return folder


def _slices(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.dcm"))


def _edit(path: Path, **attributes: object) -> None:
    ds = pydicom.dcmread(path)
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.save_as(path)


# -- the data type ---------------------------------------------------------------------------
def test_volume_dataset_holds_labels_affines_and_masks():
    affines = np.stack([affine_from_spacing((2.0, 1.0, 0.5)), _oblique_affine()])
    masks = np.zeros((2, *SHAPE), np.int64)
    masks[1, 3, 3, 3] = 4
    ds = volumes_from_arrays(
        np.full((2, 1, *SHAPE), 0.5, np.float32), [1, 0], ["a", "b"], affines=affines, masks=masks
    )
    assert len(ds) == 2 and ds.sample_shape == (1, *SHAPE) and ds.class_counts() == {0: 1, 1: 1}
    np.testing.assert_allclose(ds.spacing, [[2.0, 1.0, 0.5], [3.0, 0.8, 0.7]])
    np.testing.assert_allclose(ds.affines, affines)
    volume, label = ds[1]
    assert tuple(volume.shape) == (1, *SHAPE) and int(label) == 0
    assert ds.has_masks and ds.volume(1).mask[3, 3, 3] == 4
    sub = ds.subset([1])
    assert sub.classes == ["a", "b"] and int(sub.labels[0]) == 0
    np.testing.assert_allclose(sub.affines[0], affines[1])


def test_volumes_of_other_shapes_share_no_sample_shape():
    ds = VolumeDataset(
        [Volume(np.zeros((2, 4, 4), np.float32)), Volume(np.zeros((3, 4, 4), np.float32))], [0, 0]
    )
    assert ds.sample_shape is None and ds.shapes == [(1, 2, 4, 4), (1, 3, 4, 4)]


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"array": np.full(SHAPE, 1.5, np.float32)}, InvalidDataError, "[0, 1]"),
        ({"array": np.zeros(SHAPE, np.uint8)}, InvalidDataError, "floats"),
        ({"array": np.full(SHAPE, np.nan, np.float32)}, InvalidDataError, "NaN"),
        ({"array": np.zeros((4, 4), np.float32)}, ShapeMismatchError, "(C, D, H, W)"),
        ({"affine": np.zeros((4, 4))}, InvalidDataError, "last row"),
        ({"affine": np.diag([1.0, 0.0, 1.0, 1.0])}, InvalidDataError, "singular"),
        ({"affine": np.eye(3)}, ShapeMismatchError, "4x4"),
        ({"mask": np.zeros((2, 2, 2))}, ShapeMismatchError, "label map"),
        ({"mask": np.full(SHAPE, 0.5)}, InvalidDataError, "whole numbers"),
        ({"mask": np.full(SHAPE, -1)}, InvalidDataError, "non-negative"),
    ],
)
def test_bad_volumes_are_refused(kwargs, error, words):
    arguments = {"array": np.zeros(SHAPE, np.float32), **kwargs}
    with pytest.raises(error, match=None) as info:
        Volume(**arguments)
    assert words in str(info.value)


def test_bad_volume_datasets_are_refused():
    volume = Volume(np.zeros(SHAPE, np.float32))
    with pytest.raises(ShapeMismatchError, match="2 labels for 1 volumes"):
        VolumeDataset([volume], [0, 1])
    with pytest.raises(InvalidDataError, match="volumes_from_arrays"):
        VolumeDataset(np.zeros((1, 1, *SHAPE), np.float32), [0])
    with pytest.raises(InvalidDataError, match="wrap arrays in synthaug.data.Volume"):
        VolumeDataset([np.zeros(SHAPE)], [0])
    with pytest.raises(InvalidDataError, match="out of range"):
        VolumeDataset([volume], [2], ["a", "b"])
    with pytest.raises(EmptyDatasetError):
        volumes_from_arrays(np.zeros((0, 1, *SHAPE), np.float32), [])
    with pytest.raises(ShapeMismatchError, match="affines"):
        volumes_from_arrays(np.zeros((2, *SHAPE), np.float32), [0, 1], affines=np.eye(4)[None])


# -- DICOM series round trips --------------------------------------------------------------
def _tilted_affine() -> np.ndarray:
    """A gantry tilted by about 11 degrees: the slice axis is not the slice normal."""
    affine = affine_from_spacing((2.5, 0.75, 0.6))
    affine[:3, 0] = (0.0, 0.5, 2.5)
    return affine


@pytest.mark.parametrize("geometry", ["axial", "oblique", "tilted"])
def test_dicom_series_round_trip(tmp_path, geometry):
    affine = {"axial": None, "oblique": _oblique_affine(), "tilted": _tilted_affine()}[geometry]
    original = _volume(affine=affine)
    [folder] = write_dicom_series(original, tmp_path / "out")
    back = read_dicom_series(folder)
    assert back.shape == original.shape
    np.testing.assert_allclose(back.array, original.array, atol=STEP / 2 + 1e-7)
    np.testing.assert_allclose(back.affine, original.affine, atol=1e-6)
    np.testing.assert_allclose(back.spacing, original.spacing, atol=1e-6)
    seg = tmp_path / "out" / "segmentations" / f"{folder.name}_seg.dcm"
    np.testing.assert_array_equal(read_series_segmentation(seg, back), original.mask)
    first = pydicom.dcmread(_slices(folder)[0])
    np.testing.assert_allclose(
        [float(v) for v in first.ImageOrientationPatient],
        np.concatenate(
            [
                original.affine[:3, 2] / original.spacing[2],
                original.affine[:3, 1] / original.spacing[1],
            ]
        ),
        atol=1e-9,
    )


def test_a_label_map_with_unused_values_round_trips(tmp_path):
    labels = np.zeros(SHAPE, np.int64)
    labels[1, 2:4, 2:4], labels[4, 3:9, 3:5] = 1, 3  # no voxel has label 2
    volume = Volume(np.zeros(SHAPE, np.float32), mask=labels)
    [folder] = write_dicom_series(volume, tmp_path / "out")
    seg_path = tmp_path / "out" / "segmentations" / f"{folder.name}_seg.dcm"
    seg = pydicom.dcmread(seg_path)
    assert [item.SegmentLabel for item in seg.SegmentSequence] == [
        "lesion 1",
        "lesion 2",
        "lesion 3",
    ]
    back = read_series_segmentation(seg_path, read_dicom_series(folder))
    np.testing.assert_array_equal(back, labels)


def test_a_segmentation_of_another_series_is_refused(tmp_path):
    [folder] = write_dicom_series(_volume(), tmp_path / "a")
    other = read_dicom_series(_series(tmp_path, name="b"))
    seg = tmp_path / "a" / "segmentations" / f"{folder.name}_seg.dcm"
    with pytest.raises(DataFileError, match="Segmentation of this series"):
        read_series_segmentation(seg, other)
    with pytest.raises(InvalidDataError, match="SOPInstanceUIDs"):
        read_series_segmentation(seg, _volume())


def test_slices_against_the_normal_come_back_in_normal_order(tmp_path):
    """A slice axis that runs against row x column is stored as given and read ascending:
    flipped along d, with the affine that keeps every voxel at its place."""
    affine = _oblique_affine()
    affine[:3, 0] *= -1
    original = _volume(affine=affine, mask=False)
    back = read_dicom_series(_series(tmp_path, original))
    np.testing.assert_allclose(back.array, original.array[:, ::-1], atol=STEP / 2 + 1e-7)
    np.testing.assert_allclose(
        _world(back.affine, SHAPE), _world(original.affine, SHAPE)[::-1], atol=1e-6
    )
    np.testing.assert_allclose(back.spacing, original.spacing, atol=1e-6)


def test_file_names_and_instance_numbers_do_not_order_slices(tmp_path):
    folder = _series(tmp_path)
    expected = read_dicom_series(folder)
    files = _slices(folder)
    for i, path in enumerate(files):  # reversed names and instance numbers
        _edit(path, InstanceNumber=len(files) - i)
        path.rename(folder / f"x{len(files) - i:03d}.dcm")
    back = read_dicom_series(folder)
    np.testing.assert_array_equal(back.array, expected.array)
    np.testing.assert_allclose(back.affine, expected.affine)


def test_spacing_comes_from_positions_not_slice_thickness(tmp_path):
    folder = _series(tmp_path)
    for path in _slices(folder):
        _edit(path, SliceThickness=7.0)
    assert read_dicom_series(folder).spacing[0] == pytest.approx(2.5)


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    folder = _series(tmp_path)
    files = _slices(folder)
    stored = np.stack([pydicom.dcmread(p).pixel_array for p in files]).astype(np.float64)
    for path in files:
        _edit(path, RescaleSlope=2, RescaleIntercept=-1000, RescaleType="HU")
    back = read_dicom_series(folder, window=(0.0, 2000.0))
    # Hounsfield units 2 * stored - 1000 through the linear window of center 0, width 2000.
    hu = 2 * stored - 1000
    expected = np.clip((hu + 0.5) / 1999 + 0.5, 0, 1)
    np.testing.assert_allclose(back.array[0], expected, atol=1e-6)
    minmax = read_dicom_series(folder, window="minmax").array[0]
    np.testing.assert_allclose(minmax, (hu - hu.min()) / (hu.max() - hu.min()), atol=1e-6)


def test_written_series_are_marked_as_their_provenance_says(tmp_path):
    sources = VolumeDataset([Volume(np.zeros(SHAPE, np.float32))], [0])
    source = load_volume_folder(_write_dataset(tmp_path / "src", sources))
    meta = source.metadata
    derived = Provenance("derived", "lesion pasted", (SourceItem(0, "image"),), ("pixel-addition",))
    [folder] = write_dicom_series(
        _volume(mask=False), tmp_path / "derived", provenance=[derived], source_metadata=meta
    )
    for k, path in enumerate(_slices(folder)):
        ds = pydicom.dcmread(path)
        assert ds.ConversionType == "WSD" and ds.PatientIdentityRemoved == "NO"
        assert ds.SeriesDescription.startswith("DERIVED")
        [item] = ds.SourceImageSequence
        assert item.ReferencedSOPInstanceUID == meta[0]["SOPInstanceUIDs"][k]
        assert meta[0]["StudyInstanceUID"] in ds.DerivationDescription
    [folder] = write_dicom_series(_volume(mask=False), tmp_path / "synthetic")
    ds = pydicom.dcmread(_slices(folder)[0])
    assert ds.ConversionType == "SYN" and ds.PatientName == "SYNTHETIC^PHANTOM"
    synthetic = Provenance("synthetic", "generated")
    with pytest.raises(InvalidParameterError, match="every provenance record says synthetic"):
        write_dicom_series(_volume(), tmp_path / "x", provenance=[synthetic], origin="derived")


def test_every_series_gets_its_own_uids(tmp_path):
    ds = volumes_from_arrays(np.zeros((2, *SHAPE), np.float32), [0, 0])
    folders = write_dicom_series(ds, tmp_path / "out")
    series = [pydicom.dcmread(_slices(f)[0]) for f in folders]
    assert series[0].SeriesInstanceUID != series[1].SeriesInstanceUID
    assert series[0].FrameOfReferenceUID != series[1].FrameOfReferenceUID
    assert series[0].StudyInstanceUID == series[1].StudyInstanceUID


def test_writing_refuses_what_a_series_cannot_hold(tmp_path):
    sheared = affine_from_spacing((1.0, 1.0, 1.0))
    sheared[:3, 2] = (1.0, 0.5, 0.0)
    with pytest.raises(InvalidDataError, match="not perpendicular"):
        write_dicom_series(Volume(np.zeros(SHAPE, np.float32), sheared), tmp_path / "a")
    two = Volume(np.zeros((2, *SHAPE), np.float32))
    with pytest.raises(ShapeMismatchError, match="2 channels"):
        write_dicom_series(two, tmp_path / "b")
    with pytest.raises(InvalidDataError, match="Volume objects"):
        write_dicom_series([np.zeros(SHAPE)], tmp_path / "c")
    volume = _volume()
    with pytest.raises(InvalidParameterError, match="bits"):
        write_dicom_series(volume, tmp_path / "d", bits=12)
    with pytest.raises(InvalidParameterError, match="modality"):
        write_dicom_series(volume, tmp_path / "d", modality="ct")
    with pytest.raises(InvalidParameterError, match="segment_label"):
        write_dicom_series(volume, tmp_path / "d", segment_label="")
    with pytest.raises(ShapeMismatchError, match="2 labels for 1 volumes"):
        write_dicom_series(volume, tmp_path / "d", labels=[0, 1])
    with pytest.raises(InvalidParameterError, match="brings its own labels"):
        write_dicom_series(VolumeDataset([volume], [0]), tmp_path / "d", labels=[0])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# -- malformed series ------------------------------------------------------------------------
def test_several_series_in_one_folder_are_named(tmp_path):
    one, two = _series(tmp_path, name="one"), _series(tmp_path, name="two")
    uid_two = pydicom.dcmread(_slices(two)[0]).SeriesInstanceUID
    for path in _slices(two):
        shutil.copy(path, one / f"other_{path.name}")
    with pytest.raises(DataFileError, match="holds 2 series") as info:
        read_dicom_series(one)
    assert uid_two in str(info.value) and "(8 files)" in str(info.value)
    assert read_dicom_series(one, series_uid=uid_two).shape == (1, *SHAPE)
    with pytest.raises(DataFileError, match="holds no series '1.2.3'"):
        read_dicom_series(one, series_uid="1.2.3")


@pytest.mark.parametrize(("depth", "gone"), [(8, [3]), (4, [1]), (8, [2, 3])])
def test_a_missing_slice_is_named(tmp_path, depth, gone):
    volume = Volume(np.zeros((depth, 16, 16), np.float32), affine_from_spacing((2.5, 0.75, 0.6)))
    folder = _series(tmp_path, volume)
    files = _slices(folder)
    for k in gone:
        files[k].unlink()
    with pytest.raises(DataFileError, match=f"misses {len(gone)} slice") as info:
        read_dicom_series(folder)
    assert files[gone[0] - 1].name in str(info.value)
    assert files[gone[-1] + 1].name in str(info.value)


def test_duplicate_positions_are_refused(tmp_path):
    folder = _series(tmp_path)
    path = _slices(folder)[3]
    copy = folder / "copy.dcm"
    shutil.copy(path, copy)
    _edit(copy, SOPInstanceUID=pydicom.uid.generate_uid())
    with pytest.raises(DataFileError, match="two slices at one position"):
        read_dicom_series(folder)


def test_duplicate_real_slices_from_pydicom_are_refused(tmp_path):
    # MR_small in two encodings: one series, one slice position.
    for name in ("MR_small.dcm", "MR_small_implicit.dcm"):
        shutil.copy(get_testdata_file(name), tmp_path / name)
    with pytest.raises(DataFileError, match="two slices at one position"):
        read_dicom_series(tmp_path)


def test_one_real_slice_is_a_volume_of_its_thickness(tmp_path):
    shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path)
    volume = read_dicom_series(tmp_path)
    header = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    assert volume.shape == (1, 1, 64, 64)
    spacing = [float(s) for s in header.PixelSpacing]
    assert volume.spacing == pytest.approx((float(header.SliceThickness), *spacing))
    np.testing.assert_allclose(
        volume.affine[:3, 3], [float(v) for v in header.ImagePositionPatient]
    )


def test_inconsistent_spacing_is_refused(tmp_path):
    folder = _series(tmp_path)
    path = _slices(folder)[4]
    position = [float(v) for v in pydicom.dcmread(path).ImagePositionPatient]
    position[2] += 0.9  # 0.9 mm off a 2.5 mm step
    _edit(path, ImagePositionPatient=position)
    with pytest.raises(DataFileError, match="inconsistent slice spacing"):
        read_dicom_series(folder)


def test_inconsistent_pixel_spacing_is_refused(tmp_path):
    folder = _series(tmp_path)
    _edit(_slices(folder)[2], PixelSpacing=[0.5, 0.5])
    with pytest.raises(DataFileError, match="inconsistent Pixel Spacing"):
        read_dicom_series(folder)


def test_inconsistent_orientation_is_refused(tmp_path):
    folder = _series(tmp_path)
    _edit(_slices(folder)[2], ImageOrientationPatient=[1, 0, 0, 0, 0, -1])
    with pytest.raises(DataFileError, match="mixes slice orientations"):
        read_dicom_series(folder)


def test_mixed_slice_sizes_are_refused(tmp_path):
    folder = _series(tmp_path)
    small = _series(
        tmp_path,
        Volume(np.zeros((8, 8, 8), np.float32), affine_from_spacing((2.5, 0.75, 0.6))),
        name="small",
    )
    path = _slices(small)[0]
    uid = pydicom.dcmread(_slices(folder)[0]).SeriesInstanceUID
    _edit(path, SeriesInstanceUID=uid, ImagePositionPatient=[0, 0, 500])
    shutil.copy(path, folder / "small.dcm")
    with pytest.raises(DataFileError, match="mixes slice sizes") as info:
        read_dicom_series(folder)
    assert "16x16 (8 files)" in str(info.value) and "8x8 (1 files)" in str(info.value)


def test_no_dicom_files(tmp_path):
    with pytest.raises(EmptyDatasetError, match="no DICOM slices"):
        read_dicom_series(tmp_path)
    (tmp_path / "notes.txt").write_text("not DICOM")
    with pytest.raises(DataFileError, match="notes.txt.*not a DICOM file"):
        read_dicom_series(tmp_path)
    with pytest.raises(EmptyDatasetError, match="skipped 1 file"):
        read_dicom_series(tmp_path, on_error="skip")
    with pytest.raises(DataFileError, match="does not exist"):
        read_dicom_series(tmp_path / "absent")
    with pytest.raises(InvalidParameterError, match="on_error"):
        read_dicom_series(tmp_path, on_error="ignore")


def test_bad_files_are_skipped_with_a_stated_reason(tmp_path, caplog):
    folder = _series(tmp_path)
    (folder / "notes.txt").write_text("not DICOM")
    truncated = folder / "truncated.dcm"
    truncated.write_bytes(_slices(folder)[0].read_bytes()[:200])
    with pytest.raises(DataFileError, match="notes.txt"):
        read_dicom_series(folder)
    with caplog.at_level(logging.WARNING, logger="synthaug.data"):
        source, skipped = read_dicom_series_lazy(folder, on_error="skip")
    assert source.shape == (1, *SHAPE)
    reasons = dict(skipped)
    assert "not a DICOM file" in reasons[str(folder / "notes.txt")]
    assert "truncated.dcm" in caplog.text and "notes.txt" in caplog.text


def test_files_that_are_no_slice_are_named_with_the_reason(tmp_path):
    folder = _series(tmp_path)
    first = _slices(folder)[0]
    shutil.copy(get_testdata_file("rtdose.dcm"), folder / "rtdose.dcm")  # 15 frames
    colour = folder / "colour.dcm"
    shutil.copy(first, colour)
    _edit(colour, SamplesPerPixel=3)
    flat = folder / "flat.dcm"
    shutil.copy(first, flat)
    ds = pydicom.dcmread(flat)
    del ds.ImagePositionPatient
    ds.save_as(flat)
    with pytest.raises(DataFileError, match="colour.dcm.*colour image"):
        read_dicom_series(folder)
    _, skipped = read_dicom_series_lazy(folder, on_error="skip")
    reasons = {Path(f).name: why for f, why in skipped}
    assert "multi-frame" in reasons["rtdose.dcm"]
    assert "colour" in reasons["colour.dcm"]
    assert "no ImagePositionPatient" in reasons["flat.dcm"]


def test_monochrome1_is_inverted(tmp_path):
    folder = _series(tmp_path)
    expected = read_dicom_series(folder).array
    for path in _slices(folder):
        _edit(path, PhotometricInterpretation="MONOCHROME1")
    np.testing.assert_allclose(read_dicom_series(folder).array, 1 - expected, atol=1e-6)


def test_a_corrupt_slice_fails_when_read_naming_it(tmp_path):
    folder = _series(tmp_path)
    path = _slices(folder)[5]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])  # the header is whole, the pixels are not
    source, _ = read_dicom_series_lazy(folder)
    with pytest.raises(DataFileError, match=path.name):
        source.read()


# -- NIfTI -----------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("oblique", [False, True], ids=["axial", "oblique"])
def test_nifti_round_trip(tmp_path, suffix, oblique):
    original = _volume(affine=_oblique_affine() if oblique else None)
    image, labels = write_nifti(original, tmp_path / f"v{suffix}", tmp_path / f"m{suffix}")
    if suffix == ".nii.gz":
        assert image.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    back = read_nifti(image, labels)
    np.testing.assert_array_equal(back.array, original.array)
    np.testing.assert_array_equal(back.mask, original.mask)
    np.testing.assert_allclose(back.affine, original.affine, atol=1e-5)
    np.testing.assert_allclose(back.spacing, original.spacing, atol=1e-5)


def test_nifti_affine_is_converted_from_ras():
    """Voxel (i, j, k) of a NIfTI file at RAS point p is voxel (k, j, i) at LPS (-p0, -p1, p2)."""
    rng = np.random.default_rng(3)
    ras = np.eye(4)
    ras[:3] = rng.normal(size=(3, 4))
    lps = ras_to_lps(ras)
    for i, j, k in [(0, 0, 0), (3, 1, 2), (5, 7, 1)]:
        p = ras @ [i, j, k, 1]
        np.testing.assert_allclose(lps @ [k, j, i, 1], [-p[0], -p[1], p[2], 1])
    np.testing.assert_allclose(lps_to_ras(lps), ras)


def test_nifti_written_by_nibabel_is_read_in_its_place(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)  # (i, j, k)
    ras = np.diag([0.5, 0.6, 2.0, 1.0])
    ras[:3, 3] = (-10.0, 20.0, 30.0)
    nib.save(nib.Nifti1Image(data, ras), tmp_path / "x.nii.gz")
    volume = read_nifti(tmp_path / "x.nii.gz", window="minmax")
    # No display range in the header (cal_min = cal_max = 0): "auto" is the min-max.
    np.testing.assert_array_equal(read_nifti(tmp_path / "x.nii.gz").array, volume.array)
    assert volume.shape == (1, 6, 5, 4) and volume.spacing == pytest.approx((2.0, 0.6, 0.5))
    np.testing.assert_allclose(volume.array[0], (data.transpose(2, 1, 0) / data.max()), atol=1e-6)
    # The first voxel's place: RAS (-10, 20, 30) is LPS (10, -20, 30).
    np.testing.assert_allclose(volume.affine[:3, 3], [10.0, -20.0, 30.0])


def test_dicom_and_nifti_of_one_volume_agree(tmp_path):
    original = _volume(affine=_oblique_affine(), mask=False)
    from_dicom = read_dicom_series(_series(tmp_path, original))
    path, _ = write_nifti(from_dicom, tmp_path / "v.nii.gz")
    from_nifti = read_nifti(path)
    np.testing.assert_allclose(from_nifti.affine, from_dicom.affine, atol=1e-5)
    np.testing.assert_array_equal(from_nifti.array, from_dicom.array)


def test_bad_nifti_files(tmp_path):
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"\x1f\x8b" + b"garbage" * 20)
    with pytest.raises(DataFileError, match="corrupt.nii.gz"):
        read_nifti(corrupt)
    with pytest.raises(DataFileError, match="does not exist"):
        read_nifti(tmp_path / "absent.nii")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.float32), np.eye(4)), tmp_path / "t.nii")
    with pytest.raises(DataFileError, match="4D file of several volumes"):
        read_nifti(tmp_path / "t.nii")
    image, _ = write_nifti(_volume(mask=False), tmp_path / "v.nii")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), tmp_path / "m.nii")
    with pytest.raises(DataFileError, match="label map .* is \\(4, 4, 4\\)"):
        read_nifti(image, tmp_path / "m.nii")
    nib.save(
        nib.Nifti1Image(np.full(SHAPE[::-1], 0.5, np.float32), lps_to_ras(_volume().affine)),
        tmp_path / "soft.nii",
    )
    with pytest.raises(DataFileError, match="whole numbers"):
        read_nifti(image, tmp_path / "soft.nii")


def test_bad_nifti_writes(tmp_path):
    with pytest.raises(InvalidParameterError, match=".nii or .nii.gz"):
        write_nifti(_volume(), tmp_path / "v.nrrd")
    with pytest.raises(InvalidParameterError, match="no label map"):
        write_nifti(_volume(mask=False), tmp_path / "v.nii", tmp_path / "m.nii")
    write_nifti(_volume(), tmp_path / "v.nii")
    with pytest.raises(DataFileError):
        write_nifti(_volume(), tmp_path / "v.nii", tmp_path / "m.nii")
    assert not (tmp_path / "m.nii").exists()  # refused before the label map was written


def test_missing_nibabel_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(MissingDependencyError, match=r"synthaug\[nifti\]"):
        read_nifti(tmp_path / "v.nii")
    with pytest.raises(MissingDependencyError, match=r"synthaug\[nifti\]"):
        write_nifti(_volume(), tmp_path / "v.nii")


# -- folders and lazy loading ---------------------------------------------------------------
def _write_dataset(out: Path, dataset: VolumeDataset) -> Path:
    write_dicom_series(dataset, out)
    return out


def test_a_folder_of_series_reads_only_the_asked_volume(tmp_path, monkeypatch):
    arrays = np.stack([np.full(SHAPE, v, np.float32) for v in (0.1, 0.5, 0.9)])
    root = _write_dataset(tmp_path / "series", volumes_from_arrays(arrays, [0, 1, 1], ["n", "l"]))
    dataset = load_volume_folder(root, classes=["n", "l"])
    assert dataset.classes == ["n", "l"] and dataset.labels.tolist() == [0, 1, 1]
    read = []
    real = pydicom.dcmread

    def counting(path, *args, **kwargs):
        if not kwargs.get("stop_before_pixels"):
            read.append(Path(path).parent.name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counting)
    volume, label = dataset[2]
    assert int(label) == 1 and float(volume.mean()) == pytest.approx(0.9, abs=1e-4)
    assert len(read) == SHAPE[0] and set(read) == {Path(dataset.metadata[2]["file"]).name}


def test_a_folder_of_nifti_with_label_maps_reads_lazily(tmp_path, monkeypatch):
    for name, seed in [("a", 0), ("b", 1)]:
        for cls in ("x",):
            (tmp_path / "img" / cls).mkdir(parents=True, exist_ok=True)
            (tmp_path / "lab" / cls).mkdir(parents=True, exist_ok=True)
            write_nifti(
                _volume(seed),
                tmp_path / "img" / cls / f"{name}.nii.gz",
                tmp_path / "lab" / cls / f"{name}.nii.gz",
            )
    dataset = load_volume_folder(tmp_path / "img", masks=tmp_path / "lab")
    assert len(dataset) == 2 and dataset.has_masks
    read = []
    real = nifti_module._voxels
    monkeypatch.setattr(
        nifti_module, "_voxels", lambda image, path: read.append(path.name) or real(image, path)
    )
    volume = dataset.volume(1)
    assert read == ["b.nii.gz", "b.nii.gz"]  # the image and its label map, nothing else
    np.testing.assert_array_equal(volume.mask, _volume(1).mask)
    with pytest.raises(DataFileError, match="label map .* does not exist"):
        load_volume_folder(tmp_path / "img", masks=tmp_path / "img" / "x")


def test_a_written_dataset_comes_back_with_its_label_maps(tmp_path):
    originals = [_volume(0), _volume(1, affine=_oblique_affine())]
    dataset = VolumeDataset(originals, [0, 1], ["normal", "lesion"])
    root = _write_dataset(tmp_path / "out", dataset)
    back = load_volume_folder(root, classes=["normal", "lesion"])
    assert back.classes == ["normal", "lesion"] and back.has_masks
    for i, original in enumerate(originals):
        volume = back.volume(i)
        np.testing.assert_array_equal(volume.mask, original.mask)
        np.testing.assert_allclose(volume.affine, original.affine, atol=1e-6)


def test_a_bad_series_in_a_folder_is_skipped_when_asked(tmp_path, caplog):
    root = _write_dataset(
        tmp_path / "out", volumes_from_arrays(np.zeros((2, *SHAPE), np.float32), [0, 0])
    )
    broken = sorted(p for p in (root / "0").iterdir() if p.is_dir())[0]
    _slices(broken)[3].unlink()
    with pytest.raises(DataFileError, match="misses 1 slice"):
        load_volume_folder(root)
    with caplog.at_level(logging.WARNING, logger="synthaug.data"):
        dataset = load_volume_folder(root, on_error="skip")
    assert len(dataset) == 1 and dataset.skipped[0][0] == str(broken)
    assert broken.name in caplog.text and "misses 1 slice" in caplog.text


def test_folder_errors(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        load_volume_folder(tmp_path / "absent")
    with pytest.raises(DataFileError, match="no class subfolders"):
        load_volume_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyDatasetError, match="no volumes"):
        load_volume_folder(tmp_path)
    with pytest.raises(InvalidParameterError, match="on_error"):
        load_volume_folder(tmp_path, on_error="maybe")


def test_a_class_folder_may_mix_series_and_nifti_files(tmp_path):
    root = _write_dataset(tmp_path / "out", VolumeDataset([_volume(0, mask=False)], [0], ["c"]))
    write_nifti(_volume(1), root / "c" / "extra.nii.gz")
    (root / "c" / "DICOMDIR").write_bytes(b"")  # a media directory is no slice
    dataset = load_volume_folder(root)
    kinds = sorted(type(dataset.source(i)).__name__ for i in range(len(dataset)))
    assert kinds == ["DicomSeriesSource", "NiftiSource"] and dataset.class_counts() == {0: 2}


@pytest.mark.parametrize(
    "module", [volume_module, dicom_series_module, nifti_module, volume_folder_module]
)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# -- splitting, selecting and stacking (what the harness will need) ----------------------------


def _labelled(labels: list[int]) -> VolumeDataset:
    rng = np.random.default_rng(1)
    vols = [
        Volume(rng.random((4, 8, 8)).astype(np.float32), mask=np.full((4, 8, 8), i % 3))
        for i in range(len(labels))
    ]
    return VolumeDataset(vols, labels, ["normal", "lesion"])


def test_volume_splits_match_image_splits_and_the_protocols_take_them():
    labels = [0] * 12 + [1] * 6
    volumes = _labelled(labels)
    images = from_arrays(np.zeros((18, 4), np.float32), labels)
    for seed in (0, 3):
        pairs = [
            (volumes.split_indices(0.25, seed), images.split_indices(0.25, seed)),
            (volumes.kfold_indices(3, 1, seed), images.kfold_indices(3, 1, seed)),
        ]
        for (train_v, test_v), (train_i, test_i) in pairs:
            assert np.array_equal(train_v, train_i) and np.array_equal(test_v, test_i)
    train, test = RandomSplits(test_size=0.5).indices(volumes, seed=2)
    assert np.bincount(volumes.labels[test].numpy()).tolist() == [6, 3]
    assert sorted([*train, *test]) == list(range(18))
    tests = [RepeatedKFold(folds=3).indices(volumes, seed=s)[1] for s in range(3)]
    assert sorted(np.concatenate(tests).tolist()) == list(range(18))
    train_ds, test_ds = volumes.split(0.5, seed=2)
    assert isinstance(train_ds, VolumeDataset) and test_ds.class_counts() == {0: 6, 1: 3}
    assert np.array_equal(test_ds.volume(0).array, volumes.volume(int(test[0])).array)


def test_volume_split_errors():
    with pytest.raises(InvalidDataError, match="single sample"):
        _labelled([0, 0, 0, 1]).split_indices(0.5)
    with pytest.raises(InvalidParameterError, match="test_size"):
        _labelled([0, 0, 1, 1]).split_indices(1.5)
    with pytest.raises(InvalidDataError, match="fewer than 3"):
        _labelled([0, 0, 0, 1, 1]).kfold_indices(3, 0)
    with pytest.raises(InvalidParameterError, match="fold must"):
        _labelled([0, 0, 1, 1]).kfold_indices(2, 2)
    with pytest.raises(EmptyDatasetError):
        VolumeDataset([], [], ["normal"]).split_indices(0.5)


def test_stacked_views_of_volumes_of_one_shape():
    ds = _labelled([0, 1, 0])
    stacked, masks = ds.stacked(), ds.stacked_masks()
    assert stacked.shape == (3, 1, 4, 8, 8) and stacked.dtype == torch.float32
    assert masks.shape == (3, 4, 8, 8) and masks.dtype == torch.int64
    for i in range(3):
        assert np.array_equal(stacked[i].numpy(), ds.volume(i).array)
        assert np.array_equal(masks[i].numpy(), ds.volume(i).mask)


def test_stacking_refuses_mixed_shapes_missing_masks_empty_sets_and_too_little_memory(
    monkeypatch,
):
    mixed = VolumeDataset(
        [Volume(np.zeros((4, 8, 8), np.float32)), Volume(np.zeros((5, 8, 8), np.float32))] * 2,
        [0, 1, 0, 1],
    )
    with pytest.raises(ShapeMismatchError, match=r"\(1, 4, 8, 8\) \(2 volumes\), \(1, 5, 8, 8\)"):
        mixed.stacked()
    unmasked = VolumeDataset([Volume(np.zeros((4, 8, 8), np.float32))] * 2, [0, 1])
    with pytest.raises(InvalidDataError, match="2 of 2 volumes have no label map"):
        unmasked.stacked_masks()
    with pytest.raises(EmptyDatasetError):
        VolumeDataset([], []).stacked()
    monkeypatch.setattr(memory_module, "available_memory", lambda: 1000)
    with pytest.raises(InvalidParameterError, match="memory"):
        _labelled([0, 1]).stacked()
