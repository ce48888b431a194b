"""How the command line shows Python warnings: one line each on stderr, no source lines."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from synthaug._process import show_warning_line


def run_showing_warnings(command: Callable[[Any], Any], args: Any) -> Any:
    """``command(args)`` with every warning it raises shown as one line on stderr.

    Python's default display (the file, the line number and the source line of synthaug's
    code) means nothing to someone at a shell. Only the display changes, for the command's
    duration; which warnings show is still up to the filters (``-W``, ``PYTHONWARNINGS``).
    """
    previous = warnings.showwarning
    warnings.showwarning = show_warning_line
    try:
        return command(args)
    finally:
        warnings.showwarning = previous
