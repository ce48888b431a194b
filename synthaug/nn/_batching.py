"""Batch sizes for inference that fit the machine: cache-sized on CPUs, large on GPUs.

On a CPU a network runs fastest when one batch's activations stay near the core's caches: the
64x64 CVAE decoder ran at about a quarter of its batch-32 speed in batches of 2,048 on the
development machine, one thread (262 against 1,012 img/s; ``docs/generators.md``). The size is derived, not searched: the largest
activation one row makes, measured once with forward hooks, into the L2 cache size.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

_FALLBACK_L2 = 1 << 20
# Bounds of a derived batch: below 32 rows the per-call overhead dominates small networks;
# 8,192 is the sampling chunk, above which nothing is gained.
MIN_BATCH, MAX_BATCH = 32, 8192


@functools.cache
def l2_cache_bytes() -> int:
    """Size of one core's L2 cache (Linux sysfs), or 1 MiB when it cannot be read."""
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "level").read_text().strip() != "2":
                continue
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
        digits = text[:-1] if text[-1:] in "KM" else text
        if digits.isdigit():
            return int(digits) * scale
    return _FALLBACK_L2


def largest_activation_bytes(module: nn.Module, run: Callable[[], object]) -> int:
    """The largest output (in bytes) any submodule of ``module`` makes while ``run()`` runs."""
    largest = 0

    def hook(_: nn.Module, __: object, output: object) -> None:
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.numel() * output.element_size())

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return largest


def inference_batch_size(device: torch.device, bytes_per_row: int) -> int:
    """Rows per forward pass: the power of two whose largest activation fills the L2 cache on
    a CPU (between :data:`MIN_BATCH` and :data:`MAX_BATCH`), :data:`MAX_BATCH` on a GPU."""
    if device.type != "cpu" or bytes_per_row <= 0:
        return MAX_BATCH
    rows = max(1, l2_cache_bytes() // bytes_per_row)
    return int(min(MAX_BATCH, max(MIN_BATCH, 1 << (rows.bit_length() - 1))))
