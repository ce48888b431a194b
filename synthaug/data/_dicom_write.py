"""Write images as synthetic Secondary Capture DICOM files that carry no patient data."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from synthaug._utils import import_optional
from synthaug.data._dataset import ImageDataset
from synthaug.errors import InvalidDataError, InvalidParameterError, ShapeMismatchError

SYNTHETIC_MARK = "SYNTHETIC"
_PLACEHOLDER_NAME = "SYNTHETIC^PHANTOM"
_PLACEHOLDER_ID = "SYNTHETIC"
_DEIDENTIFICATION = "synthaug: synthetic image, generated; contains no patient data"


def write_dicom(
    images: torch.Tensor | np.ndarray | ImageDataset,
    labels: torch.Tensor | np.ndarray | Sequence[int] | Sequence[str] | None = None,
    out_dir: str | Path = "synthetic-dicom",
    *,
    classes: Sequence[str] | None = None,
    modality: str = "OT",
    series_description: str = "SYNTHETIC synthaug images",
    bits: int = 16,
) -> list[Path]:
    """Write one Secondary Capture DICOM file per image, marked synthetic, without patient data.

    Files go to ``out_dir/<class>/<class>_<index>.dcm``, so :func:`load_dicom_folder` reads them
    back with their labels. Every call starts a new study and series (fresh Study, Series and
    SOP Instance UIDs). Objects are built by highdicom's ``SCImage`` (``synthaug[dicom]``);
    ImageType is ``DERIVED\\SECONDARY\\OTHER``. Patient name and ID are the fixed placeholders
    ``SYNTHETIC^PHANTOM`` and ``SYNTHETIC``, birth date, sex, institution and dates of the source are empty, and the
    content is marked synthetic in Series Description, Image Comments, Patient Identity
    Removed (``YES``) and De-identification Method. Nothing from any source file is copied.

    Pixels in [0, 1] are stored as unsigned integers ``round(x * (2**bits - 1))`` with Window
    Center / Width set so a viewer (and ``load_dicom_folder(window="auto")``) maps them back to
    [0, 1] exactly.

    Parameters
    ----------
    images : tensor, array or ImageDataset
        ``(N, 1, H, W)`` or ``(N, H, W)`` grayscale images in [0, 1]. An ``ImageDataset``
        brings its labels and class names (then leave ``labels`` and ``classes`` out).
    labels : sequence of int or str, optional
        One label per image; integer labels index ``classes``. Default: all ``"0"``.
    out_dir : str or Path
        Output folder (created; existing files of the same name are overwritten).
    classes : sequence of str, optional
        Class names for integer labels (default ``"0"``, ``"1"``, ...).
    modality : str
        Value of the Modality attribute (``"OT"`` other; e.g. ``"CT"``, ``"MR"``). The SOP class
        stays Secondary Capture Image Storage.
    series_description : str
        Series Description; ``"SYNTHETIC"`` is prepended when missing.
    bits : 8 or 16
        Bits per stored pixel.

    Returns
    -------
    list of Path
        The written files, in image order.

    Examples
    --------
    >>> import tempfile, torch
    >>> files = write_dicom(torch.rand(2, 1, 8, 8), [0, 1], tempfile.mkdtemp(), classes=["a", "b"])
    >>> [f.parent.name for f in files]
    ['a', 'b']
    """
    hd = import_optional("highdicom", "dicom")
    images, names = _check_inputs(images, labels, classes)
    if bits not in (8, 16):
        raise InvalidParameterError(f"bits must be 8 or 16, got {bits!r}")
    if not isinstance(modality, str) or not re.fullmatch(r"[A-Z]{2,16}", modality):
        raise InvalidParameterError(
            f"modality must be a DICOM modality code such as 'OT', 'CT' or 'MR', got {modality!r}"
        )
    if SYNTHETIC_MARK not in series_description.upper():
        series_description = f"{SYNTHETIC_MARK} {series_description}"
    series_description = series_description[:64]

    top = 2**bits - 1
    dtype = np.uint8 if bits == 8 else np.uint16
    pixels = np.rint(images.numpy().astype(np.float64) * top).astype(dtype)
    out_dir = Path(out_dir)
    study_uid, series_uid = generate_uid(), generate_uid()
    written = []
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
        sc.ImageComments = f"{SYNTHETIC_MARK} image generated by synthaug; class={name}"
        sc.PatientIdentityRemoved = "YES"
        sc.DeidentificationMethod = _DEIDENTIFICATION
        sc.BurnedInAnnotation = "NO"
        sc.WindowCenter = (top + 1) / 2
        sc.WindowWidth = top + 1
        path = folder / f"{_safe_name(name)}_{index:06d}.dcm"
        sc.save_as(path, enforce_file_format=True)
        written.append(path)
    return written


def _check_inputs(
    images: torch.Tensor | np.ndarray | ImageDataset,
    labels: torch.Tensor | np.ndarray | Sequence | None,
    classes: Sequence[str] | None,
) -> tuple[torch.Tensor, list[str]]:
    """Validate and return ``(N, H, W)`` images and one class name per image."""
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
    return images, names


def _safe_name(name: str) -> str:
    """A class name usable as a folder and file name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip(".")
    if not safe:
        raise InvalidDataError(f"class name {name!r} cannot be used as a folder name")
    return safe
