"""Class-conditional denoising diffusion: one network for every class, guided at sampling."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from synthaug._params import Param, int_range, int_tuple, none_or, one_of, real_range
from synthaug.errors import InvalidParameterError, ShapeMismatchError
from synthaug.generators._registry import register_generator
from synthaug.generators._torch import TorchGenerator, TrainingContext
from synthaug.nn import (
    DIFFUSION_PREDICTIONS,
    DIFFUSION_SAMPLERS,
    EMA,
    NOISE_SCHEDULES,
    Randomness,
    batched,
    clean_prediction,
    draw_rows,
    eval_mode,
    guided_output,
    make_denoiser,
    noise_scheduler,
    private_step,
    randn,
    sampling_grid,
    unet_levels,
)


@register_generator("ddpm")
class DDPM(TorchGenerator):
    """Class-conditional denoising diffusion (Ho, Jain & Abbeel, NeurIPS 2020).

    A network learns to predict the noise (``prediction="epsilon"``) or the velocity
    (``"v"``, Salimans & Ho, ICLR 2022) that took a training sample to a noised version at a
    random time step, given that step and the class; sampling integrates the
    probability-flow ODE from Gaussian noise to data with DDIM (Song, Meng & Ermon, ICLR
    2021) or DPM-Solver++(2M) (Lu et al. 2022) in ``sample_steps`` network evaluations.
    One network serves every class, so a rare class borrows what the denoiser learnt on the
    plentiful ones.

    - **Networks**: images of 8x8 pixels and more go through MONAI's ``DiffusionModelUNet``
      with class embeddings (``pip install 'synthaug[monai]'``), sized from the image
      (levels down to about 8 pixels, channels ``width * (1, 2, 2, 4)``, attention only at
      16x16 and below); feature vectors and smaller images through a TabDDPM-style MLP
      (Kotelnikov et al., ICML 2023). The noise schedule and the noising come from MONAI's
      schedulers too.
    - **Classifier-free guidance** (Ho & Salimans, 2022): the label is replaced by a "no
      class" token for ``label_dropout`` of the training rows; sampling mixes the
      conditional and unconditional predictions as ``(1 + guidance) c - guidance u``, both
      passes in one forward.
    - **EMA**: samples come from an exponential moving average of the weights (decay
      ``ema_decay``, warmed up as ``(1 + t) / (10 + t)``).
    - Sampling draws only the starting noise (keyed: a sample depends on its seed and key,
      not on what it is sampled with); the solvers are deterministic. Predicted clean
      samples are clipped to the data range at every step.

    - **Differential privacy** (``dp=``): DP-SGD on the network through the machinery every
      DP-SGD family uses (Opacus' per-sample gradients, Poisson batches, the RDP accountant
      composed with the noisy class-count release), the way DPDM trains (Dockhorn, Cao,
      Vahdat & Kreis, "Differentially Private Diffusion Models", TMLR 2023): each example is
      noised ``noise_multiplicity`` times at independent time steps, and the mean of those
      losses is the example's loss, whose gradient is clipped once. Large logical batches
      go through the network ``max_physical_batch`` examples at a time. Every layer of the
      U-Net (Conv2d, GroupNorm, the attention and embedding Linear layers, the class
      Embedding) and of the MLP has Opacus per-sample gradients, so attention stays on.
      Classifier-free guidance trains as without DP (label dropout per noised row), and the
      EMA of the private weights, a post-processing, is what samples.

    Attributes
    ----------
    classes_ : list of int
        Labels seen in training.
    architecture_ : str
        ``"unet"`` or ``"mlp"``, chosen from the sample shape.
    history_ : list of dict
        Per-epoch mean ``loss`` (the mean squared error of the prediction).
    privacy_spent_ : tuple of float
        ``(epsilon, delta)`` spent by DP-SGD and the class-count release together, from the
        RDP accountant; only when trained with ``dp``.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.generators import DDPM
    >>> model = DDPM(epochs=1, width=8, sample_steps=5, verbose=False).fit(load_digits())
    >>> images, labels = model.sample(4, y=3, seed=0)
    >>> tuple(images.shape), labels.tolist()
    ((4, 1, 8, 8), [3, 3, 3, 3])
    """

    prediction = Param(
        "v",
        one_of(*DIFFUSION_PREDICTIONS),
        """What the network predicts: the noise (``"epsilon"``) or the velocity ``a eps - s x0``
        (``"v"``), which stays well scaled at the noisiest steps.""",
    )
    schedule = Param(
        "cosine",
        one_of(*NOISE_SCHEDULES),
        """MONAI's noise schedule; the cosine one (Nichol & Dhariwal, ICML 2021) destroys small
        images' information more gradually than the linear ones.""",
    )
    train_timesteps = Param(1000, int_range(2), "Time steps of the noising process.")
    sampler = Param(
        "dpm++",
        one_of(*DIFFUSION_SAMPLERS),
        """``"ddim"`` (first order) or ``"dpm++"`` (DPM-Solver++(2M), second order at the same
        cost per step).""",
    )
    sample_steps = Param(
        25, int_range(1), "Network evaluations per sample (at most ``train_timesteps``)."
    )
    guidance = Param(
        1.0,
        real_range(0),
        """Classifier-free guidance weight ``w``: 0 samples the conditional model alone (one
        pass per step); more trades variety for class fidelity (two passes per step).""",
    )
    label_dropout = Param(
        0.1,
        real_range(0, 1, high_open=True),
        """Share of training rows whose label is replaced by the "no class" token, which
        trains the unconditional model guidance needs.""",
    )
    ema_decay = Param(
        0.999,
        real_range(0, 1, high_open=True),
        "Decay of the weight average samples come from; 0 samples from the last weights.",
    )
    width = Param(
        32, int_range(1), "Channels of the U-Net's first level (doubling below it); images only."
    )
    res_blocks = Param(1, int_range(1), "Residual blocks per U-Net level; images only.")
    hidden_dims = Param(
        (256, 256, 256),
        int_tuple(1),
        "Hidden widths of the MLP denoiser (feature vectors and images under 8x8).",
    )

    noise_multiplicity = Param(
        1,
        int_range(1),
        """Noised copies of each training example per step (DPDM's noise multiplicity): each
        at its own time step, noise and label dropout, their losses averaged into the
        example's loss. Under ``dp`` this lowers the variance of the clipped gradient at no
        privacy cost; it costs ``noise_multiplicity`` times the compute per step.""",
    )
    max_physical_batch = Param(
        None,
        none_or(int_range(1)),
        """Under ``dp``, the most examples per forward pass: a larger Poisson batch is run in
        parts whose clipped gradients are summed before the one noise draw (same result, the
        memory of one part). None: the whole batch at once. Only with ``dp``.""",
    )

    _data_parallel = True
    keyed_sampling = True
    _dp_modules = ("net",)

    @property
    def architecture_(self) -> str:
        return "mlp" if unet_levels(self.sample_shape_) is None else "unet"

    def _check_param_combinations(self) -> None:
        name = type(self).__name__
        super()._check_param_combinations()
        if self.max_physical_batch is not None and self.dp is None:
            raise InvalidParameterError(
                f"{name}: max_physical_batch={self.max_physical_batch} splits DP-SGD's "
                f"Poisson batches and applies only with dp=; set it to None, or lower "
                f"batch_size to use less memory"
            )
        if self.sample_steps > self.train_timesteps:
            raise InvalidParameterError(
                f"{name}: sample_steps={self.sample_steps} exceeds train_timesteps="
                f"{self.train_timesteps}; the sampler cannot take more steps than the noising "
                f"process has"
            )
        if self.guidance > 0 and self.label_dropout == 0:
            raise InvalidParameterError(
                f"{name}: guidance={self.guidance} needs label_dropout > 0, which trains the "
                f"unconditional model guidance subtracts; set label_dropout (0.1) or guidance=0"
            )

    # -- networks -----------------------------------------------------------------------------
    def _build_modules(self) -> nn.ModuleDict:
        net = make_denoiser(
            self.sample_shape_,
            self.n_classes_,
            width=self.width,
            res_blocks=self.res_blocks,
            hidden=tuple(self.hidden_dims),
        )
        return nn.ModuleDict({"net": net, "ema": EMA(net)})

    def _scheduler(self) -> Any:
        """MONAI's scheduler for the parameters (built once per set of them; it holds no
        learned state, so files do not store it)."""
        key = (self.schedule, self.train_timesteps)
        cached = self.__dict__.get("_scheduler_cache")
        if cached is None or cached[0] != key:
            cached = (key, noise_scheduler(*key))
            self.__dict__["_scheduler_cache"] = cached
        return cached[1]

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": torch.optim.Adam(self.modules_["net"].parameters(), lr=self.lr)}

    # -- training -----------------------------------------------------------------------------
    def _start_training(self, ctx: TrainingContext) -> None:
        net, ema = self.modules_["net"], self.modules_["ema"]
        ctx.state.update(
            scheduler=self._scheduler(),
            ema_params=(list(ema.net.parameters()), list(net.parameters())),
            ema_t=None,
        )

    def _train_step(
        self, x: torch.Tensor, y: torch.Tensor, ctx: TrainingContext
    ) -> dict[str, torch.Tensor]:
        net = self.modules_["net"]
        n, k, dev, gen = len(x), self.noise_multiplicity, x.device, ctx.generator
        # k noised rows per example, example-major (example i's rows are i*k .. i*k + k-1);
        # drawn per example, so a data-parallel rank draws its examples' rows.
        t = draw_rows(
            n,
            lambda m: torch.randint(0, self.train_timesteps, (m, k), generator=gen, device=dev),
        ).flatten()
        noise = draw_rows(
            n, lambda m: torch.randn((m, k, *x.shape[1:]), generator=gen, device=dev)
        ).flatten(0, 1)
        drop = draw_rows(n, lambda m: torch.rand((m, k), generator=gen, device=dev)).flatten()
        y_in = torch.where(drop < self.label_dropout, self.n_classes_, y.repeat_interleave(k))
        x0 = (x * 2 - 1).repeat_interleave(k, dim=0)  # [0, 1] data to the schedule's [-1, 1]
        scheduler = ctx.state["scheduler"]
        xt = scheduler.add_noise(x0, noise, t)
        target = noise if self.prediction == "epsilon" else scheduler.get_velocity(x0, noise, t)
        if ctx.private is None:
            with ctx.autocast():
                out = net(xt, t, y_in)
            loss = F.mse_loss(out.float(), target)
            ctx.update("net", loss, net.parameters())
        else:
            loss = self._private_update(net, xt, t, y_in, target, ctx)
        ctx.state["ema_t"] = self.modules_["ema"].update(
            ctx.state["ema_params"], self.ema_decay, ctx.state["ema_t"]
        )
        return {"loss": loss}

    def _private_update(
        self,
        net: nn.Module,
        xt: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor,
        ctx: TrainingContext,
    ) -> torch.Tensor:
        """One DP-SGD step on the noised rows (``noise_multiplicity`` per example); returns
        the mean loss over them (0 for an empty Poisson batch, which the loop ignores).

        The ``k`` rows of one example are averaged into one loss before its gradient is
        clipped, so the example still contributes one gradient of norm at most C: the
        sensitivity, hence the noise and the accounting, are those of plain DP-SGD whatever
        ``k`` is (Dockhorn et al., "Differentially Private Diffusion Models", TMLR 2023,
        section 3.2). Averaging over more noise levels only lowers the variance of the
        example's gradient before clipping.
        """
        k = self.noise_multiplicity
        n = len(xt) // k
        total = torch.zeros((), device=xt.device)

        def loss_of(start: int, stop: int) -> torch.Tensor:
            nonlocal total
            rows = slice(start * k, stop * k)
            loss = F.mse_loss(net(xt[rows], t[rows], y[rows]), target[rows])
            total = total + loss.detach() * (stop - start)
            return loss

        private_step(
            ctx.optimizers["net"],
            n,
            loss_of,
            rows_per_example=k,
            max_physical_batch=self.max_physical_batch,
        )
        return total / max(n, 1)

    # -- sampling -----------------------------------------------------------------------------
    def _sample(self, labels: torch.Tensor, generator: Randomness) -> torch.Tensor:
        noise = randn(generator, (len(labels), *self.sample_shape_), device=self.device_)
        return self._in_sample_batches(self._denoise, noise, labels)

    def _denoise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Samples in [0, 1] from starting noise ``x`` for labels ``y`` (no randomness)."""
        return (self.solve(x, y) + 1) / 2

    def solve(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        sampler: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        start: int | None = None,
    ) -> torch.Tensor:
        """Integrate the probability-flow ODE from noise ``x`` to samples in [-1, 1].

        Parameters
        ----------
        x : torch.Tensor
            Starting noise ``(N, *sample_shape_)`` on the model's device.
        y : torch.Tensor
            ``(N,)`` labels seen in training.
        sampler, steps, guidance : optional
            Override ``sampler``, ``sample_steps`` and ``guidance`` for this call (to compare
            solvers on one model, say).
        start : int, optional
            The time step ``x`` is noised to (default ``train_timesteps - 1``: pure noise);
            :meth:`reconstruct` starts lower.

        Returns
        -------
        torch.Tensor
            The samples, in the [-1, 1] data range the model works in.
        """
        self._check_fitted()
        net = self.modules_["ema"].net
        w = self.guidance if guidance is None else guidance
        prediction, null = self.prediction, self.n_classes_
        grid = sampling_grid(
            self._scheduler(), self.sample_steps if steps is None else steps, start
        )
        alpha = dict(grid)

        def denoise(xt: torch.Tensor, t: int) -> torch.Tensor:
            ts = torch.full((len(xt),), t, dtype=torch.int64, device=xt.device)
            out = guided_output(net, xt, ts, y, null, w)
            return clean_prediction(out.float(), xt, alpha[t], prediction)

        return DIFFUSION_SAMPLERS[self.sampler if sampler is None else sampler](denoise, x, grid)

    def reconstruct(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        start: int,
        noise: torch.Tensor,
        steps: int,
    ) -> torch.Tensor:
        """Noise ``images`` to time step ``start`` and denoise them back (SDEdit, Meng et al.,
        ICLR 2022; AnoDDPM, Wyatt et al., CVPR Workshops 2022).

        The denoiser restores what it has learnt to expect, so a region unlike the training
        data comes back changed: what the diffusion anomaly detector scores.

        Parameters
        ----------
        images : torch.Tensor
            ``(N, *sample_shape_)`` values in [0, 1], on any device.
        labels : torch.Tensor
            ``(N,)`` labels seen in training.
        start : int
            The time step to noise to, in ``[0, train_timesteps)``.
        noise : torch.Tensor
            Standard normal noise shaped like ``images`` (the caller's randomness: the same
            noise for every image lets their scores differ by content alone).
        steps : int
            Solver steps from ``start`` down (at most ``start + 1``).

        Returns
        -------
        torch.Tensor
            Float32 reconstructions on the CPU, same shape as ``images``, values in [0, 1].
        """
        images, labels = self._check_images(images, labels)
        if tuple(noise.shape) != tuple(images.shape):
            raise ShapeMismatchError(
                f"noise must be shaped like the images {tuple(images.shape)}, got "
                f"{tuple(noise.shape)}"
            )
        if not 0 <= start < self.train_timesteps or not 1 <= steps <= start + 1:
            raise InvalidParameterError(
                f"start must be in [0, {self.train_timesteps}) and steps in [1, start + 1], got "
                f"start={start}, steps={steps}"
            )
        if len(images) == 0:
            return images.new_zeros(images.shape)
        scheduler = self._scheduler()
        t = torch.tensor([start])

        def restore(x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
            xt = scheduler.add_noise(x * 2 - 1, eps, t.to(x.device))
            return ((self.solve(xt, y, steps=steps, start=start) + 1) / 2).float().cpu()

        net = self.modules_["ema"].net
        with eval_mode(net), torch.no_grad():
            return batched(restore, images, labels, noise, network=net, device=self.device_)
