"""``synthaug info`` and the parameter errors of ``synthaug train``."""

from __future__ import annotations

import json

import pytest

import synthaug
from synthaug.cli import main
from synthaug.data import from_arrays, load_digits
from synthaug.generators import CVAE

TINY = ["--epochs", "1", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("info") / "m.safetensors"
    assert main(["train", "--data", "digits", "--model", "cvae", "--out", str(path), *TINY]) == 0
    return path


def test_info_prints_what_the_file_holds(model_path, capsys):
    capsys.readouterr()
    assert main(["info", str(model_path)]) == 0
    out = capsys.readouterr().out
    digest = synthaug.load(model_path).file_digest_
    counts = load_digits().class_counts()
    assert f"sha256          {digest}" in out
    assert "family          cvae (CVAE)" in out
    assert "classes         10: 0 (178), 1 (182)" in out and counts[0] == 178
    assert "sample shape    (1, 8, 8)" in out
    assert "trained         1 epochs in " in out and "losses          loss: " in out
    assert "not trained with differential privacy" in out
    assert "training images not stored" in out
    assert "epochs=1, " in out and "latent_dim=16, " in out


def test_info_json_and_loss_plot(model_path, tmp_path, capsys):
    plot = tmp_path / "loss.png"
    assert main(["info", str(model_path), "--json", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    facts = json.loads(out[: out.rindex("}") + 1])
    assert facts["model_type"] == "cvae" and facts["epochs"] == 1
    assert facts["classes"]["9"] == 180 and facts["sample_shape"] == [1, 8, 8]
    assert set(facts["losses"]) == {"loss", "recon", "kl"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_info_refuses_an_edited_file_and_a_bad_plot_name(model_path, tmp_path, capsys):
    edited = tmp_path / "edited.safetensors"
    data = model_path.read_bytes()
    # Swap two class names in the header: the same length, so only the digest can tell.
    edited.write_bytes(data.replace(b'\\"0\\", \\"1\\"', b'\\"1\\", \\"0\\"', 1))
    assert edited.read_bytes() != data
    capsys.readouterr()
    assert main(["info", str(edited)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synthaug: error: ") and "integrity" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        main(["info", str(model_path), "--plot", str(tmp_path / "loss.txt")])
    assert exc.value.code == 2


def test_info_of_a_private_model_shows_the_budget(tmp_path, capsys):
    pytest.importorskip("opacus")
    digits = load_digits()
    small = digits.subset(list(range(200)))
    model = CVAE(epochs=1, verbose=False, dp=synthaug.DP(epsilon=5.0, delta=1e-3)).fit(small)
    path = model.save(tmp_path / "dp.safetensors")
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "privacy         epsilon " in out and "delta 0.001" in out and "accountant" in out


def test_info_names_a_model_that_stores_training_images(tmp_path, capsys, monkeypatch):
    x = load_digits()
    model = CVAE(epochs=1, verbose=False).fit(from_arrays(x.images[:40], x.labels[:40] % 2))
    monkeypatch.setattr(CVAE, "stores_training_images", True)
    path = model.save(tmp_path / "ex.safetensors")
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    assert "training images STORED in the file" in capsys.readouterr().out


@pytest.mark.parametrize(
    "param, text",
    [
        ("no_such=1", "has no parameter(s) ['no_such']; valid: "),
        ("latent_dim=-1", "latent_dim"),
        ("latent_dim=big", "latent_dim"),
    ],
)
def test_train_param_errors_exit_2_before_reading_data(param, text, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    # The data path does not exist: a parameter error must be found before it is read.
    argv = ["train", "--data", str(tmp_path / "missing"), "--model", "cvae", "--out", str(out)]
    assert main([*argv, "--param", param, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synthaug: error: ") and err.count("\n") == 1, err
    assert text in err and "no data at" not in err and "Traceback" not in err
    assert not out.exists()
