"""The estimator contract every generator follows, written once.

``fit`` and ``sample`` validate and convert their inputs here, then call the family's private
``_fit`` / ``_sample`` (template method, as imbalanced-learn's ``fit_resample``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from synthaug._params import (
    ParamsMixin,
    Rule,
    boolean,
    device_like,
    int_range,
    none_or,
    real_range,
    seed_like,
    validate_params,
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
from synthaug.generators._dp import PrivateTraining, dp_rule, make_dp_compatible, quiet_hooks
from synthaug.generators._trainer import Trainer, describe

# Sampling runs in chunks so that asking for millions of samples never holds them all on the
# device at once; 8192 keeps small-image sampling fast and 128x128 memory bounded.
_SAMPLE_CHUNK = 8192


# Rules for the training parameters every generator shares; families merge them into their own
# ``_parameter_constraints`` (a family that lacks a parameter simply never has it checked).
TRAINING_CONSTRAINTS: dict[str, Rule] = {
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


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for the block, then restore it (no global side effects)."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


class BaseGenerator(ParamsMixin):
    """Shared behaviour of synthaug generators.

    Subclasses define keyword-only ``__init__`` parameters that they only store, a
    ``_parameter_constraints`` mapping, ``_fit(dataset)`` and ``_sample(labels, generator)``
    returning ``(n, D)`` or ``(n, C, H, W)`` tensors in [0, 1] on ``self.device_``, and the
    networks they train in ``self.modules_`` (an ``nn.ModuleDict``) so that saving, loading and
    device handling are shared.
    """

    registry_name: ClassVar[str] = ""
    _parameter_constraints: ClassVar[dict[str, Rule]] = {}
    # Datasets smaller than this per class are refused by fit; conditional models cope with one.
    _min_samples_per_class: ClassVar[int] = 1
    # The networks that see real data: with ``dp=`` they are the ones trained with DP-SGD.
    _dp_modules: ClassVar[tuple[str, ...]] = ()

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
        """
        validate_params(type(self).__name__, self.get_params(), self._parameter_constraints)
        self._check_resume_params()
        self._check_dataset(dataset)
        self.device_ = resolve_device(self.device)
        counts = dataset.class_counts()
        self.n_classes_ = dataset.n_classes
        self.class_names_ = list(dataset.classes)
        self.classes_ = [c for c, n in counts.items() if n > 0]
        self.class_counts_ = {c: counts[c] for c in self.classes_}
        self.sample_shape_ = tuple(dataset.sample_shape)
        self.history_ = []
        self.__dict__.pop("privacy_spent_", None)
        self.__dict__.pop("privacy_", None)
        seed = check_seed(self.seed)
        dp_context = (
            quiet_hooks() if getattr(self, "dp", None) is not None else contextlib.nullcontext()
        )
        try:
            with seeded(seed), dp_context:
                self._fit(dataset, seed)
            self._end_private_training()
        except BaseException:
            # A failed fit (diverged, interrupted) leaves the estimator unfitted, not half-built.
            run = self.__dict__.pop("_dp_run", None)
            if run is not None:
                run.close()
            self.__dict__.pop("modules_", None)
            raise
        return self

    # -- differential privacy (see synthaug/generators/_dp.py) ------------------------------
    def _new_modules(self) -> nn.ModuleDict:
        """``_build_modules()``, with the networks in ``_dp_modules`` made DP-compatible when
        ``dp`` is set (batch norm to group norm, no spectral norm); used by fit and load."""
        modules = self._build_modules()
        if getattr(self, "dp", None) is not None:
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

        Call it in ``_fit`` after building the optimisers and before training; the batches
        must then be Poisson-sampled (``_make_trainer`` does so) and the losses of those
        networks must be means over the batch. Without ``dp`` it returns ``optimizers``.
        """
        if getattr(self, "dp", None) is None:
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
            if getattr(self, "dp", None) is not None and not hasattr(self, "privacy_spent_"):
                raise NotImplementedError(
                    f"{type(self).__name__} accepted dp= but did not train privately"
                )
            return
        run.close()
        self.privacy_ = run.summary(len(self.history_))
        self.privacy_spent_ = (self.privacy_["epsilon"], self.privacy_["delta"])

    def _check_resume_params(self) -> None:
        if getattr(self, "resume", False) and getattr(self, "checkpoint_dir", None) is None:
            raise InvalidParameterError(
                f"{type(self).__name__}: resume=True needs checkpoint_dir, the folder the "
                f"interrupted run wrote its checkpoint to"
            )
        if getattr(self, "dp", None) is not None and getattr(self, "early_stopping", None):
            raise InvalidParameterError(
                f"{type(self).__name__}: early_stopping cannot be combined with dp: it picks "
                f"the epoch by an un-noised validation loss on real records, which the DP "
                f"guarantee does not cover; set early_stopping=None"
            )
        if getattr(self, "early_stopping", None) is not None and not getattr(
            self, "validation_fraction", 0
        ):
            raise InvalidParameterError(
                f"{type(self).__name__}: early_stopping needs validation_fraction > 0 (the share "
                f"of each class held out to compute the validation loss)"
            )

    def _make_trainer(self, desc: str) -> Trainer:
        """The shared :class:`Trainer`, configured from this estimator's training parameters."""
        return Trainer(
            epochs=self.epochs,
            batch_size=self.batch_size,
            device=self.device_,
            verbose=self.verbose,
            desc=desc,
            # Opacus' per-sample gradients run in full precision.
            amp=getattr(self, "amp", True) and getattr(self, "dp", None) is None,
            early_stopping=getattr(self, "early_stopping", None),
            checkpoint_dir=getattr(self, "checkpoint_dir", None),
            checkpoint_every=getattr(self, "checkpoint_every", 1),
            resume=getattr(self, "resume", False),
            poisson=getattr(self, "dp", None) is not None,
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

    def _fit(self, dataset: ImageDataset, seed: int) -> None:  # pragma: no cover - abstract
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
        from synthaug.generators._persistence import save_generator

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

    def _build_modules(self) -> nn.ModuleDict:  # pragma: no cover - abstract
        """Create the (untrained) networks from parameters and fitted shape attributes."""
        raise NotImplementedError

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        """Fitted tensors that are not network weights (saved under ``extra.``)."""
        return {}

    def _restore_extra_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if tensors:
            raise KeyError(f"unexpected extra tensors {sorted(tensors)}")
