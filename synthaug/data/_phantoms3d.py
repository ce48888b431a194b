"""Procedural CT/MR-like volumes with and without lesions: 3D medical data made in code.

The 3D sibling of :mod:`synthaug.data._phantoms`. Every structure is drawn slice by slice
from per-volume parameters that vary smoothly along the slice axis (so anatomy changes from
slice to slice as in a scan), as batched tensor code over ``(volumes, D, H, W)``; lesions
are solid blobs in patient space (round in millimetres, so they span slices).

Coordinates: ``x`` (columns) and ``y`` (rows) run over [-1, 1] across the slice, as in the
2D phantoms, so the anatomy fills the field of view whatever the size; ``z`` (slices) runs
over [-1, 1] along the volume. Distances that must be isotropic (vessels, lesions) are taken
in "width units": ``y`` and ``z`` scaled by the physical extent of their axis relative to
the slice width, from ``spacing``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from synthaug._memory import check_fits_in_memory
from synthaug._utils import check_seed
from synthaug.data._phantoms import PHANTOM_CLASSES, _check_range, _counts, _noise
from synthaug.data._volume import Volume, VolumeDataset, affine_from_spacing
from synthaug.errors import InvalidParameterError

# The difficulty presets: lesion radius (a fraction of the slice width), contrast above the
# surrounding tissue (in [0, 1] units) and how many lesions a lesion volume carries. Easy is
# the 2D phantoms' "large-bright" grade; hard lesions are small (2-2.5 voxels in radius at
# 64 x 64, still spanning 2-3 slices at 2.5 mm) and two to three noise standard deviations
# bright, one per volume. Measured with a PCA detector on brain volumes (see
# benchmarks/phantom_volumes_difficulty.py and docs/volumes.md), easy is found every time,
# medium often, hard at chance: room for better methods to show.
PHANTOM_DIFFICULTIES: dict[str, dict[str, tuple[float, float] | tuple[int, int]]] = {
    "easy": {"lesion_radius": (0.06, 0.09), "lesion_contrast": (0.30, 0.45), "n_lesions": (1, 3)},
    "medium": {
        "lesion_radius": (0.045, 0.065),
        "lesion_contrast": (0.18, 0.30),
        "n_lesions": (1, 2),
    },
    "hard": {"lesion_radius": (0.03, 0.04), "lesion_contrast": (0.05, 0.10), "n_lesions": (1, 1)},
}

# Bytes of working maps per voxel while a chunk of volumes is drawn (about sixteen float32
# maps alive at once), and the most voxels drawn in one chunk, so a large call never needs
# its whole working set at once.
_WORK_BYTES_PER_VOXEL = 16 * 4
_CHUNK_VOXELS = 4 * 2**20
# A lesion volume's chest nodules sit on a vessel this often (juxtavascular nodules).
_ATTACHED_SHARE = 0.3


def make_phantom_volumes(
    n_per_class: int | Sequence[int] | Mapping[str, int],
    shape: Sequence[int] = (32, 64, 64),
    kind: str = "chest",
    seed: int = 0,
    *,
    difficulty: str = "medium",
    lesion_radius: tuple[float, float] | None = None,
    lesion_contrast: tuple[float, float] | None = None,
    n_lesions: tuple[int, int] | None = None,
    spacing: Sequence[float] = (2.5, 1.5, 1.5),
    noise: float = 0.03,
) -> VolumeDataset:
    """CT-like chest volumes with nodules or MR-like brain volumes with lesions, and their
    true label maps.

    ``"chest"``: a body outline with a fat layer, two lungs that narrow towards the apex
    (the top slices), a tree of branching vessels in each lung, the heart in the lower slices,
    the aorta and the spine (vertebrae and discs alternating along ``z``) running through
    every slice; CT mediastinal window, Gaussian noise. Nodules are spheres or lobulated
    blobs inside the lungs, about 3 in 10 of them centred on a vessel (attached to it).
    ``"brain"``: an ellipsoidal head with scalp, skull, grey matter with gyral texture, a
    white-matter core and the lateral ventricles in the lower slices; T1-like contrast,
    Rician noise. Lesions are hyperintense blobs inside the brain, away from the ventricles.
    Every structure's position, size and intensity varies between volumes and smoothly
    along ``z``; a slight 3D blur (the scanner's point spread) comes before the noise. All
    volumes of a call are drawn as batches of tensors (in chunks bounded in memory).

    Parameters
    ----------
    n_per_class : int, (n_normal, n_lesion) or {"normal": n, "lesion": m}
        Volumes per class; an unequal pair makes an imbalanced set directly.
    shape : (D, H, W)
        Slices, rows and columns (each >= 8; rows and columns >= 16).
    kind : "chest" or "brain"
    seed : int
        Same seed and parameters, same volumes. The anatomy of volume ``i`` depends only on
        the seed, the number of volumes and the geometry, not on the class counts, so a
        lesion volume can be compared with the normal volume drawn at the same index.
    difficulty : "easy", "medium" or "hard"
        A preset of ``lesion_radius``, ``lesion_contrast`` and ``n_lesions`` (see
        :data:`PHANTOM_DIFFICULTIES`); each of the three given explicitly replaces the
        preset's.
    lesion_radius : (float, float), optional
        Range of lesion radii as a fraction of the slice width (in [0.005, 0.25]); a lesion
        of radius ``r`` spans about ``2 r W x_spacing / z_spacing`` slices.
    lesion_contrast : (float, float), optional
        Range of lesion intensity above the surrounding tissue, in [0, 1] units.
    n_lesions : (int, int), optional
        Range (inclusive) of lesions per lesion volume, ``1 <= low <= high <= 10``.
    spacing : (z, y, x)
        Slice distance and in-plane pixel spacing in mm, stated in every volume's affine
        (axial, LPS, centred on the origin).
    noise : float
        Standard deviation of the scanner noise (in [0, 0.5]).

    Returns
    -------
    VolumeDataset
        In-memory :class:`~synthaug.data.Volume` objects ``(1, D, H, W)`` in [0, 1], classes
        ``["normal", "lesion"]``, normal volumes first. Each has a label map: 1 where a
        lesion covers the voxel (its soft outline at one half, before blur and noise), 0
        elsewhere, all 0 for normal volumes. ``metadata`` holds ``kind``, ``difficulty``,
        ``n_lesions``, ``lesion_radii_mm``, ``lesion_contrasts``, ``lesion_centres`` (voxel
        indices ``(d, h, w)``) and for chest ``lesion_on_vessel``, and ``origin``
        ``"synthetic"``. The label maps are known because the lesions are drawn in code:
        use them to evaluate, never to train a method that claims to learn from volume
        labels alone.

    Examples
    --------
    >>> ds = make_phantom_volumes((3, 2), shape=(8, 16, 16), kind="brain", seed=1)
    >>> ds.classes, ds.class_counts(), ds.sample_shape
    (['normal', 'lesion'], {0: 3, 1: 2}, (1, 8, 16, 16))
    >>> ds.spacing[0].tolist()
    [2.5, 1.5, 1.5]
    """
    counts = _counts(n_per_class)
    if kind not in ("chest", "brain"):
        raise InvalidParameterError(f"kind must be 'chest' or 'brain', got {kind!r}")
    depth, height, width = _check_shape(shape)
    if difficulty not in PHANTOM_DIFFICULTIES:
        raise InvalidParameterError(
            f"difficulty must be one of {sorted(PHANTOM_DIFFICULTIES)}, got {difficulty!r}"
        )
    preset = PHANTOM_DIFFICULTIES[difficulty]
    radius = preset["lesion_radius"] if lesion_radius is None else lesion_radius
    contrast = preset["lesion_contrast"] if lesion_contrast is None else lesion_contrast
    count = preset["n_lesions"] if n_lesions is None else n_lesions
    _check_range("lesion_radius", radius, 0.005, 0.25)
    _check_range("lesion_contrast", contrast, 0.0, 1.0)
    count = _check_count_range(count)
    affine = affine_from_spacing(spacing)  # checks the spacing
    spacing = tuple(float(s) for s in spacing)
    affine[:3, 3] = -affine[:3, :3] @ ((np.array([depth, height, width]) - 1) / 2)
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise <= 0.5:
        raise InvalidParameterError(f"noise must be a number in [0, 0.5], got {noise!r}")

    n = sum(counts)
    voxels = depth * height * width
    chunk = max(1, _CHUNK_VOXELS // voxels)
    # The volumes (float32), their lesion regions and vessel masks (bool) and label maps
    # (int64), plus one chunk's working maps: refused before the first voxel is drawn.
    check_fits_in_memory(
        n * voxels * (4 + 1 + 1 + 8) + min(n, chunk) * voxels * _WORK_BYTES_PER_VOXEL,
        f"{n:,} phantom volumes of {depth}x{height}x{width} voxels",
        "make fewer or smaller ones",
    )
    gen = torch.Generator().manual_seed(check_seed(seed))
    labels = np.repeat(np.arange(len(counts)), counts)
    # Anatomy first for every volume, lesions after, from one stream: the anatomy of volume
    # i does not depend on which volumes carry lesions.
    geometry = _Geometry(depth, height, width, spacing)
    draw = _chest if kind == "chest" else _brain
    anatomy = [draw(min(chunk, n - start), geometry, gen) for start in range(0, n, chunk)]
    volumes: list[Volume] = []
    for start, (images, region, vessels) in zip(range(0, n, chunk), anatomy, strict=True):
        m = len(images)
        sick = torch.from_numpy(labels[start : start + m] == 1)
        k = torch.randint(count[0], count[1] + 1, (m,), generator=gen) * sick
        lesions = _add_lesions(
            images, region, vessels, k, count[1], radius, contrast, geometry, gen
        )
        images, masks = lesions.images, lesions.masks
        images = _blur3d(images)
        images = _noise(images, float(noise), kind, gen).clamp_(0.0, 1.0)
        for i in range(m):
            j = int(k[i])
            meta = {
                "kind": kind,
                "difficulty": difficulty,
                "origin": "synthetic",
                "n_lesions": j,
                "lesion_radii_mm": [
                    round(float(r) * width * spacing[2], 2) for r in lesions.radii[i, :j]
                ],
                "lesion_contrasts": [round(float(c), 4) for c in lesions.contrasts[i, :j]],
                "lesion_centres": [tuple(int(v) for v in c) for c in lesions.centres[i, :j]],
            }
            if kind == "chest":
                meta["lesion_on_vessel"] = [bool(a) for a in lesions.attached[i, :j]]
            volumes.append(
                Volume(images[i : i + 1].numpy(), affine, masks[i].numpy().astype(np.int64), meta)
            )
    return VolumeDataset(volumes, labels, PHANTOM_CLASSES)


def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    values = tuple(shape) if isinstance(shape, Sequence) else ()
    if (
        len(values) != 3
        or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in values)
        or values[0] < 8
        or min(values[1:]) < 16
    ):
        raise InvalidParameterError(
            f"shape must be (D, H, W) integers with D >= 8 and H, W >= 16, got {shape!r}"
        )
    return int(values[0]), int(values[1]), int(values[2])


def _check_count_range(value: Sequence[int]) -> tuple[int, int]:
    values = tuple(value) if isinstance(value, Sequence) else ()
    if (
        len(values) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values)
        or not 1 <= values[0] <= values[1] <= 10
    ):
        raise InvalidParameterError(
            f"n_lesions must be a (low, high) pair of integers with 1 <= low <= high <= 10, "
            f"got {value!r}"
        )
    return int(values[0]), int(values[1])


class _Geometry:
    """The voxel grid: coordinates shaped to broadcast over ``(volumes, D, H, W)``."""

    def __init__(self, depth: int, height: int, width: int, spacing: tuple[float, ...]) -> None:
        self.depth, self.height, self.width = depth, height, width

        def axis(size: int) -> torch.Tensor:
            return (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1

        self.x = axis(width).view(1, 1, 1, width)
        self.y = axis(height).view(1, 1, height, 1)
        self.z = axis(depth).view(1, depth, 1, 1)
        # Physical extent of rows and slices relative to the slice width: distances in
        # "width units" are (x, y * ky, z * kz).
        self.ky = height * spacing[1] / (width * spacing[2])
        self.kz = depth * spacing[0] / (width * spacing[2])
        self.edge = 1.5 / width  # the soft rim of the anatomy, in grid units
        self.voxel = 2.0 / width  # one column, in width units
        self.mm_per_unit = width * spacing[2] / 2

    def texture(self, m: int, gen: torch.Generator, cells: int, amount: float) -> torch.Tensor:
        """Smooth random 3D texture: coarse noise upsampled trilinearly, about +-amount."""
        cz = max(2, round(cells * self.kz))
        coarse = torch.randn(m, 1, cz, cells, cells, generator=gen)
        size = (self.depth, self.height, self.width)
        return (
            amount * F.interpolate(coarse, size=size, mode="trilinear", align_corners=False)[:, 0]
        )


def _u(gen: torch.Generator, m: int, lo: float, hi: float) -> torch.Tensor:
    """``(m, 1, 1, 1)`` uniform draws, one per volume."""
    return (lo + (hi - lo) * torch.rand(m, generator=gen)).view(m, 1, 1, 1)


def _wave(gen: torch.Generator, m: int, z: torch.Tensor, amount: float) -> torch.Tensor:
    """A slow random wave along ``z`` per volume, ``(m, D, 1, 1)`` in [-amount, amount]:
    how a structure drifts from slice to slice."""
    freq, phase = _u(gen, m, 0.8, 2.2), _u(gen, m, 0.0, 2 * math.pi)
    return amount * torch.sin(freq * z + phase)


def _dome(z: torch.Tensor, centre: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """``sqrt(1 - ((z - centre) / half)^2)`` clipped at 0: the in-plane scale of an
    ellipsoid's slice at ``z`` (1 at its centre, 0 beyond its ends)."""
    return (1 - ((z - centre) / half) ** 2).clamp(min=0).sqrt()


def _ellipse(
    g: _Geometry,
    cx: torch.Tensor,
    cy: torch.Tensor,
    ax: torch.Tensor,
    ay: torch.Tensor,
    angle: torch.Tensor | float = 0.0,
    edge: float | None = None,
) -> torch.Tensor:
    """Soft in-plane ellipses per slice, in [0, 1]; zero where an axis is zero (the
    structure does not reach that slice)."""
    edge = g.edge if edge is None else edge
    present = (ax > 1e-3) & (ay > 1e-3)
    ax, ay = ax.clamp(min=1e-3), ay.clamp(min=1e-3)
    angle = torch.as_tensor(angle, dtype=torch.float32)
    cos, sin = torch.cos(angle), torch.sin(angle)
    dx, dy = g.x - cx, g.y - cy
    u = (dx * cos + dy * sin) / ax
    v = (-dx * sin + dy * cos) / ay
    r = torch.sqrt(u * u + v * v)
    return torch.sigmoid((1 - r) * torch.minimum(ax, ay) / edge) * present


def _add_tube(
    g: _Geometry, tubes: torch.Tensor, start: torch.Tensor, end: torch.Tensor, radius: torch.Tensor
) -> None:
    """Draw into ``tubes`` (in place, by maximum) the soft tube of ``radius`` around each
    volume's segment ``start``-``end`` ((m, 3) each, width units). Each volume's tube is
    computed only in the box around its segment (plus radius and rim): a branch costs the
    voxels near it, not the whole volume (a loop over volumes, each box one tensor step)."""
    sizes_scales = ((g.width, 1.0), (g.height, g.ky), (g.depth, g.kz))
    for j in range(len(start)):
        a, b, r = start[j], end[j], float(radius[j])
        reach = r + 2 * g.voxel
        low, high = torch.minimum(a, b) - reach, torch.maximum(a, b) + reach
        box = []
        for k, (size, scale) in enumerate(sizes_scales):
            # Width units back to voxel indices: u = ((i + 0.5) / size * 2 - 1) * scale.
            first = math.floor((float(low[k]) / scale + 1) / 2 * size - 0.5)
            last = math.ceil((float(high[k]) / scale + 1) / 2 * size - 0.5)
            box.append(slice(max(first, 0), min(last + 1, size)))
        cols, rows, slices = box
        if cols.start >= cols.stop or rows.start >= rows.stop or slices.start >= slices.stop:
            continue  # the segment lies outside the volume
        px = g.x[0, 0, 0, cols] - a[0]
        py = g.y[0, 0, rows, 0] * g.ky - a[1]
        pz = g.z[0, slices, 0, 0] * g.kz - a[2]
        px, py, pz = px.view(1, 1, -1), py.view(1, -1, 1), pz.view(-1, 1, 1)
        d = b - a
        t = ((px * d[0] + py * d[1] + pz * d[2]) / max(float(d.dot(d)), 1e-8)).clamp(0, 1)
        dist2 = (px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2
        tube = torch.sigmoid((r - dist2.sqrt()) / (0.5 * g.voxel))
        view = tubes[j, slices, rows, cols]
        torch.maximum(view, tube, out=view)


def _vessel_tree(
    g: _Geometry,
    tubes: torch.Tensor,
    root: torch.Tensor,
    direction: torch.Tensor,
    length: torch.Tensor,
    radius: torch.Tensor,
    levels: int,
    gen: torch.Generator,
) -> None:
    """Draw into ``tubes`` a binary tree of vessels from ``root`` ((m, 3), width units): each
    segment splits into two thinner, shorter ones turned apart."""
    m = len(root)
    level = [(root, direction, length, radius)]
    for _ in range(levels):
        children = []
        for start, dirn, ln, rad in level:
            end = start + dirn * ln.view(m, 1)
            _add_tube(g, tubes, start, end, rad)
            # The two children turn apart around a random axis: a symmetric split.
            turn = torch.randn(m, 3, generator=gen)
            turn = turn - (turn * dirn).sum(1, keepdim=True) * dirn
            turn = turn / turn.norm(dim=1, keepdim=True).clamp(min=1e-6)
            spread = 0.5 + 0.4 * torch.rand(m, 1, generator=gen)
            for sign in (1.0, -1.0):
                child = dirn + sign * spread * turn
                child = child / child.norm(dim=1, keepdim=True)
                children.append((end, child, ln * 0.75, rad * 0.75))
        level = children


def _chest(m: int, g: _Geometry, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Chest CT volumes, mediastinal window; returns images, the nodule region (lung
    parenchyma away from its edge) and the lung vessels (where attached nodules sit)."""
    z = g.z
    cx = _u(gen, m, -0.05, 0.05) + _wave(gen, m, z, 0.02)
    cy = _u(gen, m, -0.04, 0.06) + _wave(gen, m, z, 0.02)
    bx = _u(gen, m, 0.78, 0.92) * (1 + _wave(gen, m, z, 0.03))
    by = _u(gen, m, 0.55, 0.70) * (1 + _wave(gen, m, z, 0.04))
    body = _ellipse(g, cx, cy, bx, by)
    inner = _ellipse(g, cx, cy, bx - _u(gen, m, 0.04, 0.08), by - 0.05)
    fat, muscle = _u(gen, m, 0.30, 0.38), _u(gen, m, 0.50, 0.58)
    img = body * fat + inner * (muscle - fat)
    img = img + inner * g.texture(m, gen, 8, 0.02)
    # Lungs: two ellipsoids that narrow towards the apex (top slices); the base is cut by the
    # volume's lower end.
    apex_scale = _dome(z, _u(gen, m, -0.9, -0.5), _u(gen, m, 1.7, 2.1))
    lung_masks, roots, dirs = [], [], []
    for side in (-1.0, 1.0):
        lx = cx + side * bx * _u(gen, m, 0.42, 0.50)
        ly = cy - by * _u(gen, m, 0.02, 0.10)
        ax = bx * _u(gen, m, 0.28, 0.36) * apex_scale
        ay = by * _u(gen, m, 0.62, 0.76) * apex_scale
        tilt = side * _u(gen, m, -0.05, 0.25)
        lung_masks.append(_ellipse(g, lx, ly, ax, ay, tilt))
        # Three vessel trees per lung from its hilum (the medial side at mid height): one
        # turning up, one lateral, one down, so vessels cross every slice of the lung.
        mid = g.depth // 2
        hilum_x = (lx[:, mid] - side * 0.55 * ax[:, mid]).view(m)
        hilum_y = ly[:, mid].view(m) * g.ky
        for rise in (0.8, 0.0, -0.8):
            roots.append(
                torch.stack([hilum_x, hilum_y, _u(gen, m, -0.15, 0.15).view(m) * g.kz], dim=1)
            )
            d = torch.stack(
                [
                    torch.full((m,), side),
                    0.3 * torch.randn(m, generator=gen),
                    rise + 0.3 * torch.randn(m, generator=gen),
                ],
                1,
            )
            dirs.append(d / d.norm(dim=1, keepdim=True))
    lungs = torch.maximum(*lung_masks)
    lung_level = _u(gen, m, 0.06, 0.12)
    img = img * (1 - lungs) + lungs * (lung_level + g.texture(m, gen, max(g.width // 4, 6), 0.01))
    tubes = torch.zeros_like(img)
    for root, dirn in zip(roots, dirs, strict=True):
        length, radius = _u(gen, m, 0.24, 0.32).view(m), _u(gen, m, 0.045, 0.06).view(m)
        _vessel_tree(g, tubes, root, dirn, length, radius, 4, gen)
    vessels = tubes * lungs
    img = img * (1 - vessels) + vessels * _u(gen, m, 0.38, 0.48)
    # The heart in the lower slices, the aorta and the spine through every slice.
    heart_scale = _dome(z, _u(gen, m, -1.0, -0.6), _u(gen, m, 0.9, 1.2))
    heart = _ellipse(
        g,
        cx + _u(gen, m, 0.02, 0.12),
        cy + _u(gen, m, -0.02, 0.12),
        bx * _u(gen, m, 0.20, 0.27) * heart_scale,
        by * _u(gen, m, 0.30, 0.40) * heart_scale,
        _u(gen, m, -0.5, -0.2),
    )
    img = img * (1 - heart) + heart * _u(gen, m, 0.58, 0.66)
    aorta_r = _u(gen, m, 0.06, 0.08)
    aorta = _ellipse(
        g,
        cx - _u(gen, m, 0.02, 0.08) + _wave(gen, m, z, 0.02),
        cy + by * _u(gen, m, 0.35, 0.45),
        aorta_r,
        aorta_r,
    )
    img = img * (1 - aorta) + aorta * _u(gen, m, 0.62, 0.70)
    sx, sy = cx, cy + by * _u(gen, m, 0.70, 0.80)
    vertebra = _ellipse(g, sx, sy, _u(gen, m, 0.09, 0.12), _u(gen, m, 0.08, 0.10))
    canal = _ellipse(g, sx, sy + 0.14, _u(gen, m, 0.035, 0.05), torch.full((m, 1, 1, 1), 0.04))
    # Vertebrae (bright) and discs (soft tissue) alternate every 22-28 mm along z.
    period = _u(gen, m, 22.0, 28.0) / g.mm_per_unit
    disc_phase = _u(gen, m, 0.0, 2 * math.pi)
    disc = torch.sigmoid((torch.cos(2 * math.pi * z * g.kz / period + disc_phase) - 0.7) * 12)
    bone = _u(gen, m, 0.85, 0.95)
    bone = bone - disc * (bone - muscle)
    img = img * (1 - vertebra) + vertebra * bone
    img = img * (1 - canal) + canal * muscle
    region = torch.stack([mask > 0.98 for mask in lung_masks]).any(0) & (heart < 0.02)
    return img, region, vessels > 0.5


def _brain(m: int, g: _Geometry, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """T1-like brain MR volumes from the ventricles' level up towards the vertex; returns
    images, the lesion region (the inner brain away from the ventricles) and no vessels."""
    z = g.z
    cx = _u(gen, m, -0.05, 0.05) + _wave(gen, m, z, 0.015)
    cy = _u(gen, m, -0.05, 0.05) + _wave(gen, m, z, 0.015)
    # The head is an ellipsoid centred below the volume: slices shrink towards the top.
    scale = _dome(z, _u(gen, m, -1.1, -0.8), _u(gen, m, 2.3, 2.7))
    hx, hy = _u(gen, m, 0.66, 0.76) * scale, _u(gen, m, 0.80, 0.90) * scale
    angle = _u(gen, m, -0.12, 0.12)
    head = _ellipse(g, cx, cy, hx, hy, angle)
    skull = _ellipse(g, cx, cy, hx - 0.05, hy - 0.05, angle)
    brain = _ellipse(g, cx, cy, hx - 0.11, hy - 0.11, angle)
    white = _ellipse(
        g,
        cx,
        cy,
        (hx - 0.11) * _u(gen, m, 0.60, 0.72),
        (hy - 0.11) * _u(gen, m, 0.62, 0.74),
        angle,
        edge=4 * g.edge,
    )
    scalp, grey, wm = _u(gen, m, 0.75, 0.90), _u(gen, m, 0.40, 0.48), _u(gen, m, 0.58, 0.66)
    img = head * scalp
    img = img * (1 - skull) + skull * _u(gen, m, 0.04, 0.10)
    gyri = g.texture(m, gen, max(g.width // 4, 8), 0.05)
    img = img * (1 - brain) + brain * (grey + gyri)
    img = img * (1 - white) + white * (wm + g.texture(m, gen, 6, 0.015))
    # Lateral ventricles: two tilted ellipsoids near the midline in the lower slices.
    vent_scale = _dome(z, _u(gen, m, -0.6, -0.2), _u(gen, m, 0.5, 0.8)) * _u(gen, m, 0.7, 1.3)
    ventricles = torch.zeros_like(img)
    for side in (-1.0, 1.0):
        v = _ellipse(
            g,
            cx + side * _u(gen, m, 0.07, 0.12),
            cy + _u(gen, m, -0.10, 0.02),
            0.05 * vent_scale,
            0.20 * vent_scale,
            angle - side * _u(gen, m, 0.15, 0.35),
        )
        ventricles = torch.maximum(ventricles, v)
    img = img * (1 - ventricles) + ventricles * _u(gen, m, 0.10, 0.18)
    inner = _ellipse(g, cx, cy, hx - 0.20, hy - 0.20, angle)
    region = (inner > 0.98) & (ventricles < 0.02)
    return img, region, None


class _Lesions(NamedTuple):
    """What :func:`_add_lesions` made: the images, label masks and the lesions' parameters."""

    images: torch.Tensor
    masks: torch.Tensor
    radii: torch.Tensor
    contrasts: torch.Tensor
    centres: torch.Tensor
    attached: torch.Tensor


def _add_lesions(
    images: torch.Tensor,
    region: torch.Tensor,
    vessels: torch.Tensor | None,
    n_lesions: torch.Tensor,
    max_lesions: int,
    radius: tuple[float, float],
    contrast: tuple[float, float],
    g: _Geometry,
    gen: torch.Generator,
) -> _Lesions:
    """Add up to ``max_lesions`` solid blobs per volume, centred in ``region`` (some chest
    nodules on a vessel of ``vessels``); round in millimetres, lobulated for some."""
    m = len(images)
    k = max_lesions
    radii = radius[0] + (radius[1] - radius[0]) * torch.rand(m, k, generator=gen)
    contrasts = contrast[0] + (contrast[1] - contrast[0]) * torch.rand(m, k, generator=gen)
    flat_region = region.flatten(1)
    # Random voxels of the region (uniform over it); a volume whose region is empty (never
    # for these anatomies) would draw anywhere rather than fail.
    flat = torch.multinomial(flat_region.float() + 1e-9, k, replacement=True, generator=gen)
    attached = torch.zeros(m, k, dtype=torch.bool)
    if vessels is not None:
        # Some nodules sit on a vessel: centred on a random vessel voxel inside the region
        # (a volume without one keeps its free centres).
        on_vessel_region = (flat_region & vessels.flatten(1)).float()
        has_vessel = on_vessel_region.sum(1, keepdim=True) > 0
        on_vessel = torch.multinomial(on_vessel_region + 1e-9, k, replacement=True, generator=gen)
        attached = has_vessel & (torch.rand(m, k, generator=gen) < _ATTACHED_SHARE)
        flat = torch.where(attached, on_vessel, flat)
    d, rest = flat // (g.height * g.width), flat % (g.height * g.width)
    h, w = rest // g.width, rest % g.width
    centres = torch.stack([d, h, w], -1)
    active = torch.arange(k).view(1, -1) < n_lesions.view(-1, 1)
    lobes = 0.3 * torch.rand(m, k, generator=gen) * (torch.rand(m, k, generator=gen) < 0.5)
    phases = 2 * math.pi * torch.rand(m, k, 2, generator=gen)
    added = torch.zeros_like(images)
    cover = torch.zeros_like(images)

    def at(values: torch.Tensor, j: int) -> torch.Tensor:
        return values[:, j].reshape(m, 1, 1, 1).float()

    for j in range(k):
        # Centres and distances in width units, so a blob is round in millimetres.
        px = (at(w, j) + 0.5) / g.width * 2 - 1
        py = ((at(h, j) + 0.5) / g.height * 2 - 1) * g.ky
        pz = ((at(d, j) + 0.5) / g.depth * 2 - 1) * g.kz
        dx, dy, dz = g.x - px, g.y * g.ky - py, g.z * g.kz - pz
        dist = torch.sqrt(dx * dx + dy * dy + dz * dz)
        theta = torch.atan2(dy, dx)
        psi = torch.atan2(dz, torch.sqrt(dx * dx + dy * dy))
        # A sphere, or a lobulated blob: the radius swings with direction.
        swing = 0.6 * torch.sin(3 * theta + phases[:, j, 0].view(m, 1, 1, 1)) + 0.4 * torch.sin(
            2 * psi + phases[:, j, 1].view(m, 1, 1, 1)
        )
        r = at(radii, j) * 2 * (1 + at(lobes, j) * swing)
        # A one-voxel linear rim (one half at the radius), not a sigmoid: a lesion changes
        # nothing beyond half a voxel outside its outline.
        blob = ((r - dist) / g.voxel + 0.5).clamp(0, 1) * at(active, j)
        added = torch.maximum(added, blob * at(contrasts, j))
        cover = torch.maximum(cover, blob)
    return _Lesions(
        images=images + added,
        masks=cover > 0.5,
        radii=radii * active,
        contrasts=contrasts * active,
        centres=centres,
        attached=attached & active,
    )


def _blur3d(images: torch.Tensor) -> torch.Tensor:
    """A separable [1, 2, 1] / 4 point spread along every axis of ``(m, D, H, W)``."""
    x = images
    for axis in (1, 2, 3):
        pad = [0] * 6
        pad[2 * (3 - axis)] = pad[2 * (3 - axis) + 1] = 1
        padded = F.pad(x.unsqueeze(1), pad, mode="replicate")[:, 0]
        n = x.shape[axis]
        x = (
            padded.narrow(axis, 0, n) + 2 * padded.narrow(axis, 1, n) + padded.narrow(axis, 2, n)
        ) / 4
    return x
