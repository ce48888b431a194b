"""Resampling protocols: how the seeds of a grid divide one data set into training and test
parts, and which test the report must then use.

A grid compares methods over seeds; what a seed means decides how dependent the seeds'
results are, so the protocol and the test are chosen together:

``random-splits``
    Every seed draws a new stratified split (``test_size`` held out). The training sets of
    different seeds overlap, so their results are correlated: the report uses the corrected
    resampled t of Nadeau & Bengio (2003, Machine Learning 52), variance x (1/n +
    n_test/n_train).
``repeated-kfold``
    ``repeats`` stratified ``folds``-fold partitions, each seeded by its repeat; every item is
    tested once per repeat. Seed ``s`` is fold ``s % folds`` of repeat ``s // folds``. The
    report uses the corrected repeated k-fold t of Bouckaert & Frank (2004, PAKDD, "Evaluating
    the replicability of significance tests for comparing learning algorithms"): the same
    correction with n = repeats x folds and n_test/n_train = 1/(folds - 1).
``fresh-draws``
    Every seed draws its own data (generated phantoms): the seeds are independent and the
    report uses the plain paired t.

``benchmarks/yardstick_calibration.py`` measures the false-positive rate and the power of
each on digits; ``docs/benchmarks.md`` shows the table behind the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from synthaug.data import ImageDataset
from synthaug.registry import Registry

RESAMPLING: Registry = Registry("resampling protocol")
"""Resampling protocols by name (the ``[split] protocol`` of a config)."""

RANDOM_SPLITS = "random-splits"
REPEATED_KFOLD = "repeated-kfold"
FRESH_DRAWS = "fresh-draws"


@RESAMPLING.register(RANDOM_SPLITS)
@dataclass(frozen=True)
class RandomSplits:
    """A new stratified split of the data set per seed, ``test_size`` of it held out.

    Parameters
    ----------
    test_size : float in (0, 1), default 0.4
        The share of the data each seed holds out for testing.
    """

    test_size: float = 0.4

    name: ClassVar[str] = RANDOM_SPLITS
    test: ClassVar[str] = "corrected resampled t (Nadeau & Bengio, 2003)"

    def indices(self, data: ImageDataset, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The sorted ``(train, test)`` indices of seed ``seed``."""
        return data.split_indices(self.test_size, seed=seed)

    @property
    def test_fraction(self) -> float | None:
        """n_test / (n_train + n_test) of one seed, for the corrected t."""
        return self.test_size

    def to_dict(self) -> dict[str, Any]:
        # The harness's original protocol is recorded as it always was, without its name (a
        # record without one ran it), so the cells of grids run before protocols were named
        # keep their ids and a grown grid reruns only what is new.
        return {"test_size": self.test_size}

    def describe(self, n_seeds: int) -> str:
        train = round(100 * (1 - self.test_size))
        return f"{n_seeds} random {train}/{100 - train} splits"


@RESAMPLING.register(REPEATED_KFOLD)
@dataclass(frozen=True)
class RepeatedKFold:
    """Repeated stratified k-fold: seed ``s`` is fold ``s % folds`` of repeat ``s // folds``,
    every repeat a partition of its own (seeded by the repeat).

    Parameters
    ----------
    folds : int >= 2, default 5
        Folds per repeat; each seed tests on one of them and trains on the rest. The number
        of repeats is the config's ``split.repeats`` (it decides which seeds exist).
    """

    folds: int = 5

    name: ClassVar[str] = REPEATED_KFOLD
    test: ClassVar[str] = "corrected repeated k-fold t (Bouckaert & Frank, 2004)"

    def indices(self, data: ImageDataset, seed: int) -> tuple[np.ndarray, np.ndarray]:
        repeat, fold = divmod(seed, self.folds)
        return data.kfold_indices(self.folds, fold, seed=repeat)

    @property
    def test_fraction(self) -> float | None:
        return 1 / self.folds

    def to_dict(self) -> dict[str, Any]:
        # The repeats are not part of a cell: they decide which seeds exist, as ``seeds`` does,
        # so that a grid can grow from 5 repeats to 10 and keep the cells it ran.
        return {"protocol": self.name, "folds": self.folds}

    def describe(self, n_seeds: int) -> str:
        repeats, rest = divmod(n_seeds, self.folds)
        whole = f"{repeats} x {self.folds}-fold"
        return whole if not rest else f"{whole} and {rest} fold{'s' * (rest != 1)}"


@RESAMPLING.register(FRESH_DRAWS)
@dataclass(frozen=True)
class FreshDraws:
    """Every seed draws fresh data (the task generates it); nothing is re-split."""

    name: ClassVar[str] = FRESH_DRAWS
    test: ClassVar[str] = "paired t (every seed draws fresh data)"

    def indices(self, data: ImageDataset, seed: int) -> tuple[np.ndarray, np.ndarray]:
        raise TypeError("fresh-draws tasks draw their own data; they split nothing")

    @property
    def test_fraction(self) -> float | None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.name}

    def describe(self, n_seeds: int) -> str:
        return f"{n_seeds} independent draws"


Resampling = RandomSplits | RepeatedKFold | FreshDraws


def resampling_of(
    split: dict[str, Any], protocols: tuple[str, ...] = (RANDOM_SPLITS,)
) -> Resampling:
    """The protocol of a cell's recorded ``split``, for a task that runs ``protocols``.

    A record without a ``protocol`` ran random splits (the harness's original protocol,
    recorded as ``{"test_size": ...}``), or, for a task that cannot split (the lesion task's
    fresh phantoms), that task's own protocol: its old records hold an unused test size.
    """
    name = split.get("protocol")
    if name is None:
        name = RANDOM_SPLITS if RANDOM_SPLITS in protocols else protocols[0]
    params = {k: v for k, v in split.items() if k not in ("protocol", "data_seed")}
    if name == FRESH_DRAWS:
        params = {}
    return RESAMPLING.create(name, **params)


def data_seed(split: dict[str, Any], seed: int) -> int:
    """The seed that decides a cell's data (its split, its imbalance): the cell's seed,
    unless a calibration study holds the data fixed while the training seed varies
    (``split["data_seed"]``, never written by a config)."""
    return int(split.get("data_seed", seed))
