"""Membership-inference attacks on a generator and its samples, reported LiRA-style."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from synthaug.data import ImageDataset
from synthaug.errors import (
    InvalidDataError,
    InvalidParameterError,
    NotFittedError,
    UnknownClassError,
)
from synthaug.generators import PerClass
from synthaug.metrics._distances import _chunk_rows, nearest_distances
from synthaug.metrics._features import FeatureExtractor
from synthaug.metrics._inputs import DataLike, as_datasets

ATTACKS = ("distance", "likelihood", "density_ratio")
# The false-positive rates at which true-positive rates are reported (Carlini et al. 2022).
_LOW_FPRS = {"tpr_at_1fpr": 0.01, "tpr_at_0.1fpr": 0.001}
# The false-positive rate the reference records calibrate a threshold for.
_CALIBRATED_FPR = 0.01
# Kernel widths tried by the density-ratio attack, as multiples of Scott's (1/64 to 2), and
# how many points at most choose among them.
_BANDWIDTH_FACTORS = 2.0 ** np.arange(-6.0, 1.5, 0.5)
_BANDWIDTH_QUERIES = 2000
# Records at most that the density-ratio attack's principal components are fitted on.
_PCA_ROWS = 2000


@runtime_checkable
class LikelihoodModel(Protocol):
    """A generator with a per-sample negative ELBO, as :class:`~synthaug.generators.CVAE` has;
    the white-box ``likelihood`` attack of :func:`membership_attacks` needs one."""

    def negative_elbo(
        self, images: torch.Tensor, labels: torch.Tensor, *, n_samples: int = 1, seed: int = 0
    ) -> torch.Tensor:
        """``(N,)`` negative ELBO of each ``(image, label)``; higher = less likely."""
        ...


def tpr_at_fpr(is_member: Any, scores: Any, fpr: float) -> float:
    """True-positive rate of a membership attack at a false-positive rate of at most ``fpr``.

    The largest share of members scored above a threshold that passes at most a share ``fpr``
    of the non-members, read off the ROC curve as Carlini et al. report attacks ("Membership
    inference attacks from first principles", IEEE S&P 2022). Tied scores pass or fail
    together. With ``n`` non-members the attainable false-positive rates are multiples of
    ``1/n``; below ``1/n`` this is the rate at zero false positives.

    Parameters
    ----------
    is_member : array of bool or 0/1
        Whether each candidate is a member.
    scores : array of float
        The attack's score of each candidate; higher = more likely a member.
    fpr : float
        The false-positive rate, in [0, 1].

    Returns
    -------
    float

    Examples
    --------
    >>> tpr_at_fpr([1, 1, 1, 0, 0, 0], [0.9, 0.8, 0.1, 0.7, 0.2, 0.3], 0.0)
    0.6666666666666666
    """
    if not (isinstance(fpr, (int, float)) and 0 <= fpr <= 1):
        raise InvalidParameterError(f"fpr must be a number in [0, 1], got {fpr!r}")
    y = np.asarray(is_member).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or y.shape != s.shape:
        raise InvalidDataError(
            f"is_member and scores must be 1-D and of one length, got {y.shape} and {s.shape}"
        )
    if y.all() or not y.any():
        raise InvalidDataError("is_member needs both members and non-members")
    fprs, tprs, _ = roc_curve(y, s, drop_intermediate=False)
    return float(tprs[fprs <= fpr].max())


def membership_attacks(
    train: DataLike,
    synthetic: DataLike,
    holdout: DataLike,
    *,
    model: Any = None,
    embed: FeatureExtractor | Callable | None = None,
    mia_k: int = 1,
    density_dims: int = 8,
    elbo_samples: int = 8,
    reference_fraction: float = 0.5,
    max_candidates: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Membership-inference attacks on a generator, each reported by its ROC AUC and its
    true-positive rate at 1% (and 0.1%) false positives.

    The holdout is split once (seeded) into a **reference** part, known non-members that
    the attacks calibrate on, and a disjoint part of **non-member** candidates; as many
    **member** candidates are drawn from ``train``, so the candidates are balanced. Each
    attack scores every candidate (higher = more likely a member):

    ``distance`` (black-box: the samples only)
        GAN-Leaks' full black-box attack (Chen et al., CCS 2020): minus the mean distance
        of the candidate to its ``mia_k`` nearest synthetic samples, in pixel space or in
        ``embed``'s embedding; the score of :func:`privacy`'s ``mia_auc``, which uses all of
        ``train`` and ``holdout`` instead.
    ``likelihood`` (white-box: the model)
        The model's ELBO of the candidate and its label (``elbo_samples`` latent draws,
        seeded): a model that fits its training records better than unseen ones gives
        members higher scores. Needs a model with a per-sample ELBO (:class:`LikelihoodModel`:
        :class:`~synthaug.generators.CVAE`, or :class:`~synthaug.generators.PerClass` of
        CVAEs); skipped, with the reason, for others (GANs have no likelihood) and without
        ``model``.
    ``density_ratio`` (black-box)
        DOMIAS (van Breugel et al., AISTATS 2023): ``log p_synthetic(x) - log
        p_reference(x)``, both Gaussian kernel density estimates in the first
        ``density_dims`` principal components of the synthetic and reference records (pixels
        or ``embed``), whitened; each kernel width is the multiple of Scott's (1/64 to 2)
        with the highest leave-one-out likelihood on its own records. A generator that overfits puts more density at its
        training records than the data have there; dividing by the reference density
        removes what is dense because the data are.

    Every attack's threshold can also be **calibrated on the reference part**, as an
    attacker who knows some non-members but not the candidates' truth would: the threshold
    passing 1% of the reference records (leave-one-out for ``density_ratio``, whose
    reference density they make), applied to the candidates (``calibrated_*``).

    ``strongest`` is the attack with the highest AUC: a reviewer will run it, so it is the
    figure to report. Being the largest of up to three estimates from the same candidates, it
    sits a little above 0.5 (about one ``auc_null_sd``) even when nothing leaks.

    Parameters
    ----------
    train : ImageDataset, (images, labels) or images
        The records the generator was trained on. With a ``model``, labels are needed.
    synthetic : ImageDataset, (images, labels) or images
        The generator's samples.
    holdout : ImageDataset, (images, labels) or images
        Real records of the same source that the generator never saw; at least 4.
    model : LikelihoodModel, PerClass or generator, optional
        The fitted generator, for the white-box attack.
    embed : FeatureExtractor or callable, optional
        Run the ``distance`` and ``density_ratio`` attacks in this embedding instead of pixels.
    mia_k : int
        Nearest synthetic samples averaged by the ``distance`` attack.
    density_dims : int
        Principal components the densities of ``density_ratio`` are estimated in.
    elbo_samples : int
        Latent draws per ELBO of the ``likelihood`` attack.
    reference_fraction : float
        Share of ``holdout`` kept for calibration (the rest are non-member candidates).
    max_candidates : int, optional
        At most this many members (and as many non-members).
    seed : int
        Seeds the split of the holdout, the candidates and the ELBO's latent draws; the same
        seed gives the same figures.

    Returns
    -------
    dict
        ``attacks``
            Per attack (``distance``, ``likelihood``, ``density_ratio``): ``access``
            (``"black-box"`` or ``"white-box"``), ``auc``, ``tpr_at_1fpr``, ``tpr_at_0.1fpr``
            (read off the ROC curve of the candidates, see :func:`tpr_at_fpr`),
            ``calibrated_tpr_at_1fpr`` and ``calibrated_fpr_at_1fpr`` (with the threshold set
            on the reference part; NaN under 100 reference records) and ``score`` (what it
            computes); or ``access`` and ``skipped`` (why it did not run). A true-positive rate
            is NaN when there are fewer than ``1/fpr`` non-members (100 for 1%, 1,000 for
            0.1%): the ROC curve has no point at that rate.
        ``strongest``
            ``attack`` (its name), ``auc``, ``tpr_at_1fpr`` and ``tpr_at_0.1fpr``.
        ``n_members``, ``n_nonmembers``, ``n_reference``
            The candidates scored and the reference records. With ``n`` non-members, a
            true-positive rate at 1% false positives rests on the ``n / 100`` highest-scored
            of them: with a few hundred candidates it is noisy.
        ``auc_null_sd``
            Standard deviation of the AUC of an attack that learns nothing, for these
            candidate counts (Mann-Whitney): ``sqrt((m + n + 1) / (12 m n))``.
        ``space``
            Where ``distance`` and ``density_ratio`` measure.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> train, holdout = load_digits().split(0.5, seed=0)
    >>> out = membership_attacks(train, train, holdout)  # "synthetic" = the training set
    >>> out["strongest"]["auc"] > 0.9, out["attacks"]["likelihood"]["skipped"]
    (True, 'no model given')
    """
    _check_params(mia_k, density_dims, elbo_samples, reference_fraction, max_candidates)
    white_box = _likelihood_scorer(model, elbo_samples, seed)
    sets = as_datasets(
        {"train": train, "synthetic": synthetic, "holdout": holdout},
        need_labels=not isinstance(white_box, str),
    )
    tr, syn, ho = sets["train"], sets["synthetic"], sets["holdout"]
    if len(ho) < 4:
        raise InvalidDataError(
            f"holdout has {len(ho)} records; the attacks need at least 4 (a part calibrates, "
            f"the rest are non-member candidates)"
        )
    if mia_k > len(syn):
        raise InvalidParameterError(
            f"mia_k={mia_k} exceeds the {len(syn)} synthetic samples; lower it"
        )
    member_idx, non_member_idx, reference_idx = _split_candidates(
        len(tr), len(ho), reference_fraction, max_candidates, seed
    )
    members, non_members = tr.subset(member_idx), ho.subset(non_member_idx)
    reference = ho.subset(reference_idx)
    n, n_ref = len(member_idx), len(reference_idx)
    candidates = ImageDataset(
        torch.cat([members.images, non_members.images]),
        torch.cat([members.labels, non_members.labels]),
        members.classes,
    )
    is_member = np.concatenate([np.ones(n, dtype=bool), np.zeros(n, dtype=bool)])

    if embed is None:
        space = "pixels (Euclidean)"

        def vec(ds: ImageDataset) -> torch.Tensor:
            return ds.images.reshape(len(ds), -1).double()

    else:
        fx = embed if isinstance(embed, FeatureExtractor) else FeatureExtractor.from_function(embed)
        space = f"embedding: {fx.describe()}"

        def vec(ds: ImageDataset) -> torch.Tensor:
            return fx.transform(ds).double()

    v_cand, v_syn, v_ref = vec(candidates), vec(syn), vec(reference)
    attacks: dict[str, dict[str, Any]] = {}
    distance = -nearest_distances(torch.cat([v_cand, v_ref]), v_syn, mia_k)[0].mean(dim=1)
    attacks["distance"] = _report(
        "black-box",
        f"minus the mean distance to the {mia_k} nearest synthetic sample(s), {space}",
        is_member,
        distance.numpy(),
    )
    if isinstance(white_box, str):
        attacks["likelihood"] = {"access": "white-box", "skipped": white_box}
    else:
        elbo = -white_box(
            torch.cat([candidates.images, reference.images]),
            torch.cat([candidates.labels, reference.labels]),
        )
        attacks["likelihood"] = _report(
            "white-box", f"the model's ELBO ({elbo_samples} latent draws)", is_member, elbo
        )
    ratio = _density_ratio(v_cand, v_syn, v_ref, density_dims)
    attacks["density_ratio"] = _report(
        "black-box",
        f"log p_synthetic / p_reference, Gaussian KDEs in {density_dims} whitened principal "
        f"components of {space}",
        is_member,
        ratio,
    )
    ran = [name for name in ATTACKS if "auc" in attacks[name]]
    best = max(ran, key=lambda name: attacks[name]["auc"])  # ties: the first in ATTACKS
    strongest = {"attack": best} | {
        k: attacks[best][k] for k in ("auc", "tpr_at_1fpr", "tpr_at_0.1fpr")
    }
    return {
        "attacks": attacks,
        "strongest": strongest,
        "n_members": n,
        "n_nonmembers": n,
        "n_reference": n_ref,
        "auc_null_sd": math.sqrt((2 * n + 1) / (12 * n * n)),
        "space": space,
    }


def _check_params(
    mia_k: Any,
    density_dims: Any,
    elbo_samples: Any,
    reference_fraction: Any,
    max_candidates: Any,
) -> None:
    for name, value in (
        ("mia_k", mia_k),
        ("density_dims", density_dims),
        ("elbo_samples", elbo_samples),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidParameterError(f"{name} must be a positive integer, got {value!r}")
    if not (
        isinstance(reference_fraction, (int, float))
        and not isinstance(reference_fraction, bool)
        and 0 < reference_fraction < 1
    ):
        raise InvalidParameterError(
            f"reference_fraction must be a number in (0, 1), got {reference_fraction!r}"
        )
    if max_candidates is not None and (
        isinstance(max_candidates, bool)
        or not isinstance(max_candidates, int)
        or max_candidates < 1
    ):
        raise InvalidParameterError(
            f"max_candidates must be a positive integer or None, got {max_candidates!r}"
        )


def _split_candidates(
    n_train: int, n_holdout: int, reference_fraction: float, max_candidates: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted indices of the members (into train), and of the non-members and the reference
    records (two disjoint parts of the holdout); as many members as non-members."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_holdout)
    n_ref = min(max(2, round(reference_fraction * n_holdout)), n_holdout - 2)
    n = min(n_train, n_holdout - n_ref, max_candidates or n_train)
    non_members = rng.choice(order[n_ref:], n, replace=False)
    members = rng.choice(n_train, n, replace=False)
    return np.sort(members), np.sort(non_members), np.sort(order[:n_ref])


def _report(access: str, score: str, is_member: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """One attack's figures from the scores of the candidates followed by the reference records."""
    n_cand = len(is_member)
    cand, ref = scores[:n_cand], scores[n_cand:]
    n_non = int((~is_member).sum())
    out: dict[str, Any] = {"access": access, "auc": float(roc_auc_score(is_member, cand))}
    for key, fpr in _LOW_FPRS.items():
        # Below 1/fpr non-members the ROC curve has no point at that rate.
        out[key] = tpr_at_fpr(is_member, cand, fpr) if n_non * fpr >= 1 else math.nan
    # What an attacker who does not know the truth can do: set the threshold that passes 1%
    # of the reference records (known non-members), then see what it passes of the candidates.
    tpr = fpr = math.nan
    if len(ref) * _CALIBRATED_FPR >= 1:
        threshold = np.quantile(ref, 1 - _CALIBRATED_FPR, method="higher")
        tpr = float((cand[is_member] > threshold).mean())
        fpr = float((cand[~is_member] > threshold).mean())
    out["calibrated_tpr_at_1fpr"] = tpr
    out["calibrated_fpr_at_1fpr"] = fpr
    out["score"] = score
    return out


# -- white-box: the model's likelihood ------------------------------------------------------
def _likelihood_scorer(
    model: Any, n_samples: int, seed: int
) -> Callable[[torch.Tensor, torch.Tensor], np.ndarray] | str:
    """A function giving the negative ELBO of ``(images, labels)``, or why there is none."""
    if model is None:
        return "no model given"
    if isinstance(model, PerClass):
        if not model.is_fitted:
            raise NotFittedError("this PerClass is not fitted yet; fit it or synthaug.load it")
        members = model.members_
        if not all(isinstance(m, LikelihoodModel) for m in members.values()):
            kinds = sorted({type(m).__name__ for m in members.values()})
            return f"PerClass of {', '.join(kinds)} has no per-sample likelihood (needs CVAEs)"

        def per_class(images: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
            unseen = sorted(set(torch.unique(labels).tolist()) - set(members))
            if unseen:
                raise UnknownClassError(
                    f"labels {unseen} were not seen in training (classes with samples: "
                    f"{sorted(members)})"
                )
            out = np.empty(len(labels))
            for label in torch.unique(labels).tolist():  # one batched call per class
                idx = torch.nonzero(labels == label).flatten()
                out[idx.numpy()] = (
                    members[label]
                    .negative_elbo(
                        images[idx], torch.zeros_like(idx), n_samples=n_samples, seed=seed
                    )
                    .double()
                    .numpy()
                )
            return out

        return per_class
    if isinstance(model, LikelihoodModel):

        def whole(images: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
            nelbo = model.negative_elbo(images, labels, n_samples=n_samples, seed=seed)
            return nelbo.double().numpy()

        return whole
    return f"{type(model).__name__} has no per-sample likelihood (white-box needs an ELBO)"


# -- black-box: DOMIAS' density ratio --------------------------------------------------------
def _density_ratio(
    candidates: torch.Tensor, synthetic: torch.Tensor, reference: torch.Tensor, dims: int
) -> np.ndarray:
    """``log p_synthetic - log p_reference`` of each candidate, then of each reference record
    (its own kernel left out of ``p_reference``), with KDEs in whitened PCA space."""
    fit = torch.cat([synthetic, reference])
    # The components come from at most _PCA_ROWS records, evenly spaced over both sets, so
    # that large images and many samples stay a small SVD.
    rows = np.unique(np.linspace(0, len(fit) - 1, min(len(fit), _PCA_ROWS)).round())
    fit = fit[torch.as_tensor(rows.astype(np.int64))]
    mean = fit.mean(dim=0)
    _, s, vt = torch.linalg.svd(fit - mean, full_matrices=False)
    keep = min(dims, int((s > s[0] * 1e-8).sum())) if s[0] > 0 else 0
    if keep == 0:  # every synthetic and reference record is the same point
        return np.zeros(len(candidates) + len(reference))
    # Whitened: unit variance along each kept component over the fitted records.
    proj = vt[:keep].T / (s[:keep] / math.sqrt(max(len(fit) - 1, 1)))
    c, syn, ref = ((x - mean) @ proj for x in (candidates, synthetic, reference))
    bw_syn, bw_ref = _loo_bandwidth(syn), _loo_bandwidth(ref)
    p_syn = _kde_log_density(torch.cat([c, ref]), syn, bw_syn)
    p_ref = torch.cat(
        [_kde_log_density(c, ref, bw_ref), _kde_log_density(ref, ref, bw_ref, exclude_self=True)]
    )
    return (p_syn - p_ref).numpy()


def _loo_bandwidth(points: torch.Tensor) -> float:
    """The squared kernel width, among multiples of Scott's, that maximises the
    leave-one-out likelihood of ``points`` (of at most ``_BANDWIDTH_QUERIES`` of them, evenly
    spaced, each against all the others).

    Scott's rule assumes one Gaussian blob; samples that crowd round a few training records
    need a narrower kernel, which the leave-one-out likelihood finds.
    """
    n, d = points.shape
    if n < 2:
        return 1.0
    scott = float(points.var(dim=0).mean()) * n ** (-2 / (d + 4))
    widths = max(scott, 1e-12) * _BANDWIDTH_FACTORS**2
    rows = np.unique(np.linspace(0, n - 1, min(n, _BANDWIDTH_QUERIES)).round().astype(np.int64))
    total = np.zeros(len(widths))
    step = _chunk_rows(n)
    for start in range(0, len(rows), step):
        chunk = torch.as_tensor(rows[start : start + step])
        d2 = torch.cdist(points[chunk], points).pow(2)
        d2[torch.arange(len(chunk)), chunk] = math.inf
        for j, w in enumerate(widths):  # a dozen widths, each a batched pass
            log_k = torch.logsumexp(-d2 / (2 * w), dim=1) - 0.5 * d * math.log(2 * math.pi * w)
            total[j] += float(log_k.sum())
    return float(widths[int(np.argmax(total))])


def _kde_log_density(
    query: torch.Tensor, points: torch.Tensor, width: float, *, exclude_self: bool = False
) -> torch.Tensor:
    """Log density at ``query`` of the KDE of ``points`` with isotropic Gaussian kernels of
    variance ``width`` per dimension. With ``exclude_self`` (query is points) each row leaves
    its own kernel out."""
    n, d = points.shape
    n_kernels = n - 1 if exclude_self else n
    out = []
    step = _chunk_rows(n)
    for start in range(0, len(query), step):
        d2 = torch.cdist(query[start : start + step], points).pow(2)
        if exclude_self:
            rows = torch.arange(len(d2))
            d2[rows, rows + start] = math.inf
        out.append(torch.logsumexp(-d2 / (2 * width), dim=1))
    return torch.cat(out) - math.log(max(n_kernels, 1)) - 0.5 * d * math.log(2 * math.pi * width)
