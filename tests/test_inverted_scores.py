"""Scores below chance: the AUROC's standard error (issue 37)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from synthaug.anomaly import PCADetector, evaluate_one_class
from synthaug.data import load_digits
from synthaug.errors import InvalidParameterError
from synthaug.metrics import auroc_standard_error

# -- the AUROC's standard error ----------------------------------------------------------------


def test_auroc_standard_error_matches_hand_computation():
    # Positives 0.8, 0.3, 0.9 outscore 3, 1 and 3 of the 3 negatives: V10 = 1, 1/3, 1
    # (variance 12/81); negatives 0.1, 0.4, 0.35 are outscored by 3, 2, 2 of the 3
    # positives: V01 = 1, 2/3, 2/3 (variance 3/81). var = (12/81) / 3 + (3/81) / 3.
    y = [0, 0, 0, 1, 1, 1]
    scores = [0.1, 0.4, 0.35, 0.8, 0.3, 0.9]
    assert auroc_standard_error(y, scores) == pytest.approx(math.sqrt(15 / 243))
    # Ties count one half, as in the AUROC: all-equal scores vary not at all.
    assert auroc_standard_error(y, [0.5] * 6) == 0.0
    # Fewer than two samples in a class: no standard error.
    assert math.isnan(auroc_standard_error([0, 0, 1], [0.1, 0.2, 0.3]))


def test_auroc_standard_error_is_the_spread_over_fresh_test_samples():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(60), np.ones(400)].astype(int)
    predicted = auroc_standard_error(y, rng.normal(size=len(y)) + 0.8 * y)
    # 400 fresh test sets of the same scorer; AUROC = (rank sum of positives - m(m+1)/2) / mn.
    fresh = rng.normal(size=(400, len(y))) + 0.8 * y
    ranks = stats.rankdata(fresh, axis=1)[:, y == 1]
    m, n = 400, 60
    observed = ((ranks.sum(1) - m * (m + 1) / 2) / (m * n)).std()
    assert roc_auc_score(y, fresh[0]) == pytest.approx((ranks[0].sum() - m * (m + 1) / 2) / (m * n))
    assert predicted == pytest.approx(observed, rel=0.15)


@pytest.mark.parametrize(
    "y, scores, match",
    [
        ([0, 1, 1], [0.1, 0.2], "one value per sample"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "0 .negative. and 1"),
        ([0, 0, 1, 1], [0.1, float("nan"), 0.3, 0.4], "finite"),
    ],
)
def test_auroc_standard_error_refuses_bad_input(y, scores, match):
    with pytest.raises(InvalidParameterError, match=match):
        auroc_standard_error(y, scores)


def test_one_class_records_carry_the_auroc_standard_error():
    digits = load_digits()
    train, test = digits.split(test_size=0.3, seed=0)
    record = evaluate_one_class(
        PCADetector(n_components=5), train, test, 8, seed=0, per_anomaly_class=True
    )
    eights = train.subset((train.labels == 8).nonzero().flatten())
    scores = PCADetector(n_components=5, seed=0).fit(eights).decision_function(test)
    is_anomaly = (test.labels != 8).numpy().astype(int)
    assert record["se_auroc"] == pytest.approx(auroc_standard_error(is_anomaly, scores))
    assert 0 < record["se_auroc"] < 0.05
    assert [k for k in record if k.startswith("se_auroc[")] == [
        f"se_auroc[{c}]" for c in digits.classes if c != "8"
    ]
