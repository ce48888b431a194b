"""LesionLocalizer's candidate cleaning: the score against normal images, the size and shape
priors, the first version's masks, parameter rules and seeding (tiny 32x32 images)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from scipy import ndimage

from synthaug.augment import CLEANED_LOCALIZER, LEGACY_LOCALIZER, LesionLocalizer
from synthaug.data import make_phantoms
from synthaug.errors import InvalidParameterError
from synthaug.generators import CVAE

SIZE = 32


def tiny_vae() -> CVAE:
    return CVAE(latent_dim=4, epochs=3, verbose=False)


def disc(cy: int, cx: int, r: float) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= r**2).float()


def flat(n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` flat mid-grey images with slight noise."""
    return 0.3 + 0.02 * torch.randn(n, 1, SIZE, SIZE, generator=gen)


@pytest.fixture(scope="module")
def vessels():
    """Normal images with a bright vertical line (a vessel) at a column that varies from image
    to image (6-14), and lesion images with that line at column 10 and a blob on the right,
    where normal images are flat."""
    gen = torch.Generator().manual_seed(0)
    normal = flat(90, gen)
    columns = torch.arange(90) % 9 + 6
    normal[torch.arange(90), 0, 4:28, columns] += 0.3
    lesion = flat(6, gen)
    lesion[:, 0, 4:28, 10] += 0.3
    blob = disc(16, 24, 3.0).bool()
    lesion[:, 0][:, blob] += 0.4
    line = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    line[4:28, 9:12] = True  # the line and the pixel either side the smoothing reaches
    return normal.clamp(0, 1), lesion.clamp(0, 1), blob, line


def test_a_line_the_normal_images_also_show_is_dropped_and_a_blob_kept(vessels):
    normal, lesion, blob, line = vessels
    # No shape prior: only the score against the normal images decides.
    localizer = LesionLocalizer(
        vae=tiny_vae(),
        min_score=5.0,
        fill_factor=0.0,
        area_factor=100.0,
        seed=0,
        device="cpu",
        **CLEANED_LOCALIZER,
    ).fit(normal)
    found = localizer.masks(lesion)[:, 0]
    # Without cleaning the line is taken as a lesion: cleaning is what drops it.
    uncleaned = localizer.set_params(cleaning="none").masks(lesion)[:, 0]
    assert (uncleaned & line).flatten(1).any(1).all()
    assert not (found & line).any()
    # The blob is kept, whole.
    hit = (found & blob).flatten(1).sum(1).float() / blob.sum()
    assert (hit > 0.8).all()
    # Where normal images vary (the line's band), the spread is many times the flat region's.
    assert float(localizer.spread_[16, 10]) > 4 * float(localizer.spread_[16, 24])


def test_the_size_prior_drops_a_region_unlike_the_confident_ones():
    gen = torch.Generator().manual_seed(1)
    normal = flat(60, gen)
    lesion = flat(6, gen)
    blob = disc(10, 10, 3.0).bool()
    lesion[:, 0][:, blob] += 0.4
    square = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    square[14:28, 14:28] = True  # 196 pixels against the blobs' 29
    lesion[0, 0][square] += 0.4
    lesion = lesion.clamp(0, 1)
    localizer = LesionLocalizer(vae=tiny_vae(), seed=0, device="cpu", **CLEANED_LOCALIZER)
    found = localizer.fit(normal).masks(lesion)[:, 0]
    assert not (found[0] & square).any()
    assert ((found & blob).flatten(1).sum(1) > 0.8 * blob.sum()).all()
    # The square scores as high as a blob: it is the prior, not the score, that drops it.
    assert (
        localizer.set_params(fill_factor=0.0, area_factor=100.0).masks(lesion)[0, 0] & square
    ).any()
    # With the priors off (the extreme quantiles, a wide factor) it stays.
    kept = localizer.set_params(prior_quantile=0.0, area_factor=10.0).masks(lesion)[0, 0]
    assert (kept & square).sum() > 0.8 * square.sum()


def first_version_masks(localizer: LesionLocalizer, images: torch.Tensor) -> torch.Tensor:
    """The first version's masks, written out: the residual above both the floor and 0.4 of
    the image's peak, regions under 3 pixels (4-connected) dropped."""
    residual = localizer.residual_map(images)
    peak = residual.flatten(1).amax(1).view(-1, 1, 1, 1)
    keep = (residual > torch.clamp(0.4 * peak, min=localizer.floor_)).numpy()
    for m in keep[:, 0]:
        labelled, n = ndimage.label(m)
        sizes = np.bincount(labelled.ravel(), minlength=n + 1)
        m[np.isin(labelled, np.flatnonzero(sizes < 3)[1:])] = False
    return torch.from_numpy(keep)


def test_the_legacy_setting_reproduces_the_first_versions_masks():
    data = make_phantoms((40, 6), size=SIZE, seed=4)
    normal, lesion = data.images[data.labels == 0], data.images[data.labels == 1]
    # The defaults are still the first version (the committed lesion grids used it).
    assert LEGACY_LOCALIZER.items() <= LesionLocalizer().get_params().items()
    legacy = LesionLocalizer(vae=tiny_vae(), seed=0, device="cpu", **LEGACY_LOCALIZER).fit(normal)
    found = legacy.masks(lesion)
    assert found.any()
    assert torch.equal(found, first_version_masks(legacy, lesion))
    # The floor is the first version's too: the 99% quantile of the 1.5-pixel smoothed map.
    on_normal = legacy.residual_map(normal).numpy()
    assert legacy.floor_ == float(np.quantile(on_normal, 0.99))


def test_same_seed_same_masks():
    data = make_phantoms((40, 6), size=SIZE, seed=5)
    normal, lesion = data.images[data.labels == 0], data.images[data.labels == 1]
    for preset in (CLEANED_LOCALIZER, {}):
        a = LesionLocalizer(vae=tiny_vae(), seed=3, device="cpu", **preset).fit(normal)
        b = LesionLocalizer(vae=tiny_vae(), seed=3, device="cpu", **preset).fit(normal)
        assert a.masks(lesion).any() and torch.equal(a.masks(lesion), b.masks(lesion))


def test_an_image_without_candidates_gets_an_empty_mask():
    gen = torch.Generator().manual_seed(2)
    normal = flat(40, gen)
    localizer = LesionLocalizer(vae=tiny_vae(), seed=0, device="cpu").fit(normal)
    # Darker than anything normal: no positive residual anywhere.
    found = localizer.masks(torch.full((2, 1, SIZE, SIZE), 0.05))
    assert found.shape == (2, 1, SIZE, SIZE) and not found.any()


@pytest.mark.parametrize(
    "params, name, rule",
    [
        ({"cleaning": "all"}, "cleaning", "one of 'components', 'none'"),
        ({"min_score": -1.0}, "min_score", "a number in [0, inf)"),
        ({"prior_quantile": 0.6}, "prior_quantile", "a number in [0, 0.5]"),
        ({"area_factor": 0.5}, "area_factor", "a number in [1, inf)"),
        ({"fill_factor": 1.5}, "fill_factor", "a number in [0, 1]"),
        ({"min_score": "high"}, "min_score", "a number in [0, inf)"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " not in v else None,
)
def test_bad_cleaning_parameters_name_the_parameter_and_its_rule(params, name, rule):
    pattern = rf"^LesionLocalizer: parameter {name}=.* it must be {re.escape(rule)}"
    with pytest.raises(InvalidParameterError, match=pattern):
        LesionLocalizer(**params).check_params()
    # fit refuses them before it trains anything.
    with pytest.raises(InvalidParameterError, match=pattern):
        LesionLocalizer(**params).fit(torch.rand(4, 1, 16, 16))
