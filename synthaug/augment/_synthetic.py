"""A PyTorch dataset made only of generated samples, held in memory or made on demand."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, default_collate

from synthaug._memory import check_fits_in_memory, item_bytes
from synthaug._utils import progress_bar
from synthaug.augment._transforms import apply_transform, check_transform
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError, NotFittedError, UnknownClassError

# Keys of items: class * _CLASS_STRIDE + index within the class, so a class's items do not move
# when another class's count changes, and no two items share a key.
_CLASS_STRIDE = 1 << 40


class SyntheticDataset(Dataset):
    """Samples of a fitted generator as a ``torch.utils.data.Dataset``.

    Items are laid out class by class (all of the smallest label first). Item ``k`` of class
    ``c`` depends only on ``(seed, c, k)``, so it is the same sample every time it is read, in
    any order, batch, process or ``DataLoader`` worker, whether the data set was pregenerated
    or not:

    - from a generator with keyed sampling (``keyed_sampling``: every synthaug generator), it
      is ``generator.sample(1, y=c, seed=seed, keys=[c * 2**40 + k])``. Reading any items is
      one ``sample`` call, one batched forward pass, so a plain
      ``DataLoader(dataset, batch_size=64, shuffle=True)`` over an on-demand data set makes
      each batch in one forward pass (``benchmarks/perf.py``: 1.9x the time of as many
      ``sample(64)`` calls with the 8x8 digits CVAE, whose forward pass is small beside the
      DataLoader's own cost). Reads in batches of different sizes agree up to float rounding
      (networks round differently for different batch sizes);
    - from any other sample source (the resampling baselines, the lesion sources), items are
      made in blocks of ``block_size`` samples of one class: block ``b`` of class ``c`` is
      ``generator.sample(size, y=c, seed=s)`` with
      ``s = numpy.random.SeedSequence([seed, c, b]).generate_state(1)[0]``. A shuffled
      ``DataLoader`` over such an on-demand data set should read it through
      :meth:`batch_sampler`, which shuffles whole blocks and the items within a few blocks at
      a time, so every block is generated once per epoch; plain ``shuffle=True`` generates a
      block for almost every item.

    Parameters
    ----------
    generator : fitted generator or sample source
        Anything with ``sample(n, y=label, seed=...)`` and ``class_names_`` (every synthaug
        generator, :class:`RandomOverSampling`, :class:`ClassicalAugmentation`).
    n_per_class : int, optional
        Samples for every class the generator was fitted on.
    counts : dict, optional
        ``{class: n}`` (label or class name) instead of ``n_per_class``.
    seed : int
        Seed of the whole data set.
    pregenerate : bool
        True generates everything now and keeps it in memory (fast reads). False generates
        items when they are read, so memory stays constant however large the data set is.
    block_size : int
        Samples generated together while pregenerating; for a source without keyed sampling,
        also the block items are made in on demand.
    cache_blocks : int
        Blocks kept when ``pregenerate=False`` (sources without keyed sampling only; keyed
        reads keep nothing).
    transform : callable, optional
        albumentations ``Compose`` or torchvision v2 transform applied to each item when read.
    verbose : bool
        Show a progress bar (on stderr) over the samples while everything is generated at
        once (``pregenerate=True`` or :meth:`to_dataset`).

    Attributes
    ----------
    classes : list of str
        Class names, indexed by label.
    counts : dict of int to int
        Samples per class label.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.generators import CVAE
    >>> from synthaug.augment import SyntheticDataset
    >>> model = CVAE(epochs=1, verbose=False).fit(load_digits())
    >>> lazy = SyntheticDataset(model, n_per_class=1000, pregenerate=False)
    >>> len(lazy), lazy.class_counts()[3]
    (10000, 1000)
    >>> image, label = lazy[3500]
    >>> tuple(image.shape), int(label), bool((lazy[3500][0] == image).all())
    ((1, 8, 8), 3, True)
    >>> from torch.utils.data import DataLoader
    >>> loader = DataLoader(lazy, batch_size=64, shuffle=True)  # one forward pass a batch
    >>> images, labels = next(iter(loader))
    >>> tuple(images.shape)
    (64, 1, 8, 8)
    """

    def __init__(
        self,
        generator: Any,
        n_per_class: int | None = None,
        *,
        counts: Mapping[int | str, int] | None = None,
        seed: int = 0,
        pregenerate: bool = True,
        block_size: int = 512,
        cache_blocks: int = 4,
        transform: Callable | None = None,
        verbose: bool = True,
    ) -> None:
        if not hasattr(generator, "sample"):
            raise InvalidParameterError(
                f"generator must have a sample() method, got {type(generator).__name__}"
            )
        names = getattr(generator, "class_names_", None)
        if names is None:
            raise NotFittedError(
                f"{type(generator).__name__} is not fitted; call fit(dataset) or synthaug.load first"
            )
        for name, value, low in (("block_size", block_size, 1), ("cache_blocks", cache_blocks, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidParameterError(f"{name} must be an integer >= {low}, got {value!r}")
        if (
            isinstance(seed, bool)
            or not isinstance(seed, (int, np.integer))
            or not 0 <= seed < 2**64
        ):
            # 2**64: the items are sampled with this seed, and sample() takes 64-bit seeds.
            raise InvalidParameterError(
                f"seed must be a non-negative integer below 2**64, got {seed!r}"
            )
        self.generator = generator
        self.classes = [str(c) for c in names]
        known = getattr(generator, "classes_", range(len(self.classes)))
        self.counts = _resolve_counts(self.classes, list(known), n_per_class, counts)
        self.seed = int(seed)
        self.block_size = block_size
        self.cache_blocks = cache_blocks
        self.transform = check_transform(transform)
        self.pregenerate = pregenerate
        self.verbose = verbose
        # A source says whether it samples by key (BaseGenerator.keyed_sampling); one that does
        # not say is read in blocks, which needs only sample(n, y=, seed=).
        self._keyed = bool(getattr(generator, "keyed_sampling", False))
        too_many = {self.classes[c]: n for c, n in self.counts.items() if n > _CLASS_STRIDE}
        if too_many:
            raise InvalidParameterError(
                f"at most 2**40 samples a class (the items' keys hold the index within the "
                f"class), got {too_many}"
            )
        present = [(c, n) for c, n in sorted(self.counts.items()) if n > 0]
        self._labels = np.array([c for c, _ in present], dtype=np.int64)
        self._ends = np.cumsum([n for _, n in present], dtype=np.int64)
        self._starts = self._ends - np.array([n for _, n in present], dtype=np.int64)
        self._cache: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()
        self.images: torch.Tensor | None = None
        if pregenerate:
            # Its blocks and their concatenation are held at once: refused before the first.
            check_fits_in_memory(
                2 * len(self) * item_bytes(self._sample_shape()),
                f"pregenerating {len(self):,} synthetic items",
                "pass pregenerate=False, which makes items as they are read",
            )
            self.images = self._generate_all()

    # -- the torch Dataset protocol ---------------------------------------------------------
    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.__getitems__([index])
        if isinstance(batch, ItemBatch):
            return batch.images[0], batch.labels[0]
        return batch[0]

    def __getitems__(self, indices: Sequence[int]) -> Sequence[tuple[torch.Tensor, torch.Tensor]]:
        """Read several items (``DataLoader`` calls this for a batch): one keyed ``sample`` call
        for all of them, or, from a source without keyed sampling, each block they need once.

        Returns a sequence of ``(image, label)`` pairs; without a transform it holds them as two
        stacked tensors (:class:`ItemBatch`), which :meth:`collate` passes on without copying.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"index out of range for {n} items")
        idx = idx % max(n, 1)
        pos = np.searchsorted(self._ends, idx, side="right")
        within = idx - self._starts[pos]
        if self.images is not None:
            images = self.images[torch.from_numpy(idx)]
        elif self._keyed:
            images = self._make_items(self._labels[pos], within)
        else:
            images = self._read_blocks(pos, within)
        labels = torch.from_numpy(self._labels[pos])
        if self.transform is None:
            return ItemBatch(images, labels)
        return [
            (apply_transform(self.transform, image), label)
            for image, label in zip(images, labels, strict=True)
        ]

    def _read_blocks(self, pos: np.ndarray, within: np.ndarray) -> torch.Tensor:
        """The items at ``within`` of the classes at ``pos``, from their (cached) blocks."""
        images = torch.empty((len(pos), *self._sample_shape()))
        blocks = within // self.block_size
        # Each block a read needs is made once, the cached ones read first, so that making
        # the others cannot evict a block this read still needs.
        needed: dict[tuple[int, int], np.ndarray] = {}
        for p, b in set(zip(pos.tolist(), blocks.tolist(), strict=True)):
            needed[(int(self._labels[p]), b)] = np.flatnonzero((pos == p) & (blocks == b))
        for label, b in sorted(needed, key=lambda k: (k not in self._cache, k)):
            rows = needed[(label, b)]
            block = self._block(label, b)
            images[torch.from_numpy(rows)] = block[
                torch.from_numpy(within[rows] - b * self.block_size)
            ]
        return images

    @staticmethod
    def collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
        """``DataLoader`` ``collate_fn`` that hands on a read's stacked tensors as they are.

        ``[images, labels]``, as the default collate gives, without splitting the batch into
        items and stacking them again; other batches go to the default collate.
        """
        if isinstance(batch, ItemBatch):
            return [batch.images, batch.labels]
        return default_collate(batch)

    def __repr__(self) -> str:
        mode = "in memory" if self.images is not None else "on demand"
        return f"SyntheticDataset(n={len(self)}, classes={self.classes}, {mode})"

    # -- facts ------------------------------------------------------------------------------
    def class_counts(self) -> dict[int, int]:
        """Number of samples per class label, every class included."""
        return {c: self.counts.get(c, 0) for c in range(len(self.classes))}

    @property
    def labels(self) -> torch.Tensor:
        """All ``(N,)`` labels (computed without generating anything)."""
        sizes = np.diff(np.concatenate([[0], self._ends]))
        return torch.from_numpy(np.repeat(self._labels, sizes))

    def to_dataset(self) -> ImageDataset:
        """Every sample as an in-memory :class:`~synthaug.data.ImageDataset` (no transform)."""
        images = self.images if self.images is not None else self._generate_all()
        return ImageDataset(images, self.labels, self.classes)

    def batch_sampler(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        window: int | None = None,
        drop_last: bool = False,
    ) -> BlockBatchSampler:
        """A ``DataLoader`` batch sampler that reads this data set block by block.

        It pays off for an on-demand data set of a source without keyed sampling; with a
        generator that samples by key, plain ``shuffle=True`` is as fast and mixes every
        class into every batch (the sampler still works, for code written for it). Each epoch it shuffles the blocks (interleaving the classes, so consecutive blocks are
        of different classes), takes them ``window`` at a time, shuffles the items of those
        blocks together and cuts them into batches: every block is generated once per epoch
        and a batch mixes up to ``window`` classes. Use it as
        ``DataLoader(dataset, batch_sampler=dataset.batch_sampler(64),
        collate_fn=SyntheticDataset.collate)`` (the collate saves re-stacking every batch). With
        ``num_workers > 0`` every worker keeps its own cache and the batches go to the workers
        in turn, so a block may be generated once per worker.

        Parameters
        ----------
        batch_size : int
        shuffle : bool
            False reads the items in order (blocks are then generated in order too).
        seed : int
            Seeds the order; epoch ``e`` (the ``e``-th iteration) uses ``(seed, e)``.
        window : int, optional
            Blocks shuffled together; default ``cache_blocks``, the most the cache holds.
        drop_last : bool
            Drop each epoch's last batch when it is smaller than ``batch_size``.

        Returns
        -------
        BlockBatchSampler
        """
        window = self.cache_blocks if window is None else window
        for name, value in (("batch_size", batch_size), ("window", window)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidParameterError(f"{name} must be an integer >= 1, got {value!r}")
        if window > self.cache_blocks and self.images is None and not self._keyed:
            raise InvalidParameterError(
                f"window={window} is more blocks than the cache holds (cache_blocks="
                f"{self.cache_blocks}); raise cache_blocks or lower window, else blocks are "
                f"generated again within one window"
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InvalidParameterError(f"seed must be a non-negative integer, got {seed!r}")
        return BlockBatchSampler(
            self._block_ranges(), batch_size, shuffle, int(seed), window, drop_last
        )

    def _block_ranges(self) -> list[tuple[int, int, int]]:
        """``(class position, first item, end)`` of every block, in item order."""
        ranges = []
        start = 0
        for p, end in enumerate(self._ends.tolist()):
            for first in range(start, end, self.block_size):
                ranges.append((p, first, min(first + self.block_size, end)))
            start = end
        return ranges

    # -- generation -------------------------------------------------------------------------
    def _make_items(self, labels: np.ndarray, within: np.ndarray) -> torch.Tensor:
        """Items ``within`` of classes ``labels`` in one keyed ``sample`` call."""
        if len(labels) == 0:
            return torch.empty((0, *self._sample_shape()))
        keys = torch.from_numpy(labels * _CLASS_STRIDE + within)
        images, _ = self.generator.sample(
            len(labels), y=torch.from_numpy(labels), seed=self.seed, keys=keys
        )
        return images

    def _block_seed(self, label: int, block: int) -> int:
        return int(np.random.SeedSequence([self.seed, label, block]).generate_state(1)[0])

    def _make_block(self, label: int, block: int) -> torch.Tensor:
        first = block * self.block_size
        size = min(self.block_size, self.counts[label] - first)
        if self._keyed:
            return self._make_items(np.full(size, label), np.arange(first, first + size))
        images, _ = self.generator.sample(size, y=label, seed=self._block_seed(label, block))
        return images

    def _block(self, label: int, block: int) -> torch.Tensor:
        key = (label, block)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        images = self._make_block(label, block)
        self._cache[key] = images
        while len(self._cache) > self.cache_blocks:
            self._cache.popitem(last=False)
        return images

    def _generate_all(self) -> torch.Tensor:
        parts = []
        with progress_bar(
            show=self.verbose,
            total=len(self),
            desc="SyntheticDataset",
            unit="sample",
            unit_scale=True,
            leave=False,
        ) as bar:
            for label in self._labels.tolist():
                n_blocks = -(-self.counts[label] // self.block_size)
                for b in range(n_blocks):
                    parts.append(self._make_block(label, b))
                    bar.update(len(parts[-1]))
        if not parts:
            return torch.empty((0, *self._sample_shape()))
        return torch.cat(parts)

    def _sample_shape(self) -> tuple[int, ...]:
        shape = getattr(self.generator, "sample_shape_", None)
        if shape is None:
            shape = tuple(self._block(int(self._labels[0]), 0).shape[1:])
        return tuple(shape)


class ItemBatch(list):
    """Items read together: the list of ``(image, label)`` pairs that ``DataLoader``'s default
    collate stacks (each label a Python int, which it turns into an int64 tensor), also
    holding them already stacked as ``images`` ``(n, ...)`` and ``labels`` ``(n,)``, which
    :meth:`SyntheticDataset.collate` hands on without copying."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        # A real list of image views (unbind is one call) and ints, so the default collate
        # walks it at C speed instead of asking for each item through Python.
        super().__init__(zip(images.unbind(0), labels.tolist(), strict=True))
        self.images = images
        self.labels = labels


class BlockBatchSampler(Sampler[list[int]]):
    """Batches of item indices that read a :class:`SyntheticDataset` a few blocks at a time.

    Made by :meth:`SyntheticDataset.batch_sampler`, which documents the order. Iterating again
    starts the next epoch, with a new order.
    """

    def __init__(
        self,
        blocks: list[tuple[int, int, int]],
        batch_size: int,
        shuffle: bool,
        seed: int,
        window: int,
        drop_last: bool,
    ) -> None:
        self.blocks = blocks
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.window = window
        self.drop_last = drop_last
        self.epoch = 0
        self._n = blocks[-1][2] if blocks else 0

    def __len__(self) -> int:
        if self.drop_last:
            return self._n // self.batch_size
        return -(-self._n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        pending = np.empty(0, dtype=np.int64)
        for items in self._windows(epoch):  # one window's items at a time: no epoch-long array
            pending = np.concatenate([pending, items])
            while len(pending) >= self.batch_size:
                yield pending[: self.batch_size].tolist()
                pending = pending[self.batch_size :]
        if len(pending) and not self.drop_last:
            yield pending.tolist()

    def _windows(self, epoch: int) -> Iterator[np.ndarray]:
        """Every item index once, window by window: blocks interleaved by class, items
        shuffled within each window."""
        if not self.shuffle:
            yield np.arange(self._n)
            return
        rng = np.random.default_rng([self.seed, epoch])
        pos = np.array([p for p, _, _ in self.blocks])
        # Shuffle the blocks, then interleave the classes: sort by (rank within its class,
        # random class order), so consecutive blocks come from different classes.
        perm = rng.permutation(len(self.blocks))
        rank = np.empty(len(perm), dtype=np.int64)
        for p in np.unique(pos):
            mine = perm[pos[perm] == p]
            rank[mine] = np.arange(len(mine))
        class_key = rng.permutation(int(pos.max()) + 1)[pos]
        blocks = np.lexsort((class_key, rank))
        for w in range(0, len(blocks), self.window):
            chosen = blocks[w : w + self.window]
            yield rng.permutation(np.concatenate([np.arange(*self.blocks[b][1:]) for b in chosen]))


def _resolve_counts(
    classes: list[str],
    known: list[int],
    n_per_class: int | None,
    counts: Mapping[int | str, int] | None,
) -> dict[int, int]:
    if (n_per_class is None) == (counts is None):
        raise InvalidParameterError("give exactly one of n_per_class= or counts=")
    if n_per_class is not None:
        if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)):
            raise InvalidParameterError(f"n_per_class must be an integer, got {n_per_class!r}")
        if n_per_class < 1:
            raise InvalidParameterError(f"n_per_class must be >= 1, got {n_per_class}")
        return {int(c): int(n_per_class) for c in known}
    if not isinstance(counts, Mapping):
        raise InvalidParameterError(f"counts must be a {{class: n}} dict, got {counts!r}")
    resolved = {}
    for key, n in counts.items():
        if isinstance(key, str) and key in classes:
            label = classes.index(key)
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            label = int(key)
        else:
            label = -1
        if label not in known:
            raise UnknownClassError(
                f"class {key!r} is not one the generator can sample; it knows "
                f"{[classes[c] for c in known]}"
            )
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise InvalidParameterError(
                f"count for class {key!r} must be a non-negative integer, got {n!r}"
            )
        resolved[label] = int(n)
    return resolved
