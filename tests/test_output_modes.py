"""Every file synthaug writes gets the mode the user's umask gives a normal file (issue 37:
model files were written 0600, whatever the umask, by safetensors' save_file)."""

from __future__ import annotations

import os
import stat

import pytest

from synthaug.cli import main
from synthaug.generators import CVAE
from synthaug.metrics import FeatureExtractor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(params=[0o027, 0o002])
def umask(request):
    """The process umask set to ``request.param`` for the test, then restored."""
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_model_files_take_the_umask(umask, tiny_images, tmp_path):
    model = CVAE(epochs=1, hidden_dims=(8,), latent_dim=2, verbose=False, device="cpu")
    path = model.fit(tiny_images).save(tmp_path / "m.safetensors")
    assert mode(path) == 0o666 & ~umask
    fx = FeatureExtractor(epochs=1, seed=0, device="cpu").fit(tiny_images)
    fx.save(tmp_path / "fx.safetensors")
    assert mode(tmp_path / "fx.safetensors") == 0o666 & ~umask


def test_command_outputs_take_the_umask(umask, tiny_images, tmp_path, capsys):
    model = CVAE(epochs=1, hidden_dims=(8,), latent_dim=2, verbose=False, device="cpu")
    path = str(model.fit(tiny_images).save(tmp_path / "m.safetensors"))
    outputs = {
        "npz": tmp_path / "s.npz",
        "png": tmp_path / "pngs",
        "dicom": tmp_path / "dicom",
    }
    for fmt, out in outputs.items():
        argv = ["sample", path, "--n", "3", "--out", str(out), "--format", fmt]
        assert main(argv) == 0, capsys.readouterr().err
    files = [p for out in outputs.values() for p in [out, *out.rglob("*")] if p.is_file()]
    folders = [p for out in outputs.values() for p in [out, *out.rglob("*")] if p.is_dir()]
    assert len(files) > 6 and len(folders) >= 2
    assert {p.name: mode(p) for p in files} == {p.name: 0o666 & ~umask for p in files}
    assert {p.name: mode(p) for p in folders} == {p.name: 0o777 & ~umask for p in folders}
