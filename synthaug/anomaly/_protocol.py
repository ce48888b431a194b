"""The one-class protocol (Ruff et al., Deep SVDD, ICML 2018), as a plain function.

For each seed, split the data once (stratified); for each normal class c, fit every detector
on the training samples of class c only, and score the whole test split with class c normal
and every other class anomalous. AUROC and AUPRC (anomalies as the positive class) per class;
the mean over classes per seed; mean ± 95% confidence interval across seeds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import clone
from sklearn.metrics import average_precision_score, roc_auc_score

from synthaug.anomaly._base import BaseDetector
from synthaug.anomaly._maps import pixel_auroc, region_overlap
from synthaug.data import ImageDataset
from synthaug.errors import EmptyDatasetError, InvalidDataError, InvalidParameterError
from synthaug.metrics import auroc_standard_error, mean_ci

METRICS = ("auroc", "auprc")


def _class_index(dataset: ImageDataset, c: int | str) -> int:
    if isinstance(c, str):
        if c not in dataset.classes:
            raise InvalidParameterError(f"normal class {c!r} is not one of {dataset.classes}")
        return dataset.classes.index(c)
    if (
        isinstance(c, bool)
        or not isinstance(c, (int, np.integer))
        or not 0 <= c < dataset.n_classes
    ):
        raise InvalidParameterError(f"normal class {c!r} is not a label of {dataset.classes}")
    return int(c)


def run_one_class(
    dataset: ImageDataset,
    detectors: Mapping[str, BaseDetector],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    normal_classes: Sequence[int | str] | None = None,
    test_size: float = 0.3,
    n_normal: int | None = None,
    test_dataset: ImageDataset | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the one-class protocol for every detector, normal class and seed.

    Parameters
    ----------
    dataset : ImageDataset
        All labelled samples. Split per seed into train and test (stratified, ``test_size``),
        unless ``test_dataset`` is given; then ``dataset`` is the training pool as it is.
    detectors : mapping of str to BaseDetector
        Named, unfitted detectors; each run fits a clone with ``seed`` set to the run's seed.
    seeds : sequence of int
        One replicate per seed (split, subsampling and detector seeds).
    normal_classes : sequence of int or str, optional
        Classes that take the role of "normal" in turn (default: every class).
    test_size : float
        Share of ``dataset`` held out for testing when ``test_dataset`` is None.
    n_normal : int, optional
        Train on only this many normal samples (drawn per seed): the few-normals setting.
    test_dataset : ImageDataset, optional
        A fixed test set (same classes as ``dataset``).
    echo : callable, optional
        Called with one progress line per fitted detector.

    Returns
    -------
    dict
        ``records``: one dict per (detector, class, seed) with ``auroc``, ``auprc``,
        ``fit_seconds``; ``summary``: per detector, per-class means over seeds and
        ``mean_<metric>`` / ``ci95_<metric>`` of the per-seed class means; ``settings``.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> from synthaug.anomaly import PCADetector, run_one_class
    >>> result = run_one_class(load_digits(), {"pca": PCADetector()}, seeds=[0],
    ...                        normal_classes=[0, 1])
    >>> sorted(result["summary"]["pca"]["per_class"])
    ['0', '1']
    """
    if not isinstance(dataset, ImageDataset):
        raise InvalidDataError(f"dataset must be an ImageDataset, got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise EmptyDatasetError("cannot run the one-class protocol on an empty dataset")
    if not detectors:
        raise InvalidParameterError("give at least one detector, e.g. {'pca': PCADetector()}")
    for name, det in detectors.items():
        if not isinstance(det, BaseDetector):
            raise InvalidParameterError(
                f"detector {name!r} must be a synthaug anomaly detector, got {type(det).__name__}"
            )
    seeds = list(seeds)
    if not seeds:
        raise InvalidParameterError("give at least one seed")
    if test_dataset is not None:
        if test_dataset.classes != dataset.classes:
            raise InvalidDataError(
                f"test_dataset classes {test_dataset.classes} differ from {dataset.classes}"
            )
        if len(test_dataset) == 0:
            raise EmptyDatasetError("test_dataset is empty")
    if n_normal is not None and (isinstance(n_normal, bool) or n_normal < 2):
        raise InvalidParameterError(f"n_normal must be an integer >= 2 or None, got {n_normal!r}")
    labels = (
        list(range(dataset.n_classes))
        if normal_classes is None
        else [_class_index(dataset, c) for c in normal_classes]
    )
    if not labels:
        raise InvalidParameterError("normal_classes is empty")

    records: list[dict[str, Any]] = []
    for seed in seeds:
        if test_dataset is None:
            train, test = dataset.split(test_size=test_size, seed=seed)
        else:
            train, test = dataset, test_dataset
        for c in labels:
            for det_name, template in detectors.items():
                record = evaluate_one_class(template, train, test, c, seed=seed, n_normal=n_normal)
                record = {"detector": det_name, **record}
                records.append(record)
                if echo is not None:
                    echo(
                        f"seed {seed} class {record['normal_class']} {det_name}: AUROC "
                        f"{record['auroc']:.4f} AUPRC {record['auprc']:.4f} "
                        f"({record['fit_seconds']:.1f}s)"
                    )
    return {
        "records": records,
        "summary": summarize_one_class(records),
        "settings": {
            "seeds": seeds,
            "normal_classes": [dataset.classes[c] for c in labels],
            "test_size": None if test_dataset is not None else test_size,
            "n_normal": n_normal,
            "detectors": {name: repr(det) for name, det in detectors.items()},
        },
    }


def evaluate_one_class(
    detector: BaseDetector,
    train: ImageDataset,
    test: ImageDataset,
    normal_class: int | str,
    *,
    seed: int,
    n_normal: int | None = None,
    per_anomaly_class: bool = False,
    test_masks: torch.Tensor | None = None,
) -> dict[str, Any]:
    """One run of the one-class protocol: fit on class ``normal_class`` of ``train``, score ``test``.

    Parameters
    ----------
    detector : BaseDetector
        An unfitted template; a clone (``sklearn.base.clone``) with ``seed`` is fitted.
    train, test : ImageDataset
        Labelled splits with the same classes; only the normal class of ``train`` is used.
    normal_class : int or str
        Label or class name of the normal class; every other test class is anomalous.
    seed : int
        Seeds the detector and the ``n_normal`` draw.
    n_normal : int, optional
        Train on this many normal samples only, drawn without replacement (few-normals).
    per_anomaly_class : bool
        Also report ``auroc[<class>]``: the normal test samples against one anomalous class.
    test_masks : torch.Tensor, optional
        ``(N, 1, H, W)`` true anomaly masks of ``test`` (empty on normal samples). With a
        detector that has an ``anomaly_map`` (DRAEM, the VAE and diffusion residuals), the record adds its
        localisation: ``pixel_auroc`` over every test pixel and ``region_overlap`` (the
        per-region overlap score up to 30% false-positive pixels), and with
        ``per_anomaly_class`` ``pixel_auroc[<class>]`` on the normal samples and that class.

    Returns
    -------
    dict
        ``normal_class`` (name), ``seed``, ``auroc``, ``auprc`` (anomalies positive),
        ``se_auroc`` (the AUROC's standard error over test samples, DeLong et al. 1988: the
        report's interval for a single seed), ``fit_seconds``, ``n_train`` (including
        synthetic normals) and, when asked, the per-anomaly-class AUROCs (with
        ``se_auroc[<class>]``) and the localisation scores.
    """
    c = _class_index(train, normal_class)
    name_c = train.classes[c]
    idx = torch.nonzero(train.labels == c).flatten().numpy()
    if n_normal is not None:
        if len(idx) < n_normal:
            raise EmptyDatasetError(
                f"class {name_c!r} has {len(idx)} training samples, fewer than n_normal={n_normal}"
            )
        rng = np.random.default_rng([seed, c])
        idx = np.sort(rng.choice(idx, size=n_normal, replace=False))
    if len(idx) == 0:
        raise EmptyDatasetError(f"class {name_c!r} has no training samples")
    test_labels = test.labels.numpy()
    is_anomaly = (test_labels != c).astype(np.int64)
    if is_anomaly.min() == is_anomaly.max():
        raise EmptyDatasetError(
            f"the test split needs both normal (class {name_c!r}) and anomalous samples"
        )
    start = time.perf_counter()
    fitted = clone(detector).set_params(seed=seed).fit(train.subset(idx))
    seconds = time.perf_counter() - start
    scores = fitted.decision_function(test)
    record: dict[str, Any] = {
        "normal_class": name_c,
        "seed": seed,
        "auroc": float(roc_auc_score(is_anomaly, scores)),
        "auprc": float(average_precision_score(is_anomaly, scores)),
        "se_auroc": auroc_standard_error(is_anomaly, scores),
        "fit_seconds": seconds,
        "n_train": int(fitted.n_train_),
    }
    if per_anomaly_class:
        for a in np.unique(test_labels[is_anomaly == 1]):
            keep = (test_labels == c) | (test_labels == a)
            record[f"auroc[{test.classes[a]}]"] = float(
                roc_auc_score(is_anomaly[keep], scores[keep])
            )
            record[f"se_auroc[{test.classes[a]}]"] = auroc_standard_error(
                is_anomaly[keep], scores[keep]
            )
    if (
        test_masks is not None
        and callable(getattr(fitted, "anomaly_map", None))
        and getattr(fitted, "has_anomaly_map", True)
    ):
        if tuple(test_masks.shape) != (len(test), 1, *test.sample_shape[1:]):
            raise InvalidDataError(
                f"test_masks must be (N, 1, H, W) for the {len(test)} test samples, got "
                f"{tuple(test_masks.shape)}"
            )
        maps = fitted.anomaly_map(test.images)
        record["pixel_auroc"] = pixel_auroc(maps, test_masks)
        record["region_overlap"] = region_overlap(maps, test_masks)
        if per_anomaly_class:
            for a in np.unique(test_labels[is_anomaly == 1]):
                keep = torch.from_numpy((test_labels == c) | (test_labels == a))
                record[f"pixel_auroc[{test.classes[a]}]"] = pixel_auroc(
                    maps[keep], test_masks[keep]
                )
    return record


def summarize_one_class(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per detector: per-class means over seeds, and mean ± 95% CI across seeds.

    The CI is over the per-seed means across classes (one value per seed), so it measures how
    much the headline number moves from one replicate to the next.
    """
    summary: dict[str, dict[str, Any]] = {}
    for det in dict.fromkeys(r["detector"] for r in records):
        rows = [r for r in records if r["detector"] == det]
        classes = list(dict.fromkeys(r["normal_class"] for r in rows))
        seeds = list(dict.fromkeys(r["seed"] for r in rows))
        out: dict[str, Any] = {"per_class": {}}
        for c in classes:
            out["per_class"][c] = {
                m: float(np.mean([r[m] for r in rows if r["normal_class"] == c])) for m in METRICS
            }
        for m in METRICS:
            per_seed = [float(np.mean([r[m] for r in rows if r["seed"] == s])) for s in seeds]
            out[f"mean_{m}"], out[f"ci95_{m}"] = mean_ci(per_seed)
            out[f"per_seed_{m}"] = per_seed
        out["fit_seconds"] = float(np.mean([r["fit_seconds"] for r in rows]))
        summary[det] = out
    return summary


def format_one_class_table(summary: Mapping[str, Mapping[str, Any]], metric: str = "auroc") -> str:
    """A markdown table: one row per detector, one column per class, then mean ± 95% CI."""
    if metric not in METRICS:
        raise InvalidParameterError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    dets = list(summary)
    if not dets:
        return ""
    classes = list(summary[dets[0]]["per_class"])
    head = f"| detector | {' | '.join(classes)} | mean {metric.upper()} ± 95% CI |"
    lines = [head, "|" + "---|" * (len(classes) + 2)]
    for det in dets:
        s = summary[det]
        cells = [f"{s['per_class'][c][metric]:.3f}" for c in classes]
        ci = s[f"ci95_{metric}"]
        ci_text = "n/a" if math.isnan(ci) else f"{ci:.3f}"
        lines.append(f"| {det} | {' | '.join(cells)} | {s[f'mean_{metric}']:.3f} ± {ci_text} |")
    return "\n".join(lines)
