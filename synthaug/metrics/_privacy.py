"""Privacy: does the synthetic data reveal or copy the training records?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.metrics._distances import nearest_distances
from synthaug.metrics._features import FeatureExtractor
from synthaug.metrics._inputs import DataLike, as_datasets, subsample


def privacy(
    train: DataLike,
    synthetic: DataLike,
    holdout: DataLike,
    *,
    embed: FeatureExtractor | Callable | None = None,
    mia_k: int = 1,
    copy_tol: float = 1e-6,
    max_samples: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Distance-to-closest-record and membership-inference figures for synthetic data.

    Distances are Euclidean in the data space (flattened pixels), as SDMetrics' DCR and the
    GAN-Leaks attack use, unless ``embed`` gives an embedding.

    Parameters
    ----------
    train : ImageDataset, (images, labels) or images
        The records the generator was trained on (the members).
    synthetic : ImageDataset, (images, labels) or images
        Generated samples.
    holdout : ImageDataset, (images, labels) or images
        Real records from the same source that the generator never saw (non-members).
    embed : FeatureExtractor or callable, optional
        Measure distances in this embedding instead of pixel space.
    mia_k : int
        The attack scores a candidate by its mean distance to its ``mia_k`` nearest synthetic
        samples (GAN-Leaks' full black-box attack uses the nearest one).
    copy_tol : float
        A synthetic sample whose nearest training record is within this Euclidean distance
        counts as an exact copy.
    max_samples : int, optional
        Randomly keep at most this many samples of each set (seeded).
    seed : int
        Seeds the subsampling; the figures are otherwise deterministic.

    Returns
    -------
    dict
        ``dcr_p5_ratio``, ``dcr_median_ratio``
            5th percentile and median of the synthetic-to-train distances to the closest
            record (DCR) divided by the same statistic of the holdout-to-train DCRs (SDMetrics'
            DCR baseline idea with real unseen data as the baseline). About 1 when synthetic
            samples sit as far from the training records as fresh real data does; near 0 for
            copies. NaN when the holdout statistic is 0.
        ``memorization_rate``
            Fraction of synthetic samples strictly closer to their nearest training record than
            to their nearest holdout record (SDMetrics' DCROverfittingProtection).
        ``memorization_baseline``
            What an independent sample of the same distribution scores: ``n_train /
            (n_train + n_holdout)`` (by symmetry of nearest neighbours); compare against it.
        ``mia_auc``
            ROC AUC of the distance attack of GAN-Leaks (Chen et al., CCS 2020, full
            black-box): a record's score is minus its mean distance to its ``mia_k`` nearest
            synthetic samples; members are ``train``, non-members ``holdout``. 0.5 = no leakage.
        ``exact_copies``
            Number of synthetic samples whose nearest training record is within ``copy_tol``.
        ``dcr_synthetic_median``, ``dcr_holdout_median``, ``n_train``, ``n_synthetic``,
        ``n_holdout``, ``space``
            The raw medians, the sizes and the distance space.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> train, holdout = load_digits().split(0.5, seed=0)
    >>> leak = privacy(train, train, holdout)  # "synthetic" = copies of the training set
    >>> leak["mia_auc"] > 0.9, leak["exact_copies"] == len(train)
    (True, True)
    """
    if isinstance(mia_k, bool) or not isinstance(mia_k, int) or mia_k < 1:
        raise InvalidParameterError(f"mia_k must be a positive integer, got {mia_k!r}")
    if not (isinstance(copy_tol, (int, float)) and copy_tol >= 0):
        raise InvalidParameterError(f"copy_tol must be a number >= 0, got {copy_tol!r}")
    sets = as_datasets(
        {"train": train, "synthetic": synthetic, "holdout": holdout}, need_labels=False
    )
    rng = np.random.default_rng(seed)
    tr, syn, ho = (subsample(sets[n], max_samples, rng) for n in ("train", "synthetic", "holdout"))
    if mia_k > len(syn):
        raise InvalidParameterError(
            f"mia_k={mia_k} exceeds the {len(syn)} synthetic samples; lower it"
        )
    if embed is None:
        space = "pixels (Euclidean)"

        def vec(ds: ImageDataset) -> torch.Tensor:
            return ds.images.reshape(len(ds), -1)

    else:
        fx = embed if isinstance(embed, FeatureExtractor) else FeatureExtractor.from_function(embed)
        space = f"embedding: {fx.describe()}"

        def vec(ds: ImageDataset) -> torch.Tensor:
            return fx.transform(ds)

    v_tr, v_syn, v_ho = vec(tr), vec(syn), vec(ho)
    syn_to_train = nearest_distances(v_syn, v_tr)[0][:, 0].double()
    syn_to_hold = nearest_distances(v_syn, v_ho)[0][:, 0].double()
    hold_to_train = nearest_distances(v_ho, v_tr)[0][:, 0].double()

    member = nearest_distances(v_tr, v_syn, mia_k)[0].double().mean(dim=1)
    non_member = nearest_distances(v_ho, v_syn, mia_k)[0].double().mean(dim=1)
    scores = -torch.cat([member, non_member]).numpy()
    is_member = np.concatenate([np.ones(len(member)), np.zeros(len(non_member))])

    def ratio(q: float) -> float:
        den = float(torch.quantile(hold_to_train, q))
        return float(torch.quantile(syn_to_train, q)) / den if den > 0 else float("nan")

    return {
        "dcr_p5_ratio": ratio(0.05),
        "dcr_median_ratio": ratio(0.5),
        "memorization_rate": float((syn_to_train < syn_to_hold).double().mean()),
        "memorization_baseline": len(tr) / (len(tr) + len(ho)),
        "mia_auc": float(roc_auc_score(is_member, scores)),
        "exact_copies": int((syn_to_train <= copy_tol).sum()),
        "dcr_synthetic_median": float(syn_to_train.median()),
        "dcr_holdout_median": float(hold_to_train.median()),
        "n_train": len(tr),
        "n_synthetic": len(syn),
        "n_holdout": len(ho),
        "space": space,
    }
