"""Conditional GAN with a projection discriminator, hinge loss, spectral norm and an EMA generator."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from synthaug._params import Default, Param, boolean, int_range, int_tuple, real_range
from synthaug.data import ImageDataset
from synthaug.errors import InvalidDataError
from synthaug.generators._registry import register_generator
from synthaug.generators._torch import TorchGenerator, TrainingContext
from synthaug.nn import (
    EMA,
    Architecture,
    ConditionalBatchNorm,
    ConvDecoder,
    MLPDecoder,
    Randomness,
    choose_architecture,
    conv_encoder,
    diff_augment,
    draw_rows,
    project_spectral_norm_,
    randn,
)

AdversarialStep = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

# Batches used to re-estimate the EMA generator's batch-norm statistics after training.
_STAT_BATCHES = 16


class _GeneratorNet(nn.Module):
    """G(z, y): conditional batch norm after every hidden layer carries the label."""

    def __init__(
        self,
        arch: Architecture,
        n_classes: int,
        latent_dim: int,
        hidden: tuple[int, ...],
        width: int,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        if arch.kind == "mlp":
            self.body = MLPDecoder(
                latent_dim, hidden, arch, norm=ConditionalBatchNorm, n_classes=n_classes
            )
        else:
            self.body = ConvDecoder(
                latent_dim, arch, width, norm=ConditionalBatchNorm, n_classes=n_classes
            )

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], shaped like the samples."""
        return torch.sigmoid(self.body(z, y))


class _DiscriminatorNet(nn.Module):
    """D(x, y) = psi(phi(x)) + <embed(y), phi(x)>: the projection discriminator.

    Every weight is spectrally normalised (Miyato et al., ICLR 2018).
    """

    def __init__(
        self, arch: Architecture, n_classes: int, hidden: tuple[int, ...], width: int
    ) -> None:
        super().__init__()
        if arch.kind == "mlp":
            layers: list[nn.Module] = [nn.Flatten()]
            dim = arch.data_dim
            for h in hidden:
                layers += [spectral_norm(nn.Linear(dim, h)), nn.LeakyReLU(0.2)]
                dim = h
            self.features = nn.Sequential(*layers)
            feat_dim = dim
        else:
            self.features, feat_dim = conv_encoder(
                arch, width, spectral=True, activation=nn.LeakyReLU
            )
        self.linear = spectral_norm(nn.Linear(feat_dim, 1))
        self.embed = spectral_norm(nn.Embedding(n_classes, feat_dim))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.features(x * 2 - 1)
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)


@register_generator("cgan")
class CGAN(TorchGenerator):
    """Conditional GAN built to train stably on small labelled data sets.

    Design, with the paper each choice comes from:

    * **Generator conditioning**: conditional batch norm (a per-class gain and bias after every
      hidden layer; de Vries et al., NeurIPS 2017; Dumoulin et al., ICLR 2017).
    * **Projection discriminator** (Miyato & Koyama, ICLR 2018): the label enters as an inner
      product with the discriminator's features rather than as an input channel.
    * **Hinge loss** (Lim & Ye 2017; used by SNGAN and BigGAN):
      ``L_D = E[relu(1 - D(x, y))] + E[relu(1 + D(G(z, y), y))]``, ``L_G = -E[D(G(z, y), y)]``.
    * **Spectral normalisation** of every discriminator weight (Miyato et al., ICLR 2018).
    * **EMA generator** (Karras et al., ICLR 2018; Yazıcı et al., ICLR 2019): samples come from
      an exponential moving average of the generator weights (decay ``ema_decay`` with the
      ``(1 + t) / (10 + t)`` warm-up), whose batch-norm statistics are re-estimated after
      training.
    * **DiffAugment** (Zhao et al., NeurIPS 2020), optional: colour, translation and cutout
      applied to real and fake images before the discriminator; it helps below a few thousand
      images. Images only (ignored for feature vectors).

    Generator and discriminator follow the data shape like every synthaug generator: MLPs for
    feature vectors and images under 16x16, DCGAN-style conv stacks from 16x16 to 128x128.
    A GAN loss says little about sample quality, so there is no early stopping on it.

    Attributes
    ----------
    history_ : list of dict
        Per-epoch mean ``d_loss`` and ``g_loss``.
    privacy_spent_ : tuple of float
        ``(epsilon, delta)`` spent by training and the class count release, from Opacus'
        accountant; only when trained with ``dp`` (``class_counts_`` is then that release).

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.generators import CGAN
    >>> model = CGAN(epochs=1, verbose=False).fit(load_digits())
    >>> images, labels = model.sample(4, y=7, seed=0)
    >>> tuple(images.shape)
    (4, 1, 8, 8)
    """

    latent_dim = Param(32, int_range(1), "Size of the noise vector.")
    hidden_dims = Param(
        (256, 512),
        int_tuple(1),
        """Hidden widths of the MLP generator (the discriminator mirrors them); MLP layout only.""",
    )
    width = Param(
        16,
        int_range(1),
        """Channels of the conv stacks at full resolution (doubling per halving, up to 8x).""",
    )
    epochs = Default(200)
    lr = Default(2e-4)
    ema_decay = Param(
        0.999,
        real_range(0, 1),
        """Decay of the generator weight average; 0 samples from the raw generator.""",
    )
    diffaugment = Param(False, boolean, "Apply DiffAugment (images only).")

    _dp_modules = ("discriminator",)
    # Exact but for batch norm, whose statistics are over each rank's part of the batch.
    _data_parallel = True
    _channels_last = True
    keyed_sampling = True

    def _check_dataset(self, dataset: ImageDataset) -> None:
        super()._check_dataset(dataset)
        if len(dataset) < 2:
            # The trainer skips a lone trailing batch, but one image is every batch there is.
            raise InvalidDataError(
                "CGAN needs at least 2 training samples: its batch norm has no statistics of "
                "one; add samples, or use 'cvae', which trains on a single image"
            )

    def _build_modules(self) -> nn.ModuleDict:
        arch = choose_architecture(self.sample_shape_)
        hidden = tuple(self.hidden_dims)
        g = _GeneratorNet(arch, self.n_classes_, self.latent_dim, hidden, self.width)
        d = _DiscriminatorNet(arch, self.n_classes_, tuple(reversed(hidden)), self.width)
        return nn.ModuleDict({"generator": g, "discriminator": d, "generator_ema": EMA(g)})

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers, by name; the one place a subclass (e.g. DP-SGD) swaps them."""
        betas = (0.5, 0.999)
        return {
            "generator": torch.optim.Adam(
                self.modules_["generator"].parameters(), lr=self.lr, betas=betas
            ),
            "discriminator": torch.optim.Adam(
                self.modules_["discriminator"].parameters(), lr=self.lr, betas=betas
            ),
        }

    def _start_training(self, ctx: TrainingContext) -> None:
        g, d = self.modules_["generator"], self.modules_["discriminator"]
        ema = self.modules_["generator_ema"]
        augment = self.diffaugment and len(self.sample_shape_) == 3

        def view(images: torch.Tensor) -> torch.Tensor:
            return diff_augment(images, ctx.generator) if augment else images

        ctx.state.update(
            adversarial=(
                self._adversarial_step(g, d, view, ctx)
                if self.dp is None
                else self._private_adversarial_step(g, d, view, ctx)
            ),
            ema_params=(list(ema.net.parameters()), list(g.parameters())),
            ema_buffers=(list(ema.net.buffers()), list(g.buffers())),
            # The update count, read from the (possibly resumed) buffer at the first step.
            ema_t=None,
        )

    def _adversarial_step(
        self,
        g: nn.Module,
        d: nn.Module,
        view: Callable[[torch.Tensor], torch.Tensor],
        ctx: TrainingContext,
    ) -> AdversarialStep:
        """One hinge-loss discriminator step and one generator step on a real batch."""

        def step(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = draw_rows(
                len(xb),
                lambda n: torch.randn(
                    (n, self.latent_dim), generator=ctx.generator, device=xb.device
                ),
            )
            with ctx.autocast():
                fake = g(z, yb)
                d_real = d(view(xb), yb)
                d_fake = d(view(fake.detach()), yb)
                d_loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            ctx.update("discriminator", d_loss, d.parameters())
            with ctx.autocast():
                g_loss = -d(view(fake), yb).mean()
            ctx.update("generator", g_loss, g.parameters())
            return d_loss, g_loss

        return step

    def _train_step(
        self, x: torch.Tensor, y: torch.Tensor, ctx: TrainingContext
    ) -> dict[str, torch.Tensor]:
        d_loss, g_loss = ctx.state["adversarial"](x, y)
        ctx.state["ema_t"] = self.modules_["generator_ema"].update(
            ctx.state["ema_params"],
            self.ema_decay,
            ctx.state["ema_t"],
            buffers=ctx.state["ema_buffers"],
        )
        return {"d_loss": d_loss, "g_loss": g_loss}

    def _end_training(self, ctx: TrainingContext) -> None:
        # With dp the labels of the real records are private: re-estimate on uniform classes.
        labels = ctx.y if self.dp is None else self._public_labels()
        self._estimate_ema_batch_stats(labels, ctx.generator)

    def _public_labels(self) -> torch.Tensor:
        """Every trained class once: uniform draws from it depend on no record."""
        return torch.tensor(self.classes_, dtype=torch.int64, device=self.device_)

    def _private_adversarial_step(
        self,
        g: nn.Module,
        d: nn.Module,
        view: Callable[[torch.Tensor], torch.Tensor],
        ctx: TrainingContext,
    ) -> AdversarialStep:
        """One DP-SGD discriminator step and one generator step, for ``dp`` training.

        Only the discriminator sees real records, so only its update is private (DP-SGD on
        Poisson batches; Xie et al., "Differentially Private Generative Adversarial Network",
        2018). The fake batch has ``batch_size`` samples of uniformly drawn classes, so neither
        its size nor its labels depend on the real batch (whose size is random under Poisson
        sampling); the discriminator scores real and fake samples in one pass and every row's
        gradient is clipped, the fake rows being independent of the data. The generator then
        learns through the frozen discriminator, a post-processing of private weights.
        """
        classes = self._public_labels()
        batch = self.batch_size
        gen = ctx.generator

        def step(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = torch.randn((batch, self.latent_dim), generator=gen, device=xb.device)
            pick = torch.randint(0, len(classes), (batch,), generator=gen, device=xb.device)
            y_fake = classes[pick]
            fake = g(z, y_fake)
            n = len(xb)
            scores = d(view(torch.cat([xb, fake.detach()])), torch.cat([yb, y_fake]))
            per_row = torch.cat([F.relu(1 - scores[:n]), F.relu(1 + scores[n:])])
            # A mean over rows, as Opacus expects; the DP optimiser rescales by the batch size.
            ctx.update("discriminator", per_row.mean(), d.parameters(), grad_clip=None)
            project_spectral_norm_(d)  # the Lipschitz bound spectral norm gave, post-processed
            d_loss = per_row[:n].detach().mean() + per_row[n:].detach().mean()
            # The generator's step is no DP step: no per-sample (or any) discriminator gradients.
            d.requires_grad_(False)
            try:
                with ctx.private_paused():
                    g_loss = -d(view(fake), y_fake).mean()
                    ctx.update("generator", g_loss, g.parameters())
            finally:
                d.requires_grad_(True)
            return d_loss, g_loss

        return step

    @torch.no_grad()
    def _estimate_ema_batch_stats(self, y: torch.Tensor, gen: torch.Generator) -> None:
        """Re-estimate the EMA generator's batch-norm statistics for its own (averaged) weights.

        The running statistics copied from the raw generator belong to other weights; BigGAN's
        "standing statistics" (Brock et al., ICLR 2019) fix this by averaging over fresh batches.
        """
        net = self.modules_["generator_ema"].net
        norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
        if not norms or self.ema_decay == 0:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        net.train()
        batch = self.batch_size
        # About one pass over the training labels, between 2 and _STAT_BATCHES batches.
        n_batches = min(_STAT_BATCHES, max(2, -(-len(y) // batch)))
        for _ in range(n_batches):
            idx = torch.randint(0, len(y), (batch,), generator=gen, device=y.device)
            z = torch.randn((batch, self.latent_dim), generator=gen, device=y.device)
            net(z, y[idx])
        net.eval()
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum

    def _sample(self, labels: torch.Tensor, generator: Randomness) -> torch.Tensor:
        z = randn(generator, (len(labels), self.latent_dim), device=self.device_)
        ema = self.ema_decay > 0
        net = self.modules_["generator_ema"].net if ema else self.modules_["generator"]
        return self._in_sample_batches(net, z, labels)
