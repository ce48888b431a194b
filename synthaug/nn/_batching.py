"""Chunked inference written once: :func:`batched`, with batch sizes that fit the machine
(cache-sized on CPUs, large on GPUs).

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
# On a GPU the batch is the largest that keeps one activation under this size, so that large
# images (a detector's U-Net at 256x256) do not run out of memory.
_GPU_ACTIVATION_BYTES = 1 << 30


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
    a CPU (between :data:`MIN_BATCH` and :data:`MAX_BATCH`); on a GPU :data:`MAX_BATCH`, or
    fewer when one activation would pass 1 GiB."""
    if bytes_per_row <= 0:
        return MAX_BATCH
    budget = l2_cache_bytes() if device.type == "cpu" else _GPU_ACTIVATION_BYTES
    rows = max(1, budget // bytes_per_row)
    return int(min(MAX_BATCH, max(MIN_BATCH, 1 << (rows.bit_length() - 1))))


def batch_size_for(
    network: nn.Module,
    fn: Callable[..., torch.Tensor],
    *rows: torch.Tensor,
    device: torch.device | str | None = None,
) -> int:
    """:func:`inference_batch_size` for running ``fn`` (made of ``network``'s layers) on
    ``rows``, from the largest activation one row makes (``fn`` runs once on the first row,
    moved to ``device``). ``fn`` must not draw random numbers: the probe would consume them."""
    probe = tuple(r[:1] if device is None else r[:1].to(device) for r in rows)
    param = next(network.parameters(), None)
    where = param.device if param is not None else torch.device("cpu")
    return inference_batch_size(where, largest_activation_bytes(network, lambda: fn(*probe)))


def batched(
    fn: Callable[..., torch.Tensor],
    *rows: torch.Tensor,
    network: nn.Module | None = None,
    size: int | None = None,
    device: torch.device | str | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``fn(*batch)`` over consecutive batches of ``rows``, the results stacked along the first
    axis: every chunked inference of synthaug (scores, embeddings, codes, samples).

    Parameters
    ----------
    fn : callable
        Takes one batch of each of ``rows`` and returns one result row per input row.
    *rows : torch.Tensor
        Inputs of one length.
    network : torch.nn.Module, optional
        The layers ``fn`` runs. The batches are then sized for them the way sampling's are
        (:func:`batch_size_for`: cache-sized on a CPU, where that runs fastest), and a last
        batch of fewer than :data:`MIN_BATCH` rows joins the one before it: a few rows take
        other kernels than many, with other rounding, and a row's result should not depend
        on where the cut falls.
    size : int, optional
        Rows per batch when the cut must not depend on the machine: ``fn`` draws random
        numbers, or computes what a model keeps. Without it or ``network``: :data:`MAX_BATCH`
        (the sampling chunk).
    device : torch.device or str, optional
        Each batch is moved here before ``fn`` sees it, so a large input on the CPU never
        sits whole on an accelerator (``fn`` may move its results back).
    out : torch.Tensor, optional
        Receives the results (a CPU tensor, say); by default one is allocated like the first
        result.

    Examples
    --------
    >>> import torch
    >>> from synthaug.nn import batched
    >>> batched(lambda x: 2 * x, torch.arange(5), size=2)
    tensor([0, 2, 4, 6, 8])
    """
    n = len(rows[0])
    if size is None:
        sized = network is not None and n > MIN_BATCH
        size = batch_size_for(network, fn, *rows, device=device) if sized else MAX_BATCH
    starts = list(range(0, n, size)) or [0]
    if network is not None and len(starts) > 1 and n - starts[-1] < MIN_BATCH:
        starts.pop()
    if len(starts) == 1 and out is None:
        return fn(*(r if device is None else r.to(device) for r in rows))
    for start, stop in zip(starts, [*starts[1:], n], strict=True):
        part = (r[start:stop] if device is None else r[start:stop].to(device) for r in rows)
        result = fn(*part)
        if out is None:
            out = result.new_empty((n, *result.shape[1:]))
        out[start:stop] = result
    assert out is not None
    return out
