"""Volumes (CT, MR: a stack of slices with a place in the patient) and data sets of them.

The design, in short:

- A :class:`Volume` is one scan in memory: ``array`` ``(C, D, H, W)`` float32 values in
  [0, 1] (as :class:`~synthaug.data.ImageDataset` holds 2D images; ``D`` is the slice axis,
  ``H`` the rows and ``W`` the columns of a slice), an optional integer label map ``mask``
  ``(D, H, W)`` (0 background, 1, 2, ... the labels), a 4x4 ``affine`` and ``metadata``.
- The affine maps a voxel's array index ``(d, h, w)`` to patient coordinates in millimetres
  in **LPS** (DICOM's patient coordinate system: x towards the patient's left, y towards
  the posterior, z towards the head): ``affine @ [d, h, w, 1]``. DICOM series are read into
  it as they are; NIfTI's RAS affines (and their ``(i, j, k)`` axis order) are converted on
  reading and back on writing, so a volume read from either format has the same affine for
  the same geometry. ``spacing`` ``(z, y, x)`` is the length of the affine's columns: the
  distances between neighbouring slices, rows and columns.
- A :class:`VolumeDataset` is a data set of volumes with integer labels and class names, as
  :class:`~synthaug.data.ImageDataset` is of images, but it holds a **list of volume
  sources**, not one tensor: a source knows its shape, affine and metadata from the file
  headers and reads its voxels only when asked (``dataset[i]``, ``dataset.volume(i)``). A
  folder of scans larger than memory is indexed, never read at once. A :class:`Volume` is a
  source that is already in memory. Volumes of one data set may differ in shape and spacing
  (``sample_shape`` is ``None`` then); resampling them to one grid is left to a later part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import Dataset

from synthaug._memory import check_fits_in_memory
from synthaug.data._dataset import (
    integer_labels,
    stratified_kfold_indices,
    stratified_split_indices,
)
from synthaug.errors import (
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
)

# From a NIfTI affine (RAS, array axes (i, j, k)) to ours (LPS, array axes (d, h, w) =
# (k, j, i)) and back: x and y change sign, the first and last array axes swap. Both
# matrices are their own inverse.
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_SWAP_AXES = np.array(
    [[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


def affine_from_spacing(spacing: Sequence[float]) -> np.ndarray:
    """The affine of a volume with voxel ``spacing`` ``(z, y, x)`` in mm, axes along LPS,
    the first voxel at the origin.

    Examples
    --------
    >>> affine_from_spacing((2.0, 0.5, 0.5))[:3, :3].tolist()
    [[0.0, 0.0, 0.5], [0.0, 0.5, 0.0], [2.0, 0.0, 0.0]]
    """
    values = np.asarray(spacing, dtype=np.float64)
    if values.shape != (3,) or not np.isfinite(values).all() or (values <= 0).any():
        raise InvalidParameterError(
            f"spacing must be three positive numbers (z, y, x) in mm, got {spacing!r}"
        )
    affine = np.zeros((4, 4))
    # An axial stack as DICOM has it: slices (d) along z, rows (h) along y, columns (w) along x.
    affine[2, 0], affine[1, 1], affine[0, 2], affine[3, 3] = *values, 1.0
    return affine


def ras_to_lps(affine: np.ndarray) -> np.ndarray:
    """A NIfTI affine (RAS, array axes ``(i, j, k)``) as synthaug's (LPS, axes ``(k, j, i)``)."""
    return _RAS_TO_LPS @ np.asarray(affine, dtype=np.float64) @ _SWAP_AXES


def lps_to_ras(affine: np.ndarray) -> np.ndarray:
    """synthaug's affine (LPS, array axes ``(d, h, w)``) as NIfTI's (RAS, axes ``(w, h, d)``)."""
    return _RAS_TO_LPS @ np.asarray(affine, dtype=np.float64) @ _SWAP_AXES


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    """The ``(z, y, x)`` spacing of an affine: the lengths of its first three columns."""
    norms = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
    return float(norms[0]), float(norms[1]), float(norms[2])


def check_affine(affine: Any, what: str = "affine") -> np.ndarray:
    """``affine`` as a float64 4x4 array, refused unless it places voxels in space."""
    try:
        matrix = np.array(affine, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidDataError(f"{what} must be a 4x4 array of numbers, got {affine!r}") from None
    if matrix.shape != (4, 4):
        raise ShapeMismatchError(f"{what} must be 4x4, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise InvalidDataError(f"{what} holds NaN or infinite values")
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0]):
        raise InvalidDataError(f"{what}'s last row must be [0, 0, 0, 1], got {matrix[3].tolist()}")
    # A zero or dependent column would put two voxels at one place: no geometry at all.
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
        raise InvalidDataError(
            f"{what} is singular (a zero spacing or two axes along one direction); give each "
            f"axis its own direction and a positive spacing"
        )
    return matrix


def to_unit_range(values: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """Float32 ``values`` mapped to [0, 1] in place, so a large volume is not copied.

    ``window`` ``(center, width)`` is DICOM's linear VOI function (PS3.3 C.11.2.1.2.1), the
    one the 2D DICOM reader applies; None maps the volume's own min-max (a constant volume
    becomes zeros). Values outside the window are clipped.
    """
    if window is not None:
        center, width = window
        if width <= 1:
            return (values > center - 0.5).astype(np.float32)
        low, span = center - 0.5 - (width - 1) / 2, width - 1
    else:
        low, high = float(values.min()), float(values.max())
        if high <= low:
            values[...] = 0.0
            return values
        span = high - low
    values -= np.float32(low)
    values /= np.float32(span)
    return np.clip(values, 0.0, 1.0, out=values)


@runtime_checkable
class VolumeSource(Protocol):
    """What a :class:`VolumeDataset` needs of each of its volumes.

    ``shape``, ``affine`` and ``metadata`` are known without reading the voxels (from the
    file headers); :meth:`read` reads them. :class:`Volume` is the in-memory source; the DICOM
    series and NIfTI readers make sources that read their files on each call.
    """

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(C, D, H, W)``."""
        ...

    @property
    def affine(self) -> np.ndarray:
        """The 4x4 voxel-to-LPS affine."""
        ...

    @property
    def metadata(self) -> dict[str, Any]:
        """Where the volume came from (files, UIDs)."""
        ...

    @property
    def has_mask(self) -> bool:
        """Whether :meth:`read` returns a label map with the volume."""
        ...

    def read(self) -> Volume:
        """The volume with its voxels (and label map), in memory."""
        ...


@dataclass(frozen=True, eq=False)
class Volume:
    """One volume in memory: voxels in [0, 1], a label map, its place in the patient.

    Parameters
    ----------
    array : numpy.ndarray or torch.Tensor
        ``(C, D, H, W)`` or ``(D, H, W)`` (one channel) float values in [0, 1].
    affine : array, optional
        4x4 map from array index ``(d, h, w, 1)`` to LPS millimetres. Default: unit spacing
        along LPS (``affine_from_spacing((1, 1, 1))``).
    mask : array, optional
        ``(D, H, W)`` label map of non-negative integers (bool is 0/1): 0 background, each
        other value one label.
    metadata : dict, optional
        Where the volume came from: ``file`` (the series folder or NIfTI file), and for DICOM
        ``SeriesInstanceUID``, ``StudyInstanceUID``, ``SOPClassUID``, ``SOPInstanceUIDs`` (one
        per slice, in slice order), ``modality``; what a derived volume's writer references.

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(np.zeros((4, 8, 8), np.float32), affine_from_spacing((2.5, 0.7, 0.7)))
    >>> v.shape, v.spacing
    ((1, 4, 8, 8), (2.5, 0.7, 0.7))
    """

    array: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: affine_from_spacing((1.0, 1.0, 1.0)))
    mask: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        array = self.array
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
        array = np.asarray(array)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4:
            raise ShapeMismatchError(
                f"a volume must be (C, D, H, W) or (D, H, W), got shape {array.shape}"
            )
        if 0 in array.shape:
            raise ShapeMismatchError(f"a volume needs at least one voxel, got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.floating):
            raise InvalidDataError(
                f"volume values must be floats in [0, 1], got dtype {array.dtype}; scale them "
                f"first (e.g. (x - low) / (high - low) for a known intensity range)"
            )
        array = np.ascontiguousarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise InvalidDataError("the volume holds NaN or infinite values; fix them first")
        if array.min() < 0 or array.max() > 1:
            raise InvalidDataError(
                f"volume values must lie in [0, 1], got [{float(array.min()):.4g}, "
                f"{float(array.max()):.4g}]; rescale them"
            )
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "affine", check_affine(self.affine))
        object.__setattr__(self, "mask", check_label_map(self.mask, array.shape[1:]))
        object.__setattr__(self, "metadata", dict(self.metadata))

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(C, D, H, W)``."""
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """``(z, y, x)``: the distances in mm between slices, rows and columns."""
        return spacing_of(self.affine)

    @property
    def has_mask(self) -> bool:
        return self.mask is not None

    def read(self) -> Volume:
        """The volume itself: it is in memory already."""
        return self


def check_label_map(mask: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """``mask`` as a ``(D, H, W)`` int64 label map of the volume's ``shape``, or None."""
    if mask is None:
        return None
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.ndim == 4 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.shape != tuple(shape):
        raise ShapeMismatchError(
            f"the label map is {mask.shape} but the volume is {tuple(shape)} (D, H, W); give "
            f"one label per voxel"
        )
    if mask.dtype == np.bool_:
        return mask.astype(np.int64)
    if not np.issubdtype(mask.dtype, np.number) or np.iscomplexobj(mask):
        raise InvalidDataError(f"a label map must hold integers, got dtype {mask.dtype}")
    labels = integer_labels(mask.reshape(-1), "label map values").reshape(mask.shape)
    if labels.size and labels.min() < 0:
        raise InvalidDataError(
            f"label map values must be non-negative (0 background), got {int(labels.min())}"
        )
    return labels.astype(np.int64)


class VolumeDataset(Dataset):
    """Volumes with integer labels and class names; voxels read from disk only when asked.

    Parameters
    ----------
    volumes : sequence of VolumeSource
        One source per volume: :class:`Volume` objects (in memory) or the lazy sources that
        :func:`load_volume_folder`, :func:`read_dicom_series_lazy` and
        :func:`read_nifti_lazy` make.
    labels : sequence of int
        One label per volume in ``range(len(classes))``.
    classes : sequence of str, optional
        Class names, indexed by label. Defaults to ``["0", "1", ...]``.
    skipped : list of (str, str), optional
        ``(file, reason)`` for every file or series a loader left out (``on_error="skip"``).

    Notes
    -----
    ``dataset[i]`` is ``(volume, label)`` with ``volume`` a ``(C, D, H, W)`` float tensor,
    read from its files on each call (nothing is cached: the data set never holds more than
    the asked volume). :meth:`volume` returns the whole :class:`Volume` (affine, label map,
    metadata); :meth:`load` reads every volume into memory.

    Examples
    --------
    >>> import numpy as np
    >>> vols = [Volume(np.full((4, 8, 8), v, np.float32)) for v in (0.2, 0.8)]
    >>> ds = VolumeDataset(vols, [0, 1], ["normal", "lesion"])
    >>> volume, label = ds[1]
    >>> tuple(volume.shape), int(label), ds.sample_shape
    ((1, 4, 8, 8), 1, (1, 4, 8, 8))
    """

    def __init__(
        self,
        volumes: Sequence[VolumeSource],
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        classes: Sequence[str] | None = None,
        *,
        skipped: list[tuple[str, str]] | None = None,
    ) -> None:
        if isinstance(volumes, (np.ndarray, torch.Tensor)):
            raise InvalidDataError(
                "VolumeDataset takes a list of volumes; build one from an (N, C, D, H, W) "
                "array with synthaug.data.volumes_from_arrays"
            )
        volumes = list(volumes)
        bad = [i for i, v in enumerate(volumes) if not isinstance(v, VolumeSource)]
        if bad:
            raise InvalidDataError(
                f"volume {bad[0]} is a {type(volumes[bad[0]]).__name__}, not a volume source; "
                f"wrap arrays in synthaug.data.Volume"
            )
        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
        labels = integer_labels(np.asarray(labels).reshape(-1), "labels")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise InvalidDataError(f"labels must be integers, got dtype {labels.dtype}")
        if len(labels) != len(volumes):
            raise ShapeMismatchError(f"{len(labels)} labels for {len(volumes)} volumes")
        if labels.size and labels.min() < 0:
            raise InvalidDataError(f"labels must be non-negative, got {int(labels.min())}")
        if classes is None:
            classes = [str(i) for i in range(int(labels.max()) + 1 if labels.size else 0)]
        classes = [str(c) for c in classes]
        if len(set(classes)) != len(classes):
            raise InvalidDataError(f"class names must be unique, got {classes}")
        if labels.size and int(labels.max()) >= len(classes):
            raise InvalidDataError(
                f"label {int(labels.max())} is out of range for {len(classes)} classes {classes}"
            )
        self._volumes = volumes
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.classes = classes
        self.skipped = list(skipped or [])

    # -- the torch Dataset protocol -------------------------------------------------------
    def __len__(self) -> int:
        return len(self._volumes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.volume(index).array), self.labels[index]

    def __repr__(self) -> str:
        return (
            f"VolumeDataset(n={len(self)}, shape={self.sample_shape}, classes={self.classes}, "
            f"counts={self.class_counts()})"
        )

    # -- per volume -----------------------------------------------------------------------
    def volume(self, index: int) -> Volume:
        """Volume ``index`` with its affine, label map and metadata (read from disk now)."""
        return self._volumes[index].read()

    def source(self, index: int) -> VolumeSource:
        """The source of volume ``index`` (its header facts, without reading voxels)."""
        return self._volumes[index]

    # -- facts (from headers: no voxels are read) -----------------------------------------
    @property
    def shapes(self) -> list[tuple[int, int, int, int]]:
        """``(C, D, H, W)`` of every volume."""
        return [tuple(v.shape) for v in self._volumes]  # type: ignore[misc]

    @property
    def sample_shape(self) -> tuple[int, int, int, int] | None:
        """The ``(C, D, H, W)`` all volumes share, or None when they differ (or none)."""
        shapes = set(self.shapes)
        return next(iter(shapes)) if len(shapes) == 1 else None

    @property
    def affines(self) -> np.ndarray:
        """``(N, 4, 4)``: every volume's voxel-to-LPS affine."""
        return np.stack([v.affine for v in self._volumes]) if self._volumes else np.zeros((0, 4, 4))

    @property
    def spacing(self) -> np.ndarray:
        """``(N, 3)``: every volume's ``(z, y, x)`` spacing in mm."""
        return np.array([spacing_of(v.affine) for v in self._volumes]).reshape(-1, 3)

    @property
    def metadata(self) -> list[dict[str, Any]]:
        """One dict per volume: where it came from (see :class:`Volume`)."""
        return [v.metadata for v in self._volumes]

    @property
    def has_masks(self) -> bool:
        """Whether every volume has a label map."""
        return bool(self._volumes) and all(v.has_mask for v in self._volumes)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> dict[int, int]:
        """Number of volumes per class label, every class included (zero when absent)."""
        counts = torch.bincount(self.labels, minlength=len(self.classes))
        return {i: int(c) for i, c in enumerate(counts)}

    # -- derived data sets ----------------------------------------------------------------
    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> VolumeDataset:
        """A new data set of the given volumes (same classes; nothing is read)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise InvalidParameterError(f"subset indices out of range for {len(self)} volumes")
        return VolumeDataset([self._volumes[int(i)] for i in idx], self.labels[idx], self.classes)

    def split_indices(
        self, test_size: float = 0.25, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The sorted ``(train, test)`` volume indices of a stratified split, as
        :meth:`ImageDataset.split_indices <synthaug.data.ImageDataset.split_indices>` makes
        them from the labels alone (nothing is read); the benchmark's resampling protocols
        take either data set."""
        return stratified_split_indices(self.labels.numpy(), self.classes, test_size, seed)

    def kfold_indices(
        self, folds: int = 5, fold: int = 0, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The sorted ``(train, test)`` volume indices of fold ``fold`` of a stratified
        k-fold, as :meth:`ImageDataset.kfold_indices
        <synthaug.data.ImageDataset.kfold_indices>` makes them (nothing is read)."""
        return stratified_kfold_indices(self.labels.numpy(), self.classes, folds, fold, seed)

    def split(self, test_size: float = 0.25, seed: int = 0) -> tuple[VolumeDataset, VolumeDataset]:
        """Stratified ``(train, test)`` data sets of :meth:`split_indices` (nothing is read)."""
        train_idx, test_idx = self.split_indices(test_size, seed)
        return self.subset(train_idx), self.subset(test_idx)

    def stacked(self) -> torch.Tensor:
        """Every volume read into one ``(N, C, D, H, W)`` float32 tensor, for data sets whose
        volumes share one shape (resample others to one grid first).

        Raises
        ------
        ShapeMismatchError
            When the volumes differ in shape (the message counts each shape).
        InvalidParameterError
            When the tensor would not fit in the memory available (checked before reading).
        """
        shape = self._shared_shape("stack")
        out = self._allocate((len(self), *shape), torch.float32, "the stacked volumes")
        for i in range(len(self)):
            out[i] = torch.from_numpy(self.volume(i).array)
        return out

    def stacked_masks(self) -> torch.Tensor:
        """Every label map in one ``(N, D, H, W)`` int64 tensor (volumes of one shape, each
        with a label map; the same errors as :meth:`stacked`)."""
        shape = self._shared_shape("stack the label maps of")
        missing = [i for i, v in enumerate(self._volumes) if not v.has_mask]
        if missing:
            raise InvalidDataError(
                f"{len(missing)} of {len(self)} volumes have no label map (the first: volume "
                f"{missing[0]}); give every volume one, or select those that have"
            )
        out = self._allocate((len(self), *shape[1:]), torch.int64, "the stacked label maps")
        for i in range(len(self)):
            out[i] = torch.from_numpy(self.volume(i).mask)
        return out

    def _shared_shape(self, what: str) -> tuple[int, int, int, int]:
        if len(self) == 0:
            raise EmptyDatasetError(f"cannot {what} an empty data set of volumes")
        shape = self.sample_shape
        if shape is None:
            counts: dict[tuple[int, ...], int] = {}
            for s in self.shapes:
                counts[s] = counts.get(s, 0) + 1
            shown = ", ".join(f"{s} ({n} volumes)" for s, n in counts.items())
            raise ShapeMismatchError(
                f"cannot {what} volumes of different shapes (C, D, H, W): {shown}; resample "
                f"them to one grid or select volumes of one shape"
            )
        return shape

    @staticmethod
    def _allocate(shape: tuple[int, ...], dtype: torch.dtype, what: str) -> torch.Tensor:
        needed = int(np.prod(shape)) * torch.empty((), dtype=dtype).element_size()
        check_fits_in_memory(
            needed,
            f"{what} {shape}",
            "read the volumes one at a time (dataset[i]) or select fewer",
        )
        return torch.empty(shape, dtype=dtype)

    def load(self) -> VolumeDataset:
        """The same data set with every volume read into memory (:class:`Volume` objects)."""
        return VolumeDataset(
            [self.volume(i) for i in range(len(self))],
            self.labels,
            self.classes,
            skipped=self.skipped,
        )


def volumes_from_arrays(
    X: np.ndarray | torch.Tensor,
    y: Sequence[int] | np.ndarray | torch.Tensor,
    classes: Sequence[str] | None = None,
    *,
    affines: np.ndarray | Sequence[np.ndarray] | None = None,
    masks: np.ndarray | torch.Tensor | None = None,
    metadata: Sequence[Mapping[str, Any]] | None = None,
) -> VolumeDataset:
    """A :class:`VolumeDataset` held in memory, from ``(N, C, D, H, W)`` or ``(N, D, H, W)``
    float volumes in [0, 1].

    Parameters
    ----------
    X : array
        The volumes.
    y : sequence of int
        One label per volume.
    classes : sequence of str, optional
        Class names, indexed by label.
    affines : array, optional
        ``(N, 4, 4)`` or one ``(4, 4)`` for all: voxel-to-LPS affines (see
        :func:`affine_from_spacing`). Default: unit spacing.
    masks : array, optional
        ``(N, D, H, W)`` integer label maps.
    metadata : sequence of dict, optional
        One dict per volume.

    Examples
    --------
    >>> import numpy as np
    >>> ds = volumes_from_arrays(np.zeros((2, 4, 8, 8), np.float32), [0, 1],
    ...                          affines=affine_from_spacing((3.0, 1.0, 1.0)))
    >>> ds.spacing[0].tolist()
    [3.0, 1.0, 1.0]
    """
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.ndim not in (4, 5):
        raise ShapeMismatchError(
            f"X must be (N, C, D, H, W) or (N, D, H, W) volumes, got shape {X.shape}"
        )
    if len(X) == 0:
        raise EmptyDatasetError("volumes_from_arrays got no volumes; pass at least one")
    n = len(X)
    if affines is None:
        affines = affine_from_spacing((1.0, 1.0, 1.0))
    affines = np.asarray(affines, dtype=np.float64)
    if affines.shape == (4, 4):
        affines = np.broadcast_to(affines, (n, 4, 4))
    if affines.shape != (n, 4, 4):
        raise ShapeMismatchError(f"affines must be (4, 4) or ({n}, 4, 4), got {affines.shape}")
    if masks is not None and len(masks) != n:
        raise ShapeMismatchError(f"{len(masks)} label maps for {n} volumes")
    if metadata is not None and len(metadata) != n:
        raise ShapeMismatchError(f"{len(metadata)} metadata entries for {n} volumes")
    volumes = [
        Volume(
            X[i],
            affines[i],
            None if masks is None else masks[i],
            {} if metadata is None else dict(metadata[i]),
        )
        for i in range(n)
    ]
    return VolumeDataset(volumes, y, classes)
