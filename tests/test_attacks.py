"""Membership attacks: a generator that memorises is caught by every attack, a private one and
fresh real data are not, and the low-FPR reporting is computed as Carlini et al. read it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.neighbors import KernelDensity

import synthaug
from synthaug.data import ImageDataset
from synthaug.errors import InvalidDataError, InvalidParameterError
from synthaug.generators import CGAN, CVAE, PerClass
from synthaug.metrics import _attacks as attacks_module
from synthaug.metrics import membership_attacks, tpr_at_fpr
from synthaug.metrics._attacks import _kde_log_density, _loo_bandwidth, _split_candidates

# A CVAE that memorises its 20 training images: 1,000 full-batch epochs.
MEMORISE = {"epochs": 1000, "batch_size": 20, "latent_dim": 8, "hidden_dims": (128,), "lr": 3e-3}


def pick(data: ImageDataset, n_train: int, n_holdout: int) -> tuple[ImageDataset, ImageDataset]:
    """Disjoint stratified ``(train, holdout)`` of about these sizes, drawn from all of ``data``."""
    _, part = data.split((n_train + n_holdout) / len(data), seed=0)
    return part.split(n_holdout / (n_train + n_holdout), seed=0)


def samples(model, train: ImageDataset, per_record: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = model.sample(
        len(train) * per_record, y=train.labels.repeat(per_record), seed=0
    )
    return images.cpu(), labels.cpu()


@pytest.fixture(scope="module")
def twenty(digits):
    """20 training digits (2 per class) and 200 unseen ones."""
    return pick(digits, 20, 200)


@pytest.fixture(scope="module")
def memoriser(twenty, device):
    train, _ = twenty
    model = CVAE(**MEMORISE, verbose=False, device=device, seed=0).fit(train)
    return model, samples(model, train, 10)


def aucs(out: dict) -> dict[str, float]:
    return {k: v["auc"] for k, v in out["attacks"].items() if "auc" in v}


# -- reporting ------------------------------------------------------------------------------------
def test_tpr_at_fpr_on_a_hand_made_example():
    # 200 non-members scored 0..199; of 100 members, 30 above every non-member, 20 between
    # the two highest non-members (198, 199) and the third (197), 5 tied with the highest.
    non = np.arange(200.0)
    members = np.r_[[300.0] * 30, [198.5] * 20, [199.0] * 5, [0.5] * 45]
    y = np.r_[np.ones(100), np.zeros(200)]
    s = np.r_[members, non]
    # At most 1% (2) non-members may pass: threshold 198 passes 30 + 20 + 5 members.
    assert tpr_at_fpr(y, s, 0.01) == pytest.approx(0.55)
    # No false positive: only the 30 above 199 (the 5 tied at 199 pass with a non-member).
    assert tpr_at_fpr(y, s, 0.0) == pytest.approx(0.30)
    assert tpr_at_fpr(y, s, 0.001) == pytest.approx(0.30)  # under 1/200: zero false positives
    assert tpr_at_fpr(y, s, 1.0) == 1.0


@pytest.mark.parametrize(
    "y, s, fpr, error",
    [
        ([1, 0], [0.5, 0.1], 1.5, InvalidParameterError),
        ([1, 0], [0.5, 0.1], "1%", InvalidParameterError),
        ([1, 1], [0.5, 0.1], 0.01, InvalidDataError),
        ([1, 0, 1], [0.5, 0.1], 0.01, InvalidDataError),
    ],
)
def test_tpr_at_fpr_bad_input(y, s, fpr, error):
    with pytest.raises(error):
        tpr_at_fpr(y, s, fpr)


def test_candidates_are_balanced_and_the_reference_disjoint():
    members, non, ref = _split_candidates(50, 30, 0.5, None, seed=3)
    assert len(members) == len(non) == 15 and len(ref) == 15
    assert not set(non) & set(ref) and set(non) | set(ref) <= set(range(30))
    assert len(set(members)) == 15 and max(members) < 50
    members, non, ref = _split_candidates(50, 30, 0.5, 4, seed=3)
    assert len(members) == len(non) == 4 and len(ref) == 15


def test_copies_are_caught_and_tpr_needs_enough_non_members(digits):
    train, rest = digits.split(2 / 3, seed=0)
    _, holdout = rest.split(0.5, seed=0)  # 599 records: 300 reference, 299 non-members
    out = membership_attacks(train, train, holdout, seed=0)
    assert out["n_members"] == out["n_nonmembers"] == 299 and out["n_reference"] == 300
    d = out["attacks"]["distance"]
    # Copies sit at distance 0 from members: every member above every non-member.
    assert d["auc"] == 1.0 and d["tpr_at_1fpr"] == 1.0 and d["calibrated_tpr_at_1fpr"] == 1.0
    assert math.isnan(d["tpr_at_0.1fpr"])  # 299 non-members cannot resolve 0.1%
    assert out["strongest"]["attack"] == "distance"
    assert out["attacks"]["likelihood"] == {"access": "white-box", "skipped": "no model given"}
    assert out["auc_null_sd"] == pytest.approx(math.sqrt(599 / (12 * 299**2)))


# -- sanity: who is caught -----------------------------------------------------------------------
def test_a_memorising_cvae_is_caught_by_every_attack(twenty, memoriser):
    # Measured (seeds 0-2, CPU): distance 1.000, likelihood 0.997-1.000, density_ratio 1.000.
    train, holdout = twenty
    model, synthetic = memoriser
    out = membership_attacks(train, synthetic, holdout, model=model, seed=0)
    assert out["n_members"] == 20 and out["n_reference"] == 100
    assert all(auc > 0.9 for auc in aucs(out).values()), aucs(out)
    assert set(aucs(out)) == {"distance", "likelihood", "density_ratio"}
    # 20 non-members: the ROC curve does not reach 1% false positives ...
    assert math.isnan(out["strongest"]["tpr_at_1fpr"])
    # ... but a threshold set on the 100 reference records flags most members.
    assert out["attacks"][out["strongest"]["attack"]]["calibrated_tpr_at_1fpr"] >= 0.8


def test_a_memorising_perclass_cvae_is_caught_white_box(twenty, device):
    # Measured (seeds 0-2): likelihood 0.995-1.000, distance 1.000, density_ratio 0.962-1.000.
    train, holdout = twenty
    estimator = CVAE(**{**MEMORISE, "epochs": 100, "batch_size": 2}, verbose=False, device=device)
    model = PerClass(estimator).fit(train)
    out = membership_attacks(train, samples(model, train, 10), holdout, model=model, seed=0)
    assert out["attacks"]["likelihood"]["auc"] > 0.9
    assert all(auc > 0.9 for auc in aucs(out).values()), aucs(out)


def test_a_dp_cvae_is_not_caught_and_figures_are_seeded(digits, device):
    pytest.importorskip("opacus")
    # Measured (seeds 0-3, CPU): every AUC 0.474-0.514; 200 + 200 candidates, null sd 0.029.
    train, holdout = pick(digits, 200, 400)
    model = CVAE(
        **{**MEMORISE, "epochs": 30, "batch_size": 50},
        dp=synthaug.DP(epsilon=1.0),
        verbose=False,
        device=device,
        seed=0,
    ).fit(train)
    synthetic = samples(model, train, 1)
    out = membership_attacks(train, synthetic, holdout, model=model, seed=0)
    assert out["n_members"] == 200
    assert out["strongest"]["auc"] < 0.6, aucs(out)
    assert set(aucs(out)) == {"distance", "likelihood", "density_ratio"}
    # TPR at 1% FPR near 1% by chance (200 non-members: one point per 0.5%).
    assert out["strongest"]["tpr_at_1fpr"] < 0.1
    again = membership_attacks(train, synthetic, holdout, model=model, seed=0)
    assert json.dumps(again, sort_keys=True) == json.dumps(out, sort_keys=True)
    other = membership_attacks(train, synthetic, holdout, model=model, seed=1)
    assert aucs(other) != aucs(out)


def test_fresh_real_data_as_synthetic_gives_chance(digits):
    # Measured (seeds 0-3): distance 0.500-0.544, density_ratio 0.492-0.528; null sd 0.024.
    train, rest = digits.split(2 / 3, seed=0)
    fresh, holdout = rest.split(0.5, seed=0)
    out = membership_attacks(train, fresh, holdout, seed=0)
    assert abs(out["attacks"]["distance"]["auc"] - 0.5) < 0.1
    assert abs(out["attacks"]["density_ratio"]["auc"] - 0.5) < 0.1


def test_likelihood_is_skipped_for_gans_with_the_reason(twenty, device):
    train, holdout = twenty
    for model, words in [
        (CGAN(epochs=1, verbose=False, device=device), "CGAN has no per-sample likelihood"),
        (PerClass(CGAN(epochs=1, verbose=False, device=device)), "PerClass of CGAN"),
    ]:
        model.fit(train)
        out = membership_attacks(train, samples(model, train, 2), holdout, model=model)
        assert words in out["attacks"]["likelihood"]["skipped"]
        assert out["strongest"]["attack"] in ("distance", "density_ratio")


# -- the density estimate ------------------------------------------------------------------------
def test_kde_matches_scikit_learn():
    g = torch.Generator().manual_seed(0)
    points, query = (
        torch.randn(50, 3, generator=g).double(),
        torch.randn(7, 3, generator=g).double(),
    )
    ours = _kde_log_density(query, points, 0.3**2).numpy()
    theirs = KernelDensity(bandwidth=0.3).fit(points.numpy()).score_samples(query.numpy())
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    loo = _kde_log_density(points, points, 0.3**2, exclude_self=True).numpy()
    for i in (0, 17):
        rest = np.delete(points.numpy(), i, axis=0)
        want = KernelDensity(bandwidth=0.3).fit(rest).score_samples(points.numpy()[i : i + 1])
        assert loo[i] == pytest.approx(want[0], rel=1e-10)


def test_loo_bandwidth_narrows_for_samples_crowding_round_few_points():
    g = torch.Generator().manual_seed(0)
    blob = torch.randn(200, 4, generator=g).double()
    centres = torch.randn(20, 4, generator=g).double()
    crowd = centres.repeat(10, 1) + 0.01 * torch.randn(200, 4, generator=g).double()
    assert _loo_bandwidth(crowd) < _loo_bandwidth(blob) / 10


def test_density_ratio_fits_its_components_on_a_bounded_number_of_records(digits, monkeypatch):
    svd, shapes = torch.linalg.svd, []

    def recording_svd(a, *args, **kwargs):
        shapes.append(tuple(a.shape))
        return svd(a, *args, **kwargs)

    monkeypatch.setattr(attacks_module, "_PCA_ROWS", 100)
    monkeypatch.setattr(torch.linalg, "svd", recording_svd)
    train, holdout = digits.split(0.5, seed=0)
    out = membership_attacks(train, train, holdout, seed=0)
    assert shapes == [(100, 64)]  # not the 898 + 450 synthetic and reference records
    assert out["attacks"]["density_ratio"]["auc"] > 0.6  # copies are still found


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"mia_k": 0}, "mia_k"),
        ({"density_dims": 0}, "density_dims"),
        ({"elbo_samples": True}, "elbo_samples"),
        ({"reference_fraction": 1.0}, "reference_fraction"),
        ({"max_candidates": 0}, "max_candidates"),
        ({"mia_k": 500}, "exceeds"),
    ],
)
def test_bad_parameters_say_what_to_fix(twenty, kwargs, words):
    train, holdout = twenty
    with pytest.raises(InvalidParameterError, match=words):
        membership_attacks(train, train, holdout, **kwargs)


def test_bad_data_says_what_to_fix(twenty, memoriser):
    train, holdout = twenty
    model, synthetic = memoriser
    with pytest.raises(InvalidDataError, match="at least 4"):
        membership_attacks(train, train, holdout.subset(np.arange(3)))
    # The white-box attack scores each record with its label: bare images are refused.
    with pytest.raises(InvalidDataError, match="needs labels"):
        membership_attacks(train.images, synthetic[0], holdout.images, model=model)
