"""DAGAN specifics: exemplar storage, pairs within a class, refusing dp, both layouts.

The contract suite (tests/test_generators.py) covers DAGAN through the registry; these are
the behaviours of a family that makes variants of stored training items.
"""

from __future__ import annotations

import json

import pytest
import torch

import synthaug
from synthaug.data import ImageDataset
from synthaug.errors import InvalidDataError, InvalidParameterError
from synthaug.generators import DAGAN
from synthaug.generators._dagan import _Exemplars
from synthaug.nn import checkpoint_header

# The fixtures have a class of one image on purpose; its warning is tested once, below.
pytestmark = pytest.mark.filterwarnings("ignore:DAGAN. class.es. .'one'.")

TINY = {"epochs": 2, "batch_size": 8, "hidden_dims": (16, 8), "width": 4, "noise_dim": 4}


def tiny(device: str, **params) -> DAGAN:
    return DAGAN(**{**TINY, "verbose": False, "device": device, **params})


@pytest.fixture
def rare() -> ImageDataset:
    """12 + 12 random 8x8 images in two common classes, a class of 2 and a class of 1."""
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0] * 12 + [1] * 12 + [2] * 2 + [3])
    images = torch.rand(len(labels), 1, 8, 8, generator=g)
    return ImageDataset(images, labels, ["a", "b", "two", "one"])


def in_class(images: torch.Tensor, data: ImageDataset, label: int) -> torch.Tensor:
    """For each row of ``images``, whether it equals a training image of class ``label``."""
    members = data.images[data.labels == label].flatten(1)
    return (images.flatten(1)[:, None, :] == members[None]).all(dim=2).any(dim=1)


@pytest.mark.parametrize("label", [2, 3])
def test_a_class_of_one_or_two_images_gets_variants_of_them(rare, device, label):
    with pytest.warns(synthaug.errors.SynthaugWarning, match=r"\['one'\]"):
        model = tiny(device).fit(rare)
    images, labels, sources = model.sample_with_sources(30, y=label, seed=0)
    assert labels.tolist() == [label] * 30
    # Every source is one of the class's own training images, and no sample is a copy of it.
    assert in_class(sources, rare, label).all()
    assert not in_class(images, rare, label).any()
    assert ((images - sources).flatten(1).norm(dim=1) > 0).all()


def test_a_class_of_two_draws_both_of_its_images(rare, device):
    model = tiny(device).fit(rare)
    _, _, sources = model.sample_with_sources(60, y="two", seed=0)
    assert len(torch.unique(sources.flatten(1), dim=0)) == 2


def test_sources_follow_the_requested_labels(rare, device):
    model = tiny(device).fit(rare)
    y = [0, 1, 2, 3] * 10
    _, labels, sources = model.sample_with_sources(40, y=y, seed=1)
    assert labels.tolist() == y
    for label in range(4):
        assert in_class(sources[labels == label], rare, label).all()


def test_sample_with_sources_gives_what_sample_gives(rare, device):
    model = tiny(device).fit(rare)
    images, labels = model.sample(25, seed=3)
    again, labels_again, _ = model.sample_with_sources(25, seed=3)
    assert torch.equal(images, again) and torch.equal(labels, labels_again)


def test_same_seed_same_samples_and_sources_after_save_and_load(rare, device, tmp_path):
    model = tiny(device, seed=4).fit(rare)
    path = model.save(tmp_path / "dagan")
    loaded = synthaug.load(path, device=device)
    y = [0, 2, 3, 1] * 5
    before = model.sample_with_sources(20, y=y, seed=7)
    after = loaded.sample_with_sources(20, y=y, seed=7)
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(model.exemplars_, loaded.exemplars_, strict=True))
    twin = tiny(device, seed=4).fit(rare)
    assert torch.equal(twin.sample(20, y=y, seed=7)[0], before[0])
    assert not torch.equal(model.sample(20, y=y, seed=8)[0], before[0])


def test_the_saved_file_says_it_stores_training_images(rare, device, tmp_path):
    model = tiny(device).fit(rare)
    path = model.save(tmp_path / "dagan.safetensors")
    assert json.loads(checkpoint_header(path)["stores_training_images"]) is True
    loaded = synthaug.load(path)
    assert loaded.stores_training_images
    images, labels = loaded.exemplars_
    # Every training image is in the file, sorted by class.
    assert len(images) == len(rare) and labels.tolist() == sorted(rare.labels.tolist())
    for label in range(4):
        assert in_class(images[labels == label], rare, label).all()


def test_dp_is_refused_with_the_reason_and_what_to_use(rare, device):
    model = tiny(device, dp=synthaug.DP(epsilon=1.0))
    with pytest.raises(InvalidParameterError) as info:
        model.fit(rare)
    message = str(info.value)
    assert "keeps training images" in message and "'cvae' or 'cgan'" in message
    assert not model.is_fitted


def test_a_dataset_without_any_pair_is_refused(device):
    data = ImageDataset(torch.rand(3, 1, 8, 8), torch.arange(3))
    with pytest.raises(InvalidDataError, match="no class has 2 samples"):
        tiny(device).fit(data)


@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 32, 32)])
def test_convolutional_layout(device, shape):
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0] * 6 + [1] * 5 + [2])
    data = ImageDataset(torch.rand(len(labels), *shape, generator=g), labels, ["a", "b", "one"])
    model = tiny(device, epochs=1).fit(data)
    assert model.architecture_ == "conv"
    images, labels, sources = model.sample_with_sources(6, y=[0, 1, 2] * 2, seed=0)
    assert images.shape == (6, *shape) == sources.shape
    assert torch.isfinite(images).all() and 0 <= float(images.min()) <= float(images.max()) <= 1
    assert not torch.equal(images, sources)


def test_partners_are_other_items_of_the_same_class():
    store = _Exemplars(10, (1,), n_classes=4)
    labels = torch.tensor([3, 0, 0, 2, 2, 2, 3, 3, 3, 3])
    store.fill(torch.arange(10.0)[:, None], labels)
    rows = torch.arange(10).repeat(300)
    partners = store.partners(rows, torch.Generator().manual_seed(0))
    assert (partners != rows).all()
    assert torch.equal(store.labels[partners], store.labels[rows])
    # Uniform over the others: each (row, partner) pair of a class of k turns up ~300/(k-1).
    pairs = torch.bincount(rows * 10 + partners, minlength=100).reshape(10, 10)
    counts = torch.bincount(store.labels, minlength=4)[store.labels]
    same = store.labels[:, None] == store.labels[None, :]
    others = same & ~torch.eye(10, dtype=torch.bool)
    assert (pairs[~others] == 0).all()
    expected = (300 / (counts - 1).clamp(min=1).double())[:, None].expand(10, 10)[others]
    assert ((pairs[others] - expected).abs() < 0.35 * expected).all()


def test_draw_covers_a_class_uniformly():
    store = _Exemplars(6, (1,), n_classes=2)
    store.fill(torch.arange(6.0)[:, None], torch.tensor([0, 1, 1, 1, 0, 1]))
    rows = store.draw(torch.ones(4000, dtype=torch.int64), torch.Generator().manual_seed(0))
    assert (store.labels[rows] == 1).all()
    hits = torch.bincount(rows, minlength=6)[store.labels == 1]
    assert ((hits - 1000).abs() < 100).all()


def test_resume_continues_to_the_same_result(rare, device, tmp_path):
    # The EMA warm-up count and the exemplars are in the checkpoint like the weights.
    full = tiny(device, epochs=4).fit(rare)
    ckpt = tmp_path / "ckpt"
    tiny(device, epochs=2, checkpoint_dir=str(ckpt), checkpoint_every=1).fit(rare)
    resumed = tiny(device, epochs=4, checkpoint_dir=str(ckpt), resume=True).fit(rare)
    assert resumed.history == full.history
    for key, value in full.modules_.state_dict().items():
        assert torch.equal(value, resumed.modules_.state_dict()[key]), key
    assert torch.equal(full.sample(8, seed=0)[0], resumed.sample(8, seed=0)[0])
