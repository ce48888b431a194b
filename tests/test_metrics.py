import math

import numpy as np
import pytest

from synthaug.data import ImageDataset
from synthaug.errors import EmptyDatasetError, NotFittedError
from synthaug.metrics import CNNClassifier, classification_scores


def test_classification_scores_by_hand():
    y_true = [0, 0, 0, 0, 1, 1]
    y_pred = [0, 0, 0, 1, 1, 0]
    s = classification_scores(y_true, y_pred, minority_classes=[1])
    assert s["recall_0"] == pytest.approx(0.75)
    assert s["recall_1"] == pytest.approx(0.5)
    assert s["balanced_accuracy"] == pytest.approx(0.625)
    assert s["minority_recall"] == pytest.approx(0.5)
    assert s["gmean"] == pytest.approx(math.sqrt(0.75 * 0.5))
    # F1: class 0 p=3/4 r=3/4 -> .75; class 1 p=1/2 r=1/2 -> .5
    assert s["macro_f1"] == pytest.approx(0.625)


def test_classification_scores_missing_class_counts_as_zero_recall():
    s = classification_scores([0, 1, 2], [0, 1, 1], labels=[0, 1, 2])
    assert s["recall_2"] == 0 and s["gmean"] == 0
    assert math.isnan(s["minority_recall"])


def test_cnn_classifier_learns_digits(digits):
    train, test = digits.split(0.4, seed=0)
    clf = CNNClassifier(epochs=5, seed=0, device="cpu").fit(train)
    acc = float(np.mean(clf.predict(test.images) == test.labels.numpy()))
    assert acc > 0.9
    again = CNNClassifier(epochs=5, seed=0, device="cpu").fit(train)
    np.testing.assert_array_equal(clf.predict_proba(test.images), again.predict_proba(test.images))


def test_cnn_classifier_errors():
    import torch

    with pytest.raises(NotFittedError):
        CNNClassifier().predict(torch.zeros(1, 1, 8, 8))
    with pytest.raises(EmptyDatasetError):
        CNNClassifier().fit(
            ImageDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.int64), ["a"])
        )
