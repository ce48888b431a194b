"""One training loop for every generator.

Batching on the device, a progress bar, per-epoch history, early stopping on a validation
loss, periodic checkpoints with exact resume, mixed precision on CUDA, and a clear stop when a
loss turns non-finite. The model supplies a ``step`` (one optimisation step on one mini-batch,
returning its losses); everything around it lives here, so every generator gets all of it.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from synthaug.errors import CheckpointError, TrainingDivergedError
from synthaug.nn._distributed import (
    Shard,
    all_reduce_sum,
    average_gradients,
    barrier,
    shard_bounds,
    sharded,
    world,
)

StepFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
CHECKPOINT_NAME = "checkpoint.pt"


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    params: Iterable[torch.nn.Parameter] | None = None,
    grad_clip: float | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """Zero the gradients, back-propagate ``loss``, clip (when asked) and step.

    In a data-parallel step the gradients are first averaged over the ranks (see
    ``synthaug/nn/_distributed.py``), so every rank takes the global batch's update. With a
    ``scaler`` (float16 training) the loss is scaled, the gradients unscaled before clipping,
    and a step with non-finite gradients skipped.
    """
    optimizer.zero_grad(set_to_none=True)
    (loss if scaler is None else scaler.scale(loss)).backward()
    average_gradients(p for group in optimizer.param_groups for p in group["params"])
    if scaler is not None:
        scaler.unscale_(optimizer)
    if grad_clip is not None and params is not None:
        torch.nn.utils.clip_grad_norm_(list(params), grad_clip)
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()


class Trainer:
    """Runs ``epochs`` passes of a model's ``step`` over tensors already on the device.

    The data never leaves the device: each epoch draws a permutation there with the given
    ``torch.Generator`` and slices mini-batches from it, so there is no per-batch host-device
    copy and no per-sample Python. Losses are summed on the device and read once per epoch.

    Inside an initialised ``torch.distributed`` group (``torchrun``) it trains data-parallel:
    every rank draws the same global batches, steps on its contiguous part of each, and the
    gradients are averaged before every update (``synthaug/nn/_distributed.py``); history is
    over the global batches, only rank 0 shows the progress bar and writes the checkpoint.

    Parameters
    ----------
    epochs : int
    batch_size : int
    device : torch.device
        Where the data and the networks live.
    verbose : bool
        Show a tqdm progress bar over epochs.
    desc : str
        Label of the progress bar.
    amp : bool or {"bf16", "fp16"}
        Mixed precision. True: bfloat16 autocast when ``device`` is CUDA, ignored on the CPU
        (where it is slower on most chips and changes results). ``"bf16"``: bfloat16 autocast
        on any device. ``"fp16"``: float16 autocast on CUDA with a gradient scaler
        (:attr:`scaler`, which steps pass to :func:`optimizer_step`).
    early_stopping : int or None
        Stop after this many epochs without a lower validation loss and restore the best
        weights. Needs a ``validate`` callable in :meth:`run`.
    checkpoint_dir : str, Path or None
        Write ``checkpoint.pt`` here every ``checkpoint_every`` epochs and at the end.
    checkpoint_every : int
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` when one exists. The checkpoint holds
        weights, optimiser moments, the random generator's state and the history, so an
        interrupted run continues to the same result as an uninterrupted one.
    poisson : bool
        Poisson-sampled batches, as differentially private SGD's accounting assumes: each step
        takes every sample independently with probability ``batch_size / n`` (one Bernoulli
        mask per step, drawn with ``generator``), for :func:`poisson_schedule` steps per epoch.
        Batches vary in size and may be empty; every one is passed to ``step``.
    poisson_n : int or None
        The record count the Poisson schedule (rate and steps) is computed from; None: the
        number of samples given to :meth:`run`. Differentially private training passes a
        released (noisy) count, so that the schedule reveals nothing more than it.
    skip_lone_batch : bool
        Skip an epoch's trailing mini-batch of a single sample (it is seen in another epoch):
        batch statistics of one sample are undefined, so networks with batch norm need this.
        Networks without batch statistics may set it to False and train on every sample.
    """

    def __init__(
        self,
        *,
        epochs: int,
        batch_size: int,
        device: torch.device | str = "cpu",
        verbose: bool = True,
        desc: str = "training",
        amp: bool | str = True,
        early_stopping: int | None = None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        poisson: bool = False,
        poisson_n: int | None = None,
        skip_lone_batch: bool = True,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.verbose = verbose
        self.desc = desc
        if amp == "fp16" and self.device.type != "cuda":
            raise ValueError("amp='fp16' needs a CUDA device")
        #: The autocast dtype, or None for full precision.
        self.amp_dtype: torch.dtype | None = {
            "bf16": torch.bfloat16,
            "fp16": torch.float16,
            True: torch.bfloat16 if self.device.type == "cuda" else None,
        }.get(amp)
        self.amp = self.amp_dtype is not None
        #: The float16 gradient scaler, or None.
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        self.early_stopping = early_stopping
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.poisson = poisson
        self.poisson_n = poisson_n
        self.skip_lone_batch = skip_lone_batch

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for forward passes and losses: the autocast ``amp`` asks for, if any."""
        if self.amp_dtype is not None:
            return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def run(
        self,
        step: StepFn,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator,
        history: list[dict[str, float]],
        *,
        modules: nn.Module,
        optimizers: Mapping[str, torch.optim.Optimizer],
        validate: Callable[[], torch.Tensor] | None = None,
        fingerprint: str = "",
    ) -> list[dict[str, float]]:
        """Train; append one ``{"epoch": i, <loss>: value, ...}`` dict per epoch to ``history``.

        Parameters
        ----------
        step : callable
            ``step(x_batch, y_batch) -> {name: scalar tensor}``; performs the update.
        x, y : torch.Tensor
            All training samples and labels, on the device.
        generator : torch.Generator
            Drives the batch order (and whatever noise ``step`` draws from it).
        history : list
            Receives the per-epoch records.
        modules, optimizers
            Everything whose state a checkpoint must hold.
        validate : callable, optional
            Returns the validation loss (a scalar tensor); recorded as ``val_loss``.
        fingerprint : str
            Describes the model and data; a checkpoint with another fingerprint is refused.
        """
        if self.early_stopping is not None and validate is None:
            raise ValueError("early stopping needs a validation loss")
        state = _LoopState()
        if self.resume and self.checkpoint_dir is not None:
            self._restore(state, history, generator, modules, optimizers, fingerprint)
        n = len(x)
        rank, _ = world()
        bar = tqdm(
            range(state.epoch, self.epochs),
            desc=self.desc,
            unit="epoch",
            disable=not self.verbose or rank != 0,
            leave=False,
        )
        for epoch in bar:
            record = self._epoch(step, x, y, generator, n, epoch)
            if validate is not None:
                with torch.no_grad():
                    record["val_loss"] = float(validate())
            bad = [k for k, v in record.items() if not math.isfinite(v)]
            if bad:
                raise TrainingDivergedError(
                    f"training diverged at epoch {epoch + 1}: non-finite {', '.join(bad)}; lower "
                    f"lr, set grad_clip, or check the data for extreme values"
                )
            history.append(record)
            state.epoch = epoch + 1
            stop = self._track_best(state, record, modules)
            if self.verbose:
                bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "epoch"})
            last = stop or state.epoch == self.epochs
            if self.checkpoint_dir is not None and (
                last or state.epoch % self.checkpoint_every == 0
            ):
                if rank == 0:  # every rank holds the same state: one writes it
                    self._save(state, history, generator, modules, optimizers, fingerprint)
                barrier()
            if stop:
                break
        bar.close()
        if state.best_weights is not None:
            modules.load_state_dict(state.best_weights)
        return history

    # -- one epoch ------------------------------------------------------------------------
    def _epoch(
        self,
        step: StepFn,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator,
        n: int,
        epoch: int,
    ) -> dict[str, float]:
        sums: dict[str, torch.Tensor] = {}
        seen = 0
        rank, size = world()
        for idx in self._batches(n, generator, x.device):
            shard = None
            if size > 1:
                # Every rank steps on its part; batches too small to give each rank a part
                # (two rows each when batch statistics need them) are skipped.
                if len(idx) < size * (2 if self.skip_lone_batch else 1):
                    continue
                offset, count = shard_bounds(len(idx), rank, size)
                shard = Shard(offset, count, len(idx))
                idx = idx[offset : offset + count]
            with sharded(shard):
                losses = step(x[idx], y[idx])
            if len(idx) == 0:
                continue  # an empty Poisson batch: a noise-only step with no loss to average
            for key, value in losses.items():
                weighted = value.detach().float() * len(idx)
                sums[key] = sums[key] + weighted if key in sums else weighted
            seen += len(idx)
        keys = list(sums)
        # One device-to-host transfer per epoch (and one all-reduce when data-parallel).
        totals = torch.stack([*(sums[k] for k in keys), torch.tensor(float(seen), device=x.device)])
        totals = all_reduce_sum(totals)
        values = (totals[:-1] / totals[-1].clamp(min=1)).tolist() if keys else []
        return {"epoch": float(epoch + 1), **dict(zip(keys, values, strict=True))}

    def _batches(
        self, n: int, generator: torch.Generator, device: torch.device
    ) -> Iterator[torch.Tensor]:
        """Index tensors of one epoch's mini-batches."""
        if self.poisson:
            rate, steps = poisson_schedule(self.poisson_n or n, self.batch_size)
            for _ in range(steps):
                mask = torch.rand(n, generator=generator, device=device) < rate
                yield mask.nonzero().squeeze(1)
            return
        perm = torch.randperm(n, generator=generator, device=device)
        for start in range(0, n, self.batch_size):
            idx = perm[start : start + self.batch_size]
            # A lone trailing sample makes batch statistics undefined; it is seen next epoch.
            if self.skip_lone_batch and len(idx) < 2 <= n:
                continue
            yield idx

    # -- early stopping -------------------------------------------------------------------
    def _track_best(self, state: _LoopState, record: dict[str, float], modules: nn.Module) -> bool:
        if self.early_stopping is None:
            return False
        if record["val_loss"] < state.best_loss:
            state.best_loss = record["val_loss"]
            state.best_weights = {k: v.detach().clone() for k, v in modules.state_dict().items()}
            state.bad_epochs = 0
            return False
        state.bad_epochs += 1
        return state.bad_epochs >= self.early_stopping

    # -- checkpoints ----------------------------------------------------------------------
    def _save(
        self,
        state: _LoopState,
        history: list[dict[str, float]],
        generator: torch.Generator,
        modules: nn.Module,
        optimizers: Mapping[str, torch.optim.Optimizer],
        fingerprint: str,
    ) -> None:
        assert self.checkpoint_dir is not None
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "fingerprint": fingerprint,
            "epoch": state.epoch,
            "history": history,
            "modules": modules.state_dict(),
            "optimizers": {k: opt.state_dict() for k, opt in optimizers.items()},
            "generator": generator.get_state(),
            "best_loss": state.best_loss,
            "best_weights": state.best_weights,
            "bad_epochs": state.bad_epochs,
        }
        path = self.checkpoint_dir / CHECKPOINT_NAME
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            torch.save(payload, tmp)
            os.replace(tmp, path)  # a crash mid-write never leaves a half checkpoint
        finally:
            if tmp.exists():
                tmp.unlink()

    def _restore(
        self,
        state: _LoopState,
        history: list[dict[str, float]],
        generator: torch.Generator,
        modules: nn.Module,
        optimizers: Mapping[str, torch.optim.Optimizer],
        fingerprint: str,
    ) -> None:
        assert self.checkpoint_dir is not None
        path = self.checkpoint_dir / CHECKPOINT_NAME
        if not path.is_file():
            return  # nothing to resume: a fresh run (which will write the checkpoint)
        try:
            # weights_only: plain tensors and containers, never arbitrary unpickling.
            payload = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # torch raises several types for a damaged file
            raise CheckpointError(
                f"cannot resume from {path}: the checkpoint is unreadable ({exc}); delete it to "
                f"start afresh"
            ) from exc
        if payload.get("fingerprint") != fingerprint:
            raise CheckpointError(
                f"cannot resume from {path}: it was written for another model or dataset "
                f"({payload.get('fingerprint')!r}, this run is {fingerprint!r}); use another "
                f"checkpoint_dir or resume=False"
            )
        modules.load_state_dict(payload["modules"])
        for name, opt in optimizers.items():
            opt.load_state_dict(payload["optimizers"][name])
        generator.set_state(payload["generator"].cpu())
        history[:] = payload["history"]
        state.epoch = min(int(payload["epoch"]), self.epochs)
        state.best_loss = float(payload["best_loss"])
        state.best_weights = payload["best_weights"]
        state.bad_epochs = int(payload["bad_epochs"])
        if self.early_stopping is not None and state.bad_epochs >= self.early_stopping:
            state.epoch = self.epochs  # the interrupted run had already stopped early


class _LoopState:
    """What the loop carries across epochs (and into checkpoints)."""

    def __init__(self) -> None:
        self.epoch = 0
        self.best_loss = math.inf
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Put ``module`` in eval mode for the block, then restore its previous mode."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def validation_split(
    labels: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(train, val)``: ``floor(fraction * n_c)`` random samples of each class held out.

    Stratified, so a class with one sample always stays in training. Drawn on the CPU, so the
    split is the same on any device.
    """
    labels = labels.cpu()
    g = torch.Generator().manual_seed(seed)
    keys = torch.rand(len(labels), generator=g, dtype=torch.float64)
    order = torch.argsort(labels.double() * 2 + keys)  # by class, randomly within a class
    sorted_labels = labels[order]
    counts = torch.bincount(sorted_labels)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(labels)) - starts[sorted_labels]
    n_val = torch.floor(counts.double() * fraction).long()
    is_val = rank < n_val[sorted_labels]
    return order[~is_val], order[is_val]


def poisson_schedule(n_samples: int, batch_size: int) -> tuple[float, int]:
    """Sampling rate ``q`` and steps per epoch for Poisson-sampled batches of mean ``batch_size``.

    Each step takes every sample independently with probability ``q = batch_size / n`` (capped
    at 1); an epoch is ``round(n / batch_size)`` steps, so it sees each sample once on average.
    """
    rate = min(1.0, batch_size / n_samples)
    return rate, max(1, round(n_samples / batch_size))


def describe(**facts: Any) -> str:
    """A stable fingerprint string for checkpoints."""
    return ";".join(f"{k}={facts[k]!r}" for k in sorted(facts))


LOSSES = ("ce", "class-weighted", "logit-adjusted")
SAMPLERS = ("shuffle", "balanced")
BatchReader = Callable[[torch.Tensor], torch.Tensor]


def train_classifier(
    net: nn.Module,
    x: torch.Tensor | None,
    y: torch.Tensor,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    loss: str = "ce",
    sampler: str = "shuffle",
    mixup: float = 0.0,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    read: BatchReader | None = None,
    n_classes: int | None = None,
    desc: str = "classifier",
) -> list[dict[str, float]]:
    """Train ``net`` (logits out) with Adam on ``x``, ``y``; the history.

    The one loop of synthaug's small classifiers (:class:`~synthaug.metrics.CNNClassifier`,
    :class:`~synthaug.metrics.FeatureExtractor`). ``net``, ``x`` and ``y`` are on one device;
    ``net`` is left in eval mode.

    Parameters
    ----------
    epochs, steps : int or None
        The budget: ``steps`` optimiser steps when given (a budget that does not grow with the
        training set, so methods that add samples get no extra optimisation), else ``epochs``
        passes over the data.
    loss : {"ce", "class-weighted", "logit-adjusted"}
        Cross-entropy; cross-entropy weighted by inverse class frequency (``n / (K n_c)``);
        or the logit-adjusted loss of Menon et al. (ICLR 2021), which adds the log class
        prior to the logits while training (balanced softmax), so the plain logits at test
        time are calibrated for balanced classes.
    sampler : {"shuffle", "balanced"}
        Reshuffled passes over the data, or class-balanced batches (a class uniformly, then
        one of its samples uniformly, for each slot).
    mixup : float
        The Beta(a, a) parameter of mixup (Zhang et al., ICLR 2018), one mixing weight per
        batch; 0 turns it off.
    augment : callable, optional
        ``augment(batch, generator)``: online augmentation of every batch
        (:func:`~synthaug.nn.random_jitter`).
    read : callable, optional
        ``read(indices) -> images`` when the images are not one tensor (a dataset whose
        transform must see every item as it is read); ``x`` is then None.
    n_classes : int, optional
        Defaults to ``y.max() + 1``.

    Notes
    -----
    Batch order, mixup and augmentation draw from generators seeded by ``seed``, so a run is
    deterministic on the CPU. With ``epochs`` and none of the options the batches are those
    of the shared :class:`Trainer` (every sample once per epoch, a lone last sample trained).
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    device = y.device
    plain = loss == "ce" and sampler == "shuffle" and not mixup and augment is None
    if steps is None and plain and read is None and x is not None:
        return _train_epochs(net, x, y, epochs or 1, batch_size, lr, weight_decay, seed, desc)
    if steps is None:
        steps = (epochs or 1) * math.ceil(len(y) / batch_size)
    k = int(n_classes if n_classes is not None else int(y.max()) + 1)
    counts = torch.bincount(y, minlength=k).to(torch.float32)
    weight = adjust = None
    if loss == "class-weighted":
        present = int((counts > 0).sum())
        weight = torch.where(counts > 0, len(y) / (present * counts.clamp(min=1)), 0.0)
    elif loss == "logit-adjusted":
        adjust = torch.log((counts / len(y)).clamp(min=1e-12))

    def criterion(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if adjust is not None:
            logits = logits + adjust
        return torch.nn.functional.cross_entropy(logits, target, weight=weight)

    index_gen = torch.Generator().manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    batches = batch_indices(y.cpu(), steps, batch_size, sampler, index_gen).to(device)
    # torch's Beta takes no generator: the mixing weights come from numpy, seeded the same.
    lams = np.random.default_rng(seed).beta(mixup, mixup, steps) if mixup else None
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    history: list[dict[str, float]] = []
    block = max(1, math.ceil(len(y) / batch_size))  # one history entry per pass's worth
    total = torch.zeros((), device=device)
    net.train()
    for step in range(steps):
        idx = batches[step]
        xb = read(idx).to(device) if read is not None else x[idx]  # type: ignore[index]
        yb = y[idx]
        if augment is not None:
            xb = augment(xb, gen)
        if lams is not None:
            lam = float(lams[step])
            perm = torch.randperm(len(idx), generator=gen, device=device)
            logits = net(lam * xb + (1 - lam) * xb[perm])
            value = lam * criterion(logits, yb) + (1 - lam) * criterion(logits, yb[perm])
        else:
            value = criterion(net(xb), yb)
        optimizer_step(opt, value)
        total += value.detach()
        if (step + 1) % block == 0 or step + 1 == steps:
            n_in = (step % block) + 1
            mean = float(total) / n_in
            if not math.isfinite(mean):
                raise TrainingDivergedError(
                    f"{desc} diverged at step {step + 1}: non-finite loss; lower lr or check "
                    f"the data for extreme values"
                )
            history.append({"loss": mean, "steps": step + 1})
            total.zero_()
    net.eval()
    return history


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


def _train_epochs(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    desc: str,
) -> list[dict[str, float]]:
    """Plain cross-entropy over ``epochs`` passes, batched by the shared :class:`Trainer`."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)

    def step(xb: torch.Tensor, yb: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = torch.nn.functional.cross_entropy(net(xb), yb)
        optimizer_step(opt, loss)
        return {"loss": loss}

    history: list[dict[str, float]] = []
    net.train()
    Trainer(
        epochs=epochs,
        batch_size=batch_size,
        device=x.device,
        verbose=False,
        desc=desc,
        amp=False,
        skip_lone_batch=False,
    ).run(step, x, y, gen, history, modules=net, optimizers={"net": opt})
    net.eval()
    return history
