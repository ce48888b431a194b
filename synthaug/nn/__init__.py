"""Shared PyTorch parts: networks, the one training loop, seeding, model files, DP-SGD.

Everything here knows tensors and modules but nothing of datasets or estimators; the
generator families (``synthaug.generators``), the detectors (``synthaug.anomaly``) and the
metrics (``synthaug.metrics``) build on it.
"""

from synthaug.nn._batch_plans import (
    BatchPlan,
    Indices,
    Poisson,
    Shuffled,
    WithReplacement,
    batch_indices,
    poisson_schedule,
)
from synthaug.nn._batching import (
    batch_size_for,
    batched,
    inference_batch_size,
    l2_cache_bytes,
    largest_activation_bytes,
)
from synthaug.nn._checkpoint import (
    DIGEST_KEY,
    checkpoint_header,
    content_digest,
    read_checkpoint,
    tensor_digest,
    write_checkpoint,
)
from synthaug.nn._diffaugment import diff_augment
from synthaug.nn._distributed import (
    data_parallel_device,
    draw_rows,
    init_data_parallel,
    launched_world_size,
    world,
)
from synthaug.nn._ema import EMA
from synthaug.nn._jitter import random_jitter
from synthaug.nn._keyed import KeyedRandom, Randomness, rand, randn, select_rows
from synthaug.nn._networks import (
    Architecture,
    ConditionalBatchNorm,
    ConvDecoder,
    MaxPoolCNN,
    MLPDecoder,
    SmallCNN,
    SmallMLP,
    SmallResNet,
    channels,
    choose_architecture,
    conv_encoder,
    mlp,
)
from synthaug.nn._privacy import (
    DP,
    CountRelease,
    PrivateTraining,
    composed_mu,
    dp_rule,
    gaussian_epsilon,
    gaussian_noise_multiplier,
    make_dp_compatible,
    project_spectral_norm_,
    quiet_hooks,
    release_counts,
)
from synthaug.nn._random_features import (
    RandomFourierFeatures,
    class_feature_sums,
    mean_embedding_loss,
    release_embedding,
)
from synthaug.nn._seeding import seeded
from synthaug.nn._trainer import (
    LOSSES,
    SAMPLERS,
    Trainer,
    TrainingSettings,
    describe,
    eval_mode,
    optimizer_step,
    train_classifier,
    validation_split,
)

__all__ = [
    "DP",
    "EMA",
    "KeyedRandom",
    "Randomness",
    "rand",
    "randn",
    "select_rows",
    "LOSSES",
    "SAMPLERS",
    "SmallResNet",
    "batch_indices",
    "random_jitter",
    "Architecture",
    "ConditionalBatchNorm",
    "CountRelease",
    "ConvDecoder",
    "MLPDecoder",
    "PrivateTraining",
    "MaxPoolCNN",
    "SmallCNN",
    "SmallMLP",
    "Trainer",
    "TrainingSettings",
    "BatchPlan",
    "Shuffled",
    "Poisson",
    "WithReplacement",
    "Indices",
    "channels",
    "choose_architecture",
    "conv_encoder",
    "describe",
    "diff_augment",
    "dp_rule",
    "inference_batch_size",
    "batched",
    "batch_size_for",
    "l2_cache_bytes",
    "largest_activation_bytes",
    "data_parallel_device",
    "draw_rows",
    "init_data_parallel",
    "launched_world_size",
    "world",
    "eval_mode",
    "make_dp_compatible",
    "mlp",
    "optimizer_step",
    "poisson_schedule",
    "project_spectral_norm_",
    "quiet_hooks",
    "read_checkpoint",
    "release_counts",
    "seeded",
    "tensor_digest",
    "content_digest",
    "checkpoint_header",
    "DIGEST_KEY",
    "train_classifier",
    "validation_split",
    "write_checkpoint",
    "RandomFourierFeatures",
    "class_feature_sums",
    "mean_embedding_loss",
    "release_embedding",
    "composed_mu",
    "gaussian_epsilon",
    "gaussian_noise_multiplier",
]
