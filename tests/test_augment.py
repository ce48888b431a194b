import re

import pytest
import torch
from torch.utils.data import DataLoader

from synthaug.augment import (
    AugmentedDataset,
    ClassicalAugmentation,
    MixedSource,
    RandomOverSampling,
    SMOTESource,
)
from synthaug.data import ImageDataset, make_imbalanced
from synthaug.errors import (
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    UnknownClassError,
)
from synthaug.generators import CVAE


@pytest.fixture
def imbalanced(small_digits):
    return make_imbalanced(small_digits, ratio=0.25, minority_classes=[8, 9], seed=0)


def test_balance_with_a_generator(imbalanced, device):
    model = CVAE(epochs=2, verbose=False, device=device).fit(imbalanced)
    aug = AugmentedDataset(imbalanced, model, strategy="balance", seed=0)
    counts = aug.class_counts()
    assert set(counts.values()) == {20}
    assert aug.synthetic_counts == {c: (15 if c in (8, 9) else 0) for c in range(10)}
    assert len(aug) == len(imbalanced) + 30
    assert not aug.is_synthetic(0)
    assert aug.is_synthetic(len(imbalanced)) and aug.is_synthetic(-1)
    assert int(aug.synthetic_mask.sum()) == 30
    # the real part is untouched and comes first
    assert torch.equal(aug.images[: len(imbalanced)], imbalanced.images)
    with pytest.raises(IndexError):
        aug.is_synthetic(len(aug))


def test_augmented_dataset_is_reproducible(imbalanced):
    a = AugmentedDataset(imbalanced, ClassicalAugmentation().fit(imbalanced), seed=4)
    b = AugmentedDataset(imbalanced, ClassicalAugmentation().fit(imbalanced), seed=4)
    c = AugmentedDataset(imbalanced, ClassicalAugmentation().fit(imbalanced), seed=5)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)


def test_works_with_a_dataloader(imbalanced):
    aug = AugmentedDataset(imbalanced, RandomOverSampling().fit(imbalanced))
    batches = list(DataLoader(aug, batch_size=64, shuffle=True))
    assert sum(len(x) for x, _ in batches) == len(aug)


def test_random_oversampling_copies_real_samples(imbalanced):
    images, labels = RandomOverSampling().fit(imbalanced).sample(10, y=9, seed=0)
    real9 = imbalanced.images[imbalanced.labels == 9].flatten(1)
    dists = torch.cdist(images.flatten(1), real9)
    assert torch.all(dists.min(1).values == 0)
    assert labels.tolist() == [9] * 10


def test_classical_changes_images_but_keeps_range(imbalanced):
    images, _ = ClassicalAugmentation().fit(imbalanced).sample(20, y=8, seed=0)
    real8 = imbalanced.images[imbalanced.labels == 8].flatten(1)
    assert images.shape == (20, 1, 8, 8)
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    # augmented images are near, but not copies of, the real ones
    nearest = torch.cdist(images.flatten(1), real8).min(1).values
    assert torch.all(nearest > 0)


def test_classical_refuses_feature_vectors():
    ds = ImageDataset(torch.rand(4, 10), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(InvalidParameterError, match="images"):
        ClassicalAugmentation().fit(ds)


@pytest.mark.parametrize(
    "source, name, rule",
    [
        (ClassicalAugmentation(transform="jitter"), "transform", "None or a callable"),
        (SMOTESource(k_neighbors=0), "k_neighbors", "an integer in [1, inf)"),
        (MixedSource([]), "sources", "a non-empty list of sample sources"),
        (MixedSource(RandomOverSampling()), "sources", "a non-empty list of sample sources"),
        (MixedSource([RandomOverSampling()], prefit=1), "prefit", "True or False"),
    ],
    ids=["transform", "k_neighbors", "sources-empty", "sources-not-a-list", "prefit"],
)
def test_bad_source_parameters_are_refused_by_fit_naming_the_rule(imbalanced, source, name, rule):
    owner = type(source).__name__
    with pytest.raises(
        InvalidParameterError, match=rf"^{owner}: parameter {name}=.* it must be {re.escape(rule)}$"
    ):
        source.fit(imbalanced)


def test_source_errors(imbalanced):
    with pytest.raises(NotFittedError):
        RandomOverSampling().sample(2, y=0)
    with pytest.raises(EmptyDatasetError):
        RandomOverSampling().fit(
            ImageDataset(torch.zeros(0, 1, 2, 2), torch.zeros(0, dtype=torch.int64), ["a"])
        )
    source = RandomOverSampling().fit(imbalanced)
    with pytest.raises(InvalidParameterError):
        source.sample(0, y=0)
    with pytest.raises(UnknownClassError):
        source.sample(2, y=42)


def test_augmented_dataset_errors(imbalanced):
    with pytest.raises(InvalidParameterError, match="strategy"):
        AugmentedDataset(imbalanced, RandomOverSampling().fit(imbalanced), strategy="double")
    with pytest.raises(InvalidDataError):
        AugmentedDataset(imbalanced.images, RandomOverSampling())

    class WrongShape:
        def sample(self, n, y, seed):
            return torch.zeros(n, 1, 4, 4), torch.full((n,), y)

    with pytest.raises(InvalidDataError, match="shape"):
        AugmentedDataset(imbalanced, WrongShape())
