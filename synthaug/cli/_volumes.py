"""Volumes on the command line: what ``info`` and ``grid`` read when given a NIfTI file, a
DICOM series folder or a folder of them, and the facts ``info`` prints about them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from synthaug.data import (
    VolumeDataset,
    load_volume_folder,
    read_dicom_series_lazy,
    read_nifti_lazy,
)
from synthaug.data._dicom_read import _is_segmentation
from synthaug.data._nifti import is_nifti_file
from synthaug.errors import DataFileError, EmptyDatasetError

# The patient direction each LPS axis points to, positive and negative.
_CODES = (("L", "R"), ("P", "A"), ("S", "I"))
# What Conversion Type (0008,0064) says about a slice's pixels, for the terms synthaug writes.
_CONVERSION = {
    "SYN": "synthetic (Conversion Type SYN: generated, no patient data)",
    "WSD": "derived (Conversion Type WSD: patient images changed by software)",
}


def _is_dicom_file(path: Path) -> bool:
    """A DICOM Part 10 file (the 'DICM' marker after the preamble) or a ``.dcm`` file."""
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with path.open("rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _holds_series(folder: Path) -> bool:
    """Whether DICOM image files lie directly in ``folder`` (Segmentations are label maps,
    not slices); stops at the first one found."""
    return any(
        p.is_file() and not p.name.startswith(".") and _is_dicom_file(p) and not _is_segmentation(p)
        for p in folder.iterdir()
    )


def open_volumes(path: str | Path) -> VolumeDataset:
    """The volumes at ``path``, headers only: a NIfTI file; a folder holding a DICOM series
    (its files directly in it); a folder of NIfTI files and series folders (one volume each,
    class ``"volume"``); or a folder of class folders of them
    (:func:`~synthaug.data.load_volume_folder`, with the label maps of DICOM Segmentations)."""
    path = Path(path)
    if path.is_file():
        if not is_nifti_file(path):
            raise DataFileError(
                f"{str(path)!r} is neither a model (.safetensors) nor a NIfTI file (.nii, "
                f".nii.gz); for a DICOM series give its folder"
            )
        return VolumeDataset([read_nifti_lazy(path)], [0], ["volume"])
    if not path.is_dir():
        raise DataFileError(f"{str(path)!r} does not exist")
    if _holds_series(path):
        source, _ = read_dicom_series_lazy(path)
        return VolumeDataset([source], [0], ["volume"])
    sources = []
    for entry in sorted(path.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and is_nifti_file(entry):
            sources.append(read_nifti_lazy(entry))
        elif entry.is_dir() and _holds_series(entry):
            sources.append(read_dicom_series_lazy(entry)[0])
    if sources:
        return VolumeDataset(sources, [0] * len(sources), ["volume"])
    try:
        return load_volume_folder(path)
    except (DataFileError, EmptyDatasetError) as exc:
        raise DataFileError(
            f"found no volume in {str(path)!r} (a NIfTI file, a series folder, a folder of "
            f"them, or class folders of them): {exc}"
        ) from exc


def axis_codes(affine: np.ndarray) -> tuple[str, bool]:
    """The patient directions the columns, rows and slices of a volume point to (``"LPS"``
    for an axial stack as DICOM stores it), and whether any axis is oblique (more than
    about 8 degrees off its nearest patient axis)."""
    codes, oblique = [], False
    # Our array axes are (d, h, w): columns (w) first in the code, as DICOM and ITK say it.
    for column in (2, 1, 0):
        direction = affine[:3, column] / np.linalg.norm(affine[:3, column])
        axis = int(np.argmax(np.abs(direction)))
        codes.append(_CODES[axis][0 if direction[axis] > 0 else 1])
        oblique |= bool(abs(direction[axis]) < 0.99)
    return "".join(codes), oblique


def _marking(metadata: dict[str, Any]) -> str:
    """What a volume's files say about where its voxels come from."""
    files = metadata.get("files")
    if not files:
        return "not recorded (NIfTI has no field for it)"
    try:
        header = pydicom.dcmread(files[0], stop_before_pixels=True)
    except Exception as exc:  # the header was read once already; say why it is not now
        return f"unknown (cannot read {files[0]}: {exc})"
    term = str(header.get("ConversionType", "") or "")
    if term in _CONVERSION:
        return _CONVERSION[term]
    said = f"Conversion Type {term}" if term else "no Conversion Type"
    return f"not marked synthetic or derived ({said})"


def describe_volumes(path: str | Path) -> dict[str, Any]:
    """The facts ``synthaug info`` prints for volumes, from their headers alone."""
    dataset = open_volumes(path)
    volumes = []
    for i in range(len(dataset)):
        source = dataset.source(i)
        meta = source.metadata
        codes, oblique = axis_codes(source.affine)
        volumes.append(
            {
                "file": meta.get("file"),
                "class": dataset.classes[int(dataset.labels[i])],
                "shape": list(source.shape),
                "spacing_mm": [round(s, 6) for s in dataset.spacing[i].tolist()],
                "orientation": codes,
                "oblique": oblique,
                "origin_mm": [round(float(v), 4) for v in source.affine[:3, 3]],
                "label_map": bool(source.has_mask),
                "format": "DICOM series" if meta.get("files") else "NIfTI",
                "slices_files": len(meta.get("files") or []) or None,
                "modality": meta.get("modality"),
                "marking": _marking(meta),
            }
        )
    return {
        "path": str(path),
        "kind": "volumes",
        "classes": {dataset.classes[c]: n for c, n in dataset.class_counts().items()},
        "volumes": volumes,
        "skipped": [list(s) for s in dataset.skipped],
    }


def format_volume_info(facts: dict[str, Any]) -> str:
    """The text ``synthaug info`` prints for volumes."""
    vols = facts["volumes"]
    classes = ", ".join(f"{name} ({n})" for name, n in facts["classes"].items())
    lines = [f"{facts['path']}: {len(vols)} volume{'s' * (len(vols) != 1)}; classes {classes}"]
    for v in vols:
        c, d, h, w = v["shape"]
        z, y, x = v["spacing_mm"]
        orientation = v["orientation"] + (" (oblique: nearest axes)" if v["oblique"] else "")
        lines += [
            f"{v['file']}",
            f"  format          {v['format']}"
            + (f", {v['slices_files']} slice files" if v["slices_files"] else "")
            + (f", modality {v['modality']}" if v["modality"] else ""),
            f"  class           {v['class']}",
            f"  shape           {d} slices x {h} rows x {w} columns, {c} channel"
            + ("s" * (c != 1)),
            f"  spacing         {z:g} mm between slices, {y:g} x {x:g} mm pixels (rows x columns)",
            f"  orientation     {orientation} (columns, rows, slices point to these patient "
            f"directions); first voxel at {tuple(v['origin_mm'])} mm (LPS)",
            f"  label map       {'yes' if v['label_map'] else 'none found with it'}",
            f"  marking         {v['marking']}",
        ]
    for where, why in facts["skipped"]:
        lines.append(f"skipped {where}: {why}")
    return "\n".join(lines)
