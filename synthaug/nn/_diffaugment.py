"""Differentiable augmentation for GANs trained on little data.

DiffAugment (Zhao, Liu, Lin, Zhu & Han, NeurIPS 2020): the same random colour, translation and
cutout transforms are applied to real and generated images every time the discriminator sees
them, in both the discriminator and the generator step, so the discriminator cannot memorise a
small training set and the generator still learns the un-augmented distribution. All
randomness comes from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from synthaug.nn._distributed import draw_rows


def diff_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Colour, translation (1/8 of each side) and cutout (1/2 of each side) on ``(N, C, H, W)``.

    Images are in [0, 1]; the output may leave that range slightly (as in the paper).
    """
    x = _color(x, generator)
    x = _translation(x, generator, ratio=0.125)
    return _cutout(x, generator, ratio=0.5)


# Per-image draws go through draw_rows, so data-parallel ranks draw a single process's values.
def _rand(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return draw_rows(
        len(x),
        lambda n: torch.rand((n, 1, 1, 1), generator=generator, device=x.device, dtype=x.dtype),
    )


def _randint(low: int, high: int, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return draw_rows(
        len(x),
        lambda n: torch.randint(low, high, (n, 1, 1), generator=generator, device=x.device),
    )


def _color(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # The paper's brightness shift of +-0.5 on [-1, 1] images is +-0.25 on [0, 1].
    x = x + (_rand(x, generator) - 0.5) * 0.5
    if x.shape[1] == 3:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_rand(x, generator) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, generator) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, generator: torch.Generator, ratio: float) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    ty = _randint(-sh, sh + 1, x, generator)
    tx = _randint(-sw, sw + 1, x, generator)
    gy = (torch.arange(h, device=x.device).view(1, h, 1) + ty + 1).clamp(0, h + 1)
    gx = (torch.arange(w, device=x.device).view(1, 1, w) + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)
    return padded[torch.arange(n, device=x.device).view(n, 1, 1), gy, gx].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, generator: torch.Generator, ratio: float) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = _randint(0, h + (1 - ch % 2), x, generator)
    ox = _randint(0, w + (1 - cw % 2), x, generator)
    gy = (torch.arange(ch, device=x.device).view(1, ch, 1) + oy - ch // 2).clamp(0, h - 1)
    gx = (torch.arange(cw, device=x.device).view(1, 1, cw) + ox - cw // 2).clamp(0, w - 1)
    mask = torch.ones((n, h, w), device=x.device, dtype=x.dtype)
    mask[torch.arange(n, device=x.device).view(n, 1, 1), gy, gx] = 0
    return x * mask.unsqueeze(1)
