"""The contract every anomaly detector follows, written once.

``fit`` checks the parameters and the normal training set, holds out a validation part, adds
synthetic normal samples when asked, and calls the family's private ``_fit``; ``score``
checks its input and calls ``_score``; ``predict`` compares scores with a threshold chosen on
the held-out normal samples (template method, as imbalanced-learn's ``fit_resample``).
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import clone

from synthaug._params import (
    Estimator,
    Param,
    Satisfies,
    boolean,
    device_like,
    int_range,
    none_or,
    real_range,
    seed_like,
    settings_from,
)
from synthaug._utils import check_seed, fitting_one_class
from synthaug.augment import SOURCES
from synthaug.data import ImageDataset
from synthaug.data._dataset import check_image_dataset
from synthaug.errors import (
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
)
from synthaug.generators import GENERATORS, BaseGenerator
from synthaug.nn import Trainer, TrainingSettings, WithReplacement


class BaseDetector(Estimator):
    """Shared behaviour of synthaug anomaly detectors.

    A detector learns what normal samples look like from a training set holding only normal
    samples (one class), then scores new samples with :meth:`decision_function`: **higher
    scores are more anomalous** (PyOD's convention). Subclasses declare their parameters as
    :class:`~synthaug._params.Param` class attributes and implement
    ``_fit(images, seed)`` and ``_score(images)`` on float32 ``(N, C, H, W)`` or ``(N, D)``
    tensors in [0, 1].

    The parameters every detector has are declared here, once; a family declares its own
    (``Param``) and inherits these.
    """

    validation_fraction = Param(
        0.1,
        real_range(0, 0.9),
        """Share of the normal training samples held out (not trained on) to choose the
        default threshold of :meth:`predict`; at least one sample is held out when it is above
        0. ``0`` trains on everything and takes the threshold from training scores, which is
        optimistic (training samples score lower than unseen normals).""",
    )
    threshold_quantile = Param(
        0.95,
        real_range(0, 1),
        """Quantile of the validation scores used as the threshold: about ``1 - q`` of normal
        samples are flagged as anomalous.""",
    )
    augment_with = Param(
        None,
        none_or(
            Satisfies(
                lambda v: isinstance(v, str) or hasattr(v, "sample"),
                "a registered generator or source name, or a source with sample()",
            )
        ),
        """Add synthetic normal samples to the training part: a registered generator or
        sample source name (``"cvae"``, ``"classical"``: fitted on the training part, a
        generator with this detector's seed), a generator instance (used as it is when already
        fitted, else a clone is fitted on the training part), or any other sample source with
        ``fit(dataset)`` and ``sample(n, y=..., seed=...)``, such as
        :class:`~synthaug.augment.ClassicalAugmentation` (a clone is fitted on the training
        part): the classical baseline for synthetic normals.""",
        type="str, generator, sample source or None",
    )
    n_synthetic = Param(
        0, int_range(0), "Number of synthetic normal samples to add when ``augment_with`` is set."
    )
    allow_multiple_classes = Param(
        False,
        boolean,
        """Training sets must hold a single class (the normal one) unless this is True; then
        all their samples are treated as normal.""",
    )
    seed = Param(
        0,
        seed_like,
        "Seeds the validation split, the synthetic samples and the detector's own randomness.",
    )

    # Fewest training samples the family can fit on (after the validation hold-out).
    _min_train_samples: ClassVar[int] = 2

    # -- fitted state ---------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "threshold_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(normal_dataset) first"
            )

    # -- fit --------------------------------------------------------------------------------
    def fit(self, dataset: ImageDataset) -> BaseDetector:
        """Learn what normal samples look like from ``dataset`` and return ``self``.

        Parameters
        ----------
        dataset : ImageDataset
            Normal samples only: a single class present, unless ``allow_multiple_classes``.

        Raises
        ------
        InvalidDataError
            When more than one class is present (and not allowed), or the data hold NaNs.
        EmptyDatasetError
            When the dataset is empty or too small to hold out a validation part.
        """
        self.check_params()
        self._check_dataset(dataset, "fit")
        present = [dataset.classes[c] for c, n in dataset.class_counts().items() if n > 0]
        if len(present) > 1 and not self.allow_multiple_classes:
            raise InvalidDataError(
                f"{type(self).__name__} is a one-class detector: fit it on normal samples only, "
                f"but the training set holds {len(present)} classes {present}. Keep only the "
                f"normal class (dataset.subset(...)), or pass allow_multiple_classes=True to "
                f"treat every class as normal"
            )
        seed = check_seed(self.seed)
        rng = np.random.default_rng(seed)
        images = dataset.images
        n = len(images)
        n_val = int(round(self.validation_fraction * n))
        if self.validation_fraction > 0:
            n_val = max(n_val, 1)
        if n - n_val < self._min_train_samples:
            raise EmptyDatasetError(
                f"{type(self).__name__} needs at least {self._min_train_samples} training samples "
                f"after holding out {n_val} for validation, but the dataset has {n}; add normal "
                f"samples or lower validation_fraction"
            )
        perm = torch.from_numpy(rng.permutation(n))
        val_images, train_images = images[perm[:n_val]], images[perm[n_val:]]

        self.sample_shape_ = tuple(dataset.sample_shape)
        self.normal_classes_ = present
        self.n_train_real_ = len(train_images)
        train_images = self._add_synthetic(train_images, seed)
        self.n_train_ = len(train_images)
        self._fit(train_images, seed)
        self.n_validation_ = n_val
        reference_images = val_images if n_val else train_images[: self.n_train_real_]
        self._calibrate(reference_images)
        reference = self._score_checked(reference_images)
        self.validation_scores_ = reference
        self.threshold_ = float(np.quantile(reference, self.threshold_quantile))
        return self

    def _add_synthetic(self, train_images: torch.Tensor, seed: int) -> torch.Tensor:
        if self.augment_with is None or self.n_synthetic == 0:
            return train_images
        normal = ImageDataset(train_images, torch.zeros(len(train_images), dtype=torch.int64))
        source = self.augment_with
        label: int | str = 0
        if isinstance(source, str):
            if source in GENERATORS:
                source = GENERATORS.create(source, seed=seed, verbose=False)
            elif source in SOURCES:
                source = SOURCES.create(source)
            else:
                raise InvalidParameterError(
                    f"augment_with={source!r}: unknown generator or sample source; available: "
                    f"{', '.join(GENERATORS.list() + SOURCES.list())}"
                )
            with fitting_one_class():  # more of the normal class alone
                generator = source.fit(normal)
        elif isinstance(source, BaseGenerator) and source.is_fitted:
            generator = source
            if generator.sample_shape_ != self.sample_shape_:
                raise ShapeMismatchError(
                    f"augment_with generator makes samples of shape {generator.sample_shape_}, "
                    f"but the training samples have shape {self.sample_shape_}"
                )
            # A generator fitted on several classes samples the normal one, found by name.
            named = [c for c in self.normal_classes_ if c in generator.class_names_]
            if len(generator.classes_) == 1:
                label = generator.classes_[0]
            elif len(named) == 1:
                label = named[0]
            else:
                raise InvalidParameterError(
                    f"augment_with generator knows classes "
                    f"{[generator.class_names_[c] for c in generator.classes_]}; cannot tell "
                    f"which one is the normal class {self.normal_classes_}. Fit it on the "
                    f"normal samples only, or give it the normal class under the same name"
                )
        elif callable(getattr(source, "fit", None)) and callable(getattr(source, "sample", None)):
            # An unfitted generator or any other sample source (classical augmentation,
            # SMOTE): a clone is fitted on the normal training part, so the detector's data
            # decide what it sees and the user's object stays unfitted.
            with fitting_one_class():
                generator = clone(source).fit(normal)
        else:
            raise InvalidParameterError(
                f"augment_with must be None, a generator or sample source name, a synthaug "
                f"generator or a sample source with fit(dataset) and sample(n, y=..., seed=...) "
                f"(e.g. synthaug.augment.ClassicalAugmentation()), got "
                f"{type(self.augment_with).__name__}"
            )
        synthetic, _ = generator.sample(self.n_synthetic, y=label, seed=seed)
        self.synthetic_generator_ = generator
        return torch.cat([train_images, synthetic.reshape(-1, *self.sample_shape_)])

    def _check_dataset(self, dataset: ImageDataset, what: str) -> None:
        check_image_dataset(dataset, f"{what} expects", f"cannot {what} on an empty dataset")
        # ImageDataset refuses NaNs when built, but its tensor can be edited afterwards.
        if not torch.isfinite(dataset.images).all():
            bad = int((~torch.isfinite(dataset.images)).flatten(1).any(1).sum())
            raise InvalidDataError(f"{bad} sample(s) contain NaN or infinite values; fix them")

    # -- score / predict --------------------------------------------------------------------
    def decision_function(self, dataset: ImageDataset) -> np.ndarray:
        """Anomaly scores, one per sample: higher means more anomalous (PyOD's convention).

        Parameters
        ----------
        dataset : ImageDataset
            Samples shaped like the training samples; their labels are ignored.

        Returns
        -------
        numpy.ndarray
            Float64 ``(N,)`` scores.
        """
        self._check_fitted()
        self._check_dataset(dataset, "score")
        if tuple(dataset.sample_shape) != self.sample_shape_:
            raise ShapeMismatchError(
                f"{type(self).__name__} was fitted on samples of shape {self.sample_shape_}, got "
                f"{tuple(dataset.sample_shape)}"
            )
        return self._score_checked(dataset.images)

    def _score_checked(self, images: torch.Tensor) -> np.ndarray:
        scores = np.asarray(self._score(images), dtype=np.float64).reshape(-1)
        if not np.isfinite(scores).all():
            raise InvalidDataError(
                f"{type(self).__name__} produced non-finite anomaly scores; the model may have "
                f"diverged (lower lr) or the data hold extreme values"
            )
        return scores

    def predict(self, dataset: ImageDataset, threshold: float | None = None) -> np.ndarray:
        """Flag anomalies: 1 where the score is above the threshold, else 0.

        Parameters
        ----------
        dataset : ImageDataset
        threshold : float, optional
            Score above which a sample is anomalous. Default: ``threshold_``, the
            ``threshold_quantile`` quantile of the scores of the held-out normal samples.

        Returns
        -------
        numpy.ndarray
            Int64 ``(N,)`` array of 0 (normal) and 1 (anomalous).
        """
        scores = self.decision_function(dataset)
        if threshold is None:
            threshold = self.threshold_
        elif (
            isinstance(threshold, bool)
            or not isinstance(threshold, numbers.Real)
            or not np.isfinite(threshold)
        ):
            raise InvalidParameterError(f"threshold must be a finite number, got {threshold!r}")
        return (scores > float(threshold)).astype(np.int64)

    def _map_images(self, images: ImageDataset | torch.Tensor) -> torch.Tensor:
        """The float32 ``(N, C, H, W)`` tensor of ``images`` (a dataset or a tensor), checked
        against the training samples: the input of a fitted detector's ``anomaly_map``."""
        self._check_fitted()
        x = images.images if isinstance(images, ImageDataset) else images
        if not isinstance(x, torch.Tensor):
            raise InvalidDataError(
                f"anomaly_map expects an ImageDataset or a (N, C, H, W) tensor, got "
                f"{type(x).__name__}"
            )
        if x.dim() != 4 or tuple(x.shape[1:]) != self.sample_shape_:
            raise ShapeMismatchError(
                f"{type(self).__name__}.anomaly_map takes (N, C, H, W) images shaped like the "
                f"training samples {self.sample_shape_}, got {tuple(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise InvalidDataError(
                "anomaly_map: the images contain NaN or infinite values; fix them"
            )
        return x.float()

    # -- family hooks -------------------------------------------------------------------------
    def _fit(self, images: torch.Tensor, seed: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score(self, images: torch.Tensor) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _calibrate(self, images: torch.Tensor) -> None:
        """Learn score statistics from normal samples after ``_fit``: the held-out validation
        part, or the real training samples when ``validation_fraction=0``. No-op by default."""


class NetworkDetector(BaseDetector):
    """A detector that trains networks (DRAEM, CutPaste, f-AnoGAN) through the shared
    :class:`~synthaug.nn.Trainer`: the training parameters they share, declared once."""

    batch_size = Param(32, int_range(2), "Samples per training step.")
    lr = Param(1e-3, real_range(0, None, low_open=True), "Adam learning rate.")
    device = Param(
        "auto", device_like, '``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:N]"``.'
    )
    verbose = Param(False, boolean, "Show a progress bar while training.")

    # Steps per history record of a detector trained for a budget of steps.
    _record_every: ClassVar[int] = 50

    def _trainer(self, desc: str, **loop: Any) -> Trainer:
        """The shared :class:`~synthaug.nn.Trainer` for this detector's networks on
        ``device_``, from its parameters; ``loop`` are the Trainer's options (``steps``,
        ``batches``, ...), ``epochs`` among them for a budget in epochs. No amp parameter:
        full precision, as the gradient penalty of f-AnoGAN wants and as the step-trained
        detectors were tuned."""
        settings = settings_from(TrainingSettings, self, amp=False, epochs=loop.pop("epochs", 1))
        return Trainer(settings, device=self.device_, desc=desc, **loop)

    def _step_trainer(self, steps: int) -> Trainer:
        """The Trainer for ``steps`` optimiser steps on batches drawn with replacement (one
        ``torch.randint`` per step, from the run's generator), a history record every
        ``_record_every`` steps."""
        return self._trainer(
            type(self).__name__,
            steps=steps,
            batches=WithReplacement(),
            record_every=self._record_every,
        )
