"""How the training loop cuts mini-batches: one small object per way of drawing them.

A plan answers "which samples does step ``i`` train on?" with an index tensor drawn on the
device, from the run's ``torch.Generator``, just before that step (so a step's own draws and
the batch draws interleave exactly as a hand-written loop's would). Nothing is copied between
host and device per batch and no Python runs per sample.

- :class:`Shuffled`: every sample once per epoch, in a fresh random order (the default);
- :class:`Poisson`: each sample independently with probability ``batch_size / n`` per step, as
  differentially private SGD's accounting assumes;
- :class:`WithReplacement`: ``batch_size`` samples drawn uniformly with replacement per step;
- :class:`Indices`: the rows of an index tensor computed beforehand (class-balanced batches,
  say: :func:`batch_indices`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Per-run scratch a plan keeps between steps (the current permutation of :class:`Shuffled`);
#: checkpoints hold it, so a run resumed between two steps of an epoch draws what it would have.
Memo = dict[str, torch.Tensor]


class BatchPlan:
    """How a run over ``n`` samples cuts its mini-batches; see the module docstring."""

    #: Whether the networks need two rows per batch (batch statistics): data-parallel
    #: training then gives every rank at least two rows of a batch, or skips it.
    skip_lone: bool = True

    def steps_per_epoch(self, n: int, batch_size: int) -> int:  # pragma: no cover - abstract
        """Steps that make one epoch (one pass's worth of batches)."""
        raise NotImplementedError

    def draw(
        self, step: int, n: int, batch_size: int, generator: torch.Generator, memo: Memo
    ) -> torch.Tensor:  # pragma: no cover - abstract
        """The indices of step ``step``'s batch, on ``generator``'s device."""
        raise NotImplementedError


@dataclass(frozen=True)
class Shuffled(BatchPlan):
    """Every sample once per epoch: a permutation drawn at the epoch's first step, sliced.

    Parameters
    ----------
    skip_lone : bool
        Skip an epoch's trailing batch of a single sample (it is seen in another epoch): batch
        statistics of one sample are undefined, so networks with batch norm need this.
        Networks without batch statistics may set it to False and train on every sample.
    """

    skip_lone: bool = True

    def steps_per_epoch(self, n: int, batch_size: int) -> int:
        steps = math.ceil(n / batch_size)
        lone = self.skip_lone and n >= 2 and n % batch_size == 1
        return steps - 1 if lone else steps

    def draw(
        self, step: int, n: int, batch_size: int, generator: torch.Generator, memo: Memo
    ) -> torch.Tensor:
        within = step % self.steps_per_epoch(n, batch_size)
        if within == 0:
            memo["permutation"] = torch.randperm(n, generator=generator, device=generator.device)
        return memo["permutation"][within * batch_size : (within + 1) * batch_size]


@dataclass(frozen=True)
class Poisson(BatchPlan):
    """Poisson-sampled batches: each step takes every sample independently with probability
    ``q = batch_size / n`` (one Bernoulli mask per step), :func:`poisson_schedule` steps an
    epoch. Batches vary in size and may be empty; the step gets every one.

    Parameters
    ----------
    n : int or None
        The record count the schedule (rate and steps) is computed from; None: the number of
        samples trained on. Differentially private training passes a released (noisy) count,
        so that the schedule reveals nothing more than it.
    """

    n: int | None = None

    def steps_per_epoch(self, n: int, batch_size: int) -> int:
        return poisson_schedule(self.n or n, batch_size)[1]

    def draw(
        self, step: int, n: int, batch_size: int, generator: torch.Generator, memo: Memo
    ) -> torch.Tensor:
        rate = poisson_schedule(self.n or n, batch_size)[0]
        mask = torch.rand(n, generator=generator, device=generator.device) < rate
        return mask.nonzero().squeeze(1)


@dataclass(frozen=True)
class WithReplacement(BatchPlan):
    """``batch_size`` samples drawn uniformly with replacement for every step (an epoch is
    ``ceil(n / batch_size)`` steps): for step budgets that need no notion of a pass."""

    def steps_per_epoch(self, n: int, batch_size: int) -> int:
        return math.ceil(n / batch_size)

    def draw(
        self, step: int, n: int, batch_size: int, generator: torch.Generator, memo: Memo
    ) -> torch.Tensor:
        return torch.randint(n, (batch_size,), generator=generator, device=generator.device)


@dataclass(frozen=True, eq=False)
class Indices(BatchPlan):
    """Step ``i`` trains on row ``i`` of ``rows``, a ``(steps, batch)`` index tensor on the
    training device computed beforehand (:func:`batch_indices`); it draws nothing. An epoch
    is ``ceil(n / batch_size)`` steps."""

    rows: torch.Tensor

    def steps_per_epoch(self, n: int, batch_size: int) -> int:
        return math.ceil(n / batch_size)

    def draw(
        self, step: int, n: int, batch_size: int, generator: torch.Generator, memo: Memo
    ) -> torch.Tensor:
        return self.rows[step]


def poisson_schedule(n_samples: int, batch_size: int) -> tuple[float, int]:
    """Sampling rate ``q`` and steps per epoch for Poisson-sampled batches of mean ``batch_size``.

    Each step takes every sample independently with probability ``q = batch_size / n`` (capped
    at 1); an epoch is ``round(n / batch_size)`` steps, so it sees each sample once on average.
    """
    rate = min(1.0, batch_size / n_samples)
    return rate, max(1, round(n_samples / batch_size))


def batch_indices(
    y: torch.Tensor, steps: int, batch_size: int, sampler: str, generator: torch.Generator
) -> torch.Tensor:
    """``(steps, batch)`` indices into ``y``: reshuffled passes, or class-balanced draws.

    Vectorised: every step's indices come from a few tensor operations, no Python per sample.
    """
    n = len(y)
    if sampler == "shuffle":
        need = steps * batch_size
        perms = [torch.randperm(n, generator=generator) for _ in range(math.ceil(need / n))]
        return torch.cat(perms)[:need].view(steps, batch_size)
    order = torch.argsort(y, stable=True)
    classes, counts = torch.unique(y, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    pick = torch.randint(len(classes), (steps, batch_size), generator=generator)
    offset = (torch.rand((steps, batch_size), generator=generator) * counts[pick]).long()
    return order[starts[pick] + offset.clamp(max=counts[pick] - 1)]
