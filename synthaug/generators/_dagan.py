"""Data Augmentation GAN: variants of stored training exemplars (Antoniou et al. 2018)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from synthaug._params import Default, Param, int_range, int_tuple, real_range
from synthaug.data import ImageDataset
from synthaug.errors import InvalidDataError
from synthaug.generators._registry import register_generator
from synthaug.generators._torch import TorchGenerator, TrainingContext
from synthaug.nn import (
    EMA,
    Architecture,
    Randomness,
    channels,
    choose_architecture,
    conv_encoder,
    rand,
    randn,
)


def _group_norm(width: int) -> nn.GroupNorm:
    # Group norm, not batch norm: a sample never depends on what else is in its batch, and a
    # batch of one (a 2-image class at the end of an epoch) trains like any other.
    return nn.GroupNorm(math.gcd(8, width), width)


class _Exemplars(nn.Module):
    """The training items DAGAN makes variants of, sorted by class, held as buffers.

    Buffers, so the items are saved with the weights and moved with the networks; there are
    no parameters. Class ``c`` is rows ``starts[c] : starts[c] + counts[c]``, so drawing an
    item of a class, or another item of the same class, is a few tensor operations.
    """

    def __init__(self, n_items: int, sample_shape: Sequence[int], n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.register_buffer("images", torch.zeros(n_items, *sample_shape))
        self.register_buffer("labels", torch.zeros(n_items, dtype=torch.int64))

    @torch.no_grad()
    def fill(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        order = torch.argsort(labels, stable=True)
        self.images.copy_(images[order])
        self.labels.copy_(labels[order])

    def table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(starts, counts)`` per class label."""
        counts = torch.bincount(self.labels, minlength=self.n_classes)
        return torch.cumsum(counts, 0) - counts, counts

    def draw(self, labels: torch.Tensor, generator: Randomness) -> torch.Tensor:
        """For each label, the row of one of its class's items, uniformly."""
        starts, counts = self.table()
        count = counts[labels]
        u = rand(generator, (len(labels),), device=labels.device)
        return starts[labels] + (u * count).long().clamp(max=count - 1)

    def partners(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """For each row, another row of the same class, uniformly (its class has >= 2)."""
        starts, counts = self.table()
        label = self.labels[rows]
        count = counts[label]
        rank = rows - starts[label]
        u = torch.rand(len(rows), generator=generator, device=rows.device)
        # A shift of 1 .. count - 1 places along the class never lands on the row itself.
        shift = 1 + (u * (count - 1)).long().clamp(max=count - 2)
        return starts[label] + (rank + shift) % count


class _MLPUNet(nn.Module):
    """Encoder -> bottleneck + noise -> decoder, each encoder layer's activations concatenated
    into its mirrored decoder layer (the U-Net skips of DAGAN's generator, as an MLP)."""

    def __init__(self, arch: Architecture, hidden: tuple[int, ...], noise_dim: int) -> None:
        super().__init__()
        self.arch = arch
        dims = [arch.data_dim, *hidden]
        self.down = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        # The noise joins the bottleneck and every decoder level, so that the skips, which
        # carry the source, cannot route around it.
        self.up = nn.ModuleList()
        below = hidden[-1]
        for h in reversed(hidden[:-1]):
            self.up.append(nn.Linear(below + noise_dim, h))
            below = 2 * h
        # The output layer also sees the source itself (the full-resolution skip).
        self.out = nn.Linear(below + arch.data_dim + noise_dim, arch.data_dim)

    def forward(self, source: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = source.flatten(1) * 2 - 1
        h = x
        skips = []
        for layer in self.down:
            h = F.silu(layer(h))
            skips.append(h)
        skips.pop()  # the bottleneck is h itself
        for layer, skip in zip(self.up, reversed(skips), strict=True):
            h = torch.cat([F.silu(layer(torch.cat([h, z], dim=1))), skip], dim=1)
        out = self.out(torch.cat([h, x, z], dim=1))
        return out.reshape(len(h), *self.arch.sample_shape)


class _ConvUNet(nn.Module):
    """A small U-Net in the DCGAN pattern: stride-2 convolutions down to ``arch.grid``, the
    noise mapped onto the bottleneck, transposed convolutions up, each merged with the encoder
    feature map of its resolution (U-Net skips; Ronneberger et al. 2015)."""

    def __init__(self, arch: Architecture, width: int, noise_dim: int) -> None:
        super().__init__()
        self.arch = arch
        n = arch.n_down
        c_in = arch.sample_shape[0]
        top = channels(n, width)
        self.stem = nn.Sequential(nn.Conv2d(c_in, width, 3, 1, 1), _group_norm(width), nn.SiLU())
        self.down = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels(level, width), channels(level + 1, width), 4, 2, 1),
                _group_norm(channels(level + 1, width)),
                nn.SiLU(),
            )
            for level in range(n)
        )
        self.noise_map = nn.Linear(noise_dim, top * math.prod(arch.grid))
        self.bottom = nn.Sequential(nn.Conv2d(2 * top, top, 3, 1, 1), _group_norm(top), nn.SiLU())
        levels = list(reversed(range(n)))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(channels(level + 1, width), channels(level, width), 4, 2, 1)
            for level in levels
        )
        # A noise-dependent shift of every channel at every level, cheap at any resolution.
        self.noise_shift = nn.ModuleList(
            nn.Linear(noise_dim, channels(level, width)) for level in levels
        )
        self.merge = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(2 * channels(level, width), channels(level, width), 3, 1, 1),
                _group_norm(channels(level, width)),
                nn.SiLU(),
            )
            for level in levels
        )
        self.out = nn.Conv2d(width, c_in, 3, 1, 1)

    def forward(self, source: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.stem(source * 2 - 1)
        skips = [h]
        for down in self.down:
            h = down(h)
            skips.append(h)
        skips.pop()  # the bottleneck is h itself
        noise = self.noise_map(z).reshape(len(z), -1, *self.arch.grid)
        h = self.bottom(torch.cat([h, noise], dim=1))
        for up, shift, merge, skip in zip(
            self.up, self.noise_shift, self.merge, reversed(skips), strict=True
        ):
            h = up(h) + shift(z)[:, :, None, None]
            h = merge(torch.cat([h, skip], dim=1))
        return self.out(h)


class _GeneratorNet(nn.Module):
    """G(source, z): a variant of ``source`` in [0, 1], shaped like the samples.

    The network's output is added to the source's logits: a residual around the identity, so
    that the variant of a class the discriminator has seen few pairs of starts at its source
    and stays in its class instead of drifting to a frequent class. Copying is still no
    solution, as the discriminator rejects a pair of identical images.
    """

    def __init__(
        self, arch: Architecture, hidden: tuple[int, ...], width: int, noise_dim: int
    ) -> None:
        super().__init__()
        if arch.kind == "mlp":
            self.body: nn.Module = _MLPUNet(arch, hidden, noise_dim)
        else:
            self.body = _ConvUNet(arch, width, noise_dim)

    def forward(self, source: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(source, z) + torch.logit(source, eps=1e-2))


class _PairDiscriminator(nn.Module):
    """D(source, other): is ``other`` a real item of ``source``'s class, or G's variant of it?

    It sees the pair stacked (as channels for images, as features for vectors), so a copy of
    the source is as easy to reject as a poor image. Every weight is spectrally normalised
    (Miyato et al., ICLR 2018).
    """

    def __init__(self, arch: Architecture, hidden: tuple[int, ...], width: int) -> None:
        super().__init__()
        if arch.kind == "mlp":
            layers: list[nn.Module] = [nn.Flatten()]
            dim = 2 * arch.data_dim
            for h in hidden:
                layers += [spectral_norm(nn.Linear(dim, h)), nn.LeakyReLU(0.2)]
                dim = h
            self.features = nn.Sequential(*layers)
            feat_dim = dim
        else:
            c, height, w = arch.sample_shape
            pair = dataclasses.replace(arch, sample_shape=(2 * c, height, w))
            self.features, feat_dim = conv_encoder(
                pair, width, spectral=True, activation=nn.LeakyReLU
            )
        self.head = spectral_norm(nn.Linear(feat_dim, 1))

    def forward(self, source: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        pair = torch.cat([source, other], dim=1) * 2 - 1
        return self.head(self.features(pair)).squeeze(1)


@register_generator("dagan")
class DAGAN(TorchGenerator):
    """Data Augmentation GAN: learns how items of a class vary, and applies it to any item.

    Antoniou, Storkey & Edwards, "Data Augmentation Generative Adversarial Networks" (2018).
    The generator is image-conditional: it encodes a *source* item to a bottleneck, joins
    Gaussian noise, and decodes a variant, with U-Net skips from each encoder level to its
    decoder level. The discriminator judges pairs: a real pair is a source and a *different*
    real item of its class, a fake pair is the source and the generator's variant of it. One
    model is trained on all classes together, with no class label in either network, so what
    it learns of within-class variation carries over to rare classes: a class with a single
    item trains nothing (it has no real pair) but is a source like any other when sampling.

    ``sample(n, y)`` draws, for each requested label, a source uniformly among the stored
    training items of that class and returns the generator's variant of it (noise from the
    sampling seed); :meth:`sample_with_sources` also returns the sources, to measure how far
    samples are from them.

    **The model stores its training items**: the exemplars are saved in the model file
    (``stores_training_images`` is True, recorded in the file and shown by ``synthaug info``),
    and samples are close variants of them. Share neither as if they were anonymous. For the
    same reason ``dp=`` is refused: DP-SGD on the networks would not protect the stored
    exemplars; use ``cvae`` or ``cgan`` with ``dp=`` for a differentially private model.

    Design, with where each choice comes from:

    * **Loss**: hinge loss (Lim & Ye 2017) with spectral normalisation of every discriminator
      weight (Miyato et al., ICLR 2018), as ``cgan`` uses, instead of the paper's WGAN-GP: it
      needs no gradient penalty (a second backward pass), so it trains several times faster
      on the CPU. ``L_D = E[relu(1 - D(x, x'))] + E[relu(1 + D(x, G(x, z)))]``,
      ``L_G = -E[D(x, G(x, z))]``.
    * **Layout** follows the data shape like every synthaug generator: MLPs for feature
      vectors and images under 16x16 (encoder layers concatenated into the mirrored decoder
      layers, the source itself into the output layer), a DCGAN-style convolutional U-Net for
      images from 16x16 to 128x128. Group norm rather than batch norm, so samples never depend
      on their batch. The noise joins the bottleneck and every decoder level, so the skips
      cannot make the generator ignore it.
    * **EMA generator** (Karras et al., ICLR 2018; Yazıcı et al., ICLR 2019), as in ``cgan``:
      samples come from an exponential moving average of the generator weights (decay
      ``ema_decay``, ``(1 + t) / (10 + t)`` warm-up). On the development-pool digits it made
      results less erratic across epoch counts (see docs/generators.md).
    * **Residual output** (our choice, not the paper's): the generator's output is added to
      the source's logits, so a variant starts at its source. Without it, on digits with 5
      rare classes of 2 images, most variants of rare-class sources were drawn towards
      frequent classes (``benchmarks/dagan_variation.py``).

    Attributes
    ----------
    architecture_ : str
        ``"mlp"`` or ``"conv"``, chosen from the sample shape.
    exemplars_ : tuple of torch.Tensor
        ``(images, labels)`` of the stored training items, sorted by class, on the CPU.
    history_ : list of dict
        Per-epoch mean ``d_loss`` and ``g_loss``.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.generators import DAGAN
    >>> model = DAGAN(epochs=1, verbose=False).fit(load_digits())
    >>> images, labels, sources = model.sample_with_sources(4, y=7, seed=0)
    >>> tuple(images.shape), labels.tolist(), tuple(sources.shape)
    ((4, 1, 8, 8), [7, 7, 7, 7], (4, 1, 8, 8))
    >>> model.stores_training_images
    True
    """

    noise_dim = Param(
        32,
        int_range(1),
        "Size of the Gaussian noise vector joined to the bottleneck.",
    )
    hidden_dims = Param(
        (256, 128),
        int_tuple(1),
        """Widths of the MLP encoder's layers (the last is the bottleneck; the decoder mirrors
        them, and the discriminator has the same widths); MLP layout only.""",
    )
    width = Param(
        16,
        int_range(1),
        """Channels of the conv stacks at full resolution (doubling per halving, up to 8x); conv
        layout only.""",
    )
    epochs = Default(50)
    lr = Default(1e-4)
    ema_decay = Param(
        0.999,
        real_range(0, 1),
        """Decay of the generator weight average samples come from; 0 samples from the raw
        generator.""",
    )

    stores_training_images = True
    exemplar_conditioned = True
    _exemplar_use = (
        "a network's variant of one of its stored training images of the class (the image is "
        "the network's input, and its output is added to the image's logits)"
    )
    _min_samples_per_class = 1
    keyed_sampling = True

    # -- fit --------------------------------------------------------------------------------
    def _check_dataset(self, dataset: ImageDataset) -> None:
        super()._check_dataset(dataset)
        if max(dataset.class_counts().values()) < 2:
            raise InvalidDataError(
                "DAGAN learns how items vary from pairs of items of one class, and no class "
                "has 2 samples; add samples to at least one class"
            )

    def _build_modules(self) -> nn.ModuleDict:
        arch = choose_architecture(self.sample_shape_)
        hidden = tuple(self.hidden_dims)
        n_items = sum(self.class_counts_.values())
        g = _GeneratorNet(arch, hidden, self.width, self.noise_dim)
        return nn.ModuleDict(
            {
                "generator": g,
                "discriminator": _PairDiscriminator(arch, hidden, self.width),
                "generator_ema": EMA(g),
                "exemplars": _Exemplars(n_items, self.sample_shape_, self.n_classes_),
            }
        )

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (0.5, 0.999)
        return {
            name: torch.optim.Adam(self.modules_[name].parameters(), lr=self.lr, betas=betas)
            for name in ("generator", "discriminator")
        }

    def _start_training(self, ctx: TrainingContext) -> None:
        store = self.modules_["exemplars"]
        store.fill(ctx.x, ctx.y)
        _, counts = store.table()
        # Only items with a same-class partner make real pairs.
        ctx.state["rows"] = torch.nonzero(counts[store.labels] >= 2).squeeze(1)
        ema = self.modules_["generator_ema"]
        ctx.state["ema_t"] = None
        ctx.state["ema_params"] = (
            list(ema.net.parameters()),
            list(self.modules_["generator"].parameters()),
        )

    def _batched_tensors(self, ctx: TrainingContext) -> tuple[torch.Tensor, torch.Tensor]:
        # Batches of exemplar rows, so each step can pair every source with another item.
        rows = ctx.state["rows"]
        return rows, self.modules_["exemplars"].labels[rows]

    def _train_step(
        self, rows: torch.Tensor, y: torch.Tensor, ctx: TrainingContext
    ) -> dict[str, torch.Tensor]:
        g, d = self.modules_["generator"], self.modules_["discriminator"]
        store = self.modules_["exemplars"]
        source = store.images[rows]
        other = store.images[store.partners(rows, ctx.generator)]
        z = torch.randn((len(rows), self.noise_dim), generator=ctx.generator, device=rows.device)
        with ctx.autocast():
            fake = g(source, z)
            d_real = d(source, other)
            d_fake = d(source, fake.detach())
            d_loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        ctx.update("discriminator", d_loss, d.parameters())
        with ctx.autocast():
            g_loss = -d(source, fake).mean()
        ctx.update("generator", g_loss, g.parameters())
        self._update_ema(ctx)
        return {"d_loss": d_loss, "g_loss": g_loss}

    def _update_ema(self, ctx: TrainingContext) -> None:
        """Move the averaged generator towards the trained one (as ``cgan`` does)."""
        ctx.state["ema_t"] = self.modules_["generator_ema"].update(
            ctx.state["ema_params"], self.ema_decay, ctx.state["ema_t"]
        )

    # -- sample -----------------------------------------------------------------------------
    def _sample(self, labels: torch.Tensor, generator: Randomness) -> torch.Tensor:
        store = self.modules_["exemplars"]
        rows = store.draw(labels, generator)
        z = randn(generator, (len(labels), self.noise_dim), device=self.device_)
        recorded = self.__dict__.get("_recorded_rows")
        if recorded is not None:
            recorded.append(rows)
        net = (
            self.modules_["generator_ema"].net if self.ema_decay > 0 else self.modules_["generator"]
        )
        return net(store.images[rows], z)

    def sample_with_sources(
        self,
        n: int,
        y: int | str | Sequence[int | str] | torch.Tensor | None = None,
        seed: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`sample`, with the stored training item each sample is a variant of.

        Parameters
        ----------
        n, y, seed
            As for :meth:`sample`; the images and labels are the ones ``sample`` gives for the
            same arguments.

        Returns
        -------
        images : torch.Tensor
            Float32 on the CPU, shaped like the training samples, values in [0, 1].
        labels : torch.Tensor
            Int64 ``(n,)`` labels.
        sources : torch.Tensor
            The source exemplar of each sample (a training item of its class), like ``images``.

        Examples
        --------
        >>> from synthaug.data import load_digits
        >>> from synthaug.generators import DAGAN
        >>> model = DAGAN(epochs=1, verbose=False).fit(load_digits())
        >>> images, labels, sources = model.sample_with_sources(100, y=3, seed=0)
        >>> distance_to_source = (images - sources).flatten(1).norm(dim=1)
        >>> bool((distance_to_source > 0).all())
        True
        """
        self._recorded_rows: list[torch.Tensor] = []
        try:
            images, labels = self.sample(n, y=y, seed=seed)
            rows = torch.cat(self._recorded_rows)
        finally:
            del self._recorded_rows
        return images, labels, self.modules_["exemplars"].images[rows].cpu()

    @property
    def architecture_(self) -> str:
        """``"mlp"`` or ``"conv"``, chosen from the sample shape."""
        return choose_architecture(self.sample_shape_).kind

    @property
    def exemplars_(self) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_fitted()
        store = self.modules_["exemplars"]
        return store.images.cpu(), store.labels.cpu()
