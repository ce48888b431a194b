"""Measures of synthetic data: downstream utility, fidelity and privacy (with membership
attacks on the generator), the statistics the benchmark reports use, and a lesion segmenter
with its scores. Downstream classifiers are registered by name in :data:`CLASSIFIERS`."""

from synthaug.metrics._attacks import LikelihoodModel, membership_attacks, tpr_at_fpr
from synthaug.metrics._classification import binary_scores, classification_scores
from synthaug.metrics._classifiers import (
    CLASSIFIERS,
    CNNClassifier,
    CVSelectClassifier,
    LogisticRegressionClassifier,
    MaxPoolCNNClassifier,
    NetClassifier,
    ResNetClassifier,
)
from synthaug.metrics._distances import frechet_distance, prdc
from synthaug.metrics._features import FeatureExtractor
from synthaug.metrics._fidelity import fidelity, label_fidelity
from synthaug.metrics._privacy import privacy
from synthaug.metrics._private_classifier import DPSGDClassifier
from synthaug.metrics._segmentation import (
    UNetSegmenter,
    augment_pairs,
    classical_pair_transform,
    dice_per_image,
    false_positive_pixel_rate,
    hd95_cap,
    hd95_per_image,
    lesion_sensitivity,
    segmentation_scores,
)
from synthaug.metrics._stats import (
    auroc_standard_error,
    corrected_t,
    holm,
    mean_ci,
    paired_differences,
    paired_gain,
    win_tie_loss,
)
from synthaug.metrics._utility import utility

__all__ = [
    "CLASSIFIERS",
    "CNNClassifier",
    "CVSelectClassifier",
    "DPSGDClassifier",
    "FeatureExtractor",
    "LikelihoodModel",
    "LogisticRegressionClassifier",
    "MaxPoolCNNClassifier",
    "NetClassifier",
    "ResNetClassifier",
    "UNetSegmenter",
    "augment_pairs",
    "auroc_standard_error",
    "binary_scores",
    "classical_pair_transform",
    "classification_scores",
    "corrected_t",
    "dice_per_image",
    "false_positive_pixel_rate",
    "fidelity",
    "frechet_distance",
    "hd95_cap",
    "hd95_per_image",
    "holm",
    "label_fidelity",
    "lesion_sensitivity",
    "mean_ci",
    "membership_attacks",
    "paired_differences",
    "paired_gain",
    "prdc",
    "privacy",
    "segmentation_scores",
    "tpr_at_fpr",
    "utility",
    "win_tie_loss",
]
