"""The base that owns training: what every network generator family shares.

:class:`TorchGenerator` declares the common training parameters and implements ``fit``
through the shared :class:`~synthaug.nn.Trainer`, with seeding, differential privacy and
checkpoints. A family implements only its networks (``_build_modules``), its optimisers, one
training step (``_train_step``) and its sampling (``_sample``); see ``docs/extending.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from synthaug._params import (
    Rule,
    boolean,
    device_like,
    int_range,
    none_or,
    real_range,
    seed_like,
    settings_from,
)
from synthaug._utils import check_seed, resolve_device
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.generators._base import BaseGenerator
from synthaug.nn import (
    DP,
    CountRelease,
    Poisson,
    PrivateTraining,
    Shuffled,
    Trainer,
    TrainingSettings,
    data_parallel_device,
    describe,
    dp_rule,
    init_data_parallel,
    make_dp_compatible,
    optimizer_step,
    quiet_hooks,
    release_counts,
    seeded,
    validation_split,
)


@dataclass
class TrainingContext:
    """What a family's training hooks get from :class:`TorchGenerator` during ``fit``.

    Attributes
    ----------
    trainer : Trainer
        The shared loop (its ``autocast()`` gives mixed precision on CUDA when enabled).
    generator : torch.Generator
        The run's random stream on the device: batch order, and every draw a step makes.
    optimizers : dict of str to torch.optim.Optimizer
        From ``_make_optimizers``, already swapped for DP-SGD ones when ``dp`` is set.
    seed : int
        The run's seed.
    grad_clip : float or None
        The generator's gradient clipping bound.
    x, y : torch.Tensor
        The training samples and labels on the device (without a validation hold-out).
    state : dict
        Scratch space a family may fill in ``_start_training`` for its steps.
    private : PrivateTraining or None
        The DP-SGD run when ``dp`` is set.
    """

    trainer: Trainer
    generator: torch.Generator
    optimizers: dict[str, torch.optim.Optimizer]
    seed: int
    grad_clip: float | None
    x: torch.Tensor
    y: torch.Tensor
    state: dict[str, Any] = field(default_factory=dict)
    private: PrivateTraining | None = None

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for forward passes and losses: the autocast ``amp`` asks for, if any."""
        return self.trainer.autocast()

    def update(
        self,
        optimizer: str,
        loss: torch.Tensor,
        params: Any = None,
        grad_clip: float | None | str = "default",
    ) -> None:
        """Back-propagate ``loss`` and step the optimiser named ``optimizer``.

        Gradients of ``params`` are clipped to ``grad_clip`` (default: the generator's).
        """
        clip = self.grad_clip if grad_clip == "default" else grad_clip
        opt = self.optimizers[optimizer]
        if self.private is not None and self.private.is_ghost(opt):
            raise RuntimeError(
                f"the private network behind optimizer {optimizer!r} is ghost-clipped: its step "
                f"must call update_per_sample with per-sample losses"
            )
        optimizer_step(opt, loss, params, clip, self.trainer.scaler)  # type: ignore[arg-type]

    def update_per_sample(
        self,
        optimizer: str,
        losses: torch.Tensor,
        params: Any = None,
        grad_clip: float | None | str = "default",
    ) -> None:
        """Step the optimiser named ``optimizer`` on the mean of the per-sample ``losses``.

        Without ``dp`` this is ``update(optimizer, losses.mean(), ...)``. A private network a
        family lists in ``_per_sample_updates`` is clipped by ghost clipping: each sample's
        gradient norm from its layer inputs and output gradients, without materialising
        per-sample gradients, then a second backward pass on the clipped weights.
        """
        opt = self.optimizers[optimizer]
        if self.private is not None and self.private.is_ghost(opt):
            loss = self.private.ghost_loss(opt, losses)
            clip = self.grad_clip if grad_clip == "default" else grad_clip
            optimizer_step(opt, loss, params, clip)  # type: ignore[arg-type]
            return
        self.update(optimizer, losses.mean(), params, grad_clip)


# Rules for the training parameters every torch generator has (families add their own).
_TRAINING_CONSTRAINTS: dict[str, Rule] = {
    "epochs": int_range(1),
    "batch_size": int_range(2),
    "lr": real_range(0, None, low_open=True),
    "grad_clip": none_or(real_range(0, None, low_open=True)),
    "early_stopping": none_or(int_range(1)),
    "validation_fraction": real_range(0, 0.5),
    "checkpoint_dir": lambda v: (
        None if v is None or isinstance(v, (str, Path)) else "None or a path"
    ),
    "checkpoint_every": int_range(1),
    "resume": boolean,
    "amp": lambda v: (
        None if v in (True, False, "bf16", "fp16") else 'True, False, "bf16" or "fp16"'
    ),
    "compile": boolean,
    "device": device_like,
    "seed": seed_like,
    "verbose": boolean,
    "dp": dp_rule,
}


class TorchGenerator(BaseGenerator):
    """A generator made of PyTorch networks: declares the common training parameters and
    owns ``fit``.

    ``fit`` builds the family's networks (seeded), its optimisers (DP-SGD ones with ``dp``),
    holds out a validation part when the family supports early stopping, and runs the shared
    :class:`~synthaug.nn.Trainer` over the family's ``_train_step``: progress bar, per-epoch
    history, early stopping, checkpoints with exact resume, mixed precision on CUDA and a clear
    error on a non-finite loss come with it.

    A family (see ``docs/extending.md``) lists these parameters in its own ``__init__``
    signature (scikit-learn reads parameters from the signature) and passes them on to
    ``super().__init__``; it implements

    - ``_build_modules() -> nn.ModuleDict``: the untrained networks, from parameters and the
      fitted shape attributes (``sample_shape_``, ``n_classes_``);
    - ``_make_optimizers() -> {name: optimizer}`` (default: one Adam per network, at ``lr``);
    - ``_train_step(x, y, ctx) -> {loss name: scalar tensor}``: one update on one mini-batch,
      using ``ctx.update(name, loss, params)`` (a :class:`TrainingContext`);
    - ``_sample(labels, generator) -> tensor``: samples in [0, 1] for ``labels``;

    and optionally ``_start_training(ctx)`` / ``_end_training(ctx)`` (work around the loop),
    ``_batched_tensors(ctx)`` (what the mini-batches are cut from, when not the samples),
    ``_validation_loss(x, y, ctx)`` (with parameters ``early_stopping`` and
    ``validation_fraction``, for early stopping), and ``_dp_modules`` (the networks that see
    real data, trained with DP-SGD when ``dp`` is set).

    Parameters
    ----------
    epochs : int
        Passes over the training set.
    batch_size : int
    lr : float
        Learning rate.
    grad_clip : float or None
        Clip the gradient norm to this value.
    checkpoint_dir : str or None
        Write a training checkpoint here every ``checkpoint_every`` epochs.
    checkpoint_every : int
    resume : bool
        Continue an interrupted run from ``checkpoint_dir``; it ends where an uninterrupted
        run would have (same weights, same samples).
    amp : bool or {"bf16", "fp16"}
        Mixed precision. True: bfloat16 autocast on CUDA, ignored on the CPU. ``"bf16"``:
        bfloat16 autocast on any device (the CPU too, where it pays only on chips with bf16
        instructions). ``"fp16"``: float16 autocast with a gradient scaler, CUDA only. Off
        under ``dp``, whose per-sample gradients run in full precision.
    compile : bool
        ``torch.compile`` the networks' layers (in place, so files and checkpoints keep their
        keys). The first steps pay the compilation; not under ``dp``.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:N]"``.
    seed : int
        Seeds weight initialisation, batch order and every draw: same seed, same model on CPU.
    verbose : bool
        Show a progress bar.
    dp : synthaug.DP or None
        Train with differential privacy (DP-SGD on ``_dp_modules``, Poisson-sampled batches;
        see docs/privacy.md). Needs ``pip install 'synthaug[privacy]'``. The class counts
        the model keeps (``class_counts_``, the proportions of ``sample(y=None)``) are then a
        noisy release accounted in ``privacy_spent_``, and the schedule follows them.
    """

    _parameter_constraints: ClassVar[dict[str, Rule]] = _TRAINING_CONSTRAINTS
    # The networks that see real data: with ``dp=`` they are the ones trained with DP-SGD.
    _dp_modules: ClassVar[tuple[str, ...]] = ()
    # Those of them whose steps call ``ctx.update_per_sample``: trained with ghost clipping.
    _per_sample_updates: ClassVar[tuple[str, ...]] = ()
    # True for a family whose steps are data-parallel safe (per-row draws through
    # ``synthaug.nn.draw_rows``, losses that are means over the batch): fit then runs under
    # torchrun (see docs/generators.md).
    _data_parallel: ClassVar[bool] = False
    # True for a family whose conv networks run faster with channels_last weights (and whose
    # code never views activations as contiguous); not under dp=, for Opacus' per-sample hooks.
    _channels_last: ClassVar[bool] = False

    def __init__(
        self,
        *,
        epochs: int = 100,
        batch_size: int = 64,
        lr: float = 1e-3,
        grad_clip: float | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 10,
        resume: bool = False,
        amp: bool | str = True,
        compile: bool = False,
        device: str = "auto",
        seed: int = 0,
        verbose: bool = True,
        dp: DP | None = None,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.grad_clip = grad_clip
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.amp = amp
        self.compile = compile
        self.device = device
        self.seed = seed
        self.verbose = verbose
        self.dp = dp

    # -- the family's hooks -------------------------------------------------------------------
    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam optimiser at ``lr`` per network in ``modules_``."""
        return {
            name: torch.optim.Adam(module.parameters(), lr=self.lr)
            for name, module in self.modules_.items()
        }

    def _start_training(self, ctx: TrainingContext) -> None:
        """Called once before the first epoch (default: nothing)."""

    def _train_step(
        self, x: torch.Tensor, y: torch.Tensor, ctx: TrainingContext
    ) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _end_training(self, ctx: TrainingContext) -> None:
        """Called once after the last epoch, still in training mode (default: nothing)."""

    def _batched_tensors(self, ctx: TrainingContext) -> tuple[torch.Tensor, torch.Tensor]:
        """What the trainer slices into the mini-batches ``_train_step(x, y, ctx)`` gets
        (default: ``ctx.x, ctx.y``; called after ``_start_training``).

        A family that must know which training items a batch holds (to pair each with
        another item, say) returns their indices as ``x`` and reads the items from ``ctx``.
        """
        return ctx.x, ctx.y

    def _validation_loss(
        self, x: torch.Tensor, y: torch.Tensor, ctx: TrainingContext
    ) -> torch.Tensor:  # pragma: no cover - only families with early stopping
        raise NotImplementedError(f"{type(self).__name__} has no validation loss")

    # -- fit --------------------------------------------------------------------------------
    def _check_param_combinations(self) -> None:
        name = type(self).__name__
        early_stopping = getattr(self, "early_stopping", None)
        if self.dp is not None and self.stores_training_images:
            raise InvalidParameterError(
                f"{name} cannot train with dp: it keeps training images (or their codes) in "
                f"the model and samples from them, which DP-SGD does not protect; use 'cvae' "
                f"or 'cgan' with dp= for a private model"
            )
        if self.dp is not None and self.compile:
            raise InvalidParameterError(
                f"{name}: compile=True cannot be combined with dp: Opacus' per-sample hooks "
                f"need the eager layers; set compile=False"
            )
        if self.amp == "fp16" and resolve_device(self.device).type != "cuda":
            raise InvalidParameterError(
                f"{name}: amp='fp16' needs a CUDA device (float16 autocast with a gradient "
                f"scaler); use amp='bf16' or amp=False on the CPU"
            )
        if self.resume and self.checkpoint_dir is None:
            raise InvalidParameterError(
                f"{name}: resume=True needs checkpoint_dir, the folder the interrupted run "
                f"wrote its checkpoint to"
            )
        if self.dp is not None and early_stopping:
            raise InvalidParameterError(
                f"{name}: early_stopping cannot be combined with dp: it picks the epoch by an "
                f"un-noised validation loss on real records, which the DP guarantee does not "
                f"cover; set early_stopping=None"
            )
        if early_stopping is not None and not getattr(self, "validation_fraction", 0):
            raise InvalidParameterError(
                f"{name}: early_stopping needs validation_fraction > 0 (the share of each "
                f"class held out to compute the validation loss)"
            )

    def _fit(self, dataset: ImageDataset) -> None:
        self.device_ = data_parallel_device(resolve_device(self.device))
        self._check_data_parallel(*init_data_parallel(self.device_))
        seed = check_seed(self.seed)
        counts = self._release_counts(seed)
        dp_context = quiet_hooks() if self.dp is not None else contextlib.nullcontext()
        with seeded(seed), dp_context:
            self._train(dataset, seed, counts)
        self._end_private_training()

    def _check_data_parallel(self, rank: int, size: int) -> None:
        """Refuse what data-parallel training (``size`` processes) cannot do exactly."""
        if size == 1:
            return
        name = type(self).__name__
        if not self._data_parallel:
            raise InvalidParameterError(
                f"{name} does not train data-parallel (its steps draw or batch in ways the "
                f"ranks cannot split); run it in one process, or use 'cvae' or 'cgan' under "
                f"torchrun"
            )
        if self.dp is not None:
            raise InvalidParameterError(
                f"{name}: dp= cannot be combined with data-parallel training ({size} "
                f"processes): the privacy accounting assumes one process drawing the batches; "
                f"train in one process"
            )
        if self.batch_size < 2 * size:
            raise InvalidParameterError(
                f"{name}: batch_size={self.batch_size} is the global batch and must give each "
                f"of the {size} processes at least 2 rows; use batch_size >= {2 * size}"
            )

    def _fit_released(self, dataset: ImageDataset, counts: CountRelease) -> TorchGenerator:
        """``fit`` with class counts released already, by a meta-estimator under the same
        budget (:class:`PerClass` releases every class's count once and gives each member its
        own); this fit then releases none of its own, and accounts the one given."""
        self._given_counts = counts
        try:
            return self.fit(dataset)
        finally:
            self.__dict__.pop("_given_counts", None)

    def _release_counts(self, seed: int) -> CountRelease | None:
        """With ``dp``, swap the exact ``class_counts_`` for a DP release and return it."""
        if self.dp is None:
            return None
        counts = self.__dict__.pop("_given_counts", None)
        if counts is None:
            counts = release_counts(self.class_counts_, self.dp, seed)
        self.class_counts_ = dict(counts.counts)
        return counts

    def _train(self, dataset: ImageDataset, seed: int, counts: CountRelease | None) -> None:
        self.modules_ = self._new_modules().to(self.device_)
        if self.compile:
            for network in self.modules_.values():
                for layer in network.children():  # families call their layers, not forward
                    layer.compile()
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        optimizers = self._private_optimizers(
            self._make_optimizers(), n_samples=len(dataset), generator=gen, counts=counts
        )
        trainer = self._make_trainer()
        x = dataset.images.to(self.device_)
        y = dataset.labels.to(self.device_)
        ctx = TrainingContext(
            trainer,
            gen,
            optimizers,
            seed,
            self.grad_clip,
            x,
            y,
            private=self.__dict__.get("_dp_run"),
        )
        validate: Callable[[], torch.Tensor] | None = None
        if getattr(self, "early_stopping", None) is not None:
            train_idx, val_idx = validation_split(dataset.labels, self.validation_fraction, seed)
            x_val, y_val = x[val_idx.to(self.device_)], y[val_idx.to(self.device_)]
            ctx.x, ctx.y = x[train_idx.to(self.device_)], y[train_idx.to(self.device_)]
            if len(x_val) == 0:
                raise InvalidParameterError(
                    f"validation_fraction={self.validation_fraction} holds out no sample of "
                    f"this dataset; raise it or set early_stopping=None"
                )

            def validate() -> torch.Tensor:
                return self._validation_loss(x_val, y_val, ctx)

        self._start_training(ctx)
        batch_x, batch_y = self._batched_tensors(ctx)
        self.modules_.train()
        trainer.run(
            lambda xb, yb: self._train_step(xb, yb, ctx),
            batch_x,
            batch_y,
            gen,
            self.history_,
            modules=self.modules_,
            optimizers=optimizers,
            validate=validate,
            fingerprint=self._fingerprint(len(dataset)),
        )
        self._end_training(ctx)
        self.modules_.eval()

    def _abort_fit(self) -> None:
        run = self.__dict__.pop("_dp_run", None)
        if run is not None:
            run.close()
        super()._abort_fit()

    def _make_trainer(self) -> Trainer:
        """The shared :class:`Trainer`, given this estimator's training settings."""
        run = getattr(self, "_dp_run", None)
        # Opacus' per-sample gradients run in full precision.
        settings = settings_from(TrainingSettings, self, amp=self.amp if self.dp is None else False)
        return Trainer(
            settings,
            device=self.device_,
            desc=type(self).__name__,
            early_stopping=getattr(self, "early_stopping", None),
            # DP-SGD's accounting assumes Poisson sampling, at the released count's rate.
            batches=Shuffled()
            if self.dp is None
            else Poisson(None if run is None else run.schedule_n),
        )

    def _fingerprint(self, n_samples: int) -> str:
        """What a resumable checkpoint must agree on: model type, parameters, data shape."""
        ignored = {
            "epochs",
            "verbose",
            "resume",
            "checkpoint_dir",
            "checkpoint_every",
            "device",
            "compile",
        }
        params = {k: v for k, v in self.get_params().items() if k not in ignored}
        return describe(
            model=type(self).__name__,
            params=sorted((k, repr(v)) for k, v in params.items()),
            shape=self.sample_shape_,
            n=n_samples,
            counts=sorted(self.class_counts_.items()),
        )

    # -- differential privacy (see synthaug/nn/_privacy.py) -----------------------------------
    def _new_modules(self) -> nn.ModuleDict:
        """``_build_modules()``, with the networks in ``_dp_modules`` made DP-compatible when
        ``dp`` is set (batch norm to group norm, no spectral norm); used by fit and load."""
        modules = self._build_modules()
        if self.dp is not None:
            for name in self._dp_modules:
                modules[name] = make_dp_compatible(modules[name])
        elif self._channels_last:
            # Conv weights in channels_last make the conv layers run channels_last: 1.2-1.4x
            # faster training and sampling at 64x64 on the CPU (docs/generators.md). Files
            # store them contiguous, so saved models do not depend on it.
            modules = modules.to(memory_format=torch.channels_last)
        return modules

    def _private_optimizers(
        self,
        optimizers: dict[str, torch.optim.Optimizer],
        *,
        n_samples: int,
        generator: torch.Generator,
        counts: CountRelease | None = None,
    ) -> dict[str, torch.optim.Optimizer]:
        """With ``dp`` set, swap the optimisers of ``_dp_modules`` for DP-SGD ones.

        The batches are then Poisson-sampled (``_make_trainer`` does so, at the rate the
        released ``counts`` give) and the losses of those networks must be means over the
        batch. Without ``dp`` it returns ``optimizers``.
        """
        if self.dp is None:
            return optimizers
        run = PrivateTraining(
            self.dp,
            n_samples=n_samples,
            batch_size=self.batch_size,
            epochs=self.epochs,
            generator=generator,
            counts=counts,
        )
        self._dp_run = run
        optimizers = dict(optimizers)
        for name in self._dp_modules:
            optimizers[name] = run.make_private(
                self.modules_[name], optimizers[name], ghost=name in self._per_sample_updates
            )
        return optimizers

    @contextlib.contextmanager
    def _private_hooks_paused(self) -> Iterator[None]:
        """For passes through the DP-trained networks that are not their DP step."""
        run = getattr(self, "_dp_run", None)
        with run.paused() if run is not None else contextlib.nullcontext():
            yield

    def _end_private_training(self) -> None:
        """Remove the DP hooks and record ``privacy_spent_`` from the accountant."""
        run = self.__dict__.pop("_dp_run", None)
        if run is None:
            if self.dp is not None:
                raise NotImplementedError(
                    f"{type(self).__name__} accepted dp= but did not train privately; list "
                    f"the networks that see real data in _dp_modules"
                )
            return
        run.close()
        self.privacy_ = run.summary(len(self.history_))
        self.privacy_spent_ = (self.privacy_["epsilon"], self.privacy_["delta"])
