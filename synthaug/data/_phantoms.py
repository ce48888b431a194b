"""Procedural CT/MR-like slices with and without lesions: medical data made in code."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from synthaug._memory import check_fits_in_memory
from synthaug._utils import check_seed
from synthaug.data._dataset import ImageDataset
from synthaug.errors import InvalidParameterError

PHANTOM_CLASSES = ["normal", "lesion"]


def make_phantoms(
    n_per_class: int | Sequence[int] | Mapping[str, int],
    size: int = 64,
    kind: str = "chest",
    seed: int = 0,
    *,
    lesion_radius: tuple[float, float] = (0.03, 0.08),
    lesion_contrast: tuple[float, float] = (0.15, 0.45),
    max_lesions: int = 3,
    noise: float = 0.03,
    return_masks: bool = False,
) -> ImageDataset | tuple[ImageDataset, torch.Tensor]:
    """Grayscale slices that look like axial CT (``"chest"``) or MR (``"brain"``) images.

    Every image has its own anatomy: a body or head outline with a fat layer, then for
    ``"chest"`` two lungs with vessel-like texture, a heart, the aorta and a vertebra (CT
    windowed for the mediastinum-lung range), for ``"brain"`` a bright scalp, a dark skull,
    grey matter with a white-matter core and two CSF ventricles (T1-like contrast). Positions,
    sizes and intensities of every structure vary; smooth tissue texture, a slight blur
    (scanner point-spread) and noise (Gaussian for CT, Rician for MR) are added. Images of
    class ``"lesion"`` carry 1 to ``max_lesions`` round, slightly irregular lesions (lung nodules
    inside the lungs for chest, hyperintense lesions inside the brain) whose radius and
    contrast are drawn from ``lesion_radius`` and ``lesion_contrast``: shrink or lower these
    ranges to make detection harder. All images of a call are drawn as one batch of tensors.

    Parameters
    ----------
    n_per_class : int, (n_normal, n_lesion) or {"normal": n, "lesion": m}
        Images per class; an unequal pair makes an imbalanced set directly.
    size : int
        Height and width in pixels (>= 16).
    kind : "chest" or "brain"
    seed : int
        Same seed, same images.
    lesion_radius : (float, float)
        Range of lesion radii as a fraction of the image width.
    lesion_contrast : (float, float)
        Range of lesion intensity above the surrounding tissue, in [0, 1] image units.
    max_lesions : int
        Most lesions per lesion image (at least one).
    noise : float
        Standard deviation of the scanner noise.
    return_masks : bool
        Also return the true lesion masks. They are known only because the lesions are drawn
        in code: use them to evaluate a method (the Dice of weakly localised masks), never to
        train one that claims to learn from image-level labels.

    Returns
    -------
    ImageDataset
        ``(N, 1, size, size)`` images in [0, 1], classes ``["normal", "lesion"]``, normal images
        first; ``metadata[i]`` holds ``kind``, ``n_lesions``, and the lesions' ``lesion_radii``
        (fraction of the width) and ``lesion_contrasts``.
    masks : torch.Tensor
        Only with ``return_masks=True``: ``(N, 1, size, size)`` bool, True where a lesion
        covers the pixel (its soft outline at one half, before the scanner blur); all False
        for normal images.

    Examples
    --------
    >>> ds = make_phantoms((6, 2), size=32, kind="brain", seed=1)
    >>> ds.classes, ds.class_counts(), ds.sample_shape
    (['normal', 'lesion'], {0: 6, 1: 2}, (1, 32, 32))
    """
    counts = _counts(n_per_class)
    if kind not in ("chest", "brain"):
        raise InvalidParameterError(f"kind must be 'chest' or 'brain', got {kind!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise InvalidParameterError(f"size must be an integer >= 16, got {size!r}")
    _check_range("lesion_radius", lesion_radius, 0.005, 0.25)
    _check_range("lesion_contrast", lesion_contrast, 0.0, 1.0)
    if isinstance(max_lesions, bool) or not isinstance(max_lesions, int) or max_lesions < 1:
        raise InvalidParameterError(f"max_lesions must be an integer >= 1, got {max_lesions!r}")
    if not 0 <= noise <= 0.5:
        raise InvalidParameterError(f"noise must be in [0, 0.5], got {noise!r}")

    n = sum(counts)
    # The images, their regions, masks and the drawing's working maps: about four float
    # images per phantom are held at once. Refused before the first is drawn.
    check_fits_in_memory(
        4 * n * size * size * 4,
        f"{n:,} phantoms of {size}x{size} pixels",
        "make fewer or smaller ones",
    )
    gen = torch.Generator().manual_seed(check_seed(seed))
    labels = torch.cat([torch.full((k,), c, dtype=torch.int64) for c, k in enumerate(counts)])
    draw = _chest if kind == "chest" else _brain
    images, region = draw(n, size, gen)
    n_lesions = torch.randint(1, max_lesions + 1, (n,), generator=gen) * (labels == 1)
    radii = torch.zeros(n, max_lesions)
    contrasts = torch.zeros(n, max_lesions)
    sick = torch.nonzero(n_lesions > 0).flatten()
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    if len(sick):
        images[sick], radii[sick], contrasts[sick], masks[sick] = _add_lesions(
            images[sick],
            region[sick],
            n_lesions[sick],
            max_lesions,
            lesion_radius,
            lesion_contrast,
            gen,
        )
    images = _blur(images)
    images = _noise(images, noise, kind, gen)
    images = images.clamp_(0.0, 1.0).unsqueeze(1)
    metadata = [
        {
            "kind": kind,
            "n_lesions": int(k),
            "lesion_radii": [round(float(r), 4) for r in radii[i, : int(k)]],
            "lesion_contrasts": [round(float(c), 4) for c in contrasts[i, : int(k)]],
        }
        for i, k in enumerate(n_lesions)
    ]
    dataset = ImageDataset(images, labels, PHANTOM_CLASSES, metadata=metadata)
    return (dataset, masks.unsqueeze(1)) if return_masks else dataset


# Lesion grades of the anomaly benchmark: (radius range as a fraction of the width, contrast
# range above the tissue). Large, bright nodules are easy; small, faint ones are near the
# noise floor, so the task is not saturated.
LESION_GRADES: dict[str, dict[str, tuple[float, float]]] = {
    "large-bright": {"radius": (0.06, 0.09), "contrast": (0.30, 0.45)},
    "medium": {"radius": (0.04, 0.06), "contrast": (0.15, 0.30)},
    "small-faint": {"radius": (0.03, 0.04), "contrast": (0.08, 0.15)},
}


def make_graded_phantoms(
    n_normal: int,
    n_per_grade: int,
    size: int = 64,
    kind: str = "chest",
    seed: int = 0,
    *,
    grades: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    max_lesions: int = 3,
    noise: float = 0.03,
    return_masks: bool = False,
) -> ImageDataset | tuple[ImageDataset, torch.Tensor]:
    """Normal slices and lesion slices of graded difficulty, one class per grade.

    For anomaly-detection benchmarks: a detector trained on ``"normal"`` should flag every
    grade, and the per-grade scores show where it stops seeing lesions.

    Parameters
    ----------
    n_normal : int
        Normal slices.
    n_per_grade : int
        Lesion slices of each grade.
    size, kind, seed, max_lesions, noise
        As in :func:`make_phantoms`.
    grades : mapping, optional
        ``{name: {"radius": (lo, hi), "contrast": (lo, hi)}}``; default :data:`LESION_GRADES`
        (large-bright, medium, small-faint).
    return_masks : bool
        Also return the true lesion masks (to evaluate localisation, never to train on).

    Returns
    -------
    ImageDataset
        Classes ``["normal", *grades]``; normal slices first, then each grade in order.
    masks : torch.Tensor
        Only with ``return_masks=True``: ``(N, 1, size, size)`` bool, True on lesions.

    Examples
    --------
    >>> ds = make_graded_phantoms(4, 2, size=32)
    >>> ds.classes, ds.class_counts()
    (['normal', 'large-bright', 'medium', 'small-faint'], {0: 4, 1: 2, 2: 2, 3: 2})
    """
    grades = LESION_GRADES if grades is None else grades
    if not isinstance(grades, Mapping) or not grades:
        raise InvalidParameterError("grades must be a non-empty mapping of name -> ranges")
    for name, spec in grades.items():
        if not isinstance(spec, Mapping) or set(spec) != {"radius", "contrast"}:
            raise InvalidParameterError(
                f"grade {name!r} must give exactly 'radius' and 'contrast' ranges, got {spec!r}"
            )
    if "normal" in grades:
        raise InvalidParameterError("a lesion grade cannot be called 'normal'")
    for what, n in (("n_normal", n_normal), ("n_per_grade", n_per_grade)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidParameterError(f"{what} must be an integer >= 1, got {n!r}")
    common = {"size": size, "kind": kind, "max_lesions": max_lesions, "noise": noise}
    base = check_seed(seed)
    normal = make_phantoms({"normal": n_normal}, seed=base, **common)
    images, labels, metadata = [normal.images], [normal.labels], list(normal.metadata)
    masks = [torch.zeros(normal.images.shape, dtype=torch.bool)]
    for g, spec in enumerate(grades.values(), 1):
        # Each grade draws from its own seed, so adding a grade leaves the others unchanged.
        part, part_masks = make_phantoms(
            {"lesion": n_per_grade},
            seed=base + g,
            lesion_radius=tuple(spec["radius"]),
            lesion_contrast=tuple(spec["contrast"]),
            return_masks=True,
            **common,
        )
        images.append(part.images)
        masks.append(part_masks)
        labels.append(torch.full((n_per_grade,), g, dtype=torch.int64))
        metadata.extend(part.metadata)
    classes = ["normal", *grades]
    images, labels = torch.cat(images), torch.cat(labels)
    dataset = ImageDataset(images, labels, classes, metadata=metadata)
    return (dataset, torch.cat(masks)) if return_masks else dataset


def _counts(n_per_class: int | Sequence[int] | Mapping[str, int]) -> list[int]:
    if isinstance(n_per_class, Mapping):
        unknown = set(n_per_class) - set(PHANTOM_CLASSES)
        if unknown:
            raise InvalidParameterError(
                f"n_per_class keys must be among {PHANTOM_CLASSES}, got {sorted(unknown)}"
            )
        counts = [n_per_class.get(c, 0) for c in PHANTOM_CLASSES]
    elif isinstance(n_per_class, (int,)) and not isinstance(n_per_class, bool):
        counts = [n_per_class, n_per_class]
    else:
        counts = list(n_per_class) if isinstance(n_per_class, Sequence) else []
        if len(counts) != 2:
            raise InvalidParameterError(
                f"n_per_class must be an int, (n_normal, n_lesion) or a mapping, got {n_per_class!r}"
            )
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
        raise InvalidParameterError(f"image counts must be non-negative integers, got {counts}")
    if sum(counts) == 0:
        raise InvalidParameterError("n_per_class asks for no images at all")
    return counts


def _check_range(name: str, value: tuple[float, float], lo: float, hi: float) -> None:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a (low, high) pair, got {value!r}") from None
    if not (lo <= a <= b <= hi):
        raise InvalidParameterError(
            f"{name} must satisfy {lo} <= low <= high <= {hi}, got {value!r}"
        )


def _uniform(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    """``(n, 1, 1)`` uniform draws, shaped to broadcast over images."""
    return (lo + (hi - lo) * torch.rand(n, generator=gen)).view(n, 1, 1)


def _grid(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Pixel centres in [-1, 1], x to the right and y downwards (image convention).
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return xx.expand(n, size, size), yy.expand(n, size, size)


def _ellipse(
    xx: torch.Tensor,
    yy: torch.Tensor,
    cx: torch.Tensor,
    cy: torch.Tensor,
    ax: torch.Tensor | float,
    ay: torch.Tensor | float,
    angle: torch.Tensor | float = 0.0,
    edge: float = 0.02,
) -> torch.Tensor:
    """Soft (antialiased) ellipse masks in [0, 1]; ``edge`` is the rim width in grid units."""
    ax, ay = torch.as_tensor(ax, dtype=xx.dtype), torch.as_tensor(ay, dtype=xx.dtype)
    angle = torch.as_tensor(angle, dtype=xx.dtype)
    cos, sin = torch.cos(angle), torch.sin(angle)
    dx, dy = xx - cx, yy - cy
    u = (dx * cos + dy * sin) / ax
    v = (-dx * sin + dy * cos) / ay
    r = torch.sqrt(u * u + v * v)
    return torch.sigmoid((1 - r) * torch.minimum(ax, ay) / edge)


def _texture(n: int, size: int, gen: torch.Generator, cells: int, amount: float) -> torch.Tensor:
    """Smooth random texture: coarse noise upsampled bicubically, zero mean, about +-amount."""
    coarse = torch.randn(n, 1, cells, cells, generator=gen)
    fine = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return amount * fine[:, 0]


def _chest(n: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Axial chest CT, mediastinal window: air black, lungs dark, soft tissue grey, bone white."""
    xx, yy = _grid(n, size)
    edge = 1.5 / size
    cx, cy = _uniform(gen, n, -0.05, 0.05), _uniform(gen, n, -0.04, 0.06)
    bx, by = _uniform(gen, n, 0.78, 0.92), _uniform(gen, n, 0.55, 0.70)
    body = _ellipse(xx, yy, cx, cy, bx, by, edge=edge)
    inner = _ellipse(xx, yy, cx, cy, bx - _uniform(gen, n, 0.04, 0.08), by - 0.05, edge=edge)
    fat, muscle = _uniform(gen, n, 0.30, 0.38), _uniform(gen, n, 0.50, 0.58)
    img = body * fat + inner * (muscle - fat)
    img = img + inner * _texture(n, size, gen, 8, 0.02)
    # Lungs: two ellipses either side of the mediastinum, tilted outwards.
    lung_masks = []
    for side in (-1.0, 1.0):
        lx = cx + side * bx * _uniform(gen, n, 0.42, 0.50)
        ly = cy - by * _uniform(gen, n, 0.02, 0.10)
        ax, ay = bx * _uniform(gen, n, 0.28, 0.36), by * _uniform(gen, n, 0.62, 0.76)
        tilt = side * _uniform(gen, n, -0.05, 0.25)
        lung_masks.append(_ellipse(xx, yy, lx, ly, ax, ay, tilt, edge=edge))
    lungs = torch.maximum(*lung_masks)
    lung_level = _uniform(gen, n, 0.06, 0.12)
    # Vessel-like texture: fine noise, squared so that bright specks are sparse.
    vessels = _texture(n, size, gen, max(size // 3, 8), 1.0).clamp(min=0) ** 2 * 0.08
    img = img * (1 - lungs) + lungs * (lung_level + vessels)
    # Heart (between the lungs, slightly left of the patient = right of the image), aorta, spine.
    heart = _ellipse(
        xx,
        yy,
        cx + _uniform(gen, n, 0.02, 0.12),
        cy + _uniform(gen, n, -0.02, 0.12),
        bx * _uniform(gen, n, 0.20, 0.27),
        by * _uniform(gen, n, 0.30, 0.40),
        _uniform(gen, n, -0.5, -0.2),
        edge=edge,
    )
    img = img * (1 - heart) + heart * _uniform(gen, n, 0.58, 0.66)
    aorta = _ellipse(
        xx,
        yy,
        cx - _uniform(gen, n, 0.02, 0.08),
        cy + by * _uniform(gen, n, 0.35, 0.45),
        _uniform(gen, n, 0.06, 0.08),
        _uniform(gen, n, 0.06, 0.08),
        edge=edge,
    )
    img = img * (1 - aorta) + aorta * _uniform(gen, n, 0.62, 0.70)
    sx, sy = cx, cy + by * _uniform(gen, n, 0.70, 0.80)
    body_vert = _ellipse(
        xx, yy, sx, sy, _uniform(gen, n, 0.09, 0.12), _uniform(gen, n, 0.08, 0.10), edge=edge
    )
    canal = _ellipse(xx, yy, sx, sy + 0.14, _uniform(gen, n, 0.035, 0.05), 0.04, edge=edge)
    bone = _uniform(gen, n, 0.85, 0.95)
    img = img * (1 - body_vert) + body_vert * bone
    img = img * (1 - canal) + canal * muscle
    # Lesions go inside the lungs, away from the lung edge.
    region = torch.stack([m > 0.98 for m in lung_masks]).any(0) & (heart < 0.02)
    return img, region


def _brain(n: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Axial T1-like brain MR: bright scalp fat, dark skull, grey/white matter, dark CSF."""
    xx, yy = _grid(n, size)
    edge = 1.5 / size
    cx, cy = _uniform(gen, n, -0.05, 0.05), _uniform(gen, n, -0.05, 0.05)
    hx, hy = _uniform(gen, n, 0.66, 0.76), _uniform(gen, n, 0.80, 0.90)
    angle = _uniform(gen, n, -0.12, 0.12)
    head = _ellipse(xx, yy, cx, cy, hx, hy, angle, edge=edge)
    skull = _ellipse(xx, yy, cx, cy, hx - 0.05, hy - 0.05, angle, edge=edge)
    brain = _ellipse(xx, yy, cx, cy, hx - 0.11, hy - 0.11, angle, edge=edge)
    white = _ellipse(
        xx,
        yy,
        cx,
        cy,
        (hx - 0.11) * _uniform(gen, n, 0.60, 0.72),
        (hy - 0.11) * _uniform(gen, n, 0.62, 0.74),
        angle,
        edge=4 * edge,
    )
    scalp, grey, wm = (
        _uniform(gen, n, 0.75, 0.90),
        _uniform(gen, n, 0.40, 0.48),
        _uniform(gen, n, 0.58, 0.66),
    )
    img = head * scalp
    img = img * (1 - skull) + skull * _uniform(gen, n, 0.04, 0.10)
    # Grey matter with gyral texture, then the white-matter core.
    gyri = _texture(n, size, gen, max(size // 4, 8), 0.05)
    img = img * (1 - brain) + brain * (grey + gyri)
    img = img * (1 - white) + white * (wm + _texture(n, size, gen, 6, 0.015))
    # Lateral ventricles: two tilted ellipses near the midline, CSF dark on T1.
    ventricles = torch.zeros_like(img)
    vent_size = _uniform(gen, n, 0.7, 1.3)
    for side in (-1.0, 1.0):
        v = _ellipse(
            xx,
            yy,
            cx + side * _uniform(gen, n, 0.07, 0.12),
            cy + _uniform(gen, n, -0.10, 0.02),
            0.05 * vent_size,
            0.20 * vent_size,
            angle - side * _uniform(gen, n, 0.15, 0.35),
            edge=edge,
        )
        ventricles = torch.maximum(ventricles, v)
    csf = _uniform(gen, n, 0.10, 0.18)
    img = img * (1 - ventricles) + ventricles * csf
    inner_brain = _ellipse(xx, yy, cx, cy, hx - 0.20, hy - 0.20, angle, edge=edge)
    region = (inner_brain > 0.98) & (ventricles < 0.02)
    return img, region


def _add_lesions(
    images: torch.Tensor,
    region: torch.Tensor,
    n_lesions: torch.Tensor,
    max_lesions: int,
    radius: tuple[float, float],
    contrast: tuple[float, float],
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Add up to ``max_lesions`` soft, lobulated blobs per image at points inside ``region``;
    the images, radii, contrasts and the lesions' masks."""
    n, size, _ = images.shape
    xx, yy = _grid(n, size)
    radii = radius[0] + (radius[1] - radius[0]) * torch.rand(n, max_lesions, generator=gen)
    contrasts = contrast[0] + (contrast[1] - contrast[0]) * torch.rand(
        n, max_lesions, generator=gen
    )
    # Centres: random pixels of the allowed region (uniform over it), one draw per lesion.
    weights = region.flatten(1).float() + 1e-6
    flat_idx = torch.multinomial(weights, max_lesions, replacement=True, generator=gen)
    centre_y = ((flat_idx // size).float() + 0.5) / size * 2 - 1
    centre_x = ((flat_idx % size).float() + 0.5) / size * 2 - 1
    active = torch.arange(max_lesions).view(1, -1) < n_lesions.view(-1, 1)
    phase = 2 * math.pi * torch.rand(n, max_lesions, 1, 1, generator=gen)
    lobes = 0.12 * torch.rand(n, max_lesions, 1, 1, generator=gen)
    dx = xx.unsqueeze(1) - centre_x.view(n, max_lesions, 1, 1)
    dy = yy.unsqueeze(1) - centre_y.view(n, max_lesions, 1, 1)
    theta = torch.atan2(dy, dx)
    # Radius in grid units (the grid spans 2), modulated by a few lobes so blobs are not discs.
    r = radii.view(n, max_lesions, 1, 1) * 2 * (1 + lobes * torch.sin(3 * theta + phase))
    dist = torch.sqrt(dx * dx + dy * dy)
    blob = torch.sigmoid((r - dist) / (1.0 / size))
    blob = blob * active.view(n, max_lesions, 1, 1)
    added = (blob * contrasts.view(n, max_lesions, 1, 1)).amax(dim=1)
    masks = blob.amax(dim=1) > 0.5
    return images + added, radii * active, contrasts * active, masks


def _blur(images: torch.Tensor) -> torch.Tensor:
    """A separable [1, 2, 1] / 4 point-spread function (what a reconstruction kernel does to edges)."""
    x = F.pad(images.unsqueeze(1), (1, 1, 1, 1), mode="replicate")[:, 0]
    x = (x[:, :-2] + 2 * x[:, 1:-1] + x[:, 2:]) / 4
    return (x[:, :, :-2] + 2 * x[:, :, 1:-1] + x[:, :, 2:]) / 4


def _noise(images: torch.Tensor, sigma: float, kind: str, gen: torch.Generator) -> torch.Tensor:
    if sigma == 0:
        return images
    n1 = sigma * torch.randn(images.shape, generator=gen)
    if kind == "chest":
        return images + n1
    # Magnitude MR images: Rician noise (Gudbjartsson & Patz 1995), sqrt((s + n1)^2 + n2^2).
    n2 = sigma * torch.randn(images.shape, generator=gen)
    return torch.sqrt((images + n1) ** 2 + n2**2)
