"""An imbalanced-learn over-sampler whose new samples come from a synthaug generator."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from imblearn.over_sampling.base import BaseOverSampler
from imblearn.utils import check_sampling_strategy, check_target_type
from scipy import sparse
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods
from sklearn.utils._param_validation import InvalidParameterError as SklearnInvalidParameterError
from sklearn.utils.validation import validate_data

from synthaug._params import configure
from synthaug._utils import warn
from synthaug.data import ImageDataset
from synthaug.data._dataset import integer_labels
from synthaug.errors import InvalidDataError, InvalidParameterError, ShapeMismatchError
from synthaug.generators import GENERATORS


class SamplerParameterError(InvalidParameterError, SklearnInvalidParameterError):
    """A bad parameter of :class:`GenerativeOverSampler`: synthaug's error type, and also
    scikit-learn's ``InvalidParameterError``, which imbalanced-learn users may catch."""


class GenerativeOverSampler(BaseOverSampler):
    """Over-sample minority classes with samples from a conditional generator.

    A drop-in imbalanced-learn sampler (Lemaître, Nogueira & Aridas, JMLR 2017): it follows the
    ``fit_resample`` conventions, accepts imbalanced-learn's ``sampling_strategy`` values and
    works inside :class:`imblearn.pipeline.Pipeline`. Instead of interpolating neighbours as
    SMOTE does, it fits a generator on ``X`` and draws the missing samples of each class from
    it, in the spirit of generative oversampling such as DeepSMOTE (Dablain, Krawczyk & Chawla,
    IEEE TNNLS 2022).

    Parameters
    ----------
    generator : generator instance or str
        The generator to fit, e.g. ``CVAE(epochs=50)``; it is cloned, never fitted itself, so
        its parameters are this sampler's nested parameters (``generator__latent_dim`` in
        ``set_params`` and ``GridSearchCV``). A registered name (``"cvae"``, see
        :func:`synthaug.generators.list_generators`) uses that generator's defaults.
    sampling_strategy : float, str, dict or callable
        As in imbalanced-learn: ``"auto"`` (= ``"not majority"``), ``"minority"``,
        ``"not minority"``, ``"all"``, a float (desired minority / majority ratio, binary
        problems only), ``{class: target count}`` or a callable ``y -> dict``.
    image_shape : tuple of int, optional
        ``(C, H, W)`` or ``(H, W)``: the shape of one sample when ``X`` holds flattened images.
        Without it, 2-D ``X`` is tabular. ``X`` may also be ``(N, C, H, W)`` (or ``(N, H, W)``).
    feature_range : tuple, optional
        ``(low, high)``: the public bounds of the values, each a number or one value per
        feature (per value of the flattened sample). ``X`` is clipped to them and mapped to the
        generator's [0, 1] with them, and generated samples are mapped back. Without it the
        bounds are the data's own minimum and maximum (per feature for tabular ``X``), unless
        the generator trains with ``dp=``: bounds read from private data are a release the
        privacy budget does not cover (one outlier would move every sample), so then images
        use their known range [0, 1] and tabular ``X`` needs ``feature_range`` from domain
        knowledge, e.g. ``feature_range=(-5, 5)``, never from the data.
    random_state : int, RandomState or None
        Controls the generator's ``seed`` (it replaces the generator's own) and the sampling
        seeds: the same integer gives the same output on CPU. With ``None`` the generator keeps
        its own ``seed`` and the sampling seeds come from numpy's global random state, as for
        other scikit-learn estimators.

    Attributes
    ----------
    generator_ : fitted generator
        The generator fitted on the last ``X`` given to ``fit_resample``.
    sampling_strategy_ : dict
        Number of samples generated per class.
    image_shape_ : tuple of int
        Shape of one sample as the generator saw it.
    feature_range_ : tuple
        The ``(low, high)`` that [0, 1] was mapped from and back to: ``feature_range``, the
        public [0, 1] of images under ``dp``, or the data's minimum and maximum.

    Notes
    -----
    Generators work on values in [0, 1]: without ``feature_range``, tabular features are
    min-max scaled per feature, images by the global minimum and maximum, and generated
    samples are scaled back. Sparse input is densified for the generator (the result is
    sparse again). With a private generator only ``generator_`` and its samples are covered
    by the guarantee: the result also holds the real rows, and its number of new rows per
    class follows from the exact class counts (see docs/privacy.md).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from synthaug.augment import GenerativeOverSampler
    >>> from synthaug.generators import CVAE
    >>> X, y = make_classification(n_samples=200, weights=[0.9, 0.1], random_state=0)
    >>> sampler = GenerativeOverSampler(CVAE(epochs=2, verbose=False), random_state=0)
    >>> X_res, y_res = sampler.fit_resample(X, y)
    >>> (y_res == 0).sum() == (y_res == 1).sum()
    True
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "generator": [str, HasMethods(["fit", "sample", "get_params"])],
        "image_shape": [tuple, list, None],
        "feature_range": [tuple, list, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        generator: Any = "cvae",
        *,
        sampling_strategy: Any = "auto",
        image_shape: tuple[int, ...] | None = None,
        feature_range: tuple[Any, Any] | None = None,
        random_state: Any = None,
    ) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self.generator = generator
        self.image_shape = image_shape
        self.feature_range = feature_range
        self.random_state = random_state

    # -- validation -------------------------------------------------------------------------
    def fit_resample(self, X: Any, y: Any, **params: Any) -> tuple[Any, Any]:
        """Fit the generator on ``(X, y)`` and return them with the new samples appended.

        Raises
        ------
        InvalidParameterError
            A parameter breaks imbalanced-learn's or scikit-learn's rules (the error is
            synthaug's type and scikit-learn's ``InvalidParameterError`` at once).
        InvalidDataError
            ``X`` or ``y`` are unusable: labels that are not whole numbers, NaN values, a
            single class.
        """
        self._check_parameters(y)
        return super().fit_resample(X, y, **params)

    def fit(self, X: Any, y: Any, **params: Any) -> GenerativeOverSampler:
        """Check the inputs and the sampling strategy (imbalanced-learn's ``fit``); use
        :meth:`fit_resample`."""
        self._check_parameters(y)
        return super().fit(X, y, **params)

    def _check_parameters(self, y: Any) -> None:
        """Our error types, before imbalanced-learn's checks raise scikit-learn's."""
        try:
            self._validate_params()
        except SklearnInvalidParameterError as exc:
            raise SamplerParameterError(str(exc)) from None
        labels = np.asarray(y) if not sparse.issparse(y) else None
        if labels is not None and np.issubdtype(labels.dtype, np.floating):
            # scikit-learn calls 0.37 a "continuous" target; say what is wrong with it.
            integer_labels(labels.reshape(-1), "y")

    def _check_X_y(self, X: Any, y: Any, accept_sparse: Any = None) -> tuple:
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        try:
            X, y = validate_data(
                self,
                X=X,
                y=y,
                reset=True,
                accept_sparse=["csr", "csc"],
                allow_nd=True,
                dtype=[np.float64, np.float32],
                ensure_all_finite=False,
            )
        except ValueError as exc:  # no samples, lengths or dtypes that do not fit: sklearn's words
            raise InvalidDataError(str(exc)) from exc
        values = X.data if sparse.issparse(X) else X
        if not np.isfinite(values).all():
            raise InvalidDataError(
                "X contains NaN or infinite values; impute or drop them before over-sampling"
            )
        n_classes = len(np.unique(y))
        if n_classes < 2:
            raise InvalidDataError(
                f"y holds {n_classes} class; over-sampling needs more than 1 class (a single "
                f"class has no minority to top up)"
            )
        try:  # what imbalanced-learn checks next, with its ValueError
            check_sampling_strategy(self.sampling_strategy, y, self._sampling_type)
        except ValueError as exc:
            raise SamplerParameterError(
                f"sampling_strategy={self.sampling_strategy!r} does not fit y: {exc}"
            ) from None
        return X, y, binarize_y

    def _sample_shape(self, X: Any) -> tuple[int, ...]:
        if X.ndim in (3, 4):
            shape = (1, *X.shape[1:]) if X.ndim == 3 else tuple(X.shape[1:])
            if self.image_shape is not None and _as_chw(self.image_shape) != shape:
                raise ShapeMismatchError(
                    f"image_shape={self.image_shape} does not match X of shape {X.shape}"
                )
            return shape
        if X.ndim != 2:
            raise ShapeMismatchError(
                f"X must be (N, D), (N, H, W) or (N, C, H, W), got shape {X.shape}"
            )
        if self.image_shape is None:
            return (X.shape[1],)
        shape = _as_chw(self.image_shape)
        if math.prod(shape) != X.shape[1]:
            raise ShapeMismatchError(
                f"image_shape={tuple(self.image_shape)} holds {math.prod(shape)} values but X "
                f"has {X.shape[1]} features"
            )
        return shape

    def _make_generator(self, rng: np.random.RandomState) -> Any:
        if isinstance(self.generator, str):
            model = GENERATORS.create(self.generator)
        else:
            model = clone(self.generator)
        if self.random_state is not None:
            configure(model, seed=int(rng.randint(0, 2**31 - 1)))
        return model

    def _value_range(self, flat: np.ndarray, private: bool) -> tuple[Any, Any]:
        """The ``(low, high)`` that maps ``flat`` to [0, 1]: public bounds, or the data's."""
        images = len(self.image_shape_) > 1
        if self.feature_range is not None:
            low, high = _public_range(self.feature_range, flat.shape[1])
        elif private and images:
            low, high = 0.0, 1.0
        elif private:
            raise InvalidParameterError(
                "the generator trains with dp=, so the feature bounds must be public: pass "
                "feature_range=(low, high) from domain knowledge (numbers or one per feature, "
                "e.g. feature_range=(-5, 5)), not from the data, whose own min/max would leak "
                "outside the privacy budget"
            )
        elif images:
            return flat.min(), flat.max()
        else:
            return flat.min(axis=0), flat.max(axis=0)
        if np.any(flat < low) or np.any(flat > high):
            where = (
                "feature_range"
                if self.feature_range is not None
                else "[0, 1] (the range of images under dp)"
            )
            warn(
                f"X has values outside {where}; they are clipped to it. Pass a wider "
                f"feature_range if they are meant (e.g. feature_range=(0, 255) for 8-bit images)"
            )
        return low, high

    # -- resampling -------------------------------------------------------------------------
    def _fit_resample(self, X: Any, y: np.ndarray) -> tuple[Any, np.ndarray]:
        rng = check_random_state(self.random_state)
        self.image_shape_ = self._sample_shape(X)
        dense = X.toarray() if sparse.issparse(X) else np.asarray(X)
        flat = dense.reshape(len(dense), -1).astype(np.float64)
        self.generator_ = self._make_generator(rng)
        low, high = self._value_range(flat, _trains_privately(self.generator_))
        self.feature_range_ = (low, high)
        span = np.where(high > low, high - low, 1.0)
        # Clipping to [0, 1] after scaling clips the data to (low, high) before it.
        scaled = np.clip((flat - low) / span, 0.0, 1.0)
        classes, codes = np.unique(y, return_inverse=True)
        dataset = ImageDataset(
            torch.from_numpy(scaled.reshape(len(flat), *self.image_shape_).astype(np.float32)),
            torch.from_numpy(codes.astype(np.int64)),
            [str(c) for c in classes],
        )
        self.generator_.fit(dataset)
        new_X, new_y = [], []
        for class_value, n in self.sampling_strategy_.items():
            if n <= 0:
                continue
            label = int(np.searchsorted(classes, class_value))
            images, _ = self.generator_.sample(int(n), y=label, seed=int(rng.randint(0, 2**31 - 1)))
            values = images.reshape(int(n), -1).double().numpy() * span + low
            new_X.append(values.reshape(int(n), *dense.shape[1:]).astype(X.dtype))
            new_y.append(np.full(int(n), class_value, dtype=y.dtype))
        if not new_X:
            return X, y
        y_res = np.concatenate([y, *new_y])
        if sparse.issparse(X):
            X_res = sparse.vstack([X, *(sparse.csr_matrix(a) for a in new_X)], format=X.format)
            return X_res.astype(X.dtype), y_res
        return np.concatenate([dense, *new_X]), y_res


def _trains_privately(model: Any) -> bool:
    """Whether ``model`` (or an estimator inside it) has a ``dp`` budget set."""
    params = model.get_params(deep=True)
    return any(k.split("__")[-1] == "dp" and v is not None for k, v in params.items())


def _public_range(value: Any, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``feature_range`` as two float arrays (scalars or one per feature), checked."""
    problem = (
        f"feature_range must be (low, high) with finite low < high, each a number or "
        f"{n_features} values (one per feature); got {value!r}"
    )
    try:
        low, high = (np.asarray(v, dtype=np.float64) for v in value)
    except (TypeError, ValueError):
        raise InvalidParameterError(problem) from None
    if any(a.shape not in ((), (n_features,)) for a in (low, high)):
        raise InvalidParameterError(problem)
    if not (np.isfinite(low).all() and np.isfinite(high).all() and np.all(low < high)):
        raise InvalidParameterError(problem)
    return low, high


def _as_chw(shape: Any) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InvalidParameterError(
            f"image_shape must be (C, H, W) or (H, W) with positive sizes, got {shape}"
        )
    return shape
