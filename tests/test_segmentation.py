"""The segmentation task: its config, its scores against hand computations, the U-Net segmenter,
image+mask augmentation, and a grid end to end."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch

from synthaug.bench import load_config, parse_config, read_results, run_bench
from synthaug.bench._methods import build_part
from synthaug.bench._runner import fit_groups
from synthaug.data import make_phantoms
from synthaug.errors import InvalidParameterError, ShapeMismatchError
from synthaug.metrics import (
    UNetSegmenter,
    augment_pairs,
    classical_pair_transform,
    dice_per_image,
    false_positive_pixel_rate,
    hd95_cap,
    hd95_per_image,
    lesion_sensitivity,
    segmentation_scores,
)
from synthaug.metrics import _segmentation as segmentation_module

pytest.importorskip("monai")


def quiet(*_):
    pass


def seg_config(**over):
    data = {
        "name": "tiny-segmentation",
        "task": "segmentation",
        "seeds": 1,
        "device": "cpu",
        "dataset": {"name": "phantoms", "size": 32},
        "segmentation": {
            "n_normal": 10,
            "n_lesion": 3,
            "n_test_per_class": 4,
            "steps": 3,
            "batch_size": 4,
            "channels": [4, 8],
        },
        "split": {"protocol": "fresh-draws"},
        "methods": {"none": {}, "classical+balanced": {}, "copy-paste": {}, "full-data": {}},
    }
    data.update(over)
    return data


# -- config -------------------------------------------------------------------------------------
def test_settings_one_per_kind_and_lesion_count():
    data = seg_config()
    data["segmentation"].update(kinds=["chest", "brain"], n_lesion=[3, 5])
    cfg = parse_config(data)
    assert [s["label"] for s in cfg.settings] == [
        "chest lesions=3/13",
        "chest lesions=5/15",
        "brain lesions=3/13",
        "brain lesions=5/15",
    ]
    payload = cfg.settings[0]["segmentation"]
    assert payload["channels"] == [4, 8] and payload["fp_per_image"] == 0.25
    assert payload["lr"] == 1e-3  # the segmenter's default, recorded with the cell
    assert {c.classifier for c in cfg.cells()} == {"-"}


@pytest.mark.parametrize(
    "change, where",
    [
        ({"n_lesions": 3}, "segmentation.n_lesions: unknown key"),
        ({"kinds": ["knee"]}, "segmentation.kinds"),
        ({"kinds": "chest"}, "segmentation.kinds"),
        ({"n_normal": 1}, "segmentation.n_normal"),
        ({"n_lesion": [1]}, "segmentation.n_lesion"),
        ({"n_lesion": "5"}, "segmentation.n_lesion"),
        ({"n_test_per_class": 0}, "segmentation.n_test_per_class"),
        ({"fp_per_image": -1}, "segmentation.fp_per_image"),
        ({"fp_per_image": True}, "segmentation.fp_per_image"),
        ({"steps": 0}, "segmentation.steps"),
        ({"batch_size": 1}, "segmentation.batch_size"),
        ({"lr": 0}, "segmentation.lr"),
        ({"channels": []}, "segmentation.channels"),
        ({"channels": [4, 8, 16, 32, 64, 128, 256]}, "segmentation.channels: 7 levels"),
    ],
)
def test_bad_settings_name_the_key_in_one_line(change, where):
    data = seg_config()
    data["segmentation"].update(change)
    with pytest.raises(InvalidParameterError, match=where) as err:
        parse_config(data)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "methods, where",
    [
        ({"cgan": {}}, "methods.cgan: task 'segmentation' trains on slices with lesion masks"),
        ({"smote+balanced": {}}, "methods.smote\\+balanced.smote: task 'segmentation'"),
        ({"classical": {"p": 0.5}}, "methods.classical: .*takes no parameters"),
        ({"copy-paste+lesion-transplant": {}}, "one lesion source per method"),
        ({"logit-adjusted": {}}, "methods.logit-adjusted: task 'segmentation'"),
        ({"balanced": {"mixup": 0.2}}, "methods.balanced"),
        ({"copy-paste": {"localizer_vae": 3}}, "methods.copy-paste"),
    ],
)
def test_methods_without_masks_are_refused(methods, where):
    with pytest.raises(InvalidParameterError, match=where) as err:
        parse_config(seg_config(methods=methods))
    assert "\n" not in str(err.value)


def test_the_loader_masks_and_counts_are_the_tasks_to_set():
    data = seg_config()
    data["dataset"]["return_masks"] = True
    with pytest.raises(InvalidParameterError, match="dataset.return_masks"):
        parse_config(data)
    data = seg_config()
    data["dataset"]["seed"] = 3
    with pytest.raises(InvalidParameterError, match="dataset.seed: set by task 'segmentation'"):
        parse_config(data)
    data = seg_config()
    data["dataset"] = {"name": "digits"}
    with pytest.raises(InvalidParameterError, match="dataset.name: task 'segmentation' needs"):
        parse_config(data)


def test_a_lesion_source_alone_and_with_balanced_batches_share_one_fit():
    cfg = parse_config(
        seg_config(
            methods={
                "balanced": {},
                "classical": {},
                "copy-paste": {},
                "copy-paste+balanced": {},
            }
        )
    )
    groups = [sorted(c.method for c in b) for b in fit_groups(cfg.cells())]
    assert ["copy-paste", "copy-paste+balanced"] in groups
    assert ["balanced"] in groups and ["classical"] in groups


# -- scores against hand computations -------------------------------------------------------
def _mask(shape, *boxes):
    m = np.zeros(shape, bool)
    for r0, r1, c0, c1 in boxes:
        m[r0:r1, c0:c1] = True
    return m


def test_dice_by_hand():
    true = _mask((6, 6), (1, 3, 1, 3))  # 4 pixels
    pred = _mask((6, 6), (1, 2, 1, 4))  # 3 pixels, 2 of them on the lesion
    empty = np.zeros((6, 6), bool)
    d = dice_per_image(np.stack([pred, empty, true]), np.stack([true, true, true]))
    np.testing.assert_allclose(d, [2 * 2 / (3 + 4), 0.0, 1.0], atol=1e-6)


def test_hd95_by_hand_and_the_cap_for_an_empty_prediction():
    true = _mask((8, 10), (2, 4, 2, 4))
    shifted = _mask((8, 10), (2, 4, 3, 5))  # one pixel to the right: every boundary point 1 away
    empty = np.zeros((8, 10), bool)
    d = hd95_per_image(np.stack([true, shifted, empty]), np.stack([true, true, true]))
    assert hd95_cap((8, 10)) == pytest.approx(math.hypot(8, 10))
    np.testing.assert_allclose(d, [0.0, 1.0, math.hypot(8, 10)], atol=1e-6)


def test_lesion_sensitivity_counts_false_positive_components():
    # Image A: two lesions; candidates on them score 0.9 and 0.75, a false positive 0.8.
    # Image B (normal): one false positive scoring 0.7.
    true = np.stack([_mask((10, 10), (0, 2, 0, 2), (6, 8, 6, 8)), np.zeros((10, 10), bool)])
    proba = np.zeros((2, 10, 10))
    proba[0, 0:2, 0:2] = 0.9
    proba[0, 6:8, 6:8] = 0.75
    proba[0, 0:2, 6:8] = 0.8
    proba[1, 4:6, 4:6] = 0.7
    proba[1, 9, 9] = 0.4  # below the threshold: no candidate
    # No false positive allowed: only candidates above 0.8 count -> lesion 1 of 2.
    assert lesion_sensitivity(proba, true, fp_per_image=0) == 0.5
    # One false positive over two images (0.5 per image): the cut falls at 0.7 -> both.
    assert lesion_sensitivity(proba, true, fp_per_image=0.5) == 1.0
    assert lesion_sensitivity(proba, true, fp_per_image=0.49) == 0.5  # floor(0.98) = 0
    assert lesion_sensitivity(proba, true, fp_per_image=2) == 1.0
    # A candidate touching a lesion at one pixel finds it.
    touch = np.zeros((1, 10, 10))
    touch[0, 1:4, 1:4] = 0.6
    assert lesion_sensitivity(touch, true[:1], fp_per_image=0) == 0.5
    assert math.isnan(lesion_sensitivity(proba[1:], true[1:], fp_per_image=1))


def test_false_positive_pixel_rate_and_all_scores_together():
    proba = np.zeros((2, 4, 4))
    proba[1, 0, :2] = 0.9  # 2 of 16 pixels on the normal image
    assert false_positive_pixel_rate(proba[1:]) == 2 / 16
    true = np.zeros((2, 1, 4, 4), bool)
    true[0, 0, 1:3, 1:3] = True  # image 0 has a lesion, predicted empty
    scores = segmentation_scores(proba, true, fp_per_image=1)
    assert scores["dice"] == 0.0
    assert scores["hd95"] == pytest.approx(math.hypot(4, 4))
    assert scores["empty_predictions"] == 1
    assert scores["fp_pixel_rate"] == 2 / 16
    assert scores["lesion_sensitivity"] == 0.0


# -- the segmenter and image+mask augmentation ----------------------------------------------
def test_classical_transform_moves_image_and_mask_together():
    # The image is its mask (a bright block on the left): any spatial change must reach both.
    masks = torch.zeros(24, 1, 16, 16, dtype=torch.bool)
    masks[:, :, 5:11, 1:5] = True
    images = masks.float() * 0.8 + 0.1
    out_images, out_masks = augment_pairs(images, masks, classical_pair_transform(seed=3))
    assert out_images.shape == images.shape and out_masks.dtype == torch.bool
    moved = 0
    for image, mask in zip(out_images, out_masks, strict=True):
        bright = image[0] > 0.45
        inter = (bright & mask[0]).sum().item()
        union = (bright | mask[0]).sum().item()
        assert inter / union > 0.7  # a mask left unflipped would overlap nothing
        moved += bool(mask[0, :, 11:].any())  # flipped to the right side
    assert 0 < moved < 24  # some items were flipped, some not


def test_classical_transform_same_seed_same_draws():
    images = torch.rand(4, 1, 16, 16)
    masks = images > 0.7
    a = augment_pairs(images, masks, classical_pair_transform(seed=1))
    b = augment_pairs(images, masks, classical_pair_transform(seed=1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_segmenter_refuses_bad_inputs():
    seg = UNetSegmenter(channels=(4, 8, 16), steps=1, batch_size=2, device="cpu")
    with pytest.raises(ShapeMismatchError, match="masks must be"):
        seg.fit(torch.rand(4, 1, 16, 16), torch.zeros(4, 16, 16, dtype=torch.bool))
    with pytest.raises(ShapeMismatchError, match="divisible by 4"):
        seg.fit(torch.rand(4, 1, 18, 18), torch.zeros(4, 1, 18, 18, dtype=torch.bool))
    with pytest.raises(InvalidParameterError, match="sampler"):
        UNetSegmenter(sampler="half").fit(torch.rand(4, 1, 16, 16), torch.zeros(4, 1, 16, 16))


def test_lesion_source_fits_on_the_masks_it_is_given(one_torch_thread):
    data, masks = make_phantoms((10, 3), size=32, seed=0, return_masks=True)
    source, _ = build_part("copy-paste", {}, data, seed=0, device="cpu", masks=masks)
    assert torch.equal(source.training_masks_, masks)  # no localiser: the true masks
    images, _, new_masks = source.sample(4, y=1, seed=0, return_masks=True)
    assert images.shape == (4, 1, 32, 32) and new_masks.flatten(1).any(1).all()


# -- the grid end to end --------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:the report names a best method from too little evidence")
def test_quick_grid_writes_records_and_report_and_repeats(tmp_path, one_torch_thread):
    cfg = parse_config(seg_config())
    run_bench(cfg, tmp_path / "a", progress=False, echo=quiet)
    results = {r["cell"]["method"]: r for r in read_results(tmp_path / "a" / "results.jsonl")}
    assert set(results) == {"none", "classical+balanced", "copy-paste", "full-data"}
    for r in results.values():
        m = r["metrics"]
        assert 0 <= m["dice"] <= 1 and 0 <= m["lesion_sensitivity"] <= 1
        assert 0 <= m["hd95"] <= m["hd95_cap"] == pytest.approx(math.hypot(32, 32))
        assert 0 <= m["fp_pixel_rate"] <= 1
        assert m["smallest_test_class"] == 4
    assert results["copy-paste"]["metrics"]["n_train_synthetic"] == 7  # 3 topped up to 10
    assert results["none"]["metrics"]["n_train_synthetic"] == 0
    assert results["full-data"]["metrics"]["n_train_synthetic"] == 0
    report = (tmp_path / "a" / "report.md").read_text()
    assert "lesion_sensitivity" in report and "best free" in report
    assert "copy-paste" in report and "fresh-draws" in report
    # Same seed, same record.
    cfg = parse_config(seg_config(methods={"copy-paste": {}}))
    run_bench(cfg, tmp_path / "b", progress=False, echo=quiet)
    again = read_results(tmp_path / "b" / "results.jsonl")[0]
    assert again["metrics"] == results["copy-paste"]["metrics"]


def test_shipped_segmentation_grid_parses():
    cfg = load_config("benchmarks/phantoms_segmentation.toml")
    assert [s["label"] for s in cfg.settings] == ["lesions=5/405", "lesions=20/420"]
    assert cfg.seeds == list(range(10))
    assert {"none", "balanced", "classical", "classical+balanced", "full-data"} <= set(cfg.methods)
    assert {"copy-paste", "lesion-transplant", "lesion-transplant+balanced"} <= set(cfg.methods)
    assert len(cfg.cells()) == 2 * 9 * 10
    assert len(load_config("benchmarks/phantoms_segmentation.toml", quick=True).cells()) == 9


def test_docstring_examples_run(one_torch_thread):
    result = doctest.testmod(segmentation_module)
    assert result.attempted >= 5 and result.failed == 0
