"""Keyed sampling: ``sample(..., keys=...)`` gives each key its own sample, whatever is sampled
with it, in one batch for every built-in family; the counter-based random numbers beneath."""

import numpy as np
import pytest
import torch
from test_generators import make

from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError, UnknownClassError
from synthaug.generators import list_generators
from synthaug.nn import KeyedRandom, rand, randn, select_rows
from synthaug.nn._keyed import _mix64

# Networks round differently for different batch sizes; the random draws themselves are exact.
ROUNDING = {"rtol": 1e-5, "atol": 1e-6}
# Families whose _sample draws from a torch.Generator directly: keys are sampled one at a time.
ONE_KEY_AT_A_TIME = {"tiny-means"}


@pytest.fixture(scope="module", params=list_generators())
def fitted(request):
    images = torch.rand(30, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    return make(request.param).fit(
        ImageDataset(images, torch.arange(3).repeat(10), ["a", "b", "c"])
    )


KEYS = torch.tensor([5, 900, 3, 2**40 + 7, 11, 2**62])
LABELS = torch.tensor([0, 1, 2, 0, 1, 2])


def test_a_key_gives_its_sample_in_any_batch(fitted):
    images, labels = fitted.sample(6, y=LABELS, seed=4, keys=KEYS)
    assert torch.equal(labels, LABELS) and images.shape == (6, 1, 8, 8)
    part = [4, 0, 3]
    again, _ = fitted.sample(3, y=LABELS[part], seed=4, keys=KEYS[part].tolist())
    torch.testing.assert_close(again, images[part], **ROUNDING)
    alone, _ = fitted.sample(1, y=int(LABELS[5]), seed=4, keys=np.array([2**62]))
    torch.testing.assert_close(alone, images[5:], **ROUNDING)
    # distinct keys, distinct samples; another seed, other samples
    assert len({tuple(x.flatten().tolist()) for x in images}) == 6
    other, _ = fitted.sample(6, y=LABELS, seed=5, keys=KEYS)
    assert not torch.allclose(other, images)
    # keys leave streamed sampling alone, and it is not the keyed one
    streamed, _ = fitted.sample(6, y=LABELS, seed=4)
    torch.testing.assert_close(fitted.sample(6, y=LABELS, seed=4)[0], streamed, rtol=0, atol=0)


def test_a_key_without_a_class_draws_its_class_from_its_key(fitted):
    images, labels = fitted.sample(6, seed=4, keys=KEYS)
    part = [3, 1]
    again, labels_again = fitted.sample(2, seed=4, keys=KEYS[part])
    assert torch.equal(labels_again, labels[part])
    torch.testing.assert_close(again, images[part], **ROUNDING)
    _, many = fitted.sample(3000, seed=0, keys=torch.arange(3000))
    assert set(torch.bincount(many).tolist()) <= set(range(900, 1100))  # 10 images a class


def test_built_in_families_sample_all_keys_in_one_forward(fitted, monkeypatch):
    name = fitted.registry_name
    assert fitted.keyed_sampling == (name not in ONE_KEY_AT_A_TIME)
    calls = []
    real = type(fitted)._sample
    monkeypatch.setattr(fitted, "_sample", lambda *a: calls.append(1) or real(fitted, *a))
    fitted.sample(6, y=LABELS, seed=4, keys=KEYS)
    assert len(calls) == (6 if name in ONE_KEY_AT_A_TIME else 1)


@pytest.fixture(scope="module")
def vectors_model():
    # Class "c" has no samples: it cannot be sampled.
    data = ImageDataset(torch.rand(6, 4), torch.tensor([0, 1, 0, 1, 0, 1]), ["a", "b", "c"])
    return make("cvae").fit(data)


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ([1.5, 2.0, 3.0], "integers"),
        (torch.tensor([1.0, 2.0, 3.0]), "integers"),
        (torch.tensor([True, False, True]), "integers"),
        (["a", "b", "c"], "integers"),
        ([2**70, 1, 2], "integers"),
        ([1, 2], "one integer per sample"),
        ([[1, 2, 3]], "one integer per sample"),
        (3, "one integer per sample"),
        ([1, -2, 3], "non-negative"),
    ],
)
def test_bad_keys_are_refused(vectors_model, keys, match):
    with pytest.raises(InvalidParameterError, match=match):
        vectors_model.sample(3, y=0, seed=0, keys=keys)


# -- the random numbers ----------------------------------------------------------------------
MASK = (1 << 64) - 1


def splitmix64(z):
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_keyed_bits_are_splitmix64_streams_per_key():
    gamma = 0x9E3779B97F4A7C15
    base = int(np.random.SeedSequence([123, 0]).generate_state(1, np.uint64)[0])
    keys = [0, 1, 5, 2**40 + 3, 2**62]
    bits = KeyedRandom(123, torch.tensor(keys)).bits((5, 3))
    for row, key in zip(bits.tolist(), keys, strict=True):
        state = splitmix64(base + key * gamma)
        assert [b & MASK for b in row] == [splitmix64(state + j * gamma) for j in (1, 2, 3)]


def test_numpy_and_torch_bits_agree():
    # The CPU mixes numpy uint64 arrays, other devices int64 tensors: the same bits.
    words = np.random.default_rng(0).integers(0, 2**64, 1000, dtype=np.uint64)
    mixed = torch.from_numpy(_mix64(words.copy()).view(np.int64))
    assert torch.equal(_mix64(torch.from_numpy(words.view(np.int64)).clone()), mixed)


def test_keyed_draws_depend_on_the_row_alone():
    many = KeyedRandom(9, torch.tensor([4, 8, 15]))
    first, second = randn(many, (3, 2, 2)), rand(many, (3, 5))
    one = KeyedRandom(9, torch.tensor([15]))
    assert torch.equal(randn(one, (1, 2, 2))[0], first[2])
    assert torch.equal(rand(one, (1, 5))[0], second[2])
    # a sub-batch continues each row's stream where the batch stands
    fresh = KeyedRandom(9, torch.tensor([4, 8, 15]))
    randn(fresh, (3, 2, 2))
    assert torch.equal(rand(select_rows(fresh, torch.tensor([2, 0])), (2, 5)), second[[2, 0]])
    # another stream of the same keys draws other numbers
    assert not torch.equal(
        randn(KeyedRandom(9, torch.tensor([15]), stream=1), (1, 2, 2)), first[2:]
    )
    with pytest.raises(ValueError, match="per row"):
        randn(many, (2, 4))


def test_keyed_numbers_are_uniform_and_normal():
    keys = torch.arange(100_000)
    u = rand(KeyedRandom(1, keys), (100_000, 2))
    assert 0 <= float(u.min()) and float(u.max()) < 1 and u.dtype == torch.float32
    assert abs(float(u.mean()) - 0.5) < 0.005
    assert abs(float(torch.corrcoef(u.T)[0, 1])) < 0.01
    z = randn(KeyedRandom(2, keys), (100_000,), dtype=torch.float64)
    assert z.dtype == torch.float64 and torch.isfinite(z).all()
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01
    # neighbouring keys are not shifted copies of one another's streams
    a, b = rand(KeyedRandom(3, torch.tensor([7, 8])), (2, 1000))
    assert (
        not torch.equal(a[1:], b[:-1])
        and abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 0.1
    )


def test_a_generator_draws_what_torch_draws():
    g, h = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(randn(g, (4, 3)), torch.randn((4, 3), generator=h))
    assert torch.equal(rand(g, (5,)), torch.rand((5,), generator=h))
    assert select_rows(g, torch.tensor([1])) is g


@pytest.mark.parametrize("bad", [2, 3, -1])
@pytest.mark.parametrize("keys", [None, [0, 1, 2]])
def test_a_tensor_of_labels_is_checked_whole(vectors_model, bad, keys):
    images, labels = vectors_model.sample(3, y=torch.tensor([1, 0, 1]), seed=0, keys=keys)
    assert labels.tolist() == [1, 0, 1]
    with pytest.raises(UnknownClassError, match=str(bad)):
        vectors_model.sample(3, y=torch.tensor([0, bad, 1]), seed=0, keys=keys)
