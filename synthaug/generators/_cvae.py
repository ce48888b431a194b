"""Conditional variational autoencoder."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from synthaug._params import boolean, device_like, int_range, none_or, real_range, seed_like
from synthaug._utils import torch_generator
from synthaug.data import ImageDataset
from synthaug.errors import (
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
    UnknownClassError,
)
from synthaug.generators._base import BaseGenerator
from synthaug.generators._networks import mlp
from synthaug.generators._registry import register_generator
from synthaug.generators._trainer import Trainer, optimizer_step


class _CVAENet(nn.Module):
    """Encoder q(z | x, y) and decoder p(x | z, y), both conditioned on a one-hot label."""

    def __init__(
        self, data_dim: int, n_classes: int, latent_dim: int, hidden: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.encoder = mlp(data_dim + n_classes, hidden, 2 * latent_dim)
        self.decoder = mlp(latent_dim + n_classes, tuple(reversed(hidden)), data_dim)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(torch.cat([x, F.one_hot(y, self.n_classes).to(x.dtype)], dim=1))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([z, F.one_hot(y, self.n_classes).to(z.dtype)], dim=1))

    def loss(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, beta: float
    ) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x, y)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        logits = self.decode_logits(z, y)
        # Bernoulli likelihood on [0, 1] intensities, summed over pixels, averaged over the batch.
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


@register_generator("cvae")
class CVAE(BaseGenerator):
    """Conditional variational autoencoder (Sohn, Lee & Yan, NeurIPS 2015).

    The encoder and decoder see the class label as a one-hot vector, so one model learns every
    class and samples any of them on request. Images are flattened; the decoder's sigmoid means
    are the samples (no pixel noise is added).

    Parameters
    ----------
    latent_dim : int
        Size of the latent code.
    hidden_dims : tuple of int
        Widths of the encoder's hidden layers (the decoder mirrors them).
    epochs : int
        Passes over the training set.
    batch_size : int
    lr : float
        Adam learning rate.
    beta : float
        Weight of the KL term (beta-VAE, Higgins et al. 2017); 1 is the ELBO.
    grad_clip : float or None
        Clip the gradient norm to this value.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:N]"``.
    seed : int
        Seeds weight initialisation, batch order and latent noise: same seed, same model on CPU.
    verbose : bool
        Show a progress bar.

    Attributes
    ----------
    classes_ : list of int
        Labels seen in training.
    history_ : list of dict
        Per-epoch mean ``loss``, ``recon`` and ``kl``.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.generators import CVAE
    >>> model = CVAE(epochs=2, verbose=False).fit(load_digits())
    >>> images, labels = model.sample(10, y=3, seed=0)
    >>> tuple(images.shape), labels.tolist()[:3]
    ((10, 1, 8, 8), [3, 3, 3])
    """

    _parameter_constraints = {
        "latent_dim": int_range(1),
        "epochs": int_range(1),
        "batch_size": int_range(2),
        "lr": real_range(0, None, low_open=True),
        "beta": real_range(0),
        "grad_clip": none_or(real_range(0, None, low_open=True)),
        "device": device_like,
        "seed": seed_like,
        "verbose": boolean,
    }

    def __init__(
        self,
        *,
        latent_dim: int = 16,
        hidden_dims: tuple[int, ...] = (512, 256),
        epochs: int = 100,
        batch_size: int = 64,
        lr: float = 1e-3,
        beta: float = 1.0,
        grad_clip: float | None = None,
        device: str = "auto",
        seed: int = 0,
        verbose: bool = True,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.beta = beta
        self.grad_clip = grad_clip
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _build_modules(self) -> nn.ModuleDict:
        data_dim = math.prod(self.sample_shape_)
        net = _CVAENet(data_dim, self.n_classes_, self.latent_dim, tuple(self.hidden_dims))
        return nn.ModuleDict({"net": net})

    def _fit(self, dataset: ImageDataset, seed: int) -> None:
        self.modules_ = self._build_modules().to(self.device_)
        net = self.modules_["net"]
        optimizer = torch.optim.Adam(net.parameters(), lr=self.lr)
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        x = dataset.images.reshape(len(dataset), -1).to(self.device_)
        y = dataset.labels.to(self.device_)

        def step(xb: torch.Tensor, yb: torch.Tensor) -> dict[str, torch.Tensor]:
            losses = net.loss(xb, yb, gen, self.beta)
            optimizer_step(optimizer, losses["loss"], net.parameters(), self.grad_clip)
            return losses

        net.train()
        Trainer(
            epochs=self.epochs, batch_size=self.batch_size, verbose=self.verbose, desc="CVAE"
        ).run(step, x, y, gen, self.history_)
        net.eval()

    def _sample(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn((len(labels), self.latent_dim), generator=generator, device=self.device_)
        return torch.sigmoid(self.modules_["net"].decode_logits(z, labels))

    # -- scoring (used by the anomaly detectors) ---------------------------------------------
    def _check_scoring_input(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_fitted()
        images = torch.as_tensor(images)
        labels = torch.as_tensor(labels)
        if (
            tuple(images.shape[1:]) != self.sample_shape_
            or images.dim() != len(self.sample_shape_) + 1
        ):
            raise ShapeMismatchError(
                f"images must be shaped (N, {', '.join(map(str, self.sample_shape_))}) like the "
                f"training samples, got {tuple(images.shape)}"
            )
        if labels.dim() != 1 or len(labels) != len(images):
            raise ShapeMismatchError(
                f"labels must be 1-D with one label per image ({len(images)}), got shape "
                f"{tuple(labels.shape)}"
            )
        if not images.is_floating_point():
            raise InvalidDataError(f"images must be floating point in [0, 1], got {images.dtype}")
        if images.numel() and not torch.isfinite(images).all():
            raise InvalidDataError("images contain NaN or infinite values")
        unseen = sorted(set(labels.tolist()) - set(self.classes_))
        if unseen:
            raise UnknownClassError(
                f"labels {unseen} were not seen in training (classes with samples: {self.classes_})"
            )
        return images.to(torch.float32), labels.to(torch.int64)

    def reconstruct(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Decoder mean of the encoder mean: a deterministic reconstruction of ``images``.

        Parameters
        ----------
        images : torch.Tensor
            ``(N, *sample_shape_)`` values in [0, 1], on any device.
        labels : torch.Tensor
            ``(N,)`` labels seen in training.

        Returns
        -------
        torch.Tensor
            Float32 reconstructions on the CPU, same shape as ``images``, values in [0, 1].
        """
        images, labels = self._check_scoring_input(images, labels)
        net = self.modules_["net"]
        out = []
        with _eval_mode(net), torch.no_grad():
            for start in range(0, len(images), _SCORE_CHUNK):
                x = images[start : start + _SCORE_CHUNK].to(self.device_)
                y = labels[start : start + _SCORE_CHUNK].to(self.device_)
                mu, _ = net.encode(x.reshape(len(x), -1), y)
                out.append(torch.sigmoid(net.decode_logits(mu, y)).reshape(x.shape).float().cpu())
        return torch.cat(out) if out else images.new_zeros(images.shape)

    def negative_elbo(
        self, images: torch.Tensor, labels: torch.Tensor, *, n_samples: int = 1, seed: int = 0
    ) -> torch.Tensor:
        """Per-sample negative evidence lower bound (Kingma & Welling, ICLR 2014).

        ``-ELBO(x | y) = E_q(z|x,y)[-log p(x | z, y)] + KL(q(z | x, y) || N(0, I))`` with the
        Bernoulli likelihood the model was trained with, the expectation estimated from
        ``n_samples`` latent draws. Higher means less likely under the model, so it is an
        anomaly score.

        Parameters
        ----------
        images : torch.Tensor
            ``(N, *sample_shape_)`` values in [0, 1].
        labels : torch.Tensor
            ``(N,)`` labels seen in training.
        n_samples : int
            Latent draws per image.
        seed : int
            Seeds the latent draws: same seed, same scores.

        Returns
        -------
        torch.Tensor
            Float32 ``(N,)`` on the CPU.
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise InvalidParameterError(f"n_samples must be a positive integer, got {n_samples!r}")
        images, labels = self._check_scoring_input(images, labels)
        gen = torch_generator(seed, self.device_)
        net = self.modules_["net"]
        out = []
        with _eval_mode(net), torch.no_grad():
            for start in range(0, len(images), _SCORE_CHUNK):
                x = images[start : start + _SCORE_CHUNK].to(self.device_)
                x = x.reshape(len(x), -1)
                y = labels[start : start + _SCORE_CHUNK].to(self.device_)
                mu, logvar = net.encode(x, y)
                kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
                recon = torch.zeros(len(x), device=x.device, dtype=mu.dtype)
                for _ in range(n_samples):
                    eps = torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype)
                    logits = net.decode_logits(mu + eps * torch.exp(0.5 * logvar), y)
                    recon += F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(
                        dim=1
                    )
                out.append((recon / n_samples + kl).float().cpu())
        return torch.cat(out) if out else torch.zeros(0)


# Scoring runs in chunks so that scoring a large test set never holds it all on the device.
_SCORE_CHUNK = 4096


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
