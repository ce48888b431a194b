"""The one in-memory dataset type that every synthaug layer passes around."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from torch.utils.data import Dataset

from synthaug._utils import check_seed, sklearn_seed, warn
from synthaug.errors import (
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
)


class ImageDataset(Dataset):
    """Images, integer labels and class names, held in memory as tensors.

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray
        ``(N, C, H, W)`` images (or ``(N, D)`` feature vectors) with float values in [0, 1].
    labels : torch.Tensor or numpy.ndarray
        ``(N,)`` integer labels in ``range(len(classes))``.
    classes : sequence of str, optional
        Class names, indexed by label. Defaults to ``["0", "1", ...]`` up to the largest label.
    metadata : list of dict, optional
        One dict per sample describing where it came from (file, UID, ...). Kept by
        :meth:`subset` and :meth:`split`.

    Examples
    --------
    >>> import torch
    >>> ds = ImageDataset(torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]), ["a", "b"])
    >>> ds.class_counts()
    {0: 2, 1: 2}
    >>> image, label = ds[0]
    >>> tuple(image.shape), int(label)
    ((1, 8, 8), 0)
    """

    def __init__(
        self,
        images: torch.Tensor | np.ndarray,
        labels: torch.Tensor | np.ndarray | Sequence[int],
        classes: Sequence[str] | None = None,
        *,
        metadata: list[dict[str, Any]] | None = None,
    ) -> None:
        images = torch.as_tensor(images)
        labels = torch.as_tensor(labels)
        if images.dim() not in (2, 4):
            raise ShapeMismatchError(
                f"images must be (N, C, H, W) or (N, D) feature vectors, got shape "
                f"{tuple(images.shape)}; use synthaug.data.from_arrays to convert (N, H, W) or "
                f"(N, H, W, C) arrays"
            )
        if not images.is_floating_point():
            raise InvalidDataError(
                f"images must be floating point in [0, 1], got dtype {images.dtype}; "
                f"use synthaug.data.from_arrays to scale uint8 images"
            )
        images = images.to(torch.float32)
        if 0 in images.shape[1:]:
            raise ShapeMismatchError(
                f"every sample needs at least one value, got samples of shape "
                f"{tuple(images.shape[1:])}"
            )
        if labels.dim() != 1:
            raise ShapeMismatchError(f"labels must be 1-D, got shape {tuple(labels.shape)}")
        if labels.is_floating_point():
            # Whole numbers stored as floats are class indices; 0.37 is not a class.
            whole = integer_labels(labels.detach().cpu().double().numpy(), "labels")
            labels = torch.from_numpy(whole).to(labels.device)
        elif labels.dtype == torch.bool:
            raise InvalidDataError("labels must be integers, got booleans")
        elif labels.is_complex():
            raise InvalidDataError(f"labels must be integers, got dtype {labels.dtype}")
        labels = labels.to(torch.int64)
        if len(images) != len(labels):
            raise ShapeMismatchError(
                f"images and labels disagree in length: {len(images)} images, {len(labels)} labels"
            )
        if images.numel() and not torch.isfinite(images).all():
            bad = int((~torch.isfinite(images)).flatten(1).any(1).sum())
            raise InvalidDataError(
                f"{bad} image(s) contain NaN or infinite values; remove or fix them"
            )
        if images.numel() and (images.min() < 0 or images.max() > 1):
            raise InvalidDataError(
                f"image values must lie in [0, 1], got range [{float(images.min()):.4g}, "
                f"{float(images.max()):.4g}]; rescale them (from_arrays does this for uint8)"
            )
        if labels.numel() and labels.min() < 0:
            raise InvalidDataError(f"labels must be non-negative, got {int(labels.min())}")
        if classes is None:
            n_classes = int(labels.max()) + 1 if labels.numel() else 0
            classes = [str(i) for i in range(n_classes)]
        classes = [str(c) for c in classes]
        if len(set(classes)) != len(classes):
            raise InvalidDataError(f"class names must be unique, got {classes}")
        if labels.numel() and int(labels.max()) >= len(classes):
            raise InvalidDataError(
                f"label {int(labels.max())} is out of range for {len(classes)} classes {classes}"
            )
        if metadata is not None and len(metadata) != len(images):
            raise ShapeMismatchError(
                f"metadata has {len(metadata)} entries for {len(images)} images"
            )
        self.images = images
        self.labels = labels
        self.classes = classes
        self.metadata = metadata

    # -- the torch Dataset protocol -------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return (
            f"ImageDataset(n={len(self)}, shape={self.sample_shape}, "
            f"classes={self.classes}, counts={self.class_counts()})"
        )

    # -- facts ----------------------------------------------------------------------------
    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(C, H, W)`` for images, ``(D,)`` for feature vectors."""
        return tuple(self.images.shape[1:])

    @property
    def is_image(self) -> bool:
        """True for ``(C, H, W)`` images, False for flat feature vectors."""
        return self.images.dim() == 4

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> dict[int, int]:
        """Number of samples per class label, every class included (zero when absent)."""
        counts = torch.bincount(self.labels, minlength=len(self.classes))
        return {i: int(c) for i, c in enumerate(counts)}

    # -- derived datasets -----------------------------------------------------------------
    def subset(self, indices: Sequence[int] | torch.Tensor | np.ndarray) -> ImageDataset:
        """A new dataset holding the given samples (same classes)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64).reshape(-1)
        if idx.numel() and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise InvalidParameterError(f"subset indices out of range for {len(self)} samples")
        meta = None if self.metadata is None else [self.metadata[int(i)] for i in idx]
        return ImageDataset(self.images[idx], self.labels[idx], self.classes, metadata=meta)

    def split(self, test_size: float = 0.25, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
        """Stratified split into ``(train, test)``; every class with samples lands in both.

        Raises
        ------
        InvalidDataError
            When a present class has fewer than 2 samples (it cannot appear on both sides).
        """
        train_idx, test_idx = self.split_indices(test_size, seed)
        return self.subset(train_idx), self.subset(test_idx)

    def split_indices(
        self, test_size: float = 0.25, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The sorted item indices of :meth:`split`'s ``(train, test)`` parts."""
        return stratified_split_indices(self.labels.numpy(), self.classes, test_size, seed)

    def kfold_indices(
        self, folds: int = 5, fold: int = 0, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The sorted ``(train, test)`` item indices of fold ``fold`` of a stratified k-fold.

        The ``folds`` test parts of one ``seed`` are disjoint and together hold every item
        once; each keeps the class proportions (scikit-learn's ``StratifiedKFold`` with
        shuffling). Repeated k-fold cross-validation draws one such partition per repeat.

        Raises
        ------
        InvalidParameterError
            When ``folds`` is not an integer >= 2 or ``fold`` is not in ``[0, folds)``.
        InvalidDataError
            When a present class has fewer than ``folds`` items (some test part would miss it).
        """
        return stratified_kfold_indices(self.labels.numpy(), self.classes, folds, fold, seed)

    def fingerprint(self) -> str:
        """SHA-256 of the images, labels and class names: the same data, the same fingerprint.

        A model records its training data's fingerprint, so that an evaluation can tell
        whether it was given that very data (metadata is not part of it).
        """
        h = hashlib.sha256()
        h.update(json.dumps([list(self.classes), list(self.images.shape)]).encode())
        h.update(self.images.detach().cpu().to(torch.float32).contiguous().numpy().tobytes())
        h.update(self.labels.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
        return h.hexdigest()

    def concat(self, other: ImageDataset) -> ImageDataset:
        """Samples of ``self`` followed by those of ``other`` (same classes and sample shape)."""
        if other.classes != self.classes:
            raise InvalidDataError(
                f"cannot concatenate datasets with classes {self.classes} and {other.classes}"
            )
        if other.sample_shape != self.sample_shape:
            raise ShapeMismatchError(
                f"cannot concatenate samples of shape {self.sample_shape} and {other.sample_shape}"
            )
        meta = None
        if self.metadata is not None or other.metadata is not None:
            meta = (self.metadata or [{}] * len(self)) + (other.metadata or [{}] * len(other))
        return ImageDataset(
            torch.cat([self.images, other.images]),
            torch.cat([self.labels, other.labels]),
            self.classes,
            metadata=meta,
        )

    def flat(self) -> np.ndarray:
        """Samples as a float32 ``(N, D)`` numpy array (for scikit-learn)."""
        return self.images.reshape(len(self), -1).numpy()


def stratified_split_indices(
    labels: np.ndarray, classes: Sequence[str], test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, test)`` indices of a stratified split of items with ``labels``; every
    class with items lands in both parts. Data sets of images and of volumes split so."""
    if not 0 < test_size < 1:
        raise InvalidParameterError(f"test_size must be in (0, 1), got {test_size}")
    if len(labels) == 0:
        raise EmptyDatasetError("cannot split an empty dataset")
    counts = np.bincount(labels, minlength=len(classes))
    tiny = [classes[c] for c, n in enumerate(counts) if n == 1]
    if tiny:
        raise InvalidDataError(
            f"class(es) {tiny} have a single sample and cannot be split into train and test; "
            f"add samples or drop those classes"
        )
    try:
        train_idx, test_idx = train_test_split(
            np.arange(len(labels)),
            test_size=test_size,
            stratify=labels,
            random_state=sklearn_seed(check_seed(seed)),
        )
    except ValueError as exc:
        raise InvalidParameterError(
            f"cannot make a stratified split with test_size={test_size}: {exc}"
        ) from exc
    return np.sort(train_idx), np.sort(test_idx)


def stratified_kfold_indices(
    labels: np.ndarray, classes: Sequence[str], folds: int, fold: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, test)`` indices of fold ``fold`` of a stratified, shuffled k-fold of
    items with ``labels`` (see :meth:`ImageDataset.kfold_indices`)."""
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise InvalidParameterError(f"folds must be an integer >= 2, got {folds!r}")
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < folds:
        raise InvalidParameterError(f"fold must be an integer in [0, {folds}), got {fold!r}")
    if len(labels) == 0:
        raise EmptyDatasetError("cannot split an empty dataset")
    counts = np.bincount(labels, minlength=len(classes))
    small = [classes[c] for c, n in enumerate(counts) if 0 < n < folds]
    if small:
        raise InvalidDataError(
            f"class(es) {small} have fewer than {folds} samples, so some of the {folds} "
            f"test folds would miss them; use fewer folds or add samples"
        )
    splitter = StratifiedKFold(
        n_splits=int(folds), shuffle=True, random_state=sklearn_seed(check_seed(seed))
    )
    train_idx, test_idx = list(splitter.split(np.zeros(len(labels)), labels))[int(fold)]
    return np.sort(train_idx), np.sort(test_idx)


def from_arrays(
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | Sequence[int],
    classes: Sequence[str] | None = None,
    *,
    channels_last: bool | None = None,
    feature_range: tuple[float, float] | None = None,
) -> ImageDataset:
    """Build an :class:`ImageDataset` from user arrays.

    Parameters
    ----------
    X : array
        ``(N, H, W)`` grayscale, ``(N, C, H, W)`` or ``(N, H, W, C)`` images, or ``(N, D)``
        feature vectors. Integer arrays (uint8 and friends) are scaled from [0, 255] to [0, 1];
        float arrays must already lie in [0, 1] (or give ``feature_range``).
    y : array
        ``(N,)`` labels. Integer labels are used as they are when ``classes`` is given; any
        other labels (strings, sparse integers without ``classes``) are encoded in sorted order
        and their values become the class names. Float labels that are whole numbers (``1.0``)
        are integer labels; other floats (``0.37``), NaN, negative integers and empty arrays
        are refused (:class:`~synthaug.errors.InvalidDataError`,
        :class:`~synthaug.errors.EmptyDatasetError`).
    classes : sequence of str, optional
        Names of the classes, indexed by integer label.
    channels_last : bool, optional
        Force the interpretation of 4-D input; by default a last axis of size 1, 3 or 4 with a
        second axis of another size means channels-last.
    feature_range : (float, float), optional
        ``(low, high)``, the range ``X``'s values are known to span (Hounsfield units, 12-bit
        counts), from domain knowledge: ``low`` maps to 0 and ``high`` to 1, whatever the
        dtype, and values outside are clipped (with a warning saying how many). Bounds read
        from the data itself would be a release that no privacy accountant sees, so none are.

    Examples
    --------
    >>> import numpy as np
    >>> ds = from_arrays(np.zeros((6, 8, 8), dtype=np.uint8), ["cat", "dog"] * 3)
    >>> ds.classes, ds.sample_shape
    (['cat', 'dog'], (1, 8, 8))
    """
    X, y = _as_array(X, "X"), _as_array(y, "y")
    if X.ndim == 3:
        X = X[:, None]
    elif X.ndim == 4:
        if channels_last is None:
            channels_last = X.shape[-1] in (1, 3, 4) and X.shape[1] not in (1, 3, 4)
        if channels_last:
            X = np.transpose(X, (0, 3, 1, 2))
    elif X.ndim != 2:
        raise ShapeMismatchError(
            f"X must be (N, D), (N, H, W), (N, C, H, W) or (N, H, W, C), got shape {X.shape}"
        )
    if feature_range is not None:
        X = _scaled(X, feature_range)
    elif X.dtype == np.bool_:
        X = X.astype(np.float32)
    elif np.issubdtype(X.dtype, np.integer):
        if X.size and (X.min() < 0 or X.max() > 255):
            raise InvalidDataError(
                f"integer images must lie in [0, 255], got [{X.min()}, {X.max()}]; "
                f"rescale to float in [0, 1] first"
            )
        X = X.astype(np.float32) / 255.0
    elif np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float32)
    else:
        raise InvalidDataError(f"X must be numeric, got dtype {X.dtype}")
    if y.ndim != 1:
        raise ShapeMismatchError(f"y must be 1-D, got shape {y.shape}")
    if not len(X) or not len(y):
        raise EmptyDatasetError(
            f"from_arrays got {len(X)} images and {len(y)} labels; pass at least one of each"
        )
    y = integer_labels(y, "labels")
    # Negative integers are almost always a coding (-1/1, or -1 for "unlabelled"), not class
    # names: encoding them silently would hide a mistake.
    if np.issubdtype(y.dtype, np.integer) and y.min() < 0:
        raise InvalidDataError(
            f"labels must be non-negative integers, got {int(y.min())}; map them to 0..K-1 "
            f"(np.unique(y, return_inverse=True)) or pass them as strings"
        )
    if classes is None or not np.issubdtype(y.dtype, np.integer):
        try:
            names, codes = np.unique(y, return_inverse=True)
        except TypeError as exc:
            raise InvalidDataError(f"labels cannot be sorted into classes: {exc}") from exc
        if classes is not None:
            lookup = {str(c): i for i, c in enumerate(classes)}
            missing = [str(n) for n in names if str(n) not in lookup]
            if missing:
                raise InvalidDataError(
                    f"labels {missing} are not among the given classes {list(classes)}"
                )
            codes = np.array([lookup[str(v)] for v in y], dtype=np.int64)
        else:
            classes = [str(n) for n in names]
        y = codes
    return ImageDataset(
        torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(y.astype(np.int64)), classes
    )


def check_image_dataset(dataset: Any, takes: str, empty: str) -> None:
    """Refuse anything but an :class:`ImageDataset` with items: the one rule of every entry
    point that takes a data set (fitting a generator or a detector, ``advise``).

    ``takes`` begins the type error (``"fit expects"``); ``empty`` is the whole error for a
    data set without items.
    """
    if not isinstance(dataset, ImageDataset):
        raise InvalidDataError(
            f"{takes} a synthaug.data.ImageDataset, got {type(dataset).__name__}; build one "
            f"with synthaug.data.from_arrays(X, y)"
        )
    if len(dataset) == 0:
        raise EmptyDatasetError(empty)


def _scaled(X: np.ndarray, feature_range: Any) -> np.ndarray:
    """``X`` mapped from ``feature_range`` = ``(low, high)`` to [0, 1], float32, clipped."""
    if not (
        isinstance(feature_range, (tuple, list))
        and len(feature_range) == 2
        and all(
            isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
            for v in feature_range
        )
        and all(np.isfinite(v) for v in feature_range)
        and feature_range[0] < feature_range[1]
    ):
        raise InvalidParameterError(
            f"feature_range must be (low, high) with finite numbers low < high, got {feature_range!r}"
        )
    if not (X.dtype == np.bool_ or np.issubdtype(X.dtype, np.number)):
        raise InvalidDataError(f"X must be numeric, got dtype {X.dtype}")
    low, high = (float(v) for v in feature_range)
    X = (X.astype(np.float64) - low) / (high - low)
    outside = int(np.count_nonzero((X < 0) | (X > 1)))
    if outside:
        warn(
            f"{outside} of {X.size} values lie outside feature_range ({low:g}, {high:g}) and were "
            f"clipped to it; widen the range if they are meant"
        )
    return np.clip(X, 0.0, 1.0).astype(np.float32)


def _as_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except ValueError as exc:
        raise InvalidDataError(
            f"{name} cannot be read as one array (rows of different lengths?): {exc}"
        ) from None


def integer_labels(labels: np.ndarray, what: str) -> np.ndarray:
    """``labels`` with whole-number floats made int64; other floats refused.

    Labels are classes: a float label is accepted only when it is a whole number (a class
    index stored as a float, as ``1.0``), and any other (``0.37``, NaN, infinity) is an
    :class:`~synthaug.errors.InvalidDataError` that names the values and ``what`` (where they
    came from). Labels of other dtypes are returned unchanged.
    """
    if not np.issubdtype(labels.dtype, np.floating):
        return labels
    finite = np.isfinite(labels)
    if not finite.all():
        raise InvalidDataError(
            f"{what}: {int((~finite).sum())} label(s) are NaN or infinite; drop those samples "
            f"or give them a class"
        )
    fractional = np.unique(labels[labels != np.round(labels)])
    if fractional.size:
        shown = ", ".join(f"{v:g}" for v in fractional[:5])
        more = f" and {fractional.size - 5} more" if fractional.size > 5 else ""
        raise InvalidDataError(
            f"{what} must be classes, but {fractional.size} distinct value(s) are not whole "
            f"numbers: {shown}{more}; give class indices 0..K-1 or class names (a measurement "
            f"is not a class: bin it into classes first)"
        )
    largest = float(np.abs(labels.astype(np.float64)).max()) if labels.size else 0.0
    if largest >= 2**63:
        raise InvalidDataError(
            f"{what}: label {largest:g} is too large for a class index; give "
            f"class indices 0..K-1 or class names"
        )
    return labels.astype(np.int64)
