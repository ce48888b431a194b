"""Anomaly detection: generative and classical one-class detectors, and the one-class protocol.

Every detector is a scikit-learn estimator registered by name in :data:`DETECTORS`; it is
fitted on normal samples only and scores new ones with ``decision_function`` (higher is more
anomalous).
"""

from synthaug.anomaly._base import BaseDetector, NetworkDetector
from synthaug.anomaly._classical import (
    IsolationForestDetector,
    KNNDetector,
    OneClassSVMDetector,
    PCADetector,
)
from synthaug.anomaly._cutpaste import CutPasteDetector
from synthaug.anomaly._diffusion import DDPMAnomalyDetector
from synthaug.anomaly._draem import DRAEMDetector
from synthaug.anomaly._gan import GANAnomalyDetector
from synthaug.anomaly._maps import pixel_auroc, region_overlap, save_map_overlays
from synthaug.anomaly._protocol import (
    evaluate_one_class,
    format_one_class_table,
    run_one_class,
    summarize_one_class,
)
from synthaug.anomaly._registry import (
    DETECTORS,
    create_detector,
    list_detectors,
    register_detector,
)
from synthaug.anomaly._vae import VAEAnomalyDetector

__all__ = [
    "DETECTORS",
    "BaseDetector",
    "NetworkDetector",
    "CutPasteDetector",
    "DDPMAnomalyDetector",
    "DRAEMDetector",
    "GANAnomalyDetector",
    "IsolationForestDetector",
    "KNNDetector",
    "OneClassSVMDetector",
    "PCADetector",
    "VAEAnomalyDetector",
    "create_detector",
    "evaluate_one_class",
    "format_one_class_table",
    "list_detectors",
    "pixel_auroc",
    "region_overlap",
    "register_detector",
    "run_one_class",
    "save_map_overlays",
    "summarize_one_class",
]
