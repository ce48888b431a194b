"""The base that owns training: what every network generator family shares.

:class:`TorchGenerator` declares the common training parameters and implements ``fit``
through the shared :class:`~synthaug.nn.Trainer`, with seeding, differential privacy and
checkpoints. A family implements only its networks (``_build_modules``), its optimisers, one
training step (``_train_step``) and its sampling (``_sample``); see ``docs/extending.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from synthaug._params import (
    settings_from,
)
from synthaug._utils import check_seed, resolve_device
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.generators._base import BaseGenerator
from synthaug.nn import (
    CountRelease,
    Poisson,
    PrivateTraining,
    Shuffled,
    Trainer,
    TrainingSettings,
    data_parallel_device,
    describe,
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

    def private_paused(self) -> contextlib.AbstractContextManager:
        """Context for passes through the DP-trained networks that are not their DP step
        (a GAN's generator step through its private discriminator)."""
        return self.private.paused() if self.private is not None else contextlib.nullcontext()

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


class TorchGenerator(BaseGenerator, groups=(TrainingSettings,)):
    """A generator made of PyTorch networks: declares the common training parameters and
    owns ``fit``.

    ``fit`` builds the family's networks (seeded), its optimisers (DP-SGD ones with ``dp``),
    holds out a validation part when the family supports early stopping, and runs the shared
    :class:`~synthaug.nn.Trainer` over the family's ``_train_step``: progress bar, per-epoch
    history, early stopping, checkpoints with exact resume, mixed precision on CUDA and a clear
    error on a non-finite loss come with it.

    A family (see ``docs/extending.md``) declares only the parameters it adds (``Param``)
    or whose default it changes (``Default``), and implements

    - ``_build_modules() -> nn.ModuleDict``: the untrained networks, from parameters and the
      fitted shape attributes (``sample_shape_``, ``n_classes_``);
    - ``_make_optimizers() -> {name: optimizer}`` (default: one Adam per network, at ``lr``);
    - ``_train_step(x, y, ctx) -> {loss name: scalar tensor}``: one update on one mini-batch,
      using ``ctx.update(name, loss, params)`` (a :class:`TrainingContext`);
    - ``_sample(labels, generator) -> tensor``: samples in [0, 1] for ``labels``;

    and optionally ``_start_training(ctx)`` / ``_end_training(ctx)`` (work around the loop),
    ``_batched_tensors(ctx)`` (what the mini-batches are cut from, when not the samples),
    ``_early_stopping()`` and ``_validation_loss(x, y, ctx)`` (for early stopping), and
    ``_dp_modules`` (the networks that see real data, trained with DP-SGD when ``dp`` is set).

    Its training parameters are the :class:`~synthaug.nn.TrainingSettings` group, declared
    once there; ``_make_trainer`` hands them to the :class:`~synthaug.nn.Trainer` as one object.
    """

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
        stopping = self._early_stopping()
        if self.dp is not None and self.stores_training_images:
            raise InvalidParameterError(
                f"{name} cannot train with dp: it keeps training images (or their codes) in "
                f"the model and samples from them, which DP-SGD does not protect; use 'cvae' "
                f"or 'cgan' with dp= for a private model"
            )
        if self.dp is not None and self.compile and self._dp_modules:
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
        if self.dp is not None and stopping is not None:
            raise InvalidParameterError(
                f"{name}: early_stopping cannot be combined with dp: it picks the epoch by an "
                f"un-noised validation loss on real records, which the DP guarantee does not "
                f"cover; set early_stopping=None"
            )
        if stopping is not None and not stopping[1]:
            raise InvalidParameterError(
                f"{name}: early_stopping needs validation_fraction > 0 (the share of each "
                f"class held out to compute the validation loss)"
            )

    def _early_stopping(self) -> tuple[int, float] | None:
        """``(patience, validation_fraction)`` for a family that stops early on a validation
        loss (it then implements ``_validation_loss``); default: never."""
        return None

    def _fit(self, dataset: ImageDataset, counts: CountRelease | None = None) -> None:
        self.device_ = data_parallel_device(resolve_device(self.device))
        self._check_data_parallel(*init_data_parallel(self.device_))
        seed = check_seed(self.seed)
        counts = self._release_counts(seed, counts)
        dp_context = quiet_hooks() if self.dp is not None else contextlib.nullcontext()
        with seeded(seed), dp_context:
            private = self._train(dataset, seed, counts)
        self._end_private_training(private)

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
        return self._fit_checked(dataset, counts=counts)

    def _release_counts(self, seed: int, given: CountRelease | None) -> CountRelease | None:
        """With ``dp``, swap the exact ``class_counts_`` for a DP release (``given``, when a
        meta-estimator released it) and return it."""
        if self.dp is None:
            return None
        counts = given if given is not None else release_counts(self.class_counts_, self.dp, seed)
        self.class_counts_ = dict(counts.counts)
        return counts

    def _train(
        self, dataset: ImageDataset, seed: int, counts: CountRelease | None
    ) -> PrivateTraining | None:
        """Build the networks and train them; the DP-SGD run (open) when ``dp`` is set."""
        self.modules_ = self._new_modules().to(self.device_)
        if self.compile:
            for network in self.modules_.values():
                for layer in network.children():  # families call their layers, not forward
                    layer.compile()
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        optimizers, private = self._private_optimizers(
            self._make_optimizers(), n_samples=len(dataset), generator=gen, counts=counts
        )
        try:
            self._run_loop(dataset, seed, gen, optimizers, private)
        except BaseException:
            if private is not None:
                private.close()  # the hooks must not outlive a failed fit
            raise
        return private

    def _run_loop(
        self,
        dataset: ImageDataset,
        seed: int,
        gen: torch.Generator,
        optimizers: dict[str, torch.optim.Optimizer],
        private: PrivateTraining | None,
    ) -> None:
        stopping = self._early_stopping()
        trainer = self._make_trainer(private, None if stopping is None else stopping[0])
        x = dataset.images.to(self.device_)
        y = dataset.labels.to(self.device_)
        ctx = TrainingContext(trainer, gen, optimizers, seed, self.grad_clip, x, y, private=private)
        validate: Callable[[], torch.Tensor] | None = None
        if stopping is not None:
            fraction = stopping[1]
            train_idx, val_idx = validation_split(dataset.labels, fraction, seed)
            x_val, y_val = x[val_idx.to(self.device_)], y[val_idx.to(self.device_)]
            ctx.x, ctx.y = x[train_idx.to(self.device_)], y[train_idx.to(self.device_)]
            if len(x_val) == 0:
                raise InvalidParameterError(
                    f"validation_fraction={fraction} holds out no sample of this dataset; raise "
                    f"it or set early_stopping=None"
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

    def _make_trainer(self, private: PrivateTraining | None, patience: int | None) -> Trainer:
        """The shared :class:`Trainer`, given this estimator's training settings."""
        # Opacus' per-sample gradients run in full precision.
        settings = settings_from(TrainingSettings, self, amp=self.amp if self.dp is None else False)
        return Trainer(
            settings,
            device=self.device_,
            desc=type(self).__name__,
            early_stopping=patience,
            # DP-SGD's accounting assumes Poisson sampling, at the released count's rate.
            batches=Shuffled()
            if self.dp is None
            else Poisson(None if private is None else private.schedule_n),
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
    ) -> tuple[dict[str, torch.optim.Optimizer], PrivateTraining | None]:
        """With ``dp`` set, swap the optimisers of ``_dp_modules`` for DP-SGD ones; returns
        the optimisers and the DP-SGD run (None without ``dp``).

        The batches are then Poisson-sampled (``_make_trainer`` does so, at the rate the
        released ``counts`` give) and the losses of those networks must be means over the
        batch.
        """
        if self.dp is None:
            return optimizers, None
        run = PrivateTraining(
            self.dp,
            n_samples=n_samples,
            batch_size=self.batch_size,
            epochs=self.epochs,
            generator=generator,
            counts=counts,
        )
        optimizers = dict(optimizers)
        for name in self._dp_modules:
            optimizers[name] = run.make_private(
                self.modules_[name], optimizers[name], ghost=name in self._per_sample_updates
            )
        return optimizers, run

    def _end_private_training(self, run: PrivateTraining | None) -> None:
        """Remove the DP hooks and record ``privacy_spent_`` from the accountant."""
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
