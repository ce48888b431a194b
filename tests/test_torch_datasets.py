"""SyntheticDataset and AugmentedDataset strategies, transforms and DataLoader workers."""

import albumentations as A
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from synthaug.augment import AugmentedDataset, RandomOverSampling, SyntheticDataset
from synthaug.data import ImageDataset, make_imbalanced
from synthaug.errors import (
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    UnknownClassError,
)
from synthaug.generators import CVAE, create_generator


@pytest.fixture(scope="module")
def real(small_digits):
    return make_imbalanced(small_digits, ratio=0.25, minority_classes=[8, 9], seed=0)


@pytest.fixture(scope="module")
def model(real):
    tiny = CVAE(epochs=2, hidden_dims=(32,), latent_dim=4, batch_size=100, verbose=False)
    return tiny.fit(real)


# -- AugmentedDataset strategies ------------------------------------------------------------
def test_ratio_strategy_adds_r_synthetic_per_real_sample(real, model):
    aug = AugmentedDataset(real, model, "ratio", seed=1, ratio=0.5)
    have = real.class_counts()
    assert aug.synthetic_counts == {c: round(0.5 * n) for c, n in have.items()}
    assert aug.class_counts() == {c: n + round(0.5 * n) for c, n in have.items()}
    assert int(aug.synthetic_mask.sum()) == sum(aug.synthetic_counts.values())
    # synthetic labels follow the per-class counts
    synth_labels = aug.labels[aug.synthetic_mask]
    assert torch.bincount(synth_labels, minlength=10).tolist() == [
        aug.synthetic_counts[c] for c in range(10)
    ]


def test_explicit_counts_by_label_or_name(real, model):
    aug = AugmentedDataset(real, model, {9: 7, "3": 2}, seed=0)
    assert aug.synthetic_counts == {c: {9: 7, 3: 2}.get(c, 0) for c in range(10)}
    assert len(aug) == len(real) + 9
    assert aug.labels[len(real) :].tolist() == [3, 3] + [9] * 7


def test_balance_strategy_still_default(real, model):
    aug = AugmentedDataset(real, model)
    assert set(aug.class_counts().values()) == {20} and aug.strategy == "balance"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"strategy": "ratio"}, InvalidParameterError, "ratio="),
        ({"strategy": "ratio", "ratio": 0}, InvalidParameterError, "ratio"),
        ({"strategy": "ratio", "ratio": float("nan")}, InvalidParameterError, "ratio"),
        ({"strategy": "ratio", "ratio": float("inf")}, InvalidParameterError, "ratio"),
        ({"strategy": "balance", "ratio": 1.0}, InvalidParameterError, "only used"),
        ({"strategy": {"cat": 3}}, UnknownClassError, "cat"),
        ({"strategy": {42: 3}}, UnknownClassError, "42"),
        ({"strategy": {1: -1}}, InvalidParameterError, "non-negative"),
        ({"strategy": {1: 2.5}}, InvalidParameterError, "non-negative"),
        ({"transform": "flip"}, InvalidParameterError, "transform"),
        ({"apply_to": "some"}, InvalidParameterError, "apply_to"),
    ],
)
def test_augmented_dataset_bad_arguments(real, model, kwargs, error, match):
    with pytest.raises(error, match=match):
        AugmentedDataset(real, model, **kwargs)


def test_generator_fitted_on_other_classes_is_refused(real, model):
    renamed = ImageDataset(real.images, real.labels, [f"digit {c}" for c in real.classes])
    with pytest.raises(InvalidDataError, match="classes"):
        AugmentedDataset(renamed, model)
    with pytest.raises(InvalidParameterError, match="sample"):
        AugmentedDataset(real, object())


# -- transforms ------------------------------------------------------------------------------
FLIPS = {
    "albumentations": lambda: A.Compose([A.HorizontalFlip(p=1.0)]),
    "torchvision": lambda: v2.Compose([v2.RandomHorizontalFlip(p=1.0)]),
}


@pytest.mark.parametrize("library", sorted(FLIPS))
@pytest.mark.parametrize("apply_to", ["all", "real", "synthetic"])
def test_transform_applies_to_the_chosen_items(real, model, library, apply_to):
    aug = AugmentedDataset(real, model, seed=0, transform=FLIPS[library](), apply_to=apply_to)
    first_real, first_synth = 0, aug.n_real
    for index in (first_real, first_synth, len(aug) - 1):
        image, label = aug[index]
        stored = aug.images[index]
        flipped = apply_to == "all" or (apply_to == "synthetic") == aug.is_synthetic(index)
        expected = stored.flip(-1) if flipped else stored
        assert image.shape == stored.shape and image.dtype == torch.float32
        torch.testing.assert_close(image, expected)
        assert int(label) == int(aug.labels[index])


def test_albumentations_to_tensor_and_torchvision_non_tensor_output(real, model):
    from albumentations.pytorch import ToTensorV2

    aug = AugmentedDataset(real, model, transform=A.Compose([A.VerticalFlip(p=1), ToTensorV2()]))
    torch.testing.assert_close(aug[0][0], aug.images[0].flip(-2))
    bad = AugmentedDataset(real, model, transform=v2.ToPILImage())
    with pytest.raises(InvalidParameterError, match="not a tensor"):
        bad[0]


def test_dataloader_workers_apply_transforms_with_their_own_randomness(real):
    # 40 identical grey images: only the random noise of the transform tells items apart
    flat = ImageDataset(torch.full((40, 1, 8, 8), 0.5), torch.arange(2).repeat(20), ["a", "b"])
    noise = A.Compose([A.GaussNoise(std_range=(0.1, 0.2), p=1.0)])
    aug = AugmentedDataset(
        flat, RandomOverSampling().fit(flat), {0: 4, 1: 4}, transform=noise, apply_to="all"
    )
    loader = DataLoader(aug, batch_size=12, num_workers=2, shuffle=False)
    batches = list(loader)
    images = torch.cat([x for x, _ in batches])
    labels = torch.cat([y for _, y in batches])
    assert images.shape == (48, 1, 8, 8)
    assert torch.equal(labels, aug.labels)
    # worker 0 reads batch 0 and worker 1 batch 1: their noise must differ
    assert not torch.equal(batches[0][0], batches[1][0])
    assert not torch.equal(images[0], aug.images[0])


# -- SyntheticDataset ------------------------------------------------------------------------
# A generator with keyed sampling (every synthaug family) makes any items in one call; a
# source without it (here the example family of docs/extending.md) is read in blocks.
# Keyed reads batch items differently from pregeneration, and a network rounds differently
# for different batch sizes: those items agree to float rounding, block reads bit for bit.
KEYED_ROUNDING = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture(scope="module")
def block_model(real):
    model = create_generator("tiny-means", epochs=2, verbose=False).fit(real)
    assert not model.keyed_sampling
    return model


@pytest.fixture(scope="module", params=["keyed", "blocks"])
def either(request, model, block_model):
    return model if request.param == "keyed" else block_model


def tolerance(model):
    return KEYED_ROUNDING if model.keyed_sampling else {"rtol": 0, "atol": 0}


def test_synthetic_dataset_lazy_equals_pregenerated(either):
    eager = SyntheticDataset(either, n_per_class=12, seed=3, block_size=5)
    lazy = SyntheticDataset(either, n_per_class=12, seed=3, block_size=5, pregenerate=False)
    assert len(eager) == len(lazy) == 120
    assert lazy.images is None and eager.class_counts() == {c: 12 for c in range(10)}
    for i in [119, 0, 37, 13, 37, -1]:  # out of order, repeated, negative
        image, label = lazy[i]
        torch.testing.assert_close(image, eager[i][0], **tolerance(either))
        assert int(label) == int(eager[i][1]) == int(eager.labels[i])
    torch.testing.assert_close(lazy.to_dataset().images, eager.images, rtol=0, atol=0)
    other_seed = SyntheticDataset(either, n_per_class=12, seed=4, block_size=5)
    assert not torch.equal(other_seed.images, eager.images)


def test_synthetic_dataset_lazy_memory_is_bounded(either):
    lazy = SyntheticDataset(
        either, n_per_class=100_000, pregenerate=False, block_size=64, cache_blocks=2
    )
    assert len(lazy) == 1_000_000 and len(lazy.labels) == 1_000_000
    for i in range(0, 1_000_000, 99_991):
        lazy[i]
    assert len(lazy._cache) <= (0 if either.keyed_sampling else 2)
    assert int(lazy[999_999][1]) == 9


def test_synthetic_dataset_counts_by_name_and_dataloader_workers(either):
    lazy = SyntheticDataset(either, counts={"2": 10, 7: 6}, pregenerate=False, block_size=4)
    assert lazy.class_counts() == {c: {2: 10, 7: 6}.get(c, 0) for c in range(10)}
    loader = DataLoader(lazy, batch_size=5, num_workers=2, shuffle=False)
    images = torch.cat([x for x, _ in loader])
    labels = torch.cat([y for _, y in loader])
    assert labels.tolist() == [2] * 10 + [7] * 6
    eager = SyntheticDataset(either, counts={"2": 10, 7: 6}, block_size=4)
    torch.testing.assert_close(images, eager.images, **tolerance(either))


def test_synthetic_dataset_transform(model):
    flip = SyntheticDataset(model, n_per_class=2, transform=v2.RandomVerticalFlip(p=1.0))
    plain = SyntheticDataset(model, n_per_class=2)
    torch.testing.assert_close(flip[3][0], plain[3][0].flip(-2))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, InvalidParameterError, "exactly one"),
        ({"n_per_class": 2, "counts": {1: 2}}, InvalidParameterError, "exactly one"),
        ({"n_per_class": 0}, InvalidParameterError, ">= 1"),
        ({"n_per_class": 2.5}, InvalidParameterError, "integer"),
        ({"counts": {"cat": 2}}, UnknownClassError, "cat"),
        ({"counts": {1: -2}}, InvalidParameterError, "non-negative"),
        ({"n_per_class": 2, "block_size": 0}, InvalidParameterError, "block_size"),
        ({"n_per_class": 2, "seed": -1}, InvalidParameterError, "seed"),
        ({"n_per_class": 2, "seed": 2**64, "pregenerate": False}, InvalidParameterError, "below 2"),
        ({"n_per_class": 2**40 + 1, "pregenerate": False}, InvalidParameterError, "2\\*\\*40"),
    ],
)
def test_synthetic_dataset_bad_arguments(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        SyntheticDataset(model, **kwargs)


def test_synthetic_dataset_needs_a_fitted_generator(model):
    with pytest.raises(NotFittedError):
        SyntheticDataset(CVAE(), n_per_class=2)
    with pytest.raises(InvalidParameterError, match="sample"):
        SyntheticDataset(np.zeros(3), n_per_class=2)
    lazy = SyntheticDataset(model, n_per_class=2, pregenerate=False)
    with pytest.raises(IndexError):
        lazy[20]


def _direct_samples(model, ds):
    """Every item of ``ds`` made by ``model.sample`` directly, following the documented seeds
    (keys for a generator with keyed sampling, blocks for another source)."""
    parts = []
    for c, n in sorted(ds.counts.items()):
        if model.keyed_sampling:
            keys = c * 2**40 + torch.arange(n)
            parts.append(model.sample(n, y=c, seed=ds.seed, keys=keys)[0])
            continue
        for b in range(-(-n // ds.block_size)):
            size = min(ds.block_size, n - b * ds.block_size)
            seed = int(np.random.SeedSequence([ds.seed, c, b]).generate_state(1)[0])
            parts.append(model.sample(size, y=c, seed=seed)[0])
    return torch.cat(parts)


def test_on_demand_batches_and_pregeneration_return_the_items_of_sample(block_model):
    lazy = SyntheticDataset(
        block_model,
        counts={0: 13, 3: 7, 9: 11},
        seed=5,
        block_size=4,
        cache_blocks=3,
        pregenerate=False,
    )
    eager = SyntheticDataset(block_model, counts={0: 13, 3: 7, 9: 11}, seed=5, block_size=4)
    expected = _direct_samples(block_model, lazy)
    torch.testing.assert_close(eager.images, expected, rtol=0, atol=0)
    sampler = lazy.batch_sampler(5, seed=1)
    loader = DataLoader(lazy, batch_sampler=sampler)
    seen, made = [], []
    calls = []
    real_make = lazy._make_block
    lazy._make_block = lambda c, b: calls.append((c, b)) or real_make(c, b)
    for images, labels in loader:
        made.append(images)
        seen.append(labels)
    order = np.concatenate(list(iter_batches(sampler, epoch=0)))
    assert sorted(order.tolist()) == list(range(31))  # every item once per epoch
    assert len(calls) == len(set(calls)) == 9  # every block generated once
    images, labels = torch.cat(made), torch.cat(seen)
    torch.testing.assert_close(images, expected[torch.from_numpy(order)], rtol=0, atol=0)
    assert torch.equal(labels, lazy.labels[torch.from_numpy(order)])
    # a batch mixes classes (blocks are interleaved), and the next epoch has another order
    assert any(len(set(b.tolist())) > 1 for b in seen)
    # the stacking-free collate gives the same batches as the default one
    collated = DataLoader(lazy, batch_sampler=sampler, collate_fn=SyntheticDataset.collate)
    epoch_1 = torch.from_numpy(np.concatenate(iter_batches(sampler, epoch=1)))
    got = torch.cat([x for x, _ in collated])
    torch.testing.assert_close(got, expected[epoch_1], rtol=0, atol=0)
    assert not np.array_equal(order, epoch_1.numpy())


def iter_batches(sampler, epoch):
    order = np.concatenate(list(sampler._windows(epoch)))
    return [order[s : s + sampler.batch_size] for s in range(0, len(order), sampler.batch_size)]


def test_batch_sampler_options(either):
    lazy = SyntheticDataset(either, n_per_class=3, block_size=2, pregenerate=False)
    plain = lazy.batch_sampler(4, shuffle=False)
    assert list(plain)[0] == [0, 1, 2, 3] and len(plain) == 8
    assert len(lazy.batch_sampler(4, drop_last=True)) == 7
    assert all(len(b) == 4 for b in lazy.batch_sampler(4, drop_last=True))
    with pytest.raises(InvalidParameterError, match="batch_size"):
        lazy.batch_sampler(0)
    if either.keyed_sampling:  # nothing is cached, so any window reads each item once
        assert sorted(sum(lazy.batch_sampler(4, window=5), [])) == list(range(30))
    else:
        with pytest.raises(InvalidParameterError, match="cache_blocks"):
            lazy.batch_sampler(4, window=5)


# -- SyntheticDataset under a plain shuffled DataLoader (keyed sampling) ----------------------
def positions(images, labels, eager):
    """Where each read image lies in the pregenerated set (its nearest row, which must be
    that item up to rounding and carry its label)."""
    # Exact distances: the matmul form cdist takes for many rows cancels to ~1e-3 error.
    flat, rows = images.flatten(1), eager.images.flatten(1)
    distance = torch.cdist(flat, rows, compute_mode="donot_use_mm_for_euclid_dist")
    where = distance.argmin(1)
    assert bool((distance[torch.arange(len(where)), where] < 1e-4).all())
    assert torch.equal(labels, eager.labels[where])
    torch.testing.assert_close(images, eager.images[where], **KEYED_ROUNDING)
    return where


def test_keyed_items_are_the_documented_keyed_samples(model):
    eager = SyntheticDataset(model, counts={0: 13, 3: 7, 9: 11}, seed=5, block_size=4)
    torch.testing.assert_close(eager.images, _direct_samples(model, eager), **KEYED_ROUNDING)
    # a class keeps its items when another class's count changes (keys are per class)
    fewer = SyntheticDataset(model, counts={3: 7, 9: 11}, seed=5, block_size=4)
    torch.testing.assert_close(fewer.images, eager.images[13:], rtol=0, atol=0)


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_plain_shuffled_dataloader_makes_each_batch_in_one_call(model, batch_size, monkeypatch):
    # Small blocks and cache: reading in blocks here would cost a forward pass per item.
    lazy = SyntheticDataset(
        model, counts={1: 40, 8: 23, 9: 30}, seed=2, pregenerate=False, block_size=4, cache_blocks=1
    )
    eager = SyntheticDataset(model, counts={1: 40, 8: 23, 9: 30}, seed=2, verbose=False)
    forwards = []
    real_sample = model._sample
    monkeypatch.setattr(model, "_sample", lambda *a: forwards.append(len(a[0])) or real_sample(*a))
    loader = DataLoader(lazy, batch_size=batch_size, shuffle=True)
    epochs = []
    for _ in range(2):
        forwards.clear()
        batches = list(loader)
        assert len(forwards) == len(batches) == -(-93 // batch_size)  # one forward a batch
        assert forwards == [len(y) for _, y in batches]
        images, labels = torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])
        where = positions(images, labels, eager)
        assert sorted(where.tolist()) == list(range(93))  # every item once per epoch
        epochs.append(where)
    assert not torch.equal(epochs[0], epochs[1])  # a new order each epoch, the same items
    if batch_size > 7:
        assert any(len(set(y.tolist())) == 3 for _, y in batches)  # batches mix the classes


@pytest.mark.parametrize("persistent", [False, True])
def test_plain_shuffled_dataloader_workers_read_the_same_items(model, persistent):
    lazy = SyntheticDataset(model, counts={0: 25, 5: 20}, seed=7, pregenerate=False)
    eager = SyntheticDataset(model, counts={0: 25, 5: 20}, seed=7, verbose=False)
    loader = DataLoader(
        lazy, batch_size=8, shuffle=True, num_workers=2, persistent_workers=persistent
    )
    orders = []
    for _ in range(2):
        batches = list(loader)
        images, labels = torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])
        where = positions(images, labels, eager)
        assert sorted(where.tolist()) == list(range(45))
        orders.append(where)
    assert not torch.equal(orders[0], orders[1])
    # the stacking-free collate hands on the same items
    fast = DataLoader(lazy, batch_size=8, num_workers=2, collate_fn=SyntheticDataset.collate)
    images = torch.cat([x for x, _ in fast])
    torch.testing.assert_close(images, eager.images, **KEYED_ROUNDING)
