"""Progress on long steps (on stderr, off when quiet) and one-line warnings (issue 17)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file

from synthaug._params import configure
from synthaug.anomaly import VAEAnomalyDetector
from synthaug.augment import (
    LesionLocalizer,
    LesionTransplant,
    SMOTESource,
)
from synthaug.cli import main
from synthaug.cli._warnings import warning_line
from synthaug.data import ImageDataset, load_dicom_folder, make_phantoms
from synthaug.errors import SingleClassWarning, SynthaugWarning
from synthaug.generators import CVAE, create_generator, list_generators

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"epochs": 1, "batch_size": 16, "latent_dim": 4, "hidden_dims": (16,), "width": 4}
REQUIRED = {"perclass": lambda: {"estimator": CVAE()}}


def make(name: str, **extra):
    """The registered generator ``name``, made tiny, on the CPU, quiet unless told."""
    model = create_generator(name, **REQUIRED.get(name, dict)())
    configure(model, **SMALL)
    configure(model, **{"verbose": False, "device": "cpu", **extra})
    return model


def ours(seen) -> list:
    """The synthaug warnings among those a ``pytest.warns`` block recorded."""
    return [w for w in seen if issubclass(w.category, SynthaugWarning)]


def images(counts: dict[str, int], seed: int = 0) -> ImageDataset:
    """Random 1x8x8 images, ``counts[name]`` of each class."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), i) for i, n in enumerate(counts.values())])
    return ImageDataset(torch.rand(len(labels), 1, 8, 8, generator=g), labels, list(counts))


@pytest.fixture
def no_synthaug_warning():
    """Turn every synthaug warning into an error for the test's duration."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SynthaugWarning)
        yield


# -- warnings: generators ----------------------------------------------------------------------
@pytest.mark.parametrize("name", list_generators())
def test_every_generator_warns_on_a_single_class(name):
    with pytest.warns(SingleClassWarning, match=r"fitted on a single class \('only'\)") as seen:
        make(name).fit(images({"only": 6}))
    (warning,) = ours(seen)  # once: a per-class model's members stay quiet
    assert warning.filename == __file__  # the user's line, not synthaug's


@pytest.mark.parametrize("name", list_generators())
def test_two_adequate_classes_fit_without_a_warning(name, no_synthaug_warning):
    make(name).fit(images({"a": 4, "b": 4}))  # per-class members model one class each, quietly


def test_a_class_of_one_image_warns_with_its_name():
    data = images({"many": 7, "one": 1})
    with pytest.warns(SynthaugWarning, match=r"CVAE: class\(es\) \['one'\] have fewer than 2"):
        make("cvae").fit(data)


def test_an_anomaly_detector_models_its_normal_class_without_a_warning(no_synthaug_warning):
    tiny = CVAE(**SMALL, verbose=False, device="cpu")
    detector = VAEAnomalyDetector(vae=tiny, augment_with=tiny, n_synthetic=4)
    detector.fit(images({"normal": 12}))
    assert len(detector.synthetic_generator_.classes_) == 1


def test_lesion_models_of_one_class_fit_without_a_warning(no_synthaug_warning):
    tiny = CVAE(**SMALL, verbose=False)
    LesionLocalizer(vae=tiny, device="cpu").fit(torch.rand(6, 1, 8, 8))  # normal anatomy
    data, masks = make_phantoms((6, 3), size=32, seed=3, return_masks=True)
    source = LesionTransplant(generator=tiny, device="cpu").fit(data, masks=masks)
    assert source.generator_.classes_ == [0]  # the patches of the one lesion class


# -- warnings: SMOTE ---------------------------------------------------------------------------
def test_smote_warns_for_a_class_below_k_neighbors_plus_one():
    data = images({"big": 10, "small": 3})
    with pytest.warns(SynthaugWarning, match=r"k_neighbors \+ 1 = 6 .*\{'small': 3\}"):
        source = SMOTESource(k_neighbors=5).fit(data)
    new, labels = source.sample(4, y="small", seed=0)  # still works, with 2 neighbours
    assert new.shape == (4, 1, 8, 8) and labels.tolist() == [1] * 4


def test_smote_with_enough_samples_per_class_is_quiet(no_synthaug_warning):
    SMOTESource(k_neighbors=3).fit(images({"a": 4, "b": 9}))


# -- warnings: DICOM ---------------------------------------------------------------------------
@pytest.fixture
def tall_and_square(tmp_path):
    """A 128x64 CT slice (its left half) in class 'tall', the 128x128 slice in 'square'."""
    (tmp_path / "tall").mkdir()
    (tmp_path / "square").mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "square" / "ct.dcm")
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    half = np.ascontiguousarray(ds.pixel_array[:, :64])
    ds.PixelData, ds.Columns = half.tobytes(), 64
    ds.save_as(tmp_path / "tall" / "half.dcm")
    return tmp_path


def test_dicom_stretched_to_other_proportions_warns_once(tall_and_square):
    with pytest.warns(SynthaugWarning, match=r"stretched 1 file\(s\) .* to 32x32") as seen:
        ds = load_dicom_folder(tall_and_square, size=32)
    (warning,) = ours(seen)
    assert "half.dcm" in str(warning.message) and "128x64" in str(warning.message)
    assert ds.sample_shape == (1, 32, 32) and len(ds) == 2


def test_dicom_resized_in_proportion_is_quiet(tall_and_square, no_synthaug_warning):
    ds = load_dicom_folder(tall_and_square / "tall", labels={"half.dcm": "t"}, size=(64, 32))
    assert ds.sample_shape == (1, 64, 32)


# -- warnings: the command line ----------------------------------------------------------------
def test_warning_line_is_one_line_and_names_foreign_kinds():
    assert warning_line("two\nlines", SynthaugWarning) == "synthaug: warning: two lines"
    assert warning_line("x", RuntimeWarning) == "synthaug: warning: RuntimeWarning: x"


def test_the_cli_shows_a_warning_as_one_line_on_stderr(tmp_path, capsys):
    data = tmp_path / "one.npz"
    pixels = np.random.default_rng(0).integers(0, 256, (6, 8, 8), dtype=np.uint8)
    np.savez(data, train_images=pixels, train_labels=np.zeros(6, dtype=np.int64))
    before = warnings.showwarning
    out = tmp_path / "m.safetensors"
    argv = ["train", "--data", str(data), "--model", "cvae", "--out", str(out), "--epochs", "1"]
    assert main([*argv, "--device", "cpu", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "synthaug: warning: CVAE is fitted on a single class ('0'), so there is no other class "
        "to balance; check the labels (one folder or label per class), or filter "
        "SingleClassWarning when one class is meant"
    ]
    assert "synthaug: warning" not in captured.out
    assert warnings.showwarning is before  # the command's display is undone
