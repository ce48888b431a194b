"""``synthaug release``: a synthetic data set to share, with a data card that says what it is.

The folder holds the samples, ``DATA_CARD.md`` (for people) and ``card.json`` (for tools): the
generator and its training summary, the privacy guarantee with what it covers and what not,
an audit of the released samples against real data the model did not train on, a sample
grid, and the SHA-256 of every file. It is built aside and renamed into place, like every
output of synthaug.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from synthaug._utils import finite_json
from synthaug._version import __version__
from synthaug.augment import load
from synthaug.bench import save_sample_grid
from synthaug.cli._evaluate import evaluation_data, score_samples
from synthaug.cli._files import (
    DicomMarking,
    check_data_fits_model,
    class_counts_text,
    data_options,
    dicom_modality,
    write_dataset,
)
from synthaug.cli._progress import Stages
from synthaug.data import ImageDataset, atomic_output, check_output
from synthaug.errors import InvalidParameterError

CARD_MD = "DATA_CARD.md"
CARD_JSON = "card.json"
GRID = "sample_grid.png"
# Where the samples go inside the release folder, per format.
DATA_NAMES = {"npz": "synthetic.npz", "png": "images", "dicom": "dicom"}

# What a DP guarantee covers and what not, in short; docs/privacy.md has the full text.
COVERS = [
    "the generator's training (DP-SGD, Poisson sampling, Rényi DP accountant)",
    "the class counts the model keeps and samples by (a Gaussian release in the same budget)",
    "every sample drawn from the model (post-processing)",
]
# The same for a model trained on a mean embedding released once (``dp-merf``).
EMBEDDING_COVERS = [
    "the class mean embedding the generator was trained on (random Fourier features of "
    "every record, released once by the Gaussian mechanism; analytic Gaussian accounting)",
    "the class counts the model keeps and samples by (a Gaussian release in the same budget)",
    "the generator's training, which reads the release only (post-processing)",
    "every sample drawn from the model (post-processing)",
]
NOT_COVERED = [
    "the class names, and which classes have records (public)",
    "choosing hyper-parameters by looking at the private data (tuning is not accounted)",
    "the model file itself when shared (its history, fit time and seed are not private)",
    "the audit below: it reads the private training data and reports on it (keep the card's "
    "audit section to the data owner, or publish it knowing it is not covered)",
    "noise from seeded generators (reproducible, not cryptographically secure; fit with "
    "seed=None for a real release)",
]


def not_covered(model: Any) -> list[str]:
    """:data:`NOT_COVERED`, with what the model file holds unnoised named as it is: a file
    saved without its losses, fit time or seed (``train --dp-epsilon``) does not hold them."""
    unnoised = ["its class names"]
    if any(len(record) > 1 for record in model.history_):
        unnoised.append("training losses")
    if model.fit_seconds_ is not None:
        unnoised.append("fit time")
    # A per-class model keeps its members' seeds (its own is its estimator's).
    saved = [getattr(m, "seed", None) for m in [model, *getattr(model, "members_", {}).values()]]
    if any(seed is not None for seed in saved):
        unnoised.append("seed")
    file = f"the model file itself when shared ({', '.join(unnoised)}: not private)"
    return [file if item.startswith("the model file") else item for item in NOT_COVERED]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(args: argparse.Namespace) -> int:
    out = check_output(Path(args.out), folder=True, overwrite=args.overwrite)
    model = load(args.model, device=args.device)
    if model.keeps_real_pixels:
        # Its samples are real patient images, changed (copy-paste: real lesions pasted into
        # real normal images); no flag makes them a synthetic data set to share.
        raise InvalidParameterError(
            f"{args.model} holds a {type(model).__name__}, whose samples are real training images "
            f"changed (it keeps real pixels), so they cannot be released as synthetic data "
            f"with or without --allow-exemplars; release from a generator instead"
        )
    if model.stores_training_images and not args.allow_exemplars:
        raise InvalidParameterError(
            f"{args.model} stores training images (a {model.registry_name} samples variants of "
            f"real exemplars), so its samples can be real images; pass --allow-exemplars to "
            f"release them anyway (the card will say so)"
        )
    if len(model.sample_shape_) != 3 and args.format != "npz":
        raise InvalidParameterError(
            f"--format {args.format} writes images; this model makes feature vectors"
        )
    train, test, data_name, refusal, warnings = evaluation_data(
        model, args.data, 0.25, args.seed, data_options(args)
    )
    check_data_fits_model(model, train, data_name)
    # The model's training data (DICOM or not) says what the samples are images of.
    modality = dicom_modality(train, args.modality) if args.format == "dicom" else None
    names = list(model.class_names_)
    if args.no_class_names:
        # Numbered as write_dicom(class_names=False) numbers them, in the model's order; the
        # audit's data are renamed too, so that no per-class figure carries a name.
        names = [f"class_{i}" for i in range(len(names))]
        train, test = (ImageDataset(d.images, d.labels, names) for d in (train, test))
    stages = Stages("release", 6 - (refusal is not None), quiet=args.quiet)
    stages.start(f"sampling {args.n} samples")
    images, labels, provenance = model.sample(args.n, seed=args.seed, return_provenance=True)
    released = ImageDataset(images, labels, names)
    derived = any(p.is_derived for p in provenance)
    # Derived samples (variants of the model's stored images) are marked so, studies unknown.
    dicom = DicomMarking()
    if modality is not None:
        dicom = DicomMarking(
            modality=modality,
            derivation=f"released by synthaug from a {model.registry_name} model"
            if derived
            else None,
        )
    _, scores = score_samples(
        model, train, test, released, args, stages=stages, with_privacy=refusal is None
    )
    stages.start("writing the release")
    card = _card(args, model, released, train, test, data_name, scores, refusal, warnings)
    card["release"]["origin"] = "derived" if derived else "synthetic"
    if derived:
        card["release"]["how"] = provenance[0].how
    with atomic_output(out, folder=True, overwrite=args.overwrite) as partial:
        name = DATA_NAMES[args.format]
        write_dataset(
            released,
            partial / name,
            args.format,
            provenance,
            model_digest=model.file_digest_,
            dicom=dicom,
        )
        if released.is_image and released.sample_shape[0] in (1, 3):
            per_class = max(1, min(8, args.n // max(1, len(model.classes_))))
            save_sample_grid(
                None,
                images,
                labels,
                partial / GRID,
                classes=names,
                per_class=per_class,
                title=f"released {'derived' if derived else 'synthetic'} samples",
            )
        files = sorted(p for p in partial.rglob("*") if p.is_file())
        card["files"] = {p.relative_to(partial).as_posix(): _sha256(p) for p in files}
        (partial / CARD_JSON).write_text(json.dumps(finite_json(card), indent=2))
        (partial / CARD_MD).write_text(format_card(card))
    print(f"released {args.n} samples ({class_counts_text(released)}) to {out}")
    print(f"data card: {out / CARD_MD}")
    if refusal is not None:
        print(f"warning: the card has no privacy audit: {refusal}")
    return 0


def _card(
    args: argparse.Namespace,
    model: Any,
    released: ImageDataset,
    train: ImageDataset,
    test: ImageDataset,
    data_name: str,
    scores: dict[str, Any],
    refusal: str | None,
    warnings: list[str],
) -> dict[str, Any]:
    privacy = getattr(model, "privacy_", None)
    guarantee: dict[str, Any] = {"differentially_private": privacy is not None}
    if privacy is not None:
        guarantee.update(
            {
                "epsilon": privacy["epsilon"],
                "delta": privacy["delta"],
                "accountant": privacy.get("accountant"),
                "noise_multiplier": privacy.get("noise_multiplier"),
                "sample_rate": privacy.get("sample_rate"),
                "steps": privacy.get("steps"),
                "mechanism": privacy.get("mechanism", "dp-sgd"),
                "sampling": "Poisson" if "mechanism" not in privacy else "none",
                "count_release": privacy.get("counts"),
                "covers": COVERS if "mechanism" not in privacy else EMBEDDING_COVERS,
                "not_covered": not_covered(model),
            }
        )
    else:
        guarantee["note"] = (
            "no formal privacy guarantee: the model was not trained with differential privacy; "
            "the audit below is empirical and cannot rule out leaks"
        )
    return {
        "release": {
            "n": len(released),
            "format": args.format,
            "data": DATA_NAMES[args.format],
            "seed": args.seed,
            "classes": {released.classes[c]: n for c, n in released.class_counts().items()},
            "class_names_omitted": bool(args.no_class_names),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "synthaug_version": __version__,
        },
        "generator": {
            "model_type": model.registry_name,
            "file_sha256": model.file_digest_,
            "epochs": len(model.history_),
            "fit_seconds": model.fit_seconds_,
            "training_class_counts": {
                released.classes[c]: n for c, n in model.class_counts_.items()
            },
            "counts_are_noisy": privacy is not None,
            "stores_training_images": bool(model.stores_training_images),
            "exemplars_allowed": bool(args.allow_exemplars),
        },
        "privacy_guarantee": guarantee,
        "audit": {
            "data": data_name,
            "n_train": len(train),
            "n_heldout": len(test),
            "fidelity": scores["fidelity"],
            "utility": scores["utility"],
            "privacy": scores["privacy"],
            "privacy_refused": refusal,
            "warnings": warnings,
        },
    }


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def format_card(card: dict[str, Any]) -> str:
    """``DATA_CARD.md`` from ``card.json``'s content."""
    rel, gen, dp, audit = (
        card["release"],
        card["generator"],
        card["privacy_guarantee"],
        card["audit"],
    )
    derived = rel.get("origin") == "derived"
    if derived:
        what = (
            f"**Every item is derived from patient images, not synthetic**: {rel['how']}. "
            "Items can be (near) copies of real ones; treat them as the training data."
        )
    else:
        what = "Every item is generated; none is a real record" + (
            " — **except that this model samples variants of stored training images, so items "
            "can be (near) copies of real ones**."
            if gen["stores_training_images"]
            else "."
        )
    lines = [
        "# Data card: samples derived from training images" if derived else "# Synthetic data card",
        "",
        f"{rel['n']} {'derived' if derived else 'synthetic'} samples in `{rel['data']}` "
        f"({rel['format']}), made by synthaug {rel['synthaug_version']} on {rel['created']} "
        f"(seed {rel['seed']}). {what}",
        "",
        "Classes: "
        + ", ".join(f"{c} ({n})" for c, n in rel["classes"].items())
        + (
            " (the class names are left out: classes are numbered in the model's order)"
            if rel.get("class_names_omitted")
            else ""
        ),
        "",
        "## Generator",
        "",
        f"- type `{gen['model_type']}`, model file SHA-256 `{gen['file_sha256']}`",
        f"- trained {gen['epochs']} epochs"
        + (f" in {gen['fit_seconds']:.0f} s" if gen["fit_seconds"] is not None else ""),
        "- training counts per class"
        + (" (**noisy**: a DP release, not the true counts)" if gen["counts_are_noisy"] else "")
        + ": "
        + ", ".join(f"{c} {n}" for c, n in gen["training_class_counts"].items()),
        f"- stores training images: {'yes' if gen['stores_training_images'] else 'no'}",
        "",
        "## Privacy guarantee",
        "",
    ]
    if dp["differentially_private"]:
        if dp.get("mechanism", "dp-sgd") == "dp-sgd":
            how = (
                f"{dp['accountant']} accountant, {dp['sampling']} sampling at rate "
                f"{_num(dp['sample_rate'])}, {dp['steps']} steps, noise multiplier "
                f"{_num(dp['noise_multiplier'])}"
            )
        else:
            how = (
                f"one Gaussian release of the class mean embedding with noise multiplier "
                f"{_num(dp['noise_multiplier'])}, composed with the class counts; "
                f"{dp['accountant']} accountant"
            )
        lines += [
            f"(epsilon, delta) = ({dp['epsilon']:.3g}, {dp['delta']:.3g})-differential privacy "
            f"with respect to adding or removing one training record ({how}).",
            "",
            "Covers:",
            *[f"- {c}" for c in dp["covers"]],
            "",
            "Does not cover:",
            *[f"- {c}" for c in dp["not_covered"]],
        ]
    else:
        lines.append(f"**None.** {dp['note'][0].upper()}{dp['note'][1:]}.")
    lines += ["", "## Audit on real data the model did not train on", ""]
    lines.append(
        f"Data: {audit['data']}; {audit['n_train']} training items, {audit['n_heldout']} held out."
    )
    fid, util, priv = audit["fidelity"], audit["utility"], audit["privacy"]
    lines += [
        "",
        "Fidelity compares the released samples with the held-out items, in an embedding "
        "trained on the training items; utility trains a classifier on them and tests it on "
        "the held-out items.",
        "",
        "| fidelity | value |",
        "|---|---:|",
        *[
            f"| {k} | {_num(fid.get(k))} |"
            for k in ("fd", "precision", "recall", "density", "coverage", "c2st_auc")
        ],
        "",
        "| utility (balanced accuracy on held-out real data) | value |",
        "|---|---:|",
        f"| trained on real (TRTR) | {_num(util.get('trtr_balanced_accuracy'))} |",
        f"| trained on these samples (TSTR) | {_num(util.get('tstr_balanced_accuracy'))} |",
        "",
    ]
    if priv is None:
        lines.append(f"**No privacy audit**: {audit['privacy_refused']}")
    else:
        report = priv.get("attacks", {})
        attacks = dict(report.get("attacks", {}))
        if "strongest" in report:
            attacks[f"strongest ({report['strongest']['attack']})"] = report["strongest"]
        lines += [
            f"Distance to closest record: 5th-percentile ratio {_num(priv.get('dcr_p5_ratio'))}, "
            f"memorisation rate {_num(priv.get('memorization_rate'))} (baseline "
            f"{_num(priv.get('memorization_baseline'))}), exact copies "
            f"{_num(priv.get('exact_copies'))}.",
            "",
            "| membership attack | AUC | TPR at 1% FPR |",
            "|---|---:|---:|",
        ]
        for name, result in attacks.items():
            if isinstance(result, dict) and "auc" in result:
                lines.append(
                    f"| {name} | {_num(result.get('auc'))} | {_num(result.get('tpr_at_1fpr'))} |"
                )
        lines.append("")
        lines.append(
            f"{report.get('n_members')} training records against {report.get('n_nonmembers')} "
            f"unseen ones. AUC 0.5 means the attack cannot tell them apart (its spread when "
            f"nothing leaks: {_num(report.get('auc_null_sd'))}); TPR at 1% FPR is noisy with a "
            f"few hundred candidates."
        )
    for w in audit["warnings"]:
        lines.append(f"\nWarning: {w}")
    lines += ["", "## Files (SHA-256)", ""]
    lines += [f"- `{name}` `{digest}`" for name, digest in card.get("files", {}).items()]
    return "\n".join(lines) + "\n"
