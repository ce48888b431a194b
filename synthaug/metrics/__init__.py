"""Measures of synthetic data: downstream utility, fidelity and privacy."""

from synthaug.metrics._classification import CNNClassifier, classification_scores

__all__ = ["CNNClassifier", "classification_scores"]
