"""DP-MERF: a generator trained to match a class-conditional mean embedding released once."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from synthaug._params import (
    Default,
    Param,
    Satisfies,
    int_range,
    int_tuple,
    none_or,
    real_range,
    settings_from,
)
from synthaug._utils import check_seed, resolve_device
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError, TrainingDivergedError
from synthaug.generators._registry import register_generator
from synthaug.generators._torch import TorchGenerator, TrainingContext
from synthaug.nn import (
    Architecture,
    ConvDecoder,
    CountRelease,
    MLPDecoder,
    RandomFourierFeatures,
    Randomness,
    Shuffled,
    Trainer,
    TrainingSettings,
    choose_architecture,
    class_feature_sums,
    composed_mu,
    gaussian_epsilon,
    gaussian_noise_multiplier,
    init_data_parallel,
    mean_embedding_loss,
    randn,
    release_embedding,
    seeded,
    tensor_digest,
)

# The name of this release mechanism and of its accountant in ``privacy_`` (a DP-SGD family's
# record has no "mechanism"): what ``synthaug info`` and the release card describe.
MECHANISM = "mean-embedding"
ACCOUNTANT = "analytic-gaussian"
# The default bandwidth per unit of sqrt(data dimension): 3 on 8x8 digits, 10.5 on 28x28
# images. Chosen on the digits development pool (non-private logistic-regression TSTR 0.861,
# 0.870, 0.861 at bandwidth 2, 3, 4; 0.12 at 1). A bandwidth read from the data (the median
# heuristic) would be a release of its own.
_BANDWIDTH_PER_ROOT_DIM = 0.375


def _even(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 2 and value % 2 == 0


class _GeneratorNet(nn.Module):
    """``(z, one-hot y) -> logits`` shaped like the samples: an MLP for feature vectors and
    small images, a DCGAN-style transposed-conv decoder for larger images."""

    def __init__(
        self,
        arch: Architecture,
        n_classes: int,
        latent_dim: int,
        hidden: tuple[int, ...],
        width: int,
    ) -> None:
        super().__init__()
        self.n_classes = n_classes
        if arch.kind == "mlp":
            self.decoder: nn.Module = MLPDecoder(latent_dim + n_classes, hidden, arch)
        else:
            self.decoder = ConvDecoder(latent_dim + n_classes, arch, width)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, F.one_hot(y, self.n_classes).to(z.dtype)], dim=1)
        return self.decoder(h, y)


class _Embedding(nn.Module):
    """The per-class feature sums as released (float64 buffer: saved, never trained)."""

    sums: torch.Tensor

    def __init__(self, n_classes: int, n_features: int) -> None:
        super().__init__()
        self.register_buffer("sums", torch.zeros(n_classes, n_features, dtype=torch.float64))


@register_generator("dp-merf")
class DPMERF(TorchGenerator):
    """DP-MERF (Harder, Adamczewski & Park, AISTATS 2021): match a released mean embedding.

    Fitting has two stages, and only the first reads the data:

    1. **Release.** Every sample ``x`` (flattened, in [0, 1]) is mapped to random Fourier
       features ``phi(x)`` of a Gaussian kernel of width ``bandwidth`` (Rahimi & Recht, NeurIPS
       2007; :class:`~synthaug.nn.RandomFourierFeatures`), ``n_features`` of them. The label
       enters as a one-hot vector in an outer product: the data's embedding is the matrix
       ``S = sum_i phi(x_i) e_{y_i}^T``, whose row ``c`` sums the features of class ``c``.
       With ``dp``, ``S`` is released once by the Gaussian mechanism (sensitivity derived
       below) and the class counts by the shared count release; the two are composed exactly.
    2. **Generator.** A conditional generator (``z``, one-hot ``y`` -> sample; an MLP for
       feature vectors and images under 16x16, a transposed-conv decoder above) is trained by
       the shared loop so that, per class, its samples' mean embedding points the way the
       released row ``S_c`` does (:func:`~synthaug.nn.mean_embedding_loss`: the squared MMD
       to the release, the class size fitted). It never sees a record, only the release (and
       the released class counts, which set the length of an epoch), so training costs no
       privacy (post-processing): any number of epochs, any batch size.

    Two changes from the paper, both for the small, imbalanced data this library is for.
    The paper divides ``S`` by the number of records and draws the generator's labels in the
    class proportions; its loss weighs a class's error by the square of its share of the data,
    which neglects rare classes. Here every class counts equally (the generator's batches hold
    every class equally often), and no count divides the release: a class's size is fitted
    along the generator's embedding (noise ``sigma / |g_c|``, 1.2 ``sigma`` on digits), where
    dividing by a released count would bring that release's noise (34 at epsilon 1, more than
    a class of the digits development pool holds).

    **Sensitivity** (add/remove-one adjacency, as the DP-SGD families and the count release
    use). Adding or removing one record ``(x, y)`` changes ``S`` by ``phi(x) e_y^T``, whose
    Frobenius norm is ``|phi(x)| |e_y| = 1 * 1``: ``|phi(x)|^2 = (2 / D) sum_j (cos^2 + sin^2)
    = (2 / D) (D / 2) = 1`` for every ``x``, by the features' normalisation, and a one-hot
    vector has norm 1. So ``S`` has L2 sensitivity exactly 1, and adding ``N(0, sigma^2)`` to
    each entry is the Gaussian mechanism with noise multiplier ``sigma``. (The paper releases
    the mean ``S / n`` under replace-one adjacency, sensitivity ``2 / n``.) ``max_grad_norm``
    of the budget is not used: no gradient of a record is ever taken.

    **Accounting.** A Gaussian release of sensitivity 1 and noise ``sigma`` is
    ``(1 / sigma)``-GDP; the embedding and count releases together are exactly
    ``mu = sqrt(1 / sigma^2 + 1 / sigma_c^2)``-GDP, and ``(epsilon, delta)``-DP for the
    analytic Gaussian mechanism's delta (Balle & Wang, ICML 2018). The count noise
    ``sigma_c`` is the shared one (the count release alone is ``(epsilon / 10, delta)``-DP);
    ``sigma`` is the smallest noise that keeps the composition within the target: the count
    release costs about 1% of ``mu^2`` (``sigma`` 3.753 instead of 3.731 at epsilon 1,
    delta 1e-5).

    Attributes
    ----------
    embedding_ : torch.Tensor
        Float64 ``(n_classes_, n_features)``: ``S``, the sums of the features per class the
        generator matched (released, with noise, under ``dp``; exact without). Rows of classes
        without records are zero.
    bandwidth_ : float
        The kernel width used.
    privacy_spent_ : tuple of float
        ``(epsilon, delta)`` of the embedding and count releases together; only with ``dp``.
    history_ : list of dict
        Per-epoch mean ``loss``: ``1 - cos^2`` between the released and generated class
        embeddings, in [0, 1], averaged over classes.

    Examples
    --------
    >>> import synthaug
    >>> from synthaug.data import load_digits
    >>> from synthaug.generators import DPMERF
    >>> model = DPMERF(epochs=2, dp=synthaug.DP(epsilon=1), verbose=False).fit(load_digits())
    >>> round(model.privacy_spent_[0], 3)
    1.0
    >>> images, labels = model.sample(4, y=7, seed=0)
    >>> tuple(images.shape)
    (4, 1, 8, 8)
    """

    n_features = Param(
        1000,
        Satisfies(_even, "an even integer >= 2", "int"),
        """Random Fourier features per class (cosine and sine of ``n_features / 2`` random
        frequencies). More approximate the kernel better; under ``dp`` each adds noise.""",
    )
    bandwidth = Param(
        None,
        none_or(real_range(0, None, low_open=True)),
        """Width of the Gaussian kernel the features approximate, in the units of the
        flattened samples (values in [0, 1]). None: ``0.375 sqrt(data dimension)`` (3 on 8x8
        images), a rule of the data's shape only (a width read from the data would need a
        privacy budget).""",
    )
    latent_dim = Param(16, int_range(1), "Size of the generator's noise vector.")
    hidden_dims = Param(
        (256, 256), int_tuple(1), "Hidden widths of the MLP generator; MLP layout only."
    )
    width = Param(
        16,
        int_range(1),
        """Channels of the last transposed-conv layer (doubling per halving, up to 8x); conv
        layout only.""",
    )
    epochs = Default(200)
    batch_size = Default(200)

    keyed_sampling = True

    @property
    def bandwidth_(self) -> float:
        if self.bandwidth is not None:
            return float(self.bandwidth)
        return _BANDWIDTH_PER_ROOT_DIM * math.sqrt(math.prod(self.sample_shape_))

    @property
    def embedding_(self) -> torch.Tensor:
        self._check_fitted()
        return self.modules_["embedding"].sums.detach().cpu().clone()

    def _build_modules(self) -> nn.ModuleDict:
        arch = choose_architecture(self.sample_shape_)
        net = _GeneratorNet(
            arch, self.n_classes_, self.latent_dim, tuple(self.hidden_dims), self.width
        )
        data_dim = math.prod(self.sample_shape_)
        return nn.ModuleDict(
            {
                "generator": net,
                "features": RandomFourierFeatures(data_dim, self.n_features),
                "embedding": _Embedding(self.n_classes_, self.n_features),
            }
        )

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": torch.optim.Adam(self.modules_["generator"].parameters(), lr=self.lr)}

    # -- fit: the release, then the generator ---------------------------------------------------
    def _fit(self, dataset: ImageDataset, counts: CountRelease | None = None) -> None:
        seed = self._start()
        features = self.modules_["features"]
        features.draw(self.bandwidth_, seed)
        sums = class_feature_sums(features, dataset.images, dataset.labels, self.n_classes_)
        if self.dp is not None:
            sums = self._release(sums, seed, counts, len(dataset))
        self.modules_["embedding"].sums.copy_(sums)
        # Past this line the records are not read again: the generator sees the release only.
        self._train_generator(seed)

    def _start(self) -> int:
        """Resolve the device and seed, and build the untrained networks (seeded)."""
        self.device_ = resolve_device(self.device)
        self._check_data_parallel(*init_data_parallel(self.device_))
        seed = check_seed(self.seed)
        with seeded(seed):
            self.modules_ = self._new_modules().to(self.device_)
        if self.compile:
            # In place, as for every family, so that files and checkpoints keep their keys.
            for layer in self.modules_["generator"].children():
                layer.compile()
        return seed

    def _release(
        self, sums: torch.Tensor, seed: int, given: CountRelease | None, n_records: int
    ) -> torch.Tensor:
        """The DP release of ``sums`` and of the class counts; sets ``privacy_``."""
        assert self.dp is not None
        counts = self._release_counts(seed, given)
        assert counts is not None
        # A given delta is checked against the true n (the error reaches the data owner only);
        # the default one is computed from the released total, so it reveals nothing more.
        delta = self.dp.resolve_delta(n_records)
        if self.dp.delta is None:
            delta = self.dp.resolve_delta(counts.total)
        try:
            sigma = gaussian_noise_multiplier(self.dp.epsilon, delta, (counts.noise_multiplier,))
        except ValueError:
            raise InvalidParameterError(
                f"DP: the class count release spends all of epsilon={self.dp.epsilon} with "
                f"delta={delta:.3g}, leaving nothing for the embedding; raise epsilon"
            ) from None
        # The Gaussian mechanism on S at L2 sensitivity 1: one record adds or removes
        # phi(x) e_y^T, of Frobenius norm |phi(x)| |e_y| = 1 (|phi(x)|^2 = (2/D) * (D/2) pairs
        # of cos^2 + sin^2 = 1; a one-hot vector has norm 1). See the class docstring.
        released = sums.clone()
        rows = torch.tensor(self.classes_)
        # Only the rows of classes with records: which classes have records is public.
        released[rows] = release_embedding(sums[rows], sigma, seed)
        epsilon = gaussian_epsilon(composed_mu(sigma, counts.noise_multiplier), delta)
        self.privacy_ = {
            "target": self.dp.to_dict(),
            "epsilon": epsilon,
            "delta": delta,
            "mechanism": MECHANISM,
            "noise_multiplier": sigma,
            "sensitivity": 1.0,
            # One release of all the records: no sampling, one step.
            "sample_rate": 1.0,
            "steps": 1,
            "accountant": ACCOUNTANT,
            "counts": counts.summary(),
        }
        self.privacy_spent_ = (epsilon, delta)
        return released

    def fit_embedding(self, model: DPMERF) -> DPMERF:
        """Train this generator on the embedding ``model`` released, without any data.

        ``model`` is a fitted DP-MERF (one loaded from its file, say). Its features, released
        embedding, class counts, classes, sample shape and privacy record are taken over; only
        the generator is trained (from this estimator's ``seed``, ``epochs``, ``lr``...). It
        is post-processing of the release, so the guarantee is ``model``'s, at no further
        cost: a way to train other generators on one private release.

        Raises
        ------
        InvalidParameterError
            ``model`` is not a fitted DP-MERF, or this estimator's ``n_features``,
            ``bandwidth`` or ``dp`` differ from ``model``'s (they describe the release).

        Examples
        --------
        >>> from synthaug.data import load_digits
        >>> from synthaug.generators import DPMERF
        >>> released = DPMERF(epochs=1, verbose=False).fit(load_digits())
        >>> longer = DPMERF(epochs=3, verbose=False).fit_embedding(released)
        >>> len(longer.history_)
        3
        """
        self.check_params()
        if not isinstance(model, DPMERF) or not model.is_fitted:
            what = "an unfitted DPMERF" if isinstance(model, DPMERF) else type(model).__name__
            raise InvalidParameterError(
                f"fit_embedding expects a fitted DPMERF (it trains on that model's released "
                f"embedding), got {what}; fit it first or load it with synthaug.load"
            )
        differ = [
            k for k in ("n_features", "bandwidth", "dp") if getattr(self, k) != getattr(model, k)
        ]
        if differ:
            wanted = ", ".join(f"{k}={getattr(model, k)!r}" for k in differ)
            raise InvalidParameterError(
                f"fit_embedding: {', '.join(differ)} describe the release, and differ from the "
                f"released model's; set {wanted}"
            )
        for name in ("n_classes_", "class_names_", "classes_", "class_counts_", "sample_shape_"):
            value = getattr(model, name)
            setattr(self, name, type(value)(value))
        self.history_ = []
        self._forget("modules_", "privacy_spent_", "privacy_", "fit_seconds_")
        started = time.perf_counter()
        try:
            seed = self._start()
            for name in ("features", "embedding"):
                self.modules_[name].load_state_dict(model.modules_[name].state_dict())
            if hasattr(model, "privacy_"):
                self.privacy_ = dict(model.privacy_)
                self.privacy_spent_ = model.privacy_spent_
            self._train_generator(seed)
        except BaseException:
            self._abort_fit()
            self._forget("privacy_spent_", "privacy_")
            raise
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _train_generator(self, seed: int) -> None:
        """Train the generator on ``modules_["embedding"]`` through the shared loop.

        An epoch is one pass over a pool of labels as large as the (released) training set,
        each class equally often; the generator makes a batch of samples for each batch of
        labels. Nothing here reads a record.
        """
        classes = torch.tensor(self.classes_, device=self.device_)
        total = max(sum(self.class_counts_.values()), len(self.classes_))
        pool = classes[torch.arange(total, device=self.device_) % len(classes)]
        target = self.embedding_.to(self.device_, torch.float32)
        trainer = Trainer(
            settings_from(TrainingSettings, self),
            device=self.device_,
            desc=type(self).__name__,
            # No batch statistics anywhere: a lone trailing label is a batch like any other.
            batches=Shuffled(skip_lone=False),
        )
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        optimizers = self._make_optimizers()
        ctx = TrainingContext(trainer, gen, optimizers, seed, self.grad_clip, pool, pool)
        ctx.state["target"] = target
        self.modules_.train()
        trainer.run(
            lambda xb, yb: self._train_step(xb, yb, ctx),
            pool,
            pool,
            gen,
            self.history_,
            modules=self.modules_,
            optimizers=optimizers,
            fingerprint=self._fingerprint(len(pool)),
        )
        # The loss is bounded (in [0, 1]) and read before each update, so a last step that
        # broke the weights shows in no loss: a probe batch (every class) shows it.
        net = self.modules_["generator"]
        with torch.no_grad():
            z = torch.randn((len(classes), self.latent_dim), generator=gen, device=self.device_)
            finite = bool(torch.isfinite(net(z, classes)).all())
        if not finite:
            raise TrainingDivergedError(
                f"{type(self).__name__}: training diverged: the generator's weights became "
                f"non-finite; lower the learning rate or clip the gradients (grad_clip)"
            )
        self.modules_.eval()

    def _train_step(
        self, x: torch.Tensor, y: torch.Tensor, ctx: TrainingContext
    ) -> dict[str, torch.Tensor]:
        net, features = self.modules_["generator"], self.modules_["features"]
        z = torch.randn((len(y), self.latent_dim), generator=ctx.generator, device=self.device_)
        with ctx.autocast():
            logits = net(z, y)
        # The features in float32: cosines of large projections lose their digits in bf16.
        phi = features(torch.sigmoid(logits.float()))
        loss = mean_embedding_loss(ctx.state["target"], phi, y)
        ctx.update("generator", loss, net.parameters())
        return {"loss": loss.detach()}

    def _fingerprint(self, n_samples: int) -> str:
        # A checkpoint resumes only onto the same release (a resumed run with another seed
        # would release again, spending the budget twice).
        release = tensor_digest({"sums": self.modules_["embedding"].sums})
        return f"{super()._fingerprint(n_samples)};release={release}"

    def _sample(self, labels: torch.Tensor, generator: Randomness) -> torch.Tensor:
        z = randn(generator, (len(labels), self.latent_dim), device=self.device_)
        net = self.modules_["generator"]
        return self._in_sample_batches(lambda z, y: torch.sigmoid(net(z, y)), z, labels)
