"""Built-in benchmark methods: the baselines, every registered generator, and their mixtures.

A method turns the imbalanced training set into a fitted sample source (or ``None`` for
no augmentation); the task tops every class up to the majority count with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from synthaug._params import validate_params
from synthaug._utils import check_seed
from synthaug.augment import ClassicalAugmentation, RandomOverSampling
from synthaug.bench._registry import check_params, get_method, register_method
from synthaug.data import ImageDataset
from synthaug.errors import (
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    UnknownClassError,
)

# Parameters the harness sets itself for every generator; a config may not override them.
_HARNESS_PARAMS = ("seed", "device", "verbose")


@register_method("none")
def no_augmentation(train: ImageDataset, *, seed: int, device: str) -> None:
    """Train on the imbalanced data as it is: the row every table must have."""
    return None


@register_method("random-oversampling")
def random_oversampling(train: ImageDataset, *, seed: int, device: str) -> RandomOverSampling:
    """Duplicate minority samples (imbalanced-learn's RandomOverSampler)."""
    return RandomOverSampling().fit(train)


@register_method("classical")
def classical(train: ImageDataset, *, seed: int, device: str) -> ClassicalAugmentation:
    """Affine jitter and mild noise of real minority samples (albumentations)."""
    return ClassicalAugmentation().fit(train)


@register_method("smote")
def smote(train: ImageDataset, *, seed: int, device: str, k_neighbors: int = 5) -> SMOTESource:
    """SMOTE (Chawla et al., JAIR 2002) on flattened images, via imbalanced-learn."""
    return SMOTESource(k_neighbors=k_neighbors).fit(train)


class SMOTESource:
    """SMOTE as a sample source: ``sample(n, y)`` interpolates ``n`` new samples of class ``y``.

    Images are flattened for imbalanced-learn and the results clipped back to [0, 1]. A class
    with fewer samples than ``k_neighbors + 1`` uses all its other samples as neighbours.

    Parameters
    ----------
    k_neighbors : int
        Neighbours to interpolate towards (imbalanced-learn's default, 5).
    """

    def __init__(self, *, k_neighbors: int = 5) -> None:
        self.k_neighbors = k_neighbors

    def fit(self, dataset: ImageDataset) -> SMOTESource:
        validate_params(
            "smote",
            {"k_neighbors": self.k_neighbors},
            {"k_neighbors": lambda v: None if isinstance(v, int) and v >= 1 else "an integer >= 1"},
        )
        present = [c for c, n in dataset.class_counts().items() if n > 0]
        if len(present) < 2:
            # imbalanced-learn's SMOTE resamples a labelled set and refuses a single class.
            raise InvalidDataError(
                "SMOTE needs at least two classes present (imbalanced-learn interpolates within "
                "one class of a labelled set); for one class, use 'classical' augmentation"
            )
        self.dataset_ = dataset
        self.counts_ = dataset.class_counts()
        return self

    def sample(self, n: int, y: int, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if not hasattr(self, "dataset_"):
            raise NotFittedError("SMOTESource is not fitted; call fit(dataset) first")
        have = self.counts_.get(y, 0)
        if have == 0:
            raise UnknownClassError(f"class {y!r} has no samples to interpolate from")
        if have < 2:
            raise InvalidDataError(
                f"SMOTE needs at least 2 samples of class {y!r} to interpolate, got {have}; "
                f"keep more minority samples (make_imbalanced(min_per_class=2))"
            )
        from imblearn.over_sampling import SMOTE

        x = self.dataset_.flat()
        labels = self.dataset_.labels.numpy()
        sampler = SMOTE(
            sampling_strategy={y: have + n},
            k_neighbors=min(self.k_neighbors, have - 1),
            random_state=check_seed(seed) % 2**32,
        )
        x_new, _ = sampler.fit_resample(x, labels)
        # imbalanced-learn appends the synthetic rows after the original ones.
        synth = np.clip(x_new[len(x) :], 0.0, 1.0).astype(np.float32)
        images = torch.from_numpy(synth).reshape(n, *self.dataset_.sample_shape)
        return images, torch.full((n,), y, dtype=torch.int64)


def generator_method(name: str) -> Callable[..., Any]:
    """A method that fits the generator registered as ``name`` (its params come from the config)."""
    from synthaug.generators import create_generator, get_generator_class

    cls = get_generator_class(name)

    def fit_generator(train: ImageDataset, *, seed: int, device: str, **params: Any) -> Any:
        own = set(cls._param_names()) if hasattr(cls, "_param_names") else set()
        harness = {"seed": seed, "device": device, "verbose": False}
        params = {**params, **{k: v for k, v in harness.items() if k in own}}
        return create_generator(name, **params).fit(train)

    fit_generator.generator_class = cls
    fit_generator.__name__ = f"fit_{name}"
    return fit_generator


class MixedSource:
    """Several fitted sources sharing each request: ``n`` samples split as evenly as possible.

    This is what a combined method such as ``"cvae+classical"`` uses: half the synthetic
    minority samples come from the generator, half from classical augmentation.
    """

    def __init__(self, sources: Sequence[Any]) -> None:
        self.sources = list(sources)

    def sample(self, n: int, y: int, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        seed = check_seed(seed)
        share = [
            n // len(self.sources) + (i < n % len(self.sources)) for i in range(len(self.sources))
        ]
        images, labels = [], []
        for i, (source, k) in enumerate(zip(self.sources, share, strict=True)):
            if k:
                im, lab = source.sample(k, y=y, seed=seed + 7919 * i)
                images.append(im.to(torch.float32))
                labels.append(lab.to(torch.int64))
        return torch.cat(images), torch.cat(labels)


def method_parts(name: str) -> list[str]:
    """``"cvae+classical"`` -> ``["cvae", "classical"]`` (a plain name gives one part)."""
    parts = [p.strip() for p in name.split("+")]
    if any(not p for p in parts):
        raise InvalidParameterError(f"methods.{name}: empty part in a combined method name")
    if len(parts) > 1 and "none" in parts:
        raise InvalidParameterError(f"methods.{name}: 'none' cannot be combined with other methods")
    if len(set(parts)) != len(parts):
        raise InvalidParameterError(f"methods.{name}: a method appears twice in a combination")
    return parts


def validate_method(name: str, params: dict[str, Any]) -> None:
    """Check up front that ``name`` resolves and ``params`` fit it; errors name the bad key."""
    parts = method_parts(name)
    where = f"methods.{name}"
    if len(parts) > 1:
        for key in params:
            if key not in parts:
                raise InvalidParameterError(
                    f"{where}.{key}: a combined method takes one table per part "
                    f"({', '.join(parts)}), not {key!r}"
                )
        for part in parts:
            sub = params.get(part, {})
            if not isinstance(sub, dict):
                raise InvalidParameterError(f"{where}.{part}: must be a table of parameters")
            _validate_single(part, sub, f"{where}.{part}")
        return
    _validate_single(name, params, where)


def _validate_single(name: str, params: dict[str, Any], where: str) -> None:
    fn = get_method(name, where)
    cls = getattr(fn, "generator_class", None)
    if cls is None:
        check_params(fn, params, where, skip=("train", "seed", "device"))
        return
    for key in params:
        if key in _HARNESS_PARAMS:
            raise InvalidParameterError(
                f"{where}.{key}: set by the harness per cell; remove it from the config"
            )
        if key not in cls._param_names():
            raise InvalidParameterError(
                f"{where}.{key}: unknown parameter of generator {name!r}; "
                f"allowed: {', '.join(n for n in cls._param_names() if n not in _HARNESS_PARAMS)}"
            )
    validate_params(where, params, getattr(cls, "_parameter_constraints", {}))


def build_source(
    name: str, params: dict[str, Any], train: ImageDataset, *, seed: int, device: str
) -> Any:
    """Fit the method ``name`` (possibly combined) on ``train``; ``None`` means no augmentation."""
    parts = method_parts(name)
    if len(parts) == 1:
        return get_method(name)(train, seed=seed, device=device, **params)
    sources = [
        get_method(part)(train, seed=seed + 104729 * i, device=device, **params.get(part, {}))
        for i, part in enumerate(parts)
    ]
    return MixedSource(sources)
