"""DRAEM and CutPaste: detectors trained on simulated anomalies (the contract suite in
test_anomaly.py covers fit/score/predict, seeds and clones); their anomaly simulation, the
anomaly map, its pictures and the localisation scores."""

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from synthaug.anomaly import (
    CutPasteDetector,
    DRAEMDetector,
    pixel_auroc,
    region_overlap,
    save_map_overlays,
)
from synthaug.anomaly._simulate import cutpaste, noise_masks, shifted, simulate_anomalies
from synthaug.augment import CopyPaste
from synthaug.data import ImageDataset, make_phantoms
from synthaug.errors import (
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
    TrainingDivergedError,
)


def _normals(n: int, size: int, seed: int) -> torch.Tensor:
    """Smooth dark images with a mid-grey horizontal band and a vertical bar: every normal
    image is alike."""
    g = torch.Generator().manual_seed(seed)
    x = 0.05 * torch.rand(n, 1, size, size, generator=g)
    x[:, :, size // 3 : size // 2, :] += 0.35
    x[:, :, :, size // 4 : size // 4 + 2] += 0.3
    return x


@pytest.fixture(scope="module")
def fitted_draem(one_torch_thread_module):
    train = _normals(64, 16, seed=0)
    data = ImageDataset(train, torch.zeros(len(train), dtype=torch.int64))
    return DRAEMDetector(
        steps=250, width=8, batch_size=16, noise_cells=(2, 4), device="cpu", seed=0
    ).fit(data)


@pytest.fixture(scope="module")
def one_torch_thread_module():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_pasted_bright_blob_lights_up_the_map_at_its_place(fitted_draem):
    test = _normals(12, 16, seed=1)
    blob = torch.zeros(12, 1, 16, 16, dtype=torch.bool)
    # Six images get a bright 3x3 blob, each somewhere else; six stay normal.
    places = [(1, 1), (11, 3), (12, 12), (2, 10), (9, 6), (13, 1)]
    for i, (r, c) in enumerate(places):
        blob[i, :, r : r + 3, c : c + 3] = True
    test = torch.where(blob, torch.full_like(test, 0.95), test)
    maps = fitted_draem.anomaly_map(test)
    assert maps.shape == (12, 1, 16, 16) and 0 <= float(maps.min()) and float(maps.max()) <= 1
    for i, (r, c) in enumerate(places):
        peak = int(maps[i, 0].flatten().argmax())
        pr, pc = divmod(peak, 16)
        # The map's peak sits on the blob (within a pixel of it: the map is smoothed).
        assert r - 1 <= pr <= r + 3 and c - 1 <= pc <= c + 3, (i, (pr, pc), (r, c))
    scores = fitted_draem.decision_function(ImageDataset(test, torch.zeros(12, dtype=torch.int64)))
    # The score is the maximum of the smoothed map, and the blobs outscore the normals.
    np.testing.assert_allclose(scores, maps.flatten(1).amax(1).double().numpy(), rtol=1e-6)
    assert scores[:6].min() > scores[6:].max()
    assert pixel_auroc(maps, blob) > 0.95
    assert region_overlap(maps, blob) > 0.8


def test_anomaly_map_refuses_wrong_input(fitted_draem):
    with pytest.raises(ShapeMismatchError, match=r"training samples \(1, 16, 16\), got \(2, 1, 8"):
        fitted_draem.anomaly_map(torch.rand(2, 1, 8, 8))
    with pytest.raises(ShapeMismatchError, match=r"\(N, C, H, W\)"):
        fitted_draem.anomaly_map(torch.rand(2, 16, 16))
    with pytest.raises(InvalidDataError, match="NaN"):
        fitted_draem.anomaly_map(torch.full((1, 1, 16, 16), float("nan")))


def test_map_overlays_are_written(fitted_draem, tmp_path):
    test = _normals(5, 16, seed=2)
    masks = torch.zeros(5, 1, 16, 16, dtype=torch.bool)
    masks[0, :, 2:5, 2:5] = True
    test[masks] = 0.95
    path = save_map_overlays(
        tmp_path / "maps.png",
        test,
        fitted_draem.anomaly_map(test),
        masks=masks,
        titles=list("abcde"),
    )
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100
    rgb = save_map_overlays(tmp_path / "rgb.png", test.repeat(1, 3, 1, 1), torch.rand(5, 1, 16, 16))
    assert rgb.exists()
    with pytest.raises(ShapeMismatchError):
        save_map_overlays(tmp_path / "bad.png", test, torch.rand(4, 1, 16, 16))


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 12, 20), (3, 128, 128)])
def test_draem_and_cutpaste_fit_grayscale_and_rgb_sizes(shape, one_torch_thread_module):
    images = torch.rand(6, *shape, generator=torch.Generator().manual_seed(0))
    data = ImageDataset(images, torch.zeros(6, dtype=torch.int64))
    for det in (
        DRAEMDetector(steps=2, width=2, batch_size=2, device="cpu"),
        CutPasteDetector(steps=2, width=2, batch_size=2, device="cpu"),
    ):
        scores = det.fit(data).decision_function(data)
        assert scores.shape == (6,) and np.isfinite(scores).all()
    assert tuple(det.sample_shape_) == shape


@pytest.mark.parametrize("cls", [DRAEMDetector, CutPasteDetector])
def test_a_non_finite_loss_stops_training_with_a_clear_error(cls, one_torch_thread_module):
    # Adam's steps are about lr in size: at 1e30 the weights overflow within a few steps.
    data = ImageDataset(_normals(8, 8, seed=0), torch.zeros(8, dtype=torch.int64))
    det = cls(steps=4, width=2, batch_size=4, lr=1e30, device="cpu", seed=0)
    with pytest.raises(TrainingDivergedError, match=f"{cls.__name__}: training diverged by step 4"):
        det.fit(data)
    assert not det.is_fitted


def test_feature_vectors_and_bad_parameters_are_refused():
    vectors = ImageDataset(torch.rand(10, 5), torch.zeros(10, dtype=torch.int64))
    for det in (DRAEMDetector(steps=1, device="cpu"), CutPasteDetector(steps=1, device="cpu")):
        with pytest.raises(InvalidDataError, match="pca, knn"):
            det.fit(vectors)
    with pytest.raises(
        InvalidParameterError, match="smoothing=4 is invalid; it must be an odd integer"
    ):
        DRAEMDetector(smoothing=4).check_params()
    with pytest.raises(InvalidParameterError, match="anomaly_area"):
        DRAEMDetector(anomaly_area=(0.5, 0.1)).check_params()
    with pytest.raises(InvalidParameterError, match="noise_cells"):
        DRAEMDetector(noise_cells=()).check_params()
    with pytest.raises(InvalidParameterError, match="variant"):
        CutPasteDetector(variant="4way").check_params()


def test_cutpaste_learns_its_pretext_task_and_flags_pasted_patches(one_torch_thread_module):
    g = torch.Generator().manual_seed(0)
    train = _normals(64, 16, seed=3)
    det = CutPasteDetector(steps=200, width=8, batch_size=16, device="cpu", seed=0)
    det.fit(ImageDataset(train, torch.zeros(64, dtype=torch.int64)))
    assert [r["steps"] for r in det.history_] == [50, 100, 150, 200]
    assert {"loss", "accuracy"} <= set(det.history_[-1])
    normal = _normals(40, 16, seed=4)
    pasted, masks = cutpaste(normal, g, scar=False, area=(0.1, 0.2))
    test = ImageDataset(torch.cat([normal, pasted]), torch.zeros(80, dtype=torch.int64))
    scores = det.decision_function(test)
    assert roc_auc_score(np.r_[np.zeros(40), np.ones(40)], scores) > 0.9


def test_simulation_is_batched_seeded_and_shaped():
    images = torch.rand(32, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    masks = noise_masks(32, 16, 16, (2, 4), (0.05, 0.1), torch.Generator().manual_seed(1), "cpu")
    area = masks.mean((1, 2, 3))
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert float(area.min()) >= 0.05 - 1e-6 and float(area.max()) <= 0.1 + 2 / 256
    moved = shifted(images, torch.full((32,), 2), torch.full((32,), -3))
    torch.testing.assert_close(moved, torch.roll(images, shifts=(-2, 3), dims=(2, 3)))
    for texture in ("all", "noise", "image", "offset"):
        kwargs = dict(
            cells=(2, 4), area=(0.05, 0.2), texture=texture, opacity=(0.0, 0.5), probability=0.5
        )
        a, ma = simulate_anomalies(images, torch.Generator().manual_seed(5), **kwargs)
        b, mb = simulate_anomalies(images, torch.Generator().manual_seed(5), **kwargs)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(ma, mb)
        # Pixels outside the target mask are untouched or changed by no more than min_change.
        assert float(((a - images).abs() * (1 - ma)).max()) <= 0.02 + 1e-6
        assert 0 < float(ma.amax((1, 2, 3)).sum()) < 32
    # Softened edges: the blend fades out around the mask, the target keeps its core.
    kwargs = dict(cells=(2, 4), area=(0.1, 0.2), texture="offset", opacity=(0.0, 0.0))
    hard, hard_mask = simulate_anomalies(
        images, torch.Generator().manual_seed(6), probability=1.0, **kwargs
    )
    soft, soft_mask = simulate_anomalies(
        images, torch.Generator().manual_seed(6), probability=1.0, edge_blur=2, **kwargs
    )
    ring = (hard_mask == 0) & ((soft - images).abs() > 0.05)
    assert ring.any() and float(soft_mask.sum()) <= float(hard_mask.sum()) + 1
    for scar in (False, True):
        out, m = cutpaste(images, torch.Generator().manual_seed(2), scar=scar)
        assert (m.flatten(1).sum(1) >= 1).all()
        torch.testing.assert_close(out * (1 - m), images * (1 - m))


def test_localisation_scores():
    masks = torch.zeros(4, 1, 8, 8, dtype=torch.bool)
    masks[0, :, 1:3, 1:3] = True
    masks[1, :, 5:7, 5:7] = True
    perfect = masks.float()
    assert pixel_auroc(perfect, masks) == 1.0
    assert region_overlap(perfect, masks) == pytest.approx(1.0, abs=0.02)
    # Finding one of two regions halves the overlap, though most lesion pixels may be found.
    half = perfect.clone()
    half[1] = 0
    assert region_overlap(half, masks) == pytest.approx(0.5, abs=0.05)
    noise = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert region_overlap(noise, masks) < 0.4
    assert np.isnan(pixel_auroc(noise, torch.zeros_like(masks)))


def test_outlier_exposure_trains_on_a_fitted_lesion_source(one_torch_thread_module):
    data, masks = make_phantoms({"normal": 16, "lesion": 6}, size=32, seed=0, return_masks=True)
    source = CopyPaste(seed=0).fit(data, masks=masks)
    normal = data.subset((data.labels == 0).nonzero().flatten())
    settings = dict(steps=15, width=4, batch_size=8, device="cpu", seed=0)
    plain = DRAEMDetector(**settings).fit(normal).decision_function(data)
    exposed = DRAEMDetector(anomaly_source=source, n_exposure=16, **settings)
    first = exposed.fit(normal).decision_function(data)
    again = DRAEMDetector(anomaly_source=source, n_exposure=16, **settings)
    # The source's lesions join the batches: the detector trains differently, and the same
    # seed still gives the same detector.
    assert not np.allclose(plain, first)
    np.testing.assert_array_equal(first, again.fit(normal).decision_function(data))
    with pytest.raises(InvalidParameterError, match="not fitted"):
        DRAEMDetector(anomaly_source=CopyPaste(), **settings).fit(normal)
    small = ImageDataset(normal.images[:, :, :16, :16], normal.labels, normal.classes)
    with pytest.raises(ShapeMismatchError, match="anomaly_source makes images"):
        DRAEMDetector(anomaly_source=source, **settings).fit(small)
