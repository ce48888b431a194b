"""DRAEM: a detector trained on normal images with simulated anomalies pasted in.

Zavrtanik, Kristan and Skočaj, "DRAEM - A discriminatively trained reconstruction embedding
for surface anomaly detection", ICCV 2021: a reconstructive network learns to undo simulated
anomalies; a discriminative network segments them from the (input, reconstruction) pair. The
image score is the maximum of the smoothed segmentation map.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthaug._params import (
    Param,
    Satisfies,
    any_of,
    boolean,
    int_range,
    int_tuple,
    none_or,
    odd_int,
    one_of,
    pair_in,
    real_range,
)
from synthaug._utils import resolve_device
from synthaug.anomaly._base import NetworkDetector
from synthaug.anomaly._registry import register_detector
from synthaug.anomaly._simulate import (
    UNet,
    depth_for,
    require_images,
    simulate_anomalies,
)
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError, ShapeMismatchError
from synthaug.nn import (
    batched,
    optimizer_step,
    seeded,
)

_SOURCE_RULE = Satisfies(
    lambda v: v is None or callable(getattr(v, "sample", None)),
    "None or a fitted lesion source with sample(n, y=..., seed=..., return_masks=True)",
    "lesion source or None",
)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Binary focal loss (Lin et al., ICCV 2017), the segmentation loss of DRAEM."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_true = torch.exp(-bce)
    return ((1 - p_true).pow(gamma) * bce).mean()


@register_detector("draem")
class DRAEMDetector(NetworkDetector):
    """DRAEM anomaly detector (Zavrtanik et al., ICCV 2021), sized for small images on a CPU.

    During training every step takes a batch of normal images, pastes simulated anomalies
    into a share of them (smooth-noise masks filled with a noise texture or with another,
    shifted normal image, blended with a random opacity), trains the reconstructive network
    (an encoder-decoder without skips) to return the clean image (squared error) and the
    discriminative network (a U-Net on the input and its reconstruction) to segment the
    pasted region (focal loss). Scoring needs no simulation: the segmentation map of a test
    image, smoothed by a ``smoothing`` x ``smoothing`` mean, and its maximum.

    Too few steps leave the segmentation map nearly flat, and what ranking its maximum keeps
    is not of anomalies: it can rank normals above them. Measured on scikit-learn digits
    with the settings of ``benchmarks/digits_anomaly.toml``: 60 steps scored AUROC 0.36-0.78
    over normal classes 0, 4 and 8 (every image 0.30-0.35), 300 steps 0.75-0.92.

    Attributes
    ----------
    reconstructive_, discriminative_ : torch.nn.Module
        The trained networks (``reconstructive_`` is None when ``reconstruction=False``).
    history_ : list of dict
        Mean reconstruction and segmentation losses of every 50 steps (the last record may
        cover fewer), with the steps done (``"steps"``).

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.anomaly import DRAEMDetector
    >>> digits = load_digits()
    >>> zeros = digits.subset((digits.labels == 0).nonzero().flatten())
    >>> det = DRAEMDetector(steps=20, width=4, device="cpu").fit(zeros)
    >>> det.decision_function(digits).shape, tuple(det.anomaly_map(digits.images[:3]).shape)
    ((1797,), (3, 1, 8, 8))
    """

    steps = Param(
        600,
        int_range(1),
        """Optimiser steps (Adam), each on ``batch_size`` normal images drawn with replacement.""",
    )
    width = Param(
        8,
        int_range(1),
        "Channels of the first level of both networks (doubling per level).",
    )
    depth = Param(
        None,
        none_or(int_range(1, 6)),
        """Halvings in both networks; ``None`` halves until the short side is about 4 pixels
        (at most 3 times): 1 for 8x8 digits, 3 for 32x32 and larger.""",
    )
    reconstruction = Param(
        True,
        boolean,
        """Train and use the reconstructive network (DRAEM). ``False`` feeds the discriminative
        network the input alone: half the cost.""",
    )
    noise_cells = Param(
        (2, 4, 8),
        int_tuple(1),
        """Grid sizes of the smooth noise that shapes the anomaly masks, one drawn per image:
        a coarse grid makes large blobs, a fine one small ones.""",
        type="tuple of int",
    )
    anomaly_area = Param(
        (0.01, 0.15),
        pair_in(0.0, 1.0),
        "Range of the share of the image an anomaly mask covers.",
        type="(float, float)",
    )
    texture = Param(
        "all",
        one_of("all", "noise", "image", "offset"),
        """What fills a mask: a smooth noise texture about a random level, another normal image
        of the batch shifted at random, the image itself brighter or darker by 0.1 to 0.6, or
        (``"all"``) one of the three per image.""",
    )
    opacity = Param(
        (0.1, 0.9),
        pair_in(0.0, 1.0),
        """Range of the blend weight of the original image inside the mask (0: the texture
        replaces it; DRAEM draws it from [0.1, 1]).""",
        type="(float, float)",
    )
    anomaly_probability = Param(
        0.5,
        real_range(0, 1),
        """Share of a batch that gets a simulated anomaly (the rest teaches "nothing here").""",
    )
    edge_blur = Param(
        0,
        int_range(0),
        """Passes of a 3x3 mean that soften the edge of each anomaly mask before blending (0:
        DRAEM's hard edges). Soft edges keep the network from learning to find pasted edges
        only, where real anomalies fade in (lesions blurred by a scanner).""",
    )
    focal_gamma = Param(2.0, real_range(0), "Focusing parameter of the focal loss (2 in DRAEM).")
    smoothing = Param(
        3,
        odd_int(1),
        "Side of the mean filter on the map before its maximum is taken (odd).",
    )
    anomaly_source = Param(
        None,
        _SOURCE_RULE,
        """Outlier exposure: a *fitted* sample source with ``sample(n, y=..., seed=...,
        return_masks=True)``, such as :class:`~synthaug.augment.CopyPaste` fitted on a few
        lesion images; ``n_exposure`` of its images (class ``anomaly_class``) join the
        simulated anomalies, a share ``exposure_share`` of each batch. It is used as given:
        ``sklearn.base.clone`` returns an unfitted source, so set it after cloning.""",
        type="lesion source or None",
    )
    anomaly_class = Param(
        None,
        none_or(any_of(int_range(0), Satisfies(lambda v: isinstance(v, str), "a class name"))),
        "The source's lesion class to draw (default: its first lesion class).",
        type="int, str or None",
    )
    n_exposure = Param(
        200,
        int_range(1),
        "Images drawn from ``anomaly_source`` once, before training.",
    )
    exposure_share = Param(
        0.25,
        real_range(0, 1),
        "Share of each batch replaced by exposure images.",
    )

    _min_train_samples = 2

    # -- training ---------------------------------------------------------------------------
    def _fit(self, images: torch.Tensor, seed: int) -> None:
        require_images(images, type(self).__name__)
        self.device_ = resolve_device(self.device)
        n, c, h, w = images.shape
        self.depth_ = depth_for(h, w, self.depth)
        with seeded(seed):
            self.reconstructive_ = (
                UNet(c, c, self.width, self.depth_, skips=False).to(self.device_)
                if self.reconstruction
                else None
            )
            seg_in = 2 * c if self.reconstruction else c
            self.discriminative_ = UNet(seg_in, 1, self.width, self.depth_, skips=True).to(
                self.device_
            )
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        exposure = self._exposure(images, seed)
        networks = nn.ModuleDict({"discriminative": self.discriminative_})
        if self.reconstructive_ is not None:
            networks["reconstructive"] = self.reconstructive_
        params = list(self.discriminative_.parameters())
        if self.reconstructive_ is not None:
            params += list(self.reconstructive_.parameters())
        opt = torch.optim.Adam(params, lr=self.lr)
        n_expose = int(round(self.exposure_share * self.batch_size)) if exposure else 0
        trainer = self._step_trainer(self.steps)

        def step(clean: torch.Tensor, _: torch.Tensor) -> dict[str, torch.Tensor]:
            x, mask = simulate_anomalies(
                clean,
                gen,
                cells=tuple(self.noise_cells),
                area=tuple(self.anomaly_area),
                texture=self.texture,
                opacity=tuple(self.opacity),
                probability=self.anomaly_probability,
                edge_blur=self.edge_blur,
            )
            keep = torch.ones_like(mask)  # where the reconstruction target is known
            if n_expose:
                ex_images, ex_masks = exposure
                pick = torch.randint(
                    len(ex_images), (n_expose,), generator=gen, device=self.device_
                )
                x = torch.cat([ex_images[pick], x[n_expose:]])
                mask = torch.cat([ex_masks[pick], mask[n_expose:]])
                # The clean image under a real lesion is unknown: score the rest only.
                keep = torch.cat([1 - ex_masks[pick], keep[n_expose:]])
                clean = torch.cat([ex_images[pick], clean[n_expose:]])
            with trainer.autocast():
                logits, recon = self._forward(x)
                seg_loss = focal_loss(logits, mask, self.focal_gamma)
                loss = seg_loss
                rec_loss = torch.zeros((), device=self.device_)
                if recon is not None:
                    rec_loss = ((recon - clean).pow(2) * keep).mean()
                    loss = loss + rec_loss
            optimizer_step(opt, loss, scaler=trainer.scaler)
            return {"reconstruction": rec_loss.detach(), "segmentation": seg_loss.detach()}

        self.history_: list[dict[str, float]] = []
        self._train_mode(True)
        x_all = images.to(self.device_)
        unlabelled = torch.zeros(n, dtype=torch.int64, device=self.device_)
        trainer.run(
            step, x_all, unlabelled, gen, self.history_, modules=networks, optimizers={"adam": opt}
        )
        self._train_mode(False)

    def _exposure(
        self, images: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        source = self.anomaly_source
        if source is None:
            return None
        if getattr(source, "is_fitted", True) is False:
            raise InvalidParameterError(
                f"anomaly_source {type(source).__name__} is not fitted; fit it on images with "
                f"lesions first (it is used as given, and sklearn.base.clone unfits it)"
            )
        label = self.anomaly_class
        if label is None:
            names = list(getattr(source, "class_names_", []))
            normal = getattr(source, "normal_label_", None)
            lesion = [i for i in range(len(names)) if i != normal]
            if not lesion:
                raise InvalidParameterError("give anomaly_class: the source names no lesion class")
            label = lesion[0]
        ex_images, _, ex_masks = source.sample(
            self.n_exposure, y=label, seed=seed, return_masks=True
        )
        if tuple(ex_images.shape[1:]) != tuple(images.shape[1:]):
            raise ShapeMismatchError(
                f"anomaly_source makes images of shape {tuple(ex_images.shape[1:])}, but the "
                f"training images have shape {tuple(images.shape[1:])}"
            )
        return ex_images.float().to(self.device_), ex_masks.float().to(self.device_)

    def _train_mode(self, on: bool) -> None:
        for net in (self.reconstructive_, self.discriminative_):
            if net is not None:
                net.train(on)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.reconstructive_ is None:
            return self.discriminative_(x), None
        recon = torch.sigmoid(self.reconstructive_(x))
        return self.discriminative_(torch.cat([x, recon], 1)), recon

    # -- scoring ----------------------------------------------------------------------------
    def _maps(self, images: torch.Tensor) -> torch.Tensor:
        networks = nn.ModuleList([n for n in (self.reconstructive_, self.discriminative_) if n])
        with torch.no_grad():
            return batched(
                lambda x: torch.sigmoid(self._forward(x)[0]).cpu(),
                images,
                network=networks,
                device=self.device_,
            )

    def _smoothed(self, maps: torch.Tensor) -> torch.Tensor:
        if self.smoothing == 1:
            return maps
        return F.avg_pool2d(
            maps, self.smoothing, stride=1, padding=self.smoothing // 2, count_include_pad=False
        )

    def _score(self, images: torch.Tensor) -> np.ndarray:
        return self._smoothed(self._maps(images)).flatten(1).amax(1).double().numpy()

    def anomaly_map(self, images: ImageDataset | torch.Tensor) -> torch.Tensor:
        """The segmentation map: per pixel, the probability that it is anomalous.

        Parameters
        ----------
        images : ImageDataset or torch.Tensor
            ``(N, C, H, W)`` images shaped like the training images.

        Returns
        -------
        torch.Tensor
            ``(N, 1, H, W)`` float32 in [0, 1], smoothed as the image score is (its maximum
            is :meth:`decision_function`).
        """
        return self._smoothed(self._maps(self._map_images(images)))
