"""Building blocks for the generator networks, and the choice of architecture from the data shape.

Flat feature vectors ``(D,)`` and tiny images (either side under 16 pixels, or sides that do not
halve down to a small grid) go through multilayer perceptrons; images from 16x16 up (1 or 3
channels, non-square when both sides halve the same number of times) go through convolutional
encoders/decoders in the DCGAN pattern (Radford, Metz & Chintala, ICLR 2016): stride-2 4x4
convolutions down, stride-2 4x4 transposed convolutions up, channels doubling as the resolution
halves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

# Convolutional stacks stop halving at this side length (the smaller side of the lowest grid).
_MIN_GRID = 4
_MIN_CONV_SIDE = 16
_MAX_DOWNSAMPLINGS = 5


@dataclass(frozen=True)
class Architecture:
    """How a network family is laid out for one sample shape.

    Attributes
    ----------
    kind : str
        ``"mlp"`` or ``"conv"``.
    sample_shape : tuple of int
        ``(D,)`` or ``(C, H, W)``.
    n_down : int
        Number of stride-2 stages (0 for MLPs).
    grid : tuple of int
        ``(h, w)`` of the lowest-resolution feature map (``(1, 1)`` for MLPs).
    """

    kind: str
    sample_shape: tuple[int, ...]
    n_down: int = 0
    grid: tuple[int, int] = (1, 1)

    @property
    def data_dim(self) -> int:
        return math.prod(self.sample_shape)


def choose_architecture(sample_shape: Sequence[int]) -> Architecture:
    """Pick an MLP or a convolutional layout for samples of ``sample_shape``.

    Examples
    --------
    >>> choose_architecture((30,)).kind, choose_architecture((1, 8, 8)).kind
    ('mlp', 'mlp')
    >>> arch = choose_architecture((3, 32, 64))
    >>> arch.kind, arch.n_down, arch.grid
    ('conv', 3, (4, 8))
    """
    shape = tuple(int(s) for s in sample_shape)
    if len(shape) != 3 or min(shape[1:]) < _MIN_CONV_SIDE:
        return Architecture("mlp", shape)
    h, w = shape[1:]
    n_down = 0
    while min(h, w) > _MIN_GRID and h % 2 == 0 and w % 2 == 0 and n_down < _MAX_DOWNSAMPLINGS:
        h, w, n_down = h // 2, w // 2, n_down + 1
    if n_down < 2:  # sides that barely halve (e.g. 17x17): a conv stack would gain nothing
        return Architecture("mlp", shape)
    return Architecture("conv", shape, n_down, (h, w))


def channels(level: int, width: int) -> int:
    """Channels of a conv stack at ``level`` halvings below full resolution."""
    return width * 2 ** min(level, 3)


def mlp(
    in_dim: int, hidden: Sequence[int], out_dim: int, *, activation: type[nn.Module] = nn.SiLU
) -> nn.Sequential:
    """A plain multilayer perceptron: Linear → activation for each hidden width, then Linear."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), activation()]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def conv_encoder(
    arch: Architecture,
    width: int,
    *,
    spectral: bool = False,
    activation: type[nn.Module] = nn.SiLU,
) -> tuple[nn.Sequential, int]:
    """Stride-2 convolutions down to ``arch.grid``, flattened; returns the stack and its width."""
    wrap = spectral_norm if spectral else (lambda m: m)
    act = (lambda: nn.LeakyReLU(0.2)) if activation is nn.LeakyReLU else activation
    layers: list[nn.Module] = [wrap(nn.Conv2d(arch.sample_shape[0], width, 3, 1, 1)), act()]
    for level in range(arch.n_down):
        layers += [wrap(nn.Conv2d(channels(level, width), channels(level + 1, width), 4, 2, 1))]
        layers.append(act())
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), channels(arch.n_down, width) * math.prod(arch.grid)


class ConvDecoder(nn.Module):
    """A linear map onto ``arch.grid``, then stride-2 transposed convolutions up to full size.

    ``norm`` builds the normalisation before each activation from a channel count; it may be a
    label-conditional layer (its ``forward`` then takes ``(x, y)``).
    """

    def __init__(
        self,
        in_dim: int,
        arch: Architecture,
        width: int,
        *,
        norm: type[nn.Module] | None = None,
        n_classes: int = 1,
    ) -> None:
        super().__init__()
        self.arch = arch
        top = channels(arch.n_down, width)
        self.fc = nn.Linear(in_dim, top * math.prod(arch.grid))
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(channels(level + 1, width), channels(level, width), 4, 2, 1)
            for level in reversed(range(arch.n_down))
        )
        self.norms = nn.ModuleList(
            _make_norm(norm, channels(level, width), n_classes)
            for level in [arch.n_down, *reversed(range(arch.n_down))]
        )
        self.out = nn.Conv2d(width, arch.sample_shape[0], 3, 1, 1)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = self.fc(h).reshape(len(h), -1, *self.arch.grid)
        x = F.silu(_apply_norm(self.norms[0], x, y))
        for up, norm in zip(self.ups, self.norms[1:], strict=True):
            x = F.silu(_apply_norm(norm, up(x), y))
        return self.out(x)


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose gain and bias are looked up per class.

    Conditional batch normalisation (de Vries et al., NeurIPS 2017; Dumoulin, Shlens & Kudlur,
    ICLR 2017), the generator conditioning of the projection-discriminator GAN (Miyato & Koyama,
    ICLR 2018). With one class it is ordinary batch norm.
    """

    def __init__(self, num_features: int, n_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(num_features, affine=False)
        self.gain = nn.Embedding(n_classes, num_features)
        self.bias = nn.Embedding(n_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # BatchNorm1d normalises (N, C) and (N, C, L); images are viewed as (N, C, H*W).
        out = self.bn(x.flatten(2) if x.dim() == 4 else x).reshape(x.shape)
        view = (len(x), -1) + (1,) * (x.dim() - 2)
        return out * self.gain(y).reshape(view) + self.bias(y).reshape(view)


def _make_norm(norm: type[nn.Module] | None, width: int, n_classes: int) -> nn.Module:
    if norm is None:
        return nn.Identity()
    if norm is ConditionalBatchNorm:
        return ConditionalBatchNorm(width, n_classes)
    return norm(width)


def _apply_norm(norm: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return norm(x, y) if isinstance(norm, ConditionalBatchNorm) else norm(x)


class MLPDecoder(nn.Module):
    """Linear → (conditional) norm → SiLU for each width, then a linear map to the data."""

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        arch: Architecture,
        *,
        norm: type[nn.Module] | None = None,
        n_classes: int = 1,
    ) -> None:
        super().__init__()
        self.arch = arch
        dims = [in_dim, *hidden]
        self.linears = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.norms = nn.ModuleList(_make_norm(norm, h, n_classes) for h in hidden)
        self.out = nn.Linear(dims[-1], arch.data_dim)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for linear, norm in zip(self.linears, self.norms, strict=True):
            h = F.silu(_apply_norm(norm, linear(h), y))
        return self.out(h).reshape(len(h), *self.arch.sample_shape)


class SmallCNN(nn.Module):
    """A small image classifier whose penultimate layer is an embedding.

    Two 3x3 convolutions (32 and 64 channels), adaptive average pooling to 4x4, a
    ``embedding_dim``-wide ReLU layer (``body``: the embedding) and a linear ``head``. It is
    the downstream classifier of the benchmarks (:class:`~synthaug.metrics.CNNClassifier`) and
    the embedding of the fidelity metrics (:class:`~synthaug.metrics.FeatureExtractor`).
    """

    def __init__(self, in_channels: int, n_classes: int, embedding_dim: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(64 * 16, embedding_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(embedding_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class MaxPoolCNN(nn.Module):
    """Three 3x3 convolutions (16, 32 and 64 channels, 2x2 max pooling between them) and
    global max pooling (``body``: the 64-wide embedding), then a linear ``head``.

    Global max pooling answers "is there a lesion anywhere?": a small bright finding keeps
    its full activation whatever its position, where average pooling dilutes it over the
    image. Fit for slices of any size.
    """

    def __init__(self, in_channels: int, n_classes: int, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class SmallMLP(nn.Module):
    """:class:`SmallCNN`'s counterpart for ``(N, D)`` feature vectors: a 256-wide hidden layer,
    the ``embedding_dim``-wide embedding layer (``body``) and a linear ``head``."""

    def __init__(self, in_features: int, n_classes: int, embedding_dim: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(in_features, 256), nn.ReLU(), nn.Linear(256, embedding_dim), nn.ReLU()
        )
        self.head = nn.Linear(embedding_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class _ResidualBlock(nn.Module):
    """Two 3x3 convolutions with group norm and a skip (He et al., 2016's basic block)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(min(8, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(min(8, c_out), c_out)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                nn.GroupNorm(min(8, c_out), c_out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(h)) + self.skip(x))


class _GlobalPool(nn.Module):
    """Global average and global max pooling, concatenated: the max keeps a small bright
    finding (a lesion) that averaging over the whole image would wash out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


class SmallResNet(nn.Module):
    """A small residual image classifier whose penultimate layer is an embedding.

    A 3x3 stem, three residual stages of widths ``width``, ``2 width`` and ``4 width`` (stride 2
    between stages), group normalisation (no batch statistics, so results do not depend on
    how a batch is composed), global average and max pooling concatenated (``body``: the
    ``8 width`` embedding) and a linear ``head``. Fit for 8x8 digits and 32x32 to 64x64
    slices alike: the pooling makes it independent of the image size.
    """

    def __init__(self, in_channels: int, n_classes: int, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.GroupNorm(min(8, width), width),
            nn.ReLU(),
            _ResidualBlock(width, width, 1),
            _ResidualBlock(width, 2 * width, 2),
            _ResidualBlock(2 * width, 4 * width, 2),
            _GlobalPool(),
        )
        self.head = nn.Linear(8 * width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
