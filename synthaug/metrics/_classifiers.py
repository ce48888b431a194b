"""Downstream classifiers: what the benchmarks train on real + synthetic data and score.

Each is a scikit-learn estimator with ``fit(dataset)`` and ``predict(images)``, registered by
name in :data:`CLASSIFIERS` (``"cnn"``, ``"logreg"``, ``"cv-select"``) for the harness.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from synthaug._params import Estimator, Rule, device_like, int_range, real_range, seed_like
from synthaug._utils import check_seed, resolve_device
from synthaug.data import ImageDataset
from synthaug.errors import EmptyDatasetError, InvalidDataError, NotFittedError
from synthaug.nn import SmallCNN, seeded, train_classifier
from synthaug.registry import Registry

CLASSIFIERS: Registry = Registry("classifier")
"""Downstream classifiers by name: ``CLASSIFIERS.create("cnn", epochs=10)``."""
_BATCH = 4096


def _check_training_set(dataset: ImageDataset, what: str) -> None:
    if not isinstance(dataset, ImageDataset):
        raise InvalidDataError(
            f"{what}.fit expects a synthaug.data.ImageDataset, got {type(dataset).__name__}"
        )
    if len(dataset) == 0:
        raise EmptyDatasetError("cannot train a classifier on an empty dataset")


def _flat(images: Any) -> np.ndarray:
    return np.asarray(images).reshape(len(images), -1)


@CLASSIFIERS.register("cnn")
class CNNClassifier(Estimator):
    """A small convolutional classifier: the downstream model of the demos and the harness.

    :class:`~synthaug.nn.SmallCNN` (two 3x3 convolutions, pooling to 4x4, a 128-wide layer,
    a linear head), trained with Adam and cross-entropy for a fixed number of epochs by the
    shared :class:`~synthaug.nn.Trainer` (no early stopping on test data). Deterministic on
    CPU per seed.

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

    _parameter_constraints: ClassVar[dict[str, Rule]] = {
        "epochs": int_range(1),
        "batch_size": int_range(1),
        "lr": real_range(0, None, low_open=True),
        "weight_decay": real_range(0),
        "seed": seed_like,
        "device": device_like,
    }

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

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "net_")

    def fit(self, dataset: ImageDataset) -> CNNClassifier:
        """Train on ``dataset`` (``(N, C, H, W)`` images) and return ``self``."""
        self.check_params()
        _check_training_set(dataset, "CNNClassifier")
        if not dataset.is_image:
            raise InvalidDataError("CNNClassifier needs (N, C, H, W) images, not feature vectors")
        self.device_ = resolve_device(self.device)
        seed = check_seed(self.seed)
        self.n_classes_ = dataset.n_classes
        with seeded(seed):
            net = SmallCNN(dataset.sample_shape[0], dataset.n_classes).to(self.device_)
        self.history_ = train_classifier(
            net,
            dataset.images.to(self.device_),
            dataset.labels.to(self.device_),
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            seed=seed,
            desc="CNNClassifier",
        )
        self.net_ = net
        return self

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor) -> np.ndarray:
        """Class probabilities, ``(N, n_classes)``."""
        if not self.is_fitted:
            raise NotFittedError("CNNClassifier is not fitted; call fit(dataset) first")
        out = [
            F.softmax(self.net_(images[i : i + _BATCH].to(self.device_)), dim=1).cpu()
            for i in range(0, len(images), _BATCH)
        ]
        return torch.cat(out).numpy()

    def predict(self, images: torch.Tensor) -> np.ndarray:
        """Predicted labels, ``(N,)``."""
        return self.predict_proba(images).argmax(axis=1)


@CLASSIFIERS.register("logreg")
class LogisticRegressionClassifier(Estimator):
    """Multinomial logistic regression on flattened pixels (scikit-learn, lbfgs).

    Parameters
    ----------
    C : float
        Inverse regularisation strength.
    max_iter : int
    seed : int
    """

    _parameter_constraints: ClassVar[dict[str, Rule]] = {
        "C": real_range(0, None, low_open=True),
        "max_iter": int_range(1),
        "seed": seed_like,
    }

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, seed: int = 0) -> None:
        self.C = C
        self.max_iter = max_iter
        self.seed = seed

    def fit(self, dataset: ImageDataset) -> LogisticRegressionClassifier:
        """Fit on ``dataset``'s flattened samples and return ``self``."""
        self.check_params()
        _check_training_set(dataset, "LogisticRegressionClassifier")
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
        self.model_.fit(dataset.flat(), dataset.labels.numpy())
        return self

    def predict(self, images: Any) -> np.ndarray:
        """Predicted labels, ``(N,)``."""
        if not self.is_fitted:
            raise NotFittedError("LogisticRegressionClassifier is not fitted; call fit first")
        return self.model_.predict(_flat(images))


@CLASSIFIERS.register("cv-select")
class CVSelectClassifier(Estimator):
    """The best of logistic regression, an RBF SVM and 5-NN by stratified k-fold CV on the
    training data only (so a test split is used once, to score the choice).

    What a user of a released synthetic data set would do: pick a model on the data they have.

    Parameters
    ----------
    folds : int
    seed : int

    Attributes
    ----------
    cv_scores_ : dict of str to float
        Mean cross-validated balanced accuracy of each candidate.
    chosen_ : str
        The candidate refitted on all the training data.
    """

    _parameter_constraints: ClassVar[dict[str, Rule]] = {
        "folds": int_range(2),
        "seed": seed_like,
    }

    def __init__(self, *, folds: int = 3, seed: int = 0) -> None:
        self.folds = folds
        self.seed = seed

    def _candidates(self) -> dict[str, Any]:
        return {
            "logreg": LogisticRegression(max_iter=2000, random_state=self.seed),
            "svm-rbf": SVC(random_state=self.seed),
            "5-nn": KNeighborsClassifier(5),
        }

    def fit(self, dataset: ImageDataset) -> CVSelectClassifier:
        """Cross-validate the candidates, refit the best on ``dataset`` and return ``self``."""
        self.check_params()
        _check_training_set(dataset, "CVSelectClassifier")
        x, y = dataset.flat(), dataset.labels.numpy()
        folds = StratifiedKFold(self.folds, shuffle=True, random_state=self.seed)
        candidates = self._candidates()
        self.cv_scores_ = {
            name: float(cross_val_score(clf, x, y, cv=folds, scoring="balanced_accuracy").mean())
            for name, clf in candidates.items()
        }
        self.chosen_ = max(self.cv_scores_, key=self.cv_scores_.get)
        self.model_ = candidates[self.chosen_].fit(x, y)
        return self

    def predict(self, images: Any) -> np.ndarray:
        """Predicted labels, ``(N,)``."""
        if not self.is_fitted:
            raise NotFittedError("CVSelectClassifier is not fitted; call fit first")
        return self.model_.predict(_flat(images))
