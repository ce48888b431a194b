"""The ``synthaug`` command line.

Each subcommand is two modules: its arguments in :mod:`synthaug.cli._args` (``register``,
and ``check`` where the arguments have rules among themselves), torch-free, and its work in
a module of this package (``run(args)``), which imports what it needs at the top. The parser
is built from the first kind only, and a command's work module is imported when that command
runs, after its arguments are checked: ``synthaug --help``, ``synthaug CMD --help``, usage
errors and argument checks never import torch. Adding a command is those two modules and one
entry in ``_COMMANDS``.

Exit codes: 0 success; 2 when what was given is wrong (a usage error, a bad parameter, data
or file: every :class:`~synthaug.errors.SynthaugError` but the few below); 1 when the work
itself failed (training diverged, benchmark cells failed, or an unexpected error). Errors are
printed as one line, usage errors with a hint (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from synthaug._process import tune_allocator
from synthaug._version import __version__
from synthaug.cli._args import (
    advise,
    augment,
    bench,
    demo,
    evaluate,
    grid,
    info,
    make_data,
    release,
    report,
    sample,
    train,
)
from synthaug.cli._warnings import run_showing_warnings
from synthaug.errors import SynthaugError


@dataclass(frozen=True)
class Command:
    """One subcommand: how its arguments are declared and checked, and where its work is.

    Attributes
    ----------
    register : callable
        Adds the command's parser to the subparsers and returns it (torch-free).
    work : str
        The module with ``run(args) -> int``, imported only when the command runs.
    check : callable, optional
        Checks the parsed arguments among themselves (torch-free), before ``work`` is imported.
    """

    register: Callable[[argparse._SubParsersAction], argparse.ArgumentParser]
    work: str
    check: Callable[[argparse.Namespace], None] | None = None


# The subcommands, in the order --help lists them.
_COMMANDS = (
    Command(demo.register, "synthaug.cli._demo", demo.check),
    Command(make_data.register, "synthaug.cli._make_data", make_data.check),
    Command(advise.register, "synthaug.cli._advise"),
    Command(train.register, "synthaug.cli._train", train.check),
    Command(sample.register, "synthaug.cli._sample", sample.check),
    Command(augment.register, "synthaug.cli._augment", augment.check),
    Command(grid.register, "synthaug.cli._grid", grid.check),
    Command(info.register, "synthaug.cli._info", info.check),
    Command(evaluate.register, "synthaug.cli._evaluate", evaluate.check),
    Command(release.register, "synthaug.cli._release", release.check),
    Command(bench.register, "synthaug.cli._bench", bench.check),
    Command(report.register, "synthaug.cli._report"),
)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line plus a hint, not argparse's full usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\nhint: run '{self.prog} --help' for usage\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line's parser; each command's parser is ``args.parser``, its
    :class:`Command` ``args.command``. Imports no torch."""
    parser = _Parser(prog="synthaug", description="Synthetic data augmentation, measured honestly.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND")
    sub.required = True
    for command in _COMMANDS:
        command_parser = command.register(sub)
        command_parser.set_defaults(command=command, parser=command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command = args.command
    try:
        if command.check is not None:
            command.check(args)
        # The command's work, with torch and the rest it needs, loads only now.
        run = importlib.import_module(command.work).run
        tune_allocator()  # the CLI owns its process: reuse freed memory instead of page-faulting
        return int(run_showing_warnings(run, args) or 0)
    except SynthaugError as exc:
        if args.debug:
            raise
        print(f"synthaug: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("synthaug: interrupted", file=sys.stderr)
        return 130
