"""A data set of volumes from a folder of class folders of DICOM series and NIfTI files.

Only the headers are read here: the :class:`~synthaug.data.VolumeDataset` returned reads each
volume's voxels when it is asked for, so a folder larger than memory can be used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pydicom

from synthaug.data._dicom_read import _check_window, _is_segmentation
from synthaug.data._dicom_series import DicomSeriesSource, index_series
from synthaug.data._nifti import is_nifti_file, read_nifti_lazy
from synthaug.data._scan import FolderScan, shown_path
from synthaug.data._volume import VolumeDataset, VolumeSource
from synthaug.errors import DataFileError, EmptyDatasetError, InvalidParameterError

logger = logging.getLogger("synthaug.data")


def load_volume_folder(
    root: str | Path,
    *,
    masks: str | Path | None = None,
    window: str | tuple[float, float] = "auto",
    on_error: str = "raise",
    classes: Sequence[str] | None = None,
) -> VolumeDataset:
    """Index a folder of volumes, one subfolder per class, without reading their voxels.

    In each class folder, every ``.nii`` / ``.nii.gz`` file is one volume, and every folder
    that holds DICOM files is one series (one volume; see
    :func:`~synthaug.data.read_dicom_series` for how a series is checked and placed).
    A DICOM Segmentation anywhere under ``root`` (as
    :func:`~synthaug.data.write_dicom_series` writes to ``root/segmentations/``) gives the
    series it references its label map. Folders holding no volume (``segmentations/``) are
    no class.

    Parameters
    ----------
    root : str or Path
        The folder of class folders.
    masks : str or Path, optional
        A folder of NIfTI label maps laid out as ``root``: the label map of
        ``root/<class>/<name>.nii.gz`` is ``masks/<class>/<name>.nii.gz`` (the Medical
        Segmentation Decathlon keeps ``imagesTr/`` and ``labelsTr/`` so). Every NIfTI volume
        must have one.
    window : "auto", "minmax" or (center, width)
        How values map to [0, 1], for every volume (see ``read_dicom_series`` and
        ``read_nifti``).
    on_error : "raise" or "skip"
        A file that is not a usable slice, or a series or NIfTI file that cannot be used as
        a volume: raise :class:`~synthaug.errors.DataFileError`, or leave it out with a
        warning (logger ``synthaug.data``) naming it and the reason, recorded in the data
        set's ``skipped``. Voxels are read later, when a volume is asked for; a file damaged
        past its header fails then.
    classes : sequence of str, optional
        Class names in label order (default: the class folders holding volumes, sorted).

    Returns
    -------
    VolumeDataset
        Lazy sources (``DicomSeriesSource``, ``NiftiSource``) with their labels; metadata as
        the readers give it.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from synthaug.data import volumes_from_arrays, write_dicom_series
    >>> ds = volumes_from_arrays(np.zeros((2, 3, 8, 8), np.float32), [0, 1], ["a", "b"])
    >>> out = tempfile.mkdtemp() + "/series"
    >>> _ = write_dicom_series(ds, out)
    >>> back = load_volume_folder(out)
    >>> back.classes, back.sample_shape
    (['a', 'b'], (1, 3, 8, 8))
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFileError(f"volume folder {shown_path(root)} does not exist or is not a folder")
    if on_error not in ("raise", "skip"):
        raise InvalidParameterError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    window = _check_window(window)
    masks_root = None if masks is None else Path(masks)
    if masks_root is not None and not masks_root.is_dir():
        raise DataFileError(f"label map folder {shown_path(masks_root)} does not exist")
    scan = FolderScan(root)
    class_dirs = scan.class_folders()
    if not class_dirs:
        raise DataFileError(
            f"{str(root)!r} has no class subfolders; put each class's volumes (NIfTI files or "
            f"series folders) in a subfolder named after the class"
        )
    found: dict[str, list[VolumeSource]] = {}
    skipped: list[tuple[str, str]] = []
    segmentations: dict[str, Path] = {}
    for class_dir in class_dirs:
        sources: list[VolumeSource] = []
        # A series is the DICOM files directly in one folder (its subfolders hold others).
        series_dirs: dict[Path, list[Path]] = {}
        for path in scan.files(class_dir):
            if path.name.upper() == "DICOMDIR":  # a media index, no slice
                continue
            if is_nifti_file(path):
                mask = None
                if masks_root is not None:
                    mask = masks_root / path.relative_to(root)
                try:
                    if mask is not None and not mask.is_file():
                        raise DataFileError(f"its label map {str(mask)!r} does not exist")
                    sources.append(read_nifti_lazy(path, mask, window=window))
                except DataFileError as exc:
                    _refuse_or_skip(on_error, path, exc, skipped)
            elif _is_segmentation(path):
                _note_segmentation(path, segmentations)
            else:
                series_dirs.setdefault(path.parent, []).append(path)
        for folder, files in series_dirs.items():
            try:
                source, bad = index_series(files, folder, window=window, on_error=on_error)
            except (DataFileError, EmptyDatasetError) as exc:
                _refuse_or_skip(on_error, folder, exc, skipped)
                continue
            skipped.extend(bad)
            sources.append(source)
        if sources:
            found[class_dir.name] = sources
    if not found:
        why = f"; skipped {len(skipped)}, first: {skipped[0][1]}" if skipped else ""
        raise EmptyDatasetError(f"no volumes found under {str(root)!r}{why}")
    names = sorted(found) if classes is None else [str(c) for c in classes]
    if len(set(names)) != len(names) or not names:
        raise InvalidParameterError(f"classes must be unique names, got {names}")
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise DataFileError(
            f"class folder(s) {unknown} are not among classes={names}; add them or move them out"
        )
    volumes, labels = [], []
    for label, name in enumerate(names):
        for source in found.get(name, []):
            uid = source.metadata.get("SeriesInstanceUID")
            if isinstance(source, DicomSeriesSource) and uid in segmentations:
                source = replace(source, segmentation=segmentations[uid])
            volumes.append(source)
            labels.append(label)
    return VolumeDataset(volumes, labels, names, skipped=skipped)


def _refuse_or_skip(
    on_error: str, path: Path, exc: Exception, skipped: list[tuple[str, str]]
) -> None:
    if on_error == "raise":
        raise exc
    logger.warning("skipping %s: %s", path, exc)
    skipped.append((str(path), str(exc)))


def _note_segmentation(path: Path, found: dict[str, Path]) -> None:
    """Remember which series a Segmentation references (from its header)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        series = [str(item.SeriesInstanceUID) for item in ds.get("ReferencedSeriesSequence", [])]
    except Exception:  # a damaged Segmentation is no label map; its series has none
        logger.warning("skipping DICOM Segmentation %s: its header cannot be read", path)
        return
    for uid in series:
        found.setdefault(uid, path)
