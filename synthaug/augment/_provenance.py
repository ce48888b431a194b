"""Sampling any source with the provenance of each sample, whether or not it reports one."""

from __future__ import annotations

import inspect
from typing import Any

from synthaug.data import Provenance, uniform_provenance
from synthaug.errors import ShapeMismatchError


def reports_provenance(source: Any) -> bool:
    """Whether ``source.sample`` takes ``return_provenance`` (every synthaug source does)."""
    try:
        parameters = inspect.signature(source.sample).parameters
    except (TypeError, ValueError):  # a builtin or C-implemented sample: cannot tell
        return False
    return "return_provenance" in parameters


def sample_with_provenance(
    source: Any, n: int, y: int | str, seed: int | None = None, *, return_masks: bool = False
) -> tuple[Any, ...]:
    """``source.sample(n, y=y, seed=seed)`` and one :class:`~synthaug.data.Provenance` per
    sample.

    A source whose ``sample`` does not take ``return_provenance`` (one written outside
    synthaug) gets the same provenance for every sample, from what it declares
    (:func:`~synthaug.data.sample_origin`), without training items.

    Returns
    -------
    tuple
        ``(images, labels, provenance)``, or ``(images, labels, masks, provenance)`` with
        ``return_masks=True``.
    """
    extra = {"return_masks": True} if return_masks else {}
    if reports_provenance(source):
        *drawn, provenance = source.sample(n, y=y, seed=seed, return_provenance=True, **extra)
    else:
        drawn = list(source.sample(n, y=y, seed=seed, **extra))
        provenance = uniform_provenance(source, len(drawn[0]))
    provenance = list(provenance)
    if len(provenance) != len(drawn[0]) or not all(isinstance(p, Provenance) for p in provenance):
        raise ShapeMismatchError(
            f"{type(source).__name__}.sample reported {len(provenance)} provenance records for "
            f"{len(drawn[0])} samples; it must give one Provenance per sample"
        )
    return (*drawn, provenance)
