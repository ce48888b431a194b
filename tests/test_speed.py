"""Speed options: cache-sized sampling batches, inference mode, channels_last, AMP, compile."""

from __future__ import annotations

import sys

import pytest
import torch

import synthaug
from synthaug import load
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.generators import CGAN, CVAE
from synthaug.nn import batched, inference_batch_size, l2_cache_bytes
from synthaug.nn._batching import MAX_BATCH, MIN_BATCH


@pytest.fixture(scope="module")
def blobs16() -> ImageDataset:
    """24 random 1x16x16 images in 2 classes: the smallest size with conv networks."""
    g = torch.Generator().manual_seed(0)
    return ImageDataset(torch.rand(24, 1, 16, 16, generator=g), torch.arange(24) % 2, ["a", "b"])


def test_inference_batch_size_fills_the_cache_within_bounds():
    assert l2_cache_bytes() > 0
    cpu = torch.device("cpu")
    assert inference_batch_size(cpu, 1) == MAX_BATCH
    assert inference_batch_size(cpu, 1 << 30) == MIN_BATCH
    rows = inference_batch_size(cpu, 4096)
    assert MIN_BATCH <= rows <= MAX_BATCH and rows & (rows - 1) == 0  # a power of two
    assert rows * 4096 <= max(l2_cache_bytes(), MIN_BATCH * 4096)
    assert inference_batch_size(torch.device("meta"), 4096) == MAX_BATCH  # not a CPU
    # on a GPU, fewer rows when one activation would pass 1 GiB (a U-Net on large images)
    assert inference_batch_size(torch.device("meta"), 2 << 20) == 512


def test_batched_cuts_stacks_and_keeps_small_batches_out():
    x = torch.arange(100.0).unsqueeze(1)
    sizes: list[int] = []

    def double(batch):
        sizes.append(len(batch))
        return 2 * batch

    assert torch.equal(batched(double, x, size=32), 2 * x) and sizes == [32, 32, 32, 4]
    # without a size or a network: the sampling chunk, one batch here
    sizes.clear()
    assert torch.equal(batched(double, x), 2 * x) and sizes == [100]
    # sized for a network: a trailing batch under MIN_BATCH rows joins the one before
    net = torch.nn.Linear(1, 1 << 16)  # 256 KiB a row: a few dozen rows fill an L2 cache
    sizes.clear()
    out = batched(lambda b: net(double(b)).sum(1, keepdim=True), x, network=net)
    assert sum(sizes[1:]) == 100 and min(sizes[1:]) >= MIN_BATCH and sizes[0] == 1  # the probe
    torch.testing.assert_close(out, net(2 * x).sum(1, keepdim=True))
    # results land in a given tensor; several inputs are cut alike
    into = torch.empty(100, 1)
    batched(lambda a, b: a + b, x, x, size=7, out=into)
    assert torch.equal(into, 2 * x)


@pytest.mark.parametrize("family", [CVAE, CGAN])
def test_sampling_batches_do_not_change_the_samples(family, blobs16, one_torch_thread):
    model = family(epochs=1, width=4, batch_size=8, verbose=False, seed=0).fit(blobs16)
    images, labels = model.sample(70, seed=3)
    cached = model.__dict__["_sample_batch"]
    assert cached[0] is model.modules_ and MIN_BATCH <= cached[1] <= MAX_BATCH
    model.__dict__["_sample_batch"] = (model.modules_, 7)  # 10 batches instead of one
    again, labels_again = model.sample(70, seed=3)
    torch.testing.assert_close(again, images, rtol=1e-5, atol=1e-6)
    assert torch.equal(labels, labels_again)
    # the samples are ordinary tensors (not inference-mode ones): a network can train on them
    head = torch.nn.Linear(256, 1)
    head(images.flatten(1)).sum().backward()
    assert head.weight.grad is not None


def test_conv_weights_are_channels_last_and_files_contiguous(blobs16, tmp_path):
    model = CVAE(epochs=1, width=4, batch_size=8, verbose=False, seed=0).fit(blobs16)
    convs = [p for p in model.modules_.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    path = model.save(tmp_path / "m.safetensors")
    loaded = load(path)
    torch.testing.assert_close(loaded.sample(5, seed=1)[0], model.sample(5, seed=1)[0])


def test_bf16_autocast_on_the_cpu(blobs16):
    model = CVAE(epochs=2, width=4, batch_size=8, amp="bf16", verbose=False, seed=0)
    model.fit(blobs16)
    assert model._make_trainer(None, None).amp_dtype == torch.bfloat16
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in model.history_)
    full = CVAE(epochs=2, width=4, batch_size=8, amp=False, verbose=False, seed=0).fit(blobs16)
    # the same run in bfloat16 is close to, not equal to, the float32 one
    assert model.history_[0]["loss"] != full.history_[0]["loss"]
    assert model.history_[0]["loss"] == pytest.approx(full.history_[0]["loss"], rel=0.05)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"amp": "fp16", "device": "cpu"}, "needs a CUDA device"),
        ({"amp": "fp32"}, "bf16"),
    ],
)
def test_amp_refusals(params, match, blobs16):
    with pytest.raises(InvalidParameterError, match=match):
        CVAE(epochs=1, verbose=False, **params).fit(blobs16)


@pytest.mark.slow
def test_compiled_networks_train_like_eager_ones(tiny_images, one_torch_thread):
    # One batch of one shape per step (30 images, batch 30): each layer compiles once.
    params = {"epochs": 2, "batch_size": 30, "hidden_dims": (8,), "verbose": False, "seed": 0}
    eager = CVAE(**params).fit(tiny_images)
    compiled = CVAE(compile=True, **params).fit(tiny_images)
    for got, want in zip(compiled.history_, eager.history_, strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-4)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_tune_allocator_applies_on_glibc():
    assert synthaug.tune_allocator() is True
