"""synthaug: synthetic data augmentation with conditional generators, measured honestly.

``import synthaug`` does not import torch: the names that need it (``load``, ``DP``,
``advise``) and the subpackages (``synthaug.generators``, ...) are loaded on first use (PEP 562),
so that the command line answers ``--help`` and usage errors at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from synthaug import errors
from synthaug._process import tune_allocator
from synthaug._version import __version__

if TYPE_CHECKING:  # for type checkers and the API reference; loaded lazily below
    from synthaug.augment import load
    from synthaug.bench import advise
    from synthaug.nn import DP

__all__ = ["DP", "__version__", "advise", "errors", "load", "tune_allocator"]

# Public names whose modules import torch: name -> the module that defines it.
# load comes through synthaug.augment, which registers the loader of fitted lesion sources, so
# that it reads them as well as generators (the generators' layer below cannot import augment).
_LAZY_NAMES = {"DP": "synthaug.nn", "advise": "synthaug.bench", "load": "synthaug.augment"}
# Subpackages reachable as attributes (``synthaug.generators.CVAE``) without importing them.
_SUBPACKAGES = (
    "anomaly",
    "augment",
    "bench",
    "cli",
    "data",
    "generators",
    "metrics",
    "nn",
    "params",
    "registry",
)


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"synthaug.{name}")
    else:
        raise AttributeError(f"module 'synthaug' has no attribute {name!r}")
    globals()[name] = value  # the next access finds it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_NAMES, *_SUBPACKAGES})
