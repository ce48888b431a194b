"""Time budgets as people write them (``"30m"``, ``"1h30m"``): torch-free, so that the command
line checks ``--budget`` before it imports anything heavy."""

from __future__ import annotations

import math
import re

from synthaug.errors import InvalidParameterError

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_budget(budget: str | float) -> float:
    """Seconds of a budget: a duration such as ``"90s"``, ``"30m"``, ``"1h"`` or ``"1h30m"``,
    or a number of seconds.

    Examples
    --------
    >>> parse_budget("1h30m"), parse_budget("90s"), parse_budget(45)
    (5400.0, 90.0, 45.0)
    """
    seconds = None
    if isinstance(budget, str):
        match = _DURATION.fullmatch(budget.strip().lower())
        if budget.strip() and match is not None:
            hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
            seconds = 3600 * hours + 60 * minutes + secs
    elif isinstance(budget, (int, float)) and not isinstance(budget, bool):
        seconds = float(budget)
    if seconds is None:
        raise InvalidParameterError(
            f"budget must be a duration such as 90s, 30m, 1h or 1h30m (or a number of "
            f"seconds), got {budget!r}"
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidParameterError(f"budget must be more than 0 seconds, got {budget!r}")
    return seconds
