"""DP-MERF: the random features, the one Gaussian release and its accounting, training on the
release alone, the privacy record as files, ``synthaug info`` and the CLI show it, bad input.

The generator contract (shapes, seeds, keyed sampling, save/load, bad input) is the registry's
suites' (``test_generators.py``, ``test_privacy.py``, ``test_keyed_sampling.py``...), which
run on ``dp-merf`` as on every family.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

import synthaug
from synthaug.cli import main
from synthaug.data import ImageDataset
from synthaug.errors import CheckpointError, InvalidParameterError
from synthaug.generators import CVAE, DPMERF, create_generator
from synthaug.nn import (
    RandomFourierFeatures,
    class_feature_sums,
    gaussian_epsilon,
    gaussian_noise_multiplier,
    mean_embedding_loss,
    release_embedding,
)

pytest.importorskip("opacus")  # the class count release is calibrated by Opacus' accountant

TINY = {"epochs": 2, "batch_size": 16, "hidden_dims": (16,), "latent_dim": 4, "verbose": False}


def tiny(device: str, **params) -> DPMERF:
    return DPMERF(**{**TINY, "n_features": 200, "device": device, **params})


def analytic_delta(epsilon: float, mu: float) -> float:
    """Balle & Wang (ICML 2018), Theorem 8, written out again here with scipy's normal."""
    return norm.cdf(-epsilon / mu + mu / 2) - math.exp(epsilon) * norm.cdf(-epsilon / mu - mu / 2)


# -- the features and the sensitivity --------------------------------------------------------
def test_every_feature_vector_has_norm_one_so_one_record_moves_the_sums_by_one():
    phi = RandomFourierFeatures(64, 300)
    phi.draw(bandwidth=3.0, seed=1)
    x = torch.cat([torch.rand(50, 64), torch.zeros(1, 64), torch.ones(1, 64) * 1e3])
    assert torch.allclose(phi(x).norm(dim=1), torch.ones(len(x)), atol=1e-5)
    y = torch.arange(len(x)) % 3
    with_all = class_feature_sums(phi, x, y, 3)
    without_last = class_feature_sums(phi, x[:-1], y[:-1], 3)
    assert float((with_all - without_last).norm()) == pytest.approx(1.0, abs=1e-5)


def test_the_features_approximate_the_gaussian_kernel():
    phi = RandomFourierFeatures(8, 20000)
    phi.draw(bandwidth=2.0, seed=0)
    x = torch.rand(6, 8)
    kernel = torch.exp(-torch.cdist(x, x).pow(2) / (2 * 2.0**2))
    f = phi(x)
    assert torch.allclose(f @ f.T, kernel, atol=0.03)


def test_the_loss_matches_a_direction_and_ignores_the_size():
    phi = RandomFourierFeatures(4, 400)
    phi.draw(bandwidth=1.0, seed=0)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 2
    x = labels[:, None].float() + 0.3 * torch.randn(200, 4, generator=g)
    f = phi(x)
    target = torch.stack([f[labels == c].sum(0) for c in (0, 1)])
    # The class sums at any size (a count the release does not carry): a loss near 0.
    for size in (1.0, 0.01, 50.0):
        assert 0 <= float(mean_embedding_loss(size * target, f, labels)) < 0.01
    # The classes' targets swapped: far from it.
    assert float(mean_embedding_loss(target.flip(0), f, labels)) > 0.5
    # A class with one sample in the batch still counts (without the unbiased estimate).
    one = mean_embedding_loss(target, f[:3], labels[:3])
    assert 0 <= float(one) <= 1


# -- the mechanism and its accounting --------------------------------------------------------
@pytest.mark.parametrize("epsilon, delta", [(0.2, 1e-5), (1.0, 1e-5), (10.0, 1e-6)])
def test_noise_scale_is_the_analytic_gaussian_of_the_composition(
    tiny_images, device, epsilon, delta
):
    model = tiny(device, dp=synthaug.DP(epsilon=epsilon, delta=delta)).fit(tiny_images)
    record = model.privacy_
    sigma, sigma_c = record["noise_multiplier"], record["counts"]["noise_multiplier"]
    mu = math.sqrt(1 / sigma**2 + 1 / sigma_c**2)
    # The two releases together sit on the (epsilon, delta) curve of the analytic Gaussian:
    # within the target, and with hardly any slack (1e-6 more noise than the exact solution).
    assert analytic_delta(epsilon, mu) <= delta
    assert analytic_delta(epsilon, mu * (1 + 1e-4)) > delta
    assert record["epsilon"] <= epsilon and record["epsilon"] == pytest.approx(epsilon, rel=1e-5)
    assert model.privacy_spent_ == (record["epsilon"], delta)


def test_known_values_of_the_calibration():
    # One Gaussian release alone at (1, 1e-5): 3.73 (Balle & Wang's analytic calibration;
    # the classical sqrt(2 ln(1.25 / delta)) / epsilon would be 4.84).
    assert gaussian_noise_multiplier(1.0, 1e-5) == pytest.approx(3.7306, abs=1e-3)
    # With the count release (34 at epsilon 1): slightly more noise for the embedding.
    assert gaussian_noise_multiplier(1.0, 1e-5, (34.0,)) == pytest.approx(3.7533, abs=1e-3)
    assert gaussian_epsilon(1 / 3.7306, 1e-5) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="whole budget"):
        gaussian_noise_multiplier(1.0, 1e-5, (3.0,))


def test_the_released_embedding_is_the_exact_sums_plus_noise_of_that_scale(tiny_images, device):
    model = tiny(device, n_features=1000, dp=synthaug.DP(epsilon=1.0)).fit(tiny_images)
    features = model.modules_["features"]
    exact = class_feature_sums(features, tiny_images.images, tiny_images.labels, 3)
    noise = (model.embedding_ - exact).flatten()
    sigma = model.privacy_["noise_multiplier"]
    assert float(noise.std()) == pytest.approx(sigma, rel=0.05)  # 3,000 draws
    assert abs(float(noise.mean())) < 4 * sigma / math.sqrt(len(noise))
    # Without dp the embedding is exact and nothing is recorded as private.
    plain = tiny(device, n_features=1000).fit(tiny_images)
    assert torch.allclose(plain.embedding_, exact)
    assert not hasattr(plain, "privacy_") and not hasattr(plain, "privacy_spent_")


def test_same_seed_same_release_and_another_seed_another(tiny_images, device):
    dp = synthaug.DP(epsilon=2.0)
    a = tiny(device, dp=dp, seed=4).fit(tiny_images)
    b = tiny(device, dp=dp, seed=4).fit(tiny_images)
    c = tiny(device, dp=dp, seed=5).fit(tiny_images)
    assert torch.equal(a.embedding_, b.embedding_)
    assert not torch.equal(a.embedding_, c.embedding_)
    zeros = torch.zeros(3, 4000, dtype=torch.float64)
    assert float(release_embedding(zeros, 2.5, seed=0).std()) == pytest.approx(2.5, rel=0.03)


# -- the generator sees the release only ------------------------------------------------------
def test_training_on_the_saved_release_gives_the_same_generator(tiny_images, device, tmp_path):
    dp = synthaug.DP(epsilon=3.0)
    fitted = tiny(device, dp=dp, seed=2).fit(tiny_images)
    path = fitted.save(tmp_path / "released")
    loaded = synthaug.load(path, device=device)
    # No data at all: the saved release (features, noisy sums, released counts) is enough
    # to train the very same generator.
    again = tiny(device, dp=dp, seed=2).fit_embedding(loaded)
    for key, value in fitted.modules_.state_dict().items():
        assert torch.equal(again.modules_.state_dict()[key], value), key
    assert again.privacy_ == fitted.privacy_ and again.class_counts_ == fitted.class_counts_
    assert torch.equal(again.sample(5, seed=1)[0], fitted.sample(5, seed=1)[0])
    # More epochs on the same release: another generator, the same guarantee.
    longer = tiny(device, dp=dp, seed=2, epochs=3).fit_embedding(loaded)
    assert len(longer.history_) == 3 and longer.privacy_spent_ == fitted.privacy_spent_


def test_an_interrupted_run_resumes_onto_the_same_release_only(tiny_images, device, tmp_path):
    dp = synthaug.DP(epsilon=2.0)
    full = tiny(device, dp=dp, epochs=4).fit(tiny_images)
    ckpt = {"checkpoint_dir": str(tmp_path / "ckpt"), "checkpoint_every": 1}
    tiny(device, dp=dp, epochs=2, **ckpt).fit(tiny_images)
    resumed = tiny(device, dp=dp, epochs=4, resume=True, **ckpt).fit(tiny_images)
    assert resumed.history_ == full.history_
    for key, value in full.modules_.state_dict().items():
        assert torch.equal(resumed.modules_.state_dict()[key], value), key
    # Other images with the same labels: the same counts, another embedding. Resuming would
    # train towards a release the checkpoint's generator never saw.
    other = ImageDataset(tiny_images.images.flip(0), tiny_images.labels, tiny_images.classes)
    with pytest.raises(CheckpointError, match="another model or dataset"):
        tiny(device, dp=dp, epochs=4, resume=True, **ckpt).fit(other)


# -- files, info, the CLI ---------------------------------------------------------------------
def test_the_privacy_record_survives_save_and_load_and_info_shows_it(
    tiny_images, device, tmp_path, capsys
):
    model = tiny(device, dp=synthaug.DP(epsilon=1.5, delta=1e-6)).fit(tiny_images)
    record = model.privacy_
    assert record["mechanism"] == "mean-embedding" and record["accountant"] == "analytic-gaussian"
    assert record["sensitivity"] == 1.0 and record["steps"] == 1 and record["sample_rate"] == 1.0
    assert record["target"] == synthaug.DP(epsilon=1.5, delta=1e-6).to_dict()
    assert record["counts"]["share_of_epsilon"] == 0.1
    path = model.save(tmp_path / "m", drop_unaccounted=True)
    loaded = synthaug.load(path, device=device)
    assert loaded.privacy_ == record and loaded.privacy_spent_ == model.privacy_spent_
    assert torch.equal(loaded.embedding_, model.embedding_)
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    sigma = f"{record['noise_multiplier']:.3f}"
    assert "one Gaussian release of the class mean embedding, noise " + sigma in out
    assert "analytic-gaussian accountant" in out and "sample rate" not in out


def test_train_command_trains_a_private_dp_merf(small_digits_npz, tmp_path, capsys):
    out = tmp_path / "dp.safetensors"
    argv = ["train", "--data", str(small_digits_npz), "--model", "dp-merf", "--out", str(out)]
    argv += ["--epochs", "1", "--quiet", "--device", "cpu", "--dp-epsilon", "2"]
    assert main(argv) == 0
    assert "private: (2, 1e-05)-DP" in capsys.readouterr().out
    model = synthaug.load(out, device="cpu")
    assert model.seed is None and model.privacy_["mechanism"] == "mean-embedding"
    assert model.privacy_spent_[0] <= 2.0


def test_a_per_class_model_of_dp_merf_members_is_private_per_class(tiny_images, device):
    model = create_generator("perclass", estimator=tiny(device, dp=synthaug.DP(epsilon=2.0)))
    model.fit(tiny_images)
    assert set(model.privacy_per_class_) == {0, 1, 2}
    assert 0 < model.privacy_spent_[0] <= 2.0


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "param, value",
    [
        ("n_features", 0),
        ("n_features", 7),
        ("n_features", 10.0),
        ("n_features", True),
        ("bandwidth", 0.0),
        ("bandwidth", -1.0),
        ("bandwidth", math.nan),
        ("bandwidth", "3"),
    ],
)
def test_bad_parameters_raise_before_any_work(tiny_images, param, value):
    with pytest.raises(InvalidParameterError, match=param):
        DPMERF(**{**TINY, param: value}).fit(tiny_images)


def test_fit_embedding_refuses_what_is_not_a_matching_release(tiny_images, device):
    released = tiny(device).fit(tiny_images)
    with pytest.raises(InvalidParameterError, match="fitted DPMERF.*got CVAE"):
        tiny(device).fit_embedding(CVAE())
    with pytest.raises(InvalidParameterError, match="unfitted DPMERF"):
        tiny(device).fit_embedding(tiny(device))
    with pytest.raises(InvalidParameterError, match="n_features, bandwidth describe the release"):
        tiny(device, n_features=100, bandwidth=2.0).fit_embedding(released)
    with pytest.raises(InvalidParameterError, match="set dp=None"):
        tiny(device, dp=synthaug.DP(epsilon=1.0)).fit_embedding(released)
    with pytest.raises(InvalidParameterError, match="epochs"):
        tiny(device, epochs=0).fit_embedding(released)


def test_a_budget_the_count_release_cannot_meet_is_refused(tiny_images, device):
    model = tiny(device, dp=synthaug.DP(epsilon=0.01))
    with pytest.raises(InvalidParameterError, match="raise epsilon"):
        model.fit(tiny_images)
    assert not model.is_fitted


def test_a_delta_not_below_one_over_n_is_refused(tiny_images, device):
    model = tiny(device, dp=synthaug.DP(epsilon=1.0, delta=0.05))
    with pytest.raises(InvalidParameterError, match="not below 1/n"):
        model.fit(tiny_images)
    assert not model.is_fitted


def test_feature_vectors_train_with_an_mlp(device):
    g = torch.Generator().manual_seed(0)
    data = ImageDataset(torch.rand(40, 5, generator=g), torch.arange(2).repeat(20), ["a", "b"])
    model = tiny(device, dp=synthaug.DP(epsilon=5.0)).fit(data)
    images, labels = model.sample(6, y=[0, 1] * 3, seed=0)
    assert images.shape == (6, 5) and labels.tolist() == [0, 1] * 3
    assert np.isfinite(images.numpy()).all()


def test_compile_with_dp_is_refused_for_dp_sgd_only():
    # Opacus' per-sample hooks need the eager layers; dp-merf trains no record's gradient.
    with pytest.raises(InvalidParameterError, match="compile=True cannot be combined with dp"):
        CVAE(compile=True, dp=synthaug.DP(epsilon=1.0)).check_params()
    DPMERF(compile=True, dp=synthaug.DP(epsilon=1.0)).check_params()
