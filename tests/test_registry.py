"""The one registry type, its presets, and bad input to the pieces the restructure added."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthaug.augment import ClassicalAugmentation, MixedSource, RandomOverSampling
from synthaug.bench import bundled_config
from synthaug.errors import InvalidDataError, InvalidParameterError, NotFittedError
from synthaug.generators import CVAE, PerClass
from synthaug.metrics import binary_scores
from synthaug.registry import Preset, Registry


class Box:
    """A tiny estimator-like class for the registry tests."""

    def __init__(self, *, side: float = 1.0, depth: float = 1.0) -> None:
        self.side = side
        self.depth = depth


def test_register_get_list_create():
    things = Registry("thing")
    assert things.register("box", Box) is Box

    @things.register("triple")
    def triple(x: int, *, scale: int = 3) -> int:
        return x * scale

    assert things.list() == ["box", "triple"] and things.list("b*") == ["box"]
    assert "box" in things and len(things) == 2 and list(things) == ["box", "triple"]
    assert things.get("box") is Box and things.name_of(Box) == "box"
    assert things.create("box", side=2.0).side == 2.0
    assert things.create("triple", x=2) == 6
    assert things.accepted_params("box") == ["side", "depth"]
    assert things.accepted_params("triple") == ["x", "scale"]
    assert "box" in repr(things)


def test_registry_errors_say_what_is_allowed():
    things = Registry("thing")
    things.register("box", Box)
    with pytest.raises(InvalidParameterError, match="unknown thing 'ball'; available: box"):
        things.get("ball")
    with pytest.raises(InvalidParameterError, match=r"no parameter\(s\) \['width'\]"):
        things.create("box", width=3)

    def needs(x, *, y=1):
        return x

    things.register("needs", needs)
    with pytest.raises(InvalidParameterError, match=r"needs the parameter\(s\) \['x'\]"):
        things.create("needs")
    with pytest.raises(ValueError, match="already registered"):
        things.register("box", dict)
    things.register("box", Box)  # the same object again is fine (a module imported twice)
    for bad in ("", "a+b", "-x", "with space", 3):
        with pytest.raises(ValueError, match="name"):
            things.register(bad, Box)


def test_preset_splits_flat_parameters_between_outer_and_inner():
    preset = Preset(PerClass, "estimator", CVAE, defaults={"epochs": 7})
    model = preset(latent_dim=3, n_jobs=2)
    assert isinstance(model.estimator, CVAE) and model.n_jobs == 2
    assert model.estimator.latent_dim == 3 and model.estimator.epochs == 7
    assert preset(epochs=2).estimator.epochs == 2  # a given value beats the default
    assert "n_jobs" in preset.accepted_params() and "latent_dim" in preset.accepted_params()
    assert "estimator" not in preset.accepted_params()
    with pytest.raises(TypeError):
        preset(no_such=1)


def test_mixed_source_bad_input(tiny_images):
    rule = "it must be a non-empty list of sample sources"
    with pytest.raises(InvalidParameterError, match=rf"sources=\[\] is invalid; {rule}"):
        MixedSource([]).fit(tiny_images)
    with pytest.raises(InvalidParameterError, match=rf"sources=\[<object .*>\] is invalid; {rule}"):
        MixedSource([object()]).fit(tiny_images)
    with pytest.raises(NotFittedError, match="prefit"):
        MixedSource([RandomOverSampling()], prefit=True).fit(tiny_images)
    with pytest.raises(NotFittedError):
        MixedSource([RandomOverSampling()]).sample(3, y=0)
    fitted = RandomOverSampling().fit(tiny_images)
    mixed = MixedSource([fitted, ClassicalAugmentation()]).fit(tiny_images)
    assert mixed.sources_[0] is not fitted  # not prefit: every source is cloned and refitted
    prefit = MixedSource([fitted], prefit=True).fit(tiny_images)
    assert prefit.sources_[0] is fitted


def test_bundled_config_names():
    assert bundled_config("digits_demo")["task"] == "classification"
    assert bundled_config("medical_demo")["task"] == "lesion"
    with pytest.raises(InvalidParameterError, match="bundled: digits_demo, medical_demo"):
        bundled_config("nope")


def test_binary_scores_bad_input():
    with pytest.raises(InvalidDataError, match="positive and negative"):
        binary_scores([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(InvalidDataError, match="NaN"):
        binary_scores([0, 1], [0.2, float("nan")])
    with pytest.raises(ValueError, match="one length"):
        binary_scores([0, 1, 1], np.array([0.2, 0.4]))
    assert binary_scores(torch.tensor([0, 1]), torch.tensor([0.2, 0.9]))["auroc"] == 1.0
