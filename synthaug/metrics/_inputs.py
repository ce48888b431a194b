"""Turning what users pass to the metrics (datasets or arrays) into checked ImageDatasets."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from synthaug.data import ImageDataset, from_arrays
from synthaug.errors import EmptyDatasetError, InvalidDataError, ShapeMismatchError

# What the metric functions accept for one set of samples.
DataLike = Any  # ImageDataset | tuple[array, array] | array (unlabelled, privacy only)


def _labels_array(y: Any) -> np.ndarray:
    return y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)


def as_datasets(sets: dict[str, DataLike], *, need_labels: bool = True) -> dict[str, ImageDataset]:
    """Convert and cross-check the named sets of one metric call.

    Each set is an :class:`ImageDataset`, an ``(images, labels)`` pair of arrays, or (when
    ``need_labels`` is False) a bare image array. Integer labels of array pairs are used as they
    are, so ``0`` means the same class in every set. Raises a synthaug error naming the set when
    one is empty, holds NaNs, or disagrees with the others in sample shape or classes.
    """
    n_classes = 0
    for value in sets.values():
        if isinstance(value, (tuple, list)) and len(value) == 2:
            y = _labels_array(value[1])
            if y.size and np.issubdtype(y.dtype, np.integer):
                n_classes = max(n_classes, int(y.max()) + 1)
    out: dict[str, ImageDataset] = {}
    for name, value in sets.items():
        try:
            out[name] = _one(value, name, need_labels, n_classes)
        except InvalidDataError as exc:
            if isinstance(value, ImageDataset):
                raise
            raise type(exc)(f"{name}: {exc}") from exc
    first_name, first = next(iter(out.items()))
    for name, ds in out.items():
        if len(ds) == 0:
            raise EmptyDatasetError(f"{name} is empty; every set needs samples")
        if ds.sample_shape != first.sample_shape:
            raise ShapeMismatchError(
                f"{name} has samples of shape {ds.sample_shape} but {first_name} has "
                f"{first.sample_shape}; compare data of one shape"
            )
        if need_labels and ds.classes != first.classes:
            raise InvalidDataError(
                f"{name} has classes {ds.classes} but {first_name} has {first.classes}; "
                f"the sets must share one class list"
            )
    return out


def _one(value: DataLike, name: str, need_labels: bool, n_classes: int) -> ImageDataset:
    if isinstance(value, ImageDataset):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        images, labels = value
        y = _labels_array(labels)
        classes = [str(i) for i in range(n_classes)] if n_classes else None
        return from_arrays(images, y, classes)
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if need_labels:
            raise InvalidDataError(
                f"{name} needs labels: pass an ImageDataset or an (images, labels) pair"
            )
        n = len(value)
        return from_arrays(value, np.zeros(n, dtype=np.int64), ["0"])
    raise InvalidDataError(
        f"{name} must be an ImageDataset or an (images, labels) pair of arrays, got "
        f"{type(value).__name__}"
    )


def subsample(ds: ImageDataset, max_samples: int | None, rng: np.random.Generator) -> ImageDataset:
    """At most ``max_samples`` samples of ``ds``, drawn without replacement by ``rng``."""
    if max_samples is None or len(ds) <= max_samples:
        return ds
    return ds.subset(np.sort(rng.choice(len(ds), max_samples, replace=False)))
