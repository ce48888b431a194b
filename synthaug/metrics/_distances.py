"""Chunked nearest-neighbour computations shared by the fidelity and privacy metrics.

Every function works on whole blocks of rows with ``torch.cdist`` and keeps memory bounded by
processing the query set in chunks; no Python loop runs over pairs or samples.
"""

from __future__ import annotations

import numpy as np
import torch

from synthaug.errors import InvalidDataError

# Rows per chunk are chosen so that one chunk of the distance matrix holds about this many
# float64 entries (256 MiB).
_CHUNK_ENTRIES = 2**25


def _chunk_rows(n_cols: int) -> int:
    return max(1, min(4096, _CHUNK_ENTRIES // max(n_cols, 1)))


def nearest_distances(
    query: torch.Tensor, reference: torch.Tensor, k: int = 1, *, exclude_self: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distances (and indices) of each query row's ``k`` nearest reference rows.

    With ``exclude_self`` (query is reference) each row's own zero distance is skipped, so the
    last column is the k-th nearest *other* point, as in Naeem et al.'s k-NN radii.

    The distances of the chosen pairs are recomputed directly from their difference, so an
    exact copy has distance exactly 0 (the fast matrix-product form of ``cdist`` is not exact).
    """
    kk = k + 1 if exclude_self else k
    if kk > len(reference):
        raise InvalidDataError(f"need at least {kk} reference samples, got {len(reference)}")
    dists, idxs = [], []
    step = _chunk_rows(len(reference))
    for start in range(0, len(query), step):
        q = query[start : start + step]
        d = torch.cdist(q, reference)
        if exclude_self:
            rows = torch.arange(len(q))
            d[rows, rows + start] = -1.0  # the row itself sorts first and is dropped
        idx = torch.topk(d, kk, dim=1, largest=False).indices
        if exclude_self:
            idx = idx[:, 1:]
        exact = (q[:, None, :] - reference[idx]).norm(dim=-1)
        exact, order = exact.sort(dim=1)
        dists.append(exact)
        idxs.append(torch.gather(idx, 1, order))
    return torch.cat(dists), torch.cat(idxs)


def prdc(
    real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray, k: int = 5
) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al., ICML 2020).

    ``real`` ``(N, d)`` and ``fake`` ``(M, d)`` embeddings; the k-NN radius of a point is the
    distance to its k-th nearest neighbour in its own set. Strict ``<`` as in the authors'
    reference implementation (clovaai/generative-evaluation-prdc).
    """
    real = torch.as_tensor(np.asarray(real, dtype=np.float64))
    fake = torch.as_tensor(np.asarray(fake, dtype=np.float64))
    r_real = nearest_distances(real, real, k, exclude_self=True)[0][:, -1]
    r_fake = nearest_distances(fake, fake, k, exclude_self=True)[0][:, -1]
    in_real_ball = []  # per fake sample: how many real k-NN balls hold it
    step = _chunk_rows(len(real))
    for start in range(0, len(fake), step):
        d = torch.cdist(fake[start : start + step], real)
        in_real_ball.append((d < r_real[None, :]).sum(dim=1))
    counts = torch.cat(in_real_ball).double()
    covered, recalled = [], []
    step = _chunk_rows(len(fake))
    for start in range(0, len(real), step):
        d = torch.cdist(real[start : start + step], fake)
        recalled.append((d < r_fake[None, :]).any(dim=1))
        covered.append(d.min(dim=1).values < r_real[start : start + step])
    return {
        "precision": float((counts > 0).double().mean()),
        "recall": float(torch.cat(recalled).double().mean()),
        "density": float(counts.mean() / k),
        "coverage": float(torch.cat(covered).double().mean()),
    }


def frechet_distance(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of embeddings.

    ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` (Dowson & Landau 1982; used as
    FID by Heusel et al., NeurIPS 2017). The trace of the matrix square root is computed from
    the eigenvalues of the symmetric ``S_a^{1/2} S_b S_a^{1/2}``, which is stable for singular
    covariances and gives exactly 0 (up to rounding) for identical sets.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mu = a.mean(0) - b.mean(0)
    s_a = np.atleast_2d(np.cov(a, rowvar=False))
    s_b = np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(s_a)
    sqrt_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = sqrt_a @ s_b @ sqrt_a
    ev = np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)
    fd = float(mu @ mu + np.trace(s_a) + np.trace(s_b) - 2 * np.sqrt(ev).sum())
    return max(fd, 0.0)
