"""CVAE.reconstruct and CVAE.negative_elbo: the scoring API the anomaly detectors build on."""

import pytest
import torch

from synthaug.errors import (
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
    UnknownClassError,
)
from synthaug.generators import CVAE


@pytest.fixture(scope="module")
def fitted(small_digits):
    return CVAE(epochs=15, latent_dim=8, hidden_dims=(128,), verbose=False, seed=0).fit(
        small_digits
    )


def test_reconstruct_shape_range_and_determinism(fitted, small_digits):
    x, y = small_digits.images[:37], small_digits.labels[:37]
    rec = fitted.reconstruct(x, y)
    assert rec.shape == x.shape and rec.dtype == torch.float32 and rec.device.type == "cpu"
    assert 0 <= float(rec.min()) and float(rec.max()) <= 1
    assert torch.equal(rec, fitted.reconstruct(x, y))
    # a trained model reconstructs real digits better than the mean image does
    err = (rec - x).pow(2).mean()
    baseline = (small_digits.images.mean(0, keepdim=True) - x).pow(2).mean()
    assert err < baseline


def test_negative_elbo_per_sample_and_seeded(fitted, small_digits):
    x, y = small_digits.images[:40], small_digits.labels[:40]
    scores = fitted.negative_elbo(x, y)
    assert scores.shape == (40,) and torch.isfinite(scores).all()
    assert torch.equal(scores, fitted.negative_elbo(x, y, seed=0))
    assert not torch.equal(scores, fitted.negative_elbo(x, y, seed=1))
    many = fitted.negative_elbo(x, y, n_samples=8)
    assert many.shape == (40,)


def test_negative_elbo_ranks_noise_above_real_digits(fitted, small_digits):
    x, y = small_digits.images[:50], small_digits.labels[:50]
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    assert fitted.negative_elbo(noise, y).mean() > fitted.negative_elbo(x, y).mean()


def test_scoring_bad_input(fitted, small_digits):
    x, y = small_digits.images[:4], small_digits.labels[:4]
    with pytest.raises(NotFittedError):
        CVAE().reconstruct(x, y)
    with pytest.raises(ShapeMismatchError):
        fitted.reconstruct(torch.rand(4, 1, 4, 4), y)
    with pytest.raises(ShapeMismatchError):
        fitted.negative_elbo(x, y[:3])
    with pytest.raises(UnknownClassError):
        fitted.negative_elbo(x, torch.tensor([0, 1, 2, 42]))
    with pytest.raises(InvalidDataError):
        fitted.reconstruct(torch.full_like(x, float("nan")), y)
    with pytest.raises(InvalidParameterError):
        fitted.negative_elbo(x, y, n_samples=0)
