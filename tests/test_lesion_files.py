"""Fitted lesion sources save and load like generators: ``save``, ``synthaug.load``, the digest,
``synthaug info``, ``train --source`` and ``augment --model``; a file of real pixels says so,
``release`` refuses it, and a damaged file is refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import synthaug
from synthaug.augment import FILE_TYPES, CopyPaste, LesionTransplant
from synthaug.cli import main
from synthaug.data import make_phantoms, save_npz
from synthaug.errors import CheckpointError
from synthaug.generators import CVAE, MODEL_FILES
from synthaug.generators import load as load_generator_layer
from synthaug.nn import checkpoint_header, read_checkpoint, write_checkpoint

# Small networks on a shared machine: one thread each.
pytestmark = pytest.mark.usefixtures("one_torch_thread")
EASY = {"lesion_radius": (0.07, 0.09), "lesion_contrast": (0.35, 0.45)}


@pytest.fixture(scope="module")
def chest():
    """40 normal and 6 lesion 32x32 chest slices with their true masks."""
    return make_phantoms((40, 6), size=32, seed=3, return_masks=True, **EASY)


@pytest.fixture(scope="module")
def copy_paste(chest, tmp_path_factory):
    data, masks = chest
    source = CopyPaste(seed=0, device="cpu").fit(data, masks=masks)
    return source, source.save(tmp_path_factory.mktemp("sources") / "cp", metadata={"a": 1})


@pytest.fixture(scope="module")
def transplant(chest, tmp_path_factory):
    data, masks = chest
    generator = CVAE(epochs=2, hidden_dims=(32,), latent_dim=4, verbose=False)
    source = LesionTransplant(generator=generator, device="cpu").fit(data, masks=masks)
    return source, source.save(tmp_path_factory.mktemp("sources") / "tr.safetensors")


def _same_samples(a, b, **kwargs) -> bool:
    first, second = a.sample(6, **kwargs), b.sample(6, **kwargs)
    return all(torch.equal(x, y) for x, y in zip(first, second, strict=True))


def test_a_copy_paste_source_round_trips(copy_paste):
    source, path = copy_paste
    assert path.name == "cp.safetensors"
    loaded = synthaug.load(path)
    assert isinstance(loaded, CopyPaste) and loaded.is_fitted
    assert _same_samples(source, loaded, y="lesion", seed=4, return_masks=True)
    assert loaded.get_params()["scale"] == source.get_params()["scale"]
    assert loaded.metadata_ == {"a": 1}
    assert loaded.file_digest_ == checkpoint_header(path)["sha256"]
    # What sampling does not use stays out of the file.
    assert not hasattr(loaded, "dataset_") and not hasattr(loaded, "training_masks_")


def test_a_transplant_round_trips_with_its_generator(transplant):
    source, path = transplant
    loaded = synthaug.load(path, device="cpu")
    assert isinstance(loaded, LesionTransplant)
    assert isinstance(loaded.generator_, CVAE) and loaded.generator_.latent_dim == 4
    assert _same_samples(source, loaded, y=1, seed=2, return_masks=True)
    meta, tensors = read_checkpoint(path, "synthaug-lesion-source", 1, "lesion source")
    assert any(k.startswith("generator.") for k in tensors)
    assert json.loads(meta["generator"])["model_type"] == "cvae"


def test_the_file_says_it_holds_real_pixels(copy_paste):
    header = checkpoint_header(copy_paste[1])
    assert header["format"] == "synthaug-lesion-source"
    assert header["keeps_real_pixels"] == "true" and header["stores_training_images"] == "true"
    loaded = synthaug.load(copy_paste[1])
    assert loaded.keeps_real_pixels and loaded.stores_training_images


def test_the_generators_loader_reads_a_source_through_the_registry(copy_paste):
    # The generators' layer never imports augment: augment registered its loader there.
    assert "synthaug-lesion-source" in MODEL_FILES
    assert isinstance(load_generator_layer(copy_paste[1]), CopyPaste)
    assert sorted(FILE_TYPES.list()) == ["copy-paste", "lesion-localizer", "lesion-transplant"]


def test_a_localizer_parameter_is_saved_as_its_configuration(chest, tmp_path):
    from synthaug.augment import LesionLocalizer

    data, masks = chest
    localizer = LesionLocalizer(sigma=1.0, vae=CVAE(latent_dim=3))
    path = CopyPaste(localizer=localizer, device="cpu").fit(data, masks=masks).save(tmp_path / "l")
    loaded = synthaug.load(path).localizer
    assert isinstance(loaded, LesionLocalizer) and loaded.sigma == 1.0
    assert isinstance(loaded.vae, CVAE) and loaded.vae.latent_dim == 3


# -- damaged files -----------------------------------------------------------------------------
def _rewrite(path, out, *, meta=None, tensors=None):
    """``path``'s content with header entries or tensors replaced, and a fresh, valid digest
    (as other code than ours could write it: the digest is no signature)."""
    header, contents = read_checkpoint(path, "synthaug-lesion-source", 1, "lesion source")
    header = {k: v for k, v in header.items() if k not in ("sha256", "digest_scope")}
    header.update(meta or {})
    contents.update(tensors or {})
    fmt = header.pop("format")
    version = int(header.pop("format_version"))
    header.pop("synthaug_version")
    return write_checkpoint(out, contents, header, fmt, version)


def test_damaged_source_files_are_refused(copy_paste, tmp_path):
    source, path = copy_paste
    raw = path.read_bytes()
    cases = {}
    # An edit of the header: the classes swapped (same length), so only the digest can tell.
    edited = tmp_path / "edited.safetensors"
    edited.write_bytes(
        raw.replace(b'[\\"normal\\", \\"lesion\\"]', b'[\\"lesion\\", \\"normal\\"]')
    )
    assert edited.read_bytes() != raw
    cases[edited] = "failed its integrity check"
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(raw[: len(raw) // 2])
    cases[truncated] = "not a readable synthaug"
    fitted = json.loads(checkpoint_header(path)["fitted"])
    cases[
        _rewrite(
            path,
            tmp_path / "label.safetensors",
            meta={"fitted": json.dumps({**fitted, "normal_label_": 5})},
        )
    ] = "does not match the CopyPaste"
    cases[_rewrite(path, tmp_path / "type.safetensors", meta={"model_type": "smote"})] = (
        "cannot build"
    )
    cases[
        _rewrite(path, tmp_path / "dtype.safetensors", tensors={"inside": source.inside_.float()})
    ] = "does not match the CopyPaste"
    cases[
        _rewrite(
            path,
            tmp_path / "shape.safetensors",
            tensors={"backgrounds": source.backgrounds_[:, :, :16].contiguous()},
        )
    ] = "inconsistent"
    cases[_rewrite(path, tmp_path / "params.safetensors", meta={"params": "{"})] = (
        "damaged configuration header"
    )
    cases[
        _rewrite(
            path, tmp_path / "scale.safetensors", meta={"params": json.dumps({"scale": [9, 1]})}
        )
    ] = "does not match the CopyPaste"
    for bad, fragment in cases.items():
        with pytest.raises(CheckpointError, match=fragment):
            synthaug.load(bad)


def test_a_file_of_no_known_kind_is_refused(copy_paste, tmp_path):
    header, tensors = read_checkpoint(copy_paste[1], "synthaug-lesion-source", 1, "source")
    future = write_checkpoint(tmp_path / "f.safetensors", tensors, {}, "synthaug-hologram", 1)
    with pytest.raises(CheckpointError, match="not a synthaug model"):
        synthaug.load(future)


# -- command line ------------------------------------------------------------------------------
def test_info_describes_a_source_and_its_real_pixels(copy_paste, transplant, tmp_path, capsys):
    capsys.readouterr()
    assert main(["info", str(copy_paste[1])]) == 0
    out = capsys.readouterr().out
    assert "family          copy-paste (CopyPaste), a fitted lesion source" in out
    assert f"sha256          {synthaug.load(copy_paste[1]).file_digest_}" in out
    n = len(copy_paste[0].backgrounds_)
    assert f"samples from    {n} normal images (class 'normal') and lesion (" in out
    assert "real pixels     STORED" in out
    assert main(["info", str(transplant[1]), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["keeps_real_pixels"] is True and facts["kind"] == "lesion source"
    assert facts["generator"]["model_type"] == "cvae" and facts["generator"]["epochs"] == 2
    assert main(["info", str(copy_paste[1]), "--plot", str(tmp_path / "l.png")]) == 2
    assert "no training losses to plot" in capsys.readouterr().err
    assert not (tmp_path / "l.png").exists()
    edited = tmp_path / "edited.safetensors"
    edited.write_bytes(copy_paste[1].read_bytes()[:-7])
    assert main(["info", str(edited)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synthaug: error: ") and err.count("\n") == 1


def test_release_refuses_a_source_even_with_allow_exemplars(copy_paste, tmp_path, capsys):
    for extra in [[], ["--allow-exemplars"]]:
        argv = ["release", str(copy_paste[1]), "--n", "5", "--out", str(tmp_path / "rel")]
        capsys.readouterr()
        assert main([*argv, *extra]) == 2
        err = capsys.readouterr().err
        assert "keeps real pixels" in err and "cannot be released" in err, err
        assert err.count("\n") == 1
    assert not (tmp_path / "rel").exists()


@pytest.mark.slow
def test_train_saves_a_source_that_augment_reuses(chest, tmp_path, capsys):
    data, masks = chest
    save_npz(data, tmp_path / "chest.npz")
    out = tmp_path / "cp.safetensors"
    argv = ["train", "--data", str(tmp_path / "chest.npz"), "--source", "copy-paste"]
    capsys.readouterr()
    # Without masks, the default localizer finds the lesions (a VAE of the normal images).
    assert main([*argv, "--out", str(out), "--device", "cpu", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "trained copy-paste on 46 samples" in printed and "real training pixels" in printed
    source = synthaug.load(out)
    assert isinstance(source, CopyPaste) and source.seed == 1
    assert source.metadata_["training_data"]["n_items"] == 46
    augmented = tmp_path / "aug.npz"
    argv = ["augment", "--data", str(tmp_path / "chest.npz"), "--model", str(out)]
    assert main([*argv, "--out", str(augmented), "--device", "cpu", "--synthetic-only"]) == 0
    assert "wrote the lesion masks with them" in capsys.readouterr().out
    with np.load(augmented) as npz:
        assert len(npz["train_labels"]) == 34  # the lesion class topped up to 40
        assert npz["train_masks"].shape == (34, 1, 32, 32) and npz["train_masks"].any()
    # With the real items too, their masks are unknown to a saved source: said, not claimed.
    assert main([*argv, "--out", str(tmp_path / "all.npz"), "--device", "cpu"]) == 0
    assert "lesion masks not written" in capsys.readouterr().out
    with np.load(tmp_path / "all.npz") as npz:
        assert "train_masks" not in npz and int(npz["train_derived"].sum()) == 34
        assert not npz["train_synthetic"].any()  # real slices with real lesions pasted in
    # A source of real pixels as DICOM still needs the flag that names the risk.
    dicom = ["--out", str(tmp_path / "d"), "--format", "dicom", "--synthetic-only"]
    assert main([*argv, *dicom]) == 2
    assert "--allow-real-pixels" in capsys.readouterr().err
    # Sources that keep nothing, and DP, are refused before anything is read or fitted.
    for extra, fragment in [
        (["--source", "classical"], "keeps nothing worth saving"),
        (["--source", "copy-paste", "--dp-epsilon", "1"], "drop --dp-epsilon"),
        (["--source", "copy-paste", "--epochs", "3"], "has no epochs parameter"),
    ]:
        base = ["train", "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "x")]
        assert main([*base, *extra]) == 2
        assert fragment in capsys.readouterr().err
