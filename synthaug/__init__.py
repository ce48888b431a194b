"""synthaug: synthetic data augmentation with conditional generators, measured honestly."""

from synthaug import errors
from synthaug._utils import tune_allocator
from synthaug._version import __version__
from synthaug.generators import load
from synthaug.nn import DP

__all__ = ["DP", "__version__", "errors", "load", "tune_allocator"]
