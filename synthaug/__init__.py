"""synthaug: synthetic data augmentation with conditional generators, measured honestly."""

from synthaug import errors
from synthaug._utils import tune_allocator
from synthaug._version import __version__

# Through synthaug.augment, which registers the loader of fitted lesion sources: load reads
# them as well as generators (the generators' layer below cannot import augment's).
from synthaug.augment import load
from synthaug.nn import DP

__all__ = ["DP", "__version__", "errors", "load", "tune_allocator"]
