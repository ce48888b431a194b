"""Refuse results that cannot fit in memory, before allocating them.

``sample(10**9)`` of 8x8 images needs 256 GB; without a check it dies in the allocator with a
traceback, after the labels were drawn. The rule, applied by every ``sample`` and by
:class:`~synthaug.augment.AugmentedDataset`: the bytes a call will hold at once (its result,
and the copies it makes while building it) must not exceed the memory available now
(Linux's ``MemAvailable``, capped by the cgroup's limit inside a container; the physical
memory elsewhere). A request that fits may still fail when other allocations take the memory
first; one that does not fit is refused at once, with an error that says how much it needs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synthaug.errors import InvalidParameterError

# Bytes of one float32 value and of one int64 label.
_FLOAT32, _INT64 = 4, 8


def available_memory() -> int | None:
    """Bytes of memory this process may still allocate; None when the system does not say."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    if available is None:
        try:  # macOS and other Unix: the physical memory (no cheap "available" figure)
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, OSError, ValueError):
            pass
    headroom = _cgroup_headroom()
    if headroom is not None:
        available = headroom if available is None else min(available, headroom)
    return available


def _cgroup_headroom() -> int | None:
    """A cgroup v2 memory limit less what the group uses (containers, batch jobs)."""
    folder = Path("/sys/fs/cgroup")
    try:
        limit = (folder / "memory.max").read_text().strip()
        used = (folder / "memory.current").read_text().strip()
    except OSError:
        return None
    if limit == "max":
        return None
    try:
        return max(0, int(limit) - int(used))
    except ValueError:
        return None


def byte_size(n: int) -> str:
    """``n`` bytes in words: ``"256.0 GB"``."""
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def check_fits_in_memory(needed: int, what: str, fix: str) -> None:
    """Raise :class:`~synthaug.errors.InvalidParameterError` when ``needed`` bytes exceed the
    memory available now; ``what`` says what needs them, ``fix`` what to do instead."""
    available = available_memory()
    if available is not None and needed > available:
        raise InvalidParameterError(
            f"{what} needs {byte_size(needed)} of memory, more than the {byte_size(available)} "
            f"available; {fix}"
        )


def item_bytes(sample_shape: Sequence[int]) -> int:
    """Bytes of one float32 item of ``sample_shape`` and its int64 label."""
    return math.prod(int(s) for s in sample_shape) * _FLOAT32 + _INT64


def check_sample_count(n: object, sample_shape: Sequence[int], *, copies: int = 1) -> int:
    """``n`` as an int once it is a positive integer whose ``n`` samples fit in memory.

    ``copies`` counts the items the sampler holds at once per sample (2 when it builds the
    result from a first copy).

    Raises
    ------
    InvalidParameterError
        ``n`` is not a positive integer, or its samples cannot fit in the memory available.
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise InvalidParameterError(f"n must be a positive integer, got {n!r}")
    n = int(n)
    shape = "x".join(str(int(s)) for s in sample_shape)
    check_fits_in_memory(
        n * item_bytes(sample_shape) * copies,
        f"n={n:,} samples of shape {shape}",
        "ask for fewer at a time (several calls, each written out before the next), or use "
        "SyntheticDataset(..., pregenerate=False), which makes items as they are read",
    )
    return n
