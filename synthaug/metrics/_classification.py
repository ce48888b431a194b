"""The classification scores the demos and the harness report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score, recall_score, roc_auc_score

from synthaug.errors import InvalidDataError, ShapeMismatchError


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


def binary_scores(
    y_true: np.ndarray | Sequence[int],
    positive_proba: np.ndarray | Sequence[float],
    *,
    positive: int = 1,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Scores of a detector of one positive class (a lesion, say) from its probabilities.

    Parameters
    ----------
    y_true : array of int
        True labels; ``positive`` marks the positive class, anything else is negative.
    positive_proba : array of float
        Predicted probability of the positive class.
    positive : int
        The positive label.
    threshold : float
        A sample is predicted positive when its probability is at least this.

    Returns
    -------
    dict
        ``recall`` (sensitivity), ``specificity``, ``balanced_accuracy`` (their mean),
        ``auroc`` (area under the ROC curve of the probabilities; threshold-free) and
        ``sensitivity_at_90_specificity`` (the recall at the threshold that keeps 90% of the
        negatives below it: a fixed operating point that does not depend on calibration).

    Examples
    --------
    >>> s = binary_scores([0, 0, 0, 1, 1], [0.1, 0.6, 0.2, 0.9, 0.4])
    >>> s["recall"], round(s["specificity"], 3), round(s["auroc"], 3)
    (0.5, 0.667, 0.833)
    """
    y_true = np.asarray(y_true) == positive
    proba = np.asarray(positive_proba, dtype=float)
    if y_true.ndim != 1 or proba.shape != y_true.shape:
        raise ShapeMismatchError(
            f"y_true and positive_proba must be 1-D and of one length, got shapes "
            f"{y_true.shape} and {proba.shape}"
        )
    if not np.isfinite(proba).all():
        raise InvalidDataError("positive_proba holds NaN or infinite values")
    if y_true.all() or not y_true.any():
        raise InvalidDataError(
            "binary_scores needs positive and negative samples in y_true (recall, specificity "
            "and AUROC are undefined otherwise)"
        )
    pred = proba >= threshold
    recall = float(pred[y_true].mean())
    specificity = float((~pred[~y_true]).mean())
    # The operating point: the smallest threshold that at least 90% of negatives fall below.
    negatives = np.sort(proba[~y_true])
    cut = negatives[min(len(negatives) - 1, int(np.ceil(0.9 * len(negatives))) - 1)]
    return {
        "recall": recall,
        "specificity": specificity,
        "balanced_accuracy": (recall + specificity) / 2,
        "auroc": float(roc_auc_score(y_true, proba)),
        "sensitivity_at_90_specificity": float((proba[y_true] > cut).mean()),
    }
