"""Generators that learn a latent space on every class and make rare-class samples in it.

An autoencoder trained on all classes learns how images vary where data is plentiful; a
rare class then gets new samples by moving its own items' codes in that space and decoding.
:class:`DeepSMOTE` interpolates between same-class neighbours (Dablain et al. 2022);
:class:`DeltaTransfer` adds within-class differences taken from the plentiful classes
(Schwartz et al. 2018's delta-encoder idea, without its conditioning network). Both keep the
codes of their training items, so their files hold (reconstructions of) training images.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from synthaug._params import Default, Param, int_range, int_tuple, none_or, real_range
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
    mlp,
    rand,
)


class _AutoEncoder(nn.Module):
    """Encoder x -> z and decoder z -> Bernoulli logits, laid out for the sample shape.

    With ``n_classes`` the encoder and decoder also see the one-hot label, so the code is
    free to hold how an item differs from its class rather than which class it is (the
    property that lets a within-class difference of one class move an item of another).
    ``variational`` adds a log-variance head (a VAE's posterior; its mean is the code).
    """

    def __init__(
        self,
        arch: Architecture,
        latent_dim: int,
        hidden: tuple[int, ...],
        width: int,
        *,
        n_classes: int = 0,
        variational: bool = False,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.n_classes = n_classes
        self.variational = variational
        out = 2 * latent_dim if variational else latent_dim
        if arch.kind == "mlp":
            self.features: nn.Module = nn.Flatten()
            self.head = mlp(arch.data_dim + n_classes, hidden, out)
            self.decoder: nn.Module = MLPDecoder(
                latent_dim + n_classes, tuple(reversed(hidden)), arch
            )
        else:
            self.features, feat_dim = conv_encoder(arch, width)
            self.head = nn.Linear(feat_dim + n_classes, out)
            self.decoder = ConvDecoder(latent_dim + n_classes, arch, width)

    def _with_label(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self.n_classes:
            return h
        return torch.cat([h, F.one_hot(y, self.n_classes).to(h.dtype)], dim=1)

    def posterior(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The code's mean and log-variance (zeros when not variational)."""
        out = self.head(self._with_label(self.features(x), y))
        if not self.variational:
            return out, torch.zeros_like(out)
        mu, logvar = out.chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.posterior(x, y)[0]

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # ``y`` also reaches the decoders' (absent) conditional norms, which ignore it.
        return self.decoder(self._with_label(z, y), y)


def _same_class_shift(y: torch.Tensor) -> torch.Tensor:
    """For each item of a batch, the index of the next item of its class in the batch (cyclic;
    an item alone in its class points at itself): DeepSMOTE's permutation, batched."""
    order = torch.argsort(y, stable=True)
    sorted_y = y[order]
    n = len(y)
    pos = torch.arange(n, device=y.device)
    # Start of each item's run of equal labels in the sorted order, and the run's length.
    is_start = torch.ones(n, dtype=torch.bool, device=y.device)
    is_start[1:] = sorted_y[1:] != sorted_y[:-1]
    start = torch.cummax(torch.where(is_start, pos, torch.zeros_like(pos)), 0).values
    counts = torch.bincount(sorted_y, minlength=int(sorted_y.max()) + 1)[sorted_y]
    nxt_sorted = start + (pos - start + 1) % counts
    partner = torch.empty_like(order)
    partner[order] = order[nxt_sorted]
    return partner


class _LatentGenerator(TorchGenerator):
    """An autoencoder on every class and a bank of its training items' codes (class-sorted).

    Subclasses draw new codes from the bank in ``_draw_codes(labels, generator)``.
    """

    stores_training_images: ClassVar[bool] = True
    keyed_sampling: ClassVar[bool] = True
    # Every sample is decoded from the stored code of a training item, moved a little.
    exemplar_conditioned: ClassVar[bool] = True
    # Whether the autoencoder sees the label, and whether it is a VAE (then ``beta`` weighs
    # its KL term).
    _conditional: ClassVar[bool] = False

    @property
    def _variational(self) -> bool:
        return False

    latent_dim = Param(16, int_range(1), "Size of the latent code.")
    hidden_dims = Param(
        (256, 128),
        int_tuple(1),
        """Encoder hidden widths (the decoder mirrors them); MLP layout (vectors, images under
        16x16) only.""",
    )
    width = Param(
        16, int_range(1), "Channels of the first conv layer; conv layout (16..128 px) only."
    )
    input_noise = Param(
        0.0,
        real_range(0),
        "Standard deviation of Gaussian noise added to the encoder's input while training.",
    )
    class_balance = Param(
        1.0,
        real_range(0),
        """Weights each item's loss by ``(mean class size / its class size) ** class_balance``:
        1 gives every class equal weight (a two-image class is learned as well as a large
        one), 0 weighs items equally.""",
    )

    @property
    def architecture_(self) -> str:
        return choose_architecture(self.sample_shape_).kind

    def _build_modules(self) -> nn.ModuleDict:
        arch = choose_architecture(self.sample_shape_)
        net = _AutoEncoder(
            arch,
            self.latent_dim,
            tuple(self.hidden_dims),
            self.width,
            n_classes=self.n_classes_ if self._conditional else 0,
            variational=self._variational,
        )
        return nn.ModuleDict({"net": net})

    # -- training -----------------------------------------------------------------------------
    def _start_training(self, ctx: TrainingContext) -> None:
        # Per-class loss weights (n_mean / n_c) ** class_balance, averaging 1 over the items:
        # with 1, every class weighs as much as every other, so the decoder learns a
        # two-image class as well as a plentiful one instead of drowning it.
        counts = torch.bincount(ctx.y, minlength=self.n_classes_).float()
        present = counts > 0
        weights = torch.zeros_like(counts)
        weights[present] = (counts[present].mean() / counts[present]) ** self.class_balance
        ctx.state["loss_weights"] = weights / weights[ctx.y].mean()

    @staticmethod
    def _reconstruction_loss(
        logits: torch.Tensor, x: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Bernoulli negative log-likelihood summed over pixels, a batch mean weighted by
        each item's class weight (``weights``)."""
        nll = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="none")
        return (nll.flatten(1).sum(1) * weights).mean()

    def _noisy(self, x: torch.Tensor, ctx: TrainingContext) -> torch.Tensor:
        # Denoising: codes moved off the training items still decode to clean images.
        if not self.input_noise:
            return x
        noise = torch.randn(x.shape, generator=ctx.generator, device=x.device, dtype=x.dtype)
        return (x + self.input_noise * noise).clamp(0, 1)

    def _train_step(
        self, x: torch.Tensor, y: torch.Tensor, ctx: TrainingContext
    ) -> dict[str, torch.Tensor]:
        net = self.modules_["net"]
        weights = ctx.state["loss_weights"][y]
        with ctx.autocast():
            mu, logvar = net.posterior(self._noisy(x, ctx), y)
            kl = None
            z = mu
            if net.variational:
                eps = torch.randn(mu.shape, generator=ctx.generator, device=mu.device)
                z = mu + eps.to(mu.dtype) * torch.exp(0.5 * logvar)
                kl_each = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
                kl = (kl_each.float() * weights).mean()
            losses = self._losses(net, z, x, y, weights)
            if kl is not None:
                losses = {**losses, "loss": losses["loss"] + self.beta * kl, "kl": kl}
        ctx.update("net", losses["loss"], net.parameters())
        return losses

    def _losses(
        self,
        net: _AutoEncoder,
        z: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        weights: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        recon = self._reconstruction_loss(net.decode_logits(z, y), x, weights)
        return {"loss": recon, "recon": recon}

    def _end_training(self, ctx: TrainingContext) -> None:
        # The bank holds the codes of every training item, sorted by class.
        order = torch.argsort(ctx.y, stable=True)
        net = self.modules_["net"]
        with torch.no_grad():
            net.eval()
            # A fixed cut (no network=): the codes are the model, and must not depend on the
            # machine's batch size.
            codes = batched(lambda idx: net.encode(ctx.x[idx], ctx.y[idx]).float(), order)
            net.train()
        self._set_bank(codes, ctx.y[order])

    def _set_bank(self, codes: torch.Tensor, labels: torch.Tensor) -> None:
        self.codes_ = codes
        self.code_labels_ = labels
        counts = torch.bincount(labels, minlength=self.n_classes_)
        self.code_counts_ = counts
        self.code_offsets_ = torch.cumsum(counts, 0) - counts

    # -- sampling -----------------------------------------------------------------------------
    def _pick(self, labels: torch.Tensor, generator: Randomness) -> torch.Tensor:
        """A uniformly chosen bank index of each label's class."""
        u = rand(generator, (len(labels),), device=labels.device)
        counts = self.code_counts_[labels]
        return self.code_offsets_[labels] + (u * counts).long().clamp_max(counts - 1)

    def _draw_codes(
        self, labels: torch.Tensor, generator: Randomness
    ) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _sample(self, labels: torch.Tensor, generator: Randomness) -> torch.Tensor:
        z = self._draw_codes(labels, generator)
        return torch.sigmoid(self.modules_["net"].decode_logits(z, labels).float())

    # -- persistence --------------------------------------------------------------------------
    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        return {"codes": self.codes_, "code_labels": self.code_labels_}

    def _restore_extra_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        extra = dict(tensors)
        codes, labels = extra.pop("codes"), extra.pop("code_labels")
        super()._restore_extra_tensors(extra)
        self._set_bank(codes.to(self.device_, torch.float32), labels.to(self.device_, torch.int64))
        self._restore_bank_tables()

    def _restore_bank_tables(self) -> None:
        """Rebuild what the family derives from the bank (default: nothing)."""

    def _neighbour_table(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each bank item's ``k`` nearest same-class codes (bank indices; the item itself fills
        the slots a class of fewer than ``k + 1`` items cannot) and how many are real."""
        n = len(self.codes_)
        table = torch.arange(n, device=self.codes_.device).unsqueeze(1).repeat(1, k)
        n_valid = torch.zeros(n, dtype=torch.int64, device=self.codes_.device)
        for c in torch.nonzero(self.code_counts_).flatten().tolist():  # once per class, at fit
            start, count = int(self.code_offsets_[c]), int(self.code_counts_[c])
            if count < 2:
                continue
            codes = self.codes_[start : start + count]
            d = torch.cdist(codes, codes)
            d.fill_diagonal_(float("inf"))
            kk = min(k, count - 1)
            table[start : start + count, :kk] = d.topk(kk, largest=False).indices + start
            n_valid[start : start + count] = kk
        return table, n_valid

    def _neighbour_of(self, items: torch.Tensor, generator: Randomness) -> torch.Tensor:
        """One of each item's nearest same-class codes, uniformly (the item where it has none)."""
        u = rand(generator, (len(items),), device=items.device)
        n_valid = self.n_neighbours_[items].clamp_min(1)
        slot = (u * n_valid).long().clamp_max(n_valid - 1)
        return self.neighbours_[items, slot]


@register_generator("deepsmote")
class DeepSMOTE(_LatentGenerator):
    """DeepSMOTE: SMOTE in the latent space of an autoencoder trained on every class.

    Dablain, Krawczyk & Chawla, "DeepSMOTE: Fusing Deep Learning and SMOTE for Imbalanced
    Data", IEEE TNNLS 2022. The encoder and decoder learn every class together, with a
    reconstruction loss and the paper's permutation penalty: the codes of a batch are shifted
    within each class and decoded, and the decoded images are compared with the unshifted
    originals, which keeps same-class codes close. A new sample of class ``y`` is the decoded
    point ``z_i + t (z_j - z_i)``, ``t ~ U(0, 1)``, between the code of a random training
    item ``i`` of ``y`` and one of its ``k_neighbors`` nearest same-class codes ``j``. A class
    of one item has no neighbour: its samples are that item's reconstruction.

    The model keeps the code of every training item (``stores_training_images = True``), so
    its file is as sensitive as the training images; ``dp=`` is refused.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.generators import DeepSMOTE
    >>> model = DeepSMOTE(epochs=2, verbose=False).fit(load_digits())
    >>> images, labels = model.sample(6, y=5, seed=0)
    >>> tuple(images.shape), model.stores_training_images
    ((6, 1, 8, 8), True)
    """

    k_neighbors = Param(
        5,
        int_range(1),
        """Same-class neighbours to interpolate towards (fewer when a class is smaller).""",
    )
    penalty = Param(1.0, real_range(0), "Weight of the permutation penalty (1 in the paper).")

    _exemplar_use = (
        "decoded from a point between the stored codes of two training images of the class "
        "(a class of one image: that image's reconstruction)"
    )

    def _losses(
        self,
        net: _AutoEncoder,
        z: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        weights: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        losses = super()._losses(net, z, x, y, weights)
        if not self.penalty:
            return losses
        # The paper's permutation penalty: same-class codes, shifted, still decode to the batch.
        shifted = net.decode_logits(z[_same_class_shift(y)], y)
        permuted = self._reconstruction_loss(shifted, x, weights)
        recon = losses["recon"]
        return {"loss": recon + self.penalty * permuted, "recon": recon, "permuted": permuted}

    def _end_training(self, ctx: TrainingContext) -> None:
        super()._end_training(ctx)
        self._restore_bank_tables()

    def _restore_bank_tables(self) -> None:
        self.neighbours_, self.n_neighbours_ = self._neighbour_table(self.k_neighbors)

    def _draw_codes(self, labels: torch.Tensor, generator: Randomness) -> torch.Tensor:
        base = self._pick(labels, generator)
        other = self._neighbour_of(base, generator)
        t = rand(generator, (len(labels), 1), device=labels.device)
        z_base, z_other = self.codes_[base], self.codes_[other]
        return z_base + t * (z_other - z_base)


@register_generator("delta-transfer")
class DeltaTransfer(_LatentGenerator):
    """Variation transferred from plentiful classes to rare ones as latent deltas.

    A conditional autoencoder (the label enters encoder and decoder; a light KL term, weight
    ``beta``, keeps the codes smooth) learns every class, so its code holds how an item
    differs from its class. The differences ``z_a - z_b`` between codes of two training items
    of the same class are the ways a class varies (stroke width, slant, position); taken from
    the classes with at least ``min_donor_items`` items, they are added to the code of a
    random training item of the class asked for, and the result is decoded with that class's
    label. A class with one or two images thus gets samples that vary the way the plentiful
    classes do, around its own items. This is the idea of the delta-encoder (Schwartz et
    al., "Delta-encoder: an effective sample synthesis method for few-shot object
    recognition", NeurIPS 2018), with the deltas taken directly in a conditional
    autoencoder's latent space instead of through a learned delta network, and of DAGAN's
    transfer of within-class variation (Antoniou et al. 2018).

    The model keeps the code of every training item (``stores_training_images = True``), so
    its file is as sensitive as the training images; ``dp=`` is refused.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.generators import DeltaTransfer
    >>> model = DeltaTransfer(epochs=2, verbose=False).fit(load_digits())
    >>> images, labels = model.sample(6, y=5, seed=0)
    >>> tuple(images.shape), labels.tolist()
    ((6, 1, 8, 8), [5, 5, 5, 5, 5, 5])
    """

    input_noise = Default(0.1)  # denoising, so that shifted codes still decode to clean images
    delta_scale = Param(
        1.0,
        real_range(0),
        """Multiplies each delta: 1 moves a code as far as the donor pair lies apart; smaller
        stays closer to the source.""",
    )
    delta_neighbors = Param(
        None,
        none_or(int_range(1)),
        """Take each delta between a donor item and one of its this many nearest same-class
        codes (small, local variations); ``None`` pairs any two items of a donor class.""",
    )
    min_donor_items = Param(
        5,
        int_range(2),
        """Classes with at least this many training items give deltas; when none has that
        many, every class with two or more does.""",
    )
    beta = Param(
        0.1,
        real_range(0),
        "Weight of the KL term; 0 makes a plain (deterministic) autoencoder.",
    )

    _conditional = True
    _exemplar_use = (
        "decoded from the stored code of a training image of the class, moved by the "
        "difference between the stored codes of two training images of a donor class"
    )
    # A one-image class is what this family is for: it varies it with borrowed deltas.
    _advised_samples_per_class = 1

    @property
    def _variational(self) -> bool:
        return self.beta > 0

    def _end_training(self, ctx: TrainingContext) -> None:
        super()._end_training(ctx)
        self._restore_bank_tables()

    def _restore_bank_tables(self) -> None:
        counts = self.code_counts_
        donors = counts >= self.min_donor_items
        if not bool(donors.any()):
            donors = counts >= 2
        # Bank indices of the donor items (the bank is class-sorted, so a partner of the same
        # class is one arithmetic step away).
        self.donor_items_ = torch.nonzero(donors[self.code_labels_]).flatten()
        if self.delta_neighbors is not None:
            self.neighbours_, self.n_neighbours_ = self._neighbour_table(self.delta_neighbors)

    def _draw_codes(self, labels: torch.Tensor, generator: Randomness) -> torch.Tensor:
        z = self.codes_[self._pick(labels, generator)]
        n_donors = len(self.donor_items_)
        if n_donors == 0:  # no class with two items: nothing to transfer
            return z
        n = len(labels)
        u = rand(generator, (n,), device=labels.device)
        a = self.donor_items_[(u * n_donors).long().clamp_max(n_donors - 1)]
        if self.delta_neighbors is not None:
            b = self._neighbour_of(a, generator)
        else:
            # Another item of a's class, uniformly: a shift of 1..count-1 within the class.
            cls = self.code_labels_[a]
            start, count = self.code_offsets_[cls], self.code_counts_[cls]
            v = rand(generator, (n,), device=labels.device)
            shift = 1 + (v * (count - 1)).long().clamp_max(count - 2)
            b = start + (a - start + shift) % count
        return z + self.delta_scale * (self.codes_[a] - self.codes_[b])
