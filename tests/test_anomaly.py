"""Contract tests over every registered anomaly detector, plus the one-class protocol."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from synthaug.anomaly import (
    BaseDetector,
    GANAnomalyDetector,
    KNNDetector,
    PCADetector,
    VAEAnomalyDetector,
    create_detector,
    format_one_class_table,
    list_detectors,
    run_one_class,
)
from synthaug.data import ImageDataset
from synthaug.errors import (
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
    SingleClassWarning,
)
from synthaug.generators import CVAE
from synthaug.metrics import mean_ci

# Tiny settings per registered detector; a new detector must add itself here (the test below
# fails otherwise), so no detector escapes the contract silently.
TINY = {
    "isolation-forest": {"n_estimators": 20},
    "ocsvm": {},
    "pca": {"n_components": 3},
    "knn": {"n_neighbors": 3},
    "vae": {"epochs": 3, "latent_dim": 2, "hidden_dims": (16,), "batch_size": 16},
    "fanogan": {
        "epochs": 3,
        "encoder_epochs": 3,
        "latent_dim": 2,
        "hidden_dims": (16, 8),
        "batch_size": 16,
    },
    "draem": {"steps": 4, "width": 4, "batch_size": 8},
    "cutpaste": {"steps": 4, "width": 4, "batch_size": 8},
    "ddpm": {
        "epochs": 2,
        "hidden_dims": (16,),
        "batch_size": 16,
        "train_timesteps": 40,
        "denoise_steps": 2,
        "n_draws": 1,
    },
}
TORCH_DETECTORS = {"vae", "fanogan", "draem", "cutpaste", "ddpm"}


def test_every_registered_detector_has_tiny_settings():
    assert set(list_detectors()) == set(TINY)


@pytest.fixture(params=sorted(TINY))
def name(request):
    return request.param


def make(name, device, **extra):
    params = dict(TINY[name], **extra)
    if name in TORCH_DETECTORS:
        params["device"] = device
    return create_detector(name, **params)


@pytest.fixture(scope="module")
def normals_and_test():
    """Normal class: dark images with a faint bar; anomalies: images with a bright blob."""
    g = torch.Generator().manual_seed(0)
    n = 40
    normal = 0.1 * torch.rand(n, 1, 6, 6, generator=g)
    normal[:, :, 2:4, :] += 0.3
    anomal = 0.1 * torch.rand(20, 1, 6, 6, generator=g)
    anomal[:, :, 2:4, :] += 0.3
    anomal[:, :, :3, :3] = 0.9
    train = ImageDataset(normal[:30], torch.zeros(30, dtype=torch.int64), ["normal", "lesion"])
    test = ImageDataset(
        torch.cat([normal[30:], anomal]),
        torch.cat([torch.zeros(10), torch.ones(20)]).long(),
        ["normal", "lesion"],
    )
    return train, test


def test_fit_score_predict_contract(name, device, normals_and_test):
    train, test = normals_and_test
    det = make(name, device)
    assert det.fit(train) is det
    scores = det.decision_function(test)
    assert scores.shape == (len(test),) and scores.dtype == np.float64
    assert np.isfinite(scores).all()
    # The planted blob is easy: every classical detector ranks most anomalies above most
    # normals (the networks' tiny settings train too briefly to learn; see the VAE test).
    if name not in TORCH_DETECTORS:
        assert roc_auc_score(test.labels.numpy(), scores) > 0.7
    # Default threshold: the chosen quantile of held-out normal scores.
    assert det.n_validation_ == 3  # 10% of 30
    assert det.threshold_ == pytest.approx(np.quantile(det.validation_scores_, 0.95))
    pred = det.predict(test)
    assert set(np.unique(pred)) <= {0, 1} and pred.dtype == np.int64
    np.testing.assert_array_equal(pred, (scores > det.threshold_).astype(np.int64))
    np.testing.assert_array_equal(det.predict(test, threshold=-1e30), 1)
    np.testing.assert_array_equal(det.predict(test, threshold=1e30), 0)


def test_same_seed_same_scores(name, device, normals_and_test):
    train, test = normals_and_test
    a = make(name, device, seed=3).fit(train).decision_function(test)
    b = make(name, device, seed=3).fit(train).decision_function(test)
    np.testing.assert_array_equal(a, b)


def test_clone_keeps_parameters(name):
    det = create_detector(name, **TINY[name])
    twin = clone(det).set_params(seed=7)
    assert type(twin) is type(det) and twin.seed == 7

    def plain(d):  # every parameter, nested ones included, but the estimator objects
        return {
            k: v
            for k, v in d.get_params(deep=True).items()
            if k != "seed" and not hasattr(v, "get_params")
        }

    assert plain(twin) == plain(det)
    with pytest.raises(InvalidParameterError, match="Invalid parameter"):
        clone(det).set_params(not_a_param=1)


def test_multiclass_training_set_is_refused_unless_allowed(name, device, tiny_images):
    with pytest.raises(InvalidDataError, match="one-class detector.*allow_multiple_classes"):
        make(name, device).fit(tiny_images)
    det = make(name, device, allow_multiple_classes=True).fit(tiny_images)
    assert det.normal_classes_ == ["a", "b", "c"]


def test_bad_input(name, device, normals_and_test):
    train, test = normals_and_test
    det = make(name, device)
    with pytest.raises(NotFittedError):
        det.decision_function(test)
    with pytest.raises(EmptyDatasetError):
        det.fit(train.subset([]))
    with pytest.raises(EmptyDatasetError, match="validation"):
        det.fit(train.subset([0, 1]))  # one held out leaves a single training sample
    with pytest.raises(InvalidDataError, match="ImageDataset"):
        det.fit(train.images)
    nan = train.subset(range(len(train)))
    nan.images[0, 0, 0, 0] = float("nan")  # edited after the dataset checked it
    with pytest.raises(InvalidDataError, match="NaN"):
        det.fit(nan)
    det.fit(train)
    with pytest.raises(InvalidDataError, match="NaN"):
        det.decision_function(nan)
    with pytest.raises(EmptyDatasetError):
        det.decision_function(test.subset([]))
    with pytest.raises(ShapeMismatchError):
        det.decision_function(
            ImageDataset(torch.rand(3, 1, 5, 5), torch.zeros(3, dtype=torch.int64))
        )
    with pytest.raises(InvalidParameterError, match="threshold"):
        det.predict(test, threshold=float("nan"))
    with pytest.raises(InvalidParameterError, match="validation_fraction"):
        make(name, device, validation_fraction=1.5).fit(train)


def test_validation_fraction_zero_uses_training_scores(normals_and_test):
    train, _ = normals_and_test
    det = PCADetector(n_components=2, validation_fraction=0.0, threshold_quantile=0.5).fit(train)
    assert det.n_validation_ == 0 and det.n_train_ == len(train)
    assert det.threshold_ == pytest.approx(np.median(det.decision_function(train)))


def test_threshold_quantile_sets_false_alarm_rate_on_validation(normals_and_test):
    train, _ = normals_and_test
    det = PCADetector(n_components=2, validation_fraction=0.5, threshold_quantile=0.8).fit(train)
    held_out = det.validation_scores_
    assert len(held_out) == 15
    # At most 20% of the held-out normal samples lie above the 0.8 quantile.
    assert (held_out > det.threshold_).mean() <= 0.2


def test_augment_with_synthetic_normals(device, normals_and_test):
    train, test = normals_and_test
    det = PCADetector(n_components=2, augment_with="cvae", n_synthetic=50).fit(train)
    assert det.n_train_real_ == 27 and det.n_train_ == 77
    assert det.synthetic_generator_.is_fitted
    # A fitted generator instance is used as it is; an unfitted one is copied, then fitted.
    gen = CVAE(epochs=2, hidden_dims=(16,), latent_dim=2, device=device, verbose=False)
    det2 = PCADetector(n_components=2, augment_with=gen, n_synthetic=10).fit(train)
    assert not gen.is_fitted and det2.n_train_ == 37
    with pytest.warns(SingleClassWarning, match="single class"):  # the user's own fit
        gen.fit(train)
    det3 = PCADetector(n_components=2, augment_with=gen, n_synthetic=10).fit(train)
    assert det3.synthetic_generator_ is gen
    # Same seed, same synthetic samples, same scores.
    fresh = CVAE(epochs=2, hidden_dims=(16,), latent_dim=2, device=device, verbose=False)
    a = PCADetector(n_components=2, augment_with=fresh, n_synthetic=20, seed=1).fit(train)
    b = PCADetector(n_components=2, augment_with=fresh, n_synthetic=20, seed=1).fit(train)
    np.testing.assert_array_equal(a.decision_function(test), b.decision_function(test))
    # A generator fitted on several classes samples the class named like the normal one.
    two = train.concat(test)
    multi = CVAE(epochs=2, hidden_dims=(16,), latent_dim=2, device=device, verbose=False).fit(two)
    det4 = PCADetector(n_components=2, augment_with=multi, n_synthetic=10).fit(train)
    assert det4.n_train_ == 37
    renamed = ImageDataset(train.images, train.labels, ["healthy", "sick"])
    with pytest.raises(InvalidParameterError, match="normal class"):
        PCADetector(n_components=2, augment_with=multi, n_synthetic=10).fit(renamed)
    with pytest.raises(InvalidParameterError, match="augment_with"):
        PCADetector(augment_with=3, n_synthetic=5).fit(train)
    with pytest.raises(InvalidParameterError, match="unknown generator"):
        PCADetector(augment_with="no-such-model", n_synthetic=5).fit(train)


def test_augment_with_a_classical_sample_source(normals_and_test):
    from synthaug.augment import ClassicalAugmentation

    train, test = normals_and_test
    source = ClassicalAugmentation()
    a = KNNDetector(augment_with=source, n_synthetic=15, seed=2).fit(train)
    assert a.n_train_real_ == 27 and a.n_train_ == 42
    assert not hasattr(source, "transform_")  # the detector fits a copy, not the user's object
    # The jittered copies differ from the real normals but stay in [0, 1].
    added = a.synthetic_generator_.sample(15, y=0, seed=2)[0]
    assert added.min() >= 0 and added.max() <= 1
    b = KNNDetector(augment_with=source, n_synthetic=15, seed=2).fit(train)
    np.testing.assert_array_equal(a.decision_function(test), b.decision_function(test))


def test_vae_scores_and_params(device, normals_and_test):
    train, test = normals_and_test
    tiny = dict(TINY["vae"], device=device)
    rec = create_detector("vae", score="reconstruction", **tiny).fit(train)
    elbo = create_detector("vae", score="elbo", n_samples=2, **tiny).fit(train)
    labels = torch.zeros(len(test), dtype=torch.int64)
    expected = (test.images - rec.vae_.reconstruct(test.images, labels)).flatten(1).pow(2).sum(1)
    np.testing.assert_allclose(rec.decision_function(test), expected.double().numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        elbo.decision_function(test),
        elbo.vae_.negative_elbo(test.images, labels, n_samples=2, seed=0).double().numpy(),
        rtol=1e-6,
    )
    trained = create_detector("vae", **dict(tiny, epochs=30)).fit(train)
    assert roc_auc_score(test.labels.numpy(), trained.decision_function(test)) > 0.9
    assert rec.get_params()["vae__epochs"] == 3 and rec.get_params()["score"] == "reconstruction"
    rec.set_params(score="elbo", vae__epochs=4)
    assert rec.score == "elbo" and rec.vae.epochs == 4
    with pytest.raises(InvalidParameterError, match="Invalid parameter"):
        rec.set_params(bogus=1)
    with pytest.raises(InvalidParameterError, match="no parameter"):
        create_detector("vae", bogus=1)
    with pytest.raises(InvalidParameterError, match="vae"):
        VAEAnomalyDetector(vae="cgan").fit(train)
    # Composed by instance: the detector clones its CVAE and fits it with its own seed.
    template = CVAE(epochs=2, latent_dim=2, hidden_dims=(16,), verbose=False, device=device)
    det = VAEAnomalyDetector(vae=template, seed=4).fit(train)
    assert not template.is_fitted and det.vae_.seed == 4 and det.vae_.epochs == 2
    with pytest.raises(InvalidParameterError, match="score"):
        create_detector("vae", score="likelihood", **tiny).fit(train)


def test_vae_local_max_and_flatten(device, normals_and_test):
    train, test = normals_and_test
    tiny = dict(TINY["vae"], device=device)
    det = create_detector("vae", reduction="local-max", window=3, flatten=True, **tiny).fit(train)
    assert det.vae_.sample_shape_ == (36,)  # trained on flattened samples
    labels = torch.zeros(len(test), dtype=torch.int64)
    flat = test.images.reshape(len(test), -1)
    residual = (flat - det.vae_.reconstruct(flat, labels)).reshape(test.images.shape).pow(2)
    # Brute force: the largest mean over 3x3 windows (clipped at the border).
    expected = torch.zeros(len(test))
    for i in range(6):
        for j in range(6):
            patch = residual[:, 0, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
            expected = torch.maximum(expected, patch.mean((1, 2)))
    np.testing.assert_allclose(det.decision_function(test), expected.double().numpy(), rtol=1e-5)
    with pytest.raises(InvalidParameterError, match="odd"):
        create_detector("vae", reduction="local-max", window=2, **tiny).fit(train)
    features = ImageDataset(train.images.reshape(len(train), -1), train.labels)
    with pytest.raises(InvalidParameterError, match="local-max"):
        create_detector("vae", reduction="local-max", **tiny).fit(features)


def test_vae_positive_and_standardized_residuals(device, normals_and_test):
    train, test = normals_and_test
    tiny = dict(TINY["vae"], device=device, flatten=True)
    pos = create_detector("vae", residual="positive", reduction="local-max", window=1, **tiny)
    pos.fit(train)
    labels = torch.zeros(len(test), dtype=torch.int64)
    flat = test.images.reshape(len(test), -1)
    signed = (flat - pos.vae_.reconstruct(flat, labels)).reshape(test.images.shape)
    # window=1: the brightest pixel above its reconstruction.
    expected = signed.clamp(min=0).pow(2).flatten(1).amax(1)
    np.testing.assert_allclose(pos.decision_function(test), expected.double().numpy(), rtol=1e-5)
    assert not hasattr(pos, "residual_std_")  # only local-max-z calibrates

    z = create_detector("vae", reduction="local-max-z", window=1, **tiny).fit(train)
    # Statistics come from the 3 held-out validation normals, not the training part.
    val = train.images[torch.from_numpy(np.random.default_rng(0).permutation(30)[:3])]
    val_flat = val.reshape(3, -1)
    val_res = (val_flat - z.vae_.reconstruct(val_flat, torch.zeros(3, dtype=torch.int64))).reshape(
        val.shape
    )
    torch.testing.assert_close(z.residual_mean_, val_res.mean(0))
    assert z.residual_mean_.shape == (1, 6, 6) and (z.residual_std_ > 0).all()
    signed = (flat - z.vae_.reconstruct(flat, labels)).reshape(test.images.shape)
    expected = ((signed - z.residual_mean_) / z.residual_std_).pow(2).flatten(1).amax(1)
    np.testing.assert_allclose(z.decision_function(test), expected.double().numpy(), rtol=1e-5)
    assert z.threshold_ == pytest.approx(np.quantile(z.validation_scores_, 0.95))
    # Same seed, same scores.
    again = create_detector("vae", reduction="local-max-z", window=1, **tiny).fit(train)
    np.testing.assert_array_equal(z.decision_function(test), again.decision_function(test))
    assert clone(z).get_params()["reduction"] == "local-max-z"

    with pytest.raises(InvalidParameterError, match="residual"):
        create_detector("vae", residual="absolute", **tiny).fit(train)
    with pytest.raises(InvalidParameterError, match="reduction"):
        create_detector("vae", reduction="max-z", **tiny).fit(train)
    with pytest.raises(InvalidParameterError, match="odd"):
        create_detector("vae", reduction="local-max-z", window=4, **tiny).fit(train)
    features = ImageDataset(train.images.reshape(len(train), -1), train.labels)
    with pytest.raises(InvalidParameterError, match="local-max-z"):
        create_detector("vae", reduction="local-max-z", **tiny).fit(features)


@pytest.mark.parametrize("residual", ["squared", "positive"])
def test_vae_standardized_local_score_finds_a_bright_blob(device, residual):
    """Normals share a bright, badly reconstructed stripe; a faint 3x3 blob on the dark part
    stands out once residuals are standardized per pixel, not before."""
    g = torch.Generator().manual_seed(1)
    images = 0.05 * torch.rand(120, 1, 16, 16, generator=g)
    # A stripe at a random height per image: the VAE reconstructs it poorly everywhere.
    rows = torch.randint(0, 4, (120,), generator=g)
    images[torch.arange(120), :, rows] += 0.8 * torch.rand(120, 1, 16, generator=g)
    lesions = images[100:].clone()
    lesions[:, :, 10:13, 7:10] += 0.35
    train = ImageDataset(images[:80], torch.zeros(80, dtype=torch.int64))
    test = ImageDataset(
        torch.cat([images[80:100], lesions]),
        torch.cat([torch.zeros(20), torch.ones(20)]).long(),
    )
    params = dict(
        flatten=True,
        epochs=15,
        latent_dim=4,
        hidden_dims=(64,),
        batch_size=16,
        residual=residual,
        validation_fraction=0.25,
        device=device,
    )
    z = create_detector("vae", reduction="local-max-z", **params).fit(train)
    raw = create_detector("vae", reduction="local-max", **params).fit(train)
    y = test.labels.numpy()
    auroc_z = roc_auc_score(y, z.decision_function(test))
    assert auroc_z > 0.95
    assert auroc_z > roc_auc_score(y, raw.decision_function(test))


@pytest.mark.parametrize("score", ["izif", "izi", "critic"])
def test_gan_score_kinds(score, device, normals_and_test):
    train, test = normals_and_test
    det = GANAnomalyDetector(score=score, **TINY["fanogan"], device=device).fit(train)
    scores = det.decision_function(test)
    assert scores.shape == (len(test),) and np.isfinite(scores).all()
    assert len(det.history_) == 3 and len(det.encoder_history_) == 3


def test_registry_errors():
    with pytest.raises(InvalidParameterError, match="unknown detector"):
        create_detector("nope")
    with pytest.raises(InvalidParameterError, match="no parameter"):
        create_detector("pca", n_estimators=3)
    assert issubclass(type(create_detector("knn")), BaseDetector)


# -- the one-class protocol ---------------------------------------------------------------------


def test_protocol_on_tiny_grid(small_digits):
    dets = {"pca": PCADetector(n_components=3), "knn": create_detector("knn")}
    result = run_one_class(
        small_digits, dets, seeds=[0, 1], normal_classes=[0, "1", 2], test_size=0.5
    )
    records = result["records"]
    assert len(records) == 2 * 3 * 2
    assert {r["normal_class"] for r in records} == {"0", "1", "2"}
    for r in records:
        assert 0.5 < r["auroc"] <= 1 and 0 < r["auprc"] <= 1
        assert r["n_train"] == 9  # 10 training samples per class, one held out for validation
    s = result["summary"]["pca"]
    per_seed = [
        np.mean([r["auroc"] for r in records if r["detector"] == "pca" and r["seed"] == k])
        for k in (0, 1)
    ]
    assert s["per_seed_auroc"] == pytest.approx(per_seed)
    assert s["mean_auroc"] == pytest.approx(np.mean(per_seed))
    assert s["ci95_auroc"] == pytest.approx(mean_ci(per_seed)[1])
    table = format_one_class_table(result["summary"])
    assert table.count("\n") == 3 and "| pca |" in table
    # Same seeds, same numbers.
    again = run_one_class(
        small_digits, dets, seeds=[0, 1], normal_classes=[0, "1", 2], test_size=0.5
    )
    assert [r["auroc"] for r in again["records"]] == [r["auroc"] for r in records]


def test_protocol_few_normals_and_fixed_test(small_digits):
    train, test = small_digits.split(test_size=0.5, seed=0)
    result = run_one_class(
        train,
        {"pca": PCADetector(n_components=2, validation_fraction=0.0)},
        seeds=[0],
        normal_classes=[3],
        n_normal=5,
        test_dataset=test,
    )
    assert result["records"][0]["n_train"] == 5
    with pytest.raises(EmptyDatasetError, match="n_normal"):
        run_one_class(
            train,
            {"pca": PCADetector()},
            seeds=[0],
            normal_classes=[3],
            n_normal=50,
            test_dataset=test,
        )


def test_protocol_bad_input(small_digits, tiny_images):
    with pytest.raises(InvalidParameterError, match="detector"):
        run_one_class(small_digits, {})
    with pytest.raises(InvalidParameterError, match="synthaug anomaly detector"):
        run_one_class(small_digits, {"x": object()})
    with pytest.raises(InvalidParameterError, match="normal class"):
        run_one_class(small_digits, {"pca": PCADetector()}, normal_classes=[12])
    with pytest.raises(InvalidParameterError, match="normal class"):
        run_one_class(small_digits, {"pca": PCADetector()}, normal_classes=["cat"])
    with pytest.raises(InvalidParameterError, match="seed"):
        run_one_class(small_digits, {"pca": PCADetector()}, seeds=[])
    with pytest.raises(EmptyDatasetError):
        run_one_class(small_digits.subset([]), {"pca": PCADetector()})
    with pytest.raises(InvalidDataError, match="classes"):
        run_one_class(small_digits, {"pca": PCADetector()}, test_dataset=tiny_images)
    with pytest.raises(InvalidParameterError, match="n_normal"):
        run_one_class(small_digits, {"pca": PCADetector()}, n_normal=1)


def test_mean_ci():
    assert mean_ci([0.5])[0] == 0.5 and np.isnan(mean_ci([0.5])[1])
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.302652729911275 * 1.0 / np.sqrt(3))
