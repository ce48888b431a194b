"""PyTorch datasets and sample sources that mix real and synthetic data."""

from synthaug.augment._augmented import AugmentedDataset
from synthaug.augment._sources import (
    ClassicalAugmentation,
    RandomOverSampling,
    default_classical_transform,
)
from synthaug.augment._synthetic import SyntheticDataset

__all__ = [
    "AugmentedDataset",
    "ClassicalAugmentation",
    "RandomOverSampling",
    "default_classical_transform",
]
__all__ += ["GenerativeOverSampler", "SyntheticDataset"]


def __getattr__(name: str):
    # imbalanced-learn takes seconds to import: load the sampler only when it is asked for.
    if name == "GenerativeOverSampler":
        from synthaug.augment._oversampler import GenerativeOverSampler

        return GenerativeOverSampler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
