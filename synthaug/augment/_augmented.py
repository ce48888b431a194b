"""A PyTorch dataset of real samples topped up with synthetic ones."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from synthaug._memory import check_fits_in_memory, item_bytes
from synthaug.augment._provenance import sample_with_provenance
from synthaug.augment._transforms import apply_transform, check_apply_to, check_transform
from synthaug.data import ImageDataset, Provenance, real_provenance
from synthaug.errors import InvalidDataError, InvalidParameterError, UnknownClassError

_STRATEGIES = ("balance", "ratio")


class AugmentedDataset(ImageDataset):
    """Real samples plus synthetic samples from a fitted generator.

    It is an :class:`~synthaug.data.ImageDataset` (real samples first, then synthetic ones, class
    by class), so it goes wherever a dataset goes, including a ``DataLoader`` with worker
    processes; it also remembers which items are synthetic.

    Parameters
    ----------
    real : ImageDataset
        The real training samples.
    generator : fitted generator or sample source
        Anything with ``sample(n, y=label, seed=...) -> (images, labels)``: a synthaug
        generator, :class:`RandomOverSampling` or :class:`ClassicalAugmentation`.
    strategy : "balance", "ratio" or dict
        How many synthetic samples each class gets:

        - ``"balance"``: every class with samples is topped up to the majority class's count;
        - ``"ratio"``: ``round(ratio * n_c)`` synthetic samples for a class with ``n_c`` real
          ones (``ratio=1`` doubles every class);
        - ``{class: count}``: exactly ``count`` synthetic samples for each listed class (label or
          class name); classes not listed get none.
    seed : int
        Seeds the synthetic draws (class ``c`` uses ``seed + c``), so the result is reproducible.
    ratio : float, optional
        Synthetic samples per real sample, for ``strategy="ratio"`` only.
    transform : callable, optional
        Applied to each item when it is read (``dataset[i]``), not to the stored ``images``: an
        albumentations ``Compose`` (it sees ``(H, W, C)`` arrays) or a torchvision v2 transform
        (it sees ``(C, H, W)`` tensors). Each DataLoader worker gets its own random stream.
    apply_to : "all", "real" or "synthetic"
        Which items the transform is applied to.

    Attributes
    ----------
    synthetic_counts : dict of int to int
        Synthetic samples added per class label.
    n_real : int
        Number of real items (they come first).
    masks : torch.Tensor or None
        ``(N, 1, H, W)`` bool lesion masks of every item, when the source makes masks (the
        lesion sources :class:`CopyPaste` and :class:`LesionTransplant`) and was fitted on
        ``real`` itself (its masks of the real items are then known: localised, or given to
        its ``fit``); otherwise ``None``. Train a segmentation model on ``(images, masks)``.
    synthetic_masks : torch.Tensor or None
        The synthetic items' masks alone, whenever the source makes masks.
    provenance : list of Provenance
        Where each item came from (:class:`~synthaug.data.Provenance`): ``"real"`` for the
        real items, then ``added_provenance``.
    added_provenance : list of Provenance
        What the source reports of each added item: ``"synthetic"`` (generated) or
        ``"derived"`` (made from real training items: copies, pasted lesions, a model's
        variants of stored images), with the training items used where the source knows them
        (rows of the data it was fitted on). "Synthetic" in ``synthetic_mask``,
        ``is_synthetic`` and ``synthetic_counts`` means added by the source, whatever its
        origin.

    Examples
    --------
    >>> from synthaug.data import load_digits, make_imbalanced
    >>> from synthaug.augment import AugmentedDataset, RandomOverSampling
    >>> real = make_imbalanced(load_digits(), ratio=0.1, minority_classes=[9])
    >>> aug = AugmentedDataset(real, RandomOverSampling().fit(real))
    >>> aug.class_counts()[9] == aug.class_counts()[0], aug.is_synthetic(len(aug) - 1)
    (True, True)
    >>> doubled = AugmentedDataset(real, RandomOverSampling().fit(real), "ratio", ratio=1.0)
    >>> doubled.class_counts()[9] == 2 * real.class_counts()[9]
    True
    """

    def __init__(
        self,
        real: ImageDataset,
        generator: Any,
        strategy: str | Mapping[int | str, int] = "balance",
        seed: int = 0,
        *,
        ratio: float | None = None,
        transform: Callable | None = None,
        apply_to: str = "all",
    ) -> None:
        if not isinstance(real, ImageDataset):
            raise InvalidDataError(f"real must be an ImageDataset, got {type(real).__name__}")
        if not hasattr(generator, "sample"):
            raise InvalidParameterError(
                f"generator must be a fitted generator or sample source with a sample() method, "
                f"got {type(generator).__name__}"
            )
        names = getattr(generator, "class_names_", None)
        if names is not None and list(names) != list(real.classes):
            raise InvalidDataError(
                f"the generator was fitted on classes {list(names)} but the real data has "
                f"{real.classes}; fit it on data with the same classes"
            )
        wanted = _synthetic_counts(real, strategy, ratio)
        n_synthetic = sum(wanted.values())
        # The synthetic parts and their concatenation with the real items are held at once.
        check_fits_in_memory(
            (2 * n_synthetic + len(real)) * item_bytes(real.sample_shape),
            f"adding {n_synthetic:,} synthetic items to {len(real):,} real ones",
            "ask for fewer (a lower ratio or smaller counts), or pair the real data with a "
            "SyntheticDataset(..., pregenerate=False), which makes items as they are read",
        )
        self.transform = check_transform(transform)
        self.apply_to = check_apply_to(apply_to)
        images, labels, masks = [real.images], [real.labels], []
        added: list[Provenance] = []
        makes_masks = bool(getattr(generator, "makes_masks", False))
        for c, n in sorted(wanted.items()):
            if n == 0:
                continue
            drawn = sample_with_provenance(
                generator, n, y=c, seed=seed + c, return_masks=makes_masks
            )
            synth, synth_labels, *mask, made = drawn
            masks += mask
            added += made
            if tuple(synth.shape[1:]) != real.sample_shape:
                raise InvalidDataError(
                    f"the generator made samples of shape {tuple(synth.shape[1:])} but the real data "
                    f"has {real.sample_shape}; fit the generator on data of the same shape"
                )
            images.append(synth.to(real.images.dtype))
            labels.append(synth_labels.to(torch.int64))
        # Real items keep their metadata (their source files); synthetic ones have none.
        meta = None if real.metadata is None else [*real.metadata, *([{}] * n_synthetic)]
        super().__init__(torch.cat(images), torch.cat(labels), real.classes, metadata=meta)
        self.n_real = len(real)
        self.synthetic_counts = {c: wanted.get(c, 0) for c in range(real.n_classes)}
        self.synthetic_masks = None
        self.masks = None
        if makes_masks:
            empty = torch.zeros(0, 1, *real.sample_shape[-2:], dtype=torch.bool)
            self.synthetic_masks = torch.cat(masks) if masks else empty
            known = getattr(generator, "training_masks_", None)
            if known is not None and getattr(generator, "dataset_", None) is real:
                self.masks = torch.cat([known, self.synthetic_masks])
        self.added_provenance = added
        self.strategy = strategy
        self.ratio = ratio

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.images[index], self.labels[index]
        if self.transform is not None and self.apply_to != "all":
            if self.is_synthetic(int(index)) != (self.apply_to == "synthetic"):
                return image, label
        if self.transform is not None:
            image = apply_transform(self.transform, image)
        return image, label

    @property
    def provenance(self) -> list[Provenance]:
        """Every item's :class:`~synthaug.data.Provenance`: the real items' (built when asked
        for, so a large real set costs nothing until then), then :attr:`added_provenance`."""
        return [*(real_provenance(i) for i in range(self.n_real)), *self.added_provenance]

    def is_synthetic(self, index: int) -> bool:
        """Whether item ``index`` is a synthetic sample."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return (index % len(self)) >= self.n_real

    @property
    def synthetic_mask(self) -> torch.Tensor:
        """Boolean ``(N,)`` tensor, True for synthetic items."""
        return torch.arange(len(self)) >= self.n_real


def _synthetic_counts(
    real: ImageDataset, strategy: str | Mapping[int | str, int], ratio: float | None
) -> dict[int, int]:
    """Synthetic samples to add per class label, from a strategy."""
    counts = real.class_counts()
    if ratio is not None and strategy != "ratio":
        raise InvalidParameterError(
            f"ratio= is only used with strategy='ratio', got strategy={strategy!r}"
        )
    if isinstance(strategy, Mapping):
        wanted = {}
        for key, n in strategy.items():
            if isinstance(key, str) and key in real.classes:
                label = real.classes.index(key)
            elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
                label = int(key)
            else:
                label = -1
            if not 0 <= label < real.n_classes:
                raise UnknownClassError(f"class {key!r} is not one of {real.classes}")
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                raise InvalidParameterError(
                    f"synthetic count for class {key!r} must be a non-negative integer, got {n!r}"
                )
            wanted[label] = int(n)
        return wanted
    if strategy == "balance":
        target = max(counts.values(), default=0)
        return {c: target - n for c, n in counts.items() if n > 0}
    if strategy == "ratio":
        if ratio is None:
            raise InvalidParameterError(
                "strategy='ratio' needs ratio=r (synthetic per real sample)"
            )
        if (
            isinstance(ratio, bool)
            or not isinstance(ratio, (int, float))
            or not 0 < ratio < math.inf
        ):
            raise InvalidParameterError(f"ratio must be a finite number > 0, got {ratio!r}")
        return {c: int(round(ratio * n)) for c, n in counts.items() if n > 0}
    raise InvalidParameterError(
        f"strategy must be one of {list(_STRATEGIES)} or a {{class: count}} dict, got {strategy!r}"
    )
