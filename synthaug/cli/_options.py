"""The options several subcommands share, each declared once with its help text.

A command adds what it takes by calling these in the order its ``--help`` lists them; where
the commands differ in what an option does (what ``--seed`` seeds, what ``--quiet``
silences), the helper takes those words and the rest of the declaration stays here. Options
of data and output files are in :mod:`synthaug.cli._files`, beside the code that reads and
writes them.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from synthaug.cli._types import parse_param
from synthaug.errors import InvalidParameterError


class _Default:
    """Marks an option's default value, so that a command can tell it from the same value
    given on the command line (``--seed 0``): see :func:`was_given`."""


class _DefaultInt(int, _Default):
    pass


class _DefaultStr(str, _Default):
    pass


def was_given(value: Any) -> bool:
    """Whether an option's value was given on the command line rather than left at its
    default (for the options declared here with a marked default, and ``None`` defaults)."""
    return value is not None and not isinstance(value, _Default)


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """The positional ``model``: a file written by ``synthaug train``."""
    parser.add_argument("model", help="a model saved by 'synthaug train' (.safetensors)")


def add_seed_option(
    parser: argparse.ArgumentParser, seeds: str, default_help: str = "%(default)s"
) -> None:
    """``--seed``, 0 by default; ``seeds`` says what it seeds (``"sampling"``), and
    ``default_help`` what the default is when a command does more than use it."""
    parser.add_argument(
        "--seed", type=int, default=_DefaultInt(0), help=f"{seeds} seed (default: {default_help})"
    )


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device``, resolved by the library (``auto``: a GPU when there is one)."""
    parser.add_argument(
        "--device",
        default=_DefaultStr("auto"),
        help="auto, cpu or cuda[:N] (default: %(default)s)",
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


def check_param_conflicts(args: argparse.Namespace, options: Mapping[str, str]) -> None:
    """Refuse a ``--param`` that sets what an option given on the same command line sets.

    ``options`` maps a parameter name to the option that sets it (``{"seed": "--seed"}``).
    Without this, the option would silently win (``--param seed=5 --seed 3`` trains with seed
    3). A ``--param`` alone is not refused: the command leaves that parameter to it.
    """
    for key, value in args.param:
        option = options.get(key)
        if option is None:
            continue
        given = getattr(args, option.lstrip("-").replace("-", "_"))
        if was_given(given) and given is not False:
            shown = option if given is True else f"{option} {given}"
            raise InvalidParameterError(
                f"--param {key}={value!r} and {shown} both set {key}; give one of them "
                f"({option} is the usual way)"
            )


def params_given(args: argparse.Namespace) -> set[str]:
    """The parameter names ``--param`` set."""
    return {key for key, _ in args.param}
