"""Downstream classifiers: what the benchmarks train on real + synthetic data and score.

Each is a scikit-learn estimator with ``fit(dataset)`` and ``predict(images)``, registered by
name in :data:`CLASSIFIERS` (``"resnet"``, ``"cnn"``, ``"logreg"``, ``"cv-select"``) for the harness.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from synthaug._params import (
    Estimator,
    Param,
    device_like,
    int_range,
    none_or,
    one_of,
    real_range,
    seed_like,
)
from synthaug._utils import check_seed, resolve_device, sklearn_seed
from synthaug.data import ImageDataset
from synthaug.errors import EmptyDatasetError, InvalidDataError, NotFittedError
from synthaug.nn import (
    LOSSES,
    SAMPLERS,
    MaxPoolCNN,
    SmallCNN,
    SmallResNet,
    batched,
    random_jitter,
    seeded,
    train_classifier,
)
from synthaug.registry import Registry

CLASSIFIERS: Registry = Registry("classifier")
"""Downstream classifiers by name: ``CLASSIFIERS.create("resnet", steps=1000)``."""


def _check_training_set(dataset: ImageDataset, what: str) -> None:
    if not isinstance(dataset, ImageDataset):
        raise InvalidDataError(
            f"{what}.fit expects a synthaug.data.ImageDataset, got {type(dataset).__name__}"
        )
    if len(dataset) == 0:
        raise EmptyDatasetError("cannot train a classifier on an empty dataset")


def _flat(images: Any) -> np.ndarray:
    return np.asarray(images).reshape(len(images), -1)


class _NetTraining(Estimator):
    """The training parameters of a network trained on the class labels with Adam: the neural
    downstream classifiers and the fidelity metrics' :class:`FeatureExtractor`."""

    epochs = Param(
        30, int_range(1), "Passes over the data (ignored by a classifier given ``steps``)."
    )
    batch_size = Param(64, int_range(1), "Samples per mini-batch.")
    lr = Param(1e-3, real_range(0, None, low_open=True), "Adam learning rate.")
    weight_decay = Param(1e-4, real_range(0), "Adam weight decay (L2 penalty).")
    seed = Param(0, seed_like, "Seeds the initial weights and the batch order.")
    device = Param(
        "auto", device_like, 'Where the network trains and runs; ``"auto"``: CUDA when available.'
    )


class NetClassifier(_NetTraining):
    """Shared parameters and training of the neural downstream classifiers.

    A subclass names its network in :meth:`_build_net`. Training is the shared
    :func:`~synthaug.nn.train_classifier` loop (Adam, no early stopping on test data),
    deterministic on the CPU per seed.

    Attributes
    ----------
    n_steps_ : int
        Optimiser steps taken.
    online_transform_ : bool
        Whether the items were read through the dataset's own ``transform`` (an
        :class:`~synthaug.augment.AugmentedDataset` with a transform): then every item is
        transformed each time it is drawn, real and synthetic alike.
    """

    steps = Param(
        None,
        none_or(int_range(1)),
        """The training budget in optimiser steps. Give it whenever methods that change the size
        of the training set are compared (the benchmark harness requires it): a fixed number
        of epochs gives a set twice as large twice the optimisation.""",
    )
    loss = Param(
        "ce",
        one_of(*LOSSES),
        """Plain cross-entropy, inverse-frequency weighted cross-entropy, or the logit-adjusted
        loss of Menon et al. (2021) (balanced softmax).""",
    )
    sampler = Param("shuffle", one_of(*SAMPLERS), "Reshuffled passes, or class-balanced batches.")
    mixup = Param(0.0, real_range(0), "Beta parameter of mixup; 0 turns it off.")
    augment = Param(
        "none",
        one_of("none", "jitter"),
        """Online augmentation of every batch: ``"jitter"`` is
        :func:`~synthaug.nn.random_jitter` (small affine jitter and mild noise, the ranges of
        the ``classical`` sample source).""",
    )

    def _build_net(self, in_channels: int, n_classes: int) -> torch.nn.Module:
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "net_")

    def fit(self, dataset: ImageDataset) -> NetClassifier:
        """Train on ``dataset`` (``(N, C, H, W)`` images) and return ``self``.

        When the dataset has a ``transform`` (an :class:`~synthaug.augment.AugmentedDataset`
        built with one), items are read through ``dataset[i]`` so the transform acts on every
        draw; otherwise the images tensor is used directly (the fast path).
        """
        self.check_params()
        name = type(self).__name__
        _check_training_set(dataset, name)
        if not dataset.is_image:
            raise InvalidDataError(f"{name} needs (N, C, H, W) images, not feature vectors")
        self.device_ = resolve_device(self.device)
        seed = check_seed(self.seed)
        self.n_classes_ = dataset.n_classes
        with seeded(seed):
            net = self._build_net(dataset.sample_shape[0], dataset.n_classes).to(self.device_)
        transform = getattr(dataset, "transform", None)
        self.online_transform_ = transform is not None
        read = None
        if transform is not None:
            # A per-item transform (albumentations, torchvision v2) draws its own parameters
            # for each image, so each item of a batch goes through it on its own.
            def read(idx: torch.Tensor) -> torch.Tensor:
                return torch.stack([dataset[int(i)][0] for i in idx])

        self.history_ = train_classifier(
            net,
            None if read is not None else dataset.images.to(self.device_),
            dataset.labels.to(self.device_),
            epochs=self.epochs,
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            seed=seed,
            loss=self.loss,
            sampler=self.sampler,
            mixup=self.mixup,
            augment=random_jitter if self.augment == "jitter" else None,
            read=read,
            n_classes=dataset.n_classes,
            desc=name,
        )
        self.n_steps_ = int(
            self.history_[-1]["steps"]
            if self.history_ and "steps" in self.history_[-1]
            else self.epochs * math.ceil(len(dataset) / self.batch_size)
        )
        self.net_ = net
        return self

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor) -> np.ndarray:
        """Class probabilities, ``(N, n_classes)``."""
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(dataset) first")
        probs = batched(
            lambda x: F.softmax(self.net_(x), dim=1).cpu(),
            images,
            network=self.net_,
            device=self.device_,
        )
        return probs.numpy()

    def predict(self, images: torch.Tensor) -> np.ndarray:
        """Predicted labels, ``(N,)``."""
        return self.predict_proba(images).argmax(axis=1)


@CLASSIFIERS.register("cnn")
class CNNClassifier(NetClassifier):
    """A small convolutional classifier: :class:`~synthaug.nn.SmallCNN` (two 3x3
    convolutions, average pooling to 4x4, a 128-wide layer, a linear head).

    The harness's original downstream model, kept for comparison with earlier tables; the
    stronger :class:`ResNetClassifier` is the default of the shipped grids.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> ds = load_digits()
    >>> clf = CNNClassifier(steps=20).fit(ds)
    >>> clf.predict(ds.images[:3]).shape, clf.n_steps_
    ((3,), 20)
    """

    def _build_net(self, in_channels: int, n_classes: int) -> torch.nn.Module:
        return SmallCNN(in_channels, n_classes)


@CLASSIFIERS.register("resnet")
class ResNetClassifier(NetClassifier):
    """A small residual classifier: :class:`~synthaug.nn.SmallResNet` (three residual stages
    of 16, 32 and 64 channels, group norm, global average and max pooling).

    Global pooling suits images of any size and keeps small findings (a lesion) visible to
    the head.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> clf = ResNetClassifier(steps=20, sampler="balanced").fit(load_digits())
    >>> clf.n_steps_
    20
    """

    def _build_net(self, in_channels: int, n_classes: int) -> torch.nn.Module:
        return SmallResNet(in_channels, n_classes)


@CLASSIFIERS.register("maxpool-cnn")
class MaxPoolCNNClassifier(NetClassifier):
    """A three-convolution classifier with global max pooling: :class:`~synthaug.nn.MaxPoolCNN`.

    The lesion grids' classifier: cheap on a CPU and competent at finding one small bright
    region in a slice (with ``sampler="balanced"``).

    Examples
    --------
    >>> from synthaug.data import make_phantoms
    >>> clf = MaxPoolCNNClassifier(steps=10, sampler="balanced").fit(make_phantoms(8, size=16))
    >>> clf.n_steps_
    10
    """

    def _build_net(self, in_channels: int, n_classes: int) -> torch.nn.Module:
        return MaxPoolCNN(in_channels, n_classes)


@CLASSIFIERS.register("logreg")
class LogisticRegressionClassifier(Estimator):
    """Multinomial logistic regression on flattened pixels (scikit-learn, lbfgs)."""

    C = Param(1.0, real_range(0, None, low_open=True), "Inverse regularisation strength.")
    max_iter = Param(1000, int_range(1), "Iteration limit of the lbfgs solver.")
    loss = Param(
        "ce",
        one_of(*LOSSES),
        """Plain log-loss; log-loss with inverse-frequency class weights (scikit-learn's
        ``class_weight="balanced"``); or plain log-loss with post-hoc logit adjustment
        (Menon et al., 2021: the log class prior is subtracted from the decision values at
        prediction), the form of logit adjustment open to a model not trained by mini-batches.""",
    )
    seed = Param(0, seed_like, "The ``random_state`` of scikit-learn's model.")

    def fit(self, dataset: ImageDataset) -> LogisticRegressionClassifier:
        """Fit on ``dataset``'s flattened samples and return ``self``."""
        self.check_params()
        _check_training_set(dataset, "LogisticRegressionClassifier")
        self.model_ = LogisticRegression(
            C=self.C,
            max_iter=self.max_iter,
            class_weight="balanced" if self.loss == "class-weighted" else None,
            random_state=sklearn_seed(self.seed),
        )
        y = dataset.labels.numpy()
        self.model_.fit(dataset.flat(), y)
        prior = np.bincount(y, minlength=dataset.n_classes)[self.model_.classes_] / len(y)
        self.log_prior_ = np.log(prior)
        return self

    def predict(self, images: Any) -> np.ndarray:
        """Predicted labels, ``(N,)``."""
        if not self.is_fitted:
            raise NotFittedError("LogisticRegressionClassifier is not fitted; call fit first")
        if self.loss != "logit-adjusted":
            return self.model_.predict(_flat(images))
        scores = self.model_.predict_log_proba(_flat(images)) - self.log_prior_
        return self.model_.classes_[scores.argmax(axis=1)]


@CLASSIFIERS.register("cv-select")
class CVSelectClassifier(Estimator):
    """The best of logistic regression, an RBF SVM and 5-NN by stratified k-fold CV on the
    training data only (so a test split is used once, to score the choice).

    What a user of a released synthetic data set would do: pick a model on the data they have.

    Attributes
    ----------
    cv_scores_ : dict of str to float
        Mean cross-validated balanced accuracy of each candidate.
    chosen_ : str
        The candidate refitted on all the training data.
    """

    folds = Param(3, int_range(2), "Folds of the stratified cross-validation.")
    seed = Param(0, seed_like, "Seeds the folds and the candidates' own randomness.")

    def _candidates(self) -> dict[str, Any]:
        return {
            "logreg": LogisticRegression(max_iter=2000, random_state=sklearn_seed(self.seed)),
            "svm-rbf": SVC(random_state=sklearn_seed(self.seed)),
            "5-nn": KNeighborsClassifier(5),
        }

    def fit(self, dataset: ImageDataset) -> CVSelectClassifier:
        """Cross-validate the candidates, refit the best on ``dataset`` and return ``self``."""
        self.check_params()
        _check_training_set(dataset, "CVSelectClassifier")
        x, y = dataset.flat(), dataset.labels.numpy()
        folds = StratifiedKFold(self.folds, shuffle=True, random_state=sklearn_seed(self.seed))
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
