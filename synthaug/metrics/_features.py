"""An embedding for fidelity metrics, learned from the real data's own labels.

Inception features (the usual FID embedding) cannot be downloaded here and do not suit 8x8
digits or medical slices. Following the advice of Naeem et al. (2020) and Kynkäänniemi et al.
(2019) to measure in a feature space suited to the data, :class:`FeatureExtractor` trains a
small classifier on the real training labels and embeds samples with its penultimate layer.
It is saved (safetensors weights + JSON header, no pickle) so figures from different runs can
share one embedding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from synthaug._params import Param, int_range
from synthaug._utils import check_seed, resolve_device
from synthaug.data import ImageDataset
from synthaug.errors import (
    CheckpointError,
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
)
from synthaug.metrics._classifiers import _NetTraining
from synthaug.nn import (
    SmallCNN,
    SmallMLP,
    batched,
    read_checkpoint,
    seeded,
    train_classifier,
    write_checkpoint,
)

FORMAT_NAME = "synthaug-feature-extractor"
FORMAT_VERSION = 1

EmbeddingFunction = Callable[[torch.Tensor], "torch.Tensor | np.ndarray"]


def _build_net(sample_shape: tuple[int, ...], n_classes: int, dim: int) -> nn.Module:
    if len(sample_shape) == 3:
        return SmallCNN(sample_shape[0], n_classes, dim)
    return SmallMLP(sample_shape[0], n_classes, dim)


class FeatureExtractor(_NetTraining):
    """Embeds images with the penultimate layer of a classifier trained on real labels.

    Images ``(N, C, H, W)`` get :class:`~synthaug.nn.SmallCNN`, feature vectors ``(N, D)``
    :class:`~synthaug.nn.SmallMLP`; the embedding is their ``body``. Training uses Adam and
    cross-entropy for a fixed number of epochs through the shared :class:`~synthaug.nn.Trainer`;
    it is deterministic on CPU per seed.
    Alternatively wrap any embedding function with :meth:`from_function` (e.g. a pretrained
    network you trust for your domain).

    Attributes
    ----------
    sample_shape_ : tuple of int
        Shape of the samples it was trained on; others are refused.
    n_classes_ : int
    train_accuracy_ : float
        Accuracy on its own training data (a check that the embedding learned something).

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> fx = FeatureExtractor(epochs=1).fit(load_digits())
    >>> fx.transform(load_digits().images[:3]).shape
    torch.Size([3, 64])
    """

    # The training parameters are those of the classifier it is (``_NetTraining``).
    embedding_dim = Param(64, int_range(1), "Width of the embedding (penultimate) layer.")

    # -- alternative: a user function --------------------------------------------------------
    @classmethod
    def from_function(cls, fn: EmbeddingFunction, name: str | None = None) -> FeatureExtractor:
        """Use ``fn(images) -> (N, d) embeddings`` instead of a trained network.

        ``fn`` receives float32 CPU tensors shaped like the samples, in batches. Such an
        extractor cannot be saved (the function is not data); keep the function instead.
        """
        if not callable(fn):
            raise InvalidParameterError(f"fn must be callable, got {type(fn).__name__}")
        fx = cls()
        fx.function_ = fn
        fx.function_name_ = name or getattr(fn, "__qualname__", type(fn).__name__)
        return fx

    # -- fitting ------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "net_") or hasattr(self, "function_")

    def fit(self, dataset: ImageDataset) -> FeatureExtractor:
        """Train the network on ``dataset``'s labels; a wrapped function is left as it is."""
        if hasattr(self, "function_"):
            return self
        self.check_params()
        if not isinstance(dataset, ImageDataset):
            raise InvalidDataError(
                f"fit expects a synthaug.data.ImageDataset, got {type(dataset).__name__}"
            )
        if len(dataset) == 0:
            raise EmptyDatasetError("cannot train a feature extractor on an empty dataset")
        seed = check_seed(self.seed)
        self.device_ = resolve_device(self.device)
        self.sample_shape_ = tuple(dataset.sample_shape)
        self.n_classes_ = dataset.n_classes
        with seeded(seed):
            net = _build_net(self.sample_shape_, self.n_classes_, self.embedding_dim)
        net = net.to(self.device_)
        self.history_ = train_classifier(
            net,
            dataset.images.to(self.device_),
            dataset.labels.to(self.device_),
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            seed=seed,
            desc="FeatureExtractor",
        )
        self.net_ = net
        pred = self.predict(dataset.images)
        self.train_accuracy_ = float((pred == dataset.labels.numpy()).mean())
        return self

    # -- using it -----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                "FeatureExtractor is not fitted; call fit(real_dataset), "
                "FeatureExtractor.load(path) or FeatureExtractor.from_function(fn)"
            )

    @staticmethod
    def _images(data: ImageDataset | torch.Tensor | np.ndarray) -> torch.Tensor:
        if isinstance(data, ImageDataset):
            return data.images
        images = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data)
        return images.to(torch.float32)

    @torch.no_grad()
    def transform(self, data: ImageDataset | torch.Tensor | np.ndarray) -> torch.Tensor:
        """Embed samples: a float64 ``(N, d)`` CPU tensor."""
        self._check_fitted()
        images = self._images(data)
        if hasattr(self, "function_"):
            emb = (
                batched(self._call_function, images)
                if len(images)
                else torch.zeros(0, 0, dtype=torch.float64)
            )
        else:
            if tuple(images.shape[1:]) != self.sample_shape_:
                raise ShapeMismatchError(
                    f"this FeatureExtractor was trained on samples of shape {self.sample_shape_}, "
                    f"got {tuple(images.shape[1:])}; train one on data of this shape"
                )
            emb = batched(
                lambda x: self.net_.body(x).double().cpu(),
                images,
                network=self.net_,
                device=self.device_,
            )
        if emb.numel() and not torch.isfinite(emb).all():
            raise InvalidDataError(
                "the embedding contains NaN or infinite values; check the inputs and, for a "
                "user function, that it returns finite numbers"
            )
        return emb

    def _call_function(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.function_(batch)
        out = torch.as_tensor(
            out.detach().cpu() if isinstance(out, torch.Tensor) else np.asarray(out)
        ).to(torch.float64)
        if out.dim() != 2 or len(out) != len(batch):
            raise ShapeMismatchError(
                f"embedding function {self.function_name_!r} must return an (N, d) array for "
                f"N={len(batch)} inputs, got shape {tuple(out.shape)}"
            )
        return out

    @torch.no_grad()
    def predict(self, data: ImageDataset | torch.Tensor | np.ndarray) -> np.ndarray:
        """Class labels from the trained head (not available for a wrapped function)."""
        self._check_fitted()
        if hasattr(self, "function_"):
            raise NotFittedError("a FeatureExtractor built from a function has no classifier head")
        images = self._images(data)
        labels = batched(
            lambda x: self.net_.head(self.net_.body(x)).argmax(1).cpu(),
            images,
            network=self.net_,
            device=self.device_,
        )
        return labels.numpy()

    def describe(self) -> str:
        """One line saying which embedding this is (printed next to every FD / PRDC figure)."""
        self._check_fitted()
        if hasattr(self, "function_"):
            return f"user function {self.function_name_}"
        kind = "CNN" if len(self.sample_shape_) == 3 else "MLP"
        return (
            f"penultimate layer ({self.embedding_dim}-d) of a {kind} trained on the real "
            f"training labels ({self.epochs} epochs, seed {self.seed}, "
            f"train accuracy {self.train_accuracy_:.3f})"
        )

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write weights (safetensors) and configuration (JSON header) to ``path``; no pickle."""
        self._check_fitted()
        if hasattr(self, "function_"):
            raise InvalidParameterError(
                "a FeatureExtractor built from a function cannot be saved; keep the function"
            )
        path = Path(path)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.net_.state_dict().items()}
        params = {**self.get_params(), "device": str(self.device)}
        fitted = {
            "sample_shape_": list(self.sample_shape_),
            "n_classes_": self.n_classes_,
            "train_accuracy_": self.train_accuracy_,
        }
        meta = {"params": json.dumps(params), "fitted": json.dumps(fitted)}
        return write_checkpoint(path, tensors, meta, FORMAT_NAME, FORMAT_VERSION)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto") -> FeatureExtractor:
        """Load an extractor written by :meth:`save`.

        Raises
        ------
        CheckpointError
            Missing, corrupted or edited file, or not a synthaug feature extractor.
        """
        meta, tensors = read_checkpoint(path, FORMAT_NAME, FORMAT_VERSION, "feature extractor")
        try:
            params = json.loads(meta["params"])
            fitted = json.loads(meta["fitted"])
            params["device"] = device
            fx = cls(**params)
            fx.device_ = resolve_device(device)
            fx.sample_shape_ = tuple(int(s) for s in fitted["sample_shape_"])
            fx.n_classes_ = int(fitted["n_classes_"])
            fx.train_accuracy_ = float(fitted["train_accuracy_"])
            net = _build_net(fx.sample_shape_, fx.n_classes_, fx.embedding_dim)
            net.load_state_dict(tensors, strict=True)
        except (KeyError, TypeError, ValueError, RuntimeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path} has a damaged configuration or weights: {exc}") from exc
        fx.net_ = net.to(fx.device_).eval()
        return fx
