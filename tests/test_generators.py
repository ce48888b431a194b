"""Contract tests run over every registered generator, plus CVAE specifics."""

import json
import struct
import warnings

import pytest
import torch
from safetensors.torch import load_file

import synthaug
from synthaug._params import configure
from synthaug.data import ImageDataset
from synthaug.errors import (
    CheckpointError,
    ConstantSamplesWarning,
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    SynthaugWarning,
    TrainingDivergedError,
    UnknownClassError,
)
from synthaug.generators import CVAE, create_generator, list_generators
from synthaug.nn import content_digest, tensor_digest

# The suite runs on every registered generator, a new one included with no change here: each
# is built by name and made tiny by setting these parameters wherever it has them (on the
# inner estimator of a per-class model). Only a generator that cannot be built without an
# argument is listed in REQUIRED (a callable, so no inner estimator is shared between tests).
SMALL = {"epochs": 2, "batch_size": 16, "latent_dim": 4, "hidden_dims": (32,), "width": 4}
REQUIRED = {"perclass": lambda: {"estimator": CVAE()}}
# Known gap, listed rather than skipped: per-class models cannot learn a one-sample class.
NEEDS_TWO_PER_CLASS = {"perclass", "perclass-vae", "perclass-gan"}


def test_every_registered_generator_can_be_built_for_the_contract():
    for name in list_generators():
        assert make(name).get_params()
    assert "tiny-means" in list_generators()  # the example family of docs/extending.md


@pytest.fixture(params=list_generators())
def name(request):
    return request.param


def make(name, device=None, **extra):
    """The tiny generator ``name``; ``extra`` and the device are set wherever they apply."""
    model = create_generator(name, **REQUIRED.get(name, dict)())
    configure(model, **SMALL)
    placed = {"verbose": False, **extra, **({"device": device} if device else {})}
    # Architecture knobs a family may lack; everything else must find its parameter.
    assert configure(model, **placed) <= set(SMALL)
    return model


def test_fit_returns_self_and_sample_shapes(name, tiny_images, device):
    model = make(name, device)
    assert model.fit(tiny_images) is model
    images, labels = model.sample(12, seed=0)
    assert images.shape == (12, 1, 8, 8) and images.dtype == torch.float32
    assert labels.shape == (12,) and labels.dtype == torch.int64
    assert torch.isfinite(images).all()
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    assert len(model.history) == SMALL["epochs"]


def test_per_class_counts_and_names(name, tiny_images, device):
    model = make(name, device).fit(tiny_images)
    _, labels = model.sample(7, y=2, seed=0)
    assert labels.tolist() == [2] * 7
    _, labels = model.sample(3, y="b", seed=0)
    assert labels.tolist() == [1] * 3
    _, labels = model.sample(4, y=[0, 2, 2, 1], seed=0)
    assert labels.tolist() == [0, 2, 2, 1]


def test_same_seed_same_model_and_samples(name, tiny_images, device):
    a = make(name, device, seed=5).fit(tiny_images)
    b = make(name, device, seed=5).fit(tiny_images)
    xa, ya = a.sample(16, seed=1)
    xb, yb = b.sample(16, seed=1)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    xc, _ = a.sample(16, seed=2)
    assert not torch.equal(xa, xc)


def test_fit_does_not_touch_global_rng(name, tiny_images, device):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make(name, device).fit(tiny_images)
    assert torch.equal(torch.rand(3), expected)


def test_save_load_round_trip(name, tiny_images, device, tmp_path):
    model = make(name, device).fit(tiny_images)
    path = model.save(tmp_path / "model.safetensors")
    loaded = synthaug.load(path, device=device)
    assert type(loaded) is type(model)

    def plain(m):  # every parameter, nested ones included, but the estimator objects
        return {k: v for k, v in m.get_params(deep=True).items() if not hasattr(v, "get_params")}

    assert plain(loaded) == plain(model)
    assert loaded.history == model.history
    x1, y1 = model.sample(20, seed=3)
    x2, y2 = loaded.sample(20, seed=3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_feature_vectors(name, device):
    ds = ImageDataset(torch.rand(40, 30), torch.arange(2).repeat(20))
    model = make(name, device).fit(ds)
    images, _ = model.sample(5, y=1, seed=0)
    assert images.shape == (5, 30)


def test_bad_input_raises_synthaug_errors(name, tiny_images, device):
    model = make(name, device)
    with pytest.raises(NotFittedError):
        model.sample(3)
    with pytest.raises(InvalidDataError):
        model.fit(torch.rand(3, 1, 8, 8))
    with pytest.raises(EmptyDatasetError):
        model.fit(ImageDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.int64), ["a"]))
    model.fit(tiny_images)
    for bad_n in (0, -1, 2.5, True):
        with pytest.raises(InvalidParameterError):
            model.sample(bad_n)
    with pytest.raises(UnknownClassError):
        model.sample(2, y=7)
    with pytest.raises(UnknownClassError):
        model.sample(2, y="zebra")
    with pytest.raises(InvalidParameterError):
        model.sample(3, y=[0, 1])


def test_unseen_class_cannot_be_sampled(name, device):
    # class "c" exists in the class list but has no sample
    ds = ImageDataset(torch.rand(20, 1, 8, 8), torch.arange(2).repeat(10), ["a", "b", "c"])
    model = make(name, device).fit(ds)
    with pytest.raises(UnknownClassError, match="not seen in training"):
        model.sample(1, y="c")
    _, labels = model.sample(50, seed=0)
    assert set(labels.tolist()) <= {0, 1}


def test_one_sample_class_is_learned_by_conditional_models(name, device):
    labels = torch.tensor([0] * 19 + [1])
    data = ImageDataset(torch.rand(20, 1, 8, 8), labels, ["many", "one"])
    if name in NEEDS_TWO_PER_CLASS:
        with pytest.raises(InvalidDataError, match=r"at least 2 samples per class.*\['one'\]"):
            make(name, device).fit(data)
        return
    model = make(name, device)
    if model._advised_samples_per_class <= 1:
        # A family built for one-image classes (it borrows variation from the others) fits
        # them without a warning (but the one that a tiny model on random pixels samples
        # constant images, which test_fuzz.py checks).
        with warnings.catch_warnings():
            warnings.simplefilter("error", SynthaugWarning)
            warnings.simplefilter("ignore", ConstantSamplesWarning)
            model.fit(data)
    else:
        # Fitted, with a warning that one image shows nothing of how its class varies.
        with pytest.warns(SynthaugWarning, match=r"class\(es\) \['one'\] have fewer than 2"):
            model.fit(data)
    images, _ = model.sample(4, y="one", seed=0)
    assert images.shape == (4, 1, 8, 8)


@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 16, 32)])
def test_convolutional_images(name, device, shape):
    g = torch.Generator().manual_seed(0)
    ds = ImageDataset(torch.rand(12, *shape, generator=g), torch.arange(2).repeat(6))
    model = make(name, device, epochs=1).fit(ds)
    images, labels = model.sample(5, y=[0, 1, 1, 0, 1], seed=0)
    assert images.shape == (5, *shape) and torch.isfinite(images).all()
    assert labels.tolist() == [0, 1, 1, 0, 1]


def test_failed_fit_leaves_the_model_unfitted(name, device):
    ds = ImageDataset(torch.rand(20, 1, 8, 8), torch.arange(2).repeat(10))
    model = make(name, device, lr=1e30, hidden_dims=(8,))
    # an absurd learning rate either diverges (clear error) or, for a hinge-loss GAN whose
    # losses stay bounded, trains; it must never leave a half-fitted model behind
    try:
        model.fit(ds)
    except TrainingDivergedError:
        with pytest.raises(NotFittedError):
            model.sample(1)
    else:
        images, _ = model.sample(3, seed=0)
        assert torch.isfinite(images).all()


def test_loading_a_file_as_another_model_type_is_refused(name, tiny_images, device, tmp_path):
    path = make(name, device).fit(tiny_images).save(tmp_path / "m.safetensors")
    other = "cgan" if name != "cgan" else "cvae"
    _rewrite_header(path, lambda m: m.update(model_type=other), rehash=True)
    with pytest.raises(CheckpointError, match="does not match"):
        synthaug.load(path)


@pytest.mark.parametrize(
    "param, value",
    [
        ("epochs", 0),
        ("batch_size", 1),
        ("lr", -1.0),
        ("seed", -3),
        ("device", "tpu"),
        ("verbose", "yes"),
    ],
)
def test_parameter_rules_are_checked_at_fit(name, tiny_images, param, value):
    model = make(name, **{param: value})  # setting a parameter only stores it
    with pytest.raises(InvalidParameterError, match=param):
        model.fit(tiny_images)


def test_unknown_generator_name():
    with pytest.raises(InvalidParameterError, match="available"):
        create_generator("diffusion-xl")


# -- checkpoints -------------------------------------------------------------------------
@pytest.fixture
def saved(tiny_images, tmp_path, device):
    model = make("cvae", device).fit(tiny_images)
    return model.save(tmp_path / "m.safetensors")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no model file"):
        synthaug.load(tmp_path / "nope.safetensors")


def test_truncated_checkpoint(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        synthaug.load(saved)


def test_garbage_checkpoint(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"this is not a model at all")
    with pytest.raises(CheckpointError):
        synthaug.load(path)


def test_edited_weights_fail_the_integrity_check(saved):
    data = bytearray(saved.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside the last tensor's bytes
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="integrity"):
        synthaug.load(saved)


def _rewrite_header(path, edit, rehash=False):
    """Edit the header metadata in place; ``rehash`` also writes a matching digest (a file
    that is consistent with itself but not with what it claims, as a buggy writer might make)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    edit(header["__metadata__"])
    if rehash:
        tensors = load_file(str(path))
        header["__metadata__"]["sha256"] = content_digest(header["__metadata__"], tensors)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + data[8 + n :])


def _edit_json(key, edit):
    def apply(meta):
        value = json.loads(meta[key])
        edit(value)
        meta[key] = json.dumps(value)

    return apply


def test_swapped_class_names_fail_the_integrity_check(tmp_path, tiny_images, device):
    path = make("cvae", device).fit(tiny_images).save(tmp_path / "m.safetensors")
    _rewrite_header(path, _edit_json("fitted", lambda f: f["class_names_"].reverse()))
    with pytest.raises(CheckpointError, match="integrity check: its header or weights changed"):
        synthaug.load(path)


@pytest.mark.parametrize(
    "key, edit",
    [
        ("params", lambda p: p.update(latent_dim=p["latent_dim"] + 1)),
        ("fitted", lambda f: f["class_counts_"].update({"0": 999})),
        ("fitted", lambda f: f.update(sample_shape_=[1, 9, 9])),
    ],
)
def test_any_header_edit_fails_with_one_line(tmp_path, tiny_images, device, key, edit):
    path = make("cvae", device).fit(tiny_images).save(tmp_path / "m.safetensors")
    _rewrite_header(path, _edit_json(key, edit))
    with pytest.raises(CheckpointError, match="integrity") as info:
        synthaug.load(path)
    assert "\n" not in str(info.value)


def test_a_self_consistent_but_mismatched_file_fails_with_one_line(saved):
    # A digest that matches a wrong header (a writer bug, not an edit) still fails on one line.
    _rewrite_header(
        saved, _edit_json("params", lambda p: p.update(latent_dim=p["latent_dim"] + 1)), True
    )
    with pytest.raises(CheckpointError, match="does not match the CVAE") as info:
        synthaug.load(saved)
    assert "\n" not in str(info.value) and "size mismatch" in str(info.value)


def test_a_file_from_before_the_header_digest_loads_with_a_warning(saved):
    # Older files carry a digest of the tensors alone and no scope marker.
    def old_style(meta):
        del meta["digest_scope"]
        meta["sha256"] = tensor_digest(load_file(str(saved)))

    _rewrite_header(saved, old_style)
    with pytest.warns(UserWarning, match="save it again"):
        model = synthaug.load(saved)
    assert model.sample(2, seed=0)[0].shape[0] == 2


def test_loaded_model_carries_its_digest_and_metadata(tmp_path, tiny_images, device):
    model = make("cvae", device).fit(tiny_images)
    path = model.save(tmp_path / "m.safetensors", metadata={"data": "tiny", "holdout": [1, 2]})
    loaded = synthaug.load(path)
    assert loaded.metadata_ == {"data": "tiny", "holdout": [1, 2]}
    assert len(loaded.file_digest_) == 64
    assert loaded.fit_seconds_ == pytest.approx(model.fit_seconds_) and model.fit_seconds_ > 0
    with pytest.raises(InvalidParameterError, match="JSON-able"):
        model.save(tmp_path / "bad.safetensors", metadata={"x": object()})
    assert not (tmp_path / "bad.safetensors").exists()


def test_newer_format_version_is_refused(saved):
    _rewrite_header(saved, lambda m: m.update(format_version="99"))
    with pytest.raises(CheckpointError, match="newer"):
        synthaug.load(saved)


def test_unknown_model_type_is_refused(saved):
    _rewrite_header(saved, lambda m: m.update(model_type="mystery-gan"), rehash=True)
    with pytest.raises(CheckpointError, match="mystery-gan"):
        synthaug.load(saved)


def test_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a synthaug model"):
        synthaug.load(path)


def test_save_never_leaves_a_temp_file(saved):
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


# -- CVAE specifics ----------------------------------------------------------------------
def test_cvae_learns_digits(small_digits):
    """A short CVAE run lowers its loss and makes class-specific samples."""
    model = CVAE(epochs=30, verbose=False, seed=0).fit(small_digits)
    assert model.history[-1]["loss"] < 0.8 * model.history[0]["loss"]
    zeros, _ = model.sample(50, y=0, seed=0)
    ones, _ = model.sample(50, y=1, seed=0)
    real0 = small_digits.images[small_digits.labels == 0].mean(0)
    real1 = small_digits.images[small_digits.labels == 1].mean(0)
    # each class's mean sample is closer to its own real class mean than to the other's
    assert (zeros.mean(0) - real0).norm() < (zeros.mean(0) - real1).norm()
    assert (ones.mean(0) - real1).norm() < (ones.mean(0) - real0).norm()


def test_nan_loss_stops_with_a_clear_error(tiny_images):
    model = CVAE(epochs=3, lr=1e30, verbose=False, hidden_dims=(8,))
    with pytest.raises(TrainingDivergedError, match="diverged"):
        model.fit(tiny_images)
