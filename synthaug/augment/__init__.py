"""PyTorch datasets, samplers and sample sources that mix real and synthetic data.

Sample sources (anything with ``fit(dataset)`` and ``sample(n, y=..., seed=...)``: every
generator, and the baselines registered in :data:`SOURCES`) feed :class:`AugmentedDataset`,
:class:`SyntheticDataset` and the imbalanced-learn sampler :class:`GenerativeOverSampler`.
"""

from synthaug.augment._augmented import AugmentedDataset
from synthaug.augment._lesions import (
    CopyPaste,
    LesionLocalizer,
    LesionTransplant,
    body_masks,
)
from synthaug.augment._oversampler import GenerativeOverSampler
from synthaug.augment._registry import SOURCES, register_source
from synthaug.augment._sources import (
    ClassicalAugmentation,
    MixedSource,
    RandomOverSampling,
    SMOTESource,
    default_classical_transform,
)
from synthaug.augment._synthetic import BlockBatchSampler, SyntheticDataset

__all__ = [
    "SOURCES",
    "AugmentedDataset",
    "BlockBatchSampler",
    "ClassicalAugmentation",
    "CopyPaste",
    "GenerativeOverSampler",
    "LesionLocalizer",
    "LesionTransplant",
    "MixedSource",
    "RandomOverSampling",
    "SMOTESource",
    "SyntheticDataset",
    "body_masks",
    "default_classical_transform",
    "register_source",
]
