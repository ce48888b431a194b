"""The estimator contract every generator follows, and the base that owns training.

:class:`BaseGenerator` writes the contract once: ``fit`` and ``sample`` validate and convert
their inputs, then call the family's private ``_fit`` / ``_sample`` (template method, as
imbalanced-learn's ``fit_resample``). :class:`TorchGenerator` adds what every network family
shares: the common training parameters, the training loop (through :class:`~synthaug.nn.Trainer`),
seeding, differential privacy and checkpoints. A family then implements only its networks
(``_build_modules``), its optimisers, one training step (``_train_step``) and its sampling
(``_sample``); see ``docs/extending.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from synthaug._params import (
    Estimator,
    Rule,
    boolean,
    device_like,
    int_range,
    none_or,
    real_range,
    seed_like,
)
from synthaug._utils import check_seed, resolve_device, torch_generator
from synthaug.data import ImageDataset
from synthaug.errors import (
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
    UnknownClassError,
)
from synthaug.generators._persistence import save_generator
from synthaug.generators._registry import GENERATORS
from synthaug.nn import (
    DP,
    PrivateTraining,
    Trainer,
    describe,
    dp_rule,
    make_dp_compatible,
    optimizer_step,
    quiet_hooks,
    seeded,
    validation_split,
)

# Sampling runs in chunks so that asking for millions of samples never holds them all on the
# device at once; 8192 keeps small-image sampling fast and 128x128 memory bounded.
_SAMPLE_CHUNK = 8192


class BaseGenerator(Estimator):
    """Shared behaviour of synthaug generators: the ``fit`` / ``sample`` / ``save`` contract.

    A subclass stores keyword parameters in ``__init__`` (scikit-learn's rules), declares
    ``_parameter_constraints``, and implements ``_fit(dataset)``, which must set ``device_``
    and ``modules_`` (an ``nn.ModuleDict`` of every network, so that saving, loading and device
    handling are shared), and ``_sample(labels, generator)``, which returns ``(n, D)`` or
    ``(n, C, H, W)`` tensors in [0, 1] on ``device_``. Network families should subclass
    :class:`TorchGenerator` instead, which implements ``_fit``.
    """

    # Datasets smaller than this per class are refused by fit; conditional models cope with one.
    _min_samples_per_class: ClassVar[int] = 1

    @property
    def registry_name(self) -> str:
        """The name this generator's class is registered under (saved in model files)."""
        name = GENERATORS.name_of(type(self))
        if name is None:
            raise InvalidParameterError(
                f"{type(self).__name__} is not registered; decorate it with "
                f"@register_generator('name') so that saved files can name it"
            )
        return name

    # -- fitted state ---------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "modules_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(dataset) or synthaug.load(path)"
            )

    @property
    def history(self) -> list[dict[str, float]]:
        """Per-epoch training losses (alias of ``history_``)."""
        self._check_fitted()
        return self.history_

    # -- fit --------------------------------------------------------------------------------
    def fit(self, dataset: ImageDataset) -> BaseGenerator:
        """Train on ``dataset`` and return ``self``.

        Parameters
        ----------
        dataset : ImageDataset
            Training samples; images ``(N, C, H, W)`` or feature vectors ``(N, D)``.

        Raises
        ------
        InvalidParameterError
            A parameter breaks its rule (checked before any work).
        InvalidDataError, EmptyDatasetError
            Not an ImageDataset, empty, or a class with too few samples.
        TrainingDivergedError
            A loss became non-finite; the model is left unfitted.
        """
        self.check_params()
        self._check_param_combinations()
        self._check_dataset(dataset)
        counts = dataset.class_counts()
        self.n_classes_ = dataset.n_classes
        self.class_names_ = list(dataset.classes)
        self.classes_ = [c for c, n in counts.items() if n > 0]
        self.class_counts_ = {c: counts[c] for c in self.classes_}
        self.sample_shape_ = tuple(dataset.sample_shape)
        self.history_ = []
        for stale in ("modules_", "privacy_spent_", "privacy_"):
            self.__dict__.pop(stale, None)
        try:
            self._fit(dataset)
        except BaseException:
            # A failed fit (diverged, interrupted) leaves the estimator unfitted, not half-built.
            self._abort_fit()
            raise
        return self

    def _check_param_combinations(self) -> None:
        """Raise for parameter values that are fine alone but not together (default: none)."""

    def _abort_fit(self) -> None:
        self.__dict__.pop("modules_", None)

    def _check_dataset(self, dataset: ImageDataset) -> None:
        if not isinstance(dataset, ImageDataset):
            raise InvalidDataError(
                f"fit expects a synthaug.data.ImageDataset, got {type(dataset).__name__}; "
                f"build one with synthaug.data.from_arrays(X, y)"
            )
        if len(dataset) == 0:
            raise EmptyDatasetError("cannot fit a generator on an empty dataset")
        small = [
            dataset.classes[c]
            for c, n in dataset.class_counts().items()
            if 0 < n < self._min_samples_per_class
        ]
        if small:
            raise InvalidDataError(
                f"{type(self).__name__} needs at least {self._min_samples_per_class} samples per "
                f"class; class(es) {small} have fewer. Add samples, drop those classes, or use a "
                f"conditional generator such as 'cvae' or 'cgan'"
            )

    def _fit(self, dataset: ImageDataset) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- sample -----------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        y: int | str | Sequence[int | str] | torch.Tensor | None = None,
        seed: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Generate ``n`` samples.

        Parameters
        ----------
        n : int
            Number of samples, > 0.
        y : int, str, sequence or tensor, optional
            One class (label or name) for all samples, or one label per sample (length ``n``).
            ``None`` draws classes in their training proportions.
        seed : int, optional
            Same seed, same samples (on CPU, also after save/load). ``None`` is fresh entropy.

        Returns
        -------
        images : torch.Tensor
            Float32 on the CPU, shaped like the training samples, values in [0, 1].
        labels : torch.Tensor
            Int64 ``(n,)`` labels.
        """
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise InvalidParameterError(f"n must be a positive integer, got {n!r}")
        seed = check_seed(seed)
        labels = self._resolve_labels(n, y, seed)
        gen = torch_generator(seed, self.device_)
        chunks = []
        was_training = {name: m.training for name, m in self.modules_.items()}
        self.modules_.eval()
        try:
            with torch.no_grad():
                for start in range(0, n, _SAMPLE_CHUNK):
                    out = self._sample(labels[start : start + _SAMPLE_CHUNK], gen)
                    chunks.append(out.clamp_(0, 1).reshape(-1, *self.sample_shape_).cpu())
        finally:
            for name, m in self.modules_.items():
                m.train(was_training[name])
        return torch.cat(chunks), labels.cpu()

    def _resolve_labels(self, n: int, y: Any, seed: int) -> torch.Tensor:
        if y is None:
            weights = torch.zeros(self.n_classes_, dtype=torch.float64)
            for c, count in self.class_counts_.items():
                weights[c] = count
            # Labels are drawn on the CPU so they are the same whatever the device.
            labels = torch.multinomial(
                weights, n, replacement=True, generator=torch.Generator().manual_seed(seed)
            )
            return labels.to(self.device_)
        if isinstance(y, (int, str)) and not isinstance(y, bool):
            return torch.full((n,), self._label(y), dtype=torch.int64, device=self.device_)
        if isinstance(y, torch.Tensor):
            y = y.reshape(-1).tolist()
        y = list(y)
        if len(y) != n:
            raise InvalidParameterError(
                f"y has {len(y)} labels but n={n}; give one label per sample or a single class"
            )
        return torch.tensor([self._label(v) for v in y], dtype=torch.int64, device=self.device_)

    def _check_images(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate ``(images, labels)`` against the fitted shape and classes (for scoring)."""
        self._check_fitted()
        images = torch.as_tensor(images)
        labels = torch.as_tensor(labels)
        if (
            tuple(images.shape[1:]) != self.sample_shape_
            or images.dim() != len(self.sample_shape_) + 1
        ):
            raise ShapeMismatchError(
                f"images must be shaped (N, {', '.join(map(str, self.sample_shape_))}) like the "
                f"training samples, got {tuple(images.shape)}"
            )
        if labels.dim() != 1 or len(labels) != len(images):
            raise ShapeMismatchError(
                f"labels must be 1-D with one label per image ({len(images)}), got shape "
                f"{tuple(labels.shape)}"
            )
        if not images.is_floating_point():
            raise InvalidDataError(f"images must be floating point in [0, 1], got {images.dtype}")
        if images.numel() and not torch.isfinite(images).all():
            raise InvalidDataError("images contain NaN or infinite values")
        unseen = sorted(set(torch.unique(labels).tolist()) - set(self.classes_))
        if unseen:
            raise UnknownClassError(
                f"labels {unseen} were not seen in training (classes with samples: {self.classes_})"
            )
        return images.to(torch.float32), labels.to(torch.int64)

    def _label(self, value: Any) -> int:
        if isinstance(value, str) and value in self.class_names_:
            label = self.class_names_.index(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            label = value
        else:
            raise UnknownClassError(f"class {value!r} is not one of {self.class_names_}")
        if label not in self.class_counts_:
            raise UnknownClassError(
                f"class {value!r} was not seen in training (classes with samples: "
                f"{[self.class_names_[c] for c in self.classes_]})"
            )
        return label

    def _sample(
        self, labels: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write weights (safetensors) and configuration (JSON in its header) to ``path``.

        Load it back with :func:`synthaug.load`. Nothing is pickled.
        """
        self._check_fitted()
        return save_generator(self, path)

    def _fitted_state(self) -> dict[str, Any]:
        """JSON-able fitted attributes; families add their own by extending this."""
        return {
            "n_classes_": self.n_classes_,
            "class_names_": self.class_names_,
            "classes_": self.classes_,
            "class_counts_": {str(k): v for k, v in self.class_counts_.items()},
            "sample_shape_": list(self.sample_shape_),
            "history_": self.history_,
            **({"privacy_": self.privacy_} if hasattr(self, "privacy_") else {}),
        }

    def _restore_state(self, state: dict[str, Any], device: torch.device) -> None:
        """Set the fitted attributes from ``state`` and build untrained networks on ``device``."""
        self.device_ = device
        self.n_classes_ = int(state["n_classes_"])
        self.class_names_ = list(state["class_names_"])
        self.classes_ = [int(c) for c in state["classes_"]]
        self.class_counts_ = {int(k): int(v) for k, v in state["class_counts_"].items()}
        self.sample_shape_ = tuple(int(s) for s in state["sample_shape_"])
        self.history_ = list(state["history_"])
        if "privacy_" in state:
            self.privacy_ = dict(state["privacy_"])
            self.privacy_spent_ = (float(self.privacy_["epsilon"]), float(self.privacy_["delta"]))
        self.modules_ = self._new_modules().to(device)

    def _new_modules(self) -> nn.ModuleDict:
        return self._build_modules()

    def _build_modules(self) -> nn.ModuleDict:  # pragma: no cover - abstract
        """Create the (untrained) networks from parameters and fitted shape attributes."""
        raise NotImplementedError

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        """Fitted tensors that are not network weights (saved under ``extra.``)."""
        return {}

    def _restore_extra_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if tensors:
            raise KeyError(f"unexpected extra tensors {sorted(tensors)}")


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
    """

    trainer: Trainer
    generator: torch.Generator
    optimizers: dict[str, torch.optim.Optimizer]
    seed: int
    grad_clip: float | None
    x: torch.Tensor
    y: torch.Tensor
    state: dict[str, Any] = field(default_factory=dict)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for forward passes and losses: bfloat16 autocast on CUDA when ``amp``."""
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
        optimizer_step(self.optimizers[optimizer], loss, params, clip)  # type: ignore[arg-type]


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
    "amp": boolean,
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
    amp : bool
        bfloat16 mixed precision on CUDA (ignored on the CPU).
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:N]"``.
    seed : int
        Seeds weight initialisation, batch order and every draw: same seed, same model on CPU.
    verbose : bool
        Show a progress bar.
    dp : synthaug.DP or None
        Train with differential privacy (DP-SGD on ``_dp_modules``, Poisson-sampled batches;
        see docs/privacy.md). Needs ``pip install 'synthaug[privacy]'``.
    """

    _parameter_constraints: ClassVar[dict[str, Rule]] = _TRAINING_CONSTRAINTS
    # The networks that see real data: with ``dp=`` they are the ones trained with DP-SGD.
    _dp_modules: ClassVar[tuple[str, ...]] = ()

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
        amp: bool = True,
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

    def _validation_loss(
        self, x: torch.Tensor, y: torch.Tensor, ctx: TrainingContext
    ) -> torch.Tensor:  # pragma: no cover - only families with early stopping
        raise NotImplementedError(f"{type(self).__name__} has no validation loss")

    # -- fit --------------------------------------------------------------------------------
    def _check_param_combinations(self) -> None:
        name = type(self).__name__
        early_stopping = getattr(self, "early_stopping", None)
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
        self.device_ = resolve_device(self.device)
        seed = check_seed(self.seed)
        dp_context = quiet_hooks() if self.dp is not None else contextlib.nullcontext()
        with seeded(seed), dp_context:
            self._train(dataset, seed)
        self._end_private_training()

    def _train(self, dataset: ImageDataset, seed: int) -> None:
        self.modules_ = self._new_modules().to(self.device_)
        trainer = self._make_trainer()
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        optimizers = self._private_optimizers(
            self._make_optimizers(), n_samples=len(dataset), generator=gen
        )
        x = dataset.images.to(self.device_)
        y = dataset.labels.to(self.device_)
        ctx = TrainingContext(trainer, gen, optimizers, seed, self.grad_clip, x, y)
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
        self.modules_.train()
        trainer.run(
            lambda xb, yb: self._train_step(xb, yb, ctx),
            ctx.x,
            ctx.y,
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
        """The shared :class:`Trainer`, configured from this estimator's training parameters."""
        return Trainer(
            epochs=self.epochs,
            batch_size=self.batch_size,
            device=self.device_,
            verbose=self.verbose,
            desc=type(self).__name__,
            # Opacus' per-sample gradients run in full precision.
            amp=self.amp and self.dp is None,
            early_stopping=getattr(self, "early_stopping", None),
            checkpoint_dir=self.checkpoint_dir,
            checkpoint_every=self.checkpoint_every,
            resume=self.resume,
            poisson=self.dp is not None,
        )

    def _fingerprint(self, n_samples: int) -> str:
        """What a resumable checkpoint must agree on: model type, parameters, data shape."""
        ignored = {"epochs", "verbose", "resume", "checkpoint_dir", "checkpoint_every", "device"}
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
        return modules

    def _private_optimizers(
        self,
        optimizers: dict[str, torch.optim.Optimizer],
        *,
        n_samples: int,
        generator: torch.Generator,
    ) -> dict[str, torch.optim.Optimizer]:
        """With ``dp`` set, swap the optimisers of ``_dp_modules`` for DP-SGD ones.

        The batches are then Poisson-sampled (``_make_trainer`` does so) and the losses of
        those networks must be means over the batch. Without ``dp`` it returns ``optimizers``.
        """
        if self.dp is None:
            return optimizers
        run = PrivateTraining(
            self.dp,
            n_samples=n_samples,
            batch_size=self.batch_size,
            epochs=self.epochs,
            generator=generator,
        )
        self._dp_run = run
        optimizers = dict(optimizers)
        for name in self._dp_modules:
            optimizers[name] = run.make_private(self.modules_[name], optimizers[name])
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
