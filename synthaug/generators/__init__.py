"""Generative models with one estimator API: ``fit``, ``sample``, ``save`` / ``synthaug.load``.

Every generator is a scikit-learn estimator registered by name in :data:`GENERATORS`:
``cvae`` (:class:`CVAE`), ``cgan`` (:class:`CGAN`), ``perclass`` (:class:`PerClass`, one model
per class around any of them), the presets ``perclass-vae`` / ``perclass-gan``, which take
the inner model's parameters flat, and the families that learn variation on every class and
spend it on rare ones: ``dagan`` (:class:`DAGAN`, variants of stored training exemplars),
``deepsmote`` (:class:`DeepSMOTE`) and ``delta-transfer`` (:class:`DeltaTransfer`);
``dp-merf`` (:class:`DPMERF`), which matches a mean embedding of the data released once;
and ``ddpm`` (:class:`DDPM`), class-conditional denoising diffusion.
"""

from synthaug.generators._base import BaseGenerator
from synthaug.generators._cgan import CGAN
from synthaug.generators._cvae import CVAE
from synthaug.generators._dagan import DAGAN
from synthaug.generators._diffusion import DDPM
from synthaug.generators._dp_merf import DPMERF
from synthaug.generators._latent import DeepSMOTE, DeltaTransfer
from synthaug.generators._perclass import PerClass
from synthaug.generators._persistence import (
    MODEL_FILES,
    as_params,
    build_generator,
    decode_param,
    encode_param,
    generator_parts,
    load,
    model_path,
)
from synthaug.generators._registry import (
    GENERATORS,
    create_generator,
    list_generators,
    register_generator,
)
from synthaug.generators._torch import TorchGenerator, TrainingContext

__all__ = [
    "CGAN",
    "CVAE",
    "DAGAN",
    "DPMERF",
    "DDPM",
    "DeepSMOTE",
    "DeltaTransfer",
    "GENERATORS",
    "MODEL_FILES",
    "BaseGenerator",
    "PerClass",
    "TorchGenerator",
    "TrainingContext",
    "as_params",
    "build_generator",
    "create_generator",
    "decode_param",
    "encode_param",
    "generator_parts",
    "list_generators",
    "load",
    "model_path",
    "register_generator",
]
