"""What a private model releases besides its DP-SGD weights: scaling bounds and class counts.

Each must come from public knowledge or from a noised release the reported epsilon counts.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

import synthaug
from synthaug._params import configure
from synthaug.augment import GenerativeOverSampler
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError, SynthaugWarning
from synthaug.generators import CVAE, PerClass, create_generator
from synthaug.nn import poisson_schedule

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


# -- class counts ------------------------------------------------------------------------------
EXACT = {0: 37, 1: 53}  # distinctive counts, searched for in the saved file
BATCH = 8


@pytest.fixture
def counted() -> ImageDataset:
    """90 random 4-feature rows: 37 of class "a", 53 of class "b"."""
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0] * EXACT[0] + [1] * EXACT[1])
    return ImageDataset(torch.rand(len(labels), 4, generator=g), labels, ["a", "b"])


def private_model(name: str, device: str, seed: int = 0, epsilon: float = 4.0):
    model = create_generator(name)
    assert not configure(
        model,
        epochs=2,
        batch_size=BATCH,
        hidden_dims=(16,),
        latent_dim=2,
        verbose=False,
        device=device,
        seed=seed,
        dp=synthaug.DP(epsilon=epsilon),
    )
    return model


def header_numbers(path) -> list[float]:
    """Every number in a model file's JSON header, the JSON held in its strings included."""
    raw = path.read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    found: list[float] = []

    def walk(value) -> None:
        if isinstance(value, str):
            try:
                decoded = json.loads(value)
            except json.JSONDecodeError:
                return
            if isinstance(decoded, (dict, list)):
                walk(decoded)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found.append(value)

    walk(header["__metadata__"])
    return found


@pytest.mark.parametrize("name", ["cvae", "cgan", "perclass-vae"])
def test_a_private_model_file_holds_no_exact_class_count(name, counted, device, tmp_path):
    model = private_model(name, device).fit(counted)
    assert model.class_counts_[0] != EXACT[0] and model.class_counts_[1] != EXACT[1]
    path = model.save(tmp_path / "dp")
    numbers = header_numbers(path)
    assert len(numbers) > 20  # the walk reached the fitted state and the privacy record
    exact = [*EXACT.values(), sum(EXACT.values())]
    assert not set(numbers) & set(exact)
    # Nor any sampling rate computed from an exact count (the schedule's leak).
    for n in exact:
        assert not any(math.isclose(v, BATCH / n) for v in numbers if isinstance(v, float))
    loaded = synthaug.load(path, device=device)
    assert loaded.class_counts_ == model.class_counts_


def test_the_count_release_is_accounted_within_the_budget(counted, device):
    model = private_model("cvae", device, epsilon=2.0).fit(counted)
    record = model.privacy_
    assert record["counts"]["noise_multiplier"] > 0
    epsilon, delta = model.privacy_spent_
    training_alone = _rdp_epsilon(
        [(record["noise_multiplier"], record["sample_rate"], record["steps"])], delta
    )
    counts_alone = _rdp_epsilon([(record["counts"]["noise_multiplier"], 1.0, 1)], delta)
    assert training_alone < epsilon <= 2.0
    assert counts_alone == pytest.approx(0.1 * 2.0, rel=0.01)  # calibrated to 10% alone
    # The schedule follows the released total.
    assert record["sample_rate"] == poisson_schedule(sum(model.class_counts_.values()), BATCH)[0]


def _rdp_epsilon(history, delta: float) -> float:
    """Epsilon from Opacus' RDP accountant, on the orders synthaug uses."""
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    acc.history = history
    alphas = [1 + x / 4 for x in range(1, 40)] + [*range(11, 64), 80, 128, 256, 512]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        return acc.get_epsilon(delta=delta, alphas=alphas)


def test_private_training_runs_the_schedule_of_the_released_count(counted, device):
    # The steps taken are the steps accounted: the loop's schedule follows the released total.
    steps: list[int] = []
    model = private_model("cvae", device)
    step = model._train_step

    def counted_step(x, y, ctx):
        steps.append(len(x))
        return step(x, y, ctx)

    model._train_step = counted_step
    model.fit(counted)
    released = sum(model.class_counts_.values())
    assert released != len(counted)
    rate, per_epoch = poisson_schedule(released, BATCH)
    assert len(steps) == model.privacy_["steps"] == 2 * per_epoch
    assert model.privacy_["sample_rate"] == rate


def test_same_seed_same_noisy_counts(counted, device):
    a = private_model("cvae", device, seed=3).fit(counted)
    b = private_model("cvae", device, seed=3).fit(counted)
    c = private_model("cvae", device, seed=4).fit(counted)
    assert a.class_counts_ == b.class_counts_ and a.privacy_spent_ == b.privacy_spent_
    assert c.class_counts_ != a.class_counts_
    # Without dp the counts are exact, as before.
    plain = create_generator("cvae", epochs=1, verbose=False, device=device).fit(counted)
    assert plain.class_counts_ == EXACT


def test_per_class_schedules_follow_the_released_counts(counted, device):
    model = private_model("perclass-vae", device, epsilon=3.0).fit(counted)
    for label, member in model.members_.items():
        released = model.class_counts_[label]
        assert member.class_counts_ == {0: released}
        rate, steps = poisson_schedule(released, BATCH)
        assert member.privacy_["sample_rate"] == rate
        assert member.privacy_["steps"] == 2 * steps
        assert member.privacy_["counts"] == model.privacy_["counts"]
        assert member.privacy_spent_[0] <= 3.0
    assert model.privacy_spent_[0] == max(e for e, _ in model.privacy_per_class_.values())


def test_a_private_per_class_model_fitted_without_a_seed_keeps_none(counted, device, tmp_path):
    # Member seeds are a function of the run's seed, which drew the count noise: a saved one
    # would let any reader regenerate that noise and subtract it.
    model = private_model("perclass-vae", device, seed=None).fit(counted)
    loaded = synthaug.load(model.save(tmp_path / "fresh"), device=device)
    assert loaded.estimator.seed is None
    assert [m.seed for m in loaded.members_.values()] == [None, None]
    assert loaded.class_counts_ == model.class_counts_
    # A given seed is kept, for reproducible research.
    seeded = private_model("perclass-vae", device, seed=5).fit(counted)
    reloaded = synthaug.load(seeded.save(tmp_path / "seeded"), device=device)
    assert [m.seed for m in reloaded.members_.values()] == [
        m.seed for m in seeded.members_.values()
    ]
    assert None not in [m.seed for m in reloaded.members_.values()]
