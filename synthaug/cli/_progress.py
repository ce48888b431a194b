"""Stage lines of long commands, on stderr: stdout is what scripts read."""

from __future__ import annotations

import sys
import time


class Stages:
    """Announce each stage of a command as it starts: ``synthaug evaluate [2/5] fidelity``.

    One line per stage, with the seconds the previous stages took, so that a log shows where
    the time went. Off when ``quiet``.
    """

    def __init__(self, command: str, total: int, *, quiet: bool = False) -> None:
        self.command = command
        self.total = total
        self.quiet = quiet
        self.done = 0
        self.started = time.perf_counter()

    def start(self, what: str) -> None:
        """Print the line of the next stage, ``what`` it does."""
        self.done += 1
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.started
        print(
            f"synthaug {self.command} [{self.done}/{self.total}] {what} ({elapsed:.0f} s so far)",
            file=sys.stderr,
            flush=True,
        )
