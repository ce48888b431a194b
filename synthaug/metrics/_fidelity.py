"""Fidelity: how closely synthetic samples resemble the real ones, in a learned embedding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from synthaug._utils import sklearn_seed
from synthaug.data import ImageDataset
from synthaug.errors import InvalidDataError, InvalidParameterError
from synthaug.metrics._distances import frechet_distance, prdc
from synthaug.metrics._features import FeatureExtractor
from synthaug.metrics._inputs import DataLike, as_datasets, subsample


def resolve_features(
    features: FeatureExtractor | Callable | None, real: ImageDataset, seed: int, device: str
) -> FeatureExtractor:
    """A fitted extractor: the one given, a wrapped function, or a new one trained on ``real``."""
    if features is None:
        return FeatureExtractor(seed=seed, device=device).fit(real)
    if isinstance(features, FeatureExtractor):
        return features if features.is_fitted else features.fit(real)
    if callable(features):
        return FeatureExtractor.from_function(features)
    raise InvalidParameterError(
        f"features must be None, a FeatureExtractor or a function, got {type(features).__name__}"
    )


def fidelity(
    real: DataLike,
    synthetic: DataLike,
    *,
    features: FeatureExtractor | Callable | None = None,
    k: int = 5,
    per_class: bool = True,
    c2st_folds: int = 5,
    max_samples: int | None = None,
    seed: int = 0,
    device: str = "auto",
) -> dict[str, Any]:
    """Fidelity of ``synthetic`` to ``real``, measured in an embedding of the real data.

    Parameters
    ----------
    real, synthetic : ImageDataset or (images, labels)
        Labelled samples with the same sample shape and classes.
    features : FeatureExtractor, callable or None
        The embedding. ``None`` trains a :class:`FeatureExtractor` on ``real`` (seeded by
        ``seed``); an unfitted extractor is fitted on ``real``; a function ``images -> (N, d)``
        is used as it is. Pass one saved extractor to compare runs in one embedding.
    k : int
        Neighbourhood size of precision / recall / density / coverage (Naeem et al. use 5).
    per_class : bool
        Also report per-class entries. Every class present in ``real`` then needs at least
        ``k + 1`` samples in both sets (and classes absent from ``real`` must be absent from
        ``synthetic``); otherwise an ``InvalidDataError`` says which class is short.
    c2st_folds : int
        Folds of the classifier two-sample test.
    max_samples : int, optional
        Randomly keep at most this many samples of each set (seeded), to bound the cost.
    seed : int
        Seeds the extractor's training, the subsampling and the C2ST folds: same seed, same
        figures.
    device : str
        Where a new extractor trains.

    Returns
    -------
    dict
        ``fd``
            Fréchet distance between Gaussians fitted to the embeddings (Heusel et al. 2017);
            0 for identical sets, lower is better.
        ``precision``, ``recall``, ``density``, ``coverage``
            k-NN manifold estimates (Naeem et al., ICML 2020; precision/recall after
            Kynkäänniemi et al. 2019). Identical distributions give about 1, 1, 1 and 0.97.
        ``c2st_auc``
            Out-of-fold ROC AUC of a logistic regression on standardised embeddings telling real
            (0) from synthetic (1) (classifier two-sample test, Lopez-Paz & Oquab, ICLR 2017;
            SDMetrics' LogisticDetection). 0.5 means indistinguishable, 1 fully separable.
        ``label_fidelity``
            Accuracy with which a logistic regression trained on the real embeddings and labels
            labels the synthetic samples (does a "7" look like a 7?).
        ``<metric>_<label>``
            Per class: ``fd``, ``precision``, ``recall``, ``density``, ``coverage`` and
            ``label_fidelity`` (the recall of that class), for each class present in ``real``.
        ``embedding``, ``n_real``, ``n_synthetic``, ``k``
            Which embedding was used, and the sizes.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> train, test = load_digits().split(0.5, seed=0)
    >>> fx = FeatureExtractor(epochs=2).fit(train)
    >>> scores = fidelity(train, test, features=fx, per_class=False)
    >>> 0.3 < scores["c2st_auc"] < 0.7
    True
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidParameterError(f"k must be a positive integer, got {k!r}")
    if isinstance(c2st_folds, bool) or not isinstance(c2st_folds, int) or c2st_folds < 2:
        raise InvalidParameterError(f"c2st_folds must be an integer >= 2, got {c2st_folds!r}")
    sets = as_datasets({"real": real, "synthetic": synthetic})
    rng = np.random.default_rng(seed)
    real_ds = subsample(sets["real"], max_samples, rng)
    syn_ds = subsample(sets["synthetic"], max_samples, rng)
    need = max(k + 1, c2st_folds)
    for name, ds in (("real", real_ds), ("synthetic", syn_ds)):
        if len(ds) < need:
            raise InvalidDataError(
                f"{name} has {len(ds)} samples; fidelity needs at least {need} "
                f"(k + 1 = {k + 1} for the k-NN radii, {c2st_folds} for the C2ST folds)"
            )
    classes = _checked_classes(real_ds, syn_ds, k) if per_class else []

    fx = resolve_features(features, real_ds, seed, device)
    e_real = fx.transform(real_ds)
    e_syn = fx.transform(syn_ds)
    if e_real.shape[1] != e_syn.shape[1] or e_real.shape[1] == 0:
        raise InvalidDataError(f"embeddings have unusable widths {e_real.shape}, {e_syn.shape}")
    y_real = real_ds.labels.numpy()
    y_syn = syn_ds.labels.numpy()

    out: dict[str, Any] = {"fd": frechet_distance(e_real, e_syn)}
    out.update(prdc(e_real, e_syn, k))
    out["c2st_auc"] = _c2st_auc(e_real.numpy(), e_syn.numpy(), c2st_folds, seed)
    agreement = _label_agreement(e_real.numpy(), y_real, e_syn.numpy(), y_syn, seed)
    out["label_fidelity"] = agreement["label_fidelity"]
    for c in classes:
        r = torch.from_numpy(y_real == c)
        s = torch.from_numpy(y_syn == c)
        out[f"fd_{c}"] = frechet_distance(e_real[r], e_syn[s])
        out.update({f"{key}_{c}": v for key, v in prdc(e_real[r], e_syn[s], k).items()})
        out[f"label_fidelity_{c}"] = agreement[f"label_fidelity_{c}"]
    out.update(
        {"embedding": fx.describe(), "n_real": len(real_ds), "n_synthetic": len(syn_ds), "k": k}
    )
    return out


def _checked_classes(real: ImageDataset, synthetic: ImageDataset, k: int) -> list[int]:
    rc, sc = real.class_counts(), synthetic.class_counts()
    extra = [real.classes[c] for c in sc if sc[c] and not rc[c]]
    if extra:
        raise InvalidDataError(
            f"synthetic holds class(es) {extra} that real does not; per-class fidelity cannot "
            f"compare them (pass per_class=False or give real samples of those classes)"
        )
    present = [c for c in rc if rc[c]]
    short = [
        f"{real.classes[c]} (real {rc[c]}, synthetic {sc[c]})"
        for c in present
        if rc[c] < k + 1 or sc[c] < k + 1
    ]
    if short:
        raise InvalidDataError(
            f"per-class fidelity needs at least k + 1 = {k + 1} samples per class in both sets; "
            f"too few for class(es) {', '.join(short)}. Add samples, lower k, or pass "
            f"per_class=False"
        )
    return present


def label_fidelity(
    real: DataLike,
    synthetic: DataLike,
    *,
    features: FeatureExtractor | Callable | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Does a "7" look like a 7? Label agreement of synthetic samples with a real-data classifier.

    A standardised logistic regression is trained on the real samples and their labels and
    predicts the synthetic ones; the figure is the share predicted as the class they were
    generated for. It measures in pixel space by default, or in an embedding.

    Parameters
    ----------
    real, synthetic : ImageDataset or (images, labels)
        Labelled samples with the same sample shape and classes.
    features : FeatureExtractor, callable or None
        ``None`` uses the flattened samples; otherwise the embedding to classify in (an
        unfitted extractor is fitted on ``real``).
    seed : int
        Seeds the classifier (and a new extractor).

    Returns
    -------
    dict
        ``label_fidelity`` over all synthetic samples and ``label_fidelity_<label>`` for each
        class present in ``synthetic`` (the recall of that class).

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> train, test = load_digits().split(0.5, seed=0)
    >>> label_fidelity(train, test)["label_fidelity"] > 0.9
    True
    """
    sets = as_datasets({"real": real, "synthetic": synthetic})
    real_ds, syn_ds = sets["real"], sets["synthetic"]
    if features is None:
        x_real, x_syn = real_ds.flat(), syn_ds.flat()
    else:
        fx = resolve_features(features, real_ds, seed, "auto")
        x_real, x_syn = fx.transform(real_ds).numpy(), fx.transform(syn_ds).numpy()
    return _label_agreement(x_real, real_ds.labels.numpy(), x_syn, syn_ds.labels.numpy(), seed)


def _label_agreement(
    x_real: np.ndarray, y_real: np.ndarray, x_syn: np.ndarray, y_syn: np.ndarray, seed: int
) -> dict[str, float]:
    if len(np.unique(y_real)) < 2:
        # One class only: every synthetic sample is labelled with it.
        predicted = np.full(len(x_syn), y_real[0])
    else:
        clf = make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, random_state=sklearn_seed(seed))
        )
        predicted = clf.fit(x_real, y_real).predict(x_syn)
    out = {"label_fidelity": float(np.mean(predicted == y_syn))}
    for c in np.unique(y_syn):
        out[f"label_fidelity_{int(c)}"] = float(np.mean(predicted[y_syn == c] == c))
    return out


def _c2st_auc(real: np.ndarray, synthetic: np.ndarray, folds: int, seed: int) -> float:
    x = np.concatenate([real, synthetic])
    y = np.concatenate([np.zeros(len(real), int), np.ones(len(synthetic), int)])
    clf = make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced")
    )
    cv = StratifiedKFold(folds, shuffle=True, random_state=sklearn_seed(seed))
    proba = cross_val_predict(clf, x, y, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, proba))
