"""Small internal helpers shared by every layer: devices, seeds, optional imports, warnings."""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

# Re-exported where they were before they moved to the torch-free synthaug._process.
from synthaug._process import show_warning_line, tune_allocator, warning_line  # noqa: F401
from synthaug.errors import (
    InvalidParameterError,
    MissingDependencyError,
    SingleClassWarning,
    SynthaugWarning,
)

# Frames in files under this folder are synthaug's own; a warning points past them.
_PACKAGE_DIR = str(Path(__file__).resolve().parent) + os.sep

_EXTRA_OF = {
    "opacus": "privacy",
    "ray": "ray",
    "pylibjpeg": "dicom",
}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` (CUDA when available, else CPU) or a device name into a ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidParameterError(
            f"device={device!r} is not a valid device; use 'auto', 'cpu' or 'cuda[:N]'"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(
            f"device={device!r} was asked for but CUDA is not available; use device='auto' or 'cpu'"
        )
    return resolved


def new_seed(rng: np.random.Generator | None = None) -> int:
    """Draw a fresh 63-bit seed (from OS entropy when ``rng`` is None)."""
    rng = np.random.default_rng() if rng is None else rng
    return int(rng.integers(0, 2**63 - 1))


def check_seed(seed: int | None) -> int:
    """Validate a seed; ``None`` draws a fresh one from OS entropy."""
    if seed is None:
        return new_seed()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        # 2**64: torch's generators take 64-bit seeds and overflow on larger ones.
        raise InvalidParameterError(
            f"seed must be a non-negative integer below 2**64 or None, got {seed!r}"
        )
    return int(seed)


def sklearn_seed(seed: int | None) -> int | None:
    """``seed`` as scikit-learn's ``random_state`` takes it (below 2**32): its low 32 bits.

    Every seed synthaug accepts (below 2**64, torch's range) works wherever scikit-learn or
    numpy's legacy generator draws, and a seed below 2**32 is used as it is.
    """
    return None if seed is None else int(seed) % 2**32


def torch_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (fresh entropy when None)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(check_seed(seed))
    return gen


def import_optional(module: str, extra: str | None = None) -> ModuleType:
    """Import an optional dependency or raise an error that says which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = extra or _EXTRA_OF.get(module.split(".")[0], "all")
        raise MissingDependencyError(
            f"{module!r} is required for this feature but is not installed; "
            f"install it with: pip install 'synthaug[{extra}]'"
        ) from exc


def env_device() -> str:
    """Device for tests and examples: ``SYNTHAUG_DEVICE`` or CPU."""
    return os.environ.get("SYNTHAUG_DEVICE", "cpu")


def warn(message: str, category: type[Warning] = SynthaugWarning) -> None:
    """Emit a one-line warning attributed to the first caller outside synthaug.

    A fixed ``stacklevel`` would point at synthaug's own code whenever the warning comes from
    a nested call (an over-sampler fitting its generator, the command line); walking the stack
    to the first frame outside the package points at the user's line from any depth.
    """
    frame = sys._getframe(1)
    level = 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


@contextlib.contextmanager
def fitting_one_class() -> Iterator[None]:
    """Fit generators on a single class on purpose, without :class:`SingleClassWarning`.

    For library code whose design is one class (a per-class member, a model of normal
    anatomy); every other warning still shows.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingleClassWarning)
        yield


# tqdm.auto draws a widget in a notebook, where stderr is no terminal and needs to be none.
_NOTEBOOK_BARS = any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)


def progress_bar(*, show: bool = True, **options: Any) -> tqdm:
    """A tqdm progress bar on stderr, drawn only when ``show`` and stderr is a terminal.

    Redirected to a file or a pipe, a bar's redraws are carriage returns, not lines: about
    10 KB of them for one ``synthaug train`` in a log. There the bar draws nothing (the
    commands' own stage and summary lines say what ran); in a notebook it is tqdm's widget.
    ``options`` go to tqdm (``total``, ``desc``, ``unit``, ...).
    """
    stream = sys.stderr
    on_terminal = _NOTEBOOK_BARS or (stream is not None and stream.isatty())
    return tqdm(file=stream, disable=not (show and on_terminal), **options)


def finite_json(obj: Any) -> Any:
    """NaN and infinities become ``None`` (``null``), recursively: standard JSON, which
    ``json.dumps`` would otherwise break with ``NaN``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj
