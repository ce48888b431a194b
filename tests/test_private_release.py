"""What a private model releases besides its DP-SGD weights: scaling bounds and class counts.

Each must come from public knowledge or from a noised release the reported epsilon counts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import synthaug
from synthaug.augment import GenerativeOverSampler
from synthaug.errors import InvalidParameterError, SynthaugWarning
from synthaug.generators import CVAE, PerClass

pytest.importorskip("opacus")

TINY = {"epochs": 2, "hidden_dims": (16,), "latent_dim": 2, "batch_size": 64, "verbose": False}


def private_cvae(device: str, epsilon: float = 1.0, **params) -> CVAE:
    return CVAE(**{**TINY, **params}, device=device, dp=synthaug.DP(epsilon=epsilon))


# -- the over-sampler's scaling ----------------------------------------------------------------
def gaussian_rows(outlier: bool) -> tuple[np.ndarray, np.ndarray]:
    """400 standard normal rows (300 of class 0, 100 of class 1), and one row at +-1000."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = np.r_[np.zeros(300, dtype=int), np.ones(100, dtype=int)]
    if outlier:
        X, y = np.vstack([X, [[1000.0, -1000.0]]]), np.r_[y, 1]
    return X, y


def test_private_oversampler_scales_by_public_bounds_so_an_outlier_shows_nothing(device):
    new = {}
    for outlier in (True, False):
        X, y = gaussian_rows(outlier)
        sampler = GenerativeOverSampler(private_cvae(device), feature_range=(-5, 5), random_state=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            X_res, _ = sampler.fit_resample(X, y)
        clipped = [w for w in caught if str(w.message).startswith("X has values outside")]
        assert len(clipped) == outlier  # the outlier row is clipped to the bounds, with a word
        assert sampler.generator_.privacy_spent_[0] <= 1.0
        assert [float(v) for v in sampler.feature_range_] == [-5.0, 5.0]
        new[outlier] = X_res[len(X) :]
    # Scaled by the data's own min/max, every sample sat near +-470 with the outlier row.
    for rows in new.values():
        assert np.all(np.abs(rows) <= 5.0)
    assert np.abs(new[True].mean(0) - new[False].mean(0)).max() < 0.25
    assert np.abs(new[True].std(0) - new[False].std(0)).max() < 0.1


@pytest.mark.parametrize(
    "generator",
    [
        lambda d: private_cvae(d),
        lambda d: PerClass(private_cvae(d)),  # the budget sits on the inner estimator
    ],
    ids=["cvae", "perclass"],
)
def test_private_oversampler_on_features_needs_public_bounds(generator, device):
    X, y = gaussian_rows(outlier=False)
    sampler = GenerativeOverSampler(generator(device), random_state=0)
    with pytest.raises(InvalidParameterError, match=r"feature_range=\(low, high\)"):
        sampler.fit_resample(X, y)
    assert not sampler.generator_.is_fitted


def test_private_oversampler_on_images_uses_their_known_range(small_digits, device):
    X = small_digits.images.numpy()[:120]
    y = small_digits.labels.numpy()[:120] % 2
    X, y = X[(y == 0) | (np.arange(120) % 3 == 0)], y[(y == 0) | (np.arange(120) % 3 == 0)]
    sampler = GenerativeOverSampler(private_cvae(device, epsilon=5.0), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SynthaugWarning)  # in [0, 1]: nothing clipped
        X_res, _ = sampler.fit_resample(X, y)
    assert sampler.feature_range_ == (0.0, 1.0)
    new = X_res[len(X) :]
    assert len(new) > 0 and new.min() >= 0.0 and new.max() <= 1.0
    with pytest.warns(SynthaugWarning, match=r"outside \[0, 1\].*feature_range=\(0, 255\)"):
        GenerativeOverSampler(private_cvae(device, epsilon=5.0), random_state=0).fit_resample(
            X * 255, y
        )
