"""PyTorch datasets, samplers and sample sources that mix real and synthetic data.

Sample sources (anything with ``fit(dataset)`` and ``sample(n, y=..., seed=...)``: every
generator, and the baselines registered in :data:`SOURCES`) feed :class:`AugmentedDataset`,
:class:`SyntheticDataset` and the imbalanced-learn sampler :class:`GenerativeOverSampler`.

Fitted lesion sources (:class:`CopyPaste`, :class:`LesionTransplant`) ``save(path)`` like
generators; :func:`load` here is :func:`synthaug.load`, which reads both (importing this
package registers the sources' loader with the generators').
"""

from synthaug.augment._augmented import AugmentedDataset
from synthaug.augment._lesions import (
    CLEANED_LOCALIZER,
    LEGACY_LOCALIZER,
    CopyPaste,
    LesionLocalizer,
    LesionTransplant,
    body_masks,
)
from synthaug.augment._oversampler import GenerativeOverSampler
from synthaug.augment._provenance import sample_with_provenance
from synthaug.augment._registry import SOURCES, register_source
from synthaug.augment._source_files import FILE_TYPES
from synthaug.augment._sources import (
    ClassicalAugmentation,
    MixedSource,
    RandomOverSampling,
    SMOTESource,
    default_classical_transform,
)
from synthaug.augment._synthetic import BlockBatchSampler, SyntheticDataset
from synthaug.generators import load

__all__ = [
    "FILE_TYPES",
    "CLEANED_LOCALIZER",
    "LEGACY_LOCALIZER",
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
    "load",
    "register_source",
    "sample_with_provenance",
]
