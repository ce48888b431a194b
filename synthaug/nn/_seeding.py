"""Local randomness for network code: seeded blocks that leave no global trace."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for the block, then restore it (no global side effects).

    Weight initialisation in ``torch.nn`` draws from the global generator; building networks
    inside ``seeded(seed)`` makes them reproducible without changing anyone else's stream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield
