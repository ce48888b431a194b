"""Non-generative sample sources: the baselines every generator is measured against.

They follow the generator contract (``fit(dataset)`` then ``sample(n, y=..., seed=...)``) so
:class:`~synthaug.augment.AugmentedDataset` and the benchmark harness treat a baseline and a
generator the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from synthaug._utils import check_seed
from synthaug.data import ImageDataset
from synthaug.errors import (
    EmptyDatasetError,
    InvalidParameterError,
    NotFittedError,
    UnknownClassError,
)


class _ResamplingSource:
    """Shared fit/sample plumbing: draw real samples of a class, then (optionally) transform them."""

    def fit(self, dataset: ImageDataset) -> _ResamplingSource:
        if len(dataset) == 0:
            raise EmptyDatasetError(f"cannot fit {type(self).__name__} on an empty dataset")
        self.dataset_ = dataset
        self.class_names_ = list(dataset.classes)
        self.sample_shape_ = dataset.sample_shape
        labels = dataset.labels.numpy()
        self.indices_ = {c: np.flatnonzero(labels == c) for c in range(dataset.n_classes)}
        return self

    def sample(
        self, n: int, y: int | str, seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` samples of class ``y`` (a label or a class name)."""
        if not hasattr(self, "dataset_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(dataset) first")
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise InvalidParameterError(f"n must be a positive integer, got {n!r}")
        label = self.class_names_.index(y) if isinstance(y, str) and y in self.class_names_ else y
        if not isinstance(label, int) or not len(self.indices_.get(label, ())):
            raise UnknownClassError(
                f"class {y!r} has no samples to draw from in {self.class_names_}"
            )
        rng = np.random.default_rng(check_seed(seed))
        picked = rng.choice(self.indices_[label], size=n, replace=True)
        images = self._transform(self.dataset_.images[torch.from_numpy(picked)], rng)
        return images, torch.full((n,), label, dtype=torch.int64)

    def _transform(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return images.clone()


class RandomOverSampling(_ResamplingSource):
    """Duplicate randomly chosen real samples of a class (imbalanced-learn's RandomOverSampler).

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> images, labels = RandomOverSampling().fit(load_digits()).sample(5, y=3, seed=0)
    >>> tuple(images.shape)
    (5, 1, 8, 8)
    """


def default_classical_transform(image_size: int = 8) -> Any:
    """Small affine jitter plus mild Gaussian noise: label-preserving for digits and slices."""
    import albumentations as A

    return A.Compose(
        [
            A.Affine(
                scale=(0.9, 1.1),
                translate_percent=(-0.1, 0.1),
                rotate=(-12, 12),
                shear=(-6, 6),
                border_mode=0,
                fill=0,
                p=1.0,
            ),
            A.GaussNoise(std_range=(0.01, 0.05), p=0.5),
        ]
    )


class ClassicalAugmentation(_ResamplingSource):
    """Real samples of a class passed through an albumentations pipeline.

    Parameters
    ----------
    transform : callable, optional
        An albumentations ``Compose`` (called as ``transform(image=HWC array)``). Defaults to
        :func:`default_classical_transform`: small affine jitter and mild noise.

    Notes
    -----
    albumentations works one image at a time; this is the library's own design and costs about
    0.1 ms per 8x8 image here, far below any generator's training time.
    """

    def __init__(self, *, transform: Callable | None = None) -> None:
        self.transform = transform

    def fit(self, dataset: ImageDataset) -> ClassicalAugmentation:
        if not dataset.is_image:
            raise InvalidParameterError(
                "classical augmentation needs images (N, C, H, W), not feature vectors"
            )
        super().fit(dataset)
        self.transform_ = self.transform or default_classical_transform(dataset.sample_shape[-1])
        return self

    def _transform(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if hasattr(self.transform_, "set_random_seed"):
            self.transform_.set_random_seed(int(rng.integers(0, 2**31 - 1)))
        hwc = images.permute(0, 2, 3, 1).numpy()
        out = np.stack([self.transform_(image=img)["image"] for img in hwc])
        if out.ndim == 3:  # albumentations drops a single channel for some transforms
            out = out[..., None]
        return (
            torch.from_numpy(np.clip(out, 0.0, 1.0).astype(np.float32))
            .permute(0, 3, 1, 2)
            .contiguous()
        )
