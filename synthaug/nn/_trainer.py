"""One training loop for every network: generators, detectors and classifiers.

Batching on the device, a progress bar, a history record per epoch (or per block of steps),
early stopping on a validation loss, periodic checkpoints with exact resume, mixed precision,
and a clear stop when a loss turns non-finite. The model supplies a ``step`` (one optimisation
step on one mini-batch, returning its losses); everything around it lives here, so every
network that trains gets all of it.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from synthaug._params import (
    boolean,
    device_like,
    int_range,
    none_or,
    one_of,
    param_field,
    path_like,
    real_range,
    seed_like,
)
from synthaug._utils import progress_bar
from synthaug.errors import CheckpointError, TrainingDivergedError
from synthaug.nn._batch_plans import BatchPlan, Indices, Memo, Shuffled, batch_indices
from synthaug.nn._distributed import (
    Shard,
    all_reduce_sum,
    average_gradients,
    barrier,
    shard_bounds,
    sharded,
    world,
)
from synthaug.nn._privacy import DP, dp_rule

StepFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class TrainingSettings:
    """The training parameters every network generator shares, each declared once.

    A generator takes the group as parameters of its own (``groups=(TrainingSettings,)`` in
    its class statement, see ``synthaug/_params.py``) and hands them to the :class:`Trainer`
    as one object (``settings_from(TrainingSettings, estimator)``); the trainer reads the
    loop's share (``epochs``, ``batch_size``, ``verbose``, ``amp``, ``checkpoint_*``,
    ``resume``), the estimator the rest. Detectors and classifiers without some of these
    parameters build one with the values they need.

    Examples
    --------
    >>> from synthaug.nn import TrainingSettings
    >>> TrainingSettings(epochs=3, verbose=False).batch_size
    64
    """

    epochs: int = param_field(100, int_range(1), "Passes over the training set.")
    batch_size: int = param_field(64, int_range(2), "Samples per mini-batch.")
    lr: float = param_field(1e-3, real_range(0, None, low_open=True), "Learning rate.")
    grad_clip: float | None = param_field(
        None, none_or(real_range(0, None, low_open=True)), "Clip the gradient norm to this value."
    )
    checkpoint_dir: str | Path | None = param_field(
        None,
        none_or(path_like),
        "Write a training checkpoint here every ``checkpoint_every`` epochs.",
    )
    checkpoint_every: int = param_field(10, int_range(1), "Epochs between two checkpoints.")
    resume: bool = param_field(
        False,
        boolean,
        """Continue an interrupted run from ``checkpoint_dir``; it ends where an uninterrupted
        run would have (same weights, same samples).""",
    )
    amp: bool | str = param_field(
        True,
        one_of(True, False, "bf16", "fp16"),
        """Mixed precision. True: bfloat16 autocast on CUDA, ignored on the CPU. ``"bf16"``:
        bfloat16 autocast on any device (the CPU too, where it pays only on chips with bf16
        instructions). ``"fp16"``: float16 autocast with a gradient scaler, CUDA only. Off
        under ``dp``, whose per-sample gradients run in full precision.""",
    )
    compile: bool = param_field(
        False,
        boolean,
        """``torch.compile`` the networks' layers (in place, so files and checkpoints keep
        their keys). The first steps pay the compilation; not under ``dp`` with DP-SGD.""",
    )
    device: str = param_field(
        "auto", device_like, '``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:N]"``.'
    )
    seed: int | None = param_field(
        0,
        seed_like,
        "Seeds weight initialisation, batch order and every draw: same seed, same model on CPU.",
    )
    verbose: bool = param_field(True, boolean, "Show a progress bar.")
    dp: DP | None = param_field(
        None,
        dp_rule,
        """Train with differential privacy (DP-SGD on ``_dp_modules``, Poisson-sampled
        batches; a family that releases its data otherwise, such as ``dp-merf``, says how in
        its docstring; see docs/privacy.md). Needs ``pip install 'synthaug[privacy]'``. The class
        counts the model keeps (``class_counts_``, the proportions of ``sample(y=None)``) are
        then a noisy release accounted in ``privacy_spent_``, and the schedule follows them.""",
    )


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
    """Runs a model's ``step`` over tensors already on the device, for a budget of epochs
    (``settings.epochs``) or of optimiser steps (``steps``).

    The data never leaves the device: a batch plan (``batches``) draws each step's indices
    there with the run's ``torch.Generator`` just before the step, so there is no per-batch
    host-device copy and no per-sample Python. Losses are summed on the device and read once
    per history record: one per epoch, or, with ``steps``, one per ``record_every`` steps.

    Inside an initialised ``torch.distributed`` group (``torchrun``) it trains data-parallel:
    every rank draws the same global batches, steps on its contiguous part of each, and the
    gradients are averaged before every update (``synthaug/nn/_distributed.py``); history is
    over the global batches, only rank 0 shows the progress bar and writes the checkpoint.

    Parameters
    ----------
    settings : TrainingSettings
        The loop reads ``epochs`` (without ``steps``), ``batch_size``, ``verbose`` (a tqdm
        progress bar over epochs, or steps), ``amp``, ``checkpoint_dir``,
        ``checkpoint_every`` (in history records: epochs, or blocks of steps) and ``resume``
        (continue from the checkpoint in ``checkpoint_dir`` when one exists: it holds
        weights, optimiser moments, the random generator's state and the history, so an
        interrupted run continues to the same result as an uninterrupted one). ``amp``:
        True is bfloat16 autocast when ``device`` is CUDA, ignored on the CPU (where it is
        slower on most chips and changes results); ``"bf16"`` bfloat16 autocast on any
        device; ``"fp16"`` float16 autocast on CUDA with a gradient scaler (:attr:`scaler`,
        which steps pass to :func:`optimizer_step`).
    device : torch.device or str
        Where the data and the networks live.
    desc : str
        Label of the progress bar and of the error a non-finite loss raises.
    steps : int or None
        The budget in optimiser steps; None: ``settings.epochs`` epochs.
    batches : BatchPlan or None
        How mini-batches are drawn (``synthaug/nn/_batch_plans.py``): :class:`Shuffled`
        (the default: every sample once per epoch), :class:`Poisson`,
        :class:`WithReplacement` or :class:`Indices`.
    record_every : int or None
        With ``steps``: steps per history record (and per non-finite check); None: one
        epoch's worth.
    early_stopping : int or None
        Stop after this many records without a lower validation loss and restore the best
        weights. Needs a ``validate`` callable in :meth:`run`.

    Examples
    --------
    >>> import torch
    >>> from synthaug.nn import Trainer, TrainingSettings, WithReplacement, optimizer_step
    >>> net = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> def step(xb, yb):
    ...     loss = (net(xb).squeeze(1) - yb).pow(2).mean()
    ...     optimizer_step(opt, loss)
    ...     return {"loss": loss}
    >>> trainer = Trainer(TrainingSettings(batch_size=4, verbose=False), device="cpu",
    ...                   steps=10, batches=WithReplacement(), record_every=5)
    >>> x, y = torch.rand(16, 2), torch.rand(16)
    >>> history = trainer.run(step, x, y, torch.Generator().manual_seed(0), [],
    ...                       modules=net, optimizers={"net": opt})
    >>> [record["steps"] for record in history]
    [5, 10]
    """

    def __init__(
        self,
        settings: TrainingSettings,
        *,
        device: torch.device | str,
        desc: str = "training",
        steps: int | None = None,
        batches: BatchPlan | None = None,
        record_every: int | None = None,
        early_stopping: int | None = None,
    ) -> None:
        self.settings = settings
        self.device = torch.device(device)
        self.desc = desc
        self.steps = steps
        self.batches = Shuffled() if batches is None else batches
        self.record_every = record_every
        self.early_stopping = early_stopping
        amp = settings.amp
        if amp == "fp16" and self.device.type != "cuda":
            raise ValueError("amp='fp16' needs a CUDA device")
        #: The autocast dtype, or None for full precision.
        self.amp_dtype: torch.dtype | None = {
            "bf16": torch.bfloat16,
            "fp16": torch.float16,
            True: torch.bfloat16 if self.device.type == "cuda" else None,
        }.get(amp)
        #: The float16 gradient scaler, or None.
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        dir_ = settings.checkpoint_dir
        self.checkpoint_dir = None if dir_ is None else Path(dir_)

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
        """Train; append one record per epoch (``{"epoch": i, <loss>: mean, ...}``), or with
        ``steps`` per block of steps (``{"steps": steps done, <loss>: mean, ...}``), to
        ``history``. Each loss is its mean over the record's samples.

        Parameters
        ----------
        step : callable
            ``step(x_batch, y_batch) -> {name: scalar tensor}``; performs the update.
        x, y : torch.Tensor
            All training samples and labels, on the device.
        generator : torch.Generator
            Drives the batch draws (and whatever noise ``step`` draws from it).
        history : list
            Receives the records.
        modules, optimizers
            Everything whose state a checkpoint must hold.
        validate : callable, optional
            Returns the validation loss (a scalar tensor); recorded as ``val_loss``.
        fingerprint : str
            Describes the model and data; a checkpoint with another fingerprint is refused.
        """
        if self.early_stopping is not None and validate is None:
            raise ValueError("early stopping needs a validation loss")
        if len(x) == 0:
            raise ValueError("nothing to train on: x holds no samples")
        per_epoch = self.batches.steps_per_epoch(len(x), self.settings.batch_size)
        by_step = self.steps is not None
        if self.steps is None:
            total, block = self.settings.epochs * per_epoch, per_epoch
        else:
            total, block = self.steps, self.record_every or per_epoch
        rounds = math.ceil(total / block)
        state = _LoopState()
        trained = _Trained(history, generator, modules, optimizers, fingerprint)
        if self.settings.resume and self.checkpoint_dir is not None:
            self._restore(state, trained, rounds)
        rank, _ = world()
        bar = progress_bar(
            show=self.settings.verbose and rank == 0,
            total=total if by_step else rounds,
            initial=min(state.rounds * block, total) if by_step else state.rounds,
            desc=self.desc,
            unit="step" if by_step else "epoch",
            leave=False,
        )
        for r in range(state.rounds, rounds):
            steps = range(r * block, min((r + 1) * block, total))
            losses = self._steps(step, x, y, generator, steps, state.memo, bar if by_step else None)
            record = {"steps": steps.stop} if by_step else {"epoch": float(r + 1)}
            record.update(losses)
            if validate is not None:
                with torch.no_grad():
                    record["val_loss"] = float(validate())
            bad = [k for k, v in record.items() if not math.isfinite(v)]
            if bad:
                where = f"by step {steps.stop}" if by_step else f"at epoch {r + 1}"
                raise TrainingDivergedError(
                    f"{self.desc}: training diverged {where}: non-finite {', '.join(bad)}; lower "
                    f"the learning rate, clip the gradients, or check the data for extreme values"
                )
            history.append(record)
            state.rounds = r + 1
            stop = self._track_best(state, record, modules)
            if not by_step:
                bar.update()
            if self.settings.verbose:
                bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()})
            last = stop or state.rounds == rounds
            if self.checkpoint_dir is not None and (
                last or state.rounds % self.settings.checkpoint_every == 0
            ):
                if rank == 0:  # every rank holds the same state: one writes it
                    self._save(state, trained)
                barrier()
            if stop:
                break
        bar.close()
        if state.best_weights is not None:
            modules.load_state_dict(state.best_weights)
        return history

    # -- one record's steps ---------------------------------------------------------------
    def _steps(
        self,
        step: StepFn,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator,
        steps: range,
        memo: Memo,
        bar: Any,
    ) -> dict[str, float]:
        """Run ``steps``; the sample-weighted mean of each loss over them."""
        sums: dict[str, torch.Tensor] = {}
        seen = 0
        rank, size = world()
        n, batch_size = len(x), self.settings.batch_size
        for i in steps:
            idx = self.batches.draw(i, n, batch_size, generator, memo)
            if bar is not None:
                bar.update()
            shard = None
            if size > 1:
                # Every rank steps on its part; batches too small to give each rank a part
                # (two rows each when batch statistics need them) are skipped.
                if len(idx) < size * (2 if self.batches.skip_lone else 1):
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
        # One device-to-host transfer per record (and one all-reduce when data-parallel).
        totals = torch.stack([*(sums[k] for k in keys), torch.tensor(float(seen), device=x.device)])
        totals = all_reduce_sum(totals)
        values = (totals[:-1] / totals[-1].clamp(min=1)).tolist() if keys else []
        return dict(zip(keys, values, strict=True))

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
    def _save(self, state: _LoopState, trained: _Trained) -> None:
        assert self.checkpoint_dir is not None
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "fingerprint": trained.fingerprint,
            "epoch": state.rounds,  # history records done (the key files already carry)
            "history": trained.history,
            "modules": trained.modules.state_dict(),
            "optimizers": {k: opt.state_dict() for k, opt in trained.optimizers.items()},
            "generator": trained.generator.get_state(),
            "batches": state.memo,
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

    def _restore(self, state: _LoopState, trained: _Trained, rounds: int) -> None:
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
        if payload.get("fingerprint") != trained.fingerprint:
            raise CheckpointError(
                f"cannot resume from {path}: it was written for another model or dataset "
                f"({payload.get('fingerprint')!r}, this run is {trained.fingerprint!r}); use another "
                f"checkpoint_dir or resume=False"
            )
        trained.modules.load_state_dict(payload["modules"])
        for name, opt in trained.optimizers.items():
            opt.load_state_dict(payload["optimizers"][name])
        trained.generator.set_state(payload["generator"].cpu())
        trained.history[:] = payload["history"]
        state.rounds = min(int(payload["epoch"]), rounds)
        state.memo = dict(payload.get("batches", {}))  # files of earlier releases have none
        state.best_loss = float(payload["best_loss"])
        state.best_weights = payload["best_weights"]
        state.bad_epochs = int(payload["bad_epochs"])
        if self.early_stopping is not None and state.bad_epochs >= self.early_stopping:
            state.rounds = rounds  # the interrupted run had already stopped early


@dataclass(frozen=True)
class _Trained:
    """What a run trains and records, which its checkpoints hold besides the loop's state."""

    history: list[dict[str, float]]
    generator: torch.Generator
    modules: nn.Module
    optimizers: Mapping[str, torch.optim.Optimizer]
    fingerprint: str


class _LoopState:
    """What the loop carries across history records (and into checkpoints)."""

    def __init__(self) -> None:
        self.rounds = 0  # history records done: epochs, or blocks of steps
        self.memo: Memo = {}  # the batch plan's scratch (see _batch_plans.py)
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

    The training of synthaug's small classifiers (:class:`~synthaug.metrics.CNNClassifier`,
    :class:`~synthaug.metrics.FeatureExtractor`), run by the shared :class:`Trainer` (one
    history record per pass's worth of steps, an error on a non-finite loss). ``net``, ``x``
    and ``y`` are on one device; ``net`` is left in eval mode.

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
    deterministic on the CPU. With ``epochs`` and none of the options the batches are the
    :class:`Shuffled` passes of the generators (every sample once per epoch, a lone last
    sample trained); otherwise they are computed beforehand by :func:`batch_indices` and
    given to the trainer as :class:`Indices`.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    device = y.device
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

    settings = TrainingSettings(
        epochs=epochs or 1, batch_size=batch_size, lr=lr, amp=False, verbose=False, seed=seed
    )
    plan: BatchPlan
    lams: Iterator[float] | None = None
    plain = loss == "ce" and sampler == "shuffle" and not mixup and augment is None
    if steps is None and plain and read is None:
        # Plain passes over one tensor: the generators' batches (every sample once per
        # epoch, in a fresh order; a lone last sample trained too).
        gen = torch.Generator(device=device).manual_seed(seed)
        plan = Shuffled(skip_lone=False)
    else:
        if steps is None:
            steps = (epochs or 1) * math.ceil(len(y) / batch_size)
        # The batches come from their own CPU stream, so they are the same on any device.
        index_gen = torch.Generator().manual_seed(seed)
        gen = torch.Generator(device=device).manual_seed(seed + 1)
        plan = Indices(batch_indices(y.cpu(), steps, batch_size, sampler, index_gen).to(device))
        if mixup:
            # torch's Beta takes no generator: the mixing weights come from numpy, seeded.
            lams = iter(np.random.default_rng(seed).beta(mixup, mixup, steps).tolist())
    trainer = Trainer(settings, device=device, desc=desc, steps=steps, batches=plan)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)

    def step(rows: torch.Tensor, yb: torch.Tensor) -> dict[str, torch.Tensor]:
        xb = read(rows).to(device) if read is not None else x[rows]  # type: ignore[index]
        if augment is not None:
            xb = augment(xb, gen)
        with trainer.autocast():
            if lams is not None:
                lam = next(lams)
                perm = torch.randperm(len(rows), generator=gen, device=device)
                logits = net(lam * xb + (1 - lam) * xb[perm])
                value = lam * criterion(logits, yb) + (1 - lam) * criterion(logits, yb[perm])
            else:
                value = criterion(net(xb), yb)
        optimizer_step(opt, value, scaler=trainer.scaler)
        return {"loss": value}

    history: list[dict[str, float]] = []
    net.train()
    # The trainer cuts batches of row numbers; the step reads the rows (or has them read).
    rows = torch.arange(len(y), device=device)
    trainer.run(step, rows, y, gen, history, modules=net, optimizers={"net": opt})
    net.eval()
    return history
