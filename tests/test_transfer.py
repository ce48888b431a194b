"""The transfer families (deepsmote, delta-transfer): what the contract suite does not cover.

The contract suite (tests/test_generators.py) runs them through shapes, seeds, save/load,
feature vectors, conv layouts and bad input; tests/test_privacy.py checks they refuse dp.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from sklearn.linear_model import LogisticRegression

import synthaug
from synthaug.data import ImageDataset, make_imbalanced
from synthaug.generators import DeepSMOTE, DeltaTransfer, PerClass
from synthaug.generators._latent import _same_class_shift

# DeepSMOTE warns about the one-image class of ``rare_classes`` (it can only copy it); that
# warning has its own test below.
pytestmark = pytest.mark.filterwarnings("ignore:DeepSMOTE.*fewer than 2:UserWarning")

FAST = {"epochs": 3, "batch_size": 16, "latent_dim": 4, "hidden_dims": (32,), "verbose": False}


@pytest.fixture
def rare_classes(small_digits) -> ImageDataset:
    """small_digits (20 per class) with class 8 cut to 2 images and class 9 to 1."""
    keep = torch.ones(len(small_digits), dtype=torch.bool)
    for label, n in [(8, 2), (9, 1)]:
        idx = torch.nonzero(small_digits.labels == label).flatten()
        keep[idx[n:]] = False
    return small_digits.subset(torch.nonzero(keep).flatten())


def test_same_class_shift_pairs_each_item_with_another_of_its_class():
    y = torch.tensor([2, 0, 2, 1, 0, 2, 3])
    partner = _same_class_shift(y)
    assert (y[partner] == y).all()
    alone = torch.bincount(y)[y] == 1  # classes 1 and 3 have one item each
    assert (partner[alone] == torch.nonzero(alone).flatten()).all()
    others = ~alone
    assert (partner[others] != torch.arange(len(y))[others]).all()
    # A permutation within each class: every item is someone's partner once.
    assert sorted(partner.tolist()) == list(range(len(y)))


@pytest.mark.parametrize("family", [DeepSMOTE, DeltaTransfer])
def test_one_and_two_image_classes_are_sampled_from_their_own_codes(family, rare_classes, device):
    model = family(**FAST, device=device).fit(rare_classes)
    images, labels = model.sample(40, y=[8, 9] * 20, seed=0)
    assert images.shape == (40, 1, 8, 8) and torch.isfinite(images).all()
    assert labels.tolist() == [8, 9] * 20
    assert model.code_counts_[8] == 2 and model.code_counts_[9] == 1
    # The bank is class-sorted and holds one code per training item.
    assert len(model.codes_) == len(rare_classes)
    assert (model.code_labels_.diff() >= 0).all()


def test_delta_transfer_varies_a_one_image_class_deepsmote_cannot(rare_classes, device):
    # DeepSMOTE interpolates between same-class neighbours: a one-image class has none, so
    # each of its samples is that image's reconstruction. Delta transfer borrows variation
    # from the plentiful classes and varies it.
    smote = DeepSMOTE(**FAST, device=device).fit(rare_classes)
    copies, _ = smote.sample(10, y=9, seed=0)
    assert torch.allclose(copies, copies[:1].expand_as(copies))
    delta = DeltaTransfer(**FAST, device=device).fit(rare_classes)
    varied, _ = delta.sample(10, y=9, seed=0)
    spread = (varied - varied.mean(0)).flatten(1).norm(dim=1)
    assert spread.min() > 1e-3


def test_only_deepsmote_warns_that_it_can_only_copy_a_one_image_class(rare_classes, device):
    with pytest.warns(synthaug.errors.SynthaugWarning, match=r"DeepSMOTE.*\['9'\].*fewer than 2"):
        DeepSMOTE(**FAST, device=device).fit(rare_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Three epochs sample nearly one image per class, which ConstantSamplesWarning says
        # (test_fuzz.py checks it); the one-image class itself draws no warning.
        warnings.simplefilter("ignore", synthaug.errors.ConstantSamplesWarning)
        DeltaTransfer(**FAST, device=device).fit(rare_classes)


def test_delta_scale_zero_decodes_the_sources(rare_classes, device):
    model = DeltaTransfer(**FAST, delta_scale=0.0, device=device).fit(rare_classes)
    images, _ = model.sample(20, y=8, seed=0)
    net = model.modules_["net"]
    with torch.no_grad():
        sources = torch.sigmoid(
            net.decode_logits(model.codes_[model.code_labels_ == 8], torch.tensor([8, 8]))
        )
    # Each sample is one of the two sources' reconstructions.
    d = torch.cdist(images.flatten(1), sources.flatten(1)).min(1).values
    assert d.max() < 1e-5


def test_local_deltas_and_a_data_set_without_donors(device):
    two_each = ImageDataset(torch.rand(6, 1, 8, 8), torch.tensor([0, 0, 1, 1, 2, 2]), list("abc"))
    model = DeltaTransfer(**FAST, delta_neighbors=2, device=device).fit(two_each)
    # No class reaches min_donor_items (5): every class of two gives deltas instead.
    assert len(model.donor_items_) == 6
    images, _ = model.sample(8, y=0, seed=1)
    assert torch.isfinite(images).all()
    singles = ImageDataset(torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2]), list("abc"))
    lone = DeltaTransfer(**FAST, device=device).fit(singles)
    assert len(lone.donor_items_) == 0  # nothing to transfer: samples are reconstructions
    again, _ = lone.sample(4, y=1, seed=0)
    assert torch.allclose(again, again[:1].expand_as(again))


@pytest.mark.parametrize("family", [DeepSMOTE, DeltaTransfer])
def test_the_file_says_it_stores_training_images(family, rare_classes, device, tmp_path):
    model = family(**FAST, device=device).fit(rare_classes)
    path = model.save(tmp_path / "m")
    loaded = synthaug.load(path, device=device)
    assert loaded.stores_training_images
    assert torch.equal(loaded.codes_.cpu(), model.codes_.cpu())
    a, _ = loaded.sample(16, y=8, seed=3)
    b, _ = model.sample(16, y=8, seed=3)
    assert torch.equal(a, b)


def test_a_per_class_wrapper_reports_what_its_members_store():
    assert PerClass(DeltaTransfer()).stores_training_images
    assert PerClass("deepsmote").stores_training_images
    assert not PerClass("cvae").stores_training_images


def test_delta_transfer_learns_rare_digits_the_classifier_recognises(
    digits, device, one_torch_thread
):
    # 50 digits of each of classes 0-4 and 2 of each of 5-9; a classifier of all digits labels
    # the samples. Delta transfer must keep most samples recognisable without copying the two
    # sources of each class.
    counts = [50] * 5 + [2] * 5
    imbalanced = make_imbalanced(digits, counts=counts, seed=0)
    model = DeltaTransfer(epochs=100, verbose=False, device=device).fit(imbalanced)
    images, labels = model.sample(250, y=[5, 6, 7, 8, 9] * 50, seed=0)
    clf = LogisticRegression(max_iter=2000).fit(digits.images.flatten(1), digits.labels)
    fidelity = (torch.as_tensor(clf.predict(images.flatten(1))) == labels).float().mean()
    sources = imbalanced.images[imbalanced.labels >= 5].flatten(1)
    nearest = torch.cdist(images.flatten(1), sources).min(1).values
    assert fidelity > 0.8
    assert nearest.median() > 0.3  # pixel L2 on [0, 1] 8x8 images: not the sources
