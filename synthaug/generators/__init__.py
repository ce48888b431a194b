"""Generative models with one estimator API: ``fit``, ``sample``, ``save`` / ``synthaug.load``."""

from synthaug.generators._base import BaseGenerator
from synthaug.generators._cgan import CGAN
from synthaug.generators._cvae import CVAE
from synthaug.generators._dp import DP
from synthaug.generators._perclass import PerClass, PerClassGAN, PerClassVAE
from synthaug.generators._persistence import load
from synthaug.generators._registry import (
    create_generator,
    get_generator_class,
    list_generators,
    register_generator,
)

__all__ = [
    "BaseGenerator",
    "PerClass",
    "PerClassGAN",
    "PerClassVAE",
    "CGAN",
    "CVAE",
    "DP",
    "create_generator",
    "get_generator_class",
    "list_generators",
    "load",
    "register_generator",
]
