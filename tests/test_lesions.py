"""Lesion-level augmentation: phantom masks, weak localisation, copy-paste, transplants."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from synthaug.augment import (
    SOURCES,
    AugmentedDataset,
    CopyPaste,
    GenerativeOverSampler,
    LesionLocalizer,
    LesionTransplant,
    body_masks,
)
from synthaug.data import ImageDataset, make_phantoms
from synthaug.errors import (
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
    UnknownClassError,
)
from synthaug.generators import CVAE
from synthaug.metrics import binary_scores

# Easy lesions: big and bright, so a few seconds of training find them.
EASY = {"lesion_radius": (0.07, 0.09), "lesion_contrast": (0.35, 0.45)}


@pytest.fixture(scope="module")
def chest():
    """60 normal and 6 lesion 32x32 chest slices with their true masks."""
    return make_phantoms((60, 6), size=32, seed=3, return_masks=True, **EASY)


@pytest.fixture(scope="module")
def clean_chest():
    """Noise-free 64x64 slices (air is exactly 0) with their true masks."""
    return make_phantoms((8, 4), size=64, seed=5, noise=0.0, return_masks=True)


def dice(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.flatten(1), b.flatten(1)
    return 2 * (a & b).sum(1).float() / (a.sum(1) + b.sum(1)).clamp(min=1).float()


def background_of(image: torch.Tensor, mask: torch.Tensor, backgrounds: torch.Tensor, reach: int):
    """The index of the background ``image`` equals outside ``mask`` dilated by ``reach``."""
    outside = ~(F.max_pool2d(mask.float()[None], 2 * reach + 1, 1, reach)[0] > 0)
    same = [(image - bg)[outside.expand_as(image)].abs().max() == 0 for bg in backgrounds]
    return int(np.flatnonzero(same)[0]) if any(same) else None


# -- make_phantoms(return_masks=True) ---------------------------------------------------------
def test_phantom_masks_mark_the_lesions_and_leave_the_images_unchanged(chest):
    data, masks = chest
    plain = make_phantoms((60, 6), size=32, seed=3, **EASY)
    assert torch.equal(data.images, plain.images)
    assert masks.shape == (66, 1, 32, 32) and masks.dtype == torch.bool
    assert not masks[data.labels == 0].any()
    assert masks[data.labels == 1].flatten(1).any(1).all()
    # A lesion is brighter than the tissue just around it.
    for image, mask in zip(data.images[data.labels == 1], masks[data.labels == 1], strict=True):
        ring = ndimage.binary_dilation(mask[0].numpy(), iterations=3) & ~ndimage.binary_dilation(
            mask[0].numpy()
        )
        assert image[0][mask[0]].mean() > image[0][torch.from_numpy(ring)].mean() + 0.1


# -- weak localisation ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def localizer(chest):
    data, _ = chest
    vae = CVAE(latent_dim=8, epochs=60, verbose=False)
    return LesionLocalizer(vae=vae, seed=0, device="cpu").fit(data.images[data.labels == 0])


def test_weak_masks_from_image_labels_overlap_the_true_lesions(chest, localizer):
    data, true = chest
    found = localizer.masks(data.images[data.labels == 1])
    assert found.shape == (6, 1, 32, 32) and found.dtype == torch.bool
    assert float(dice(found, true[data.labels == 1]).mean()) > 0.5
    # The floor is the 99% quantile of the normal training maps: about 1% of their pixels
    # lie above it, against several times that on lesion images.
    normal = localizer.masks(data.images[data.labels == 0])
    assert float(normal.float().mean()) <= 2 * (1 - localizer.floor_quantile)
    assert float(found.float().mean()) > 3 * float(normal.float().mean())


def test_localizer_refuses_bad_input(localizer):
    with pytest.raises(InvalidDataError, match="at least 2 normal images"):
        LesionLocalizer().fit(torch.rand(1, 1, 16, 16))
    with pytest.raises(ShapeMismatchError, match="N, C, H, W"):
        LesionLocalizer().fit(torch.rand(4, 16, 16))
    with pytest.raises(InvalidDataError, match="NaN"):
        LesionLocalizer().fit(torch.full((4, 1, 16, 16), float("nan")))
    with pytest.raises(ShapeMismatchError, match="learned"):
        localizer.masks(torch.rand(2, 1, 16, 16))
    with pytest.raises(NotFittedError):
        LesionLocalizer().masks(torch.rand(2, 1, 16, 16))


# -- copy-paste -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pasted(clean_chest):
    data, masks = clean_chest
    source = CopyPaste(device="cpu").fit(data, masks=masks)
    images, labels, out = source.sample(40, y="lesion", seed=1, return_masks=True)
    return source, images, labels, out


def test_copy_paste_changes_a_normal_image_only_inside_the_dilated_mask(clean_chest, pasted):
    data, _ = clean_chest
    source, images, labels, masks = pasted
    assert images.shape == (40, 1, 64, 64) and images.dtype == torch.float32
    assert labels.tolist() == [1] * 40 and masks.shape == (40, 1, 64, 64)
    assert masks.flatten(1).any(1).all()  # every synthetic image carries a lesion
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    normal = data.images[data.labels == 0]
    # Two pixels of blend, widened by the jitter's scale (up to 1.2) and bilinear resampling.
    for image, mask in zip(images, masks, strict=True):
        assert background_of(image, mask, normal, reach=5) is not None


def test_copy_paste_places_lesions_inside_the_body_and_in_lung_tissue(clean_chest, pasted):
    data, _ = clean_chest
    _, images, _, masks = pasted
    normal = data.images[data.labels == 0]
    body = body_masks(normal, threshold=0.02)
    in_lung = []
    for image, mask in zip(images, masks, strict=True):
        b = background_of(image, mask, normal, reach=5)
        assert bool(body[b][mask].all()), "a lesion pixel lies outside the body"
        # Noise-free chest slices: lungs are below 0.25, soft tissue above 0.3.
        in_lung.append(float((normal[b][mask] < 0.25).float().mean()))
    assert np.mean(in_lung) > 0.9


def test_copy_paste_is_deterministic_per_seed(pasted):
    source, images, _, masks = pasted
    again, _, masks_again = source.sample(40, y=1, seed=1, return_masks=True)
    assert torch.equal(images, again) and torch.equal(masks, masks_again)
    other, _ = source.sample(40, y=1, seed=2)
    assert not torch.equal(images, other)


def test_copy_paste_keeps_the_noise_of_the_background(chest):
    # Pasting what a lesion adds, not its pixels: the background's own noise runs through it,
    # and the source's noise does not come along (no second noise field, no seam).
    data, masks = chest
    source = CopyPaste(device="cpu").fit(data, masks=masks)
    images, _, out = source.sample(30, y=1, seed=0, return_masks=True)
    normal = data.images[data.labels == 0]

    def detail(x):  # what a 3x3 mean does not explain: the noise
        return x - F.avg_pool2d(x[None], 3, 1, 1, count_include_pad=False)[0]

    added_detail, noise_detail, added = [], [], []
    for image, mask in zip(images, out, strict=True):
        bg = normal[background_of(image, mask, normal, reach=5)]
        inside = mask.expand_as(image)
        added.append((image - bg)[inside])
        added_detail.append(detail(image - bg)[inside])
        noise_detail.append(detail(bg)[inside])
    assert float(torch.cat(added).mean()) > 0.1  # a lesion was added
    ratio = torch.cat(added_detail).std() / torch.cat(noise_detail).std()
    assert float(ratio) < 0.5


def test_augmented_dataset_exposes_every_items_mask(chest):
    data, masks = chest
    source = CopyPaste(device="cpu").fit(data, masks=masks)
    aug = AugmentedDataset(data, source, seed=0)
    assert aug.masks.shape == (len(aug), 1, 32, 32)
    assert torch.equal(aug.masks[: len(data)], masks & (data.labels == 1).view(-1, 1, 1, 1))
    assert aug.synthetic_masks.shape == (len(aug) - len(data), 1, 32, 32)
    assert aug.synthetic_masks.flatten(1).any(1).all()
    # A source fitted on other data knows no masks for these real items.
    other = AugmentedDataset(data.subset(np.arange(len(data))), source, seed=0)
    assert other.masks is None and other.synthetic_masks is not None


def test_copy_paste_localises_the_lesions_itself_without_masks(chest, localizer):
    data, true = chest
    source = CopyPaste(localizer=localizer, device="cpu").fit(data)
    assert source.localizer_ is localizer  # a fitted localizer is used as it is
    lesion = data.labels == 1
    assert float(dice(source.training_masks_[lesion], true[lesion]).mean()) > 0.5
    images, _ = source.sample(5, y="lesion", seed=0)
    assert images.shape == (5, 1, 32, 32)


def test_lesion_sources_refuse_bad_input(chest):
    data, masks = chest
    lesion = torch.nonzero(data.labels == 1).flatten()
    normal = torch.nonzero(data.labels == 0).flatten()
    one_lesion = data.subset(torch.cat([normal, lesion[:1]]).numpy())
    with pytest.raises(InvalidDataError, match="at least 2"):
        CopyPaste().fit(one_lesion, masks=masks[torch.cat([normal, lesion[:1]])])
    no_normal = ImageDataset(data.images[lesion], torch.ones(6, dtype=torch.int64), data.classes)
    with pytest.raises(InvalidDataError, match="normal"):
        CopyPaste().fit(no_normal, masks=masks[lesion])
    with pytest.raises(ShapeMismatchError, match="one per image"):
        CopyPaste().fit(data, masks=masks[:10])
    with pytest.raises(ShapeMismatchError, match="one per image"):
        CopyPaste().fit(data, masks=masks[..., :16])
    with pytest.raises(InvalidDataError, match="only 0 and 1"):
        CopyPaste().fit(data, masks=masks.float() * 0.5)
    with pytest.raises(InvalidDataError, match="no lesion found"):
        CopyPaste().fit(data, masks=torch.zeros_like(masks))
    with pytest.raises(UnknownClassError, match="normal_class"):
        CopyPaste(normal_class="healthy").fit(data, masks=masks)
    with pytest.raises(EmptyDatasetError):
        CopyPaste().fit(data.subset([]))
    nan = ImageDataset(data.images.clone(), data.labels, data.classes)
    nan.images[0, 0, 0, 0] = float("nan")
    with pytest.raises(InvalidDataError, match="NaN"):
        CopyPaste().fit(nan, masks=masks)
    source = CopyPaste().fit(data, masks=masks)
    with pytest.raises(InvalidParameterError, match="normal class"):
        source.sample(3, y="normal")
    with pytest.raises(InvalidParameterError, match="positive integer"):
        source.sample(0, y="lesion")
    with pytest.raises(NotFittedError):
        CopyPaste().sample(3, y=1)
    with pytest.raises(
        InvalidParameterError,
        match=re.escape(
            "scale=(2.0, 1.0) is invalid; it must be a pair (low, high) with 0.25 <= low <= "
            "high <= 4.0"
        ),
    ):
        CopyPaste(scale=(2.0, 1.0)).fit(data, masks=masks)


@pytest.mark.parametrize(
    "estimator, name, rule",
    [
        (LesionLocalizer(vae="cvae"), "vae", "None or a CVAE"),
        (LesionLocalizer(sigma=-1.0), "sigma", "a number in [0, inf)"),
        (LesionLocalizer(floor_quantile=1.5), "floor_quantile", "a number in [0, 1]"),
        (LesionLocalizer(min_area=0), "min_area", "an integer in [1, inf)"),
        (LesionLocalizer(device="gpu"), "device", "'auto', 'cpu', 'cuda' or 'cuda:N'"),
        (CopyPaste(normal_class=1.5), "normal_class", "a class name or label"),
        (CopyPaste(normal_class=True), "normal_class", "a class name or label"),
        (CopyPaste(localizer=CVAE()), "localizer", "None or a LesionLocalizer"),
        (CopyPaste(rotate=1), "rotate", "True or False"),
        (
            CopyPaste(intensity=(0.5, 5.0)),
            "intensity",
            "a pair (low, high) with 0.0 <= low <= high <= 4.0",
        ),
        (CopyPaste(tissue_tolerance=0), "tissue_tolerance", "a number in (0, inf)"),
        (CopyPaste(max_lesion_size=0.0), "max_lesion_size", "a number in (0, 1]"),
        (CopyPaste(seed=-1), "seed", "None or an integer in [0, 2**64 - 1]"),
        (
            LesionTransplant(generator="cgan"),
            "generator",
            "None or a generator (with fit and sample)",
        ),
        (LesionTransplant(min_lesion_area=0), "min_lesion_area", "an integer in [1, inf)"),
        (LesionTransplant(scale=(0.1, 1.0)), "scale", "a pair (low, high) with 0.25 <= low"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " not in v else None,
)
def test_bad_parameters_name_the_parameter_and_its_rule(estimator, name, rule):
    owner = type(estimator).__name__
    with pytest.raises(
        InvalidParameterError, match=rf"^{owner}: parameter {name}=.* it must be {re.escape(rule)}"
    ):
        estimator.check_params()


def test_a_source_that_only_inherits_its_parameters_documents_them():
    doc = CopyPaste.__doc__
    assert doc.index("Parameters\n----------") < doc.index("Attributes\n----------")
    for name in CopyPaste.parameters():
        assert f"\n{name} : " in doc
    assert "scale : (float, float), default=(0.85, 1.2)" in doc


# -- lesion transplant ------------------------------------------------------------------------
def test_lesion_transplant_generates_new_lesions_with_masks(chest, one_torch_thread):
    data, masks = chest
    source = LesionTransplant(generator=CVAE(epochs=20, verbose=False), device="cpu", seed=0)
    source.fit(data, masks=masks)
    images, labels, out = source.sample(12, y="lesion", seed=4, return_masks=True)
    assert images.shape == (12, 1, 32, 32) and labels.tolist() == [1] * 12
    assert out.flatten(1).any(1).all()
    assert source.generator_.is_fitted and source.stores_training_images
    again, _, out_again = source.sample(12, y="lesion", seed=4, return_masks=True)
    assert torch.equal(images, again) and torch.equal(out, out_again)
    # What is pasted is generated, not a copy of a real patch.
    normal = data.images[data.labels == 0]
    added = []
    for image, mask in zip(images, out, strict=True):
        b = background_of(image, mask, normal, reach=5)
        assert b is not None
        added.append(image - normal[b])
    assert len(added) == 12


def test_lesion_sources_are_registered_and_build_their_generator():
    assert {"copy-paste", "lesion-transplant", "lesion-transplant-cvae"} <= set(SOURCES.list())
    source = SOURCES.create("lesion-transplant", epochs=7)
    assert isinstance(source, LesionTransplant) and source.generator.epochs == 7
    assert SOURCES.create("lesion-transplant-cvae").generator.__class__ is CVAE


# -- sensitivity at a fixed specificity -------------------------------------------------------
def test_sensitivity_at_90_percent_specificity():
    negatives = np.linspace(0.0, 0.9, 10)  # the 90% cut is 0.8: only 0.9 lies above it
    positives = np.array([0.95, 0.85, 0.5, 0.1])
    y = np.r_[np.zeros(10), np.ones(4)]
    s = binary_scores(y, np.r_[negatives, positives])
    assert s["sensitivity_at_90_specificity"] == 0.5


def test_copy_paste_in_an_imbalanced_learn_pipeline(chest, localizer):
    data, _ = chest
    x, y = data.images.reshape(len(data), -1).numpy(), data.labels.numpy()
    sampler = GenerativeOverSampler(
        CopyPaste(normal_class=0, localizer=localizer, device="cpu"), image_shape=(1, 32, 32)
    )
    x_new, y_new = sampler.fit_resample(x, y)
    assert x_new.shape == (120, 32 * 32) and (y_new == 1).sum() == 60
    assert np.isfinite(x_new).all() and x_new.min() >= 0 and x_new.max() <= 1
