"""``synthaug evaluate``: fidelity, utility and privacy of a saved generator's samples.

Arguments: :mod:`synthaug.cli._args.evaluate`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from synthaug._version import __version__
from synthaug.cli._files import check_data_fits_model, data_options, read_data
from synthaug.cli._progress import Stages
from synthaug.data import ImageDataset, atomic_output, check_output
from synthaug.errors import DataFileError
from synthaug.generators import load
from synthaug.metrics import FeatureExtractor, fidelity, membership_attacks, privacy, utility


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    # Checked before the work; the report file is replaced, and each --save-features is too.
    check_output(out, folder=False, overwrite=True)
    if args.save_features:
        check_output(Path(args.save_features), folder=False, overwrite=True)
    model = load(args.model, device=args.device)
    # A given embedding is read before any work, so a bad file stops the command at once.
    fx = FeatureExtractor.load(args.features, device=args.device) if args.features else None
    train, test, data_name, refusal, warnings = evaluation_data(
        model, args.data, args.test_size, args.split_seed, data_options(args)
    )
    check_data_fits_model(model, train, data_name)
    if refusal is not None:
        warnings.append(f"privacy figures not reported: {refusal}")

    n_stages = 5 - bool(args.features) - (refusal is not None)
    stages = Stages("evaluate", n_stages, quiet=args.quiet)
    rng = np.random.default_rng(args.seed)
    n = args.n_synthetic or len(train)
    stages.start(f"sampling {n} synthetic samples")
    idx = rng.permutation(len(train)) if n == len(train) else rng.choice(len(train), n)
    images, labels = model.sample(n, y=train.labels[idx], seed=args.seed)
    synthetic = ImageDataset(images, labels, train.classes)

    fx, scores = score_samples(
        model,
        train,
        test,
        synthetic,
        args,
        stages=stages,
        with_privacy=refusal is None,
        features=fx,
        k=args.k,
    )
    if args.save_features:
        fx.save(args.save_features)
    fid, util, priv = scores["fidelity"], scores["utility"], scores["privacy"]
    spent = getattr(model, "privacy_spent_", None)
    dp = None if spent is None else {"epsilon": float(spent[0]), "delta": float(spent[1])}

    result: dict[str, Any] = {
        "model": str(args.model),
        "model_type": model.registry_name,
        "data": data_name,
        "split": {"test_size": args.test_size, "split_seed": args.split_seed},
        "n_train": len(train),
        "n_test": len(test),
        "n_synthetic": n,
        "seed": args.seed,
        "embedding": fx.describe(),
        "privacy_spent": dp,
        "fidelity_against": "test part (real data the model did not train on, when known)",
        "fidelity": fid,
        "utility": util,
        "privacy": priv,
        "privacy_refused": refusal,
        "warnings": warnings,
        "synthaug_version": __version__,
    }
    with atomic_output(out, folder=False, overwrite=True) as partial:
        partial.write_text(json.dumps(result, indent=2))
    print(format_report(result))
    print(f"\nwrote {out}")
    return 0


def classes_comparable(real: ImageDataset, synthetic: ImageDataset, k: int) -> bool:
    """Whether fidelity can be scored per class: every class of either set has more than ``k``
    items in both (a sample of 20 from noisy private counts can leave a class with none)."""
    rc, sc = real.class_counts(), synthetic.class_counts()
    return all(rc.get(c, 0) > k and sc.get(c, 0) > k for c in {*rc, *sc} if rc.get(c) or sc.get(c))


def score_samples(
    model: Any,
    train: ImageDataset,
    test: ImageDataset,
    synthetic: ImageDataset,
    args: argparse.Namespace,
    *,
    stages: Stages,
    with_privacy: bool,
    features: FeatureExtractor | None = None,
    k: int = 5,
) -> tuple[FeatureExtractor, dict[str, Any]]:
    """Fidelity, utility and (``with_privacy``) privacy of ``synthetic``, one stage each.

    ``train`` is what the model was trained on and ``test`` real data it did not see; a
    :class:`FeatureExtractor` is trained on ``train`` unless ``features`` is given. ``args``
    holds the scoring options that ``evaluate`` and ``release`` both take: ``feature_epochs``,
    ``classifier``, ``classifier_epochs``, ``seed`` and ``device``. Returns the extractor and
    ``{"fidelity", "utility", "privacy"}`` (``privacy`` None without it).
    """
    seed, device = args.seed, args.device
    fx = features
    if fx is None:
        fx = FeatureExtractor(epochs=args.feature_epochs, seed=seed, device=device)
        stages.start(f"training the feature extractor ({args.feature_epochs} epochs)")
        fx.fit(train)
    stages.start("fidelity (FD, precision/recall/density/coverage, C2ST, label fidelity)")
    # Against held-out data, in an embedding trained on the disjoint train part: against its
    # own training set, a generator that copies would score best. A held-out part is often
    # small, so its classes are pooled unless each can be compared on its own.
    per_class = classes_comparable(test, synthetic, k)
    fid = fidelity(test, synthetic, features=fx, k=k, seed=seed, per_class=per_class)
    stages.start(f"utility (TRTR, TSTR, TRTS, real+synthetic; {args.classifier} classifiers)")
    util = utility(
        train,
        synthetic,
        test,
        classifier=args.classifier,
        classifier_epochs=args.classifier_epochs,
        seed=seed,
        device=device,
    )
    priv = None
    if with_privacy:
        stages.start("privacy (DCR, memorization, membership attacks)")
        priv = privacy(train, synthetic, test, seed=seed)
        priv["attacks"] = membership_attacks(train, synthetic, test, model=model, seed=seed)
    return fx, {"fidelity": fid, "utility": util, "privacy": priv}


# -- data ---------------------------------------------------------------------------------------
def evaluation_data(
    model: Any, spec: str | None, test_size: float, seed: int, options: dict[str, Any]
) -> tuple[ImageDataset, ImageDataset, str, str | None, list[str]]:
    """``(train, test, name, privacy_refusal, warnings)`` for evaluating ``model``.

    A model trained by ``synthaug train`` records its data (where, how it was read, a
    fingerprint) and its hold-out. Given that very data (``spec=None``: the recorded one),
    the train part is exactly what the model was trained on and the test part the items it
    held out (or the ``.npz`` test split it never saw). A model trained on all of the data
    has nothing unseen to be tested against, and data that is not its training data has no
    members: privacy figures are refused (``privacy_refusal`` says why), since they would
    compare the model with data it was, or was not, trained on by chance. A model saved
    without a record (from Python) is split as before (``test_size``, ``seed``).

    A private model's record (``train --dp-epsilon``) keeps no fingerprint and no hold-out
    indices (no accountant covers them): the hold-out is recomputed from its recorded
    fraction and seed, and a warning says that the data could not be checked.
    """
    metadata = getattr(model, "metadata_", None)
    record = metadata.get("training_data") if isinstance(metadata, dict) else None
    private_record = isinstance(record, dict) and record.get("private") is True
    if not isinstance(record, dict) or ("fingerprint" not in record and not private_record):
        train, test, name = load_evaluation_data(spec or "digits", test_size, seed, **options)
        warnings = []
        # A private model keeps noisy counts (a DP release), which no split matches exactly.
        private = hasattr(model, "privacy_")  # the record of a DP fit (its count release)
        counts = {c: n for c, n in train.class_counts().items() if n}
        if not private and counts != dict(model.class_counts_):
            warnings.append(
                "the model's training class counts differ from this split's train part, so it "
                "was probably trained on other data; privacy figures assume it was trained on "
                "exactly this train part (check --test-size / --split-seed)"
            )
        return train, test, name, None, warnings
    spec = spec or record["data"]
    if not any(v is not None for v in options.values()):
        recorded = record.get("read_options", {})
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()}
    split = record.get("split", "train")
    data = read_data(spec, split, **options)
    checked: list[str] = []
    if private_record:
        checked.append(
            f"the model is private and its file keeps no fingerprint of its training data, so "
            f"nothing checked that {spec} is that data; every figure assumes it is"
        )
    elif data.fingerprint() != record["fingerprint"]:
        train, test, name = load_evaluation_data(spec, test_size, seed, **options)
        refusal = (
            f"{spec} is not the data the model was trained on (it recorded {record['data']}, "
            f"{record['n_items']} items, and a fingerprint these do not match), so no item "
            f"here is known to be a member or a non-member; evaluate on its training data"
        )
        return train, test, name, refusal, []
    holdout = record.get("holdout")
    if holdout:
        if "indices" in holdout:
            indices = np.asarray(holdout["indices"], dtype=np.int64)
        else:  # a private record: the split train made, made again
            indices = data.split_indices(holdout["fraction"], seed=holdout["seed"])[1]
        held = np.zeros(len(data), dtype=bool)
        held[indices] = True
        name = (
            f"{spec} (the {int(held.sum())} items held out when training: fraction "
            f"{holdout['fraction']}, seed {holdout['seed']})"
        )
        train, test = data.subset(np.flatnonzero(~held)), data.subset(np.flatnonzero(held))
        return train, test, name, None, checked
    test = _npz_test_split(spec, options)
    if test is not None:
        return data, test, f"{spec} ({split}/test splits)", None, checked
    train, test = data.split(test_size, seed=seed)
    name = f"{spec} (split test_size={test_size}, seed={seed})"
    refusal = (
        f"the model was trained on all of {spec}, so the test part is training data too; "
        f"train with --holdout FRAC (evaluate then tests against exactly that part), or use a "
        f".npz whose test split the model never saw"
    )
    warnings = [
        *checked,
        "the test part was in the model's training data: utility and fidelity against it are "
        "optimistic",
    ]
    return train, test, name, refusal, warnings


def _npz_test_split(spec: str, options: dict[str, Any]) -> ImageDataset | None:
    """The ``test`` split of a ``.npz`` file, or None (not a .npz, or it has no test split)."""
    if not spec.lower().endswith(".npz"):
        return None
    try:
        return read_data(spec, split="test", **options)
    except DataFileError as exc:
        if "splits found" not in str(exc):
            raise
    return None


def load_evaluation_data(
    spec: str, test_size: float, seed: int, **options: Any
) -> tuple[Any, Any, str]:
    """``(train, test, name)`` from ``digits``, a MedMNIST-style ``.npz`` or a class folder of
    images or DICOM files.

    A ``.npz`` with a ``test`` split is used as it is; anything else is split here
    (stratified, ``test_size``, ``seed``), which must match how the model's training data was cut.
    ``options`` (``size``, ``window``, ``on_error``) go to :func:`read_data`.
    """
    if spec.lower().endswith(".npz"):
        data = read_data(spec, split="train", **options)
        test = _npz_test_split(spec, options)
        if test is not None:
            return data, test, f"{spec} (train/test splits)"
    else:
        data = read_data(spec, **options)
    train, test = data.split(test_size, seed=seed)
    name = "sklearn digits" if spec == "digits" else spec
    return train, test, f"{name} (split test_size={test_size}, seed={seed})"


# -- report -------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def _attack_lines(attacks: dict[str, Any]) -> list[str]:
    """The membership attacks' table of the report."""
    n = attacks["n_members"]
    lines = [
        "",
        f"membership attacks ({n} members vs {n} non-members scored; "
        f"{attacks['n_reference']} other held-out records calibrate)",
        f"          {'attack':<15}{'access':<11}{'auc':>8}{'tpr@1%fpr':>11}{'tpr@0.1%fpr':>13}",
    ]
    for name, a in attacks["attacks"].items():
        if "skipped" in a:
            lines.append(f"          {name:<15}{a['access']:<11}  skipped: {a['skipped']}")
            continue
        lines.append(
            f"          {name:<15}{a['access']:<11}{_fmt(a['auc']):>8}"
            f"{_fmt(a['tpr_at_1fpr']):>11}{_fmt(a['tpr_at_0.1fpr']):>13}"
        )
    best = attacks["strongest"]
    lines += [
        f"          strongest: {best['attack']} (AUC {_fmt(best['auc'])}, TPR at 1% FPR "
        f"{_fmt(best['tpr_at_1fpr'])})",
        f"          (AUC 0.5 = no leakage, give or take {attacks['auc_null_sd']:.3f} by chance "
        f"with these counts; TPR at x% FPR = x% by chance,",
        "           nan under 100 / 1,000 non-members, noisy with a few hundred)",
    ]
    return lines


def format_report(result: dict[str, Any]) -> str:
    """The compact table ``synthaug evaluate`` prints."""
    fid, util, priv = result["fidelity"], result["utility"], result["privacy"]
    lines = [
        f"{result['model_type']} model on {result['data']}: train {result['n_train']}, "
        f"test {result['n_test']}, synthetic {result['n_synthetic']}, seed {result['seed']}",
        f"FD / PRDC / C2ST embedding: {result['embedding']}",
    ]
    if result["privacy_spent"] is not None:
        dp = result["privacy_spent"]
        lines.append(
            f"differential privacy spent: epsilon={dp['epsilon']:.3g}, delta={dp['delta']:.3g}"
        )
    lines.append("")
    keys = ("fd", "precision", "recall", "density", "coverage", "c2st_auc", "label_fidelity")
    lines.append("fidelity  " + "".join(f"{k:>15}" for k in keys))
    lines.append("          " + "".join(f"{_fmt(fid[k]):>15}" for k in keys))
    lines.append("")
    lines.append(f"utility ({util['classifier']})")
    lines.append(f"          {'balanced_acc':>15}{'macro_f1':>15}")
    names = {
        "trtr": "train real, test real",
        "tstr": "train synth, test real",
        "trts": "train real, test synth",
        "tmtr": "train real+synth, test real",
    }
    for s, words in names.items():
        lines.append(
            f"  {s:<8}{_fmt(util[f'{s}_balanced_accuracy']):>15}{_fmt(util[f'{s}_macro_f1']):>15}"
            f"   {words}"
        )
    lines.append("")
    if priv is None:
        lines.append("privacy   not reported (see the warning below)")
    else:
        keys = ("dcr_p5_ratio", "dcr_median_ratio", "memorization_rate", "mia_auc", "exact_copies")
        lines.append("privacy   " + "".join(f"{k:>19}" for k in keys))
        lines.append("          " + "".join(f"{_fmt(priv[k]):>19}" for k in keys))
        lines.append(
            f"          (memorization baseline {priv['memorization_baseline']:.3f}; "
            f"MIA AUC 0.5 = no leakage; DCR ratios near 1 = as far as unseen real data)"
        )
        lines.extend(_attack_lines(priv["attacks"]))
    for w in result["warnings"]:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
