"""Fidelity, utility and privacy metrics: values by hand, sanity on real data, bad inputs."""

import math

import numpy as np
import pytest
import torch

from synthaug.data import ImageDataset
from synthaug.errors import (
    CheckpointError,
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
)
from synthaug.metrics import FeatureExtractor, fidelity, frechet_distance, prdc, privacy, utility


@pytest.fixture(scope="module")
def thirds(digits):
    """Digits in three disjoint stratified parts of 599: train, holdout, fresh."""
    train, rest = digits.split(2 / 3, seed=0)
    holdout, fresh = rest.split(0.5, seed=0)
    return train, holdout, fresh


@pytest.fixture(scope="module")
def extractor(thirds):
    return FeatureExtractor(epochs=5, seed=0, device="cpu").fit(thirds[0])


def _like(ds, images):
    return ImageDataset(images, ds.labels, ds.classes)


# -- formulas by hand ---------------------------------------------------------------------------
def test_frechet_distance_by_hand():
    # means 1 and 3, variances 2 and 8: (1-3)^2 + 2 + 8 - 2*sqrt(16) = 6
    assert frechet_distance(np.array([[0.0], [2.0]]), np.array([[1.0], [5.0]])) == pytest.approx(6)


def test_prdc_by_hand():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.tensor([[0.5], [10.0]], dtype=torch.float64)
    # real 1-NN radii are all 1; fake radii are 9.5. 0.5 lies in the balls of 0 and 1.
    s = prdc(real, fake, k=1)
    assert s == {"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 0.5}


# -- sanity on real data ------------------------------------------------------------------------
def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_noise(thirds, extractor):
    train = thirds[0]
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(train.images.shape, generator=gen)
    emb = extractor.transform(train)
    assert frechet_distance(emb, emb) == pytest.approx(0, abs=1e-6)
    fds = [
        frechet_distance(emb, extractor.transform((train.images + s * noise).clamp(0, 1)))
        for s in (0.05, 0.15, 0.3, 0.6)
    ]
    assert fds[0] > 0
    assert all(a < b for a, b in zip(fds, fds[1:], strict=False)), fds


def test_real_holdout_scores_near_ideal_and_noise_scores_terribly(thirds, extractor):
    train, holdout, _ = thirds
    real = fidelity(train, holdout, features=extractor, seed=0)
    assert real["precision"] > 0.85 and real["recall"] > 0.85 and real["coverage"] > 0.85
    assert 0.8 < real["density"] < 1.25
    assert abs(real["c2st_auc"] - 0.5) < 0.1
    assert real["label_fidelity"] > 0.85
    assert all(real[f"coverage_{c}"] > 0.7 for c in range(10))
    assert "CNN" in real["embedding"]

    gen = torch.Generator().manual_seed(0)
    noise = fidelity(
        train, _like(holdout, torch.rand(holdout.images.shape, generator=gen)), features=extractor
    )
    constant = fidelity(
        train, _like(holdout, torch.full(holdout.images.shape, 0.5)), features=extractor
    )
    for bad in (noise, constant):
        assert bad["recall"] < 0.2 and bad["coverage"] < 0.2 and bad["density"] < 0.3
        assert bad["c2st_auc"] > 0.95
        assert bad["label_fidelity"] < 0.3
        assert bad["fd"] > 20 * real["fd"]


def test_copying_generator_looks_perfect_but_leaks(thirds, extractor):
    train, holdout, fresh = thirds
    copies = train.subset(np.random.default_rng(0).permutation(len(train)))
    fid = fidelity(train, copies, features=extractor, per_class=False)
    assert fid["fd"] == pytest.approx(0, abs=1e-6)
    assert fid["precision"] == 1 and fid["recall"] == 1 and fid["coverage"] == 1

    leak = privacy(train, copies, holdout)
    assert leak["mia_auc"] > 0.9
    assert leak["memorization_rate"] > 0.95
    assert leak["exact_copies"] == len(train)
    assert leak["dcr_median_ratio"] == 0

    # Unseen real data used as "synthetic" reveals nothing about the members.
    safe = privacy(train, fresh, holdout)
    assert abs(safe["mia_auc"] - 0.5) < 0.1
    assert abs(safe["memorization_rate"] - safe["memorization_baseline"]) < 0.1
    assert safe["exact_copies"] == 0
    assert 0.8 < safe["dcr_median_ratio"] < 1.25 and 0.7 < safe["dcr_p5_ratio"] < 1.4


def test_privacy_accepts_unlabelled_arrays_and_an_embedding(thirds, extractor):
    train, holdout, _ = thirds
    a = privacy(train.images, train.images[:100], holdout.images.numpy())
    assert a["exact_copies"] == 100 and a["n_synthetic"] == 100
    b = privacy(train, train.subset(range(100)), holdout, embed=extractor)
    assert b["exact_copies"] == 100 and b["space"].startswith("embedding")


def test_utility_scenarios(thirds):
    train, holdout, fresh = thirds
    real = utility(train, fresh, holdout)
    assert real["trtr_balanced_accuracy"] > 0.9
    assert abs(real["tstr_balanced_accuracy"] - real["trtr_balanced_accuracy"]) < 0.05
    assert real["trts_balanced_accuracy"] > 0.9 and real["tmtr_balanced_accuracy"] > 0.9
    assert 0.9 < real["tstr_trtr_ratio"] < 1.1
    gen = torch.Generator().manual_seed(0)
    noise = utility(train, _like(fresh, torch.rand(fresh.images.shape, generator=gen)), holdout)
    assert noise["tstr_balanced_accuracy"] < 0.3
    assert noise["trtr_balanced_accuracy"] == real["trtr_balanced_accuracy"]


def test_utility_cnn_is_deterministic_and_takes_arrays(small_digits):
    train, test = small_digits.split(0.5, seed=0)
    pair = (train.images.numpy(), train.labels.numpy())
    a = utility(pair, test, test, classifier="cnn", classifier_epochs=2, seed=3, device="cpu")
    b = utility(train, test, test, classifier="cnn", classifier_epochs=2, seed=3, device="cpu")
    assert a == b and a["classifier"].startswith("CNNClassifier")


def test_fidelity_is_deterministic_per_seed(small_digits):
    train, test = small_digits.split(0.5, seed=0)
    a = fidelity(train, test, per_class=False, seed=1, device="cpu")
    b = fidelity(train, test, per_class=False, seed=1, device="cpu")
    assert a == b
    assert set(a) >= {"fd", "precision", "recall", "density", "coverage", "c2st_auc"}


def test_fidelity_on_feature_vectors_and_user_embedding():
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.2, 0.2, 0.2], [0.8, 0.8, 0.8]])
    labels = torch.arange(2).repeat(60)
    x = (centers[labels] + 0.05 * torch.randn(120, 3, generator=g)).clamp(0, 1)
    real, syn = ImageDataset(x[:60], labels[:60]), ImageDataset(x[60:], labels[60:])
    mlp = fidelity(real, syn, features=FeatureExtractor(epochs=20, device="cpu"), seed=0)
    assert "MLP" in mlp["embedding"] and mlp["label_fidelity"] == 1.0
    identity = fidelity(real, syn, features=lambda im: im, seed=0)
    assert identity["embedding"].startswith("user function")
    assert identity["precision"] > 0.8 and identity["coverage"] > 0.8


# -- the feature extractor ----------------------------------------------------------------------
def test_feature_extractor_round_trip(tmp_path, small_digits):
    fx = FeatureExtractor(epochs=2, embedding_dim=16, device="cpu").fit(small_digits)
    path = fx.save(tmp_path / "fx.safetensors")
    again = FeatureExtractor.load(path, device="cpu")
    assert torch.equal(fx.transform(small_digits), again.transform(small_digits))
    assert again.describe() == fx.describe()
    np.testing.assert_array_equal(fx.predict(small_digits), again.predict(small_digits))


def test_feature_extractor_rejects_bad_files_and_inputs(tmp_path, small_digits):
    fx = FeatureExtractor(epochs=1, device="cpu").fit(small_digits)
    with pytest.raises(CheckpointError, match="no feature extractor"):
        FeatureExtractor.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        FeatureExtractor.load(tmp_path / "junk.safetensors")
    path = fx.save(tmp_path / "fx.safetensors")
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF  # flip a weight byte
    (tmp_path / "tampered.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="integrity"):
        FeatureExtractor.load(tmp_path / "tampered.safetensors")
    from synthaug.generators import CVAE

    model = CVAE(epochs=1, hidden_dims=(8,), verbose=False, device="cpu").fit(small_digits)
    with pytest.raises(CheckpointError, match="not a synthaug feature extractor"):
        FeatureExtractor.load(model.save(tmp_path / "cvae.safetensors"))

    with pytest.raises(NotFittedError):
        FeatureExtractor().transform(small_digits)
    with pytest.raises(ShapeMismatchError, match="trained on samples of shape"):
        fx.transform(torch.zeros(2, 1, 4, 4))
    with pytest.raises(InvalidParameterError, match=r"epochs=0 is invalid; it must be an integer"):
        FeatureExtractor(epochs=0).fit(small_digits)
    with pytest.raises(EmptyDatasetError):
        FeatureExtractor().fit(small_digits.subset([]))
    bad_shape = FeatureExtractor.from_function(lambda im: im.sum())
    with pytest.raises(ShapeMismatchError, match="must return an"):
        bad_shape.transform(small_digits)
    nan = FeatureExtractor.from_function(lambda im: torch.full((len(im), 2), math.nan))
    with pytest.raises(InvalidDataError, match="NaN"):
        nan.transform(small_digits)
    with pytest.raises(InvalidParameterError, match="cannot be saved"):
        nan.save(tmp_path / "f.safetensors")


# -- bad inputs ---------------------------------------------------------------------------------
def test_empty_sets_are_refused(small_digits):
    empty = small_digits.subset([])
    with pytest.raises(EmptyDatasetError, match="synthetic is empty"):
        fidelity(small_digits, empty)
    with pytest.raises(EmptyDatasetError, match="real_test is empty"):
        utility(small_digits, small_digits, empty)
    with pytest.raises(EmptyDatasetError, match="holdout is empty"):
        privacy(small_digits, small_digits, empty)


def test_shape_mismatch_and_nan_are_refused(small_digits):
    other = ImageDataset(torch.zeros(10, 1, 4, 4), torch.arange(10), small_digits.classes)
    with pytest.raises(ShapeMismatchError, match="synthetic has samples of shape"):
        fidelity(small_digits, other)
    with pytest.raises(ShapeMismatchError):
        privacy(small_digits, other, small_digits)
    with pytest.raises(ShapeMismatchError):
        utility(small_digits, other, small_digits)
    x = small_digits.images.clone()
    x[3, 0, 0, 0] = math.nan
    with pytest.raises(InvalidDataError, match="synthetic: .*NaN"):
        fidelity(small_digits, (x, small_digits.labels))
    with pytest.raises(InvalidDataError, match="NaN"):
        privacy(small_digits, x, small_digits)


def test_classes_and_labels_are_checked(small_digits):
    renamed = ImageDataset(small_digits.images, small_digits.labels, list("abcdefghij"))
    with pytest.raises(InvalidDataError, match="share one class list"):
        fidelity(small_digits, renamed)
    with pytest.raises(InvalidDataError, match="needs labels"):
        fidelity(small_digits, small_digits.images)
    with pytest.raises(InvalidDataError, match="must be an ImageDataset"):
        utility(small_digits, "samples.npz", small_digits)
    one_class = small_digits.subset(torch.nonzero(small_digits.labels == 0).flatten())
    with pytest.raises(InvalidDataError, match="at least 2"):
        utility(small_digits, one_class, small_digits)


def test_small_classes_need_per_class_false(small_digits):
    # Class 9 has a single synthetic sample: per-class k-NN radii cannot be computed.
    keep = torch.cat([torch.nonzero(small_digits.labels != 9).flatten(), torch.tensor([199])])
    assert int(small_digits.labels[199]) == 9
    short = small_digits.subset(keep)
    fx = FeatureExtractor(epochs=1, device="cpu").fit(small_digits)
    with pytest.raises(InvalidDataError, match=r"class\(es\) 9 \(real 20, synthetic 1\)"):
        fidelity(small_digits, short, features=fx)
    scores = fidelity(small_digits, short, features=fx, per_class=False)
    assert "fd_9" not in scores and scores["n_synthetic"] == 181
    with pytest.raises(InvalidDataError, match="at least 6"):
        fidelity(small_digits, small_digits.subset(range(3)), features=fx)


def test_bad_parameters(small_digits):
    with pytest.raises(InvalidParameterError, match="k must"):
        fidelity(small_digits, small_digits, k=0)
    with pytest.raises(InvalidParameterError, match="c2st_folds"):
        fidelity(small_digits, small_digits, c2st_folds=1)
    with pytest.raises(InvalidParameterError, match="features must"):
        fidelity(small_digits, small_digits, features="inception")
    with pytest.raises(InvalidParameterError, match="classifier"):
        utility(small_digits, small_digits, small_digits, classifier="svm")
    vectors = ImageDataset(small_digits.flat(), small_digits.labels)
    with pytest.raises(InvalidParameterError, match="needs \\(C, H, W\\) images"):
        utility(vectors, vectors, vectors, classifier="cnn")
    with pytest.raises(InvalidParameterError, match="mia_k"):
        privacy(small_digits, small_digits.subset(range(3)), small_digits, mia_k=5)
