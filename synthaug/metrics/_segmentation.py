"""Lesion segmentation: a small MONAI U-Net segmenter and the scores of its masks.

The segmenter is what the harness's ``segmentation`` task trains on real slices with their
masks (plus a lesion source's synthetic slices with theirs); the scores are those the field
reports for lesion segmentation (Dice and HD95 per image, lesion-wise sensitivity at a fixed
number of false positives per image, FROC-style) and the false-positive pixel rate on normal
slices. Networks, loss, Dice, HD95 and the image+mask transforms are MONAI's (the ``monai``
extra), imported when used, so the core needs no MONAI.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from synthaug._params import (
    Estimator,
    Param,
    device_like,
    int_range,
    int_tuple,
    one_of,
    real_range,
    seed_like,
)
from synthaug._utils import check_seed, import_optional, resolve_device
from synthaug.errors import InvalidDataError, NotFittedError, ShapeMismatchError
from synthaug.nn import (
    Indices,
    Trainer,
    TrainingSettings,
    batch_indices,
    batched,
    optimizer_step,
    seeded,
)

#: Probability above which a pixel is predicted lesion.
THRESHOLD = 0.5
# 8-connectivity: lesions touching at a corner are one component.
_CONNECTIVITY = np.ones((3, 3), dtype=bool)

PairTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def classical_pair_transform(seed: int) -> PairTransform:
    """Classical augmentation of one image and its mask together (MONAI dictionary transforms).

    A left-right flip (probability 0.5), a small affine (probability 0.8: rotation up to 10
    degrees, scaling by up to 10%, shifts of up to 2 pixels; bilinear for the image, nearest
    for the mask, zeros outside) and intensity jitter of the image only (scaling by up to 10%
    and a shift of up to 0.05, each with probability 0.8). Image and mask go through one
    transform call, so they get the same spatial draw.

    Parameters
    ----------
    seed : int
        Seeds the transforms' own random state (nothing global).

    Returns
    -------
    callable
        ``transform(image, mask) -> (image, mask)`` on ``(C, H, W)`` float image and
        ``(1, H, W)`` bool mask tensors.

    Examples
    --------
    >>> import torch
    >>> t = classical_pair_transform(seed=0)
    >>> image, mask = t(torch.rand(1, 16, 16), torch.zeros(1, 16, 16, dtype=torch.bool))
    >>> tuple(image.shape), mask.dtype
    ((1, 16, 16), torch.bool)
    """
    tr = import_optional("monai.transforms", "monai")
    keys = ("image", "mask")
    compose = tr.Compose(
        [
            tr.RandFlipd(keys=keys, prob=0.5, spatial_axis=1),
            tr.RandAffined(
                keys=keys,
                prob=0.8,
                rotate_range=math.radians(10),
                scale_range=(0.1, 0.1),
                translate_range=(2, 2),
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            tr.RandScaleIntensityd(keys="image", factors=0.1, prob=0.8),
            tr.RandShiftIntensityd(keys="image", offsets=0.05, prob=0.8),
        ]
    )
    compose.set_random_state(seed=seed % 2**32)

    def transform(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = compose({"image": image.float(), "mask": mask.float()})
        # MONAI returns MetaTensors; the training step wants plain tensors.
        return (
            torch.as_tensor(out["image"]).as_subclass(torch.Tensor).float(),
            torch.as_tensor(out["mask"]).as_subclass(torch.Tensor) > 0.5,
        )

    return transform


def augment_pairs(
    images: torch.Tensor, masks: torch.Tensor, transform: PairTransform
) -> tuple[torch.Tensor, torch.Tensor]:
    """``transform`` applied to each ``(image, mask)`` pair of a batch; ``(N, C, H, W)`` and
    ``(N, 1, H, W)`` in, the same shapes out (each item draws its own transform)."""
    pairs = [transform(i, m) for i, m in zip(images.cpu(), masks.cpu(), strict=True)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def _check_pairs(images: Any, masks: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ShapeMismatchError(
            f"images must be an (N, C, H, W) tensor, got {getattr(images, 'shape', type(images))}"
        )
    masks = torch.as_tensor(masks)
    if masks.shape != (len(images), 1, *images.shape[-2:]):
        raise ShapeMismatchError(
            f"masks must be (N, 1, H, W) = {(len(images), 1, *images.shape[-2:])}, one per "
            f"image, got {tuple(masks.shape)}"
        )
    if len(images) < 2:
        raise InvalidDataError(f"a segmenter needs at least 2 training images, got {len(images)}")
    if not torch.isfinite(images).all():
        raise InvalidDataError("images contain NaN or infinite values; clean them first")
    return images.float(), masks.bool()


class UNetSegmenter(Estimator):
    """A small 2D U-Net (MONAI's ``UNet``) trained with Dice + cross-entropy (``DiceCELoss``).

    Two output classes (background, lesion), softmax; Adam for a fixed number of optimiser
    steps through the shared :class:`~synthaug.nn.Trainer`, so methods that add slices get no
    extra optimisation. Deterministic on the CPU per seed.

    Attributes
    ----------
    net_ : torch.nn.Module
        The trained network (eval mode).
    history_ : list of dict
        The trainer's records (``steps``, ``loss``).

    Examples
    --------
    >>> from synthaug.data import make_phantoms
    >>> data, masks = make_phantoms((4, 4), size=16, seed=0, return_masks=True)
    >>> seg = UNetSegmenter(channels=(4, 8), steps=2, batch_size=4).fit(data.images, masks)
    >>> seg.predict_proba(data.images[:2]).shape
    torch.Size([2, 16, 16])
    """

    channels = Param(
        (8, 16, 32, 64),
        int_tuple(1),
        """Feature channels per level (each level after the first halves the resolution):
        4 levels of 8 to 64 channels take about 0.06 s per step of 16 slices of 64x64 on one
        CPU thread.""",
    )
    num_res_units = Param(1, int_range(0), "Residual units per level of MONAI's UNet.")
    steps = Param(500, int_range(1), "Optimiser steps (the budget, equal for every method).")
    batch_size = Param(16, int_range(2), "Slices per mini-batch.")
    lr = Param(1e-3, real_range(0, None, low_open=True), "Adam learning rate.")
    sampler = Param(
        "shuffle",
        one_of("shuffle", "balanced"),
        """Reshuffled passes over the slices, or lesion-balanced batches: each slot draws a
        lesion slice or a normal one with equal chance (half of every batch lesion slices on
        average), then a slice of that kind uniformly.""",
    )
    augment = Param(
        "none",
        one_of("none", "classical"),
        """Online augmentation of every training slice with its mask:
        :func:`classical_pair_transform` (flip, small affine, intensity jitter).""",
    )
    seed = Param(0, seed_like, "Seeds the initial weights, the batches and the augmentation.")
    device = Param("auto", device_like, 'Where the network trains; ``"auto"``: CUDA if any.')

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "net_")

    def fit(self, images: torch.Tensor, masks: torch.Tensor) -> UNetSegmenter:
        """Train on ``(N, C, H, W)`` images in [0, 1] and their ``(N, 1, H, W)`` lesion masks
        (all False on a normal slice); returns ``self``."""
        self.check_params()
        images, masks = _check_pairs(images, masks)
        side = min(images.shape[-2:])
        levels = len(self.channels)
        if side % 2 ** (levels - 1):
            raise ShapeMismatchError(
                f"UNetSegmenter with {levels} levels halves the slices {levels - 1} times: their "
                f"side ({side}) must be divisible by {2 ** (levels - 1)}; use fewer channels"
            )
        nets = import_optional("monai.networks.nets", "monai")
        losses = import_optional("monai.losses", "monai")
        seed = check_seed(self.seed)
        self.device_ = resolve_device(self.device)
        with seeded(seed):
            net = nets.UNet(
                spatial_dims=2,
                in_channels=images.shape[1],
                out_channels=2,
                channels=tuple(self.channels),
                strides=(2,) * (levels - 1),
                num_res_units=self.num_res_units,
            ).to(self.device_)
        criterion = losses.DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
        has_lesion = masks.flatten(1).any(1).long()
        plan = Indices(
            batch_indices(
                has_lesion,
                self.steps,
                self.batch_size,
                self.sampler,
                torch.Generator().manual_seed(seed),
            ).to(self.device_)
        )
        settings = TrainingSettings(
            batch_size=self.batch_size, lr=self.lr, amp=False, verbose=False, seed=seed
        )
        trainer = Trainer(
            settings, device=self.device_, desc="UNetSegmenter", steps=self.steps, batches=plan
        )
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        transform = classical_pair_transform(seed + 1) if self.augment == "classical" else None
        x_all, m_all = images.to(self.device_), masks.to(self.device_)

        def step(rows: torch.Tensor, _: torch.Tensor) -> dict[str, torch.Tensor]:
            xb, mb = x_all[rows], m_all[rows]
            if transform is not None:
                xb, mb = augment_pairs(xb, mb, transform)
                xb, mb = xb.to(self.device_), mb.to(self.device_)
            with trainer.autocast():
                loss = criterion(net(xb), mb.long())
            optimizer_step(opt, loss, scaler=trainer.scaler)
            return {"loss": loss}

        net.train()
        history: list[dict[str, float]] = []
        rows = torch.arange(len(images), device=self.device_)
        trainer.run(
            step,
            rows,
            has_lesion.to(self.device_),
            # The batches are drawn above; the trainer's generator draws nothing here.
            torch.Generator(device=self.device_).manual_seed(seed),
            history,
            modules=net,
            optimizers={"net": opt},
        )
        net.eval()
        self.net_, self.history_ = net, history
        return self

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """Lesion probability per pixel, ``(N, H, W)`` on the CPU."""
        if not self.is_fitted:
            raise NotFittedError("UNetSegmenter is not fitted; call fit(images, masks) first")
        return batched(
            lambda x: torch.softmax(self.net_(x.float()), dim=1)[:, 1].cpu(),
            images,
            network=self.net_,
            device=self.device_,
        )


# -- scores ---------------------------------------------------------------------------------
def _as_bool(masks: Any) -> np.ndarray:
    """``(N, H, W)`` bool from ``(N, H, W)`` or ``(N, 1, H, W)`` masks."""
    a = np.asarray(masks)
    if a.ndim == 4:
        a = a[:, 0]
    return a.astype(bool)


def dice_per_image(pred: Any, true: Any) -> np.ndarray:
    """Dice of each predicted mask with its true mask (MONAI's ``compute_dice``).

    ``2 |P & T| / (|P| + |T|)``; 0 for an empty prediction of a lesion; 1 when both are empty.

    Parameters
    ----------
    pred, true : array-like
        ``(N, H, W)`` or ``(N, 1, H, W)`` binary masks.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((1, 4, 4), bool); t[0, :2, :2] = True
    >>> p = np.zeros((1, 4, 4), bool); p[0, :2, :1] = True
    >>> round(float(dice_per_image(p, t)[0]), 3)
    0.667
    """
    metrics = import_optional("monai.metrics", "monai")
    p = torch.from_numpy(_as_bool(pred)).float().unsqueeze(1)
    t = torch.from_numpy(_as_bool(true)).float().unsqueeze(1)
    return metrics.compute_dice(p, t, include_background=True, ignore_empty=False)[:, 0].numpy()


def hd95_cap(shape: tuple[int, int]) -> float:
    """The HD95 given to a lesion image whose prediction is empty: the image diagonal in
    pixels, the largest distance two pixels of the image can have."""
    return float(math.hypot(*shape))


def hd95_per_image(pred: Any, true: Any) -> np.ndarray:
    """95th-percentile Hausdorff distance, in pixels, of each predicted mask to its true one
    (MONAI's ``compute_hausdorff_distance``, ``percentile=95``; Huttenlocher et al. 1993).

    An empty prediction has no boundary to measure: it scores :func:`hd95_cap` (the image
    diagonal). Meant for lesion images (a non-empty true mask).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((2, 8, 8), bool); t[:, 2:4, 2:4] = True
    >>> p = t.copy(); p[1] = False
    >>> [round(float(v), 2) for v in hd95_per_image(p, t)]
    [0.0, 11.31]
    """
    metrics = import_optional("monai.metrics", "monai")
    p_np, t_np = _as_bool(pred), _as_bool(true)
    p = torch.from_numpy(p_np).float().unsqueeze(1)
    t = torch.from_numpy(t_np).float().unsqueeze(1)
    with warnings.catch_warnings():
        # MONAI warns of every empty prediction (and of its own deprecated argument); an
        # empty prediction is scored by the cap below.
        warnings.simplefilter("ignore")
        d = metrics.compute_hausdorff_distance(p, t, include_background=True, percentile=95)
    d = d[:, 0].double().numpy()
    cap = hd95_cap(p_np.shape[-2:])
    empty = ~p_np.reshape(len(p_np), -1).any(1)
    return np.where(empty | ~np.isfinite(d), cap, np.minimum(d, cap))


def lesion_sensitivity(
    proba: Any, true: Any, fp_per_image: float, threshold: float = THRESHOLD
) -> float:
    """Share of true lesions found at ``fp_per_image`` false-positive components per image
    (one point of the FROC curve, as lesion-detection challenges report it).

    Candidates are the connected components (8-connectivity, :func:`scipy.ndimage.label`) of
    ``proba > threshold``, each scored by its highest probability. A candidate that overlaps
    a true lesion (a component of the true mask) finds it; one that overlaps none is a false
    positive. Candidates are kept from the highest score down while the false positives,
    over every image, stay at most ``floor(fp_per_image * n_images)`` (a tie at the cut is
    dropped whole); the score is the share of true lesions a kept candidate finds.

    Parameters
    ----------
    proba : array-like
        ``(N, H, W)`` lesion probabilities (normal images included: their components count
        as false positives).
    true : array-like
        ``(N, H, W)`` or ``(N, 1, H, W)`` true masks.
    fp_per_image : float
        False-positive components allowed per image, on average.
    threshold : float
        Probability that makes a pixel part of a candidate.

    Returns
    -------
    float
        NaN when the true masks hold no lesion.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((1, 8, 8), bool); t[0, 1:3, 1:3] = True
    >>> p = np.zeros((1, 8, 8)); p[0, 1:3, 1:3] = 0.7; p[0, 6, 6] = 0.9
    >>> lesion_sensitivity(p, t, fp_per_image=1), lesion_sensitivity(p, t, fp_per_image=0)
    (1.0, 0.0)
    """
    probs = np.asarray(proba, dtype=float)
    truth = _as_bool(true)
    if probs.shape != truth.shape:
        raise ShapeMismatchError(
            f"proba {probs.shape} and true masks {truth.shape} must have one shape"
        )
    fp_scores: list[float] = []
    lesion_best: list[float] = []  # per true lesion: the best score of a candidate on it
    for p, t in zip(probs, truth, strict=True):
        lesions, n_lesions = ndimage.label(t, structure=_CONNECTIVITY)
        best = np.full(n_lesions, -np.inf)
        candidates, n = ndimage.label(p > threshold, structure=_CONNECTIVITY)
        for j in range(1, n + 1):
            where = candidates == j
            score = float(p[where].max())
            hit = np.unique(lesions[where])
            hit = hit[hit > 0] - 1
            if len(hit) == 0:
                fp_scores.append(score)
            else:
                best[hit] = np.maximum(best[hit], score)
        lesion_best.extend(best.tolist())
    if not lesion_best:
        return math.nan
    allowed = math.floor(fp_per_image * len(probs))
    ranked = sorted(fp_scores, reverse=True)
    # Keep candidates scoring above the first false positive over the allowance.
    cut = ranked[allowed] if len(ranked) > allowed else -np.inf
    return float(np.mean(np.asarray(lesion_best) > cut))


def false_positive_pixel_rate(proba: Any, threshold: float = THRESHOLD) -> float:
    """Share of pixels predicted lesion (``proba > threshold``) on normal images, where every
    lesion pixel is a false positive."""
    return float((np.asarray(proba) > threshold).mean())


def segmentation_scores(
    proba: Any, true: Any, *, fp_per_image: float, threshold: float = THRESHOLD
) -> dict[str, float]:
    """Every score of the ``segmentation`` task on one test set.

    Parameters
    ----------
    proba : array-like
        ``(N, H, W)`` lesion probabilities of lesion and normal test images.
    true : array-like
        Their true masks, ``(N, H, W)`` or ``(N, 1, H, W)``; a normal image's is empty.
    fp_per_image : float
        The operating point of ``lesion_sensitivity``.

    Returns
    -------
    dict
        ``dice`` and ``hd95`` (means over the lesion images; HD95 in pixels, an empty
        prediction scored :func:`hd95_cap`), ``lesion_sensitivity``
        (:func:`lesion_sensitivity` over all images), ``fp_pixel_rate``
        (:func:`false_positive_pixel_rate` over the normal images), ``empty_predictions``
        (lesion images with nothing predicted) and ``hd95_cap``.
    """
    probs = np.asarray(proba, dtype=float)
    truth = _as_bool(true)
    pred = probs > threshold
    lesion = truth.reshape(len(truth), -1).any(1)
    nan = math.nan
    return {
        "dice": float(dice_per_image(pred[lesion], truth[lesion]).mean()) if lesion.any() else nan,
        "hd95": float(hd95_per_image(pred[lesion], truth[lesion]).mean()) if lesion.any() else nan,
        "lesion_sensitivity": lesion_sensitivity(probs, truth, fp_per_image, threshold),
        "fp_pixel_rate": false_positive_pixel_rate(probs[~lesion], threshold)
        if (~lesion).any()
        else nan,
        "empty_predictions": int((~pred[lesion].reshape(int(lesion.sum()), -1).any(1)).sum()),
        "hd95_cap": hd95_cap(truth.shape[-2:]),
    }
