"""Shared fixtures: tiny datasets and a device chosen from SYNTHAUG_DEVICE (CPU by default)."""

from __future__ import annotations

import example_family  # noqa: F401  (registers "tiny-means": the contract suites cover it)
import example_task  # noqa: F401  (registers the "label-fidelity" task of docs/extending.md)
import numpy as np
import pytest
import torch

from synthaug._utils import env_device
from synthaug.data import ImageDataset, load_digits


@pytest.fixture(scope="session")
def device() -> str:
    return env_device()


@pytest.fixture(scope="session")
def digits() -> ImageDataset:
    return load_digits()


@pytest.fixture
def tiny_images() -> ImageDataset:
    """30 random 1x8x8 images in 3 classes (10 each)."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(30, 1, 8, 8, generator=g)
    labels = torch.arange(3).repeat(10)
    return ImageDataset(images, labels, ["a", "b", "c"])


@pytest.fixture(scope="session")
def small_digits(digits: ImageDataset) -> ImageDataset:
    """200 digits, 20 per class: enough for a model to learn something in seconds."""
    idx = torch.cat([torch.nonzero(digits.labels == c).flatten()[:20] for c in range(10)])
    return digits.subset(idx)


@pytest.fixture(scope="module")
def small_digits_npz(tmp_path_factory, small_digits):
    """small_digits as a train-only MedMNIST-style .npz (uint8 images, as MedMNIST ships them)."""
    path = tmp_path_factory.mktemp("npz") / "digits.npz"
    np.savez(
        path,
        train_images=(small_digits.images[:, 0].numpy() * 255).astype(np.uint8),
        train_labels=small_digits.labels.numpy(),
    )
    return path


@pytest.fixture
def one_torch_thread():
    """Small networks on a shared 2-core machine: more threads only spin against each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Run with pytest-xdist (`make test` runs `pytest -n 2 --dist loadgroup`): the tests that start
# Ray clusters run one after another on one worker, so that two clusters never start at once
# on a 2-core machine (each takes the machine's CPUs and its own ports and processes).
RAY_TESTS = ("tests/test_bench_ray.py::", "tests/test_bench.py::test_ray_backend_local_cluster")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(RAY_TESTS):
            item.add_marker(pytest.mark.xdist_group("ray"))
