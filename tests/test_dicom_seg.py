"""Lesion masks written as DICOM Segmentation objects beside their synthetic images, read back."""

import numpy as np
import pydicom
import pytest
import torch

from synthaug import __version__
from synthaug.data import load_dicom_folder, make_phantoms, read_dicom_seg, write_dicom
from synthaug.errors import (
    DataFileError,
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
)

pytest.importorskip("highdicom")


def _images_and_masks(n: int = 4, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images with a different box per mask; mask 1 is empty."""
    images = torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0))
    masks = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i in range(n):
        if i != 1:
            masks[i, 0, i : i + 5, 2 * i : 2 * i + 3] = True
    return images, masks


@pytest.fixture
def written(tmp_path):
    images, masks = _images_and_masks()
    files = write_dicom(images, [0, 1, 0, 1], tmp_path, classes=["a", "b"], masks=masks)
    return tmp_path, files, masks


def test_seg_round_trip_references_its_image(written):
    out, files, masks = written
    segs = sorted((out / "segmentations").iterdir())
    assert [s.name for s in segs] == [
        "synthetic_a_000000_seg.dcm",
        "synthetic_a_000002_seg.dcm",
        "synthetic_b_000003_seg.dcm",
    ]
    for index in (0, 2, 3):
        image = pydicom.dcmread(files[index])
        seg_path = out / "segmentations" / f"{files[index].stem}_seg.dcm"
        mask, uid = read_dicom_seg(seg_path)
        assert mask.dtype == torch.bool and mask.shape == (16, 16)
        assert torch.equal(mask, masks[index, 0])
        assert uid == image.SOPInstanceUID
        seg = pydicom.dcmread(seg_path)
        assert seg.SOPClassUID == pydicom.uid.SegmentationStorage
        assert seg.SegmentationType == "BINARY" and seg.Modality == "SEG"
        referenced = seg.ReferencedSeriesSequence[0]
        assert referenced.SeriesInstanceUID == image.SeriesInstanceUID
        assert referenced.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == uid
        frame = seg.PerFrameFunctionalGroupsSequence[0]
        source = frame.DerivationImageSequence[0].SourceImageSequence[0]
        assert source.ReferencedSOPInstanceUID == uid
        assert seg.StudyInstanceUID == image.StudyInstanceUID
        assert seg.SeriesInstanceUID != image.SeriesInstanceUID
        assert seg.InstanceNumber == image.InstanceNumber


def test_seg_is_marked_synthetic_and_coded(written):
    out, _, _ = written
    segs = [pydicom.dcmread(p) for p in sorted((out / "segmentations").iterdir())]
    assert len({s.SeriesInstanceUID for s in segs}) == 1
    assert len({s.SOPInstanceUID for s in segs}) == 3
    for seg in segs:
        assert seg.SeriesDescription.startswith("SYNTHETIC")
        assert str(seg.PatientName) == "SYNTHETIC^PHANTOM" and seg.PatientID == "SYNTHETIC"
        assert seg.PatientIdentityRemoved == "YES" and seg.DeidentificationMethod
        assert seg.ContentLabel == "SYNTHETIC_MASK"
        assert "SYNTHETIC" in seg.ContentDescription and "synthaug" in seg.ContentDescription
        (segment,) = seg.SegmentSequence
        assert segment.SegmentLabel == "lesion"
        assert segment.SegmentAlgorithmType == "AUTOMATIC"
        assert segment.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Lesion"
        algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
        assert algorithm.AlgorithmName == "synthaug" and algorithm.AlgorithmVersion == __version__


def test_folder_reads_back_exactly_the_images(written):
    out, files, _ = written
    ds = load_dicom_folder(out, size=16)
    assert ds.classes == ["a", "b"] and len(ds) == 4
    assert ds.labels.tolist() == [0, 0, 1, 1]  # a_0, a_2, b_1, b_3 in sorted file order
    assert {m["file"] for m in ds.metadata} == {str(f) for f in files}
    # Also when the class names are given, so no folder is taken for a class of its own.
    assert len(load_dicom_folder(out, size=16, classes=["a", "b"])) == 4


def test_class_named_segmentations_keeps_its_images(tmp_path):
    images, masks = _images_and_masks(2)
    write_dicom(images, ["segmentations", "x"], tmp_path, masks=masks.numpy().astype(np.uint8))
    ds = load_dicom_folder(tmp_path, size=16)
    assert ds.classes == ["segmentations", "x"] and ds.labels.tolist() == [0, 1]
    assert (tmp_path / "segmentations" / "synthetic_segmentations_000000_seg.dcm").is_file()


def test_phantom_masks_and_three_dim_masks(tmp_path):
    phantoms, masks = make_phantoms((2, 2), size=16, seed=0, return_masks=True)
    write_dicom(phantoms, out_dir=tmp_path, masks=masks[:, 0], segment_label="nodule")
    segs = sorted((tmp_path / "segmentations").iterdir())
    assert len(segs) == int(masks.flatten(1).any(1).sum())
    for seg in segs:
        assert pydicom.dcmread(seg).SegmentSequence[0].SegmentLabel == "nodule"


def test_no_masks_no_segmentations(tmp_path):
    images, masks = _images_and_masks(2)
    write_dicom(images, [0, 1], tmp_path / "none")
    write_dicom(images, [0, 1], tmp_path / "empty", masks=torch.zeros_like(masks))
    assert not (tmp_path / "none" / "segmentations").exists()
    assert not (tmp_path / "empty" / "segmentations").exists()


@pytest.mark.parametrize(
    ("masks", "error", "match"),
    [
        (torch.zeros(3, 1, 16, 16, dtype=torch.bool), ShapeMismatchError, "3 masks for 4 images"),
        (torch.zeros(4, 1, 8, 16, dtype=torch.bool), ShapeMismatchError, "height and width"),
        (torch.zeros(4, 2, 16, 16, dtype=torch.bool), ShapeMismatchError, "one channel"),
        (torch.zeros(16, 16, dtype=torch.bool), ShapeMismatchError, r"\(N, H, W\)"),
        (torch.full((4, 16, 16), 0.5), InvalidDataError, "binary"),
        (torch.full((4, 16, 16), 2), InvalidDataError, "binary"),
        (torch.full((4, 16, 16), float("nan")), InvalidDataError, "binary"),
    ],
)
def test_bad_masks_write_nothing(tmp_path, masks, error, match):
    images, _ = _images_and_masks()
    with pytest.raises(error, match=match):
        write_dicom(images, [0, 1, 0, 1], tmp_path, masks=masks)
    assert not any(tmp_path.iterdir())


def test_bad_segment_label_writes_nothing(tmp_path):
    images, masks = _images_and_masks()
    for label in ("", "x" * 65, 3):
        with pytest.raises(InvalidParameterError, match="segment_label"):
            write_dicom(images, [0, 1, 0, 1], tmp_path, masks=masks, segment_label=label)
    assert not any(tmp_path.iterdir())


def test_masks_with_an_image_dataset(tmp_path):
    phantoms = make_phantoms((1, 1), size=16, seed=0)
    masks = torch.ones(2, 1, 16, 16, dtype=torch.bool)
    files = write_dicom(phantoms, out_dir=tmp_path, masks=masks)
    assert len(files) == 2 and len(list((tmp_path / "segmentations").iterdir())) == 2


def test_read_dicom_seg_refuses_what_it_cannot_read(tmp_path, written):
    _, files, _ = written
    with pytest.raises(DataFileError, match="does not exist"):
        read_dicom_seg(tmp_path / "missing.dcm")
    (tmp_path / "junk.dcm").write_bytes(b"not dicom")
    with pytest.raises(DataFileError, match="not a DICOM file"):
        read_dicom_seg(tmp_path / "junk.dcm")
    with pytest.raises(DataFileError, match="not a DICOM Segmentation"):
        read_dicom_seg(files[0])
