"""Measures of synthetic data: downstream utility, fidelity and privacy."""

from synthaug.metrics._classification import CNNClassifier, classification_scores
from synthaug.metrics._distances import frechet_distance, prdc
from synthaug.metrics._features import FeatureExtractor
from synthaug.metrics._fidelity import fidelity
from synthaug.metrics._privacy import privacy
from synthaug.metrics._utility import utility

__all__ = [
    "CNNClassifier",
    "FeatureExtractor",
    "classification_scores",
    "fidelity",
    "frechet_distance",
    "prdc",
    "privacy",
    "utility",
]
