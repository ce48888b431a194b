"""Make a balanced dataset imbalanced, reproducibly, for experiments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from synthaug.data._dataset import ImageDataset
from synthaug.errors import InvalidParameterError, UnknownClassError


def make_imbalanced(
    dataset: ImageDataset,
    ratio: float | None = None,
    minority_classes: Sequence[int | str] | None = None,
    *,
    counts: Mapping[int | str, int] | Sequence[int] | None = None,
    seed: int = 0,
    min_per_class: int = 2,
) -> ImageDataset:
    """Subsample classes to create a controlled imbalance.

    Either keep a fraction ``ratio`` of each class in ``minority_classes`` (the other classes
    keep everything), or give explicit per-class ``counts`` (a list indexed by label, as in
    DeepSMOTE's ``[4000, 2000, ..., 40]``, or a ``{class: count}`` mapping).

    Parameters
    ----------
    dataset : ImageDataset
    ratio : float, optional
        Fraction in (0, 1] of each minority class to keep.
    minority_classes : sequence of int or str, optional
        Labels or class names to cut. Defaults to the upper half of the labels.
    counts : list or mapping, optional
        Target count per class, integers (a float such as ``10.0`` is refused rather than
        truncated, as every count in synthaug); a class asked for more than it has keeps all
        of it.
    seed : int
        Which samples are kept.
    min_per_class : int
        No class is cut below this many samples (2 keeps every class splittable).

    Returns
    -------
    ImageDataset
        The kept samples, in their original order.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> small = make_imbalanced(load_digits(), ratio=0.05, minority_classes=[5, 6, 7, 8, 9])
    >>> small.class_counts()[9] < small.class_counts()[0]
    True
    """
    if not isinstance(dataset, ImageDataset):
        raise InvalidParameterError(
            f"dataset must be an ImageDataset, got {type(dataset).__name__}; build one with "
            f"synthaug.data.from_arrays(X, y)"
        )
    if (ratio is None) == (counts is None):
        raise InvalidParameterError("give exactly one of ratio= or counts=")
    if not _is_count(min_per_class) or min_per_class < 0:
        raise InvalidParameterError(f"min_per_class must be an integer >= 0, got {min_per_class!r}")
    if not _is_count(seed) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer, got {seed!r}")
    have = dataset.class_counts()
    target = dict(have)
    if ratio is not None:
        if (
            isinstance(ratio, (bool, np.bool_))
            or not isinstance(ratio, (int, float, np.integer, np.floating))
            or not 0 < ratio <= 1
        ):
            raise InvalidParameterError(f"ratio must be a number in (0, 1], got {ratio!r}")
        if minority_classes is None:
            minority_classes = list(range(dataset.n_classes // 2, dataset.n_classes))
        for c in minority_classes:
            label = _label_of(dataset, c)
            target[label] = max(int(round(have[label] * ratio)), min(min_per_class, have[label]))
    else:
        if isinstance(counts, (str, bytes)) or not isinstance(
            counts, (Mapping, Sequence, np.ndarray)
        ):
            raise InvalidParameterError(
                f"counts must be a list of per-class counts or a {{class: count}} mapping, got "
                f"{counts!r}"
            )
        items = counts.items() if isinstance(counts, Mapping) else enumerate(counts)
        if not isinstance(counts, Mapping) and len(counts) != dataset.n_classes:
            raise InvalidParameterError(
                f"counts has {len(counts)} entries for {dataset.n_classes} classes"
            )
        for c, n in items:
            label = _label_of(dataset, c)
            # Counts are integers, as every count of synthaug's (sample's n, a benchmark's
            # counts): a float is refused, not truncated (10.7 would silently keep 10).
            if not _is_count(n) or n < 0:
                raise InvalidParameterError(
                    f"counts must be integers >= 0, got {n!r} for class {c!r}"
                )
            target[label] = min(max(int(n), min(min_per_class, have[label])), have[label])
    rng = np.random.default_rng(seed)
    labels = dataset.labels.numpy()
    keep = []
    for label, n in target.items():
        idx = np.flatnonzero(labels == label)
        keep.append(rng.choice(idx, size=n, replace=False) if n < len(idx) else idx)
    return dataset.subset(np.sort(np.concatenate(keep)) if keep else np.array([], dtype=np.int64))


def _is_count(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _label_of(dataset: ImageDataset, c: int | str) -> int:
    if isinstance(c, str) and c in dataset.classes:
        return dataset.classes.index(c)
    if _is_count(c) and 0 <= int(c) < dataset.n_classes:
        return int(c)
    raise UnknownClassError(f"class {c!r} is not one of {dataset.classes}")
