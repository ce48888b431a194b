"""The command-line examples of the README and docs/integration.md run, in order, in an empty
folder (issue 37: they used inputs that did not exist). Each line is run as written, with
options appended that make it small (argparse keeps the last value of an option, ``--param``
the last value of a key)."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from synthaug.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Appended to every line of a command: a tiny network, few epochs, few samples.
SMALLER = {
    "make-data": ["--param", "n_per_class=[12,6]", "--param", "size=16"],
    "train": ["--epochs", "1", "--param", "hidden_dims=[16]", "--param", "latent_dim=2"],
    "sample": ["--n", "20"],
    "evaluate": ["--feature-epochs", "1", "--n-synthetic", "40"],
    "release": ["--n", "40", "--feature-epochs", "1", "--classifier-epochs", "1"],
}


def console_block(page: Path, heading: str) -> list[list[str]]:
    """The ``$ synthaug ...`` lines of the console block under ``heading``, as argv lists."""
    section = page.read_text().split(f"\n{heading}\n", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.S).group(1)
    return [
        shlex.split(line[2:], comments=True)
        for line in block.splitlines()
        if line.startswith("$ synthaug ")
    ]


def smaller(argv: list[str]) -> list[str]:
    extra = SMALLER.get(argv[0], [])
    if argv[0] == "make-data" and argv[1] != "phantoms":
        extra = []  # only phantoms take sizes
    return [*argv, *extra]


def device_commands() -> set[str]:
    """The commands that take ``--device``: the tests' device goes to them."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name for name, p in sub.choices.items() if any(a.dest == "device" for a in p._actions)}


@pytest.mark.slow
def test_readme_command_line_examples_run_in_order(tmp_path, monkeypatch, capsys, device):
    monkeypatch.chdir(tmp_path)
    lines = console_block(README, "## Command line")
    assert len(lines) >= 10 and lines[0][:2] == ["synthaug", "make-data"]
    run_in_order(lines, device, capsys)
    # What the lines promise exists.
    for made in ("digits.npz", "phantoms.npz", "scans", "cvae.safetensors", "threes.npz"):
        assert (tmp_path / made).exists(), made
    assert (tmp_path / "release" / "DATA_CARD.md").is_file()
    assert (tmp_path / "ct.safetensors").is_file()


@pytest.mark.slow
def test_integration_page_command_line_examples_run_in_order(tmp_path, monkeypatch, capsys, device):
    monkeypatch.chdir(tmp_path)
    lines = console_block(ROOT / "docs" / "integration.md", "## Command line")
    assert len(lines) >= 8
    run_in_order(lines, device, capsys)
    assert (tmp_path / "aug.npz").is_file() and (tmp_path / "losses.png").is_file()


def run_in_order(lines: list[list[str]], device: str, capsys) -> None:
    on_device = device_commands()
    for argv in lines:
        command = smaller(argv[1:])
        if command[0] in on_device:
            command += ["--device", device]
        assert main(command) == 0, (argv, capsys.readouterr().err)


def test_readme_shell_lines_parse_and_name_files_that_exist():
    # The other command lines of the README (demo, bench, report) run for minutes: here each
    # must parse, and a benchmark config it names must be in the checkout.
    text = README.read_text()
    blocks = re.findall(r"```(?:bash|console)\n(.*?)```", text, re.S)
    lines = [
        shlex.split(line.removeprefix("$ "), comments=True)
        for block in blocks
        for line in block.splitlines()
        if line.removeprefix("$ ").startswith("synthaug ")
    ]
    assert len(lines) > 15
    parser = build_parser()
    for argv in lines:
        args = parser.parse_args(argv[1:])
        if argv[1] == "bench":
            assert (README.parent / args.config).is_file(), argv
