"""Classical one-class baselines from scikit-learn, behind the detector API.

These are the references a generative detector must beat (Ruff et al., Deep SVDD, ICML 2018,
report them next to their own method). All work on flattened pixels.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors
from sklearn.svm import OneClassSVM

from synthaug._params import Param, any_of, int_range, one_of, real_range
from synthaug.anomaly._base import BaseDetector
from synthaug.anomaly._registry import register_detector


def _flat(images: torch.Tensor) -> np.ndarray:
    return images.reshape(len(images), -1).numpy().astype(np.float64)


@register_detector("isolation-forest")
class IsolationForestDetector(BaseDetector):
    """Isolation forest (Liu, Ting & Zhou, ICDM 2008): anomalies are isolated by few splits.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.anomaly import IsolationForestDetector
    >>> digits = load_digits()
    >>> zeros = digits.subset((digits.labels == 0).nonzero().flatten())
    >>> scores = IsolationForestDetector(seed=0).fit(zeros).decision_function(digits)
    >>> scores.shape
    (1797,)
    """

    n_estimators = Param(200, int_range(1), "Number of trees.")
    max_samples = Param(
        "auto",
        any_of(one_of("auto"), int_range(1), real_range(0, 1, low_open=True)),
        "Samples drawn to build each tree (scikit-learn's meaning).",
        type='int, float or "auto"',
    )

    def _fit(self, images: torch.Tensor, seed: int) -> None:
        self.model_ = IsolationForest(
            n_estimators=self.n_estimators, max_samples=self.max_samples, random_state=seed % 2**32
        ).fit(_flat(images))

    def _score(self, images: torch.Tensor) -> np.ndarray:
        return -self.model_.score_samples(_flat(images))


@register_detector("ocsvm")
class OneClassSVMDetector(BaseDetector):
    """One-class SVM (Schölkopf et al., Neural Computation 2001) with an RBF kernel."""

    nu = Param(
        0.1,
        real_range(0, 1, low_open=True),
        "Upper bound on the share of training samples treated as outliers.",
    )
    gamma = Param(
        "scale",
        any_of(one_of("scale", "auto"), real_range(0, None, low_open=True)),
        "RBF kernel width (scikit-learn's meaning).",
        type='float or "scale"',
    )

    def _fit(self, images: torch.Tensor, seed: int) -> None:
        self.model_ = OneClassSVM(nu=self.nu, gamma=self.gamma).fit(_flat(images))

    def _score(self, images: torch.Tensor) -> np.ndarray:
        return -self.model_.decision_function(_flat(images))


@register_detector("pca")
class PCADetector(BaseDetector):
    """PCA reconstruction error: the squared distance of a sample to the normal subspace."""

    n_components = Param(
        10,
        int_range(1),
        """Principal components kept; capped at ``n_train - 1`` and the number of features (the
        value used is ``n_components_``).""",
    )

    def _fit(self, images: torch.Tensor, seed: int) -> None:
        x = _flat(images)
        self.n_components_ = int(min(self.n_components, len(x) - 1, x.shape[1]))
        self.model_ = PCA(n_components=self.n_components_, random_state=seed % 2**32).fit(x)

    def _score(self, images: torch.Tensor) -> np.ndarray:
        x = _flat(images)
        recon = self.model_.inverse_transform(self.model_.transform(x))
        return ((x - recon) ** 2).sum(axis=1)


@register_detector("knn")
class KNNDetector(BaseDetector):
    """k-nearest-neighbour distance (Ramaswamy, Rastogi & Shim, SIGMOD 2000).

    The score is the Euclidean distance to the ``k``-th nearest normal training sample
    (``method="largest"``) or the mean distance to the ``k`` nearest (``"mean"``).
    """

    n_neighbors = Param(5, int_range(1), "``k``; capped at the number of training samples.")
    method = Param(
        "largest",
        one_of("largest", "mean"),
        "The distance to the ``k``-th neighbour, or the mean distance to the ``k`` nearest.",
    )

    def _fit(self, images: torch.Tensor, seed: int) -> None:
        x = _flat(images)
        self.n_neighbors_ = int(min(self.n_neighbors, len(x)))
        self.model_ = NearestNeighbors(n_neighbors=self.n_neighbors_).fit(x)

    def _score(self, images: torch.Tensor) -> np.ndarray:
        dist, _ = self.model_.kneighbors(_flat(images))
        return dist[:, -1] if self.method == "largest" else dist.mean(axis=1)
