"""synthaug: synthetic data augmentation with conditional generators, measured honestly."""

__version__ = "0.1.0"

from synthaug import errors
from synthaug.generators import load
from synthaug.generators._dp import DP

__all__ = ["DP", "__version__", "errors", "load"]
