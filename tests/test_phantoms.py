"""Procedural CT/MR-like phantoms."""

import pytest
import torch

from synthaug.data import make_phantoms
from synthaug.errors import InvalidParameterError


@pytest.mark.parametrize("kind", ["chest", "brain"])
def test_shapes_classes_range_and_metadata(kind):
    ds = make_phantoms((5, 3), size=32, kind=kind, seed=0)
    assert ds.classes == ["normal", "lesion"]
    assert ds.class_counts() == {0: 5, 1: 3}
    assert ds.sample_shape == (1, 32, 32)
    assert ds.images.min() >= 0 and ds.images.max() <= 1
    assert all(m["n_lesions"] == 0 for m in ds.metadata[:5])
    assert all(1 <= m["n_lesions"] <= 3 for m in ds.metadata[5:])
    assert all(len(m["lesion_radii"]) == m["n_lesions"] for m in ds.metadata)


def test_same_seed_same_images_other_seed_other_anatomy():
    a = make_phantoms(4, size=24, seed=3)
    b = make_phantoms(4, size=24, seed=3)
    c = make_phantoms(4, size=24, seed=4)
    torch.testing.assert_close(a.images, b.images)
    assert not torch.allclose(a.images, c.images)
    # Anatomy varies inside one call too.
    assert (a.images[0] - a.images[1]).abs().mean() > 0.01


def test_anatomy_is_recognisable():
    chest = make_phantoms(20, size=64, kind="chest", seed=0, noise=0.0).images[:20, 0]
    # Air outside the body is dark, the lungs are dark inside a brighter body, the spine is bright.
    assert chest[:, :4, :].mean() < 0.05
    centre_row = chest[:, 28:36, :]
    assert centre_row[:, :, 14:22].mean() < centre_row[:, :, 28:36].mean() - 0.2
    assert chest.amax(dim=(1, 2)).min() > 0.8
    brain = make_phantoms(20, size=64, kind="brain", seed=0, noise=0.0).images[:20, 0]
    assert brain[:, 24:40, 24:40].mean() > 0.3 and brain[:, :2, :2].mean() < 0.05


def test_lesions_add_signal_and_their_ranges_grade_difficulty():
    kw = dict(size=48, kind="brain", seed=1, noise=0.0)
    normal = make_phantoms({"normal": 30}, **kw)
    # Same seed: the lesion images use the same random stream for anatomy as normal ones only
    # when their index matches, so compare on one call with both classes instead.
    both = make_phantoms((30, 30), **kw, lesion_contrast=(0.4, 0.45), lesion_radius=(0.06, 0.08))
    faint = make_phantoms((30, 30), **kw, lesion_contrast=(0.05, 0.06), lesion_radius=(0.02, 0.025))
    strong_gap = (
        both.images[30:].amax(dim=(1, 2, 3)).mean() - both.images[:30].amax(dim=(1, 2, 3)).mean()
    )
    faint_gap = (
        faint.images[30:].amax(dim=(1, 2, 3)).mean() - faint.images[:30].amax(dim=(1, 2, 3)).mean()
    )
    assert strong_gap > faint_gap
    assert len(normal) == 30 and normal.class_counts() == {0: 30, 1: 0}
    radii = [r for m in both.metadata for r in m["lesion_radii"]]
    assert radii and all(0.06 <= r <= 0.08 for r in radii)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_per_class=-1),
        dict(n_per_class=0),
        dict(n_per_class=(1, 2, 3)),
        dict(n_per_class={"tumour": 3}),
        dict(n_per_class=2.5),
        dict(n_per_class=2, size=8),
        dict(n_per_class=2, kind="knee"),
        dict(n_per_class=2, lesion_radius=(0.2, 0.1)),
        dict(n_per_class=2, lesion_contrast=(0.1, 2.0)),
        dict(n_per_class=2, max_lesions=0),
        dict(n_per_class=2, noise=-0.1),
    ],
)
def test_bad_parameters(kwargs):
    with pytest.raises(InvalidParameterError):
        make_phantoms(**kwargs)
