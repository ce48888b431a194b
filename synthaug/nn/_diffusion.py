"""Denoising networks and deterministic samplers for class-conditional diffusion.

The networks predict, from a noised sample ``x_t``, its time step ``t`` and its class ``y``,
the noise or the velocity (Salimans & Ho, ICLR 2022) that made it: MONAI's
``DiffusionModelUNet`` for images of 8x8 pixels and more (optional extra ``monai``), a
TabDDPM-style MLP (Kotelnikov et al., ICML 2023) for feature vectors and smaller images.
Label ``n_classes`` is the "no class" token classifier-free guidance (Ho & Salimans, 2022)
trains and samples with.

The samplers integrate the probability-flow ODE from pure noise to data over a grid of time
steps, given a function that returns the (clipped) clean-sample prediction ``x0(x_t, t)``;
both are written against the cumulative products of the noise schedule's alphas: DDIM (Song,
Meng & Ermon, ICLR 2021; eta = 0) and DPM-Solver++(2M) (Lu et al., "DPM-Solver++: Fast Solver
for Guided Sampling of Diffusion Probabilistic Models", 2022, algorithm 2). Neither draws a
random number, so a sample is a function of its starting noise alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from synthaug._utils import import_optional
from synthaug.nn._networks import mlp

# Images at least this many pixels a side go through the U-Net; smaller ones, flattened,
# through the MLP.
UNET_MIN_SIDE = 8
_MAX_LEVELS = 4
_CHANNEL_MULT = (1, 2, 2, 4)
# Self-attention only at levels this small or smaller (and never at full resolution): at
# larger grids its cost grows with the square of the pixels and buys little on small data.
_ATTENTION_SIDE = 16
_EMBED_DIM = 128

DIFFUSION_PREDICTIONS = ("epsilon", "v")
NOISE_SCHEDULES = ("cosine", "linear_beta", "scaled_linear_beta")

# x0(x_t, t) for a batch at time step t (an int), clipped to the data range [-1, 1].
Denoise = Callable[[torch.Tensor, int], torch.Tensor]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of time steps (Ho, Jain & Abbeel, NeurIPS 2020; as in MONAI)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class MLPDenoiser(nn.Module):
    """TabDDPM's denoiser (Kotelnikov et al., ICML 2023) for flat samples.

    The sample is projected to ``embed_dim``, the time step's embedding and the class's
    (SiLU-activated) embedding are added, and an MLP of ``hidden`` widths maps the sum to the
    prediction. Samples of any shape are flattened and the output shaped like them.
    """

    def __init__(
        self, data_dim: int, n_classes: int, hidden: Sequence[int], embed_dim: int = _EMBED_DIM
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.proj = nn.Linear(data_dim, embed_dim)
        self.time_embed = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.class_embed = nn.Embedding(n_classes + 1, embed_dim)
        self.mlp = mlp(embed_dim, tuple(hidden), data_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.embed_dim).to(x.dtype))
        emb = emb + nn.functional.silu(self.class_embed(y))
        return self.mlp(self.proj(x.flatten(1)) + emb).reshape(x.shape)


class UNetDenoiser(nn.Module):
    """MONAI's ``DiffusionModelUNet`` with class embeddings, called as ``net(x, t, y)``.

    Laid out by :func:`unet_levels`: one level per halving down to about 8 pixels (at most
    four), channels ``width * (1, 2, 2, 4)``, self-attention at the levels of 16x16 and below
    but the first, and MONAI's middle block (with attention) at the lowest level.
    """

    def __init__(
        self, sample_shape: Sequence[int], n_classes: int, width: int, res_blocks: int
    ) -> None:
        super().__init__()
        nets = import_optional("monai.networks.nets", "monai")
        # MONAI builds the attention blocks with einops and, without it, fails only then with
        # an error that names neither package to install; the extra installs both.
        import_optional("einops", "monai")
        sides = unet_levels(sample_shape)
        chans = tuple(width * _CHANNEL_MULT[i] for i in range(len(sides)))
        # Groups that divide every level's channels (MONAI's default, 32, needs width % 32 == 0).
        groups = next(g for g in (8, 4, 2, 1) if width % g == 0)
        self.unet = nets.DiffusionModelUNet(
            spatial_dims=2,
            in_channels=int(sample_shape[0]),
            out_channels=int(sample_shape[0]),
            num_res_blocks=res_blocks,
            channels=chans,
            attention_levels=tuple(i > 0 and s <= _ATTENTION_SIDE for i, s in enumerate(sides)),
            norm_num_groups=groups,
            num_head_channels=chans,  # one head per attention layer
            num_class_embeds=n_classes + 1,
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.unet(x, timesteps=t, class_labels=y)


def unet_levels(sample_shape: Sequence[int]) -> list[int] | None:
    """The smaller side of each U-Net level for images of ``sample_shape``, or None when the
    samples go through the MLP (feature vectors, images under 8 pixels a side).

    Examples
    --------
    >>> unet_levels((1, 8, 8)), unet_levels((3, 64, 64)), unet_levels((1, 28, 28))
    ([8, 4], [64, 32, 16, 8], [28, 14, 7])
    >>> unet_levels((30,)) is None, unet_levels((1, 4, 4)) is None
    (True, True)
    """
    if len(sample_shape) != 3 or min(sample_shape[1:]) < UNET_MIN_SIDE:
        return None
    h, w = int(sample_shape[1]), int(sample_shape[2])
    sides = [min(h, w)]
    # Halve while both sides are even, down to about 8 pixels (8x8 images halve once, to 4).
    while (
        len(sides) < _MAX_LEVELS
        and h % 2 == 0
        and w % 2 == 0
        and (sides[-1] > UNET_MIN_SIDE or len(sides) == 1)
    ):
        h, w = h // 2, w // 2
        sides.append(min(h, w))
    return sides


def make_denoiser(
    sample_shape: Sequence[int],
    n_classes: int,
    *,
    width: int,
    res_blocks: int,
    hidden: Sequence[int],
) -> nn.Module:
    """The U-Net for images of 8x8 pixels and more, else the MLP (see the module's docs)."""
    if unet_levels(sample_shape) is None:
        return MLPDenoiser(math.prod(sample_shape), n_classes, hidden)
    return UNetDenoiser(sample_shape, n_classes, width, res_blocks)


def guided_output(
    net: nn.Module, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, null: int, guidance: float
) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans, 2022): ``(1 + w) f(x, t, y) - w f(x, t, null)``.

    The conditional and the unconditional pass run as one forward of twice the batch (each
    row's output depends only on its row: the networks normalise per sample). With
    ``guidance == 0`` only the conditional pass runs.
    """
    if guidance == 0:
        return net(x, t, y)
    both = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, null)]))
    cond, uncond = both.chunk(2)
    return cond + guidance * (cond - uncond)


def clean_prediction(
    output: torch.Tensor, x: torch.Tensor, alpha_bar: float, prediction: str
) -> torch.Tensor:
    """``x0`` from a network's noise (``"epsilon"``) or velocity (``"v"``) prediction at a
    step whose cumulative alpha is ``alpha_bar``, clipped to the data range [-1, 1]."""
    a, s = math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)
    x0 = (x - s * output) / a if prediction == "epsilon" else a * x - s * output
    return x0.clamp(-1.0, 1.0)


def ddim(denoise: Denoise, x: torch.Tensor, grid: Sequence[tuple[int, float]]) -> torch.Tensor:
    """Deterministic DDIM (Song, Meng & Ermon, ICLR 2021, eta = 0) from ``x`` over ``grid``.

    ``grid`` is ``[(t, alpha_bar_t), ...]`` from the noisiest step down, then the final
    ``(-1, 1.0)`` (clean data). Each step keeps the noise the clipped ``x0`` implies:
    ``x_s = a_s x0 + s_s (x_t - a_t x0) / s_t``, DPM-Solver++'s first-order step.
    """
    for (t, ab_t), (_, ab_s) in zip(grid[:-1], grid[1:], strict=True):
        x0 = denoise(x, t)
        a_t, s_t = math.sqrt(ab_t), math.sqrt(1.0 - ab_t)
        a_s, s_s = math.sqrt(ab_s), math.sqrt(1.0 - ab_s)
        x = a_s * x0 + (s_s / s_t) * (x - a_t * x0)
    return x


def dpm_solver_pp_2m(
    denoise: Denoise, x: torch.Tensor, grid: Sequence[tuple[int, float]]
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, algorithm 2) from ``x`` over ``grid`` (as :func:`ddim`).

    A multistep second-order solver in ``lambda = log(a / s)``: it reuses the previous step's
    ``x0`` to extrapolate, so it costs one network evaluation per step like DDIM; the first
    step is first order, and so is the last, to ``s = 0`` (where the step size is infinite).
    """
    x0_prev, h_prev = None, None
    for (t, ab_t), (_, ab_s) in zip(grid[:-1], grid[1:], strict=True):
        x0 = denoise(x, t)
        if ab_s >= 1.0:  # the final step, to clean data
            return x0
        a_t, s_t = math.sqrt(ab_t), math.sqrt(1.0 - ab_t)
        a_s, s_s = math.sqrt(ab_s), math.sqrt(1.0 - ab_s)
        h = math.log(a_s / s_s) - math.log(a_t / s_t)
        d = x0
        if x0_prev is not None:
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
        x = (s_s / s_t) * x - a_s * math.expm1(-h) * d
        x0_prev, h_prev = x0, h
    return x


Sampler = Callable[[Denoise, torch.Tensor, Sequence[tuple[int, float]]], torch.Tensor]
DIFFUSION_SAMPLERS: dict[str, Sampler] = {"ddim": ddim, "dpm++": dpm_solver_pp_2m}


def noise_scheduler(schedule: str, train_timesteps: int) -> object:
    """MONAI's ``DDIMScheduler`` for ``schedule``: the alphas, the noising (``add_noise``,
    ``get_velocity``) and the sampling grid (``set_timesteps``)."""
    schedulers = import_optional("monai.networks.schedulers", "monai")
    return schedulers.DDIMScheduler(num_train_timesteps=train_timesteps, schedule=schedule)


def sampling_grid(
    scheduler: object, steps: int, start: int | None = None
) -> list[tuple[int, float]]:
    """``[(t, alpha_bar_t), ...]`` of ``steps`` evenly spaced time steps from ``start``
    (default ``T - 1``, pure noise) down, the last about ``(start + 1) / steps`` above 0, then
    ``(-1, 1.0)`` (clean data): the steps both samplers take, with ``scheduler``'s alphas. A
    ``start`` below ``T - 1`` denoises a partly noised sample (SDEdit, AnoDDPM).

    This is the "trailing" spacing (Lin et al., "Common Diffusion Noise Schedules and Sample
    Steps are Flawed", WACV 2024). MONAI's ``DDIMScheduler.set_timesteps`` spaces its grid
    down to ``t = 0`` and spends the last evaluation there, and the step into it is so long
    in ``lambda`` that DPM-Solver++'s extrapolation overshoots: on Gaussian data its error at
    25 steps was 8 times that on this grid (``tests/test_diffusion.py``).
    """
    alphas = scheduler.alphas_cumprod.double().cpu()  # type: ignore[attr-defined]
    total = len(alphas) if start is None else start + 1
    ts = (np.round(np.arange(total, 0, -total / steps)) - 1).astype(np.int64)[:steps]
    return [(int(t), float(alphas[t])) for t in ts] + [(-1, 1.0)]
