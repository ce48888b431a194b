"""Read a folder of DICOM files into an :class:`ImageDataset`, as a radiologist's viewer shows them."""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
import torch.nn.functional as F
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.uid import UID, SegmentationStorage

from synthaug._utils import warn
from synthaug.data._dataset import ImageDataset
from synthaug.data._output import MANIFEST_NAME
from synthaug.data._scan import FolderScan, shown_path
from synthaug.errors import DataFileError, EmptyDatasetError, InvalidParameterError

logger = logging.getLogger("synthaug.data")

# Keys a labels CSV may use in its header for the file column and the label column.
_KEY_HEADERS = {
    "file",
    "filename",
    "file_name",
    "path",
    "sopinstanceuid",
    "sop_instance_uid",
    "uid",
}
# ITU-R BT.601 luma weights: colour images (ultrasound, secondary captures) become grayscale.
_LUMA = np.array([0.299, 0.587, 0.114])
# Segmentation Storage and Label Map Segmentation Storage: masks, not images.
_SEGMENTATION_SOP_CLASSES = {SegmentationStorage, "1.2.840.10008.5.1.4.1.1.66.7"}


class DicomDataset(ImageDataset):
    """An :class:`ImageDataset` read from DICOM files, with the files it had to skip.

    Attributes
    ----------
    skipped : list of (str, str)
        ``(file, reason)`` for every file left out with ``on_error="skip"``.
    """

    def __init__(self, *args: Any, skipped: list[tuple[str, str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.skipped = list(skipped or [])


def load_dicom_folder(
    root: str | Path,
    labels: str | Path | Mapping[str, str] = "folders",
    *,
    size: tuple[int, int] | int = (64, 64),
    window: str | tuple[float, float] = "auto",
    on_error: str = "raise",
    classes: Sequence[str] | None = None,
) -> DicomDataset:
    """Load every DICOM file under ``root`` as grayscale images in [0, 1].

    Pixels are handled as a viewer does: the Modality LUT (Rescale Slope / Intercept) turns
    stored values into modality units (e.g. Hounsfield units), a VOI window maps them to
    [0, 1], MONOCHROME1 images are inverted so that bright means high signal, colour images
    become luma, every frame of a multi-frame file becomes one image, and images are resized
    with antialiasing to ``size``. Compressed transfer syntaxes decode through pydicom's
    plugins (``pip install 'synthaug[dicom]'`` installs pylibjpeg with its JPEG, JPEG-LS,
    JPEG 2000 and RLE decoders).

    Parameters
    ----------
    root : str or Path
        The folder. Files are found recursively; hidden files, ``DICOMDIR``, the
        ``manifest.csv`` that synthaug's writers put at the top, and DICOM
        Segmentation objects (masks, such as ``write_dicom(..., masks=...)`` writes to
        ``root/segmentations/``) are ignored, so a folder holding only them is no class.
    labels : "folders", path or mapping
        ``"folders"``: one subfolder of ``root`` per class, named after the class. A path to a
        CSV file (header row, first column a file path relative to ``root``, a bare file name
        or a SOPInstanceUID, second column the label) or an equivalent ``{key: label}``
        mapping: every DICOM file under ``root`` must be listed.
    size : (int, int) or int
        Output ``(height, width)``. Images of other proportions are stretched to it (a
        :class:`~synthaug.errors.SynthaugWarning` says how many and names one); crop them or
        pass their own proportions to keep shapes true.
    window : "auto", "minmax" or (center, width)
        ``"auto"``: the file's first Window Center / Width, else its VOI LUT, else the image's
        own min-max. ``"minmax"``: always min-max per image. ``(center, width)``: this window
        in modality units for every file (e.g. ``(40, 400)`` for a CT soft-tissue window).
    on_error : "raise" or "skip"
        What to do with a file that cannot be used (not DICOM, truncated, no pixel data, no
        decoder for its compression, no label): raise :class:`~synthaug.errors.DataFileError`
        naming the file and the reason, or log a warning, leave it out and record it in the
        returned dataset's ``skipped`` list.
    classes : sequence of str, optional
        Class names in label order (default: the labels found, sorted). A file whose label is
        not among them is a bad file.

    Returns
    -------
    DicomDataset
        ``(N, 1, H, W)`` images; ``metadata[i]`` holds ``file``, ``frame``, ``SOPInstanceUID``,
        ``SOPClassUID``, ``NumberOfFrames`` (of a multi-frame object), ``StudyInstanceUID``
        and ``modality`` (empty strings where the file has none); ``skipped`` lists the
        files left out.

    Examples
    --------
    >>> import shutil, tempfile, pathlib
    >>> from pydicom.data import get_testdata_file
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for cls, name in [("ct", "CT_small.dcm"), ("mr", "MR_small.dcm")]:
    ...     (root / cls).mkdir()
    ...     _ = shutil.copy(get_testdata_file(name), root / cls)
    >>> ds = load_dicom_folder(root, size=32)
    >>> ds.classes, ds.sample_shape, ds.metadata[0]["modality"]
    (['ct', 'mr'], (1, 32, 32), 'CT')
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFileError(f"DICOM folder {shown_path(root)} does not exist or is not a folder")
    if on_error not in ("raise", "skip"):
        raise InvalidParameterError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    size = _check_size(size)
    window = _check_window(window)

    labelled = _labelled_files(root, labels)
    found = sorted({label for _, label in labelled if label is not None})
    explicit_classes = classes
    if classes is None:
        classes = found
    else:
        classes = [str(c) for c in classes]
        if len(set(classes)) != len(classes) or not classes:
            raise InvalidParameterError(f"classes must be unique names, got {classes}")
    images: list[torch.Tensor] = []
    targets: list[int] = []
    metadata: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    squashed: list[tuple[Path, tuple[int, int]]] = []
    for path, label in labelled:
        try:
            if label is None:
                raise _BadFile("no label for this file in the labels CSV/mapping")
            if label not in classes:
                raise _BadFile(f"its label {label!r} is not one of classes={classes}")
            frames, info = _read_frames(path, window)
        except _BadFile as exc:
            if on_error == "raise":
                raise DataFileError(f"cannot use DICOM file {str(path)!r}: {exc}") from exc.cause
            logger.warning("skipping DICOM file %s: %s", path, exc)
            skipped.append((str(path), str(exc)))
            continue
        if _distorts(frames.shape[-2:], size):
            squashed.append((path, frames.shape[-2:]))
        images.append(_resize(frames, size))
        targets.extend([classes.index(label)] * len(frames))
        metadata.extend({**info, "frame": i} for i in range(len(frames)))
    if not images:
        why = f"; skipped {len(skipped)} file(s), first: {skipped[0][1]}" if skipped else ""
        raise EmptyDatasetError(f"no usable DICOM images found under {str(root)!r}{why}")
    if squashed:
        (first, (h, w)) = squashed[0]
        warn(
            f"load_dicom_folder stretched {len(squashed)} file(s) of other proportions to "
            f"{size[0]}x{size[1]}, changing their aspect ratio (e.g. {str(first)!r}, {h}x{w}); "
            f"crop them or pass size=(height, width) in their proportions"
        )
    labels_t = torch.tensor(targets, dtype=torch.int64)
    if explicit_classes is None:
        # A found class whose every file was skipped is dropped, so that no class is empty.
        present = set(targets)
        used = [c for i, c in enumerate(classes) if i in present]
        remap = torch.tensor([used.index(c) if c in used else -1 for c in classes])
        labels_t, classes = remap[labels_t], used
    return DicomDataset(torch.cat(images), labels_t, classes, metadata=metadata, skipped=skipped)


class _BadFile(Exception):
    """A file-level problem, turned into DataFileError or a skip by the caller."""

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.cause = cause


def _check_size(size: tuple[int, int] | int) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"size must be an int or (height, width), got {size!r}"
        ) from None
    if h < 1 or w < 1:
        raise InvalidParameterError(f"size must be positive, got {size!r}")
    return h, w


def _check_window(window: str | tuple[float, float]) -> str | tuple[float, float]:
    if isinstance(window, str):
        if window not in ("auto", "minmax"):
            raise InvalidParameterError(
                f"window must be 'auto', 'minmax' or (center, width), got {window!r}"
            )
        return window
    try:
        center, width = (float(v) for v in window)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"window must be 'auto', 'minmax' or (center, width), got {window!r}"
        ) from None
    if not (np.isfinite(center) and np.isfinite(width)) or width < 1:
        raise InvalidParameterError(f"window width must be >= 1 and finite, got {window!r}")
    return center, width


def _labelled_files(
    root: Path, labels: str | Path | Mapping[str, str]
) -> list[tuple[Path, str | None]]:
    """Every candidate file under ``root`` with its label (None when the CSV lacks it)."""
    # One walk for the whole folder: links are followed or refused by the rule of _scan.py.
    scan = FolderScan(root)
    if isinstance(labels, str) and labels == "folders":
        class_dirs = scan.class_folders()
        if not class_dirs:
            raise DataFileError(
                f"{str(root)!r} has no class subfolders; put each class's files in a subfolder "
                f"named after the class, or pass labels= a CSV file or mapping"
            )
        return [(f, d.name) for d in class_dirs for f in _candidate_files(scan, d)]
    if isinstance(labels, Mapping):
        mapping = {str(k): str(v) for k, v in labels.items()}
        csv_path = None
    elif isinstance(labels, (str, Path)):
        csv_path = Path(labels)
        if not csv_path.is_absolute() and not csv_path.exists():
            csv_path = root / csv_path
        mapping = _read_labels_csv(csv_path)
    else:
        raise InvalidParameterError(
            f"labels must be 'folders', a CSV path or a mapping, got {type(labels).__name__}"
        )
    if not mapping:
        raise DataFileError("the labels CSV/mapping has no entries")
    files = [
        f
        for f in _candidate_files(scan, root)
        if csv_path is None or f.resolve() != csv_path.resolve()
    ]
    out = []
    for f in files:
        rel = f.relative_to(root).as_posix()
        label = mapping.get(rel, mapping.get(f.name))
        if label is None:
            label = _label_by_uid(f, mapping)
        out.append((f, label))
    if all(label is None for _, label in out):
        raise DataFileError(
            f"no file under {str(root)!r} matches a key of the labels CSV/mapping; keys must be "
            f"paths relative to the folder, file names or SOPInstanceUIDs"
        )
    return out


def _label_by_uid(path: Path, mapping: Mapping[str, str]) -> str | None:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
    except Exception:  # unreadable files are reported when their pixels are read
        return None
    uid = ds.get("SOPInstanceUID")
    return mapping.get(str(uid)) if uid else None


def _read_labels_csv(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise DataFileError(f"labels CSV {str(path)!r} does not exist")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(f"cannot read labels CSV {str(path)!r}: {exc}") from exc
    if rows and rows[0][0].strip().lower() in _KEY_HEADERS:
        rows = rows[1:]
    mapping: dict[str, str] = {}
    for line, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DataFileError(
                f"labels CSV {str(path)!r}, data row {line}: expected 'file_or_uid,label', got {row}"
            )
        mapping[row[0].strip()] = row[1].strip()
    return mapping


def _candidate_files(scan: FolderScan, folder: Path) -> list[Path]:
    return sorted(
        p
        for p in scan.files(folder)
        if p.name.upper() != "DICOMDIR"
        and p != folder / MANIFEST_NAME  # the file list synthaug's writers add
        and not _is_segmentation(p)
    )


def _is_segmentation(path: Path) -> bool:
    """Whether the file meta header names a Segmentation SOP class (a SEG has pixel data too)."""
    try:
        sop_class = read_file_meta_info(path).get("MediaStorageSOPClassUID")
    except Exception:  # not DICOM or damaged: reported when its pixels are read
        return False
    # A damaged header can hold a list (a stray backslash) where the UID should be.
    return isinstance(sop_class, str) and sop_class in _SEGMENTATION_SOP_CLASSES


def _read_frames(path: Path, window: str | tuple[float, float]) -> tuple[np.ndarray, dict]:
    """Decode one file into ``(frames, H, W)`` float64 values in [0, 1] and its metadata."""
    try:
        return _decode_file(path, window)
    except _BadFile:
        raise
    except BaseException as exc:
        # pydicom converts elements when they are first read, so a damaged one (an unknown VR)
        # fails wherever that is; a decoder written in Rust panics with a BaseException.
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        raise _BadFile(f"damaged DICOM ({type(exc).__name__}: {exc})", exc) from exc


def _decode_file(path: Path, window: str | tuple[float, float]) -> tuple[np.ndarray, dict]:
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise _BadFile("not a DICOM file (no 'DICM' preamble / file meta header)", exc) from exc
    except Exception as exc:  # pydicom raises many kinds on damaged files
        raise _BadFile(f"unreadable or truncated DICOM ({type(exc).__name__}: {exc})", exc) from exc
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        sop = ds.get("Modality", "unknown modality")
        raise _BadFile(f"it holds no pixel data (a {sop} object, not an image)")
    tsyntax = getattr(ds.get("file_meta", None), "TransferSyntaxUID", None)
    if tsyntax is None:
        raise _BadFile("its file meta header has no Transfer Syntax UID")
    _check_decoder(tsyntax)
    try:
        arr = ds.pixel_array
    except Exception as exc:
        raise _BadFile(f"pixel data cannot be decoded ({type(exc).__name__}: {exc})", exc) from exc
    try:
        frames = _to_unit_range(np.asarray(arr), ds, window)
    except Exception as exc:  # inconsistent pixel-module attributes (LUTs, frame counts, ...)
        raise _BadFile(f"pixel values cannot be mapped to the display range ({exc})", exc) from exc
    info = {
        "file": str(path),
        # What a file derived from this one refers back to (write_dicom's Source Image
        # Sequence and Derivation Description): its SOP class and instance, the number of
        # frames of a multi-frame object ("" for a single-frame one), and its study.
        "SOPInstanceUID": str(ds.get("SOPInstanceUID", "")),
        "SOPClassUID": str(ds.get("SOPClassUID", "")),
        "NumberOfFrames": str(ds.get("NumberOfFrames", "") or ""),
        "StudyInstanceUID": str(ds.get("StudyInstanceUID", "")),
        "modality": str(ds.get("Modality", "")),
    }
    return frames, info


def _check_decoder(tsyntax: Any) -> None:
    # A damaged header can name a UID that is no transfer syntax (or a list of UIDs).
    if not isinstance(tsyntax, UID) or not tsyntax.is_transfer_syntax:
        raise _BadFile(f"its Transfer Syntax UID {str(tsyntax)!r} is not a transfer syntax")
    if not tsyntax.is_compressed:
        return
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as exc:
        raise _BadFile(f"pydicom has no decoder for transfer syntax {tsyntax.name}", exc) from exc
    if not decoder.is_available:
        raise _BadFile(
            f"it is compressed with {tsyntax.name} and no decoder for it is installed; "
            f"install one with: pip install 'synthaug[dicom]'"
        )


def _to_unit_range(arr: np.ndarray, ds: Any, window: str | tuple[float, float]) -> np.ndarray:
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds).astype(np.float64)
        bits = 16 if rgb.max(initial=0) > 255 else 8
        gray = rgb @ _LUMA / (2**bits - 1)
        return _as_frames(gray, n_frames, 2)
    if samples > 1:
        # pydicom has converted YBR to RGB already; colour images carry no VOI window.
        bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)))
        gray = arr.astype(np.float64) @ _LUMA / (2**bits - 1)
        return _as_frames(np.clip(gray, 0, 1), n_frames, 2)
    values = apply_modality_lut(arr, ds).astype(np.float64)
    values = _as_frames(values, n_frames, 2)
    if isinstance(window, tuple):
        out = _linear_window(values, *window)
    elif window == "auto" and "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = (_first(ds.WindowCenter), _first(ds.WindowWidth))
        out = _linear_window(values, center, width)
    elif window == "auto" and "VOILUTSequence" in ds:
        out = _minmax(apply_voi_lut(values, ds).astype(np.float64))
    else:
        out = _minmax(values)
    if photometric == "MONOCHROME1":
        out = 1.0 - out
    return out


def _as_frames(values: np.ndarray, n_frames: int, image_dims: int) -> np.ndarray:
    """Give single-frame images a leading frame axis."""
    if values.ndim == image_dims and n_frames == 1:
        values = values[None]
    return values


def _first(value: Any) -> float:
    """The first of a possibly multi-valued DICOM number (Window Center can list several)."""
    if isinstance(value, (list, tuple, MultiValue)):
        return float(value[0])
    return float(value)


def _linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 linear VOI function, mapped to [0, 1]."""
    if width <= 1:
        return (values > center - 0.5).astype(np.float64)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _minmax(values: np.ndarray) -> np.ndarray:
    """Per-frame min-max scaling; a constant frame becomes zeros."""
    flat = values.reshape(len(values), -1)
    lo = flat.min(axis=1)[:, None, None]
    span = (flat.max(axis=1) - flat.min(axis=1))[:, None, None]
    return np.where(span > 0, (values - lo) / np.where(span > 0, span, 1), 0.0)


def _distorts(shape: tuple[int, ...], size: tuple[int, int]) -> bool:
    """Whether resizing ``(h, w)`` to ``size`` visibly changes the proportions.

    Visible means that the output side kept in proportion would differ by more than half a
    pixel: a 512x511 scan at 64x64 is not worth a warning, a 512x256 one is.
    """
    h, w = shape
    out_h, out_w = size
    return abs(out_w * h / w - out_h) > 0.5 or abs(out_h * w / h - out_w) > 0.5


def _resize(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).unsqueeze(1)
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return x.clamp_(0.0, 1.0)
