"""The ``synthaug`` command line.

Each subcommand lives in its own module of this package with a ``register(subparsers)``
function; adding a command is one module and one entry in ``_COMMANDS``.

Exit codes: 0 success; 2 when what was given is wrong (a usage error, a bad parameter, data
or file: every :class:`~synthaug.errors.SynthaugError` but the few below); 1 when the work
itself failed (training diverged, benchmark cells failed, or an unexpected error). Errors are
printed as one line, usage errors with a hint (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from synthaug._utils import tune_allocator
from synthaug._version import __version__
from synthaug.cli import (
    _augment,
    _bench,
    _demo,
    _evaluate,
    _grid,
    _info,
    _release,
    _report,
    _sample,
    _train,
)
from synthaug.cli._warnings import run_showing_warnings
from synthaug.errors import SynthaugError

# Modules of this package that define subcommands, in the order --help lists them.
_COMMANDS = (
    _demo,
    _train,
    _sample,
    _augment,
    _grid,
    _info,
    _evaluate,
    _release,
    _bench,
    _report,
)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line plus a hint, not argparse's full usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\nhint: run '{self.prog} --help' for usage\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="synthaug", description="Synthetic data augmentation, measured honestly.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in _COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_allocator()  # the CLI owns its process: reuse freed memory instead of page-faulting
    try:
        return int(run_showing_warnings(args.func, args) or 0)
    except SynthaugError as exc:
        if args.debug:
            raise
        print(f"synthaug: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("synthaug: interrupted", file=sys.stderr)
        return 130
