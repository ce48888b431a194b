"""Per-sample provenance: what every source says each sample is made of, checked against the
pixels; AugmentedDataset's record of every item; a source written outside synthaug."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator

import synthaug
from synthaug.augment import (
    SOURCES,
    AugmentedDataset,
    ClassicalAugmentation,
    CopyPaste,
    LesionTransplant,
    MixedSource,
    RandomOverSampling,
    SMOTESource,
    default_classical_transform,
    sample_with_provenance,
)
from synthaug.data import (
    ImageDataset,
    Provenance,
    SourceItem,
    made_from,
    make_phantoms,
    sample_origin,
)
from synthaug.errors import InvalidParameterError, ShapeMismatchError
from synthaug.generators import CVAE, DAGAN, GENERATORS, PerClass

# The families whose every sample is a network's variant of stored training images: derived
# from patient images, whatever the network does to them (docs/medical.md says why per family).
EXEMPLAR_FAMILIES = {"dagan", "deepsmote", "delta-transfer"}


# -- the record itself ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, match",
    [
        (("copied", "x"), "origin must be one of"),
        (("synthetic", "x", (SourceItem(0, "image"),)), "made from no training item"),
        (("synthetic", "x", (), ("pixel-addition",)), "made from no training item"),
        (("derived", "x", (SourceItem(0, "donor"),)), "role must be one of"),
        (("derived", "x", (), ("blur",)), "operations must be among"),
    ],
)
def test_a_provenance_record_refuses_what_cannot_be_true(args, match):
    with pytest.raises(InvalidParameterError, match=match):
        Provenance(*args)


def test_made_from_names_files_or_rows_once_each():
    metadata = [{"path": "n/a.png"}, {}, {"file": "s.dcm", "NumberOfFrames": "4", "frame": 2}]
    items = (SourceItem(0, "image"), SourceItem(1, "lesion"), SourceItem(1, "lesion"))
    records = [
        Provenance("derived", "x", items),
        Provenance("derived", "y", (SourceItem(2, "blend"),)),
    ]
    assert made_from(records, metadata) == ["image=n/a.png lesion=#1", "blend=s.dcm[frame 3]"]
    assert made_from(records, None) == ["", ""]  # the items index data that is not at hand
    assert made_from(None, metadata) is None


# -- every registered family says what its samples are ----------------------------------------
@pytest.mark.parametrize("name", GENERATORS.list())
def test_every_generator_family_declares_whether_its_samples_are_derived(name):
    model = GENERATORS.create(name, **({"estimator": CVAE()} if name == "perclass" else {}))
    expected = "derived" if name in EXEMPLAR_FAMILIES else "synthetic"
    assert sample_origin(model) == expected
    # Every family that stores training images samples from them: none is left undecided.
    assert model.exemplar_conditioned == model.stores_training_images


@pytest.mark.parametrize("name", SOURCES.list())
def test_every_registered_source_makes_derived_samples(name):
    assert sample_origin(SOURCES.create(name)) == "derived"


def test_per_class_and_mixed_models_take_their_members_answer():
    assert sample_origin(PerClass(DAGAN())) == "derived"
    assert sample_origin(PerClass("cvae")) == "synthetic"
    assert sample_origin(MixedSource([CVAE(), DAGAN()])) == "derived"
    assert sample_origin(MixedSource([CVAE(), CVAE()])) == "synthetic"


def test_generators_report_their_origin_without_changing_their_samples(tiny_images):
    for model in (CVAE(epochs=1, verbose=False), DAGAN(epochs=1, verbose=False)):
        model.fit(tiny_images)
        images, labels, provenance = model.sample(5, y=1, seed=3, return_provenance=True)
        plain, plain_labels = model.sample(5, y=1, seed=3)
        assert torch.equal(images, plain) and torch.equal(labels, plain_labels)
        assert len(provenance) == 5 and {p.origin for p in provenance} == {sample_origin(model)}
        # Which stored image a sample varies is not reported (the store is not the data).
        assert all(p.items == () for p in provenance)
    assert provenance[0].how.startswith("dagan: a network's variant of one of its stored")


# -- the sources: the items they name are the pixels in the sample ----------------------------
@pytest.fixture(scope="module")
def mixed():
    """12 normal and 6 lesion 32x32 phantoms with their true masks."""
    return make_phantoms((12, 6), size=32, seed=4, return_masks=True, lesion_radius=(0.07, 0.09))


def test_random_oversampling_names_the_image_it_copied(tiny_images):
    source = RandomOverSampling().fit(tiny_images)
    images, _, provenance = source.sample(6, y="b", seed=0, return_provenance=True)
    for image, p in zip(images, provenance, strict=True):
        (item,) = p.items
        assert item.role == "image" and p.is_derived and p.operations == ()
        assert torch.equal(image, tiny_images.images[item.index])
        assert tiny_images.labels[item.index] == 1


def test_classical_names_its_image_and_the_resampling_of_the_default_pipeline(tiny_images):
    source = ClassicalAugmentation().fit(tiny_images)
    images, _, provenance = source.sample(4, y=2, seed=0, return_provenance=True)
    assert torch.equal(images, source.sample(4, y=2, seed=0)[0])
    assert all(p.operations == ("spatial-resampling",) for p in provenance)
    assert all(tiny_images.labels[p.items[0].index] == 2 for p in provenance)
    # A pipeline of the user's: synthaug does not know which operations it applies.
    own = ClassicalAugmentation(transform=default_classical_transform()).fit(tiny_images)
    _, _, provenance = own.sample(2, y=2, seed=0, return_provenance=True)
    assert all(p.operations == () and "user's" in p.how for p in provenance)


def test_smote_names_the_two_images_each_sample_lies_between(tiny_images):
    source = SMOTESource(k_neighbors=3).fit(tiny_images)
    images, _, provenance = source.sample(8, y=0, seed=2, return_provenance=True)
    assert torch.equal(images, source.sample(8, y=0, seed=2)[0])  # SMOTE's own samples
    x = tiny_images.images
    for image, p in zip(images, provenance, strict=True):
        (i, image_role), (j, blend_role) = p.items
        assert (image_role, blend_role) == ("image", "blend") and i != j
        assert tiny_images.labels[i] == tiny_images.labels[j] == 0
        # x_i + t (x_j - x_i) for one t in [0, 1]: the sample is on the segment between them.
        d = x[j] - x[i]
        t = float(((image - x[i]) * d).sum() / (d * d).sum())
        assert 0 <= t <= 1 and torch.allclose(x[i] + t * d, image, atol=1e-5)


def _outside(mask: torch.Tensor, reach: int) -> torch.Tensor:
    return ~(F.max_pool2d(mask.float()[None], 2 * reach + 1, 1, reach)[0] > 0)


def test_copy_paste_names_the_normal_image_and_each_lesion_donor(mixed):
    data, masks = mixed
    source = CopyPaste(device="cpu").fit(data, masks=masks)
    images, _, out, provenance = source.sample(
        10, y="lesion", seed=1, return_masks=True, return_provenance=True
    )
    again, _, again_masks = source.sample(10, y="lesion", seed=1, return_masks=True)
    assert torch.equal(images, again) and torch.equal(out, again_masks)
    normal, lesion = data.classes.index("normal"), data.classes.index("lesion")
    for image, mask, p in zip(images, out, provenance, strict=True):
        (background, *donors) = p.items
        assert background.role == "image" and data.labels[background.index] == normal
        # Outside the pasted lesions' reach the sample is its background, pixel for pixel.
        outside = _outside(mask, reach=5).expand_as(image)
        assert torch.equal(image[outside], data.images[background.index][outside])
        assert donors and all(d.role == "lesion" for d in donors)
        assert all(data.labels[d.index] == lesion and masks[d.index].any() for d in donors)
        assert len({d.index for d in donors}) == len(donors)  # each donor once
        assert p.operations == ("spatial-resampling", "pixel-addition")


def test_a_lesion_source_loaded_from_a_file_names_no_training_rows(mixed, tmp_path):
    # Its file keeps the pixels it pastes but not which rows of its training data they were.
    data, masks = mixed
    source = CopyPaste(device="cpu").fit(data, masks=masks)
    loaded = synthaug.load(source.save(tmp_path / "cp.safetensors"))
    images, _, provenance = loaded.sample(4, y="lesion", seed=1, return_provenance=True)
    assert torch.equal(images, source.sample(4, y="lesion", seed=1)[0])
    assert all(p.is_derived and p.items == () for p in provenance)
    assert all(p.operations == ("spatial-resampling", "pixel-addition") for p in provenance)


class _SquareLesions(BaseEstimator):
    """A stand-in lesion generator: every patch a square lesion (never blank)."""

    def __init__(self, seed=0, device="cpu"):
        self.seed, self.device = seed, device

    def fit(self, patches):
        self.shape_ = patches.sample_shape
        return self

    def sample(self, n, y, seed=None):
        made = torch.zeros(n, *self.shape_)
        side = self.shape_[-1]
        made[:, :, side // 3 : 2 * side // 3, side // 3 : 2 * side // 3] = 0.5
        made[:, -1] = made[:, -1] > 0  # the mask channel
        return made, torch.full((n,), int(y))


def test_lesion_transplant_names_a_donor_only_for_a_real_lesion(mixed):
    data, masks = mixed
    normal = data.classes.index("normal")
    # Every generated lesion is pasted: the sample is made from its background alone.
    source = LesionTransplant(generator=_SquareLesions(), device="cpu").fit(data, masks=masks)
    _, _, provenance = source.sample(4, y="lesion", seed=0, return_provenance=True)
    assert source.n_replaced_ == 0
    assert all([i.role for i in p.items] == ["image"] for p in provenance)
    assert all(data.labels[p.items[0].index] == normal for p in provenance)
    # No generated lesion is big enough: each is replaced by a real one, whose donor is named.
    source.set_params(min_lesion_area=10**6)
    _, _, provenance = source.sample(4, y="lesion", seed=0, return_provenance=True)
    assert source.n_replaced_ == 4
    for p in provenance:
        assert [i.role for i in p.items[:2]] == ["image", "lesion"]
        assert all(masks[i.index].any() for i in p.items[1:])


def test_a_mixed_source_passes_on_each_members_provenance(tiny_images):
    members = [RandomOverSampling(), CVAE(epochs=1, verbose=False)]
    source = MixedSource(members).fit(tiny_images)
    images, _, provenance = source.sample(5, y=0, seed=1, return_provenance=True)
    assert torch.equal(images, source.sample(5, y=0, seed=1)[0])
    assert [p.origin for p in provenance] == ["derived"] * 3 + ["synthetic"] * 2
    assert all(p.items for p in provenance[:3])
    # Prefitted members may have been fitted on other data: their items are not named.
    prefit = MixedSource(source.sources_, prefit=True).fit(tiny_images)
    _, _, provenance = prefit.sample(5, y=0, seed=1, return_provenance=True)
    assert all(p.items == () for p in provenance)


# -- augmented data sets, and sources written elsewhere ---------------------------------------
def test_an_augmented_data_set_records_every_items_origin(tiny_images):
    real = tiny_images.subset(torch.arange(25))  # classes a, b of 9, c of 7: c gets 2 added
    aug = AugmentedDataset(real, RandomOverSampling().fit(real))
    assert len(aug.provenance) == len(aug) == 27
    assert [p.origin for p in aug.provenance] == ["real"] * 25 + ["derived"] * 2
    assert [p.items[0].index for p in aug.provenance[:25]] == list(range(25))
    for i in (25, 26):
        assert torch.equal(aug.images[i], real.images[aug.provenance[i].items[0].index])


class _Plain:
    """A sample source written outside synthaug: no return_provenance."""

    def __init__(self, **declared):
        for key, value in declared.items():
            setattr(self, key, value)

    def sample(self, n, y, seed=None):
        return torch.zeros(n, 1, 8, 8), torch.full((n,), int(y))


class _Miscounting(_Plain):
    def sample(self, n, y, seed=None, *, return_provenance=False):
        return torch.zeros(n, 1, 8, 8), torch.full((n,), int(y)), [Provenance("synthetic", "x")]


def test_a_source_that_does_not_report_is_taken_at_its_declared_word():
    _, _, said = sample_with_provenance(_Plain(keeps_real_pixels=False), 3, y=0)
    assert [p.origin for p in said] == ["synthetic"] * 3
    # A source that declares nothing is not called synthetic.
    _, _, said = sample_with_provenance(_Plain(), 2, y=0)
    assert all(p.is_derived and p.items == () and "not reported" in p.how for p in said)
    real = ImageDataset(torch.rand(4, 1, 8, 8), torch.tensor([0, 0, 0, 1]), ["a", "b"])
    aug = AugmentedDataset(real, _Plain(keeps_real_pixels=False, class_names_=["a", "b"]))
    assert [p.origin for p in aug.provenance] == ["real"] * 4 + ["synthetic"] * 2
    with pytest.raises(ShapeMismatchError, match="1 provenance records for 3 samples"):
        sample_with_provenance(_Miscounting(), 3, y=0)
