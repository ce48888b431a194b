"""Random numbers addressed by key: each row's draws are a function of (seed, its key) alone.

Sampling normally draws from one ``torch.Generator`` stream, so a sample depends on where it
falls in the call. :class:`KeyedRandom` gives every row its own counter-based stream instead:
SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA
2014) computed with int64 tensor operations, row ``r``'s ``j``-th number being
``mix64(state_r + (j + 1) * gamma)`` with ``state_r = mix64(base + key_r * gamma)`` and
``base`` derived from the seed. Any set of rows, in any order, is then one batch of tensor
operations, and a row draws the same numbers whichever rows it is drawn with: what lets an
on-demand data set make any of its items in one forward pass.

:func:`randn`, :func:`rand` and :func:`select_rows` take either a ``torch.Generator`` (then
they draw exactly what ``torch.randn(..., generator=...)`` draws, so streamed samples stay bit
for bit what they were) or a :class:`KeyedRandom`, so a generator family's ``_sample`` is
written once for both.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch

_MASK64 = (1 << 64) - 1
# SplitMix64's increment and finaliser multipliers.
_GAMMA, _M1, _M2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _signed(value: int) -> int:
    """``value``'s low 64 bits as the signed int64 torch stores."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def _shr(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch's ``>>`` is arithmetic on signed values)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _mix64(z: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """SplitMix64's finaliser, in place, on uint64 numpy bits or int64 torch bits (products
    wrap modulo 2**64 in both, so both give the same bits). The CPU works on numpy: torch's
    int64 products by 64-bit constants cost several times numpy's on small arrays."""
    if isinstance(z, np.ndarray):
        z ^= z >> np.uint64(30)
        z *= np.uint64(_M1)
        z ^= z >> np.uint64(27)
        z *= np.uint64(_M2)
        z ^= z >> np.uint64(31)
        return z
    z ^= _shr(z, 30)
    z *= _signed(_M1)
    z ^= _shr(z, 27)
    z *= _signed(_M2)
    z ^= _shr(z, 31)
    return z


@functools.lru_cache(maxsize=64)
def _base(seed: int, stream: int) -> int:
    """The 64 bits every row state of ``(seed, stream)`` starts from: SeedSequence's hash, so
    that nearby seeds give unrelated streams. Cached: it costs more than a small batch's draws."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0])


class KeyedRandom:
    """Per-row random numbers, each row's depending only on ``(seed, stream, key)``.

    Every draw covers all rows and consumes the same count of numbers from each row's stream,
    so a row's ``k``-th draw is the same in any batch. A ``_sample`` that draws through
    :func:`randn`, :func:`rand` and :func:`select_rows` therefore gives each row the sample its
    key makes, whatever else is sampled with it.

    Parameters
    ----------
    seed : int
        Non-negative, below ``2**64``.
    keys : torch.Tensor
        Int64 ``(n,)`` keys, one per row, on the device the draws are made on.
    stream : int
        Separates independent uses of one ``(seed, key)`` (a label drawn, then an image).

    Examples
    --------
    >>> import torch
    >>> from synthaug.nn import KeyedRandom, randn
    >>> a = randn(KeyedRandom(7, torch.tensor([3, 9])), (2, 4))
    >>> b = randn(KeyedRandom(7, torch.tensor([9])), (1, 4))
    >>> bool(torch.equal(a[1], b[0]))
    True
    """

    def __init__(self, seed: int, keys: torch.Tensor, stream: int = 0) -> None:
        self.seed = int(seed)
        self.stream = int(stream)
        self.keys = keys
        self.drawn = 0  # numbers taken from every row's stream so far
        base = _base(self.seed, self.stream)
        # Row states: numpy uint64 on the CPU, int64 tensors on other devices (_mix64).
        self._state: np.ndarray | torch.Tensor
        if keys.device.type == "cpu":
            k = keys.numpy().astype(np.uint64)
            self._state = _mix64(k * np.uint64(_GAMMA) + np.uint64(base))
        else:
            self._state = _mix64(keys.to(torch.int64) * _signed(_GAMMA) + _signed(base))

    def __len__(self) -> int:
        return len(self.keys)

    def bits(self, shape: Sequence[int]) -> torch.Tensor:
        """``shape`` (first axis: the rows) of 64 random bits each, as int64 on the keys'
        device."""
        z = self._bits(shape)
        return torch.from_numpy(z.view(np.int64)) if isinstance(z, np.ndarray) else z

    def unit(self, shape: Sequence[int], mantissa: int, offset: float = 0.0) -> torch.Tensor:
        """Float64 ``(top mantissa bits + offset) / 2**mantissa`` of each number: uniform in
        [0, 1) for offset 0, in (0, 1) for offset 0.5."""
        z = self._bits(shape)
        scale = 2.0**-mantissa
        if isinstance(z, np.ndarray):
            u = ((z >> np.uint64(64 - mantissa)).astype(np.float64) + offset) * scale
            return torch.from_numpy(u)
        return (_shr(z, 64 - mantissa).to(torch.float64) + offset) * scale

    def _bits(self, shape: Sequence[int]) -> np.ndarray | torch.Tensor:
        shape = tuple(int(s) for s in shape)
        if not shape or shape[0] != len(self):
            raise ValueError(f"keyed draws are per row: shape {shape} must start with {len(self)}")
        per_row = math.prod(shape[1:])
        first, self.drawn = self.drawn + 1, self.drawn + per_row
        if isinstance(self._state, np.ndarray):
            steps = np.arange(first, first + per_row, dtype=np.uint64) * np.uint64(_GAMMA)
            return _mix64(self._state[:, None] + steps).reshape(shape)
        steps = torch.arange(first, first + per_row, device=self._state.device)
        return _mix64(self._state.unsqueeze(1) + steps * _signed(_GAMMA)).reshape(shape)

    def rows(self, index: torch.Tensor) -> KeyedRandom:
        """The draws of the rows ``index`` (a sub-batch), continuing where these stand."""
        part = KeyedRandom.__new__(KeyedRandom)
        part.seed, part.stream, part.keys = self.seed, self.stream, self.keys[index]
        part.drawn = self.drawn
        part._state = (
            self._state[index.cpu().numpy()]
            if isinstance(self._state, np.ndarray)
            else self._state[index]
        )
        return part

    def row_seeds(self) -> list[int]:
        """One 64-bit seed per row from its stream (for code that can only take a seed)."""
        return [v & _MASK64 for v in self.bits((len(self), 1)).flatten().tolist()]


Randomness = torch.Generator | KeyedRandom


def randn(
    source: Randomness,
    shape: Sequence[int],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Standard normal numbers: ``torch.randn(shape, generator=source)`` for a generator; for a
    :class:`KeyedRandom`, the inverse normal CDF of 53-bit uniforms in (0, 1), one per number."""
    if isinstance(source, torch.Generator):
        return torch.randn(tuple(shape), generator=source, device=device, dtype=dtype)
    out = torch.special.ndtri(source.unit(shape, 53, 0.5)).to(dtype or torch.get_default_dtype())
    return out if device is None else out.to(device)


def rand(
    source: Randomness,
    shape: Sequence[int],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Uniform numbers in [0, 1): ``torch.rand(shape, generator=source)`` for a generator; for a
    :class:`KeyedRandom`, the top 24 (float32) or 53 (float64) bits of each number."""
    if isinstance(source, torch.Generator):
        return torch.rand(tuple(shape), generator=source, device=device, dtype=dtype)
    dtype = dtype or torch.get_default_dtype()
    out = source.unit(shape, 53 if dtype == torch.float64 else 24).to(dtype)
    return out if device is None else out.to(device)


def select_rows(source: Randomness, index: torch.Tensor) -> Randomness:
    """The randomness of the rows ``index`` of a batch: a generator is one stream and is
    returned as it is (the sub-batch draws next from it); keyed draws keep each row's own."""
    return source if isinstance(source, torch.Generator) else source.rows(index)
