"""PyTorch datasets and sample sources that mix real and synthetic data."""

from synthaug.augment._augmented import AugmentedDataset
from synthaug.augment._sources import (
    ClassicalAugmentation,
    RandomOverSampling,
    default_classical_transform,
)

__all__ = [
    "AugmentedDataset",
    "ClassicalAugmentation",
    "RandomOverSampling",
    "default_classical_transform",
]
