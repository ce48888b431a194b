"""NIfTI-1/2 volumes and label maps (``.nii``, ``.nii.gz``) through nibabel.

NIfTI's affine maps the array index ``(i, j, k)`` to RAS (x towards the patient's right, y
anterior, z head); synthaug's volumes use DICOM's LPS and the array order
``(d, h, w) = (k, j, i)``. Reading converts (``ras_to_lps``) and transposes; writing converts
back: the same scan read from a DICOM series or from its NIfTI conversion has the same affine.
nibabel is an optional extra (``pip install 'synthaug[nifti]'``), imported when first used.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from synthaug._utils import import_optional
from synthaug.data._dicom_read import _check_window
from synthaug.data._output import atomic_output, check_output
from synthaug.data._scan import shown_path
from synthaug.data._volume import (
    Volume,
    check_label_map,
    lps_to_ras,
    ras_to_lps,
    to_unit_range,
)
from synthaug.errors import DataFileError, InvalidParameterError

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_file(path: str | Path) -> bool:
    """Whether ``path`` has a NIfTI suffix (``.nii`` or ``.nii.gz``)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _nibabel() -> ModuleType:
    return import_optional("nibabel", "nifti")


@dataclass(frozen=True, eq=False)
class NiftiSource:
    """A NIfTI volume (and label map), indexed from its header; :meth:`read` reads voxels.

    Made by :func:`read_nifti_lazy` and :func:`~synthaug.data.load_volume_folder`; a
    :class:`~synthaug.data.VolumeSource` of a :class:`~synthaug.data.VolumeDataset`.
    """

    path: Path
    shape: tuple[int, int, int, int]
    affine: np.ndarray
    mask_path: Path | None = None
    window: str | tuple[float, float] = "auto"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def has_mask(self) -> bool:
        return self.mask_path is not None

    def read(self) -> Volume:
        nib = _nibabel()
        image = _load(nib, self.path)
        values = to_unit_range(_voxels(image, self.path), _window_of(image, self.window))
        mask = None
        if self.mask_path is not None:
            mask = _label_map(nib, self.mask_path, self.affine, self.shape[1:])
        return Volume(values, self.affine, mask, self.metadata)


def read_nifti(
    path: str | Path,
    mask: str | Path | None = None,
    *,
    window: str | tuple[float, float] = "auto",
) -> Volume:
    """Read a NIfTI volume (and its label map) with its affine, as LPS.

    Parameters
    ----------
    path : str or Path
        A 3D ``.nii`` or ``.nii.gz`` file (a 4D one with a single volume is read too). Its
        values are scaled by the header's ``scl_slope`` / ``scl_inter`` (nibabel's
        ``get_fdata``), then mapped to [0, 1] by ``window``.
    mask : str or Path, optional
        A label map of the same grid (shape and affine): non-negative whole numbers.
    window : "auto", "minmax" or (center, width)
        ``"auto"``: the header's display range ``cal_min`` .. ``cal_max`` when it has one
        (values outside it are clipped), else the volume's min-max. ``"minmax"``: the volume's min-max. ``(center, width)``: a
        window in the file's units (e.g. Hounsfield units), as for DICOM.

    Returns
    -------
    Volume
        ``(1, D, H, W)`` with ``D`` the file's third axis (``k``), ``H`` its second, ``W`` its
        first; the affine in LPS (:func:`~synthaug.data.ras_to_lps` of the file's); metadata
        ``file`` (and ``mask_file``).

    Raises
    ------
    DataFileError
        A missing, damaged or non-NIfTI file, a 4D file of several volumes, a label map of
        another grid or of non-integer values.
    MissingDependencyError
        nibabel is not installed (the ``nifti`` extra).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from synthaug.data import Volume, affine_from_spacing, write_nifti
    >>> vol = Volume(np.zeros((4, 8, 8), np.float32), affine_from_spacing((3, 1, 1)))
    >>> path, _ = write_nifti(vol, tempfile.mkdtemp() + "/v.nii.gz")
    >>> read_nifti(path).spacing
    (3.0, 1.0, 1.0)
    """
    return read_nifti_lazy(path, mask, window=window).read()


def read_nifti_lazy(
    path: str | Path,
    mask: str | Path | None = None,
    *,
    window: str | tuple[float, float] = "auto",
) -> NiftiSource:
    """:func:`read_nifti` from the header only: the source, whose ``read()`` reads voxels."""
    nib = _nibabel()
    window = _check_window(window)
    path = Path(path)
    image = _load(nib, path)
    shape = _grid(image, path)
    affine = ras_to_lps(_affine(image, path))
    metadata: dict[str, Any] = {"file": str(path)}
    mask_path = None
    if mask is not None:
        mask_path = Path(mask)
        _check_same_grid(nib, mask_path, affine, shape, path)
        metadata["mask_file"] = str(mask_path)
    return NiftiSource(path, (1, *shape), affine, mask_path, window, metadata)


def write_nifti(
    volume: Volume,
    path: str | Path,
    mask_path: str | Path | None = None,
    *,
    overwrite: bool = False,
) -> tuple[Path, Path | None]:
    """Write a volume as NIfTI (float32 values in [0, 1]) and its label map beside it.

    The affine is the volume's, converted to RAS (:func:`~synthaug.data.lps_to_ras`) and
    written as both the qform and the sform (code 1, scanner anatomical), with units of mm;
    the display range ``cal_min`` / ``cal_max`` is 0 / 1, so :func:`read_nifti` reads the
    values back as they were. The label map is written as integers (uint8, or int16/int32
    for more labels) on the same grid.

    Parameters
    ----------
    volume : Volume
        A one-channel volume.
    path : str or Path
        The image file, ending in ``.nii`` or ``.nii.gz`` (compressed).
    mask_path : str or Path, optional
        Where the label map goes (the volume must have one). Default: none written.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    (Path, Path or None)
        The image file and the label map file.
    """
    nib = _nibabel()
    if not isinstance(volume, Volume):
        raise InvalidParameterError(
            f"write_nifti writes a synthaug.data.Volume, got {type(volume).__name__}"
        )
    if volume.shape[0] != 1:
        raise InvalidParameterError(
            f"write_nifti writes one-channel volumes, got {volume.shape[0]} channels"
        )
    path = _nifti_path(path, "path")
    check_output(path, folder=False, overwrite=overwrite)  # before the label map is written
    affine = lps_to_ras(volume.affine)
    # Our (d, h, w) is NIfTI's (k, j, i).
    image = nib.Nifti1Image(np.ascontiguousarray(volume.array[0].transpose(2, 1, 0)), affine)
    image.header["cal_min"], image.header["cal_max"] = 0.0, 1.0
    _place(image, affine)
    written_mask = None
    if mask_path is not None:
        if volume.mask is None:
            raise InvalidParameterError("mask_path is given but the volume has no label map")
        written_mask = _nifti_path(mask_path, "mask_path")
        if written_mask == path:
            raise InvalidParameterError("mask_path must differ from path")
        top = int(volume.mask.max())
        dtype = np.uint8 if top < 256 else np.int16 if top < 2**15 else np.int32
        labels = nib.Nifti1Image(
            np.ascontiguousarray(volume.mask.transpose(2, 1, 0).astype(dtype)), affine
        )
        _place(labels, affine)
        _save(labels, written_mask, overwrite)
    _save(image, path, overwrite)
    return path, written_mask


def _save(image: Any, path: Path, overwrite: bool) -> None:
    """Write ``image`` to ``path`` (gzip for ``.nii.gz``), built aside and renamed into place."""
    data = image.to_bytes()
    if path.name.lower().endswith(".gz"):
        data = gzip.compress(data, mtime=0)  # no time stamp: the same volume, the same bytes
    with atomic_output(path, folder=False, overwrite=overwrite) as partial:
        partial.write_bytes(data)


def _place(image: Any, affine: np.ndarray) -> None:
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm")


def _nifti_path(path: str | Path, name: str) -> Path:
    path = Path(path)
    if not is_nifti_file(path):
        raise InvalidParameterError(f"{name} must end in .nii or .nii.gz, got {str(path)!r}")
    return path


def _load(nib: ModuleType, path: Path) -> Any:
    if not path.is_file():
        raise DataFileError(f"NIfTI file {shown_path(path)} does not exist")
    try:
        return nib.load(str(path))
    except Exception as exc:  # nibabel raises many kinds on damaged or foreign files
        raise DataFileError(
            f"cannot read NIfTI file {str(path)!r} ({type(exc).__name__}: {exc})"
        ) from exc


def _grid(image: Any, path: Path) -> tuple[int, int, int]:
    """``(D, H, W)`` of a NIfTI image of shape ``(W, H, D)`` (or ``(W, H, D, 1)``)."""
    shape = tuple(int(n) for n in image.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise DataFileError(
            f"NIfTI file {str(path)!r} has shape {shape}; a volume is 3D (a 4D file of "
            f"several volumes, a time series, is not read)"
        )
    return shape[2], shape[1], shape[0]


def _affine(image: Any, path: Path) -> np.ndarray:
    affine = np.asarray(image.affine, dtype=np.float64)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise DataFileError(f"NIfTI file {str(path)!r} has no usable affine (singular or NaN)")
    return affine


def _voxels(image: Any, path: Path) -> np.ndarray:
    """``(D, H, W)`` float32 values, scaled by the header's slope and intercept."""
    try:
        # float32 and no cache: a large volume is held once, and not kept by the image.
        values = np.asarray(image.get_fdata(dtype=np.float32, caching="unchanged"))
    except Exception as exc:  # a truncated or damaged data block
        raise DataFileError(
            f"cannot read the voxels of NIfTI file {str(path)!r} ({type(exc).__name__}: {exc})"
        ) from exc
    values = values.reshape(values.shape[:3])
    if not np.isfinite(values).all():
        raise DataFileError(f"NIfTI file {str(path)!r} holds NaN or infinite values")
    return values.transpose(2, 1, 0)


def _window_of(image: Any, window: str | tuple[float, float]) -> tuple[float, float] | None:
    """The ``(center, width)`` window of a NIfTI image, or None for its min-max.

    ``"auto"`` takes the display range ``cal_min`` .. ``cal_max`` when the header has one,
    as the window that maps exactly that range onto [0, 1].
    """
    if isinstance(window, tuple):
        return window
    if window == "auto":
        low, high = float(image.header["cal_min"]), float(image.header["cal_max"])
        if np.isfinite([low, high]).all() and high > low:
            return (low + high) / 2 + 0.5, high - low + 1
    return None


def _check_same_grid(
    nib: ModuleType, mask_path: Path, affine: np.ndarray, shape: tuple[int, ...], path: Path
) -> None:
    mask = _load(nib, mask_path)
    if _grid(mask, mask_path) != tuple(shape):
        raise DataFileError(
            f"label map {str(mask_path)!r} is {_grid(mask, mask_path)} (D, H, W) but its image "
            f"{str(path)!r} is {tuple(shape)}; give a label map of the image's grid"
        )
    if not np.allclose(ras_to_lps(_affine(mask, mask_path)), affine, atol=1e-4):
        raise DataFileError(
            f"label map {str(mask_path)!r} has another affine than its image {str(path)!r}; "
            f"resample it onto the image's grid"
        )


def _label_map(
    nib: ModuleType, mask_path: Path, affine: np.ndarray, shape: tuple[int, ...]
) -> np.ndarray:
    values = _voxels(_load(nib, mask_path), mask_path)
    try:
        return check_label_map(values, shape)
    except Exception as exc:
        raise DataFileError(f"label map {str(mask_path)!r} is unusable: {exc}") from exc
