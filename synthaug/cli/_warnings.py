"""How the command line shows Python warnings: one line each on stderr, no source lines."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any, TextIO

from synthaug.errors import SynthaugWarning


def warning_line(message: Warning | str, category: type[Warning]) -> str:
    """``synthaug: warning: <message>`` on one line; other libraries' warnings name their kind."""
    text = " ".join(str(message).split())
    if not issubclass(category, SynthaugWarning):
        text = f"{category.__name__}: {text}"
    return f"synthaug: warning: {text}"


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    print(warning_line(message, category), file=sys.stderr if file is None else file)


def run_showing_warnings(command: Callable[[Any], Any], args: Any) -> Any:
    """``command(args)`` with every warning it raises shown as one line on stderr.

    Python's default display (the file, the line number and the source line of synthaug's
    code) means nothing to someone at a shell. Only the display changes, for the command's
    duration; which warnings show is still up to the filters (``-W``, ``PYTHONWARNINGS``).
    """
    previous = warnings.showwarning
    warnings.showwarning = _show
    try:
        return command(args)
    finally:
        warnings.showwarning = previous
