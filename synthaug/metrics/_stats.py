"""Statistics for repeated runs: confidence intervals and paired tests across seeds.

One module serves the one-class protocol and the benchmark reports alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from synthaug.errors import InvalidParameterError


def mean_ci(
    values: Sequence[float | None], level: float = 0.95, test_fraction: float | None = None
) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of ``values``.

    ``None`` and NaN values are left out; the half-width is NaN for fewer than two values.
    With ``test_fraction`` (results of repeated random splits of one data set, each holding
    out that share for testing) the variance is corrected as in :func:`corrected_t`.

    Examples
    --------
    >>> m, h = mean_ci([0.70, 0.72, 0.74])
    >>> round(m, 3), round(h, 4)
    (0.72, 0.0497)
    """
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) < 2:
        return float(x.mean()), math.nan
    if test_fraction is not None:
        return float(x.mean()), corrected_t(x, test_fraction=test_fraction, level=level)[1]
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


def auroc_standard_error(
    y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> float:
    """Standard error of the AUROC of ``scores`` for binary labels ``y_true`` (1 positive).

    DeLong, DeLong and Clarke-Pearson (Biometrics 44, 1988): the variance of the
    Mann-Whitney AUROC from its placement values, the share of negatives each positive
    outscores and of positives each negative is outscored by (ties count one half). It is the
    spread over test samples drawn again for the same scorer: with ``auroc ± 1.96 * se`` one
    fitted model's AUROC can be told from chance (0.5), but retraining adds a spread of its own
    that only repeated seeds measure.

    Parameters
    ----------
    y_true : sequence of int
        0 (negative) or 1 (positive) per sample.
    scores : sequence of float
        Higher means more positive; finite.

    Returns
    -------
    float
        The standard error; NaN when a class has fewer than two samples.

    Raises
    ------
    InvalidParameterError
        If the lengths differ, a label is not 0 or 1, or a score is not finite.

    Examples
    --------
    >>> round(auroc_standard_error([0, 0, 0, 1, 1, 1], [0.1, 0.4, 0.35, 0.8, 0.3, 0.9]), 4)
    0.2485
    """
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=float).ravel()
    if len(y) != len(s):
        raise InvalidParameterError(
            f"y_true and scores must have one value per sample; got {len(y)} and {len(s)}"
        )
    if not np.isin(y, (0, 1)).all():
        raise InvalidParameterError(
            f"y_true must hold 0 (negative) and 1 (positive) only; got {np.unique(y).tolist()}"
        )
    if not np.isfinite(s).all():
        raise InvalidParameterError("scores must be finite; remove or fix NaN and inf scores")
    pos, neg = s[y == 1], s[y == 0]
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        return math.nan
    # A sample's midrank among all, less its midrank within its class, counts the samples
    # of the other class below it (ties one half).
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    v10 = (ranks[:m] - stats.rankdata(pos)) / n
    v01 = 1 - (ranks[m:] - stats.rankdata(neg)) / m
    return float(math.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n))


def paired_differences(a: Mapping[int, float | None], b: Mapping[int, float | None]) -> np.ndarray:
    """``a[s] - b[s]`` for every seed ``s`` both have a value for, in seed order.

    Rounded to 12 decimals so that equal results give an exact zero difference.
    """
    seeds = sorted(s for s in set(a) & set(b) if a[s] is not None and b[s] is not None)
    return np.round(np.array([a[s] - b[s] for s in seeds], dtype=float), 12)  # type: ignore[operator]


def paired_gain(
    a: Mapping[int, float | None], b: Mapping[int, float | None]
) -> tuple[float, float, int]:
    """Mean of ``a - b`` over the seeds both have, the Wilcoxon signed-rank p-value, pairs used.

    The p-value is two-sided and exact for small samples (Wilcoxon, 1945; scipy's default); it
    is NaN when fewer than two pairs exist or every difference is zero. With ``k`` pairs it
    cannot go below ``2 / 2**k`` (0.0625 for 5 seeds).
    """
    diff = paired_differences(a, b)
    if not len(diff):
        return math.nan, math.nan, 0
    p = math.nan
    if len(diff) >= 2 and np.any(diff != 0):
        p = float(stats.wilcoxon(diff).pvalue)
    return float(diff.mean()), p, len(diff)


def corrected_t(
    diff: Sequence[float] | np.ndarray,
    test_fraction: float | None = None,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Mean of paired differences, half-width of its t interval and the two-sided p of mean 0.

    With ``test_fraction`` the variance of the mean is the corrected resampled t of Nadeau and
    Bengio (2003, "Inference for the generalization error", Machine Learning 52):
    ``s**2 * (1/k + n_test/n_train)`` with ``n_test/n_train = test_fraction / (1 -
    test_fraction)``. Repeated random splits share training data, so their differences are
    correlated and the plain ``s**2 / k`` would make the interval too narrow. Without
    ``test_fraction`` it is the plain paired t. Either way the t has ``k - 1`` degrees of freedom.

    Parameters
    ----------
    diff : sequence of float
        One difference per seed (or per random split), e.g. from :func:`paired_differences`.
        NaN values are left out.
    test_fraction : float in (0, 1), optional
        Share of the data held out for testing in each random split, e.g. 0.4. ``None`` (the
        default) gives the plain paired t, for runs that do not share training data.
    level : float in (0, 1), default 0.95
        Confidence level of the interval.

    Returns
    -------
    mean : float
        Mean of the differences; NaN when there are none.
    half_width : float
        Half-width of the confidence interval; NaN for fewer than two differences, 0 when all
        differences are equal.
    p : float
        Two-sided p-value of the hypothesis that the mean difference is 0; NaN for fewer than
        two differences. When all differences are equal it is 1.0 if they are 0, else 0.0.

    Raises
    ------
    InvalidParameterError
        If ``test_fraction`` or ``level`` is not strictly between 0 and 1.

    Examples
    --------
    >>> m, h, p = corrected_t([0.01, 0.03, 0.02, 0.04, 0.00], test_fraction=0.4)
    >>> round(m, 3), round(h, 4), round(p, 3)
    (0.02, 0.0409, 0.246)
    >>> m, h, p = corrected_t([0.01, 0.03, 0.02, 0.04, 0.00])
    >>> round(h, 4), round(p, 4)
    (0.0196, 0.0474)
    """
    if test_fraction is not None and not 0 < test_fraction < 1:
        raise InvalidParameterError(
            f"test_fraction must be strictly between 0 and 1 (the share of the data held out "
            f"for testing in each split, e.g. 0.4), or None for the plain paired t; "
            f"got {test_fraction!r}"
        )
    if not 0 < level < 1:
        raise InvalidParameterError(
            f"level must be strictly between 0 and 1, e.g. 0.95; got {level!r}"
        )
    d = np.asarray(diff, dtype=float).ravel()
    d = d[~np.isnan(d)]
    k = len(d)
    if k == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if k < 2:
        return mean, math.nan, math.nan
    if np.ptp(d) == 0:
        # Equal values: checked exactly, since d.std() of a constant can come out a few ulps
        # above 0 and turn into a meaningless huge t.
        return mean, 0.0, 1.0 if mean == 0 else 0.0
    factor = 1 / k
    if test_fraction is not None:
        factor += test_fraction / (1 - test_fraction)
    se = math.sqrt(d.var(ddof=1) * factor)
    half = float(stats.t.ppf(0.5 + level / 2, k - 1)) * se
    p = float(2 * stats.t.sf(abs(mean) / se, k - 1))
    return mean, half, p


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values, in the order of ``pvalues``.

    With the ``m`` non-NaN p-values sorted, ``p_(1) <= ... <= p_(m)``, the adjusted value of
    ``p_(i)`` is ``max over j <= i of min(1, (m - j + 1) * p_(j))``: it controls the family-wise
    error rate under any dependence between the tests (S. Holm, "A simple sequentially
    rejective multiple test procedure", Scandinavian Journal of Statistics 6, 1979).

    Parameters
    ----------
    pvalues : sequence of float
        p-values in [0, 1]. NaN entries stay NaN and do not count in ``m``.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, float, same length and order as ``pvalues``.

    Raises
    ------
    InvalidParameterError
        If ``pvalues`` is not one-dimensional or has a value outside [0, 1].

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.005]).round(3).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise InvalidParameterError(
            f"pvalues must be a one-dimensional sequence of p-values; got shape {p.shape}"
        )
    valid = ~np.isnan(p)
    if np.any((p[valid] < 0) | (p[valid] > 1)):
        raise InvalidParameterError(
            f"pvalues must lie in [0, 1] (NaN is allowed and ignored); got {p[valid].tolist()}"
        )
    adjusted = np.full(p.shape, np.nan)
    order = np.flatnonzero(valid)[np.argsort(p[valid], kind="stable")]
    m = len(order)
    scaled = (m - np.arange(m)) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def win_tie_loss(diff: Sequence[float] | np.ndarray, tol: float = 0.0) -> tuple[int, int, int]:
    """How many differences are wins (``> tol``), ties (``|d| <= tol``) and losses (``< -tol``).

    NaN values are left out, so the three counts add up to the number of non-NaN differences.

    Parameters
    ----------
    diff : sequence of float
        One difference per seed, e.g. from :func:`paired_differences`.
    tol : float, default 0.0
        Differences at most this far from 0 count as ties.

    Returns
    -------
    tuple of int
        ``(wins, ties, losses)``.

    Raises
    ------
    InvalidParameterError
        If ``tol`` is negative or NaN.

    Examples
    --------
    >>> win_tie_loss([0.02, 0.0, -0.01, 0.005, float("nan")], tol=0.005)
    (1, 2, 1)
    """
    if not tol >= 0:
        raise InvalidParameterError(f"tol must be 0 or a positive number; got {tol!r}")
    d = np.asarray(diff, dtype=float).ravel()
    d = d[~np.isnan(d)]
    return int(np.sum(d > tol)), int(np.sum(np.abs(d) <= tol)), int(np.sum(d < -tol))
