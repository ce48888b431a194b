"""Anomaly detection: generative and classical one-class detectors, and the one-class protocol."""

from synthaug.anomaly._base import (
    BaseDetector,
    clone_detector,
    create_detector,
    list_detectors,
    register_detector,
)
from synthaug.anomaly._classical import (
    IsolationForestDetector,
    KNNDetector,
    OneClassSVMDetector,
    PCADetector,
)
from synthaug.anomaly._gan import GANAnomalyDetector
from synthaug.anomaly._protocol import (
    evaluate_one_class,
    format_one_class_table,
    mean_ci,
    run_one_class,
    summarize_one_class,
)
from synthaug.anomaly._vae import VAEAnomalyDetector

__all__ = [
    "BaseDetector",
    "GANAnomalyDetector",
    "IsolationForestDetector",
    "KNNDetector",
    "OneClassSVMDetector",
    "PCADetector",
    "VAEAnomalyDetector",
    "clone_detector",
    "create_detector",
    "evaluate_one_class",
    "format_one_class_table",
    "list_detectors",
    "mean_ci",
    "register_detector",
    "run_one_class",
    "summarize_one_class",
]
