import numpy as np
import pytest
import torch

from synthaug.data import ImageDataset, from_arrays, make_imbalanced
from synthaug.errors import (
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
    SynthaugError,
    UnknownClassError,
)


def test_load_digits_shape_range_and_classes(digits):
    assert len(digits) == 1797
    assert digits.images.shape == (1797, 1, 8, 8)
    assert digits.images.dtype == torch.float32
    assert 0.0 <= float(digits.images.min()) and float(digits.images.max()) == 1.0
    assert digits.classes == [str(i) for i in range(10)]
    assert sum(digits.class_counts().values()) == 1797


def test_getitem_and_len(tiny_images):
    image, label = tiny_images[4]
    assert image.shape == (1, 8, 8)
    assert int(label) == 1
    assert len(tiny_images) == 30


@pytest.mark.parametrize(
    "images, labels, error",
    [
        (torch.full((2, 1, 4, 4), float("nan")), [0, 1], InvalidDataError),
        (torch.full((2, 1, 4, 4), float("inf")), [0, 1], InvalidDataError),
        (torch.full((2, 1, 4, 4), 1.5), [0, 1], InvalidDataError),
        (torch.full((2, 1, 4, 4), -0.1), [0, 1], InvalidDataError),
        (torch.zeros(2, 1, 4, 4), [0, 1, 1], ShapeMismatchError),
        (torch.zeros(2, 4, 4), [0, 1], ShapeMismatchError),
        (torch.zeros(2, 1, 4, 4, dtype=torch.uint8), [0, 1], InvalidDataError),
        (torch.zeros(2, 1, 4, 4), [0, -1], InvalidDataError),
        (torch.zeros(2, 1, 4, 4), [0.5, 1.0], InvalidDataError),
        (torch.zeros(2, 1, 4, 4), [[0], [1]], ShapeMismatchError),
    ],
)
def test_construction_rejects_bad_input(images, labels, error):
    with pytest.raises(error):
        ImageDataset(images, torch.as_tensor(labels))


def test_label_out_of_range_for_given_classes():
    with pytest.raises(InvalidDataError, match="out of range"):
        ImageDataset(torch.zeros(2, 1, 4, 4), torch.tensor([0, 2]), ["a", "b"])


def test_errors_share_the_synthaug_base():
    with pytest.raises(SynthaugError):
        ImageDataset(torch.full((1, 1, 2, 2), float("nan")), torch.tensor([0]))


def test_feature_vectors_are_accepted():
    ds = ImageDataset(torch.rand(5, 30), torch.tensor([0, 1, 0, 1, 1]))
    assert ds.sample_shape == (30,)
    assert not ds.is_image
    assert ds.classes == ["0", "1"]


def test_empty_dataset_is_constructible_but_not_splittable():
    ds = ImageDataset(torch.zeros(0, 1, 4, 4), torch.zeros(0, dtype=torch.int64), ["a"])
    assert len(ds) == 0 and ds.class_counts() == {0: 0}
    with pytest.raises(EmptyDatasetError):
        ds.split(0.5)


def test_split_is_stratified_disjoint_and_seeded(digits):
    train, test = digits.split(0.4, seed=3)
    assert len(train) + len(test) == len(digits)
    for c in range(10):
        share = test.class_counts()[c] / digits.class_counts()[c]
        assert 0.35 < share < 0.45
    again_train, _ = digits.split(0.4, seed=3)
    assert torch.equal(train.images, again_train.images)
    other_train, _ = digits.split(0.4, seed=4)
    assert not torch.equal(train.images, other_train.images)


def test_split_refuses_a_one_sample_class():
    ds = ImageDataset(torch.rand(5, 1, 4, 4), torch.tensor([0, 0, 0, 0, 1]), ["many", "lonely"])
    with pytest.raises(InvalidDataError, match="lonely"):
        ds.split(0.5)


def test_subset_keeps_classes_and_metadata():
    meta = [{"file": f"{i}.dcm"} for i in range(4)]
    ds = ImageDataset(torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]), ["x", "y"], metadata=meta)
    sub = ds.subset([3, 0])
    assert sub.classes == ["x", "y"]
    assert [m["file"] for m in sub.metadata] == ["3.dcm", "0.dcm"]
    assert torch.equal(sub.images[0], ds.images[3])
    with pytest.raises(InvalidParameterError):
        ds.subset([10])


def test_from_arrays_layouts_and_scaling():
    gray = np.full((4, 6, 5), 255, dtype=np.uint8)
    ds = from_arrays(gray, [0, 1, 0, 1])
    assert ds.sample_shape == (1, 6, 5) and float(ds.images.max()) == 1.0
    hwc = np.zeros((4, 6, 5, 3), dtype=np.uint8)
    assert from_arrays(hwc, [0, 1, 0, 1]).sample_shape == (3, 6, 5)
    chw = np.zeros((4, 3, 6, 5), dtype=np.float32)
    assert from_arrays(chw, [0, 1, 0, 1]).sample_shape == (3, 6, 5)
    flat = np.zeros((4, 30), dtype=np.float64)
    assert from_arrays(flat, [0, 1, 0, 1]).sample_shape == (30,)


def test_from_arrays_encodes_string_labels_in_sorted_order():
    ds = from_arrays(np.zeros((3, 4, 4), dtype=np.uint8), ["pneumonia", "normal", "normal"])
    assert ds.classes == ["normal", "pneumonia"]
    assert ds.labels.tolist() == [1, 0, 0]


def test_from_arrays_maps_names_onto_given_classes():
    ds = from_arrays(np.zeros((2, 4, 4), dtype=np.uint8), ["b", "a"], classes=["a", "b", "c"])
    assert ds.labels.tolist() == [1, 0] and ds.classes == ["a", "b", "c"]
    with pytest.raises(InvalidDataError, match="not among"):
        from_arrays(np.zeros((1, 4, 4), dtype=np.uint8), ["z"], classes=["a"])


@pytest.mark.parametrize(
    "X, y, error",
    [
        (np.zeros((2, 2, 2, 2, 2)), [0, 1], ShapeMismatchError),
        (np.zeros((2, 4)), [[0, 1]], ShapeMismatchError),
        (np.full((2, 4, 4), 300, dtype=np.int32), [0, 1], InvalidDataError),
        (np.full((2, 4, 4), np.nan, dtype=np.float32), [0, 1], InvalidDataError),
        (np.array([["a", "b"], ["c", "d"]]), [0, 1], InvalidDataError),
        (np.zeros((0, 4, 4), dtype=np.uint8), np.zeros(0, dtype=int), EmptyDatasetError),
        (np.zeros((0, 4)), [], EmptyDatasetError),
        (np.zeros((3, 4, 4), dtype=np.uint8), [-1, 0, 1], InvalidDataError),
        (np.zeros((2, 4)), np.array([-1, 1]), InvalidDataError),
    ],
)
def test_from_arrays_rejects_bad_input(X, y, error):
    with pytest.raises(error):
        from_arrays(X, y)


def test_make_imbalanced_ratio(digits):
    imb = make_imbalanced(digits, ratio=0.05, minority_classes=[5, 6, 7, 8, 9], seed=0)
    counts = imb.class_counts()
    full = digits.class_counts()
    for c in range(5):
        assert counts[c] == full[c]
    for c in range(5, 10):
        assert counts[c] == round(full[c] * 0.05)
    again = make_imbalanced(digits, ratio=0.05, minority_classes=[5, 6, 7, 8, 9], seed=0)
    assert torch.equal(imb.images, again.images)


def test_make_imbalanced_respects_min_per_class_and_names(digits):
    imb = make_imbalanced(digits, ratio=0.001, minority_classes=["9"], min_per_class=2)
    assert imb.class_counts()[9] == 2


def test_make_imbalanced_counts_list(digits):
    counts = [150, 100, 80, 60, 40, 30, 20, 10, 6, 4]
    imb = make_imbalanced(digits, counts=counts, seed=1)
    assert list(imb.class_counts().values()) == counts


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"ratio": 0.0}, InvalidParameterError),
        ({"ratio": 1.5}, InvalidParameterError),
        ({}, InvalidParameterError),
        ({"ratio": 0.5, "counts": [1] * 10}, InvalidParameterError),
        ({"counts": [1, 2]}, InvalidParameterError),
        ({"ratio": 0.5, "minority_classes": [42]}, UnknownClassError),
        ({"ratio": 0.5, "minority_classes": ["cat"]}, UnknownClassError),
    ],
)
def test_make_imbalanced_rejects_bad_parameters(digits, kwargs, error):
    with pytest.raises(error):
        make_imbalanced(digits, **kwargs)


def test_from_arrays_says_what_to_do_with_negative_labels_and_empty_input():
    with pytest.raises(InvalidDataError, match=r"non-negative.*np.unique"):
        from_arrays(np.zeros((2, 4)), np.array([-1, 1]))
    with pytest.raises(EmptyDatasetError, match="0 images and 0 labels"):
        from_arrays(np.zeros((0, 4, 4), dtype=np.uint8), [])
    # Strings that look negative are names, not codes.
    assert from_arrays(np.zeros((2, 4)), ["-1", "1"]).classes == ["-1", "1"]
