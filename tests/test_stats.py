import doctest
import math

import numpy as np
import pytest
from scipy import stats

from synthaug.errors import InvalidParameterError
from synthaug.metrics import _stats, corrected_t, holm, win_tie_loss

DIFF = [0.01, 0.03, 0.02, 0.04, 0.00]


def test_docstring_examples_run():
    result = doctest.testmod(_stats)
    assert result.attempted > 0 and result.failed == 0


def test_corrected_t_by_hand():
    d = np.array(DIFF)
    k = 5
    mean = 0.02
    s2 = ((d - mean) ** 2).sum() / (k - 1)  # (1 + 1 + 0 + 4 + 4) * 1e-4 / 4 = 2.5e-4
    assert s2 == pytest.approx(2.5e-4)
    r = 0.4 / (1 - 0.4)  # n_test / n_train
    se = math.sqrt(s2 * (1 / k + r))  # sqrt(2.5e-4 * 13/15)
    t = mean / se
    half = stats.t.ppf(0.975, k - 1) * se
    p = 2 * stats.t.sf(t, k - 1)

    m, h, pv = corrected_t(DIFF, test_fraction=0.4)
    assert m == pytest.approx(mean)
    assert h == pytest.approx(half, rel=1e-12)
    assert pv == pytest.approx(p, rel=1e-12)
    # Literal values, the p also from the closed-form CDF of Student's t with 4 degrees of
    # freedom, so this does not rest on scipy alone: p = 1 - x (3 - x^2) / 2, x = t / sqrt(t^2 + 4).
    x = t / math.sqrt(t**2 + 4)
    assert pv == pytest.approx(1 - x * (3 - x**2) / 2, rel=1e-12)
    assert t == pytest.approx(1.358732, rel=1e-6)
    assert h == pytest.approx(0.0408682, rel=1e-5)
    assert pv == pytest.approx(0.245802, rel=1e-5)


def test_corrected_interval_is_wider_by_the_variance_factor():
    k, r = len(DIFF), 0.4 / 0.6
    _, plain, _ = corrected_t(DIFF)
    _, corrected, _ = corrected_t(DIFF, test_fraction=0.4)
    assert corrected / plain == pytest.approx(math.sqrt((1 / k + r) / (1 / k)), rel=1e-12)


@pytest.mark.parametrize("diff", [DIFF, [0.3, -0.1, 0.25, 0.05, 0.12, -0.02, 0.4]])
def test_plain_t_matches_scipy(diff):
    m, h, p = corrected_t(diff, level=0.9)
    assert m == pytest.approx(np.mean(diff))
    assert p == pytest.approx(stats.ttest_1samp(diff, 0.0).pvalue, rel=1e-10)
    lo, hi = stats.t.interval(0.9, len(diff) - 1, loc=np.mean(diff), scale=stats.sem(diff))
    assert h == pytest.approx((hi - lo) / 2, rel=1e-10)


def test_corrected_t_edge_cases():
    m, h, p = corrected_t([0.05])
    assert m == 0.05 and math.isnan(h) and math.isnan(p)
    assert all(math.isnan(v) for v in corrected_t([]))
    assert corrected_t([0.0, 0.0, 0.0], test_fraction=0.4) == (0.0, 0.0, 1.0)
    # 0.1 is not exact in binary; the check for equal values must not depend on std() being 0.
    m, h, p = corrected_t([0.1, 0.1, 0.1])
    assert m == pytest.approx(0.1) and h == 0.0 and p == 0.0
    # NaN values are left out.
    assert corrected_t([*DIFF, math.nan], 0.4) == corrected_t(DIFF, 0.4)


@pytest.mark.parametrize("bad", [0, 1, -0.2, 1.5, math.nan])
def test_corrected_t_rejects_a_bad_test_fraction(bad):
    with pytest.raises(InvalidParameterError, match="test_fraction must be strictly between"):
        corrected_t(DIFF, test_fraction=bad)


def test_corrected_t_rejects_a_bad_level():
    with pytest.raises(InvalidParameterError, match="level"):
        corrected_t(DIFF, level=95)


def test_holm_by_hand():
    # Sorted: 0.005, 0.01, 0.03, 0.04 -> times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04;
    # running max 0.02, 0.03, 0.06, 0.06; back in input order:
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_follows_its_definition_term_by_term():
    p = np.random.default_rng(2).uniform(0, 0.1, size=9)
    srt = np.sort(p)
    m = len(p)
    expected_sorted = [
        max(min(1.0, (m - j) * srt[j]) for j in range(i + 1)) for i in range(m)
    ]  # j is 0-based here, so (m - j) is the (m - j + 1) of the 1-based formula
    np.testing.assert_allclose(holm(p)[np.argsort(p)], expected_sorted, rtol=1e-12)


def test_holm_ignores_nan():
    adjusted = holm([0.01, math.nan, 0.04, 0.03, 0.005])
    assert math.isnan(adjusted[1])
    # m = 4, not 5: the same as without the NaN.
    np.testing.assert_allclose(adjusted[[0, 2, 3, 4]], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(holm([math.nan, math.nan])).all()
    assert holm([]).shape == (0,)


def test_holm_is_monotone_capped_and_not_below_the_raw_p():
    p = np.random.default_rng(1).uniform(0, 0.5, size=20)
    adjusted = holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= p) and np.all(adjusted <= 1)
    assert adjusted.max() == 1.0  # 20 * p for the middle values is well above 1
    np.testing.assert_array_equal(holm([1.0, 1.0, 1.0]), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(holm([0.2, 0.2]), [0.4, 0.4])  # ties get the same value


def test_holm_rejects_values_that_are_not_p_values():
    with pytest.raises(InvalidParameterError, match=r"\[0, 1\]"):
        holm([0.5, 1.2])
    with pytest.raises(InvalidParameterError, match="one-dimensional"):
        holm([[0.1, 0.2]])


def test_win_tie_loss_counts():
    assert win_tie_loss([0.02, 0.0, -0.01, 0.005, -0.003]) == (2, 1, 2)
    assert win_tie_loss([0.02, 0.0, -0.01, 0.005, -0.003], tol=0.005) == (1, 3, 1)
    assert win_tie_loss([0.1, math.nan, -0.1]) == (1, 0, 1)
    assert win_tie_loss([]) == (0, 0, 0)
    wins, ties, losses = win_tie_loss(np.array([1.0, -2.0]))
    assert type(wins) is int and type(losses) is int
    with pytest.raises(InvalidParameterError, match="tol"):
        win_tie_loss([0.1], tol=-0.01)
