"""Every registered estimator against scikit-learn's estimator contract.

Generators, detectors, sample sources and classifiers are found through their registries, so
a new one is checked with no change here. scikit-learn's checks that fit on ``(X, y)``
arrays do not apply (our estimators fit on an ``ImageDataset``); the ones below do.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils import estimator_checks as sk

from synthaug._params import configure
from synthaug.anomaly import DETECTORS
from synthaug.augment import SOURCES, GenerativeOverSampler, MixedSource, RandomOverSampling
from synthaug.data import ImageDataset, make_phantoms
from synthaug.generators import CVAE, GENERATORS, PerClass
from synthaug.metrics import CLASSIFIERS, FeatureExtractor

REGISTRIES = {"generator": GENERATORS, "detector": DETECTORS, "source": SOURCES}
REGISTRIES["classifier"] = CLASSIFIERS
# Entries that need an argument to be built; everything else is built with no arguments.
REQUIRED = {("generator", "perclass"): lambda: {"estimator": CVAE()}}
ENTRIES = [(kind, name) for kind, reg in REGISTRIES.items() for name in reg.list()]
# Estimators that are not registered but are part of the public API.
EXTRA = {
    "GenerativeOverSampler": lambda: GenerativeOverSampler(CVAE(latent_dim=3)),
    "FeatureExtractor": lambda: FeatureExtractor(epochs=2),
    "MixedSource": lambda: MixedSource([RandomOverSampling(), CVAE()]),
    "PerClass": lambda: PerClass(CVAE(latent_dim=3), n_jobs=2),
}
SKLEARN_CHECKS = [
    sk.check_estimator_cloneable,
    sk.check_estimator_repr,
    sk.check_no_attributes_set_in_init,
    sk.check_get_params_invariance,
    sk.check_set_params,
    sk.check_do_not_raise_errors_in_init_or_set_params,
    sk.check_parameters_default_constructible,
]


def build(kind: str, name: str) -> BaseEstimator:
    params = REQUIRED.get((kind, name), dict)()
    return REGISTRIES[kind].create(name, **params)


def every_estimator():
    for kind, name in ENTRIES:
        yield pytest.param(lambda k=kind, n=name: build(k, n), id=f"{kind}:{name}")
    for name, factory in EXTRA.items():
        yield pytest.param(factory, id=name)


def plain_params(estimator: BaseEstimator) -> dict:
    """Every parameter, nested ones included, but the estimator objects themselves (a list of
    estimators, as ``MixedSource`` holds, becomes their types and parameters)."""
    out = {}
    for key, value in estimator.get_params(deep=True).items():
        if isinstance(value, (list, tuple)) and any(hasattr(v, "get_params") for v in value):
            out[key] = [(type(v), plain_params(v)) for v in value]
        elif not hasattr(value, "get_params"):
            out[key] = value
    return out


@pytest.mark.parametrize("factory", list(every_estimator()))
@pytest.mark.parametrize("check", SKLEARN_CHECKS, ids=lambda c: c.__name__)
def test_scikit_learn_checks(factory, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(type(factory()).__name__, factory())


@pytest.mark.parametrize("factory", list(every_estimator()))
def test_clone_round_trips(factory):
    estimator = factory()
    twin = clone(estimator)
    assert type(twin) is type(estimator) and twin is not estimator
    assert plain_params(twin) == plain_params(estimator)
    # Nested estimators are copies too: changing the clone's never changes the original's.
    nested = [k for k, v in estimator.get_params(deep=False).items() if hasattr(v, "get_params")]
    for key in nested:
        assert getattr(twin, key) is not getattr(estimator, key)


SAMPLERS = [(kind, name) for kind, name in ENTRIES if kind in ("generator", "source")]


@pytest.mark.parametrize("kind, name", SAMPLERS, ids=[f"{k}:{n}" for k, n in SAMPLERS])
def test_every_sample_source_says_whether_it_keeps_real_pixels(kind, name):
    # The command line marks DICOM output derived or synthetic by this attribute alone.
    # Every source here resamples, jitters, blends or pastes real images; generators make
    # new pixels with a network (even those that store exemplars).
    assert build(kind, name).keeps_real_pixels is (kind == "source")


def test_a_mixed_source_keeps_real_pixels_when_one_of_its_sources_does():
    assert MixedSource([RandomOverSampling(), CVAE()]).keeps_real_pixels
    assert not MixedSource([CVAE(), CVAE()]).keeps_real_pixels


def test_nested_parameters_are_reachable_with_double_underscores():
    model = PerClass(CVAE(latent_dim=3))
    model.set_params(estimator__latent_dim=5, n_jobs=2)
    assert model.estimator.latent_dim == 5 and model.get_params()["estimator__latent_dim"] == 5
    sampler = GenerativeOverSampler(PerClass(CVAE()))
    sampler.set_params(generator__estimator__epochs=7)
    assert sampler.generator.estimator.epochs == 7
    # configure() reaches a parameter wherever it sits.
    assert configure(sampler, epochs=9, nonexistent=1) == {"nonexistent"}
    assert sampler.generator.estimator.epochs == 9


# -- fit never changes a parameter -----------------------------------------------------------
TINY = {
    "epochs": 1,
    "encoder_epochs": 1,
    "batch_size": 8,
    "latent_dim": 2,
    "hidden_dims": (8,),
    "n_estimators": 5,
    "n_components": 2,
    "n_neighbors": 2,
    "max_iter": 50,
    "steps": 4,  # draem, cutpaste and the step-counted classifiers
    "width": 4,
    "verbose": False,
    "device": "cpu",
}


@pytest.mark.parametrize("kind, name", ENTRIES, ids=[f"{k}:{n}" for k, n in ENTRIES])
def test_fit_leaves_the_parameters_as_they_were(kind, name, tiny_images, one_torch_thread):
    estimator = build(kind, name)
    configure(estimator, **TINY)
    data = tiny_images
    if kind == "detector":  # one-class: normal samples only
        data = tiny_images.subset(torch.nonzero(tiny_images.labels == 0).flatten())
    if getattr(estimator, "makes_masks", False):  # lesions pasted into normal slices
        data = make_phantoms((12, 3), size=16, seed=0, lesion_radius=(0.1, 0.12))
    before = plain_params(estimator)
    estimator.fit(data)
    assert plain_params(estimator) == before
    assert estimator.is_fitted and estimator.__sklearn_is_fitted__()
    # A clone of a fitted estimator is unfitted, with the same parameters.
    twin = clone(estimator)
    assert not twin.is_fitted and plain_params(twin) == before


def test_feature_vectors_fit_too(one_torch_thread):
    vectors = ImageDataset(torch.rand(20, 6), torch.arange(2).repeat(10))
    for name in ("logreg", "cv-select"):
        estimator = CLASSIFIERS.create(name)
        assert estimator.fit(vectors).predict(vectors.images).shape == (20,)
