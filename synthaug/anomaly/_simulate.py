"""Simulated anomalies for detectors that learn what abnormal looks like, and small networks.

Every function here works on a whole batch with tensor operations (no Python loop over
samples) and draws its randomness from the ``torch.Generator`` it is given. DRAEM
(Zavrtanik et al., ICCV 2021) pastes noise-shaped regions of foreign texture; CutPaste (Li et
al., CVPR 2021) moves a rectangle or a thin "scar" of an image to another place in it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from synthaug.errors import InvalidDataError


def require_images(images: torch.Tensor, owner: str) -> None:
    """Refuse feature vectors: these detectors paste anomalies into images."""
    if images.dim() != 4:
        raise InvalidDataError(
            f"{owner} works on (N, C, H, W) images, got feature vectors of shape "
            f"{tuple(images.shape)}; use a classical detector (pca, knn) for those"
        )


def _uniform(
    n: int, lo: float, hi: float, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def shifted(images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """``images`` moved by whole pixels, each by its own ``(dy, dx)``, wrapping at the edges."""
    n, _, h, w = images.shape
    rows = (torch.arange(h, device=images.device).view(1, h) + dy.view(n, 1)) % h
    cols = (torch.arange(w, device=images.device).view(1, w) + dx.view(n, 1)) % w
    batch = torch.arange(n, device=images.device).view(n, 1, 1)
    # Advanced indexing puts the channel axis last: (n, h, w, C).
    return images.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)].permute(
        0, 3, 1, 2
    )


def smooth_noise(
    n: int, h: int, w: int, cells: tuple[int, ...], gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    """``(n, 1, h, w)`` smooth Gaussian noise, standardized per image: a ``c x c`` grid of
    normal draws upsampled bilinearly, ``c`` drawn per image from ``cells`` (a cheap stand-in
    for DRAEM's Perlin noise with a random scale)."""
    layers = []
    for c in cells:
        c = max(1, min(int(c), h, w))
        grid = torch.randn((n, 1, c + 1, c + 1), generator=gen, device=device)
        layers.append(F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=True))
    stack = torch.cat(layers, 1)  # (n, len(cells), h, w)
    pick = torch.randint(len(cells), (n,), generator=gen, device=device)
    noise = stack[torch.arange(n, device=device), pick].unsqueeze(1)
    flat = noise.flatten(1)
    return ((flat - flat.mean(1, keepdim=True)) / (flat.std(1, keepdim=True) + 1e-6)).view_as(noise)


def noise_masks(
    n: int,
    h: int,
    w: int,
    cells: tuple[int, ...],
    area: tuple[float, float],
    gen: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """``(n, 1, h, w)`` float masks in {0, 1}: the top ``a`` share of a smooth noise field, ``a``
    drawn per image uniformly from ``area`` (one or a few blobs whose size follows the
    noise's scale, DRAEM's thresholded Perlin noise)."""
    noise = smooth_noise(n, h, w, cells, gen, device).flatten(1)
    share = _uniform(n, area[0], area[1], gen, device)
    k = (share * h * w).ceil().clamp(1, h * w).long()
    ordered = noise.sort(1, descending=True).values
    threshold = ordered.gather(1, (k - 1).view(n, 1))
    return (noise >= threshold).float().view(n, 1, h, w)


def rotated_boxes(
    n: int,
    h: int,
    w: int,
    size: tuple[torch.Tensor, torch.Tensor],
    angle: torch.Tensor,
    gen: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """``(n, 1, h, w)`` float masks of boxes ``size = (heights, widths)`` in pixels, each turned
    by its ``angle`` (radians) about a centre drawn uniformly so the box centre is inside."""
    cy = _uniform(n, 0, h - 1, gen, device).view(n, 1, 1)
    cx = _uniform(n, 0, w - 1, gen, device).view(n, 1, 1)
    yy = torch.arange(h, device=device, dtype=torch.float32).view(1, h, 1)
    xx = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, w)
    cos, sin = angle.cos().view(n, 1, 1), angle.sin().view(n, 1, 1)
    along = (xx - cx) * cos + (yy - cy) * sin
    across = -(xx - cx) * sin + (yy - cy) * cos
    inside = (along.abs() <= size[1].view(n, 1, 1) / 2) & (
        across.abs() <= size[0].view(n, 1, 1) / 2
    )
    # A box thinner than a pixel can fall between pixel centres: keep at least its centre.
    centre = ((yy - cy.round()).abs() < 0.5) & ((xx - cx.round()).abs() < 0.5)
    return (inside | centre).float().unsqueeze(1)


def random_shifts(
    n: int, h: int, w: int, gen: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image pixel shifts ``(dy, dx)``, never both zero, so moved content lands elsewhere."""
    dy = torch.randint(h, (n,), generator=gen, device=device)
    dx = torch.randint(w, (n,), generator=gen, device=device)
    dx = torch.where((dy == 0) & (dx == 0), torch.ones_like(dx), dx)
    return dy, dx


def cutpaste(
    images: torch.Tensor,
    gen: torch.Generator,
    *,
    scar: bool,
    area: tuple[float, float] = (0.02, 0.15),
    jitter: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CutPaste (Li et al., CVPR 2021): a box of each image moved to another place in it.

    ``scar=False``: an upright rectangle of ``area`` (share of the image) with aspect ratio
    drawn log-uniformly from [0.3, 3.3]; ``scar=True``: a thin scar (width 1 to ``h/16``
    pixels, length ``h/4`` to ``h/2``) turned by up to 45 degrees. The moved content's
    brightness is jittered by up to ``jitter``. Returns the images and the pasted masks.
    """
    n, _, h, w = images.shape
    dev = images.device
    if scar:
        width = _uniform(n, 1.0, max(1.0, h / 16), gen, dev)
        length = _uniform(n, h / 4, max(h / 4, h / 2), gen, dev)
        size = (width, length)
        angle = _uniform(n, -math.pi / 4, math.pi / 4, gen, dev)
    else:
        share = _uniform(n, area[0], area[1], gen, dev) * h * w
        aspect = torch.exp(_uniform(n, math.log(0.3), math.log(1 / 0.3), gen, dev))
        bh = (share * aspect).sqrt().clamp(1, h)
        bw = (share / aspect).sqrt().clamp(1, w)
        size = (bh, bw)
        angle = torch.zeros(n, device=dev)
    masks = rotated_boxes(n, h, w, size, angle, gen, dev)
    dy, dx = random_shifts(n, h, w, gen, dev)
    bright = _uniform(n, -jitter, jitter, gen, dev).view(n, 1, 1, 1)
    content = (shifted(images, dy, dx) + bright).clamp(0, 1)
    return images * (1 - masks) + content * masks, masks


def simulate_anomalies(
    images: torch.Tensor,
    gen: torch.Generator,
    *,
    cells: tuple[int, ...],
    area: tuple[float, float],
    texture: str,
    opacity: tuple[float, float],
    probability: float,
    edge_blur: int = 0,
    min_change: float = 0.02,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DRAEM's anomaly simulation (Zavrtanik et al., ICCV 2021) on a batch of normal images.

    A share ``probability`` of the images gets a noise-shaped region (:func:`noise_masks`)
    filled with foreign texture ``A`` and blended as ``(1 - b) A + b I`` with the opacity ``b``
    drawn from ``opacity``: ``texture="noise"`` is a smooth noise texture about a random
    level, ``"image"`` another image of the batch moved by a random shift, ``"offset"`` the
    image itself made brighter or darker by 0.1 to 0.6, ``"all"`` one of the three per image. The target mask marks only pixels that changed by more than ``min_change``
    (pasting dark background on dark background is no anomaly).
    """
    n, c, h, w = images.shape
    dev = images.device
    masks = noise_masks(n, h, w, cells, area, gen, dev)
    masks = masks * (torch.rand((n, 1, 1, 1), generator=gen, device=dev) < probability)
    level = torch.rand((n, c, 1, 1), generator=gen, device=dev)
    amplitude = 0.2 * torch.rand((n, 1, 1, 1), generator=gen, device=dev)
    noise_tex = (level + amplitude * smooth_noise(n, h, w, cells, gen, dev)).clamp(0, 1)
    other = torch.roll(torch.arange(n, device=dev), 1)
    dy, dx = random_shifts(n, h, w, gen, dev)
    image_tex = shifted(images[other], dy, dx)
    sign = torch.where(torch.rand((n, 1, 1, 1), generator=gen, device=dev) < 0.5, -1.0, 1.0)
    offset_tex = (images + sign * _uniform(n, 0.1, 0.6, gen, dev).view(n, 1, 1, 1)).clamp(0, 1)
    textures = {"noise": noise_tex, "image": image_tex, "offset": offset_tex}
    if texture in textures:
        tex = textures[texture]
    else:  # "all": one of the three per image
        pick = torch.randint(3, (n, 1, 1, 1), generator=gen, device=dev)
        tex = torch.where(pick == 0, noise_tex, torch.where(pick == 1, image_tex, offset_tex))
    b = _uniform(n, opacity[0], opacity[1], gen, dev).view(n, 1, 1, 1)
    blended = (1 - b) * tex + b * images
    weight = masks
    for _ in range(edge_blur):
        weight = F.avg_pool2d(weight, 3, stride=1, padding=1, count_include_pad=False)
    out = images * (1 - weight) + blended * weight
    changed = (out - images).abs().amax(1, keepdim=True) > min_change
    return out, (weight > 0.5).float() * changed


# -- networks --------------------------------------------------------------------------------
def depth_for(h: int, w: int, depth: int | None, smallest: int = 4, most: int = 3) -> int:
    """How many times a network halves an ``h x w`` image: until the short side is about
    ``smallest`` (at most ``most``), or the ``depth`` asked for."""
    if depth is not None:
        return depth
    return max(1, min(most, int(math.floor(math.log2(max(min(h, w), 2) / smallest)))))


def pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad height and width up to a multiple of ``multiple``; the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


def _block(cin: int, cout: int) -> nn.Sequential:
    groups = math.gcd(4, cout)
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.GroupNorm(groups, cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.GroupNorm(groups, cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """A small U-Net (Ronneberger et al., MICCAI 2015): ``depth`` halvings, widths
    ``width * 2**level``; ``skips=False`` makes it a plain encoder-decoder (DRAEM's
    reconstructive network must not copy its input through)."""

    def __init__(self, cin: int, cout: int, width: int, depth: int, *, skips: bool) -> None:
        super().__init__()
        self.depth, self.skips = depth, skips
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            [_block(cin, widths[0])] + [_block(widths[i], widths[i + 1]) for i in range(depth)]
        )
        self.up = nn.ModuleList(
            [
                _block(widths[i + 1] + (widths[i] if skips else 0), widths[i])
                for i in reversed(range(depth))
            ]
        )
        self.head = nn.Conv2d(widths[0], cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to(x, 2**self.depth)
        kept = []
        for i, block in enumerate(self.down):
            if i:
                x = F.avg_pool2d(x, 2)
            x = block(x)
            kept.append(x)
        for block, skip in zip(self.up, reversed(kept[:-1]), strict=True):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = block(torch.cat([x, skip], 1) if self.skips else x)
        return self.head(x)[..., :h, :w]


class SmallConvNet(nn.Module):
    """Conv blocks that halve the image ``depth`` times, a global average pool (the feature
    vector) and a linear head."""

    def __init__(self, cin: int, n_out: int, width: int, depth: int) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        layers: list[nn.Module] = [_block(cin, widths[0])]
        for i in range(depth):
            layers += [nn.AvgPool2d(2, ceil_mode=True), _block(widths[i], widths[i + 1])]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(widths[-1], n_out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.head(f), f
