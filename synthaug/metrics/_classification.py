"""Downstream classifiers and the scores the demo and harness report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthaug._utils import check_seed, resolve_device
from synthaug.data import ImageDataset
from synthaug.errors import EmptyDatasetError, NotFittedError


def classification_scores(
    y_true: np.ndarray | Sequence[int],
    y_pred: np.ndarray | Sequence[int],
    *,
    minority_classes: Sequence[int] = (),
    labels: Sequence[int] | None = None,
) -> dict[str, float]:
    """Balanced accuracy (ACSA), macro-F1, geometric mean and minority recall.

    Parameters
    ----------
    y_true, y_pred : array of int
    minority_classes : sequence of int
        Labels whose recalls are averaged into ``minority_recall``.
    labels : sequence of int, optional
        All class labels (default: those in ``y_true``).

    Returns
    -------
    dict
        ``balanced_accuracy``, ``macro_f1``, ``gmean`` (geometric mean of per-class recalls,
        as in DeepSMOTE's tables), ``minority_recall`` (NaN when no minority class is given)
        and ``recall_<label>`` for every class.
    """
    from sklearn.metrics import f1_score, recall_score

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = np.unique(y_true) if labels is None else np.asarray(labels)
    recalls = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    scores = {
        "balanced_accuracy": float(np.mean(recalls)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "gmean": float(np.exp(np.mean(np.log(np.maximum(recalls, 1e-12)))))
        if recalls.min() > 0
        else 0.0,
        "minority_recall": float(
            np.mean([recalls[list(labels).index(c)] for c in minority_classes])
        )
        if len(minority_classes)
        else float("nan"),
    }
    scores.update({f"recall_{int(c)}": float(r) for c, r in zip(labels, recalls, strict=True)})
    return scores


class _SmallCNN(nn.Module):
    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU(), nn.Linear(128, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class CNNClassifier:
    """A small convolutional classifier: the downstream model of the demo and the harness.

    Two 3x3 convolutions, adaptive pooling to 4x4 and a two-layer head; Adam, cross-entropy,
    a fixed number of epochs (no early stopping on test data). Deterministic on CPU per seed.

    Parameters
    ----------
    epochs : int
    batch_size : int
    lr : float
    weight_decay : float
    seed : int
    device : str

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> ds = load_digits()
    >>> clf = CNNClassifier(epochs=1).fit(ds)
    >>> clf.predict(ds.images[:3]).shape
    (3,)
    """

    def __init__(
        self,
        *,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.device = device

    def fit(self, dataset: ImageDataset) -> CNNClassifier:
        if len(dataset) == 0:
            raise EmptyDatasetError("cannot train a classifier on an empty dataset")
        from synthaug.generators._base import seeded

        self.device_ = resolve_device(self.device)
        seed = check_seed(self.seed)
        self.n_classes_ = dataset.n_classes
        with seeded(seed):
            self.net_ = _SmallCNN(dataset.sample_shape[0], dataset.n_classes).to(self.device_)
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        x = dataset.images.to(self.device_)
        y = dataset.labels.to(self.device_)
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.net_.train()
        for _ in range(self.epochs):
            perm = torch.randperm(len(x), generator=gen, device=self.device_)
            for start in range(0, len(x), self.batch_size):
                idx = perm[start : start + self.batch_size]
                loss = F.cross_entropy(self.net_(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.net_.eval()
        return self

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor) -> np.ndarray:
        if not hasattr(self, "net_"):
            raise NotFittedError("CNNClassifier is not fitted; call fit(dataset) first")
        out = [
            F.softmax(self.net_(images[i : i + 4096].to(self.device_)), dim=1).cpu()
            for i in range(0, len(images), 4096)
        ]
        return torch.cat(out).numpy()

    def predict(self, images: torch.Tensor) -> np.ndarray:
        return self.predict_proba(images).argmax(axis=1)
