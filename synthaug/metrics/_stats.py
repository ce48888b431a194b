"""Statistics for repeated runs: confidence intervals and paired tests across seeds.

One module serves the one-class protocol and the benchmark reports alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats


def mean_ci(values: Sequence[float | None], level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of ``values``.

    ``None`` and NaN values are left out; the half-width is NaN for fewer than two values.

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
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


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
