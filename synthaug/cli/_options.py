"""The options several subcommands share, each declared once with its help text.

A command adds what it takes by calling these in the order its ``--help`` lists them; where
the commands differ in what an option does (what ``--seed`` seeds, what ``--quiet``
silences), the helper takes those words and the rest of the declaration stays here. Options
of data and output files are in :mod:`synthaug.cli._files`, beside the code that reads and
writes them.
"""

from __future__ import annotations

import argparse

from synthaug.cli._types import parse_param


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """The positional ``model``: a file written by ``synthaug train``."""
    parser.add_argument("model", help="a model saved by 'synthaug train' (.safetensors)")


def add_seed_option(parser: argparse.ArgumentParser, seeds: str) -> None:
    """``--seed``, 0 by default; ``seeds`` says what it seeds (``"sampling"``)."""
    parser.add_argument("--seed", type=int, default=0, help=f"{seeds} seed (default: %(default)s)")


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device``, resolved by the library (``auto``: a GPU when there is one)."""
    parser.add_argument(
        "--device", default="auto", help="auto, cpu or cuda[:N] (default: %(default)s)"
    )


def add_quiet_option(parser: argparse.ArgumentParser, silences: str) -> None:
    """``--quiet``; ``silences`` says what it turns off (``"progress bar"``)."""
    parser.add_argument("--quiet", action="store_true", help=f"no {silences}")


def add_param_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--param KEY=VALUE``, repeatable, collected as ``(key, value)`` pairs in ``args.param``;
    ``help`` says what the parameters configure."""
    parser.add_argument(
        "--param", type=parse_param, action="append", default=[], metavar="KEY=VALUE", help=help
    )
