"""The diffusion anomaly detector (AnoDDPM) and the residual maps it shares with the VAE's."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from synthaug.anomaly import DDPMAnomalyDetector, create_detector, evaluate_one_class
from synthaug.data import ImageDataset
from synthaug.errors import InvalidDataError, InvalidParameterError, ShapeMismatchError
from synthaug.generators import DDPM

pytest.importorskip("monai")

MLP = {"epochs": 60, "hidden_dims": (64, 64), "batch_size": 16, "train_timesteps": 100}


def blobs(seed: int, n_normal: int, n_anomalous: int, side: int = 6) -> ImageDataset:
    """Normal: dark images with a faint bar; anomalous: the same with a bright corner blob."""
    g = torch.Generator().manual_seed(seed)
    images = 0.1 * torch.rand(n_normal + n_anomalous, 1, side, side, generator=g)
    images[:, :, 2:4, :] += 0.3
    images[n_normal:, :, :3, :3] = 0.9
    masks = torch.zeros(len(images), 1, side, side)
    masks[n_normal:, :, :3, :3] = 1
    labels = torch.cat([torch.zeros(n_normal), torch.ones(n_anomalous)]).long()
    return ImageDataset(images, labels, ["normal", "lesion"]), masks


@pytest.fixture(scope="module")
def fitted():
    train, _ = blobs(0, 40, 0)
    det = create_detector("ddpm", noise_level=0.5, n_draws=2, denoise_steps=5, device="cpu", **MLP)
    return det.fit(train)


def test_restoration_finds_the_blob_and_maps_it(fitted):
    test, masks = blobs(1, 20, 20)
    scores = fitted.decision_function(test)
    assert roc_auc_score(test.labels.numpy(), scores) > 0.9
    maps = fitted.anomaly_map(test)
    assert maps.shape == (40, 1, 6, 6)
    # The map is the residual of the score: its sum over pixels is the "sum" score.
    np.testing.assert_allclose(maps.flatten(1).sum(1).double().numpy(), scores, rtol=1e-5)
    # The map's input is checked as DRAEM's is (one helper on the base class).
    with pytest.raises(ShapeMismatchError, match="training samples"):
        fitted.anomaly_map(torch.rand(2, 1, 5, 5))
    with pytest.raises(InvalidDataError, match="NaN"):
        fitted.anomaly_map(torch.full((1, 1, 6, 6), float("nan")))
    # Pixels of the blob stand out from the others on the anomalous images.
    y = masks[20:].flatten().bool().numpy()
    assert roc_auc_score(y, maps[20:].flatten().numpy()) > 0.8


def test_residual_is_the_image_minus_its_averaged_restorations(fitted):
    test, _ = blobs(2, 5, 5)
    x = test.images
    labels = torch.zeros(len(x), dtype=torch.int64)
    g = torch.Generator().manual_seed(fitted.seed)
    start = round(0.5 * 99)
    restored = sum(
        fitted.ddpm_.reconstruct(
            x, labels, start=start, noise=torch.randn(1, 6, 6, generator=g).expand_as(x), steps=5
        )
        for _ in range(2)
    )
    expected = (x - restored / 2).pow(2).flatten(1).sum(1)
    np.testing.assert_allclose(fitted.decision_function(test), expected.double().numpy(), rtol=1e-5)


def test_scores_do_not_depend_on_what_else_is_scored(fitted):
    test, _ = blobs(3, 30, 30)
    whole = fitted.decision_function(test)
    part = fitted.decision_function(test.subset(torch.arange(7, 19)))
    # The noise is shared by every image, not drawn per position: only float rounding of
    # batches of another size remains.
    np.testing.assert_allclose(part, whole[7:19], rtol=1e-5)
    np.testing.assert_array_equal(fitted.decision_function(test), whole)


def test_noise_level_is_read_when_scoring(fitted):
    test, _ = blobs(4, 5, 5)
    before = fitted.decision_function(test)
    fitted.set_params(noise_level=0.2)
    try:
        changed = fitted.decision_function(test)
    finally:
        fitted.set_params(noise_level=0.5)
    assert not np.allclose(before, changed)
    np.testing.assert_array_equal(fitted.decision_function(test), before)


def test_local_max_z_map_and_pixel_scores_in_the_protocol(fitted):
    train, _ = blobs(0, 40, 0)
    test, masks = blobs(5, 10, 10)
    det = DDPMAnomalyDetector(
        ddpm=fitted.ddpm, noise_level=0.5, denoise_steps=5, reduction="local-max-z", window=3
    )
    record = evaluate_one_class(det, train, test, "normal", seed=0, test_masks=masks)
    assert 0.5 < record["pixel_auroc"] <= 1 and 0 <= record["region_overlap"] <= 1
    fitted_again = det.set_params(seed=0).fit(train)
    assert fitted_again.residual_std_.shape == (1, 6, 6)
    # The local reductions' score is the maximum of the (window-averaged) map.
    maps = fitted_again.anomaly_map(test.images)
    np.testing.assert_allclose(
        maps.flatten(1).amax(1).double().numpy(), fitted_again.decision_function(test), rtol=1e-5
    )


def test_vae_elbo_has_no_map_and_the_protocol_skips_it():
    train, _ = blobs(0, 40, 0)
    test, masks = blobs(6, 10, 10)
    tiny = {"epochs": 2, "latent_dim": 2, "hidden_dims": (16,), "device": "cpu"}
    elbo = create_detector("vae", score="elbo", **tiny)
    record = evaluate_one_class(elbo, train, test, "normal", seed=0, test_masks=masks)
    assert "pixel_auroc" not in record
    with pytest.raises(InvalidParameterError, match="no anomaly map"):
        elbo.set_params(seed=0).fit(train).anomaly_map(test)
    rec = create_detector("vae", **tiny)
    record = evaluate_one_class(rec, train, test, "normal", seed=0, test_masks=masks)
    assert 0 <= record["pixel_auroc"] <= 1


def test_bad_settings_are_refused_before_training():
    train, _ = blobs(0, 20, 0)
    tiny = dict(MLP, epochs=1)
    # 0.1 of 99 steps is step 10: 11 steps down at most.
    with pytest.raises(InvalidParameterError, match="denoise_steps=12 exceeds the 11 steps"):
        create_detector("ddpm", noise_level=0.1, denoise_steps=12, **tiny).fit(train)
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(InvalidParameterError, match="noise_level"):
            create_detector("ddpm", noise_level=bad, **tiny).fit(train)
    with pytest.raises(InvalidParameterError, match="n_draws"):
        create_detector("ddpm", n_draws=0, **tiny).fit(train)
    with pytest.raises(InvalidParameterError, match="ddpm"):
        DDPMAnomalyDetector(ddpm="cvae").fit(train)
    features = ImageDataset(train.images.reshape(len(train), -1), train.labels)
    with pytest.raises(InvalidParameterError, match="local-max"):
        create_detector("ddpm", reduction="local-max", **tiny).fit(features)


def test_composed_by_instance_and_feature_vectors():
    train, _ = blobs(0, 30, 0)
    template = DDPM(guidance=0.0, label_dropout=0.0, verbose=False, device="cpu", **MLP)
    det = DDPMAnomalyDetector(ddpm=template, seed=4, noise_level=0.5).fit(train)
    assert not template.is_fitted and det.ddpm_.seed == 4 and det.ddpm_.epochs == 60
    features = ImageDataset(train.images.reshape(len(train), -1), train.labels)
    flat = DDPMAnomalyDetector(ddpm=template, noise_level=0.5).fit(features)
    assert flat.decision_function(features).shape == (30,)
    with pytest.raises(InvalidParameterError, match="no anomaly map"):
        flat.anomaly_map(features.images)


def test_reconstruct_refuses_bad_arguments(fitted):
    x = torch.rand(3, 1, 6, 6)
    labels = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ShapeMismatchError, match="noise"):
        fitted.ddpm_.reconstruct(x, labels, start=10, noise=torch.randn(2, 1, 6, 6), steps=2)
    with pytest.raises(InvalidParameterError, match="start"):
        fitted.ddpm_.reconstruct(x, labels, start=100, noise=torch.randn_like(x), steps=2)
    with pytest.raises(InvalidParameterError, match="steps"):
        fitted.ddpm_.reconstruct(x, labels, start=3, noise=torch.randn_like(x), steps=5)
    assert fitted.ddpm_.reconstruct(x[:0], labels[:0], start=3, noise=x[:0], steps=2).shape == (
        0,
        1,
        6,
        6,
    )
