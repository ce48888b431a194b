"""A PyTorch dataset of real samples topped up with synthetic ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from synthaug.data import ImageDataset
from synthaug.errors import InvalidDataError, InvalidParameterError


class AugmentedDataset(ImageDataset):
    """Real samples plus synthetic samples from a fitted generator.

    It is an :class:`~synthaug.data.ImageDataset` (real samples first, then synthetic ones), so
    it goes wherever a dataset goes; it also remembers which items are synthetic.

    Parameters
    ----------
    real : ImageDataset
        The real training samples.
    generator : fitted generator or sample source
        Anything with ``sample(n, y=label, seed=...) -> (images, labels)``: a synthaug
        generator, :class:`RandomOverSampling` or :class:`ClassicalAugmentation`.
    strategy : "balance"
        ``"balance"`` tops every class up to the majority class's count.
    seed : int
        Seeds the synthetic draws (class ``c`` uses ``seed + c``), so the result is reproducible.

    Attributes
    ----------
    synthetic_counts : dict of int to int
        Synthetic samples added per class label.

    Examples
    --------
    >>> from synthaug.data import load_digits, make_imbalanced
    >>> from synthaug.augment import AugmentedDataset, RandomOverSampling
    >>> real = make_imbalanced(load_digits(), ratio=0.1, minority_classes=[9])
    >>> aug = AugmentedDataset(real, RandomOverSampling().fit(real))
    >>> aug.class_counts()[9] == aug.class_counts()[0], aug.is_synthetic(len(aug) - 1)
    (True, True)
    """

    def __init__(
        self, real: ImageDataset, generator: Any, strategy: str = "balance", seed: int = 0
    ) -> None:
        if not isinstance(real, ImageDataset):
            raise InvalidDataError(f"real must be an ImageDataset, got {type(real).__name__}")
        if strategy != "balance":
            raise InvalidParameterError(f"strategy must be 'balance', got {strategy!r}")
        counts = real.class_counts()
        target = max(counts.values(), default=0)
        wanted = {c: target - n for c, n in counts.items() if n > 0 and target - n > 0}
        images, labels = [real.images], [real.labels]
        for c, n in wanted.items():
            synth, synth_labels = generator.sample(n, y=c, seed=seed + c)
            if tuple(synth.shape[1:]) != real.sample_shape:
                raise InvalidDataError(
                    f"the generator made samples of shape {tuple(synth.shape[1:])} but the real data "
                    f"has {real.sample_shape}; fit the generator on data of the same shape"
                )
            images.append(synth.to(real.images.dtype))
            labels.append(synth_labels.to(torch.int64))
        super().__init__(torch.cat(images), torch.cat(labels), real.classes)
        self.n_real = len(real)
        self.synthetic_counts = {c: wanted.get(c, 0) for c in counts}
        self.strategy = strategy

    def is_synthetic(self, index: int) -> bool:
        """Whether item ``index`` is a synthetic sample."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return (index % len(self)) >= self.n_real

    @property
    def synthetic_mask(self) -> torch.Tensor:
        """Boolean ``(N,)`` tensor, True for synthetic items."""
        return torch.arange(len(self)) >= self.n_real

    def real_part(self) -> ImageDataset:
        return self.subset(np.arange(self.n_real))
