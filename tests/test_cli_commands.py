"""train / sample / augment / grid, each run as a subprocess, including bad arguments and
missing files; extra cases run in-process through ``main``."""

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import synthaug
from synthaug.cli import main
from synthaug.data import load_npz, make_imbalanced, save_npz

ROOT = str(Path(synthaug.__file__).resolve().parent.parent)
TINY = ["--epochs", "2", "--param", "hidden_dims=[32]", "--param", "latent_dim=4"]


def start(*args, cwd):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-m", "synthaug.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_all(commands, cwd):
    """Run several CLI subprocesses at once (they are mostly start-up time); return results."""
    procs = [start(*args, cwd=cwd) for args in commands]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append((proc.returncode, out, err))
    return results


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, small_digits):
    """A small imbalanced .npz data set and a cvae trained on it by `synthaug train`.

    Trained in-process through ``main`` (a subprocess would add a start-up of torch to every
    run of the module); the subprocess tests below run the other commands, and `train`'s
    failures, as processes.
    """
    root = tmp_path_factory.mktemp("cli")
    real = make_imbalanced(small_digits, ratio=0.25, minority_classes=[8, 9], seed=0)
    save_npz(real, root / "real.npz")
    model = root / "model.safetensors"
    argv = ["train", "--data", str(root / "real.npz"), "--model", "cvae", "--out", str(model)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main([*argv, *TINY, "--quiet", "--device", "cpu"])
    assert rc == 0
    assert f"saved {model}" in out.getvalue() and model.is_file()
    return root


@pytest.mark.slow
def test_sample_augment_grid_subprocesses(workdir):
    results = run_all(
        [
            ["sample", "model.safetensors", "--n", "30", "--class", "3", "--out", "three.npz"],
            ["sample", "model.safetensors", "--n", "12", "--out", "pngs", "--seed", "1"],
            [
                "augment",
                "--data",
                "real.npz",
                "--model",
                "model.safetensors",
                "--strategy",
                "balance",
                "--out",
                "augmented.npz",
            ],
            ["grid", "model.safetensors", "--out", "grid.png", "--per-class", "3"],
        ],
        cwd=workdir,
    )
    for rc, _, err in results:
        assert rc == 0, err
    three = load_npz(workdir / "three.npz")
    assert len(three) == 30 and set(three.labels.tolist()) == {3}
    pngs = sorted(p.relative_to(workdir / "pngs") for p in (workdir / "pngs").rglob("*.png"))
    assert len(pngs) == 12 and all(p.parent.name in [str(c) for c in range(10)] for p in pngs)
    real = load_npz(workdir / "real.npz")
    augmented = load_npz(workdir / "augmented.npz")
    assert set(augmented.class_counts().values()) == {20}
    assert torch.equal(augmented.images[: len(real)], real.images)
    with np.load(workdir / "augmented.npz") as npz:
        assert int(npz["train_synthetic"].sum()) == 30
        assert not npz["train_synthetic"][: len(real)].any()
    assert "added 30 synthetic samples" in results[2][1]
    assert (workdir / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_bad_arguments_and_missing_files_subprocesses(workdir):
    # every command gets one case here and the other kind in test_in_process_failures
    cases = [
        # (arguments, text expected in stderr, whether argparse's usage hint follows)
        (
            ["train", "--data", "real.npz", "--model", "nope", "--out", "m.safetensors"],
            "invalid choice",
            True,
        ),
        (["sample", "missing.safetensors", "--n", "5", "--out", "s.npz"], "no model file", False),
        (
            ["augment", "--data", "missing_dir/", "--model", "model.safetensors", "--out", "a.npz"],
            "no data at",
            False,
        ),
        (["grid", "model.safetensors", "--out", "grid.txt"], "--out must end in", True),
    ]
    results = run_all([args for args, _, _ in cases], cwd=workdir)
    for (args, text, hint), (rc, _, err) in zip(cases, results, strict=True):
        assert rc == 2, (args, err)  # what was given is wrong: exit 2, however it was found
        assert text in err, (args, err)
        lines = err.splitlines()  # one line, no traceback; argparse adds one line of hint
        assert len(lines) == 1 + hint and "error: " in lines[0], err
        if hint:
            assert lines[1] == f"hint: run 'synthaug {args[0]} --help' for usage", err


def test_in_process_failures(workdir, capsys, tmp_path):
    model = str(workdir / "model.safetensors")
    usage = [
        ["train", "--data", "digits", "--model", "cvae", "--out", "m", "--epochs", "0"],
        ["sample", model, "--n", "0", "--out", "s.npz"],
        ["augment", "--data", "digits", "--model", model, "--strategy", "ratio", "--out", "a.npz"],
        ["augment", "--data", "digits", "--model", model, "--ratio", "2", "--out", "a.npz"],
        ["grid", model, "--out", "g.png", "--per-class", "-1"],
        ["sample", model, "--n", "3", "--out", "s.npz", "--format", "tiff"],
    ]
    for argv in usage:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x00" * 20)
    failing = [
        (["train", "--data", str(tmp_path / "no.npz"), "--model", "cvae", "--out", "m"], "no data"),
        (["sample", model, "--n", "3", "--class", "cat", "--out", "c.npz"], "cat"),
        (
            ["sample", str(tmp_path / "corrupt.safetensors"), "--n", "3", "--out", "c.npz"],
            "corrupt",
        ),
        (["sample", model, "--n", "3", "--out", str(tmp_path / "c.csv")], "output format"),
        (["augment", "--data", str(tmp_path), "--model", model, "--out", "a.npz"], "subfolders"),
        (["grid", str(tmp_path / "none.safetensors"), "--out", "g.png"], "no model file"),
    ]
    capsys.readouterr()
    for argv, text in failing:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("synthaug: error: ") and err.count("\n") == 1, err
        assert text in err, err


def test_help_of_every_command(capsys):
    for command in ["train", "sample", "augment", "grid"]:
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert f"usage: synthaug {command}" in capsys.readouterr().out


def test_in_process_variants(workdir, capsys, tmp_path):
    model = str(workdir / "model.safetensors")
    # --format overrides the suffix; a class can be given by name
    assert (
        main(
            [
                "sample",
                model,
                "--n",
                "4",
                "--class",
                "9",
                "--out",
                str(tmp_path / "x"),
                "--format",
                "npz",
            ]
        )
        == 0
    )
    with np.load(tmp_path / "x") as npz:
        assert npz["train_labels"].tolist() == [9] * 4
    assert (
        main(
            [
                "augment",
                "--data",
                str(workdir / "real.npz"),
                "--model",
                model,
                "--strategy",
                "ratio",
                "--ratio",
                "0.5",
                "--out",
                str(tmp_path / "r.npz"),
            ]
        )
        == 0
    )
    real = load_npz(workdir / "real.npz")
    expected = {c: n + round(0.5 * n) for c, n in real.class_counts().items()}
    assert load_npz(tmp_path / "r.npz").class_counts() == expected
    assert (
        main(
            [
                "grid",
                model,
                "--data",
                str(workdir / "real.npz"),
                "--out",
                str(tmp_path / "g.svg"),
                "--per-class",
                "2",
            ]
        )
        == 0
    )
    assert (tmp_path / "g.svg").read_text().lstrip().startswith("<?xml")


def test_train_on_an_image_folder(tmp_path, tiny_images, capsys):
    from synthaug.data import save_image_folder

    save_image_folder(tiny_images, tmp_path / "folder")
    out = tmp_path / "folder_model"
    argv = ["train", "--data", str(tmp_path / "folder"), "--model", "cvae", "--out", str(out)]
    assert main(argv + TINY + ["--quiet", "--device", "cpu"]) == 0
    assert (tmp_path / "folder_model.safetensors").is_file()
    assert "trained cvae on 30 samples (a: 10, b: 10, c: 10)" in capsys.readouterr().out
    assert main(argv + ["--param", "no_such_param=1", "--quiet", "--overwrite"]) == 2
    assert "no_such_param" in capsys.readouterr().err


def test_train_a_per_class_model_by_preset_and_refuse_an_unreachable_seed(tmp_path, capsys):
    out = tmp_path / "pc.safetensors"
    argv = ["train", "--data", "digits", "--out", str(out), "--quiet", "--device", "cpu"]
    assert main([*argv, "--model", "perclass-vae", "--epochs", "1", "--param", "latent_dim=3"]) == 0
    model = synthaug.load(out)
    # --seed, --device and --epochs reach the inner CVAE of the preset.
    assert model.estimator.latent_dim == 3 and model.estimator.epochs == 1
    assert "trained perclass-vae" in capsys.readouterr().out
    # A per-class model around a generator *name* has nowhere to take --seed: said, not ignored.
    assert main([*argv, "--model", "perclass", "--param", "estimator=cvae", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "seed" in err and "perclass-vae" in err


@pytest.mark.slow
def test_sample_as_dicom_and_refuse_mixed_dicom(workdir, capsys, tmp_path):
    from synthaug.data import load_dicom_folder

    model = str(workdir / "model.safetensors")
    out = tmp_path / "dicom"
    argv = ["sample", model, "--n", "6", "--class", "9", "--out", str(out), "--format", "dicom"]
    assert main(argv) == 0
    back = load_dicom_folder(out, size=(8, 8))
    assert len(back) == 6 and back.classes == ["9"]
    assert all(m["modality"] == "OT" for m in back.metadata)
    real = str(workdir / "real.npz")
    argv = ["augment", "--data", real, "--model", model, "--out", str(tmp_path / "mixed")]
    # Refused as a usage error before the model is even loaded, and nothing is written.
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--format", "dicom"])
    assert exit_info.value.code == 2
    assert "synthetic images only" in capsys.readouterr().err
    assert not (tmp_path / "mixed").exists()
