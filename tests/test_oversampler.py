"""GenerativeOverSampler: imbalanced-learn conventions, Pipeline, images and bad input."""

from collections import Counter

import numpy as np
import pytest
from imblearn.pipeline import Pipeline
from imblearn.utils.estimator_checks import parametrize_with_checks
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from synthaug.augment import GenerativeOverSampler
from synthaug.errors import InvalidDataError, InvalidParameterError, ShapeMismatchError
from synthaug.generators import CVAE

TINY = {"epochs": 2, "hidden_dims": (16,), "latent_dim": 2, "batch_size": 128, "verbose": False}


def tiny_sampler(random_state=0, **kwargs):
    return GenerativeOverSampler(CVAE(**TINY), random_state=random_state, **kwargs)


@pytest.fixture(scope="module")
def imbalanced_xy():
    return make_classification(
        n_samples=240,
        n_features=6,
        n_informative=3,
        n_classes=3,
        weights=[0.7, 0.2, 0.1],
        random_state=0,
    )


@parametrize_with_checks([tiny_sampler()])
def test_imbalanced_learn_estimator_checks(estimator, check):
    check(estimator)


def test_balances_like_random_oversampler_and_keeps_real_rows(imbalanced_xy):
    X, y = imbalanced_xy
    X_res, y_res = tiny_sampler().fit_resample(X, y)
    counts = Counter(y_res)
    assert set(counts.values()) == {max(Counter(y).values())}
    # the real rows come first, untouched; the new ones lie in the range of the data
    np.testing.assert_array_equal(X_res[: len(X)], X)
    new = X_res[len(X) :]
    assert np.all(new >= X.min(0) - 1e-9) and np.all(new <= X.max(0) + 1e-9)
    assert not np.isnan(new).any()


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("minority", {0: 168, 1: 48, 2: 168}),
        ("not minority", {0: 168, 1: 168, 2: 24}),
        ("all", {0: 168, 1: 168, 2: 168}),
        ({2: 100}, {0: 168, 1: 48, 2: 100}),
    ],
)
def test_sampling_strategy_values(imbalanced_xy, strategy, expected):
    X, y = imbalanced_xy
    assert dict(Counter(y)) == {0: 168, 1: 48, 2: 24}
    _, y_res = tiny_sampler(sampling_strategy=strategy).fit_resample(X, y)
    assert dict(Counter(y_res)) == expected


def test_float_strategy_on_a_binary_problem():
    X, y = make_classification(n_samples=120, weights=[0.8, 0.2], random_state=1)
    _, y_res = tiny_sampler(sampling_strategy=0.5).fit_resample(X, y)
    counts = Counter(y_res)
    assert counts[1] == int(round(0.5 * counts[0]))


def test_same_random_state_same_samples_and_string_labels(imbalanced_xy):
    X, y = imbalanced_xy
    names = np.array(["cat", "dog", "eel"])[y]
    a = tiny_sampler().fit_resample(X, names)
    b = tiny_sampler().fit_resample(X, names)
    c = tiny_sampler(random_state=1).fit_resample(X, names)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert set(a[1]) == {"cat", "dog", "eel"} and a[1].dtype == names.dtype


def test_inside_an_imblearn_pipeline(imbalanced_xy):
    X, y = imbalanced_xy
    pipe = Pipeline([("over", tiny_sampler()), ("clf", LogisticRegression(max_iter=500))])
    pipe.fit(X, y)
    assert pipe.named_steps["over"].generator_.is_fitted
    assert pipe.predict(X).shape == y.shape
    # resampling happens in fit only: predict sees the real rows
    assert pipe.score(X, y) > 0.5


def test_generator_params_are_nested_sampler_params():
    sampler = tiny_sampler()
    assert sampler.get_params()["generator__latent_dim"] == 2
    cloned = clone(sampler)
    assert cloned.generator is not sampler.generator
    assert cloned.generator.get_params() == sampler.generator.get_params()
    cloned.set_params(generator__latent_dim=3, generator__lr=0.01)
    assert cloned.generator.latent_dim == 3 and cloned.get_params()["generator__lr"] == 0.01
    assert sampler.generator.latent_dim == 2


def test_generator_instance_is_cloned_not_fitted(imbalanced_xy):
    X, y = imbalanced_xy
    template = CVAE(**{**TINY, "latent_dim": 3})
    sampler = GenerativeOverSampler(template, random_state=0)
    sampler.fit_resample(X, y)
    assert not template.is_fitted
    assert sampler.generator_ is not template and sampler.generator_.latent_dim == 3
    # A registered name works too: that generator with its defaults (but the seed).
    named = GenerativeOverSampler("cvae", random_state=0)
    assert named.get_params()["generator"] == "cvae"


def test_grid_search_over_a_generator_parameter_in_a_pipeline(imbalanced_xy):
    X, y = imbalanced_xy
    pipe = Pipeline([("over", tiny_sampler()), ("clf", LogisticRegression(max_iter=300))])
    search = GridSearchCV(
        pipe, {"over__generator__latent_dim": [2, 3]}, cv=2, scoring="balanced_accuracy"
    )
    search.fit(X, y)
    assert search.best_params_["over__generator__latent_dim"] in (2, 3)
    assert len(search.cv_results_["params"]) == 2
    fitted = search.best_estimator_.named_steps["over"].generator_
    assert fitted.latent_dim == search.best_params_["over__generator__latent_dim"]


def test_images_4d_and_flattened_with_image_shape(small_digits):
    X4 = small_digits.images.numpy()[:100] * 16  # not in [0, 1]: scaled and scaled back
    y = small_digits.labels.numpy()[:100]
    keep = (y != 9) | (np.arange(100) % 2 == 0)
    X4, y = X4[keep], y[keep]
    X_res, y_res = tiny_sampler().fit_resample(X4, y)
    assert X_res.shape[1:] == (1, 8, 8) and X_res.dtype == X4.dtype
    assert 0 <= X_res.min() and X_res.max() <= 16 + 1e-5
    flat = X4.reshape(len(X4), -1)
    sampler = tiny_sampler(image_shape=(8, 8))
    X_flat, y_flat = sampler.fit_resample(flat, y)
    assert X_flat.shape[1] == 64 and sampler.image_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(y_flat, y_res)


def test_bad_input(imbalanced_xy):
    X, y = imbalanced_xy
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(InvalidDataError, match="NaN"):
        tiny_sampler().fit_resample(bad, y)
    with pytest.raises(ShapeMismatchError, match="image_shape"):
        tiny_sampler(image_shape=(2, 2)).fit_resample(X, y)
    with pytest.raises(InvalidParameterError, match="image_shape"):
        tiny_sampler(image_shape=(1, 2, 3, 1)).fit_resample(np.zeros((6, 6)), [0, 1] * 3)
    with pytest.raises(InvalidParameterError, match="unknown generator"):
        GenerativeOverSampler("no-such-model").fit_resample(X, y)
    with pytest.raises(ValueError, match="generator"):
        GenerativeOverSampler(object()).fit_resample(X, y)
    with pytest.raises(ValueError, match="class"):
        tiny_sampler().fit_resample(X, np.zeros(len(X)))
    with pytest.raises(ShapeMismatchError):
        tiny_sampler().fit_resample(np.zeros((4, 2, 2, 2, 2)), [0, 1, 0, 1])


def test_feature_range_bounds_the_new_rows_and_clips_the_data(imbalanced_xy):
    X, y = imbalanced_xy
    sampler = tiny_sampler(feature_range=(-1.0, 1.0))
    with pytest.warns(UserWarning, match="outside feature_range"):
        X_res, _ = sampler.fit_resample(X, y)
    new = X_res[len(X) :]
    assert np.all(new >= -1.0) and np.all(new <= 1.0)
    assert [float(v) for v in sampler.feature_range_] == [-1.0, 1.0]
    # One bound per feature works too; data within the bounds is not clipped.
    low, high = X.min(0) - 1, X.max(0) + 1
    per_feature = tiny_sampler(feature_range=(low, high))
    new = per_feature.fit_resample(X, y)[0][len(X) :]
    assert np.all(new >= low) and np.all(new <= high)
    np.testing.assert_array_equal(per_feature.feature_range_[0], low)
    np.testing.assert_array_equal(per_feature.feature_range_[1], high)


@pytest.mark.parametrize("bounds", [(1, 0), (0, np.inf), (0, 1, 2), ([0, 0], [1, 1]), ("a", "b")])
def test_bad_feature_range_is_refused(imbalanced_xy, bounds):
    X, y = imbalanced_xy
    with pytest.raises(InvalidParameterError, match="feature_range must be"):
        tiny_sampler(feature_range=bounds).fit_resample(X, y)
