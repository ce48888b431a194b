"""Lesion-level augmentation: weak lesion masks, copy-paste and generated lesion transplants.

Medical imbalance is plentiful anatomy with a rare finding. These sources do not generate
whole images: they take a lesion from a lesion image (or from a generator trained on lesion
patches) and place it into a normal image, where the normal image's own tissue matches the
tissue around the source lesion. The anatomy stays real and varied; only the lesion is moved.

Masks come from image-level labels alone (:class:`LesionLocalizer`): a VAE of the normal
images reconstructs a lesion image as normal anatomy, and the lesion is what is left over.

A lesion is pasted as what it adds to its surroundings (the image minus the tissue level
around it, smoothed), so the normal image's own noise runs through the pasted lesion and
there is no seam. Outside the pasted lesion's blend zone (its mask dilated by two pixels,
widened by the jitter's scaling) a synthetic image equals its normal background exactly.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from sklearn.base import clone

from synthaug._memory import check_sample_count
from synthaug._params import (
    Estimator,
    Param,
    Satisfies,
    boolean,
    device_like,
    int_range,
    none_or,
    one_of,
    pair_in,
    real_range,
    seed_like,
)
from synthaug._utils import check_seed, fitting_one_class, resolve_device, torch_generator
from synthaug.augment._registry import register_source
from synthaug.augment._source_files import FILE_TYPES, save_source
from synthaug.data import ImageDataset, Provenance, SourceItem
from synthaug.errors import (
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
    UnknownClassError,
)
from synthaug.generators import CGAN, CVAE, BaseGenerator
from synthaug.registry import Preset

# The localizer's VAE when none is given: a close-fitting model of normal anatomy (the
# phantom anomaly benchmark's tuned detector VAE, beta 0.1, 32 latents), fitted on flattened
# images (a multilayer perceptron: fast on a CPU).
_LOCALIZER_VAE = {
    "latent_dim": 32,
    "beta": 0.1,
    "epochs": 100,
    "validation_fraction": 0.0,
    "verbose": False,
}
# The transplant's generator when none is given: a small conditional GAN with DiffAugment,
# which keeps a discriminator from memorising a few dozen patches.
_TRANSPLANT_GAN = {"epochs": 150, "diffaugment": True, "verbose": False}
_RING = (1, 3)  # the tissue ring around a lesion: pixels 1 to 3 beyond its mask
# A pasted lesion is rotated and scaled by interpolation, then added to its background.
_PASTE_OPERATIONS = ("spatial-resampling", "pixel-addition")


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, 1, H, W)`` maps (edges replicated)."""
    if sigma <= 0:
        return x
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=x.dtype) ** 2) / (2 * sigma**2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))


def _dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Square dilation of ``(N, 1, H, W)`` float masks by ``pixels``."""
    if pixels <= 0:
        return mask
    return F.max_pool2d(mask, 2 * pixels + 1, stride=1, padding=pixels)


def _soft(core: torch.Tensor) -> torch.Tensor:
    """Blend weights of a pasted lesion: 1 on its mask, falling to 0 two pixels beyond it."""
    return F.avg_pool2d(_dilate(core, 1), 3, stride=1, padding=1, count_include_pad=False)


def _check_images(images: Any, what: str) -> torch.Tensor:
    if isinstance(images, ImageDataset):
        images = images.images
    if not isinstance(images, torch.Tensor):
        raise InvalidDataError(
            f"{what} must be an ImageDataset or a tensor, got {type(images).__name__}"
        )
    if images.ndim != 4:
        raise ShapeMismatchError(
            f"{what} must be (N, C, H, W) images, got shape {tuple(images.shape)}"
        )
    if len(images) == 0:
        raise EmptyDatasetError(f"{what} holds no images")
    images = images.float()
    if not torch.isfinite(images).all():
        raise InvalidDataError(f"{what} contain NaN or infinite values; clean them first")
    return images


def body_masks(images: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """Where the body is: pixels brighter than ``threshold`` after a slight blur, holes filled.

    Air around a body is dark on CT and MR; dark structures inside it (lungs, skull) are
    enclosed by brighter tissue, so filling holes keeps them in.

    Parameters
    ----------
    images : torch.Tensor
        ``(N, C, H, W)`` images in [0, 1].
    threshold : float
        Intensity that separates air from the body.

    Returns
    -------
    torch.Tensor
        ``(N, 1, H, W)`` bool.
    """
    images = _check_images(images, "images")
    bright = (_gaussian(images.mean(1, keepdim=True), 1.0) > threshold).numpy()
    filled = np.stack([ndimage.binary_fill_holes(b[0])[None] for b in bright])
    return torch.from_numpy(filled)


# The first localizer (no candidate cleaning), which the defaults still are: the committed
# lesion grids used it, and the cleaned setting lost brain lesions on a second development
# draw. ``LesionLocalizer(**LEGACY_LOCALIZER)`` names it whatever the defaults become.
LEGACY_LOCALIZER = {
    "cleaning": "none",
    "sigma": 1.5,
    "floor_quantile": 0.99,
    "relative_threshold": 0.4,
}
# Candidate cleaning with the settings chosen on the development pool (see the Notes):
# ``LesionLocalizer(**CLEANED_LOCALIZER)``.
CLEANED_LOCALIZER = {
    "cleaning": "components",
    "sigma": 0.5,
    "floor_quantile": 0.98,
    "relative_threshold": 0.35,
}
# Normal images whose intensity hardly varies at a place (air, flat tissue) would make any
# residual there look extraordinary: the spread is never taken below this.
_MIN_SPREAD = 1e-3
_EIGHT = np.ones((3, 3), dtype=bool)  # components touch by corners too


@FILE_TYPES.register("lesion-localizer")
class LesionLocalizer(Estimator):
    """Lesion masks from image-level labels: what a VAE of normal anatomy cannot explain.

    ``fit`` trains a :class:`~synthaug.generators.CVAE` (the model of the VAE anomaly
    detector) on normal images; :meth:`masks` reconstructs an image as normal anatomy and
    keeps the pixels brighter than the reconstruction (lesions on CT and most MR sequences
    are hyperintense), smoothed, above a floor (a high quantile of the same map on the normal
    training images).

    With ``cleaning="components"`` (``CLEANED_LOCALIZER``; not the default) each connected region above the floor is a
    candidate, outlined at ``relative_threshold`` of its own peak (a half-maximum outline per
    lesion), then judged:

    * against what normal images show at the same place: its *score* is its mean residual
      over the spread (standard deviation) of the normal training images' intensity there.
      Vessels and the edges of the spine or heart move from one normal image to the next, so
      the spread is high where they lie and their residual scores low; a lesion sits where
      normal images are alike. A candidate scoring under ``min_score`` is dropped.
    * against the lesions found with confidence: the highest-scoring candidate of each image
      gives a size and shape prior (the ``prior_quantile`` and ``1 - prior_quantile``
      quantiles of their areas, widened by ``area_factor``, and ``fill_factor`` times the
      ``prior_quantile`` quantile of their fill, the share of their bounding square they
      cover). Thin lines and sprawling edges fill little of their bounding square.

    The priors are learnt from the images of one :meth:`masks` call: pass all lesion images
    of a class together (as the lesion sources do), not one at a time.

    ``cleaning="none"`` keeps every pixel above both the floor and ``relative_threshold`` of
    the image's own peak (the first version); ``LesionLocalizer(**LEGACY_LOCALIZER)``
    reproduces its masks exactly.

    Attributes
    ----------
    vae_ : CVAE
        The fitted model of normal anatomy (on flattened images).
    floor_ : float
        The residual a lesion pixel must exceed.
    spread_ : torch.Tensor
        ``(H, W)``: the standard deviation of the normal training images' intensity at each
        pixel (channel mean, smoothed by one pixel), the denominator of a candidate's score.

    Notes
    -----
    On development-pool phantoms (``benchmarks/tuning/lesion_masks.py``, 400 normal and 20
    lesion 64x64 slices) ``CLEANED_LOCALIZER`` scores a mean Dice of 0.746 (chest) and 0.795
    (brain) against the true masks, pixel precision 0.799 and 0.788; the defaults (the first
    version, ``LEGACY_LOCALIZER``) scored Dice 0.610 and 0.799, precision 0.583 and 0.782
    (``benchmarks/results/tuning/lesion_masks.txt``). The cleaned settings were chosen on
    those slices; on a second development draw they score Dice 0.685 (chest) and 0.702
    (brain), precision 0.706 and 0.785, against the first version's 0.650 and 0.760,
    precision 0.623 and 0.695: cleaner masks, but on brain some real lesions are lost, which
    is why cleaning is not the default. The floor comes from training images,
    which a VAE reconstructs better than unseen ones: it errs towards larger masks.
    Cleaning loops over the images in Python (labelling and per-region statistics with
    ``scipy.ndimage``): a ``masks`` call on 20 such slices took 31-85 ms with the VAE's
    reconstruction, on a loaded 2-core machine.
    """

    vae = Param(
        None,
        none_or(Satisfies(lambda v: isinstance(v, CVAE), "a CVAE", "CVAE")),
        """The model of normal anatomy, cloned and fitted with this localizer's seed and device.
        ``None``: ``CVAE(latent_dim=32, beta=0.1, epochs=100, validation_fraction=0)``.""",
    )
    sigma = Param(1.5, real_range(0), "Gaussian smoothing of the residual map, in pixels.")
    floor_quantile = Param(
        0.99,
        real_range(0, 1),
        """Quantile of the normal images' residual map that a lesion pixel must exceed.""",
    )
    relative_threshold = Param(
        0.4,
        real_range(0, 1),
        """Fraction of the largest residual that a lesion pixel must exceed: of its candidate
        region's (``cleaning="components"``) or of its image's (``cleaning="none"``).""",
    )
    min_area = Param(3, int_range(1), "Smallest lesion kept, in pixels.")
    cleaning = Param(
        "none",
        one_of("components", "none"),
        """``"components"``: judge each candidate region by its score against the normal
        images and by the size and shape priors (with ``CLEANED_LOCALIZER``'s thresholds);
        ``"none"``: keep every region (the first version's masks).""",
    )
    min_score = Param(
        1.5,
        real_range(0),
        """Smallest score a candidate is kept with: its mean residual over the spread of the
        normal images' intensity at its pixels (``cleaning="components"`` only).""",
    )
    prior_quantile = Param(
        0.2,
        real_range(0, 0.5),
        """Quantile of the confident candidates' areas and fills that bounds the priors (0: their
        extremes; higher is stricter and robust to a wrong confident candidate).""",
    )
    area_factor = Param(
        2.0,
        real_range(1),
        """How far a kept candidate's area may lie outside the confident ones' quantile range,
        as a factor on either side.""",
    )
    fill_factor = Param(
        0.8,
        real_range(0, 1),
        """A kept candidate fills at least this fraction of the confident ones' low fill
        quantile (0: no shape prior).""",
    )
    seed = Param(0, seed_like, "Seeds the VAE's fit.")
    device = Param(
        "auto", device_like, 'Where the VAE trains and runs; ``"auto"``: CUDA when available.'
    )

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "vae_")

    def fit(self, normal: ImageDataset | torch.Tensor) -> LesionLocalizer:
        """Learn normal anatomy from ``normal`` images (an ``ImageDataset`` or ``(N, C, H, W)``)."""
        self.check_params()
        images = _check_images(normal, "normal images")
        if len(images) < 2:
            raise InvalidDataError(
                f"a model of normal anatomy needs at least 2 normal images, got {len(images)}"
            )
        self.sample_shape_ = tuple(images.shape[1:])
        vae = clone(self.vae) if self.vae is not None else CVAE(**_LOCALIZER_VAE)
        vae.set_params(seed=check_seed(self.seed), device=self.device)
        flat = ImageDataset(
            images.reshape(len(images), -1), torch.zeros(len(images), dtype=torch.int64), ["normal"]
        )
        with fitting_one_class():  # normal anatomy alone
            self.vae_ = vae.fit(flat)
        residual = self.residual_map(images).numpy()
        self.floor_ = float(np.quantile(residual, self.floor_quantile))
        # How much normal anatomy varies at each place; smoothed so that a structure that
        # moves by a pixel between images still counts as varying next to where it lay.
        spread = images.mean(1, keepdim=True).std(0, keepdim=True)
        self.spread_ = _gaussian(spread, 1.0)[0, 0].clamp(min=_MIN_SPREAD)
        return self

    def residual_map(self, images: torch.Tensor) -> torch.Tensor:
        """Smoothed positive residual ``max(blur(x - reconstruction), 0)``, ``(N, 1, H, W)``."""
        if not self.is_fitted:
            raise NotFittedError("LesionLocalizer is not fitted; call fit(normal_images) first")
        images = _check_images(images, "images")
        if tuple(images.shape[1:]) != self.sample_shape_:
            raise ShapeMismatchError(
                f"images of shape {tuple(images.shape[1:])}, but the localizer learned "
                f"{self.sample_shape_}"
            )
        flat = images.reshape(len(images), -1)
        recon = self.vae_.reconstruct(flat, torch.zeros(len(images), dtype=torch.int64))
        signed = (images - recon.reshape(images.shape)).mean(1, keepdim=True)
        return _gaussian(signed, self.sigma).clamp(min=0)

    def masks(self, images: torch.Tensor) -> torch.Tensor:
        """Lesion masks of ``images``, ``(N, 1, H, W)`` bool (empty where nothing stands out).

        With ``cleaning="components"`` the size and shape priors are learnt from these images'
        confident candidates: pass the lesion images of a class together.
        """
        self.check_params()
        residual = self.residual_map(images)
        if self.cleaning == "none":
            peak = residual.flatten(1).amax(1).view(-1, 1, 1, 1)
            keep = residual > torch.clamp(self.relative_threshold * peak, min=self.floor_)
            return _drop_small(keep, self.min_area)
        candidates = [
            _candidates(r, self.floor_, self.relative_threshold, self.min_area)
            for r in residual[:, 0].numpy()
        ]
        score_map = (residual[:, 0] / self.spread_).numpy()
        stats = [
            _describe(labelled, n, s)
            for (labelled, n), s in zip(candidates, score_map, strict=True)
        ]
        keep = self._judge(stats)
        out = np.stack(
            [
                np.isin(labelled, np.flatnonzero(k) + 1)
                for (labelled, _), k in zip(candidates, keep, strict=True)
            ]
        )
        return torch.from_numpy(out[:, None])

    def _judge(self, stats: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        """Per image, which candidates to keep (bool per component): the score threshold and
        the size and shape priors of the confident candidates."""
        confident = [int(np.argmax(s["score"])) for s in stats if len(s["score"])]
        if not confident:
            return [np.zeros(0, dtype=bool) for _ in stats]
        chosen = [s for s in stats if len(s["score"])]
        area = np.array([s["area"][k] for s, k in zip(chosen, confident, strict=True)])
        fill = np.array([s["fill"][k] for s, k in zip(chosen, confident, strict=True)])
        q = self.prior_quantile
        low, high = np.quantile(area, [q, 1 - q])
        low, high = low / self.area_factor, high * self.area_factor
        min_fill = self.fill_factor * np.quantile(fill, q)
        return [
            (s["score"] >= self.min_score)
            & (s["area"] >= low)
            & (s["area"] <= high)
            & (s["fill"] >= min_fill)
            for s in stats
        ]


def _candidates(
    residual: np.ndarray, floor: float, relative: float, min_area: int
) -> tuple[np.ndarray, int]:
    """Candidate lesions of one ``(H, W)`` residual map: the regions above ``floor``, each cut
    at ``relative`` of its own peak, relabelled, those under ``min_area`` pixels dropped."""
    labelled, n = ndimage.label(residual > floor, structure=_EIGHT)
    if n == 0:
        return labelled, 0
    peaks = ndimage.maximum(residual, labelled, np.arange(1, n + 1))
    cut = np.concatenate([[np.inf], relative * np.asarray(peaks)])[labelled]
    labelled, n = ndimage.label((residual > floor) & (residual > cut), structure=_EIGHT)
    area = np.bincount(labelled.ravel(), minlength=n + 1)
    big = np.flatnonzero(area >= min_area)
    big = big[big > 0]
    # Renumber the kept regions 1..m so that region k's statistics sit at index k - 1.
    lookup = np.zeros(n + 1, dtype=labelled.dtype)
    lookup[big] = np.arange(1, len(big) + 1)
    return lookup[labelled], len(big)


def _describe(labelled: np.ndarray, n: int, score_map: np.ndarray) -> dict[str, np.ndarray]:
    """Area, fill of the bounding square and mean score of each of the ``n`` regions."""
    index = np.arange(1, n + 1)
    area = np.bincount(labelled.ravel(), minlength=n + 1)[1:].astype(float)
    sides = np.array(
        [max(s.stop - s.start for s in box) for box in ndimage.find_objects(labelled, n)],
        dtype=float,
    ).reshape(-1)
    score = np.asarray(ndimage.mean(score_map, labelled, index), dtype=float).reshape(-1)
    return {"area": area, "fill": area / np.maximum(sides, 1) ** 2, "score": score}


def _drop_small(masks: torch.Tensor, min_area: int) -> torch.Tensor:
    if min_area <= 1:
        return masks
    out = masks.numpy().copy()
    for i, m in enumerate(out):
        labelled, n = ndimage.label(m[0])
        if n:
            sizes = np.bincount(labelled.ravel())
            small = np.flatnonzero(sizes < min_area)
            out[i, 0][np.isin(labelled, small[small > 0])] = False
    return torch.from_numpy(out)


def _resolve_class(value: int | str | None, classes: list[str], what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in classes:
            raise UnknownClassError(f"{what} {value!r} is not one of the classes {classes}")
        return classes.index(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidParameterError(f"{what} must be a class name or label, got {value!r}")
    if not 0 <= int(value) < len(classes):
        raise UnknownClassError(f"{what} {value!r} is not a label of the classes {classes}")
    return int(value)


class _LesionSource(Estimator):
    """Shared fitting (masks, lesion patches, backgrounds) and pasting of the lesion sources."""

    stores_training_images = True
    makes_masks = True
    # Every sample is a real normal image with lesions added (copied or generated ones).
    keeps_real_pixels = True
    # How a sample is made, for its provenance.
    _how = "a real normal training image with real lesions of other training images pasted in"

    normal_class = Param(
        "normal",
        Satisfies(
            lambda v: (
                isinstance(v, str) or (isinstance(v, numbers.Integral) and not isinstance(v, bool))
            ),
            "a class name or label",
            "int or str",
        ),
        "The class whose images serve as backgrounds; every other class is a lesion class.",
    )
    localizer = Param(
        None,
        none_or(
            Satisfies(
                lambda v: isinstance(v, LesionLocalizer), "a LesionLocalizer", "LesionLocalizer"
            )
        ),
        """Finds the lesions from image-level labels when ``fit`` gets no masks. A fitted one is
        used as it is (one fit can serve several sources); ``None``: a default
        :class:`LesionLocalizer` fitted on the normal images.""",
    )
    rotate = Param(True, boolean, "Rotate each pasted lesion by a random angle.")
    scale = Param(
        (0.85, 1.2),
        pair_in(0.25, 4.0),
        "Range of the random scale factor of a pasted lesion.",
    )
    intensity = Param(
        (0.8, 1.2),
        pair_in(0.0, 4.0),
        "Range of the random factor on the contrast of a pasted lesion.",
    )
    tissue_tolerance = Param(
        0.05,
        real_range(0, None, low_open=True),
        """How close (in intensity) the background's tissue must be to the source lesion's
        surroundings: the placement weight is ``exp(-d**2 / (2 tolerance**2))``.""",
    )
    body_threshold = Param(
        0.1, real_range(0, 1), "Air / body intensity threshold of :func:`body_masks`."
    )
    max_lesion_size = Param(
        0.25,
        real_range(0, 1, low_open=True),
        """Regions of a mask wider than this fraction of the image side are not taken as
        lesions (counted in ``n_dropped_``).""",
    )
    seed = Param(0, seed_like, "Seeds the fit of the localizer (and of a transplant's generator).")
    device = Param(
        "auto",
        device_like,
        """Where the localizer (and a transplant's generator) trains; ``"auto"``: CUDA when
        available.""",
    )

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "patches_")

    def fit(self, dataset: ImageDataset, masks: torch.Tensor | None = None) -> _LesionSource:
        """Find the lesions of ``dataset``'s lesion images and learn where they may go.

        Parameters
        ----------
        dataset : ImageDataset
            Normal images (class ``normal_class``) and images of one or more lesion classes.
        masks : torch.Tensor, optional
            ``(N, 1, H, W)`` lesion masks of ``dataset``'s items, when known (a radiologist's
            segmentations). Without them, the lesions are localised from the image labels by
            ``localizer`` (fitted on the normal images unless already fitted).
        """
        self.check_params()
        if not isinstance(dataset, ImageDataset):
            raise InvalidDataError(f"dataset must be an ImageDataset, got {type(dataset).__name__}")
        if len(dataset) == 0:
            raise EmptyDatasetError(f"cannot fit {type(self).__name__} on an empty dataset")
        if not dataset.is_image:
            raise InvalidDataError(f"{type(self).__name__} needs (N, C, H, W) images")
        normal = _resolve_class(self.normal_class, dataset.classes, "normal_class")
        counts = dataset.class_counts()
        if counts.get(normal, 0) < 2:
            raise InvalidDataError(
                f"{type(self).__name__} pastes lesions into normal images; class "
                f"{dataset.classes[normal]!r} has {counts.get(normal, 0)} (at least 2 needed)"
            )
        lesion_classes = [c for c, n in counts.items() if c != normal and n > 0]
        if not lesion_classes:
            raise InvalidDataError(
                f"no lesion images: every image is of the normal class {dataset.classes[normal]!r}"
            )
        single = [dataset.classes[c] for c in lesion_classes if counts[c] < 2]
        if single:
            raise InvalidDataError(
                f"lesion class(es) {single} have 1 image; {type(self).__name__} needs at least 2 "
                f"per lesion class (from one image every synthetic lesion is a jittered copy of "
                f"the same one): add images, or drop the class"
            )
        images = _check_images(dataset.images, "dataset images")
        labels = dataset.labels
        if masks is not None:
            masks = _check_masks(masks, images)
        self.device_ = resolve_device(self.device)
        self.class_names_ = list(dataset.classes)
        self.sample_shape_ = tuple(images.shape[1:])
        self.normal_label_ = normal
        is_normal = labels == normal
        if masks is None:
            localizer = self.localizer
            if localizer is None or not localizer.is_fitted:
                localizer = clone(localizer) if localizer is not None else LesionLocalizer()
                localizer.set_params(seed=check_seed(self.seed), device=self.device)
                localizer.fit(images[is_normal])
            self.localizer_ = localizer
            masks = torch.zeros(len(images), 1, *images.shape[-2:], dtype=torch.bool)
            masks[~is_normal] = localizer.masks(images[~is_normal])
        self.dataset_ = dataset
        self.training_masks_ = masks & ~is_normal.view(-1, 1, 1, 1)
        self._fit_patches(images, labels, self.training_masks_, lesion_classes)
        self._fit_backgrounds(images[is_normal], torch.nonzero(is_normal).flatten())
        return self

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Write the fitted source to ``path`` (``.safetensors`` appended when missing).

        Load it back with :func:`synthaug.load` and it samples as before, the same samples for
        the same seed, without refitting. Like a generator's, the file holds a SHA-256 digest
        of its header and tensors (loading refuses any edit) and nothing pickled. It holds
        **real training pixels** (the normal backgrounds and the lesions cut from real images;
        the header says ``keeps_real_pixels``): keep it as private as the images.

        What sampling does not use stays out: the training set (``dataset_``), its masks
        (``training_masks_``) and the fitted ``localizer_``; a loaded source has none of them.

        Parameters
        ----------
        path : str or Path
        metadata : dict, optional
            JSON-able facts to keep with it; the loaded source's ``metadata_``.
        """
        return save_source(self, path, metadata)

    def _fitted_state(self) -> dict[str, Any]:
        """The fitted scalars sampling uses, JSON-able (the tensors are apart)."""
        return {
            "class_names_": self.class_names_,
            "sample_shape_": list(self.sample_shape_),
            "normal_label_": self.normal_label_,
            "n_dropped_": self.n_dropped_,
            "patch_size_": self.patch_size_,
            "lesions_per_image_": {str(c): v for c, v in self.lesions_per_image_.items()},
            "lesion_radius_": self.lesion_radius_,
            "typical_radius_": self.typical_radius_,
        }

    def _fitted_tensors(self) -> dict[str, torch.Tensor]:
        return {
            "patches": self.patches_,
            "patch_rings": self.patch_rings_,
            "patch_labels": self.patch_labels_,
            "backgrounds": self.backgrounds_,
            "inside": self.inside_,
            "tissue": self.tissue_,
        }

    def _fitted_generator(self) -> BaseGenerator | None:
        """A fitted generator the source samples from, saved with it (none here)."""
        return None

    def _restore(
        self,
        state: dict[str, Any],
        tensors: dict[str, torch.Tensor],
        device: torch.device,
        generator: BaseGenerator | None = None,
    ) -> None:
        """Set the fitted attributes from a file's ``state`` and ``tensors``; raise
        ``ValueError`` (or ``KeyError``, ``TypeError``) when they do not make a source."""
        if generator is not None:
            raise ValueError(f"{type(self).__name__} holds no generator, but the file has one")
        if set(tensors) != set(self._FILE_TENSORS):
            raise KeyError(f"tensors {sorted(tensors)}, expected {sorted(self._FILE_TENSORS)}")
        for name, dtype in self._FILE_TENSORS.items():
            if tensors[name].dtype != dtype:
                raise TypeError(f"tensor {name!r} is {tensors[name].dtype}, expected {dtype}")
        self.device_ = device
        self.class_names_ = [str(c) for c in state["class_names_"]]
        self.sample_shape_ = tuple(int(v) for v in state["sample_shape_"])
        self.normal_label_ = int(state["normal_label_"])
        self.n_dropped_ = int(state["n_dropped_"])
        self.patch_size_ = int(state["patch_size_"])
        self.lesions_per_image_ = {
            int(c): [int(k) for k in v] for c, v in state["lesions_per_image_"].items()
        }
        self.lesion_radius_ = float(state["lesion_radius_"])
        self.typical_radius_ = float(state["typical_radius_"])
        self.patches_ = tensors["patches"]
        self.patch_rings_ = tensors["patch_rings"]
        self.patch_labels_ = tensors["patch_labels"]
        self.backgrounds_ = tensors["backgrounds"]
        self.inside_ = tensors["inside"]
        self.tissue_ = tensors["tissue"]
        self._check_restored()

    # What a file holds of a source, and the dtype of each.
    _FILE_TENSORS = {
        "patches": torch.float32,
        "patch_rings": torch.float32,
        "patch_labels": torch.int64,
        "backgrounds": torch.float32,
        "inside": torch.bool,
        "tissue": torch.float32,
    }

    def _check_restored(self) -> None:
        """Raise ``ValueError`` when restored fitted attributes contradict each other."""
        shape, n_classes = self.sample_shape_, len(self.class_names_)
        lesion_classes = set(self.lesions_per_image_)
        n_patches, size = len(self.patches_), self.patch_size_
        n_backgrounds = len(self.backgrounds_)
        consistent = (
            len(shape) == 3
            and min(shape) >= 1
            and 0 <= self.normal_label_ < n_classes
            and lesion_classes
            and lesion_classes <= set(range(n_classes)) - {self.normal_label_}
            and all(v and min(v) >= 0 and max(v) > 0 for v in self.lesions_per_image_.values())
            and n_patches >= 1
            and tuple(self.patches_.shape) == (n_patches, shape[0] + 1, size, size)
            and tuple(self.patch_rings_.shape) == (n_patches,)
            and tuple(self.patch_labels_.shape) == (n_patches,)
            and set(self.patch_labels_.tolist()) == lesion_classes
            and n_backgrounds >= 1
            and tuple(self.backgrounds_.shape) == (n_backgrounds, *shape)
            and tuple(self.inside_.shape) == (n_backgrounds, *shape[1:])
            and tuple(self.tissue_.shape) == (n_backgrounds, *shape[1:])
            and bool(self.inside_.flatten(1).any(1).all())
            and 0 < self.typical_radius_ <= self.lesion_radius_
            and all(
                bool(torch.isfinite(t).all())
                for t in (self.patches_, self.patch_rings_, self.backgrounds_, self.tissue_)
            )
        )
        if not consistent:
            raise ValueError(
                f"its fitted state is inconsistent (classes {self.class_names_}, normal label "
                f"{self.normal_label_}, lesion classes {sorted(lesion_classes)}, sample shape "
                f"{shape}, {n_patches} patches of {tuple(self.patches_.shape)}, "
                f"{n_backgrounds} backgrounds of {tuple(self.backgrounds_.shape)})"
            )

    # -- lesion patches ------------------------------------------------------------------
    def _fit_patches(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        masks: torch.Tensor,
        lesion_classes: list[int],
    ) -> None:
        components, per_image = [], {c: [] for c in lesion_classes}
        largest = self.max_lesion_size * min(images.shape[-2:])
        self.n_dropped_ = 0
        for i in torch.nonzero(labels != self.normal_label_).flatten().tolist():
            labelled, n = ndimage.label(masks[i, 0].numpy(), structure=np.ones((3, 3)))
            kept = 0
            for k in range(1, n + 1):
                ys, xs = np.nonzero(labelled == k)
                # A region wider than any lesion is most likely anatomy the localizer missed.
                if max(np.ptp(ys), np.ptp(xs)) + 1 > largest:
                    self.n_dropped_ += 1
                    continue
                components.append((i, labelled == k))
                kept += 1
            per_image[int(labels[i])].append(kept)
        empty = [self.class_names_[c] for c in lesion_classes if not sum(per_image[c])]
        if empty:
            raise InvalidDataError(
                f"no lesion found in the images of class(es) {empty}: the localizer's masks are "
                f"empty (lesions too faint for it), or the masks given are empty; pass masks= "
                f"or lower LesionLocalizer(relative_threshold=..., floor_quantile=...)"
            )
        extents = [
            max(np.ptp(np.nonzero(m)[0]), np.ptp(np.nonzero(m)[1])) + 1 for _, m in components
        ]
        # A patch holds the lesion and its two-pixel fade; a multiple of 8 suits conv nets.
        size = 8 * math.ceil((max(extents) + 6) / 8)
        self.patch_size_ = size
        wide = size // 2 + _RING[1]
        pad = F.pad(images, (wide, wide, wide, wide), mode="replicate")
        patches, rings, owners, items = [], [], [], []
        for i, m in components:
            ys, xs = np.nonzero(m)
            cy, cx = int(round(ys.mean())), int(round(xs.mean()))
            # The crop's window starts `wide` pixels before the centre in the padded image.
            crop = pad[i, :, cy : cy + 2 * wide, cx : cx + 2 * wide]
            core = torch.from_numpy(
                np.pad(m, wide, mode="constant")[cy : cy + 2 * wide, cx : cx + 2 * wide]
            ).float()[None, None]
            ring = (_dilate(core, _RING[1]) > 0) & ~(_dilate(core, _RING[0]) > 0)
            level = crop.flatten(1)[:, ring.flatten()].median(dim=1).values.view(-1, 1, 1)
            # What the lesion adds to its surroundings, lightly smoothed so the source's noise
            # does not come along, and faded out over two pixels beyond its mask.
            delta = _blur121(crop[None] - level[None])[0].clamp(min=0) * _soft(core)[0]
            inner = slice(_RING[1], _RING[1] + size)
            patches.append(torch.cat([delta, core[0]])[:, inner, inner])
            rings.append(float(level.mean()))
            owners.append(int(labels[i]))
            items.append(i)
        self.patches_ = torch.stack(patches)
        self.patch_rings_ = torch.tensor(rings)
        self.patch_labels_ = torch.tensor(owners, dtype=torch.int64)
        self.patch_items_ = torch.tensor(items, dtype=torch.int64)
        self.lesions_per_image_ = {c: per_image[c] for c in lesion_classes}
        self.lesion_radius_ = max(extents) / 2
        self.typical_radius_ = float(np.median(extents)) / 2

    def _fit_backgrounds(self, normal: torch.Tensor, items: torch.Tensor) -> None:
        """Keep the normal images (``items``: their rows in the training data) a lesion fits in."""
        body = body_masks(normal, self.body_threshold).float()
        # A lesion's centre stays far enough inside the body for all of it to fit.
        margin = math.ceil(self.lesion_radius_) + _RING[0]
        inside = 1 - _dilate(1 - body, margin)
        keep = inside.flatten(1).sum(1) > 0
        if not keep.any():
            raise InvalidDataError(
                f"no normal image has room for a lesion inside the body (body threshold "
                f"{self.body_threshold}, lesions up to {2 * self.lesion_radius_:.0f} pixels): "
                f"lower body_threshold or check that the images are in [0, 1]"
            )
        self.backgrounds_ = normal[keep]
        self.background_items_ = items[keep]
        self.inside_ = inside[keep, 0] > 0.5
        # The tissue level at each pixel (a 3x3 mean, so noise does not decide it).
        self.tissue_ = F.avg_pool2d(
            self.backgrounds_.mean(1, keepdim=True), 3, stride=1, padding=1, count_include_pad=False
        )[:, 0]

    # -- sampling ------------------------------------------------------------------------
    def _draw_patches(
        self, label: int, n: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` lesion patches of class ``label``, the tissue level each belongs in, and the
        training item each lesion was cut from (-1: not a real lesion)."""
        own = torch.nonzero(self.patch_labels_ == label).flatten()
        pick = own[torch.randint(len(own), (n,), generator=gen)]
        return self.patches_[pick], self.patch_rings_[pick], self._rows("patch_items_", pick)

    def _rows(self, table: str, picked: torch.Tensor) -> torch.Tensor:
        """The training rows of the ``picked`` patches or backgrounds; -1 each for a source
        loaded from a file, which does not keep the rows of its training data."""
        rows = getattr(self, table, None)
        return torch.full_like(picked, -1) if rows is None else rows[picked]

    def sample(
        self,
        n: int,
        y: int | str,
        seed: int | None = None,
        *,
        return_masks: bool = False,
        return_provenance: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """``n`` normal images of the training set with lesions of class ``y`` pasted in.

        Parameters
        ----------
        n : int
        y : int or str
            A lesion class (label or name); the normal class is the background, not a class
            these sources make.
        seed : int, optional
        return_masks : bool
            Also return the pasted lesions' masks.
        return_provenance : bool
            Also return one :class:`~synthaug.data.Provenance` per sample: derived, from its
            normal training image (role ``"image"``) and the training images its pasted
            lesions were cut from (role ``"lesion"``; a generated lesion has none). A source
            loaded from a file names no items: the file does not keep its training rows.

        Returns
        -------
        images : torch.Tensor
            ``(n, C, H, W)`` float32 in [0, 1].
        labels : torch.Tensor
            ``(n,)`` int64, all ``y``.
        masks : torch.Tensor
            Only with ``return_masks=True``: ``(n, 1, H, W)`` bool, the pasted lesions.
        provenance : list of Provenance
            Only with ``return_provenance=True``.
        """
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(dataset) first")
        # The images, their masks and the full-size maps of each pasting round.
        n = check_sample_count(n, self.sample_shape_, copies=6)
        label = _resolve_class(y, self.class_names_, "y")
        if label == self.normal_label_:
            raise InvalidParameterError(
                f"{type(self).__name__} makes lesion images; {self.class_names_[label]!r} is the "
                f"normal class it pastes into (use real normal images, or 'classical')"
            )
        if label not in self.lesions_per_image_:
            raise UnknownClassError(f"class {y!r} had no images to take lesions from")
        gen = torch_generator(seed)
        per_image = torch.tensor(self.lesions_per_image_[label], dtype=torch.int64)
        per_image = per_image[per_image > 0]
        count = per_image[torch.randint(len(per_image), (n,), generator=gen)]
        bg = torch.randint(len(self.backgrounds_), (n,), generator=gen)
        images = self.backgrounds_[bg].clone()
        occupied = torch.zeros(n, 1, *images.shape[-2:])
        out_masks = torch.zeros(n, 1, *images.shape[-2:], dtype=torch.bool)
        donors = []
        for k in range(int(count.max())):
            active = count > k
            patches, rings, donor = self._draw_patches(label, n, gen)
            donors.append(torch.where(active, donor, -1))
            delta, core = self._paste(images.shape, patches, rings, bg, occupied, gen)
            delta, core = delta * active.view(-1, 1, 1, 1), core * active.view(-1, 1, 1, 1)
            images = images + delta
            out_masks |= core > 0.5
            occupied = torch.maximum(occupied, (core > 0).float())
        images = images.clamp_(0.0, 1.0)
        labels = torch.full((n,), label, dtype=torch.int64)
        out = (images, labels, out_masks) if return_masks else (images, labels)
        if return_provenance:
            out += (self._provenance(self._rows("background_items_", bg), torch.stack(donors, 1)),)
        return out

    def _provenance(self, backgrounds: torch.Tensor, donors: torch.Tensor) -> list[Provenance]:
        """Per sample: its background's training item, then its real lesions' donors (once each)."""
        records = []
        for background, row in zip(backgrounds.tolist(), donors.tolist(), strict=True):
            lesions = dict.fromkeys(d for d in row if d >= 0)
            image = (SourceItem(background, "image"),) if background >= 0 else ()
            items = (*image, *(SourceItem(d, "lesion") for d in lesions))
            records.append(Provenance("derived", self._how, items, _PASTE_OPERATIONS))
        return records

    def _paste(
        self,
        shape: torch.Size,
        patches: torch.Tensor,
        rings: torch.Tensor,
        bg: torch.Tensor,
        occupied: torch.Tensor,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Jitter each patch, place it where its background's tissue matches its own, and
        return full-size ``(delta, core)`` maps."""
        n, c, h, w = shape
        tissue = self.tissue_[bg]
        allowed = self.inside_[bg] & ~(_dilate(occupied, math.ceil(self.lesion_radius_))[:, 0] > 0)
        match = torch.exp(-0.5 * ((tissue - rings.view(-1, 1, 1)) / self.tissue_tolerance) ** 2)
        # The whole footprint of a typical lesion must sit in matching tissue, not just its
        # centre: the worst match within that radius.
        r = math.ceil(self.typical_radius_)
        match = -F.max_pool2d(-match.unsqueeze(1), 2 * r + 1, stride=1, padding=r)[:, 0]
        weights = (match + 1e-12) * allowed
        # Where no free pixel is left inside the body, the lesion may overlap an earlier one.
        none_left = weights.flatten(1).sum(1) == 0
        weights[none_left] = self.inside_[bg[none_left]].float() + 1e-12
        centre = torch.multinomial(weights.flatten(1), 1, generator=gen).flatten()
        cy, cx = (centre // w).float(), (centre % w).float()
        # Output pixel -> patch coordinates (both normalised, align_corners=False): rotate,
        # flip and scale about the chosen centre.
        angle = 2 * math.pi * torch.rand(n, generator=gen) if self.rotate else torch.zeros(n)
        flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
        lo, hi = self.scale
        scale = lo + (hi - lo) * torch.rand(n, generator=gen)
        a, b = self.intensity
        gain = a + (b - a) * torch.rand(n, generator=gen)
        p = self.patch_size_
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        sx, sy = w / p, h / p
        m = torch.stack(
            [
                torch.stack([cos * flip * sx, -sin * sy], 1),
                torch.stack([sin * flip * sx, cos * sy], 1),
            ],
            1,
        )
        u = torch.stack([(cx + 0.5) * 2 / w - 1, (cy + 0.5) * 2 / h - 1], 1)
        theta = torch.cat([m, -(m @ u.unsqueeze(-1))], 2)
        grid = F.affine_grid(theta, [n, c + 1, h, w], align_corners=False)
        placed = F.grid_sample(patches, grid, mode="bilinear", align_corners=False)
        return placed[:, :c] * gain.view(-1, 1, 1, 1), placed[:, c:]


def _blur121(x: torch.Tensor) -> torch.Tensor:
    """The separable [1, 2, 1] / 4 blur on ``(N, C, H, W)``, per channel."""
    k = torch.tensor([0.25, 0.5, 0.25], dtype=x.dtype)
    c = x.shape[1]
    x = F.conv2d(
        F.pad(x, (1, 1, 0, 0), mode="replicate"), k.view(1, 1, 1, 3).expand(c, 1, 1, 3), groups=c
    )
    return F.conv2d(
        F.pad(x, (0, 0, 1, 1), mode="replicate"), k.view(1, 1, 3, 1).expand(c, 1, 3, 1), groups=c
    )


def _check_masks(masks: Any, images: torch.Tensor) -> torch.Tensor:
    if not isinstance(masks, (torch.Tensor, np.ndarray)):
        raise InvalidDataError(f"masks must be a tensor or array, got {type(masks).__name__}")
    masks = torch.as_tensor(masks)
    if masks.ndim == 3:
        masks = masks.unsqueeze(1)
    want = (len(images), 1, *images.shape[-2:])
    if tuple(masks.shape) != want:
        raise ShapeMismatchError(
            f"masks must be (N, 1, H, W) = {want}, one per image, got {tuple(masks.shape)}"
        )
    if masks.dtype != torch.bool:
        if not torch.isin(masks.float(), torch.tensor([0.0, 1.0])).all():
            raise InvalidDataError("masks must be boolean or hold only 0 and 1")
        masks = masks > 0.5
    return masks


@register_source("copy-paste")
@FILE_TYPES.register("copy-paste")
class CopyPaste(_LesionSource):
    """Real lesions cut from lesion images and pasted into normal images (lesion-level
    copy-paste, in the spirit of Ghiasi et al., CVPR 2021, and of lesion mixing such as
    CarveMix, Zhang et al., MICCAI 2021).

    Each synthetic image is a real normal training image with 1 or more lesions of the
    class (as many as a lesion image of the class had), each a real lesion with classical
    jitter (rotation, flip, scale, intensity), placed where the normal image's local tissue
    level is close to the tissue around the source lesion (for chest CT: inside the lungs)
    and never outside the body.

    Attributes
    ----------
    training_masks_ : torch.Tensor
        ``(N, 1, H, W)`` bool lesion masks of the training items (empty for normal ones).
    patches_ : torch.Tensor
        The lesion patches: what each lesion adds to its surroundings (C channels) and its
        mask (one channel).
    patch_items_ : torch.Tensor
        The training item each patch was cut from (its row in the fitted dataset).
    background_items_ : torch.Tensor
        The training items (rows) of the normal images lesions are pasted into.
    localizer_ : LesionLocalizer
        When the masks were localised.

    Notes
    -----
    The fitted source holds real training images (the lesions and the normal backgrounds):
    ``stores_training_images`` is True, and its samples are real anatomy. Do not share them
    as private data.

    Examples
    --------
    >>> import torch
    >>> from synthaug.data import make_phantoms
    >>> data, true_masks = make_phantoms((30, 4), size=32, seed=0, return_masks=True)
    >>> source = CopyPaste().fit(data, masks=true_masks)
    >>> images, labels, masks = source.sample(3, y="lesion", seed=0, return_masks=True)
    >>> tuple(images.shape), bool(masks.flatten(1).any(1).all())
    ((3, 1, 32, 32), True)
    """


@FILE_TYPES.register("lesion-transplant")
class LesionTransplant(_LesionSource):
    """Generated lesions transplanted into normal images.

    A generator (any registered family; default a conditional GAN with DiffAugment) learns
    the lesion patches of :class:`CopyPaste` (what each lesion adds to its surroundings and
    its mask, as a two-part image; every patch in its 8 flips and right-angle rotations), so
    new lesions are not copies of the few real ones; each is then pasted like a copied one,
    into the tissue its class came from (the tissue level of a random real lesion of the
    class).

    Attributes
    ----------
    generator_ : fitted generator
    delta_scale_ : float
        The largest lesion contrast among the patches: generated contrasts are in [0, 1]
        times it.
    n_replaced_ : int
        Generated patches replaced by real ones in the last ``sample`` call.

    Examples
    --------
    >>> from synthaug.data import make_phantoms
    >>> from synthaug.generators import CVAE
    >>> data, true_masks = make_phantoms((30, 4), size=32, seed=0, return_masks=True)
    >>> source = LesionTransplant(generator=CVAE(epochs=2, verbose=False))
    >>> images, labels = source.fit(data, masks=true_masks).sample(2, y=1, seed=0)
    >>> tuple(images.shape)
    (2, 1, 32, 32)
    """

    generator = Param(
        None,
        none_or(
            Satisfies(
                lambda v: hasattr(v, "fit") and hasattr(v, "sample"),
                "a generator (with fit and sample)",
                "generator",
            )
        ),
        """Cloned and fitted on the patches with this source's seed and device. ``None``:
        ``CGAN(epochs=150, diffaugment=True)``.""",
    )
    _how = (
        "a real normal training image with generated lesions pasted in (a real lesion of "
        "another training image where a generated one came out blank)"
    )

    min_lesion_area = Param(
        3,
        int_range(1),
        """A generated patch whose mask has fewer pixels is replaced by a real one (counted in
        ``n_replaced_``).""",
    )

    def fit(self, dataset: ImageDataset, masks: torch.Tensor | None = None) -> LesionTransplant:
        super().fit(dataset, masks)
        c = self.sample_shape_[0]
        self.delta_scale_ = float(self.patches_[:, :c].max().clamp(min=1e-6))
        patches = torch.cat([self.patches_[:, :c] / self.delta_scale_, self.patches_[:, c:]], 1)
        # The 8 symmetries of the square: a lesion has no preferred orientation.
        views = []
        for k in range(4):
            turned = torch.rot90(patches, k, dims=(2, 3))
            views += [turned, torch.flip(turned, dims=(3,))]
        lesion_classes = sorted(self.lesions_per_image_)
        self.patch_classes_ = [self.class_names_[c] for c in lesion_classes]
        index = {label: i for i, label in enumerate(lesion_classes)}
        labels = torch.tensor([index[int(v)] for v in self.patch_labels_]).repeat(8)
        train = ImageDataset(torch.cat(views).clamp(0, 1), labels, self.patch_classes_)
        model = clone(self.generator) if self.generator is not None else CGAN(**_TRANSPLANT_GAN)
        missing = {"seed", "device"} - set(model.get_params())
        if missing:
            raise InvalidParameterError(
                f"the generator needs seed and device parameters, {type(model).__name__} lacks "
                f"{sorted(missing)}"
            )
        model.set_params(seed=check_seed(self.seed), device=self.device)
        with fitting_one_class():  # one lesion class is the common case
            self.generator_ = model.fit(train)
        self.n_replaced_ = 0
        return self

    def _fitted_state(self) -> dict[str, Any]:
        return {
            **super()._fitted_state(),
            "delta_scale_": self.delta_scale_,
            "patch_classes_": self.patch_classes_,
        }

    def _fitted_generator(self) -> BaseGenerator | None:
        return self.generator_

    def _restore(
        self,
        state: dict[str, Any],
        tensors: dict[str, torch.Tensor],
        device: torch.device,
        generator: BaseGenerator | None = None,
    ) -> None:
        if generator is None:
            raise ValueError("a LesionTransplant samples from its generator; the file has none")
        super()._restore(state, tensors, device)
        self.delta_scale_ = float(state["delta_scale_"])
        self.patch_classes_ = [str(c) for c in state["patch_classes_"]]
        expected = [self.class_names_[c] for c in sorted(self.lesions_per_image_)]
        size = self.patch_size_
        patch_shape = (self.sample_shape_[0] + 1, size, size)
        if not (
            0 < self.delta_scale_ < math.inf
            and self.patch_classes_ == expected
            and tuple(generator.sample_shape_) == patch_shape
            and generator.n_classes_ == len(expected)
        ):
            raise ValueError(
                f"its generator (classes {generator.class_names_}, sample shape "
                f"{tuple(generator.sample_shape_)}) does not make its lesion patches (classes "
                f"{expected}, shape {patch_shape}), or delta_scale_={self.delta_scale_}"
            )
        self.generator_ = generator
        self.n_replaced_ = 0

    def _draw_patches(
        self, label: int, n: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.sample_shape_[0]
        real, rings, donors = super()._draw_patches(label, n, gen)
        seed = int(torch.randint(2**62, (1,), generator=gen))
        y = sorted(self.lesions_per_image_).index(label)
        made, _ = self.generator_.sample(n, y=y, seed=seed)
        made = made.float().cpu()
        core = (made[:, c:] > 0.5).float()
        delta = made[:, :c] * self.delta_scale_ * _soft(core)
        patches = torch.cat([delta, core], 1)
        # A generated patch with (almost) no lesion would label a normal image as a lesion.
        blank = core.flatten(1).sum(1) < self.min_lesion_area
        patches[blank] = real[blank]
        self.n_replaced_ = int(blank.sum())
        # Only a replaced patch is a real lesion; the rest are generated (the real lesion drawn
        # gave them no pixels, only the tissue level they are placed by).
        return patches, rings, torch.where(blank, donors, -1)


# Flat keywords from configs and the command line: generator parameters go to the generator.
register_source("lesion-transplant", Preset(LesionTransplant, "generator", CGAN, _TRANSPLANT_GAN))
register_source(
    "lesion-transplant-cvae",
    Preset(LesionTransplant, "generator", CVAE, {"epochs": 300, "verbose": False}),
)
