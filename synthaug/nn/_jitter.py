"""Online classical augmentation on whole batches: random affine jitter and mild noise.

The batched counterpart of :func:`synthaug.augment.default_classical_transform` (the same
ranges), for classifiers that augment every mini-batch as they train: one ``affine_grid`` /
``grid_sample`` call per batch instead of one albumentations call per image. All randomness
comes from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_jitter(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    scale: tuple[float, float] = (0.9, 1.1),
    translate: float = 0.1,
    rotate: float = 12.0,
    shear: float = 6.0,
    noise: tuple[float, float] = (0.01, 0.05),
    noise_p: float = 0.5,
) -> torch.Tensor:
    """Each image of ``(N, C, H, W)`` through its own random affine map, then noise.

    Parameters
    ----------
    x : torch.Tensor
        Images in [0, 1].
    generator : torch.Generator
        On ``x``'s device.
    scale : (float, float)
        Range of the zoom factor.
    translate : float
        Largest shift, as a fraction of the side.
    rotate, shear : float
        Largest rotation and shear, in degrees.
    noise : (float, float)
        Range of the Gaussian noise's standard deviation.
    noise_p : float
        Share of images that get noise.

    Returns
    -------
    torch.Tensor
        Same shape, clipped to [0, 1]; the area shifted in from outside is 0.
    """
    n = len(x)

    def uniform(low: float, high: float) -> torch.Tensor:
        u = torch.rand(n, generator=generator, device=x.device, dtype=x.dtype)
        return low + (high - low) * u

    angle = uniform(-rotate, rotate) * (math.pi / 180)
    sh = torch.tan(uniform(-shear, shear) * (math.pi / 180))
    zoom = uniform(*scale)
    # affine_grid maps output to input coordinates on [-1, 1], so a shift of a fraction f of
    # the side is 2f there; the inverse zoom samples a zoomed-in image for zoom > 1.
    tx, ty = uniform(-2 * translate, 2 * translate), uniform(-2 * translate, 2 * translate)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([cos, -sin + sh * cos, tx], dim=1),
            torch.stack([sin, cos + sh * sin, ty], dim=1),
        ],
        dim=1,
    ) / zoom.view(n, 1, 1)
    theta[:, :, 2] *= zoom.view(n, 1)  # keep the shift in output units
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    std = uniform(*noise) * (torch.rand(n, generator=generator, device=x.device) < noise_p)
    eps = torch.randn(out.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (out + std.view(n, 1, 1, 1) * eps).clamp_(0.0, 1.0)
