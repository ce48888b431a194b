"""Per-item image transforms from albumentations or torchvision, applied the same way.

albumentations works on ``(H, W, C)`` numpy arrays and keeps its own random state;
torchvision v2 works on ``(C, H, W)`` tensors and draws from torch's random state. Items reach
both as ``(C, H, W)`` float tensors and leave as ``(C, H, W)`` float tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from synthaug.errors import InvalidParameterError

_APPLY_TO = ("all", "real", "synthetic")


def check_transform(transform: Any) -> Callable | None:
    """Accept ``None`` or a callable (albumentations ``Compose``, torchvision transform, ...)."""
    if transform is not None and not callable(transform):
        raise InvalidParameterError(
            f"transform must be an albumentations Compose, a torchvision transform or another "
            f"callable, got {type(transform).__name__}"
        )
    return transform


def check_apply_to(apply_to: str) -> str:
    if apply_to not in _APPLY_TO:
        raise InvalidParameterError(f"apply_to must be one of {list(_APPLY_TO)}, got {apply_to!r}")
    return apply_to


def is_albumentations(transform: Any) -> bool:
    """True for albumentations transforms and compositions (checked without importing it)."""
    return any(cls.__module__.split(".")[0] == "albumentations" for cls in type(transform).__mro__)


def apply_transform(transform: Callable, image: torch.Tensor) -> torch.Tensor:
    """Apply ``transform`` to one ``(C, H, W)`` float image and return a ``(C, H, W)`` tensor."""
    if is_albumentations(transform):
        _reseed_in_worker(transform)
        out = transform(image=image.permute(1, 2, 0).numpy())["image"]
        if isinstance(out, torch.Tensor):  # ToTensorV2 already returns (C, H, W)
            return out.to(torch.float32)
        out = np.asarray(out, dtype=np.float32)
        if out.ndim == 2:  # some albumentations transforms drop a single channel
            out = out[..., None]
        return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1)
    out = transform(image)
    if not isinstance(out, torch.Tensor):
        raise InvalidParameterError(
            f"the transform returned {type(out).__name__}, not a tensor; a torchvision transform "
            f"must map a (C, H, W) tensor to a tensor (do not end it with ToPILImage)"
        )
    return out


def _reseed_in_worker(transform: Any) -> None:
    """Give each DataLoader worker its own albumentations stream.

    Worker processes start as copies of the main one, so without this every worker would
    repeat the same "random" augmentations. torch hands each worker a distinct seed (new
    every epoch); albumentations is reseeded from it once per worker and epoch.
    """
    info = torch.utils.data.get_worker_info()
    if info is None or not hasattr(transform, "set_random_seed"):
        return
    if getattr(transform, "_synthaug_worker_seed", None) != info.seed:
        transform.set_random_seed(info.seed % 2**32)
        transform._synthaug_worker_seed = info.seed
