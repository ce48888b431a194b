"""Write images as synthetic Secondary Capture DICOM files that carry no patient data, and their
lesion masks as DICOM Segmentation objects that reference them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pydicom
import torch
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, SegmentationStorage, generate_uid

from synthaug._utils import import_optional
from synthaug._version import __version__
from synthaug.data._dataset import ImageDataset
from synthaug.data._output import atomic_output, write_manifest
from synthaug.errors import (
    DataFileError,
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
)

SYNTHETIC_MARK = "SYNTHETIC"
_PLACEHOLDER_NAME = "SYNTHETIC^PHANTOM"
_PLACEHOLDER_ID = "SYNTHETIC"
_DEIDENTIFICATION = "synthaug: synthetic image, generated; contains no patient data"
SEGMENTATION_FOLDER = "segmentations"
# Content Label is a CS: at most 16 upper-case letters, digits, spaces or underscores.
_SEG_CONTENT_LABEL = "SYNTHETIC_MASK"


def write_dicom(
    images: torch.Tensor | np.ndarray | ImageDataset,
    labels: torch.Tensor | np.ndarray | Sequence[int] | Sequence[str] | None = None,
    out_dir: str | Path = "synthetic-dicom",
    *,
    classes: Sequence[str] | None = None,
    modality: str = "OT",
    series_description: str = "SYNTHETIC synthaug images",
    bits: int = 16,
    masks: torch.Tensor | np.ndarray | None = None,
    segment_label: str = "lesion",
    manifest: Sequence[Mapping[str, object]] | None = None,
    overwrite: bool = False,
    class_names: bool = True,
) -> list[Path]:
    """Write one Secondary Capture DICOM file per image, marked synthetic, without patient data.

    Files go to ``out_dir/<class>/synthetic_<class>_<index>.dcm``, so :func:`load_dicom_folder`
    reads them back with their labels, and ``out_dir/manifest.csv`` lists them (file, class,
    SOP Instance UID, mask file, and any ``manifest`` columns). The folder is built aside and
    renamed into place: an interrupted call leaves nothing at ``out_dir``, and a non-empty
    ``out_dir`` is refused unless ``overwrite=True`` (which replaces it whole once the new one
    is complete), so two calls never mix their studies in one folder. Every call starts a new study and series (fresh Study, Series and
    SOP Instance UIDs). Objects are built by highdicom's ``SCImage`` (``synthaug[dicom]``);
    ImageType is ``DERIVED\\SECONDARY\\OTHER``. Patient name and ID are the fixed placeholders
    ``SYNTHETIC^PHANTOM`` and ``SYNTHETIC``, birth date, sex, institution and dates of the source are empty, and the
    content is marked synthetic in Series Description, Image Comments, Patient Identity
    Removed (``YES``) and De-identification Method. Nothing from any source file is copied.

    Pixels in [0, 1] are stored as unsigned integers ``round(x * (2**bits - 1))`` with Window
    Center / Width set so a viewer (and ``load_dicom_folder(window="auto")``) maps them back to
    [0, 1] exactly.

    With ``masks``, every image whose mask has a pixel set also gets a DICOM Segmentation object
    (highdicom's ``Segmentation``: BINARY, one segment coded SCT "Morphologically Abnormal
    Structure" / "Lesion", algorithm type AUTOMATIC, algorithm family "Artificial
    Intelligence", algorithm name ``synthaug`` and its version) at
    ``out_dir/segmentations/synthetic_<class>_<index>_seg.dcm``. It references its image by SOP Instance
    UID, shares its Study UID and patient placeholders, sits in one Segmentation series per
    call (Series Description ``SYNTHETIC synthaug <segment_label> masks``), and is marked
    synthetic like the images (Patient Identity Removed, De-identification Method, Content
    Label ``SYNTHETIC_MASK`` and a Content Description that says synthaug generated it).
    :func:`load_dicom_folder` leaves Segmentation objects out, so it still reads exactly the
    images with their labels; :func:`read_dicom_seg` reads a mask back.

    Parameters
    ----------
    images : tensor, array or ImageDataset
        ``(N, 1, H, W)`` or ``(N, H, W)`` grayscale images in [0, 1]. An ``ImageDataset``
        brings its labels and class names (then leave ``labels`` and ``classes`` out).
    labels : sequence of int or str, optional
        One label per image; integer labels index ``classes``. Default: all ``"0"``.
    out_dir : str or Path
        Output folder (created; must be new or empty unless ``overwrite``).
    classes : sequence of str, optional
        Class names for integer labels (default ``"0"``, ``"1"``, ...).
    modality : str
        Value of the Modality attribute (``"OT"`` other; e.g. ``"CT"``, ``"MR"``). The SOP class
        stays Secondary Capture Image Storage.
    series_description : str
        Series Description; ``"SYNTHETIC"`` is prepended when missing.
    bits : 8 or 16
        Bits per stored pixel.
    masks : bool tensor or array, optional
        ``(N, 1, H, W)`` or ``(N, H, W)``, one binary mask (bool or 0/1) per image, of the
        images' height and width; an all-False mask writes no Segmentation for its image.
    segment_label : str
        Segment Label of the one segment (at most 64 characters).
    manifest : sequence of mapping, optional
        Extra ``manifest.csv`` columns per image (e.g. the generating model's digest).
    overwrite : bool
        Replace an existing non-empty ``out_dir``.
    class_names : bool
        Write the class names into the files, their folder and file names and the manifest.
        ``False`` keeps them out (``class_0``, ``class_1``, ... in the order of ``classes``):
        for sharing files whose class names alone say something about a patient; keep the
        mapping to yourself.

    Returns
    -------
    list of Path
        The written image files, in image order (not the Segmentation files: image
        ``<class>/synthetic_<class>_<index>.dcm`` has its mask, if any, at
        ``segmentations/synthetic_<class>_<index>_seg.dcm``).

    Examples
    --------
    >>> import tempfile, torch
    >>> files = write_dicom(torch.rand(2, 1, 8, 8), [0, 1], tempfile.mkdtemp(), classes=["a", "b"])
    >>> [f.parent.name for f in files]
    ['a', 'b']
    """
    hd = import_optional("highdicom", "dicom")
    images, names, known = _check_inputs(images, labels, classes)
    if not class_names:
        order = {n: i for i, n in enumerate(dict.fromkeys([*(known or []), *sorted(set(names))]))}
        names = [f"class_{order[n]}" for n in names]
    masks = _check_masks(masks, images)
    if not isinstance(segment_label, str) or not 0 < len(segment_label) <= 64:
        raise InvalidParameterError(
            f"segment_label must be a non-empty string of at most 64 characters, got {segment_label!r}"
        )
    if bits not in (8, 16):
        raise InvalidParameterError(f"bits must be 8 or 16, got {bits!r}")
    if not isinstance(modality, str) or not re.fullmatch(r"[A-Z]{2,16}", modality):
        raise InvalidParameterError(
            f"modality must be a DICOM modality code such as 'OT', 'CT' or 'MR', got {modality!r}"
        )
    # Cut to the 64 characters of an LO before looking for the mark, so the cut cannot drop it.
    series_description = series_description[:64]
    if SYNTHETIC_MARK not in series_description.upper():
        series_description = f"{SYNTHETIC_MARK} {series_description}"[:64]

    top = 2**bits - 1
    dtype = np.uint8 if bits == 8 else np.uint16
    pixels = np.rint(images.numpy().astype(np.float64) * top).astype(dtype)
    out_dir = Path(out_dir)
    extra = [{}] * len(images) if manifest is None else list(manifest)
    if len(extra) != len(images):
        raise ShapeMismatchError(f"{len(extra)} manifest rows for {len(images)} images")
    with atomic_output(out_dir, folder=True, overwrite=overwrite) as partial:
        written, rows = _write_files(
            hd,
            partial,
            pixels,
            names,
            masks,
            bits,
            top,
            modality,
            series_description,
            segment_label,
            extra,
        )
        write_manifest(partial, rows)
    return [out_dir / f.relative_to(partial) for f in written]


def _write_files(
    hd: ModuleType,
    out_dir: Path,
    pixels: np.ndarray,
    names: list[str],
    masks: torch.Tensor | None,
    bits: int,
    top: int,
    modality: str,
    series_description: str,
    segment_label: str,
    extra: list[Mapping[str, object]],
) -> tuple[list[Path], list[dict[str, object]]]:
    """The files of :func:`write_dicom` in ``out_dir``, and their manifest rows."""
    study_uid, series_uid, seg_series_uid = generate_uid(), generate_uid(), generate_uid()
    segment = _segment_description(hd, segment_label) if masks is not None else None
    written, rows = [], []
    for index, (pixel_array, name) in enumerate(zip(pixels, names, strict=True)):
        folder = out_dir / _safe_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        sc = hd.sc.SCImage(
            pixel_array=pixel_array,
            photometric_interpretation="MONOCHROME2",
            bits_allocated=bits,
            coordinate_system="PATIENT",
            patient_orientation=("L", "P"),
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            series_number=1,
            sop_instance_uid=generate_uid(),
            instance_number=index + 1,
            manufacturer="synthaug",
            patient_id=_PLACEHOLDER_ID,
            patient_name=_PLACEHOLDER_NAME,
            series_description=series_description,
            transfer_syntax_uid=ExplicitVRLittleEndian,
        )
        sc.Modality = modality
        # Synthetic Image (a defined term of Conversion Type), not highdicom's default
        # Digitized Image; and no claimed orientation (Type 2: present, empty), since a
        # generated image has no patient to be oriented to.
        sc.ConversionType = "SYN"
        sc.PatientOrientation = ""
        sc.ImageComments = f"{SYNTHETIC_MARK} image generated by synthaug; class={name}"
        sc.PatientIdentityRemoved = "YES"
        sc.DeidentificationMethod = _DEIDENTIFICATION
        sc.BurnedInAnnotation = "NO"
        sc.WindowCenter = (top + 1) / 2
        sc.WindowWidth = top + 1
        path = folder / f"synthetic_{_safe_name(name)}_{index:06d}.dcm"
        sc.save_as(path, enforce_file_format=True)
        written.append(path)
        row = {
            "file": path.relative_to(out_dir).as_posix(),
            "class": name,
            "synthetic": "yes",
            "sop_instance_uid": sc.SOPInstanceUID,
        }
        if masks is not None:
            row["mask_file"] = ""
        if masks is not None and masks[index].any():
            seg = _segmentation(hd, sc, masks[index].numpy(), segment, seg_series_uid, index)
            seg_folder = out_dir / SEGMENTATION_FOLDER
            seg_folder.mkdir(parents=True, exist_ok=True)
            seg_path = seg_folder / f"{path.stem}_seg.dcm"
            seg.save_as(seg_path, enforce_file_format=True)
            row["mask_file"] = seg_path.relative_to(out_dir).as_posix()
        rows.append({**row, **extra[index]})
    return written, rows


def read_dicom_seg(path: str | Path) -> tuple[torch.Tensor, str]:
    """Read a mask that :func:`write_dicom` wrote as a DICOM Segmentation, with pydicom alone.

    Parameters
    ----------
    path : str or Path
        A single-frame, single-segment BINARY Segmentation file that references one image, as
        ``write_dicom(..., masks=...)`` writes to ``out_dir/segmentations/``.

    Returns
    -------
    mask : torch.Tensor
        ``(H, W)`` bool, True inside the segment.
    referenced_sop_instance_uid : str
        SOP Instance UID of the image the mask belongs to.

    Raises
    ------
    DataFileError
        The file is missing, not DICOM, not a Segmentation, or not of the single-frame,
        single-segment BINARY kind (read those with ``highdicom.seg.segread``).

    Examples
    --------
    >>> import tempfile, pydicom, torch
    >>> out = tempfile.mkdtemp()
    >>> masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    >>> masks[0, 2:5, 3:6] = True
    >>> files = write_dicom(torch.rand(2, 1, 8, 8), [0, 1], out, masks=masks)
    >>> mask, uid = read_dicom_seg(f"{out}/segmentations/synthetic_0_000000_seg.dcm")
    >>> bool((mask == masks[0]).all()), uid == pydicom.dcmread(files[0]).SOPInstanceUID
    (True, True)
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"Segmentation file {str(path)!r} does not exist")
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise DataFileError(f"{str(path)!r} is not a DICOM file") from exc
    except Exception as exc:  # pydicom raises many kinds on damaged files
        raise DataFileError(f"{str(path)!r} is unreadable ({type(exc).__name__}: {exc})") from exc
    if ds.get("SOPClassUID") != SegmentationStorage:
        raise DataFileError(
            f"{str(path)!r} is not a DICOM Segmentation (SOP Class {ds.get('SOPClassUID')})"
        )
    references = [
        item.ReferencedSOPInstanceUID
        for series in ds.get("ReferencedSeriesSequence", [])
        for item in series.get("ReferencedInstanceSequence", [])
    ]
    kind = (
        ds.get("SegmentationType"),
        int(ds.get("NumberOfFrames", 1) or 1),
        len(ds.get("SegmentSequence", [])),
        len(references),
    )
    if kind != ("BINARY", 1, 1, 1):
        raise DataFileError(
            f"{str(path)!r} is a (type, frames, segments, referenced images) = {kind} "
            f"Segmentation; read_dicom_seg reads the ('BINARY', 1, 1, 1) kind that write_dicom "
            f"writes, use highdicom.seg.segread for others"
        )
    mask = torch.from_numpy(np.asarray(ds.pixel_array) > 0)
    return mask, str(references[0])


def _segment_description(hd: ModuleType, segment_label: str) -> Dataset:
    """The one segment of every mask: a lesion found by an algorithm, not drawn by a person."""
    algorithm = hd.AlgorithmIdentificationSequence(
        name="synthaug", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    return hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=segment_label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
    )


def _segmentation(
    hd: ModuleType, sc: Dataset, mask: np.ndarray, segment: Dataset, series_uid: str, index: int
) -> Dataset:
    """A BINARY Segmentation of ``sc``, marked synthetic like the image.

    A Secondary Capture has no Frame of Reference, so highdicom takes the mask as aligned pixel
    for pixel with its single source image; plane positions and orientation must be left out.
    """
    label = segment.SegmentLabel
    seg = hd.seg.Segmentation(
        source_images=[sc],
        pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=series_uid,
        series_number=2,
        sop_instance_uid=generate_uid(),
        instance_number=index + 1,  # the instance number of its image
        manufacturer="synthaug",
        manufacturer_model_name="synthaug",
        software_versions=__version__,
        # The Enhanced General Equipment module requires one; software has no serial number.
        device_serial_number="none",
        content_label=_SEG_CONTENT_LABEL,
        content_description=f"{SYNTHETIC_MARK} {label} mask generated by synthaug"[:64],
        series_description=f"{SYNTHETIC_MARK} synthaug {label} masks"[:64],
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    # Patient name and ID come from the image (the placeholders); the rest of the marking not.
    seg.PatientIdentityRemoved = "YES"
    seg.DeidentificationMethod = _DEIDENTIFICATION
    return seg


def _check_masks(
    masks: torch.Tensor | np.ndarray | None, images: torch.Tensor
) -> torch.Tensor | None:
    """Validate and return ``(N, H, W)`` bool masks that fit the ``(N, H, W)`` images."""
    if masks is None:
        return None
    try:
        masks = torch.as_tensor(np.asarray(masks) if not isinstance(masks, torch.Tensor) else masks)
    except (TypeError, ValueError) as exc:
        raise InvalidDataError(f"masks must be a bool tensor or array, got {type(masks)}") from exc
    masks = masks.detach().cpu()
    if masks.dim() == 4:
        if masks.shape[1] != 1:
            raise ShapeMismatchError(
                f"masks must have one channel (N, 1, H, W); got {masks.shape[1]} channels"
            )
        masks = masks[:, 0]
    if masks.dim() != 3:
        raise ShapeMismatchError(
            f"masks must be (N, 1, H, W) or (N, H, W), got shape {tuple(masks.shape)}"
        )
    if len(masks) != len(images):
        raise ShapeMismatchError(
            f"{len(masks)} masks for {len(images)} images; give one mask per image "
            f"(an all-False mask for an image without a lesion)"
        )
    if masks.shape[1:] != images.shape[1:]:
        raise ShapeMismatchError(
            f"masks are {tuple(masks.shape[1:])} (H, W) but the images are "
            f"{tuple(images.shape[1:])}; give masks of the images' height and width"
        )
    if masks.dtype != torch.bool:
        if masks.is_complex() or not ((masks == 0) | (masks == 1)).all():
            raise InvalidDataError(
                "masks must be binary (bool or 0/1); threshold soft masks first, e.g. masks > 0.5"
            )
        masks = masks != 0
    return masks


def _check_inputs(
    images: torch.Tensor | np.ndarray | ImageDataset,
    labels: torch.Tensor | np.ndarray | Sequence | None,
    classes: Sequence[str] | None,
) -> tuple[torch.Tensor, list[str], list[str] | None]:
    """Validate and return ``(N, H, W)`` images, one class name per image, and the classes."""
    if isinstance(images, ImageDataset):
        if labels is not None or classes is not None:
            raise InvalidParameterError(
                "an ImageDataset brings its own labels and classes; leave labels/classes out"
            )
        labels, classes, images = images.labels, images.classes, images.images
    images = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if images.dim() == 4:
        if images.shape[1] != 1:
            raise ShapeMismatchError(
                f"write_dicom writes grayscale images (N, 1, H, W); got {images.shape[1]} channels"
            )
        images = images[:, 0]
    if images.dim() != 3 or len(images) == 0:
        raise ShapeMismatchError(
            f"images must be a non-empty (N, 1, H, W) or (N, H, W) batch, got shape {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise InvalidDataError(f"images must be floats in [0, 1], got dtype {images.dtype}")
    images = images.detach().cpu()
    if not torch.isfinite(images).all():
        raise InvalidDataError("images contain NaN or infinite values; fix them before writing")
    if images.min() < 0 or images.max() > 1:
        raise InvalidDataError(
            f"image values must lie in [0, 1], got [{float(images.min()):.4g}, {float(images.max()):.4g}]"
        )
    if labels is None:
        labels = [0] * len(images)
    labels = labels.tolist() if isinstance(labels, (torch.Tensor, np.ndarray)) else list(labels)
    if len(labels) != len(images):
        raise ShapeMismatchError(f"{len(labels)} labels for {len(images)} images")
    names = []
    for label in labels:
        if isinstance(label, str):
            names.append(label)
        elif classes is not None:
            if not 0 <= int(label) < len(classes):
                raise InvalidDataError(f"label {label} is out of range for classes {list(classes)}")
            names.append(str(classes[int(label)]))
        else:
            names.append(str(int(label)))
    return images, names, None if classes is None else [str(c) for c in classes]


def _safe_name(name: str) -> str:
    """A class name usable as a folder and file name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip(".")
    if not safe:
        raise InvalidDataError(f"class name {name!r} cannot be used as a folder name")
    return safe
