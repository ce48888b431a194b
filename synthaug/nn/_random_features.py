"""Random Fourier features and the class-conditional mean embedding that DP-MERF releases.

:class:`RandomFourierFeatures` maps a sample to features whose inner products approximate a
Gaussian kernel (Rahimi & Recht, "Random Features for Large-Scale Kernel Machines", NeurIPS
2007); :func:`class_feature_sums` sums them per class, the one-hot outer product of Harder,
Adamczewski & Park, "DP-MERF: Differentially Private Mean Embeddings with Random Features for
Practical Privacy-Preserving Data Generation", AISTATS 2021; :func:`release_embedding` adds the
Gaussian mechanism's noise to those sums; :func:`mean_embedding_loss` is the distance a
generator minimises to the released embedding (an MMD estimate in the features).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Entropy mixed with the seed for the frequencies and for the embedding's noise, so that each
# is a stream of its own (apart from training's and from the count release's).
_FREQUENCY_STREAM = 0x66726571  # "freq"
_EMBEDDING_STREAM = 0x656D6264  # "embd"
# Rows per chunk when summing the features of a data set (bounds the (rows, n_features) block).
_CHUNK = 4096


class RandomFourierFeatures(nn.Module):
    """``phi(x) = sqrt(2 / D) [cos(x W), sin(x W)]`` with ``D / 2`` frequencies ``W``.

    With the columns of ``W`` drawn from ``N(0, I / bandwidth^2)``, ``phi(x) . phi(x')`` is an
    unbiased estimate of the Gaussian kernel ``exp(-|x - x'|^2 / (2 bandwidth^2))``. Every
    ``phi(x)`` has norm exactly 1 (``cos^2 + sin^2 = 1`` for each of the ``D / 2`` pairs, times
    ``2 / D``), whatever ``x`` is: that fixes the sensitivity of a sum of features.

    Parameters
    ----------
    data_dim : int
        Length of a flattened sample.
    n_features : int
        ``D``, even: the length of ``phi(x)``.

    Examples
    --------
    >>> import torch
    >>> from synthaug.nn import RandomFourierFeatures
    >>> phi = RandomFourierFeatures(4, 100)
    >>> phi.draw(bandwidth=1.0, seed=0)
    >>> round(float(phi(torch.rand(3, 4)).norm(dim=1)[0]), 4)
    1.0
    """

    frequencies: torch.Tensor

    def __init__(self, data_dim: int, n_features: int) -> None:
        super().__init__()
        if n_features % 2:
            raise ValueError(f"n_features must be even (cosine and sine pairs), got {n_features}")
        self.n_features = n_features
        # A buffer: saved with the model, moved with it, never trained.
        self.register_buffer("frequencies", torch.zeros(data_dim, n_features // 2))

    @torch.no_grad()
    def draw(self, bandwidth: float, seed: int) -> None:
        """Draw the frequencies from ``N(0, 1 / bandwidth^2)``, from a stream of ``seed`` of
        their own (numpy's, so the same seed gives the same features on any device)."""
        rng = np.random.default_rng([seed, _FREQUENCY_STREAM])
        w = rng.normal(0.0, 1.0 / bandwidth, tuple(self.frequencies.shape))
        self.frequencies.copy_(torch.from_numpy(w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, n_features)`` features of ``x`` (``(N, ...)``, flattened per row)."""
        projection = x.flatten(1).to(self.frequencies.dtype) @ self.frequencies
        return torch.cat([projection.cos(), projection.sin()], dim=1) * math.sqrt(
            2.0 / self.n_features
        )


@torch.no_grad()
def class_feature_sums(
    features: RandomFourierFeatures, x: torch.Tensor, y: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """``sum_i phi(x_i) e_{y_i}^T`` as a float64 ``(n_classes, n_features)`` matrix on the CPU.

    Row ``c`` is the sum of the features of the records of class ``c``: the paper's embedding
    with the label as a one-hot vector in an outer product, before any normalisation. Computed
    in chunks on the features' device, accumulated in float64.
    """
    device = features.frequencies.device
    sums = torch.zeros(n_classes, features.n_features, dtype=torch.float64)
    for start in range(0, len(x), _CHUNK):
        xb = x[start : start + _CHUNK].to(device)
        yb = y[start : start + _CHUNK].to(device)
        onehot = F.one_hot(yb, n_classes).to(torch.float64)
        sums += (onehot.T @ features(xb).to(torch.float64)).cpu()
    return sums


def release_embedding(sums: torch.Tensor, noise_multiplier: float, seed: int) -> torch.Tensor:
    """``sums`` plus independent ``N(0, noise_multiplier^2)`` noise on every entry (float64).

    The Gaussian mechanism on a query of L2 sensitivity 1 (see ``DPMERF``). The noise comes
    from a stream of ``seed`` of its own, so the same seed gives the same release; seeded noise
    is reproducible, not cryptographically secure (docs/privacy.md).
    """
    rng = np.random.default_rng([seed, _EMBEDDING_STREAM])
    noise = rng.normal(0.0, noise_multiplier, tuple(sums.shape))
    return sums.to(torch.float64) + torch.from_numpy(noise)


def mean_embedding_loss(
    target: torch.Tensor, features: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Per class, the squared MMD to the ``target`` embedding with the class's size fitted.

    ``target`` is ``(n_classes, n_features)``: row ``c`` the released sum ``S_c`` of class
    ``c``'s features, ``n_c m_c`` plus noise, where ``m_c`` is the class's mean embedding;
    ``features`` are the ``(N, n_features)`` features of generated samples with ``labels``,
    whose class ``c`` has mean embedding ``g_c``. The loss of class ``c`` is
    ``min_s |S_c - s g_c|^2 / |S_c|^2 = 1 - cos^2(S_c, g_c)``: the squared MMD (Gretton et al.,
    JMLR 2012) between the released embedding and ``s g_c``, the size ``s`` chosen at its best
    rather than taken from a count. So no class count enters, and the size is in effect read
    from the embedding along ``g_c``, with noise ``sigma / |g_c|`` instead of the count
    release's much larger noise. It is 0 only when ``g_c`` is parallel to ``S_c``; without
    noise that is ``g_c = m_c`` (for a translation-invariant kernel, integrating
    ``a m_c = g_c`` over the space gives ``a = 1``). ``|g_c|^2`` is estimated without its
    diagonal terms (``sum_{i != j} phi_i . phi_j / (m (m - 1))``): with them it would gain
    ``(1 - |g_c|^2) / m``, a reward for samples that all look alike. The result is the mean
    over the classes with at least two samples in the batch (0 when there is none); each term
    is in [0, 1].
    """
    onehot = F.one_hot(labels, target.shape[0]).to(features.dtype)
    m = onehot.sum(0)
    used = m >= 2
    if not bool(used.any()):
        return features.sum() * 0.0
    m, sums = m[used], (onehot.T @ features)[used]
    squares = (onehot.T @ features.pow(2).sum(1))[used]
    t = target[used].to(features.dtype)
    # A floor on |g_c|^2 (an estimate, which can fall to 0 or below for a few samples).
    g_norm2 = ((sums.pow(2).sum(1) - squares) / (m * (m - 1))).clamp_min(1e-6)
    t_norm2 = t.pow(2).sum(1).clamp_min(1e-12)
    # At most 1, as a cosine's square is: an underestimated |g_c|^2 must earn nothing.
    cos2 = (((t * sums).sum(1) / m).pow(2) / (g_norm2 * t_norm2)).clamp(max=1.0)
    return (1 - cos2).mean()
