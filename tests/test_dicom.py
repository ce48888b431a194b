"""DICOM in and out: pydicom's real CT/MR test files, files the tests write, every bad input."""

import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file

from synthaug.data import (
    Provenance,
    SourceItem,
    load_dicom_folder,
    make_phantoms,
    real_provenance,
    write_dicom,
)
from synthaug.errors import (
    DataFileError,
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
    SynthaugError,
    SynthaugWarning,
)


def _copy(name: str, folder: Path, as_name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(get_testdata_file(name), folder / (as_name or name)))


@pytest.fixture
def ct_mr(tmp_path):
    _copy("CT_small.dcm", tmp_path / "ct")
    _copy("MR_small.dcm", tmp_path / "mr")
    return tmp_path


# -- reading ---------------------------------------------------------------------------------
def test_folder_labels_and_metadata(ct_mr):
    with pytest.warns(SynthaugWarning, match=r"stretched 2 file\(s\) .* to 32x48"):
        ds = load_dicom_folder(ct_mr, size=(32, 48))  # 128x128 slices, made wider
    assert ds.classes == ["ct", "mr"]
    assert ds.sample_shape == (1, 32, 48)
    assert ds.labels.tolist() == [0, 1]
    assert ds.images.min() >= 0 and ds.images.max() <= 1
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert ds.metadata[0]["SOPInstanceUID"] == ct.SOPInstanceUID
    assert ds.metadata[0]["StudyInstanceUID"] == ct.StudyInstanceUID
    assert ds.metadata[0]["modality"] == "CT" and ds.metadata[1]["modality"] == "MR"
    assert ds.metadata[0]["file"].endswith("CT_small.dcm") and ds.metadata[0]["frame"] == 0
    assert ds.skipped == []


def test_rescale_then_explicit_window_matches_hand_computation(ct_mr):
    # CT_small has slope 1, intercept -1024: a (40, 400) window on Hounsfield units.
    ds = load_dicom_folder(ct_mr, size=128, window=(40, 400))
    raw = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array.astype(np.float64)
    hu = raw * 1 - 1024
    want = np.clip((hu - 39.5) / 399 + 0.5, 0, 1)
    np.testing.assert_allclose(ds.images[0, 0].numpy(), want, atol=1e-6)


def test_file_window_is_used_and_minmax_otherwise(ct_mr):
    raw = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array.astype(np.float64)
    auto = load_dicom_folder(ct_mr, size=64).images[1, 0].numpy()  # MR_small: window 600/1600
    np.testing.assert_allclose(auto, np.clip((raw - 599.5) / 1599 + 0.5, 0, 1), atol=1e-6)
    mm = load_dicom_folder(ct_mr, size=64, window="minmax").images[1, 0].numpy()
    np.testing.assert_allclose(mm, (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-6)
    # CT_small has no window in the file: "auto" falls back to min-max.
    ct_auto = load_dicom_folder(ct_mr, size=128).images[0, 0]
    assert float(ct_auto.min()) == 0.0 and float(ct_auto.max()) == 1.0


def test_monochrome1_is_inverted(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    (tmp_path / "m2").mkdir()
    (tmp_path / "m1").mkdir()
    ds.save_as(tmp_path / "m2" / "a.dcm")
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "m1" / "a.dcm")
    out = load_dicom_folder(tmp_path, size=64, classes=["m2", "m1"])
    torch.testing.assert_close(out.images[1], 1 - out.images[0])


def test_multiframe_gives_one_image_per_frame(tmp_path):
    _copy("rtdose.dcm", tmp_path / "dose")
    ds = load_dicom_folder(tmp_path, size=16)
    assert len(ds) == 15
    assert [m["frame"] for m in ds.metadata] == list(range(15))
    assert len({m["file"] for m in ds.metadata}) == 1


def test_resize_is_antialiased(tmp_path):
    # A one-pixel checkerboard averages to grey when shrunk with antialiasing (not aliased to 0/1).
    board = (np.indices((64, 64)).sum(0) % 2).astype(np.float32)
    write_dicom(torch.from_numpy(board)[None, None], [0], tmp_path, classes=["x"], bits=8)
    ds = load_dicom_folder(tmp_path, size=16)
    assert torch.allclose(ds.images, torch.full_like(ds.images, 0.5), atol=0.02)


def test_compressed_files_decode_like_uncompressed(tmp_path):
    # RLE, JPEG-LS lossless and JPEG 2000 lossless copies of MR_small decode to the same image.
    for name in (
        "MR_small.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
    ):
        _copy(name, tmp_path / "mr")
    ds = load_dicom_folder(tmp_path, size=64)
    assert len(ds) == 4
    for i in range(1, 4):
        torch.testing.assert_close(ds.images[i], ds.images[0])


def test_csv_labels_by_file_name_and_uid(tmp_path):
    _copy("CT_small.dcm", tmp_path)
    _copy("MR_small.dcm", tmp_path)
    mr_uid = pydicom.dcmread(get_testdata_file("MR_small.dcm")).SOPInstanceUID
    (tmp_path / "labels.csv").write_text(f"file,label\nCT_small.dcm,sick\n{mr_uid},healthy\n")
    ds = load_dicom_folder(tmp_path, labels="labels.csv", size=16)
    assert ds.classes == ["healthy", "sick"]
    by_modality = {
        m["modality"]: ds.classes[int(y)] for m, y in zip(ds.metadata, ds.labels, strict=True)
    }
    assert by_modality == {"CT": "sick", "MR": "healthy"}
    # With a mapping, labels.csv is just another file in the folder: unlabelled, so skipped.
    mapped = load_dicom_folder(
        tmp_path, labels={"CT_small.dcm": "a", "MR_small.dcm": "b"}, size=16, on_error="skip"
    )
    assert mapped.classes == ["a", "b"] and len(mapped) == 2
    assert [Path(f).name for f, _ in mapped.skipped] == ["labels.csv"]


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make_bad", "reason"),
    [
        (lambda d: (d / "notes.dcm").write_text("not an image"), "not a DICOM file"),
        (lambda d: _copy("MR_truncated.dcm", d), "cannot be decoded"),
        (lambda d: _copy("rtplan.dcm", d), "no pixel data"),
        (
            lambda d: (d / "cut.dcm").write_bytes(
                Path(get_testdata_file("CT_small.dcm")).read_bytes()[:600]
            ),
            "",
        ),
    ],
    ids=["non-dicom", "truncated-pixels", "no-pixel-data", "truncated-header"],
)
def test_bad_files_raise_or_skip(ct_mr, caplog, make_bad, reason):
    make_bad(ct_mr / "ct")
    with pytest.raises(DataFileError) as exc:
        load_dicom_folder(ct_mr, size=16)
    assert isinstance(exc.value, SynthaugError)
    assert str(ct_mr / "ct") in str(exc.value) and reason in str(exc.value)
    with caplog.at_level(logging.WARNING, logger="synthaug.data"):
        ds = load_dicom_folder(ct_mr, size=16, on_error="skip")
    assert len(ds) == 2 and len(ds.skipped) == 1
    assert ds.skipped[0][0].startswith(str(ct_mr / "ct")) and reason in ds.skipped[0][1]
    assert "skipping DICOM file" in caplog.text


def test_missing_decoder_names_the_extra(ct_mr, monkeypatch):
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless

    _copy("MR_small_jpeg_ls_lossless.dcm", ct_mr / "mr")
    decoder = get_decoder(JPEGLSLossless)
    # Simulate an install without synthaug[dicom]: no plugin can decode JPEG-LS.
    monkeypatch.setattr(decoder, "_available", {})
    with pytest.raises(DataFileError, match=r"JPEG-LS.*pip install 'synthaug\[dicom\]'"):
        load_dicom_folder(ct_mr, size=16)
    ds = load_dicom_folder(ct_mr, size=16, on_error="skip")
    assert len(ds) == 2 and "synthaug[dicom]" in ds.skipped[0][1]


def test_bad_arguments_and_folders(tmp_path, ct_mr):
    with pytest.raises(DataFileError, match="does not exist"):
        load_dicom_folder(tmp_path / "nowhere")
    with pytest.raises(InvalidParameterError, match="on_error"):
        load_dicom_folder(ct_mr, on_error="ignore")
    with pytest.raises(InvalidParameterError, match="window"):
        load_dicom_folder(ct_mr, window="bone")
    with pytest.raises(InvalidParameterError, match="window width"):
        load_dicom_folder(ct_mr, window=(40, 0))
    with pytest.raises(InvalidParameterError, match="size"):
        load_dicom_folder(ct_mr, size=(0, 8))
    flat = tmp_path / "flat"
    _copy("CT_small.dcm", flat)
    with pytest.raises(DataFileError, match="no class subfolders"):
        load_dicom_folder(flat)
    with pytest.raises(DataFileError, match="does not exist"):
        load_dicom_folder(flat, labels="missing.csv")
    (flat / "bad.csv").write_text("file,label\nCT_small.dcm\n")
    with pytest.raises(DataFileError, match="data row 1"):
        load_dicom_folder(flat, labels=flat / "bad.csv")
    with pytest.raises(DataFileError, match="matches a key"):
        load_dicom_folder(flat, labels={"other.dcm": "x"})
    with pytest.raises(DataFileError, match="not one of classes"):
        load_dicom_folder(ct_mr, classes=["ct"])
    empty = tmp_path / "empty" / "cls"
    empty.mkdir(parents=True)
    (empty / "junk.txt").write_text("x")
    with pytest.raises(EmptyDatasetError, match="no usable DICOM"):
        load_dicom_folder(empty.parent, on_error="skip")


def test_csv_with_unlisted_file(tmp_path):
    _copy("CT_small.dcm", tmp_path)
    _copy("MR_small.dcm", tmp_path)
    (tmp_path / "labels.csv").write_text("CT_small.dcm,a\n")
    with pytest.raises(DataFileError, match="MR_small.dcm.*no label"):
        load_dicom_folder(tmp_path, labels="labels.csv")
    ds = load_dicom_folder(tmp_path, labels="labels.csv", on_error="skip", size=8)
    assert len(ds) == 1 and ds.skipped[0][0].endswith("MR_small.dcm")


# -- writing ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 16])
def test_write_then_read_round_trip(tmp_path, bits):
    phantoms = make_phantoms((3, 2), size=32, kind="brain", seed=0)
    files = write_dicom(phantoms, out_dir=tmp_path, bits=bits, modality="MR")
    assert len(files) == 5 and all(f.suffix == ".dcm" for f in files)
    back = load_dicom_folder(tmp_path, size=32, classes=phantoms.classes)
    order = np.argsort([str(f) for f in files])  # the loader reads files in sorted order
    torch.testing.assert_close(back.labels, phantoms.labels[order])
    err = (back.images - phantoms.images[order]).abs().max()
    assert err <= 0.5 / (2**bits - 1) + 1e-6
    assert all(m["modality"] == "MR" for m in back.metadata)


def test_written_files_are_valid_synthetic_secondary_captures(tmp_path):
    files = write_dicom(torch.rand(3, 1, 8, 8), ["a", "b", "a"], tmp_path / "one")
    again = write_dicom(torch.rand(1, 8, 8), [0], tmp_path / "two")
    sets = [pydicom.dcmread(f) for f in files]
    other = pydicom.dcmread(again[0])
    for ds in sets:
        assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert "SYNTHETIC" in ds.SeriesDescription and "SYNTHETIC" in ds.ImageComments
        assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert len({ds.SOPInstanceUID for ds in sets}) == 3
    assert len({ds.StudyInstanceUID for ds in sets}) == 1
    assert other.StudyInstanceUID != sets[0].StudyInstanceUID
    assert other.SeriesInstanceUID != sets[0].SeriesInstanceUID


def _all_values(ds: pydicom.Dataset) -> list[str]:
    out = []
    for elem in ds.iterall():
        if elem.VR not in ("OB", "OW", "SQ", "UN"):
            out.append(str(elem.value))
    for elem in ds.file_meta:
        out.append(str(elem.value))
    return out


def test_no_patient_data_reaches_the_output(tmp_path):
    # Source files that carry patient names, IDs, birth dates and UIDs.
    src = tmp_path / "src"
    for name in ("CT_small.dcm", "MR_small.dcm", "rtdose.dcm"):
        _copy(name, src / "cls")
    sources = [pydicom.dcmread(p) for p in sorted((src / "cls").iterdir())]
    secrets = set()
    for s in sources:
        for key in (
            "PatientName",
            "PatientID",
            "PatientBirthDate",
            "InstitutionName",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "SOPInstanceUID",
            "StudyDate",
            "ReferringPhysicianName",
            "AccessionNumber",
            "StudyID",
        ):
            value = str(s.get(key, "") or "")
            if len(value) >= 3:
                secrets.add(value)
    assert {"CompressedSamples^CT1", "1CT1", "Lastname^Firstname"} <= secrets
    loaded = load_dicom_folder(src, size=16)
    files = write_dicom(loaded, out_dir=tmp_path / "out")
    for f in files:
        raw = f.read_bytes()
        values = _all_values(pydicom.dcmread(f))
        for secret in secrets:
            assert secret.encode() not in raw, f"{secret!r} leaked into {f}"
            assert all(secret not in v for v in values)
        ds = pydicom.dcmread(f)
        assert str(ds.PatientName) == "SYNTHETIC^PHANTOM" and ds.PatientID == "SYNTHETIC"
        assert ds.get("PatientBirthDate", "") == "" and "InstitutionName" not in ds


def test_write_bad_inputs(tmp_path):
    with pytest.raises(InvalidDataError, match="NaN"):
        write_dicom(torch.full((1, 1, 4, 4), float("nan")), [0], tmp_path)
    with pytest.raises(InvalidDataError, match=r"\[0, 1\]"):
        write_dicom(torch.full((1, 1, 4, 4), 2.0), [0], tmp_path)
    with pytest.raises(ShapeMismatchError, match="grayscale"):
        write_dicom(torch.rand(1, 3, 4, 4), [0], tmp_path)
    with pytest.raises(ShapeMismatchError, match="non-empty"):
        write_dicom(torch.rand(0, 1, 4, 4), [], tmp_path)
    with pytest.raises(ShapeMismatchError, match="labels"):
        write_dicom(torch.rand(2, 1, 4, 4), [0], tmp_path)
    with pytest.raises(InvalidDataError, match="floats"):
        write_dicom(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), [0], tmp_path)
    with pytest.raises(InvalidParameterError, match="bits"):
        write_dicom(torch.rand(1, 1, 4, 4), [0], tmp_path, bits=12)
    with pytest.raises(InvalidParameterError, match="modality"):
        write_dicom(torch.rand(1, 1, 4, 4), [0], tmp_path, modality="ct scan")
    with pytest.raises(InvalidDataError, match="out of range"):
        write_dicom(torch.rand(1, 1, 4, 4), [5], tmp_path, classes=["a"])
    with pytest.raises(InvalidParameterError, match="ImageDataset"):
        write_dicom(make_phantoms(1, size=16), [0, 1], tmp_path)
    assert not any(tmp_path.iterdir())


def test_write_without_highdicom_names_the_extra(tmp_path, monkeypatch):
    import sys

    from synthaug.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "highdicom", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'synthaug\[dicom\]'"):
        write_dicom(torch.rand(1, 1, 4, 4), [0], tmp_path)


def test_written_files_say_synthetic_conversion_and_claim_no_orientation(tmp_path):
    files = write_dicom(torch.rand(2, 1, 8, 8), ["a", "b"], tmp_path / "out")
    for f in files:
        ds = pydicom.dcmread(f)
        assert ds.ConversionType == "SYN"  # Synthetic Image, not Digitized Image
        assert "PatientOrientation" in ds and ds.PatientOrientation in ("", None)
        assert not ds.PatientOrientation


def test_class_names_can_be_kept_out_of_the_files(tmp_path):
    images = torch.rand(3, 1, 8, 8)
    files = write_dicom(
        images, [1, 0, 1], tmp_path / "out", classes=["benign", "malignant"], class_names=False
    )
    assert [f.parent.name for f in files] == ["class_1", "class_0", "class_1"]
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"benign" not in data and b"malignant" not in data, path
        assert "benign" not in path.name and "malignant" not in path.name
    back = load_dicom_folder(tmp_path / "out", size=8)
    assert back.classes == ["class_0", "class_1"] and sorted(back.labels.tolist()) == [0, 1, 1]


# -- derived from patient images -------------------------------------------------------------
def test_derived_files_say_real_anatomy_not_synthetic(tmp_path):
    # Real pixels that synthaug changed (copy-paste and the like): patient data, so neither
    # "synthetic", nor "no patient data", nor Patient Identity Removed YES, in image or mask.
    pytest.importorskip("highdicom")
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    masks = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    masks[0, 0, 2:5, 2:5] = True
    files = write_dicom(
        torch.rand(2, 1, 8, 8),
        ["lesion", "lesion"],
        tmp_path / "out",
        origin="derived",
        derivation="made by synthaug copy-paste",
        source_studies=[ct.StudyInstanceUID],
        masks=masks,
        modality="CT",
    )
    assert [f.name for f in files] == ["derived_lesion_000000.dcm", "derived_lesion_000001.dcm"]
    seg_path = tmp_path / "out" / "segmentations" / "derived_lesion_000000_seg.dcm"
    for f in files:
        ds = pydicom.dcmread(f)
        assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "OTHER"]
        assert ds.ConversionType == "WSD" and ds.Modality == "CT"
        assert ds.PatientIdentityRemoved == "NO"
        assert (
            ds.DeidentificationMethod == "synthaug: derived from patient images; not de-identified"
        )
        assert ds.SeriesDescription.startswith("DERIVED")
        assert "real patient anatomy" in ds.ImageComments and "not synthetic" in ds.ImageComments
        assert ds.DerivationDescription.startswith("made by synthaug copy-paste; ")
        assert ct.StudyInstanceUID in ds.DerivationDescription
        assert str(ds.PatientName) == "DERIVED^UNKNOWN" and ds.PatientID == "DERIVED"
    seg = pydicom.dcmread(seg_path)
    assert seg.PatientIdentityRemoved == "NO" and seg.ContentLabel == "DERIVED_MASK"
    assert seg.SeriesDescription.startswith("DERIVED") and str(seg.PatientName) == "DERIVED^UNKNOWN"
    for path in [*files, seg_path]:
        raw = path.read_bytes()
        assert b"SYNTHETIC" not in raw and b"no patient data" not in raw, path
    rows = (tmp_path / "out" / "manifest.csv").read_text().splitlines()
    assert rows[0].startswith("file,class,origin,synthetic,")
    assert all(",derived,no," in row for row in rows[1:])
    back = load_dicom_folder(tmp_path / "out", size=8)
    assert len(back) == 2 and back.classes == ["lesion"]


def test_synthetic_files_keep_their_marking(tmp_path):
    files = write_dicom(torch.rand(1, 1, 8, 8), [0], tmp_path / "out")
    ds = pydicom.dcmread(files[0])
    assert files[0].name == "synthetic_0_000000.dcm"
    assert ds.ConversionType == "SYN" and ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethod.endswith("contains no patient data")
    assert ds.SeriesDescription == "SYNTHETIC synthaug images" and ds.Modality == "OT"
    assert "DerivationDescription" not in ds


def test_derivation_description_names_the_studies_that_fit(tmp_path):
    image = torch.rand(1, 1, 4, 4)
    unknown = write_dicom(image, [0], tmp_path / "a", origin="derived", derivation="pasted")
    assert pydicom.dcmread(unknown[0]).DerivationDescription == (
        "pasted; the studies of the patient images are unknown to synthaug"
    )
    uids = [f"1.2.840.99999.{i:050d}" for i in range(40)]  # 64 characters each
    files = write_dicom(
        image, [0], tmp_path / "b", origin="derived", source_studies=[*uids, uids[0]]
    )
    text = pydicom.dcmread(files[0]).DerivationDescription
    assert len(text) <= 1024 and "of 40 studies" in text  # an ST holds 1024 characters
    shown = [u for u in uids if u in text]
    assert shown == uids[: len(shown)] and 10 <= len(shown) < 40
    assert text.endswith(f" and {40 - len(shown)} more")


def test_derived_arguments_are_checked(tmp_path):
    image = torch.rand(1, 1, 4, 4)
    with pytest.raises(InvalidParameterError, match="origin must be 'synthetic'"):
        write_dicom(image, [0], tmp_path, origin="real")
    with pytest.raises(InvalidParameterError, match="need origin='derived'"):
        write_dicom(image, [0], tmp_path, derivation="pasted")
    with pytest.raises(InvalidParameterError, match="need origin='derived'"):
        write_dicom(image, [0], tmp_path, source_studies=["1.2.3"])
    with pytest.raises(InvalidParameterError, match="not one string"):
        write_dicom(image, [0], tmp_path, origin="derived", source_studies="1.2.3")
    with pytest.raises(InvalidParameterError, match="Study Instance UIDs"):
        write_dicom(image, [0], tmp_path, origin="derived", source_studies=["1.2.x"])
    with pytest.raises(InvalidParameterError, match="calls derived images synthetic"):
        write_dicom(image, [0], tmp_path, origin="derived", series_description="SYNTHETIC CT")
    assert not any(tmp_path.iterdir())


# -- which real images a derived file came from ---------------------------------------------
PASTED = ("spatial-resampling", "pixel-addition")


def test_derived_files_reference_their_source_images_and_operations(ct_mr, tmp_path):
    # A slice of the CT file with a lesion of the MR file pasted in (twice: it is listed once),
    # and a copy of the MR file: each file names exactly its own sources and their studies.
    source = load_dicom_folder(ct_mr, size=8)
    ct, mr = (pydicom.dcmread(get_testdata_file(n)) for n in ("CT_small.dcm", "MR_small.dcm"))
    pasted = (SourceItem(0, "image"), SourceItem(1, "lesion"), SourceItem(1, "lesion"))
    provenance = [
        Provenance("derived", "lesions pasted into a normal slice", pasted, PASTED),
        Provenance("derived", "a copy", (SourceItem(1, "image"),)),
    ]
    files = write_dicom(
        torch.rand(2, 1, 8, 8),
        [0, 0],
        tmp_path / "out",
        derivation="made by a test",
        provenance=provenance,
        source_metadata=source.metadata,
    )
    first, second = (pydicom.dcmread(f) for f in files)
    assert first.ConversionType == "WSD" and first.PatientIdentityRemoved == "NO"
    refs = [
        (r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID) for r in first.SourceImageSequence
    ]
    assert refs == [(ct.SOPClassUID, ct.SOPInstanceUID), (mr.SOPClassUID, mr.SOPInstanceUID)]
    for ref in first.SourceImageSequence:
        (purpose,) = ref.PurposeOfReferenceCodeSequence
        assert (purpose.CodeValue, purpose.CodingSchemeDesignator) == ("121322", "DCM")
        assert "ReferencedFrameNumber" not in ref  # single-frame objects are referenced whole
    codes = [(c.CodeValue, c.CodeMeaning) for c in first.DerivationCodeSequence]
    assert codes == [("113085", "Spatial resampling"), ("113042", "Pixel by pixel addition")]
    assert first.DerivationDescription.startswith("made by a test; lesions pasted into")
    assert ct.StudyInstanceUID in first.DerivationDescription
    assert mr.StudyInstanceUID in first.DerivationDescription
    (ref,) = second.SourceImageSequence
    assert ref.ReferencedSOPInstanceUID == mr.SOPInstanceUID
    assert "DerivationCodeSequence" not in second  # a copy: no operation to name
    assert ct.StudyInstanceUID not in second.DerivationDescription
    rows = (tmp_path / "out" / "manifest.csv").read_text().splitlines()
    assert rows[0] == "file,class,origin,synthetic,sop_instance_uid,made_from"
    assert rows[1].endswith(
        f"image={source.metadata[0]['file']} lesion={source.metadata[1]['file']}"
    )


def test_frames_of_multi_frame_objects_and_unknown_sop_classes_are_referenced(tmp_path):
    enhanced_ct = "1.2.840.10008.5.1.4.1.1.2.1"  # a multi-frame IOD
    metadata = [
        {
            "SOPClassUID": enhanced_ct,
            "SOPInstanceUID": "1.2.3.4",
            "NumberOfFrames": "3",
            "frame": 1,
        },
        {"SOPClassUID": "1.2.3.999", "SOPInstanceUID": "1.2.3.5", "NumberOfFrames": "", "frame": 0},
        {"file": "a.png"},  # not DICOM: named in the manifest, not referenced in the file
    ]
    items = (SourceItem(0, "image"), SourceItem(1, "blend"), SourceItem(2, "lesion"))
    (path,) = write_dicom(
        torch.rand(1, 1, 4, 4),
        provenance=[Provenance("derived", "mixed", items)],
        source_metadata=metadata,
        out_dir=tmp_path / "out",
    )
    frame, private = pydicom.dcmread(path).SourceImageSequence
    assert frame.ReferencedSOPInstanceUID == "1.2.3.4" and frame.ReferencedFrameNumber == 2
    assert private.ReferencedSOPClassUID == "1.2.3.999" and "ReferencedFrameNumber" not in private
    made_from = (tmp_path / "out" / "manifest.csv").read_text().splitlines()[1].split(",")[-1]
    assert made_from == "image=#0[frame 2] blend=#1 lesion=a.png"


def test_a_generated_image_in_a_derived_series_says_it_had_no_patient_input(tmp_path):
    provenance = [
        Provenance("synthetic", "generated by cvae"),
        Provenance("derived", "a copy", (SourceItem(0, "image"),)),
    ]
    files = write_dicom(torch.rand(2, 1, 4, 4), [0, 0], tmp_path, provenance=provenance)
    generated, copied = (pydicom.dcmread(f) for f in files)
    assert generated.ConversionType == copied.ConversionType == "WSD"  # one series, one marking
    assert "no patient image was its input" in generated.DerivationDescription
    assert "SourceImageSequence" not in generated and "SourceImageSequence" not in copied


def test_provenance_that_contradicts_the_marking_is_refused(tmp_path):
    image = torch.rand(2, 1, 4, 4)
    derived = [Provenance("derived", "a copy", (SourceItem(0, "image"),))] * 2
    synthetic = [Provenance("synthetic", "generated")] * 2
    with pytest.raises(InvalidParameterError, match="would call image 0 synthetic"):
        write_dicom(image, out_dir=tmp_path, origin="synthetic", provenance=derived)
    with pytest.raises(InvalidParameterError, match="every provenance record says synthetic"):
        write_dicom(image, out_dir=tmp_path, origin="derived", provenance=synthetic)
    with pytest.raises(InvalidParameterError, match="image 1 is a real item"):
        write_dicom(image, out_dir=tmp_path, provenance=[synthetic[0], real_provenance(4)])
    with pytest.raises(ShapeMismatchError, match="1 provenance records for 2 images"):
        write_dicom(image, out_dir=tmp_path, provenance=derived[:1])
    with pytest.raises(InvalidParameterError, match="Provenance records"):
        write_dicom(image, out_dir=tmp_path, provenance=["derived", "derived"])
    with pytest.raises(InvalidParameterError, match="give provenance too"):
        write_dicom(image, out_dir=tmp_path, source_metadata=[{}])
    with pytest.raises(InvalidParameterError, match="training item 0, but source_metadata has 0"):
        write_dicom(image, out_dir=tmp_path, provenance=derived, source_metadata=[])
    assert not any(tmp_path.iterdir())
    # Without an origin, the provenance decides it.
    files = write_dicom(image, out_dir=tmp_path / "d", provenance=derived)
    assert pydicom.dcmread(files[0]).ConversionType == "WSD"
    files = write_dicom(image, out_dir=tmp_path / "s", provenance=synthetic)
    assert pydicom.dcmread(files[0]).ConversionType == "SYN"
