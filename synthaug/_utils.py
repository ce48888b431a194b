"""Small internal helpers shared by every layer: devices, seeds, optional imports."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import numpy as np
import torch

from synthaug.errors import InvalidParameterError, MissingDependencyError

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
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


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
