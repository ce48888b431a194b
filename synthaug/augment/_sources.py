"""Non-generative sample sources, and a source that mixes several.

They follow the generator contract (``fit(dataset)`` then ``sample(n, y=..., seed=...)``) and
are scikit-learn estimators, so :class:`~synthaug.augment.AugmentedDataset`, the detectors'
``augment_with`` and the benchmark harness treat a baseline and a generator the same way.
They are the baselines every generator is measured against.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, ClassVar

import albumentations as A
import numpy as np
import torch
from imblearn.over_sampling import SMOTE
from sklearn.base import clone

from synthaug._memory import check_sample_count
from synthaug._params import REQUIRED, Estimator, Param, Satisfies, boolean, int_range, none_or
from synthaug._utils import check_seed, warn
from synthaug.augment._provenance import sample_with_provenance
from synthaug.augment._registry import register_source
from synthaug.data import ImageDataset, Provenance, SourceItem
from synthaug.errors import (
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    UnknownClassError,
)


class _ResamplingSource(Estimator):
    """Shared fit/sample plumbing: draw real samples of a class, then (optionally) transform them."""

    # Every sample is a real image: a copy, a jittered copy, or (SMOTE) a pixel-wise blend of
    # two, in which both patients' anatomy shows. DICOM output is marked derived, not synthetic.
    keeps_real_pixels: ClassVar[bool] = True

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "dataset_")

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
        self,
        n: int,
        y: int | str,
        seed: int | None = None,
        *,
        return_provenance: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Draw ``n`` samples of class ``y`` (a label or a class name).

        With ``return_provenance=True`` a third value lists one
        :class:`~synthaug.data.Provenance` per sample: derived, from the training item drawn.
        """
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(dataset) first")
        # The drawn images, then the copy (or transform) of them returned.
        n = check_sample_count(n, self.sample_shape_, copies=2)
        label = self._label(y)
        if not isinstance(label, int) or not len(self.indices_.get(label, ())):
            raise UnknownClassError(
                f"class {y!r} has no samples to draw from in {self.class_names_}"
            )
        rng = np.random.default_rng(check_seed(seed))
        picked = rng.choice(self.indices_[label], size=n, replace=True)
        images = self._transform(self.dataset_.images[torch.from_numpy(picked)], rng)
        labels = torch.full((n,), label, dtype=torch.int64)
        if not return_provenance:
            return images, labels
        how, operations = self._derivation()
        provenance = [
            Provenance("derived", how, (SourceItem(int(i), "image"),), operations) for i in picked
        ]
        return images, labels, provenance

    def _label(self, y: int | str) -> int | str:
        """The label of class name ``y``; anything else as given, for the caller to refuse."""
        return self.class_names_.index(y) if isinstance(y, str) and y in self.class_names_ else y

    def _transform(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return images.clone()

    def _derivation(self) -> tuple[str, tuple[str, ...]]:
        """How a sample is made from its training item, and the image operations named."""
        return "a copy of a real training image", ()


@register_source("random-oversampling")
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


@register_source("classical")
class ClassicalAugmentation(_ResamplingSource):
    """Real samples of a class passed through an albumentations pipeline.

    Notes
    -----
    albumentations works one image at a time; this is the library's own design and costs about
    0.1 ms per 8x8 image here, far below any generator's training time.
    """

    transform = Param(
        None,
        none_or(Satisfies(callable, "a callable", "callable")),
        """An albumentations ``Compose`` (called as ``transform(image=HWC array)``). ``None``:
        :func:`default_classical_transform`, small affine jitter and mild noise.""",
    )

    def fit(self, dataset: ImageDataset) -> ClassicalAugmentation:
        self.check_params()
        if not dataset.is_image:
            raise InvalidParameterError(
                "classical augmentation needs images (N, C, H, W), not feature vectors"
            )
        super().fit(dataset)
        # A copy: sampling reseeds the transform, and fit never changes a parameter.
        self.transform_ = (
            copy.deepcopy(self.transform)
            if self.transform is not None
            else default_classical_transform(dataset.sample_shape[-1])
        )
        return self

    def _derivation(self) -> tuple[str, tuple[str, ...]]:
        if self.transform is None:
            # The default pipeline's affine warp interpolates: a spatial resampling.
            return (
                "a real training image with random affine jitter and noise",
                ("spatial-resampling",),
            )
        return "a real training image passed through a user's albumentations pipeline", ()

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


@register_source("smote")
class SMOTESource(_ResamplingSource):
    """SMOTE (Chawla et al., JAIR 2002) as a sample source: ``sample(n, y)`` interpolates ``n``
    new samples of class ``y`` between its real samples, via imbalanced-learn.

    Images are flattened for imbalanced-learn and the results clipped back to [0, 1]. A class
    with fewer samples than ``k_neighbors + 1`` uses all its other samples as neighbours (``fit``
    warns, naming it); a class of one sample cannot be interpolated (``sample`` raises).

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> images, labels = SMOTESource().fit(load_digits()).sample(4, y=3, seed=0)
    >>> tuple(images.shape), labels.tolist()
    ((4, 1, 8, 8), [3, 3, 3, 3])
    """

    k_neighbors = Param(
        5, int_range(1), "Neighbours to interpolate towards (imbalanced-learn's default, 5)."
    )

    def fit(self, dataset: ImageDataset) -> SMOTESource:
        self.check_params()
        present = [c for c, n in dataset.class_counts().items() if n > 0]
        if len(present) < 2:
            # imbalanced-learn's SMOTE resamples a labelled set and refuses a single class.
            raise InvalidDataError(
                "SMOTE needs at least two classes present (imbalanced-learn interpolates within "
                "one class of a labelled set); for one class, use 'classical' augmentation"
            )
        super().fit(dataset)
        self.counts_ = dataset.class_counts()
        need = self.k_neighbors + 1
        short = {dataset.classes[c]: n for c, n in self.counts_.items() if 2 <= n < need}
        if short:
            warn(
                f"SMOTE needs k_neighbors + 1 = {need} samples per class for k_neighbors="
                f"{self.k_neighbors}, but class(es) {short} (class: samples) have fewer, so they "
                f"interpolate among fewer neighbours; lower k_neighbors or add samples"
            )
        return self

    def sample(
        self,
        n: int,
        y: int | str,
        seed: int | None = None,
        *,
        return_provenance: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Interpolate ``n`` new samples of class ``y`` (a label or a class name).

        With ``return_provenance=True`` a third value lists one
        :class:`~synthaug.data.Provenance` per sample: derived from the two training items it
        lies between (``"image"``, the one it starts from, and ``"blend"``, its neighbour).
        """
        if not self.is_fitted:
            raise NotFittedError("SMOTESource is not fitted; call fit(dataset) first")
        # imbalanced-learn returns the new rows in float64 beside the data, then they are
        # clipped (float64) and made float32: four float32-sized copies at once.
        n = check_sample_count(n, self.sample_shape_, copies=4)
        label = self._label(y)
        have = self.counts_.get(label, 0) if isinstance(label, int) else 0
        if have == 0:
            raise UnknownClassError(f"class {y!r} has no samples to interpolate from")
        if have < 2:
            raise InvalidDataError(
                f"SMOTE needs at least 2 samples of class {y!r} to interpolate, got {have}; "
                f"keep more minority samples (make_imbalanced(min_per_class=2))"
            )
        x = self.dataset_.flat()
        labels = self.dataset_.labels.numpy()
        sampler = _PairRecordingSMOTE(
            sampling_strategy={label: have + n},
            k_neighbors=min(self.k_neighbors, have - 1),
            random_state=check_seed(seed) % 2**32,
        )
        x_new, _ = sampler.fit_resample(x, labels)
        # imbalanced-learn appends the synthetic rows after the original ones.
        synth = np.clip(x_new[len(x) :], 0.0, 1.0).astype(np.float32)
        images = torch.from_numpy(synth).reshape(n, *self.dataset_.sample_shape)
        out_labels = torch.full((n,), label, dtype=torch.int64)
        if not return_provenance:
            return images, out_labels
        # The pair's rows index the class's items, in dataset order (imbalanced-learn's X_class).
        members = np.flatnonzero(labels == label)
        base, other = sampler.pairs_
        how = "a pixel-wise interpolation between two real training images of the class (SMOTE)"
        provenance = [
            Provenance(
                "derived",
                how,
                (SourceItem(int(members[i]), "image"), SourceItem(int(members[j]), "blend")),
            )
            for i, j in zip(base.tolist(), other.tolist(), strict=True)
        ]
        return images, out_labels, provenance


class _PairRecordingSMOTE(SMOTE):
    """imbalanced-learn's SMOTE, keeping which two items each new sample lies between.

    ``_generate_samples`` is where imbalanced-learn (0.14) turns the drawn ``rows`` and
    neighbour ``cols`` into samples; recording them there leaves the samples exactly as
    SMOTE's. ``pairs_`` is ``(base rows, neighbour rows)`` into the one class resampled.
    """

    def _generate_samples(
        self,
        X: Any,
        nn_data: Any,
        nn_num: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        steps: Any,
        y_type: Any = None,
        y: Any = None,
    ) -> Any:
        self.pairs_ = (np.asarray(rows), np.asarray(nn_num[rows, cols]))
        return super()._generate_samples(X, nn_data, nn_num, rows, cols, steps, y_type, y)


class MixedSource(Estimator):
    """Several sample sources sharing each request: ``n`` samples split as evenly as possible.

    A combined benchmark method such as ``"cvae+classical"`` is one: half the synthetic
    minority samples come from the generator, half from classical augmentation. Source ``i``
    draws with the seed ``seed + 7919 * i``, so two sources of the same kind never repeat each
    other.

    Attributes
    ----------
    sources_ : list
        The fitted sources.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> mixed = MixedSource([RandomOverSampling(), ClassicalAugmentation()]).fit(load_digits())
    >>> images, labels = mixed.sample(5, y=2, seed=0)  # 3 copies, then 2 jittered images
    >>> tuple(images.shape)
    (5, 1, 8, 8)
    """

    sources = Param(
        REQUIRED,
        Satisfies(
            lambda v: (
                isinstance(v, (list, tuple)) and len(v) > 0 and all(hasattr(s, "sample") for s in v)
            ),
            "a non-empty list of sample sources",
            "list of sample sources",
        ),
        "Generators or sources with ``fit(dataset)`` and ``sample(n, y=..., seed=...)``.",
    )
    prefit = Param(
        False,
        boolean,
        """``False``: ``fit`` fits a clone of each source. ``True``: the sources are already
        fitted and used as they are (scikit-learn's "prefit" idiom); ``fit`` only checks them.""",
    )

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "sources_")

    @property
    def keeps_real_pixels(self) -> bool:
        """Whether any of the sources keeps real pixels (then some samples are real anatomy)."""
        # A source that does not say is not taken to make new pixels.
        return any(getattr(s, "keeps_real_pixels", True) for s in self.sources)

    @property
    def exemplar_conditioned(self) -> bool:
        """Whether any of the sources samples variants of stored training images."""
        return any(getattr(s, "exemplar_conditioned", False) for s in self.sources)

    def fit(self, dataset: ImageDataset) -> MixedSource:
        self.check_params()
        if self.prefit:
            unfitted = [type(s).__name__ for s in self.sources if not getattr(s, "is_fitted", True)]
            if unfitted:
                raise NotFittedError(
                    f"MixedSource(prefit=True) needs fitted sources; {unfitted} are not fitted"
                )
            self.sources_ = list(self.sources)
        else:
            self.sources_ = [clone(s).fit(dataset) for s in self.sources]
        self.class_names_ = list(dataset.classes)
        self.sample_shape_ = tuple(dataset.sample_shape)
        return self

    def sample(
        self,
        n: int,
        y: int | str,
        seed: int | None = None,
        *,
        return_provenance: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Draw ``n`` samples of class ``y``, shared among the sources.

        With ``return_provenance=True`` a third value lists each sample's
        :class:`~synthaug.data.Provenance`, as its source reported it (without training items
        when ``prefit``: the sources may have been fitted on other data).
        """
        if not self.is_fitted:
            raise NotFittedError("MixedSource is not fitted; call fit(dataset) first")
        # Each source's part, then their concatenation.
        n = check_sample_count(n, self.sample_shape_, copies=2)
        seed = check_seed(seed)
        k = len(self.sources_)
        share = [n // k + (i < n % k) for i in range(k)]
        images, labels, provenance = [], [], []
        for i, (source, m) in enumerate(zip(self.sources_, share, strict=True)):
            if not m:
                continue
            if return_provenance:
                im, lab, prov = sample_with_provenance(source, m, y=y, seed=seed + 7919 * i)
                provenance += prov
            else:
                im, lab = source.sample(m, y=y, seed=seed + 7919 * i)
            images.append(im.to(torch.float32))
            labels.append(lab.to(torch.int64))
        if not return_provenance:
            return torch.cat(images), torch.cat(labels)
        if self.prefit:
            provenance = [replace(p, items=()) for p in provenance]
        return torch.cat(images), torch.cat(labels), provenance
