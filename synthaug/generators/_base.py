"""The estimator contract every generator follows, written once.

:class:`BaseGenerator`'s ``fit`` and ``sample`` validate and convert their inputs, then call
the family's private ``_fit`` / ``_sample`` (template method, as imbalanced-learn's
``fit_resample``). Network families subclass :class:`~synthaug.generators.TorchGenerator`
(``_torch.py``), which implements ``_fit``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from synthaug._memory import check_sample_count
from synthaug._params import (
    Estimator,
)
from synthaug._utils import check_seed, torch_generator, warn
from synthaug.data import ImageDataset, Provenance
from synthaug.data._dataset import check_image_dataset
from synthaug.errors import (
    ConstantSamplesWarning,
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
    SingleClassWarning,
    UnknownClassError,
)
from synthaug.generators._persistence import save_generator
from synthaug.generators._registry import GENERATORS
from synthaug.nn import KeyedRandom, Randomness, batch_size_for, batched, rand

# The check after fit: samples drawn per class, and the share of the training images'
# contrast (per-image spread) or variety (spread across images) under which samples are
# called blank or all the same.
_CHECK_SAMPLES = 8
_BLANK = 0.1
_SAME = 0.02


class BaseGenerator(Estimator):
    """Shared behaviour of synthaug generators: the ``fit`` / ``sample`` / ``save`` contract.

    A subclass declares its parameters (``Param`` class attributes) and implements ``_fit(dataset)``, which must set ``device_``
    and ``modules_`` (an ``nn.ModuleDict`` of every network, so that saving, loading and device
    handling are shared), and ``_sample(labels, generator)``, which returns ``(n, D)`` or
    ``(n, C, H, W)`` tensors in [0, 1] on ``device_``. Network families should subclass
    :class:`TorchGenerator` instead, which implements ``_fit``.
    """

    # Datasets smaller than this per class are refused by fit; conditional models cope with one.
    _min_samples_per_class: ClassVar[int] = 1
    # True for a family whose saved file holds training images (exemplars it samples from);
    # the file records it, ``synthaug info`` shows it, and a release must say so.
    stores_training_images: ClassVar[bool] = False
    # Whether samples are made of real training pixels (copies, pasted patches); a network's
    # output is not, even when it imitates a stored exemplar. DICOM output of a source that
    # keeps real pixels is marked derived from patient images, not synthetic.
    keeps_real_pixels: ClassVar[bool] = False
    # Whether each sample is a network's variant of stored training images (DAGAN's output
    # from a stored source image, a decoded code of a stored item): then it is derived from
    # patient images, not synthetic, and outputs say so. ``_exemplar_use`` says how, in words.
    exemplar_conditioned: ClassVar[bool] = False
    _exemplar_use: ClassVar[str] = ""
    # Classes smaller than this are fitted, with a warning: one image shows nothing of how its
    # class varies, so the model can learn little beyond that image.
    _advised_samples_per_class: ClassVar[int] = 2
    # Whether ``_sample`` draws all its randomness through ``synthaug.nn.randn`` / ``rand`` /
    # ``select_rows``, so that ``sample(keys=...)`` runs as one batch; without it, each key
    # is sampled on its own (the same samples, one forward pass each).
    keyed_sampling: ClassVar[bool] = False

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

        Warns
        -----
        SingleClassWarning
            ``dataset`` has a single class.
        SynthaugWarning
            A class has fewer samples than the model needs to learn how it varies (one).
        ConstantSamplesWarning
            The fitted model samples nearly blank images, or the same image every time, for
            some class (checked on a few seeded samples per class).
        """
        return self._fit_checked(dataset)

    def _fit_checked(self, dataset: ImageDataset, **fit_args: Any) -> BaseGenerator:
        """``fit``'s checks and bookkeeping around ``self._fit(dataset, **fit_args)``: a
        meta-estimator passes what it decided for a member (such as released class counts)
        as ``fit_args``."""
        self.check_params()
        self._check_param_combinations()
        self._check_dataset(dataset)
        self._warn_about_classes(dataset)
        counts = dataset.class_counts()
        self.n_classes_ = dataset.n_classes
        self.class_names_ = list(dataset.classes)
        self.classes_ = [c for c, n in counts.items() if n > 0]
        self.class_counts_ = {c: counts[c] for c in self.classes_}
        self.sample_shape_ = tuple(dataset.sample_shape)
        self.history_ = []
        self._forget("modules_", "privacy_spent_", "privacy_", "fit_seconds_")
        started = time.perf_counter()
        try:
            self._fit(dataset, **fit_args)
        except BaseException:
            # A failed fit (diverged, interrupted) leaves the estimator unfitted, not half-built.
            self._abort_fit()
            raise
        self.fit_seconds_ = time.perf_counter() - started
        self._warn_if_samples_constant(dataset)
        return self

    def check_params(self) -> None:
        """Raise :class:`~synthaug.errors.InvalidParameterError` for the first bad parameter,
        or for values that are fine alone but not together (``dp`` with a family that stores
        training images, say): everything ``fit`` refuses before it looks at the data."""
        super().check_params()
        self._check_param_combinations()

    def _warn_if_samples_constant(self, dataset: ImageDataset) -> None:
        """Warn once when the fitted model samples (nearly) blank images, or one image.

        A cheap check on a few seeded samples per class (its own generator: no global random
        state is touched), against up to 256 training images of the class: a class whose
        samples have under a tenth of the training images' contrast is blank, one whose
        samples differ from each other by under a fiftieth of how its training images differ
        always makes the same image. Classes whose training images are themselves constant
        are not judged.
        """
        classes = [c for c in self.classes_ if self.class_counts_.get(c, 0) > 0]
        if not classes:
            return
        wanted = torch.tensor(classes).repeat_interleave(_CHECK_SAMPLES)
        images, labels = self.sample(len(wanted), y=wanted, seed=0)
        blank, same = [], []
        for c in classes:
            real = dataset.images[torch.nonzero(dataset.labels == c).flatten()[:256]].flatten(1)
            fake = images[labels == c].flatten(1)
            if dataset.is_image and real.shape[1] > 1:
                contrast = float(real.std(dim=1, correction=0).mean())
                if contrast > 0 and fake.std(dim=1, correction=0).mean() < _BLANK * contrast:
                    blank.append(self.class_names_[c])
                    continue
            spread = float(real.std(dim=0, correction=0).mean())
            if len(real) > 1 and spread > 0:
                if fake.std(dim=0, correction=0).mean() < _SAME * spread:
                    same.append(self.class_names_[c])
        if blank or same:
            found = [f"nearly blank images for class(es) {blank}"] if blank else []
            found += [f"the same image every time for class(es) {same}"] if same else []
            warn(
                f"{type(self).__name__} samples {' and '.join(found)}, unlike its training "
                f"images: too little data or too few epochs? Look at its samples before using "
                f"them (filter ConstantSamplesWarning if this is meant)",
                ConstantSamplesWarning,
            )

    def _check_param_combinations(self) -> None:
        """Raise for parameter values that are fine alone but not together (default: none)."""

    def _abort_fit(self) -> None:
        self._forget("modules_")

    def _check_dataset(self, dataset: ImageDataset) -> None:
        check_image_dataset(dataset, "fit expects", "cannot fit a generator on an empty dataset")
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

    def _warn_about_classes(self, dataset: ImageDataset) -> None:
        name = type(self).__name__
        present = {c: n for c, n in dataset.class_counts().items() if n > 0}
        if len(present) == 1:
            (label,) = present
            warn(
                f"{name} is fitted on a single class ({dataset.classes[label]!r}), so there is "
                f"no other class to balance; check the labels (one folder or label per class), "
                f"or filter SingleClassWarning when one class is meant",
                SingleClassWarning,
            )
        few = [
            dataset.classes[c] for c, n in present.items() if n < self._advised_samples_per_class
        ]
        if few:
            warn(
                f"{name}: class(es) {few} have fewer than {self._advised_samples_per_class} "
                f"samples, too few to learn how the class varies, so its samples may add little "
                f"over copying them; add samples of those classes"
            )

    def _fit(self, dataset: ImageDataset) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- sample -----------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        y: int | str | Sequence[int | str] | torch.Tensor | None = None,
        seed: int | None = None,
        *,
        keys: Sequence[int] | np.ndarray | torch.Tensor | None = None,
        return_provenance: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Generate ``n`` samples.

        Parameters
        ----------
        n : int
            Number of samples, > 0; refused (before anything is allocated) when they cannot
            fit in the memory available.
        y : int, str, sequence or tensor, optional
            One class (label or name) for all samples, or one label per sample (length ``n``).
            ``None`` draws classes in their training proportions (``class_counts_``: with
            ``dp``, the released noisy counts).
        seed : int, optional
            Same seed, same samples (on CPU, also after save/load). ``None`` is fresh entropy.
        keys : sequence of int or tensor, optional
            One non-negative integer per sample. Sample ``j`` then depends only on ``seed``,
            ``keys[j]`` and its class, not on its position or on what else is sampled with
            it: the same key gives the same sample in any call, up to the float rounding of
            different batch sizes (how :class:`~synthaug.augment.SyntheticDataset` makes any
            of its items on demand). Give distinct keys for distinct samples. Families with
            ``keyed_sampling`` (every built-in one) draw all keys in one batch; others
            sample each key on its own. Without ``keys`` the samples are drawn from one
            stream, as before.
        return_provenance : bool
            Also return one :class:`~synthaug.data.Provenance` per sample: synthetic, or
            derived for a family whose samples are variants of stored training images
            (``exemplar_conditioned``; which stored image is not reported).

        Returns
        -------
        images : torch.Tensor
            Float32 on the CPU, shaped like the training samples, values in [0, 1].
        labels : torch.Tensor
            Int64 ``(n,)`` labels.
        provenance : list of Provenance
            Only with ``return_provenance=True``.

        Examples
        --------
        >>> from synthaug.data import load_digits
        >>> from synthaug.generators import CVAE
        >>> model = CVAE(epochs=1, verbose=False).fit(load_digits())
        >>> both, _ = model.sample(2, y=[3, 5], seed=0, keys=[10, 11])
        >>> one, _ = model.sample(1, y=5, seed=0, keys=[11])
        >>> bool(torch.allclose(both[1], one[0], atol=1e-6))
        True
        """
        self._check_fitted()
        n = check_sample_count(n, self.sample_shape_)
        seed = check_seed(seed)
        if keys is None:
            labels = self._resolve_labels(n, y, seed)
            gen = torch_generator(seed, self.device_)
            rows: tuple[torch.Tensor, ...] = (labels,)

            def draw(chunk: torch.Tensor) -> torch.Tensor:
                return self._sample(chunk, gen)

        else:
            key_rows = _check_keys(keys, n).to(self.device_)
            labels = self._resolve_labels(n, y, seed, key_rows)
            rows = (labels, key_rows)

            def draw(chunk: torch.Tensor, chunk_keys: torch.Tensor) -> torch.Tensor:
                return self._sample_keyed(chunk, KeyedRandom(seed, chunk_keys))

        # Allocated outside inference mode, so the caller gets an ordinary tensor it can train on.
        images = torch.empty((n, *self.sample_shape_))
        # Eval mode for sampling; only layers in training mode are switched (a fitted model's are
        # in eval mode already), so many small calls pay nothing for it.
        training = [m for m in self.modules_.modules() if m.training]
        for m in training:
            m.training = False
        # The randomness is drawn per chunk of labels of the size batched() takes by default
        # (MAX_BATCH), so that asking for millions of samples never holds them all on the
        # device at once and the samples of a seed do not depend on the machine; the networks
        # then run in cache-sized batches within a chunk (_in_sample_batches).
        try:
            with torch.inference_mode():
                batched(
                    lambda *chunk: draw(*chunk).clamp_(0, 1).reshape(-1, *self.sample_shape_),
                    *rows,
                    out=images,
                )
        finally:
            for m in training:
                m.training = True
        if return_provenance:
            return images, labels.cpu(), [self._provenance()] * n
        return images, labels.cpu()

    def _sample_keyed(self, labels: torch.Tensor, source: KeyedRandom) -> torch.Tensor:
        """``_sample`` with each row's randomness its own: in one batch for a family with
        ``keyed_sampling``, else one row at a time from a generator seeded by the row's key."""
        if self.keyed_sampling:
            return self._sample(labels, source)
        parts = [
            self._sample(labels[j : j + 1], torch.Generator(device=self.device_).manual_seed(s))
            for j, s in enumerate(source.row_seeds())
        ]
        return torch.cat(parts)

    def _provenance(self) -> Provenance:
        """What every sample of this model is: generated, or a variant of stored exemplars."""
        name = GENERATORS.name_of(type(self)) or type(self).__name__
        if self.exemplar_conditioned:
            return Provenance("derived", f"{name}: {self._exemplar_use}")
        return Provenance("synthetic", f"generated by {name} from noise and the class label")

    def _in_sample_batches(
        self, fn: Callable[..., torch.Tensor], *rows: torch.Tensor
    ) -> torch.Tensor:
        """``fn(*rows)`` run over batches of rows sized for the device (cache-sized on a CPU),
        for a family's ``_sample``: the results are concatenated along the first axis.

        The size is derived once per set of networks from the largest activation one row
        makes (:func:`~synthaug.nn.inference_batch_size`), so draws made before the call, and
        hence the samples, do not depend on it.
        """
        # The size is given, not network=: the cut sampling has always made, so a model's
        # samples stay bit for bit what they were.
        return batched(fn, *rows, size=self._sample_batch_size(fn, rows))

    def _sample_batch_size(
        self, fn: Callable[..., torch.Tensor], rows: tuple[torch.Tensor, ...]
    ) -> int:
        cached = self.__dict__.get("_sample_batch")
        if cached is not None and cached[0] is self.modules_:
            return cached[1]
        size = batch_size_for(self.modules_, fn, *rows)
        self.__dict__["_sample_batch"] = (self.modules_, size)
        return size

    def _resolve_labels(
        self, n: int, y: Any, seed: int, keys: torch.Tensor | None = None
    ) -> torch.Tensor:
        if y is None and keys is not None:
            # Each key's class from its own stream (1; its sample draws from stream 0), in the
            # training proportions, so a keyed sample's class does not depend on the others.
            counts = torch.zeros(self.n_classes_, dtype=torch.int64)
            for c, count in self.class_counts_.items():
                counts[c] = count
            ends = torch.cumsum(counts, 0).to(self.device_)
            u = rand(KeyedRandom(seed, keys, stream=1), (n,), dtype=torch.float64)
            picked = (u * int(ends[-1])).long().clamp_(max=int(ends[-1]) - 1)
            return torch.searchsorted(ends, picked, right=True)
        if y is None:
            weights = torch.zeros(self.n_classes_, dtype=torch.float64)
            for c, count in self.class_counts_.items():
                weights[c] = count
            # Labels are drawn on the CPU so they are the same whatever the device.
            labels = torch.multinomial(
                weights, n, replacement=True, generator=torch.Generator().manual_seed(seed)
            )
            return labels.to(self.device_)
        if isinstance(y, (int, np.integer, str)) and not isinstance(y, bool):
            return torch.full((n,), self._label(y), dtype=torch.int64, device=self.device_)
        if isinstance(y, torch.Tensor) and _is_integer(y) and y.numel() == n:
            # Checked as a whole (a data loader passes a tensor of labels every batch); the
            # first unknown label, if any, gets _label's error.
            labels = y.reshape(-1).to(torch.int64)
            values = labels.cpu().numpy()
            known = self._known_labels()
            if values.min() < 0 or values.max() >= len(known) or not known[values].all():
                for value in values.tolist():
                    self._label(value)  # raises for the first unknown label
            return labels.to(self.device_)
        if isinstance(y, torch.Tensor):
            y = y.reshape(-1).tolist()
        if isinstance(y, (bool, float)) or not isinstance(y, Iterable):
            raise UnknownClassError(
                f"y must be a class (label or name), one per sample, or None; got {y!r}"
            )
        y = list(y)
        if len(y) != n:
            raise InvalidParameterError(
                f"y has {len(y)} labels but n={n}; give one label per sample or a single class"
            )
        return torch.tensor([self._label(v) for v in y], dtype=torch.int64, device=self.device_)

    def _known_labels(self) -> np.ndarray:
        """Which labels can be sampled, indexed by label (cached with the class counts)."""
        cached = self.__dict__.get("_known")
        if cached is not None and cached[0] is self.class_counts_:
            return cached[1]
        known = np.zeros(self.n_classes_, dtype=bool)
        known[list(self.class_counts_)] = True
        self.__dict__["_known"] = (self.class_counts_, known)
        return known

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
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            label = int(value)
        else:
            raise UnknownClassError(f"class {value!r} is not one of {self.class_names_}")
        if label not in self.class_counts_:
            raise UnknownClassError(
                f"class {value!r} was not seen in training (classes with samples: "
                f"{[self.class_names_[c] for c in self.classes_]})"
            )
        return label

    def _sample(
        self, labels: torch.Tensor, generator: Randomness
    ) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # -- persistence ------------------------------------------------------------------------
    def save(
        self,
        path: str | Path,
        *,
        metadata: dict[str, Any] | None = None,
        drop_unaccounted: bool = False,
    ) -> Path:
        """Write weights (safetensors) and configuration (JSON in its header) to ``path``.

        Load it back with :func:`synthaug.load`. Nothing is pickled. A SHA-256 digest of the
        header and the weights is stored with them; loading refuses a file edited in any way.

        Parameters
        ----------
        path : str or Path
            The file (``.safetensors`` is appended when missing).
        metadata : dict, optional
            JSON-able facts to keep with the model (``synthaug train`` records its data and
            hold-out here); the loaded model's ``metadata_``.
        drop_unaccounted : bool
            Leave out what fitting measured on the training data besides the weights: the
            losses of every epoch (``history_`` keeps one entry per epoch, without them) and
            the fit time, for members of a meta-estimator too. A privacy guarantee covers
            neither; ``synthaug train --dp-epsilon`` saves this way.
        """
        self._check_fitted()
        return save_generator(self, path, metadata, drop_unaccounted=drop_unaccounted)

    def _fitted_state(self) -> dict[str, Any]:
        """JSON-able fitted attributes; families add their own by extending this."""
        return {
            "n_classes_": self.n_classes_,
            "class_names_": self.class_names_,
            "classes_": self.classes_,
            "class_counts_": {str(k): v for k, v in self.class_counts_.items()},
            "sample_shape_": list(self.sample_shape_),
            "history_": self.history_,
            "fit_seconds_": getattr(self, "fit_seconds_", None),
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
        self.fit_seconds_ = state.get("fit_seconds_")
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


def _is_integer(t: torch.Tensor) -> bool:
    return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)


def _check_keys(keys: Any, n: int) -> torch.Tensor:
    """``keys`` as an int64 ``(n,)`` CPU tensor, or an error that says what is wrong."""
    if isinstance(keys, torch.Tensor) and keys.dtype == torch.int64 and keys.device.type == "cpu":
        values = keys.detach().numpy()  # the common case (a data loader's), checked in numpy
        if values.ndim == 1 and len(values) == n and values.min() >= 0:
            return keys
    if isinstance(keys, torch.Tensor):
        keys = keys.detach().cpu()
        ok = _is_integer(keys)
    else:
        try:
            array = np.asarray(keys)
        except (TypeError, ValueError):
            array = np.asarray([None])
        ok = array.dtype.kind in "iu"
        keys = torch.from_numpy(array.astype(np.int64)) if ok else None
    if not ok or keys is None:
        raise InvalidParameterError(
            "keys must be non-negative integers below 2**63, one per sample"
        )
    keys = keys.to(torch.int64)
    if keys.dim() != 1 or len(keys) != n:
        raise InvalidParameterError(
            f"keys must hold one integer per sample ({n}), got shape {tuple(keys.shape)}"
        )
    if bool((keys < 0).any()):
        raise InvalidParameterError(f"keys must be non-negative, got {int(keys.min())}")
    return keys
