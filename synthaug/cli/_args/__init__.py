"""The arguments of every subcommand, one module per command: torch-free.

Each module has ``register(subparsers)``, which declares the command's arguments and returns
its parser, and, where the command checks its arguments against each other or their form
(``--ratio`` only with ``--strategy ratio``, a figure's suffix), ``check(args)``. Neither may
import torch or anything that does: the command line builds its parser from these modules and
runs the checks before it imports the module that does the command's work
(:data:`synthaug.cli._COMMANDS`), so that ``--help``, usage errors and argument checks answer
at once. ``tests/test_cli_startup.py`` holds them to it.
"""
