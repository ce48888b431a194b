"""Conditional variational autoencoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from synthaug._params import Param, int_range, int_tuple, none_or, real_range
from synthaug._utils import torch_generator
from synthaug.errors import InvalidParameterError
from synthaug.generators._registry import register_generator
from synthaug.generators._torch import TorchGenerator, TrainingContext
from synthaug.nn import (
    Architecture,
    ConvDecoder,
    MLPDecoder,
    Randomness,
    batched,
    choose_architecture,
    conv_encoder,
    draw_rows,
    eval_mode,
    mlp,
    randn,
)


class _CVAENet(nn.Module):
    """Encoder q(z | x, y) and decoder p(x | z, y), both conditioned on a one-hot label.

    The layout follows the data shape (:func:`choose_architecture`): MLPs for feature vectors
    and tiny images, DCGAN-style conv stacks for larger images, where the label joins the
    flattened conv features (encoder) and the latent code (decoder).
    """

    def __init__(
        self,
        arch: Architecture,
        n_classes: int,
        latent_dim: int,
        hidden: tuple[int, ...],
        width: int,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.n_classes = n_classes
        if arch.kind == "mlp":
            self.features = nn.Flatten()
            feat_dim = arch.data_dim
            self.head = mlp(feat_dim + n_classes, hidden, 2 * latent_dim)
            self.decoder = MLPDecoder(latent_dim + n_classes, tuple(reversed(hidden)), arch)
        else:
            self.features, feat_dim = conv_encoder(arch, width)
            self.head = nn.Linear(feat_dim + n_classes, 2 * latent_dim)
            self.decoder = ConvDecoder(latent_dim + n_classes, arch, width)

    def _one_hot(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return F.one_hot(y, self.n_classes).to(dtype)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x, y); ``x`` is shaped like the samples."""
        h = self.features(x)
        mu, logvar = self.head(torch.cat([h, self._one_hot(y, h.dtype)], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of p(x | z, y), shaped like the samples."""
        return self.decoder(torch.cat([z, self._one_hot(y, z.dtype)], dim=1), y)

    def per_sample_terms(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample reconstruction loss and KL divergence, one latent draw."""
        mu, logvar = self.encode(x, y)
        eps = draw_rows(
            len(mu),
            lambda n: torch.randn(
                (n, *mu.shape[1:]), generator=generator, device=mu.device, dtype=mu.dtype
            ),
        )
        logits = self.decode_logits(mu + eps * torch.exp(0.5 * logvar), y)
        # Bernoulli likelihood on [0, 1] intensities, summed over pixels.
        recon = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="none")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
        return recon.flatten(1).sum(1), kl.float()

    def per_sample_loss(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, beta: float
    ) -> torch.Tensor:
        """Negative ELBO per sample (with the KL term weighted by ``beta``), one latent draw."""
        recon, kl = self.per_sample_terms(x, y, generator)
        return recon + beta * kl

    def loss(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, beta: float
    ) -> dict[str, torch.Tensor]:
        recon, kl = self.per_sample_terms(x, y, generator)
        recon, kl = recon.sum() / len(x), kl.sum() / len(x)
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


@register_generator("cvae")
class CVAE(TorchGenerator):
    """Conditional variational autoencoder (Sohn, Lee & Yan, NeurIPS 2015).

    The encoder and decoder see the class label as a one-hot vector, so one model learns every
    class and samples any of them on request. The networks follow the data shape: MLPs for
    feature vectors ``(D,)`` and images under 16x16, DCGAN-style convolutional stacks for
    images from 16x16 to 128x128. The decoder's Bernoulli means are the samples (no pixel
    noise is added). The loss is the negative ELBO (Kingma & Welling, ICLR 2014) with a
    Bernoulli likelihood and an optional KL weight ``beta`` (Higgins et al., ICLR 2017).

    Attributes
    ----------
    classes_ : list of int
        Labels seen in training.
    architecture_ : str
        ``"mlp"`` or ``"conv"``, chosen from the sample shape.
    history_ : list of dict
        Per-epoch mean ``loss``, ``recon`` and ``kl`` (and ``val_loss`` with early stopping).
    privacy_spent_ : tuple of float
        ``(epsilon, delta)`` spent by training and the class count release, from Opacus'
        accountant; only when trained with ``dp`` (``class_counts_`` is then that release).

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.generators import CVAE
    >>> model = CVAE(epochs=2, verbose=False).fit(load_digits())
    >>> images, labels = model.sample(10, y=3, seed=0)
    >>> tuple(images.shape), labels.tolist()[:3]
    ((10, 1, 8, 8), [3, 3, 3])
    """

    latent_dim = Param(16, int_range(1), "Size of the latent code.")
    hidden_dims = Param(
        (512, 256),
        int_tuple(1),
        """Widths of the encoder's hidden layers (the decoder mirrors them); MLP layout only.""",
    )
    width = Param(
        16,
        int_range(1),
        """Channels of the first conv layer (doubling per halving, up to 8x); conv layout only.""",
    )
    beta = Param(1.0, real_range(0), "Weight of the KL term (beta-VAE); 1 is the ELBO.")
    early_stopping = Param(
        None,
        none_or(int_range(1)),
        """Stop after this many epochs without a lower validation negative ELBO and keep the best
        weights; ``validation_fraction`` of each class is held out for it.""",
    )
    validation_fraction = Param(
        0.1, real_range(0, 0.5), "Share of each class held out when ``early_stopping`` is set."
    )

    _dp_modules = ("net",)
    _per_sample_updates = ("net",)
    _data_parallel = True
    _channels_last = True
    keyed_sampling = True

    def _early_stopping(self) -> tuple[int, float] | None:
        if self.early_stopping is None:
            return None
        return self.early_stopping, self.validation_fraction

    @property
    def architecture_(self) -> str:
        return choose_architecture(self.sample_shape_).kind

    def _build_modules(self) -> nn.ModuleDict:
        arch = choose_architecture(self.sample_shape_)
        net = _CVAENet(arch, self.n_classes_, self.latent_dim, tuple(self.hidden_dims), self.width)
        return nn.ModuleDict({"net": net})

    def _train_step(
        self, x: torch.Tensor, y: torch.Tensor, ctx: TrainingContext
    ) -> dict[str, torch.Tensor]:
        net = self.modules_["net"]
        if self.dp is not None:
            # Per-sample losses: the private step clips them by ghost clipping.
            recon, kl = net.per_sample_terms(x, y, ctx.generator)
            ctx.update_per_sample("net", recon + self.beta * kl, net.parameters())
            return {"loss": (recon + self.beta * kl).mean(), "recon": recon.mean(), "kl": kl.mean()}
        with ctx.autocast():
            losses = net.loss(x, y, ctx.generator, self.beta)
        ctx.update("net", losses["loss"], net.parameters())
        return losses

    def _validation_loss(
        self, x: torch.Tensor, y: torch.Tensor, ctx: TrainingContext
    ) -> torch.Tensor:
        # The same latent draws every epoch, so epochs are compared fairly.
        val_gen = torch.Generator(device=self.device_).manual_seed(ctx.seed)
        net = self.modules_["net"]
        with eval_mode(net), ctx.autocast():
            return net.per_sample_loss(x, y, val_gen, 1.0).mean()

    def _sample(self, labels: torch.Tensor, generator: Randomness) -> torch.Tensor:
        z = randn(generator, (len(labels), self.latent_dim), device=self.device_)
        net = self.modules_["net"]
        return self._in_sample_batches(
            lambda z, y: torch.sigmoid(net.decode_logits(z, y)), z, labels
        )

    # -- scoring (used by the anomaly detectors) ---------------------------------------------
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
        images, labels = self._check_images(images, labels)
        net = self.modules_["net"]

        def reconstruct(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            mu, _ = net.encode(x, y)
            return torch.sigmoid(net.decode_logits(mu, y)).float().cpu()

        if len(images) == 0:
            return images.new_zeros(images.shape)
        # A fixed cut (no network=): the detectors and lesion localizers built on it keep
        # statistics of these reconstructions, which must not depend on the machine.
        with eval_mode(net), torch.no_grad():
            return batched(reconstruct, images, labels, device=self.device_)

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
        images, labels = self._check_images(images, labels)
        gen = torch_generator(seed, self.device_)
        net = self.modules_["net"]

        def elbo(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            mu, logvar = net.encode(x, y)
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
            recon = torch.zeros(len(x), device=x.device)
            for _ in range(n_samples):
                eps = torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype)
                logits = net.decode_logits(mu + eps * torch.exp(0.5 * logvar), y)
                nll = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="none")
                recon += nll.flatten(1).sum(1)
            return (recon / n_samples + kl.float()).cpu()

        if len(images) == 0:
            return torch.zeros(0)
        # A fixed cut (no network=): the latent draws are made per batch, so the scores of a
        # seed must not depend on the machine's batch size.
        with eval_mode(net), torch.no_grad():
            return batched(elbo, images, labels, device=self.device_)
