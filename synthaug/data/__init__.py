"""Datasets, loaders and imbalance tools: the bottom layer, imported by every other one."""

from synthaug.data._dataset import ImageDataset, from_arrays
from synthaug.data._digits import load_digits
from synthaug.data._imbalance import make_imbalanced

__all__ = ["ImageDataset", "from_arrays", "load_digits", "make_imbalanced"]
