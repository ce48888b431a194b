"""Data-parallel training over a ``torch.distributed`` process group.

Under ``torchrun`` (or any launcher that sets ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` /
``MASTER_PORT``) every process holds the whole training set and the same seeded random stream.
The shared :class:`~synthaug.nn.Trainer` draws each global batch exactly as a single process
would, gives every rank a contiguous part of it, and :func:`~synthaug.nn.optimizer_step`
averages the gradients over the ranks, weighted by the size of each part, before the update:
the update is the single-process one on the same global batch, up to the order of floating
point sums. Per-row random draws (latent noise, augmentation) go through :func:`draw_rows`,
which draws for the whole global batch and keeps this rank's rows, so every rank's random
stream stays where a single process's would be. Batch statistics (batch norm) are the one
thing computed over a rank's part only.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


@dataclass(frozen=True)
class Shard:
    """This rank's part of the current global batch: rows ``offset : offset + n_local``."""

    offset: int
    n_local: int
    n_global: int


_SHARD: contextvars.ContextVar[Shard | None] = contextvars.ContextVar("shard", default=None)


def world() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised process group; ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def launched_world_size() -> int:
    """The ``WORLD_SIZE`` a launcher such as ``torchrun`` set (1 when none did)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_data_parallel(device: torch.device) -> tuple[int, int]:
    """Join the process group a launcher described in the environment, once; ``(rank, size)``.

    Uses NCCL for CUDA devices and gloo for the CPU. Does nothing when a group is initialised
    already or when no launcher set ``WORLD_SIZE`` above 1.
    """
    if launched_world_size() > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return world()


def data_parallel_device(device: torch.device) -> torch.device:
    """Under a launcher, an index-less CUDA device becomes ``cuda:LOCAL_RANK``."""
    if device.type == "cuda" and device.index is None and launched_world_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """``(offset, count)`` of rank ``rank``'s contiguous part of ``n`` rows (parts differ by
    at most one row, the larger ones first)."""
    base, extra = divmod(n, size)
    return rank * base + min(rank, extra), base + (rank < extra)


@contextlib.contextmanager
def sharded(shard: Shard | None) -> Iterator[None]:
    """Mark the block as one data-parallel step on ``shard`` (None: a plain step)."""
    token = _SHARD.set(shard)
    try:
        yield
    finally:
        _SHARD.reset(token)


def draw_rows(n: int, draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
    """``draw(n)``: per-row random draws for the ``n`` rows of a batch.

    In a data-parallel step on a part of ``n`` rows it calls ``draw`` for the whole global
    batch and returns this rank's rows, so the draws, and the random stream after them, are
    those of a single process on the global batch.
    """
    shard = _SHARD.get()
    if shard is None or n != shard.n_local:
        return draw(n)
    return draw(shard.n_global)[shard.offset : shard.offset + n]


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """All-reduce the gradients of ``params`` into the gradient of the global batch's mean loss.

    A rank's loss is a mean over its ``n_local`` rows, so the global mean's gradient is the
    sum over ranks of ``n_local / n_global`` times each rank's gradient. A no-op outside a
    data-parallel step.
    """
    shard = _SHARD.get()
    if shard is None:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = _flatten_dense_tensors(grads) * (shard.n_local / shard.n_global)
    dist.all_reduce(flat)
    for grad, reduced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        grad.copy_(reduced)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over the ranks (``t`` itself without a process group)."""
    if world()[1] > 1:
        dist.all_reduce(t)
    return t


def barrier() -> None:
    """Wait for every rank (nothing without a process group)."""
    if world()[1] > 1:
        dist.barrier()
