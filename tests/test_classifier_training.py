"""Downstream classifiers' training: step budgets, the free long-tail fixes (class weights,
logit adjustment, class-balanced sampling, online jitter, mixup) and online transforms."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score

from synthaug.augment import AugmentedDataset, RandomOverSampling
from synthaug.data import make_imbalanced
from synthaug.errors import InvalidParameterError
from synthaug.metrics import (
    CNNClassifier,
    CVSelectClassifier,
    FeatureExtractor,
    LogisticRegressionClassifier,
    ResNetClassifier,
    classification_scores,
)
from synthaug.nn import batch_indices, random_jitter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_transform_that_blanks_every_image_drives_the_cnn_to_chance(small_digits):
    source = RandomOverSampling().fit(small_digits)
    blank = AugmentedDataset(
        small_digits, source, strategy="ratio", ratio=0.1, seed=0, transform=torch.zeros_like
    )
    clf = CNNClassifier(steps=60, seed=0, device="cpu").fit(blank)
    assert clf.online_transform_ and clf.n_steps_ == 60
    truth = small_digits.labels.numpy()
    blind = balanced_accuracy_score(truth, clf.predict(small_digits.images))
    plain = AugmentedDataset(small_digits, source, strategy="ratio", ratio=0.1, seed=0)
    clf = CNNClassifier(steps=60, seed=0, device="cpu").fit(plain)
    seeing = balanced_accuracy_score(truth, clf.predict(small_digits.images))
    assert not clf.online_transform_
    # Every image it trained on was black, so it knows nothing of digits: chance is 0.1.
    assert blind < 0.2 < 0.6 < seeing


def test_balanced_sampler_draws_classes_evenly_and_reproducibly():
    y = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
    idx = batch_indices(y, 200, 30, "balanced", torch.Generator().manual_seed(0))
    assert idx.shape == (200, 30)
    share = torch.bincount(y[idx.flatten()], minlength=3) / idx.numel()
    assert torch.allclose(share, torch.full((3,), 1 / 3), atol=0.02)
    again = batch_indices(y, 200, 30, "balanced", torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)
    # Reshuffled passes: every index once per pass.
    idx = batch_indices(y, 5, 20, "shuffle", torch.Generator().manual_seed(0))
    assert sorted(idx.flatten().tolist()) == list(range(100))


def test_random_jitter_keeps_range_shape_and_seed():
    x = torch.rand(16, 1, 8, 8)
    a = random_jitter(x, torch.Generator().manual_seed(3))
    b = random_jitter(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0 and not torch.equal(a, x)


@pytest.mark.parametrize("cls", [CNNClassifier, ResNetClassifier])
@pytest.mark.parametrize(
    "options",
    [
        {"loss": "class-weighted"},
        {"loss": "logit-adjusted"},
        {"sampler": "balanced", "augment": "jitter"},
        {"sampler": "balanced", "mixup": 0.4},
    ],
)
def test_training_options_are_deterministic_and_change_the_model(cls, options, small_digits):
    train = make_imbalanced(small_digits, ratio=0.2, minority_classes=[7, 8, 9], seed=0)
    a = cls(steps=8, seed=1, device="cpu", **options).fit(train)
    b = cls(steps=8, seed=1, device="cpu", **options).fit(train)
    plain = cls(steps=8, seed=1, device="cpu").fit(train)
    x = small_digits.images
    assert np.array_equal(a.predict_proba(x), b.predict_proba(x))
    assert not np.allclose(a.predict_proba(x), plain.predict_proba(x))


def test_logreg_class_weighting_and_logit_adjustment_favour_the_rare_classes(digits):
    train, test = digits.split(0.5, seed=0)
    train = make_imbalanced(train, ratio=0.05, minority_classes=[5, 6, 7, 8, 9], seed=0)
    recall = {}
    for loss in ("ce", "class-weighted", "logit-adjusted"):
        clf = LogisticRegressionClassifier(loss=loss, max_iter=300).fit(train)
        scores = classification_scores(
            test.labels.numpy(), clf.predict(test.images), minority_classes=[5, 6, 7, 8, 9]
        )
        recall[loss] = scores["minority_recall"]
    assert recall["class-weighted"] > recall["ce"] and recall["logit-adjusted"] > recall["ce"]


@pytest.mark.parametrize(
    "estimator, name, rule",
    [
        (ResNetClassifier(steps=0), "steps", "None or an integer in [1, inf)"),
        (ResNetClassifier(loss="focal"), "loss", "one of 'ce', 'class-weighted', 'logit-adjusted'"),
        (CNNClassifier(sampler="oversample"), "sampler", "one of 'shuffle', 'balanced'"),
        (CNNClassifier(mixup=-0.1), "mixup", "a number in [0, inf)"),
        (CNNClassifier(augment="flip"), "augment", "one of 'none', 'jitter'"),
        (CNNClassifier(lr=0.0), "lr", "a number in (0, inf)"),
        (LogisticRegressionClassifier(C=0), "C", "a number in (0, inf)"),
        (LogisticRegressionClassifier(max_iter=0), "max_iter", "an integer in [1, inf)"),
        (CVSelectClassifier(folds=1), "folds", "an integer in [2, inf)"),
        (CVSelectClassifier(seed=-3), "seed", "None or an integer in [0, 2**64 - 1]"),
        (FeatureExtractor(embedding_dim=0), "embedding_dim", "an integer in [1, inf)"),
        (FeatureExtractor(epochs=0), "epochs", "an integer in [1, inf)"),
        (FeatureExtractor(device="tpu"), "device", "'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " not in v else None,
)
def test_bad_parameters_are_refused_by_fit_naming_the_rule(estimator, name, rule, small_digits):
    owner = type(estimator).__name__
    with pytest.raises(
        InvalidParameterError, match=rf"^{owner}: parameter {name}=.* it must be {re.escape(rule)}$"
    ):
        estimator.fit(small_digits)


def test_the_feature_extractor_shares_the_classifiers_training_parameters():
    shared = ("epochs", "batch_size", "lr", "weight_decay", "seed", "device")
    for name in shared:  # one declaration, not a copy
        assert FeatureExtractor.parameters()[name] is ResNetClassifier.parameters()[name]
    assert set(FeatureExtractor.parameters()) == {"embedding_dim", *shared}
