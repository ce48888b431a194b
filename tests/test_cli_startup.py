"""The command line starts without torch: ``--help``, usage errors and argument checks answer
before any command's work module (and torch) is imported; ``import synthaug`` is torch-free and
its public names load on first use (issue 37). No timings here: benchmarks/perf.py times it."""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import synthaug
from synthaug.cli import _COMMANDS, build_parser, main
from synthaug.cli._files import WRITERS
from synthaug.cli._options import OUTPUT_FORMATS

ROOT = str(Path(synthaug.__file__).resolve().parent.parent)
COMMANDS = next(
    list(action.choices)
    for action in build_parser()._actions
    if isinstance(action, argparse._SubParsersAction)
)

# Arguments each rejected by argparse (a usage error) or by a command's check, before its work.
REFUSED = [
    ["demo", "--kind", "brain"],
    ["demo", "--generator", "cvae"],
    ["make-data", "phantoms", "--out", "p", "--masks"],
    ["make-data", "digits", "--out", "d.npz", "--modality", "CT"],
    ["advise", "--data", "digits", "--budget", "30"],
    ["train", "--data", "digits"],
    ["train", "--data", "digits", "--model", "cvae", "--out", "m", "--epochs", "0"],
    ["sample", "m.safetensors", "--n", "3", "--out", "s.npz", "--modality", "CT"],
    ["augment", "--data", "digits", "--model", "m", "--strategy", "ratio", "--out", "a.npz"],
    ["augment", "--data", "digits", "--model", "m", "--out", "a", "--format", "dicom"],
    ["augment", "--data", "digits", "--model", "m", "--out", "a.npz", "--param", "k=1"],
    ["grid", "m.safetensors", "--out", "g.jpg"],
    ["info", "m.safetensors", "--plot", "losses.txt"],
    ["evaluate", "m.safetensors", "--out", "eval.txt"],
    ["evaluate", "m.safetensors", "--seed", "-1"],
    ["release", "m.safetensors", "--n", "5", "--out", "r", "--modality", "CT"],
    ["bench", "grid.toml", "--out", "runs", "--ray-address", "auto"],
    ["report"],
    ["no-such-command"],
]


def python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports synthaug from this checkout."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_help_usage_errors_and_argument_checks_import_no_torch():
    # One fresh process for every case: each asserts torch is still out after it, so a case
    # that imported it would be named (torch never leaves sys.modules once in).
    result = python(
        f"""
        import contextlib, io, sys
        from synthaug.cli import build_parser, main
        build_parser()
        assert "torch" not in sys.modules, "building the parser imported torch"
        for argv in {[["--help"]] + [[c, "--help"] for c in COMMANDS] + REFUSED!r}:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(argv)
                except SystemExit as exc:
                    code = exc.code
            expected = 0 if argv[-1] == "--help" else 2
            assert code == expected, (argv, code, err.getvalue())
            text = out.getvalue() if expected == 0 else err.getvalue()
            assert "usage: synthaug" in text or "error: " in text, (argv, text)
            assert "torch" not in sys.modules, f"{{argv}} imported torch"
        print("checked", flush=True)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "checked"


def test_every_command_is_refused_once_above():
    assert {argv[0] for argv in REFUSED} >= set(COMMANDS)


def test_every_command_names_a_work_module_with_run():
    for command in _COMMANDS:
        assert callable(importlib.import_module(command.work).run), command.work


def test_the_formats_declared_torch_free_are_the_writers():
    assert sorted(OUTPUT_FORMATS) == sorted(WRITERS)


def test_import_synthaug_is_torch_free_and_its_names_load_on_first_use():
    result = python(
        """
        import sys
        import synthaug, synthaug.errors, synthaug._version
        assert "torch" not in sys.modules, "import synthaug imported torch"
        assert synthaug.__version__ == synthaug._version.__version__
        assert set(synthaug.__all__) <= set(dir(synthaug))
        from synthaug import DP
        assert "torch" in sys.modules
        from synthaug.nn import DP as nn_DP
        from synthaug.generators import load
        assert DP is nn_DP and synthaug.load is load
        assert synthaug.generators.CVAE.__name__ == "CVAE"   # subpackages as attributes
        assert all(getattr(synthaug, name) is not None for name in synthaug.__all__)
        try:
            synthaug.no_such_name
        except AttributeError as exc:
            assert "no_such_name" in str(exc)
        else:
            raise AssertionError("no AttributeError")
        print("checked")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "checked"


def test_registry_names_are_checked_when_the_command_runs(capsys, tmp_path):
    # No argparse choices (that would import the registries): the same usage error, exit 2.
    cases = [
        (["train", "--data", "digits", "--model", "nope", "--out", "m"], "--model", "'cvae'"),
        (
            ["augment", "--data", "digits", "--source", "nope", "--out", str(tmp_path / "a.npz")],
            "--source",
            "'copy-paste'",
        ),
    ]
    for argv, option, listed in cases:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.splitlines()
        assert err[0].startswith(
            f"synthaug {argv[0]}: error: argument {option}: invalid choice: 'nope' (choose from "
        ), err
        assert listed in err[0], err
        assert err[1] == f"hint: run 'synthaug {argv[0]} --help' for usage"
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_demo_medical_options_need_medical(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--kind", "brain"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--kind brain is for the medical demo: add --medical" in err
    assert "synthaug demo --medical --kind brain" in err
    with pytest.raises(SystemExit):
        main(["demo", "--kind", "brain", "--generator", "cvae"])
    assert "--kind brain and --generator cvae are for the medical demo" in capsys.readouterr().err


def test_no_command_imports_torchvision():
    # No command uses torchvision (2.4 s of start-up when it did); importing every command's
    # work module must not load it.
    works = [command.work for command in _COMMANDS]
    result = python(
        f"""
        import importlib, sys
        for name in {works!r}:
            importlib.import_module(name)
            assert "torchvision" not in sys.modules, f"{{name}} imported torchvision"
        print("checked")
        """
    )
    assert result.returncode == 0, result.stderr
