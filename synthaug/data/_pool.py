"""The development pool: a fixed part of every data set that no reported result touches.

Settings (epochs, steps, a detector's size) are tuned on the development pool only; every
reported split is drawn from the evaluation pool, the rest. The pool is a stratified share
carved once with a fixed seed, so it is the same on every machine and in every run.
"""

from __future__ import annotations

import torch

from synthaug.data._dataset import ImageDataset
from synthaug.errors import InvalidParameterError

POOLS = ("evaluation", "development", "all")
DEVELOPMENT_FRACTION = 0.15
DEVELOPMENT_SEED = 20261201


def split_pools(dataset: ImageDataset) -> tuple[ImageDataset, ImageDataset]:
    """``(evaluation, development)``: a stratified ``DEVELOPMENT_FRACTION`` carved out with
    ``DEVELOPMENT_SEED``.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> evaluation, development = split_pools(load_digits())
    >>> len(evaluation), len(development)
    (1527, 270)
    """
    return dataset.split(DEVELOPMENT_FRACTION, seed=DEVELOPMENT_SEED)


def select_pool(dataset: ImageDataset, pool: str) -> ImageDataset:
    """The ``pool`` of ``dataset``: ``"evaluation"`` (what reported results use),
    ``"development"`` (what tuning uses) or ``"all"`` (no pool carved; for a user's own data
    that has a separate tuning set)."""
    if pool not in POOLS:
        raise InvalidParameterError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if pool == "all":
        return dataset
    return dataset.subset(pool_indices(dataset, pool))


def pool_indices(dataset: ImageDataset, pool: str) -> torch.Tensor:
    """Indices into ``dataset`` of its ``pool``: what :func:`select_pool` keeps, for data that
    travel beside the images (such as true lesion masks)."""
    if pool not in POOLS:
        raise InvalidParameterError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if pool == "all":
        return torch.arange(len(dataset))
    evaluation, development = dataset.split_indices(DEVELOPMENT_FRACTION, seed=DEVELOPMENT_SEED)
    return torch.as_tensor(evaluation if pool == "evaluation" else development)
