"""load_npz / save_npz and load_image_folder / save_image_folder on small files made here."""

import numpy as np
import pytest
import torch
from PIL import Image

from synthaug.data import (
    ImageDataset,
    load_image_folder,
    load_npz,
    save_image_folder,
    save_npz,
)
from synthaug.errors import (
    DataFileError,
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
)


def medmnist_file(path, rgb=False):
    """A MedMNIST-shaped file: uint8 images, (N, 1) labels, three splits."""
    rng = np.random.default_rng(0)
    shape = (8, 8, 3) if rgb else (8, 8)
    arrays = {}
    for split, n in [("train", 12), ("val", 4), ("test", 6)]:
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 3)[:, None]
    arrays["val_labels"][:] = 0  # a split missing classes keeps the file's labels
    np.savez(path, **arrays)
    return arrays


@pytest.mark.parametrize("rgb", [False, True])
def test_load_npz_reads_every_split(tmp_path, rgb):
    arrays = medmnist_file(tmp_path / "tiny.npz", rgb=rgb)
    for split in ("train", "val", "test"):
        ds = load_npz(tmp_path / "tiny.npz", split=split)
        expected = arrays[f"{split}_images"].astype(np.float32) / 255
        if not rgb:
            expected = expected[..., None]
        assert ds.sample_shape == ((3, 8, 8) if rgb else (1, 8, 8))
        np.testing.assert_allclose(ds.images.permute(0, 2, 3, 1).numpy(), expected)
        assert ds.labels.tolist() == arrays[f"{split}_labels"][:, 0].tolist()
        assert ds.classes == ["0", "1", "2"]


def test_save_npz_round_trip_with_class_names(tmp_path, tiny_images):
    path = save_npz(tiny_images, tmp_path / "out" / "data.npz", extra={"synthetic": [True] * 30})
    back = load_npz(path)
    assert torch.equal(back.images, tiny_images.images)
    assert torch.equal(back.labels, tiny_images.labels) and back.classes == ["a", "b", "c"]
    with np.load(path) as npz:
        assert npz["train_synthetic"].all()
    with pytest.raises(InvalidParameterError, match="feature vectors"):
        save_npz(ImageDataset(torch.rand(2, 3), [0, 1]), tmp_path / "x.npz")


def test_load_npz_errors(tmp_path):
    with pytest.raises(DataFileError, match="put the MedMNIST-style .npz") as exc:
        load_npz(tmp_path / "pneumoniamnist.npz")
    assert str(tmp_path) in str(exc.value)
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataFileError, match="not a readable"):
        load_npz(tmp_path / "corrupt.npz")
    medmnist_file(tmp_path / "tiny.npz")
    with pytest.raises(DataFileError, match="splits found: \\['test', 'train', 'val'\\]"):
        load_npz(tmp_path / "tiny.npz", split="holdout")
    np.savez(tmp_path / "multi.npz", train_images=np.zeros((4, 8, 8)), train_labels=np.ones((4, 3)))
    with pytest.raises(InvalidDataError, match="multi-label"):
        load_npz(tmp_path / "multi.npz")
    np.savez(tmp_path / "flat.npz", train_images=np.zeros((4, 64)), train_labels=np.ones(4))
    with pytest.raises(ShapeMismatchError, match="train_images"):
        load_npz(tmp_path / "flat.npz")
    np.savez(tmp_path / "nan.npz", train_images=np.full((2, 4, 4), np.nan), train_labels=[0, 1])
    with pytest.raises(InvalidDataError, match="NaN"):
        load_npz(tmp_path / "nan.npz")


def write_folder(root, sizes=((8, 8),) * 3, mode="L"):
    rng = np.random.default_rng(0)
    for name in ["cat", "dog"]:
        (root / name).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            shape = (h, w) if mode == "L" else (h, w, 3)
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_load_image_folder_grayscale_and_rgb(tmp_path):
    write_folder(tmp_path / "gray")
    gray = load_image_folder(tmp_path / "gray")
    assert gray.classes == ["cat", "dog"] and gray.sample_shape == (1, 8, 8)
    assert gray.labels.tolist() == [0, 0, 0, 1, 1, 1]
    first = np.asarray(Image.open(tmp_path / "gray" / "cat" / "0.png"), dtype=np.float32) / 255
    np.testing.assert_allclose(gray.images[0, 0].numpy(), first)
    assert gray.metadata[0]["path"].endswith("0.png")
    write_folder(tmp_path / "rgb", mode="RGB")
    assert load_image_folder(tmp_path / "rgb").sample_shape == (3, 8, 8)
    assert load_image_folder(tmp_path / "rgb", grayscale=True).sample_shape == (1, 8, 8)


def test_load_image_folder_sizes(tmp_path):
    write_folder(tmp_path / "mixed", sizes=[(8, 8), (10, 6)])
    with pytest.raises(ShapeMismatchError, match="image_size"):
        load_image_folder(tmp_path / "mixed")
    assert load_image_folder(tmp_path / "mixed", image_size=(4, 5)).sample_shape == (1, 4, 5)
    with pytest.raises(InvalidParameterError, match="image_size"):
        load_image_folder(tmp_path / "mixed", image_size=(0, 4))


def test_image_folder_round_trip(tmp_path, tiny_images):
    save_image_folder(tiny_images, tmp_path / "png")
    back = load_image_folder(tmp_path / "png")
    assert back.classes == tiny_images.classes
    assert sorted(back.labels.tolist()) == sorted(tiny_images.labels.tolist())
    # 8-bit PNGs: values come back within half a grey level
    order = torch.argsort(tiny_images.labels, stable=True)
    assert torch.allclose(back.images, tiny_images.images[order], atol=0.5 / 255 + 1e-6)


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(DataFileError, match="one subfolder per class"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataFileError, match="no class subfolders with images"):
        load_image_folder(tmp_path / "empty")
    write_folder(tmp_path / "bad")
    (tmp_path / "bad" / "dog" / "9.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataFileError, match="9.png"):
        load_image_folder(tmp_path / "bad")
    with pytest.raises(InvalidParameterError, match="PNG"):
        save_image_folder(ImageDataset(torch.rand(2, 2, 4, 4), [0, 1]), tmp_path / "two")
    with pytest.raises(InvalidDataError, match="folder names"):
        save_image_folder(ImageDataset(torch.rand(2, 1, 4, 4), [0, 1], ["a/b", "c"]), tmp_path)
