"""What a process running synthaug sets up for itself: the allocator, how warnings show.

Torch-free on purpose: the command line imports this before it knows whether a command will
run at all, and ``synthaug --help`` must not pay for importing torch.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from typing import Any

from synthaug.errors import SynthaugWarning

# glibc mallopt parameters (malloc.h) and the values tune_allocator sets.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -2, -3, -4
_ALLOCATOR_SETTINGS = (
    (_M_MMAP_THRESHOLD, 32 << 20),  # glibc's ceiling: blocks below it come from the heap
    (_M_MMAP_MAX, 0),  # and so do larger ones (128x128 activations pass 32 MiB)
    (_M_TRIM_THRESHOLD, 1 << 30),  # keep up to 1 GiB of freed heap instead of returning it
    (_M_TOP_PAD, 64 << 20),  # grow the heap in 64 MiB steps
)


@functools.cache
def tune_allocator() -> bool:
    """Make glibc's malloc keep freed memory for reuse; True when it applied.

    By default glibc serves every block over a few MiB with a fresh ``mmap`` and unmaps it on
    free, so a training loop that allocates the same large temporaries each step (Opacus'
    per-sample gradients, 64x64 activations) page-faults them in again every time: a
    differentially private CVAE epoch on digits spent more time in the kernel (4.8 s) than in
    user code (4.1 s), 2.2 million page faults for three epochs, and ran 2.8x faster with this
    setting. Every block then comes from the heap, and up to 1 GiB of freed heap is kept for
    reuse rather than returned: it changes nothing but speed and the memory the process keeps
    (peak resident memory about the same: 1,416 against 1,399 MiB in ``benchmarks/perf.py``'s
    64x64 CVAE rows). The CLI and the benchmarks call it, and a script may. Does nothing (False) off
    glibc.
    """
    name = ctypes.util.find_library("c")
    if sys.platform != "linux" or name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in _ALLOCATOR_SETTINGS)


def warning_line(message: Warning | str, category: type[Warning]) -> str:
    """``synthaug: warning: <message>`` on one line; other libraries' warnings name their kind."""
    text = " ".join(str(message).split())
    if not issubclass(category, SynthaugWarning):
        text = f"{category.__name__}: {text}"
    return f"synthaug: warning: {text}"


def show_warning_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A ``warnings.showwarning`` that prints :func:`warning_line` (to stderr by default)."""
    print(warning_line(message, category), file=sys.stderr if file is None else file)
