"""Class-conditional denoising diffusion: one network for every class, guided at sampling."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from synthaug._params import Param, int_range, int_tuple, one_of, real_range
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

    ``dp=`` is not supported yet (refused at ``fit``).

    Attributes
    ----------
    classes_ : list of int
        Labels seen in training.
    architecture_ : str
        ``"unet"`` or ``"mlp"``, chosen from the sample shape.
    history_ : list of dict
        Per-epoch mean ``loss`` (the mean squared error of the prediction).

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

    _data_parallel = True
    keyed_sampling = True

    @property
    def architecture_(self) -> str:
        return "mlp" if unet_levels(self.sample_shape_) is None else "unet"

    def _check_param_combinations(self) -> None:
        name = type(self).__name__
        if self.dp is not None:
            raise InvalidParameterError(
                f"{name} does not train with dp yet; use 'cvae' or 'cgan' with dp= for a "
                f"private model"
            )
        super()._check_param_combinations()
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
        n, dev, gen = len(x), x.device, ctx.generator
        t = draw_rows(
            n, lambda m: torch.randint(0, self.train_timesteps, (m,), generator=gen, device=dev)
        )
        noise = draw_rows(n, lambda m: torch.randn((m, *x.shape[1:]), generator=gen, device=dev))
        drop = draw_rows(n, lambda m: torch.rand((m,), generator=gen, device=dev))
        y_in = torch.where(drop < self.label_dropout, self.n_classes_, y)
        x0 = x * 2 - 1  # [0, 1] data to the [-1, 1] the schedule is made for
        scheduler = ctx.state["scheduler"]
        xt = scheduler.add_noise(x0, noise, t)
        target = noise if self.prediction == "epsilon" else scheduler.get_velocity(x0, noise, t)
        with ctx.autocast():
            out = net(xt, t, y_in)
        loss = F.mse_loss(out.float(), target)
        ctx.update("net", loss, net.parameters())
        ctx.state["ema_t"] = self.modules_["ema"].update(
            ctx.state["ema_params"], self.ema_decay, ctx.state["ema_t"]
        )
        return {"loss": loss}

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
