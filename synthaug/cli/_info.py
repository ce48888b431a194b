"""``synthaug info``: what a saved model is, what it was trained on, and its file digest; or
what volumes are (shape, spacing, orientation, marking).

Arguments: :mod:`synthaug.cli._args.info`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from synthaug.augment import load
from synthaug.bench import save_loss_curves
from synthaug.cli._options import is_volume_path
from synthaug.cli._volumes import describe_volumes, format_volume_info
from synthaug.data import check_output
from synthaug.errors import InvalidParameterError
from synthaug.generators import BaseGenerator
from synthaug.nn import checkpoint_header


def describe_model(path: str | Path) -> dict[str, Any]:
    """The facts ``synthaug info`` prints, as a JSON-able dict (the file is checked first)."""
    model = load(path, device="cpu")
    header = checkpoint_header(path)
    if not isinstance(model, BaseGenerator):
        return describe_source(path, model, header)
    history = model.history_
    losses = {}
    for key in dict.fromkeys(k for record in history for k in record if k != "epoch"):
        values = [r[key] for r in history if key in r and math.isfinite(r[key])]
        if values:
            best = min(range(len(values)), key=values.__getitem__)
            losses[key] = {"first": values[0], "last": values[-1], "min": values[best]}
    privacy = getattr(model, "privacy_", None)
    return {
        "file": str(path),
        "sha256": model.file_digest_,
        "model_type": model.registry_name,
        "class": type(model).__name__,
        "format_version": header.get("format_version"),
        "synthaug_version": header.get("synthaug_version"),
        "sample_shape": list(model.sample_shape_),
        "classes": {
            model.class_names_[c]: model.class_counts_.get(c, 0) for c in range(model.n_classes_)
        },
        "n_weights": sum(p.numel() for p in model.modules_.parameters()),
        # As saved, not as loaded here (loading sets the device to this machine's).
        "parameters": json.loads(header["params"]),
        "epochs": len(history),
        "fit_seconds": model.fit_seconds_,
        "losses": losses,
        "privacy": privacy,
        "stores_training_images": bool(model.stores_training_images),
        "keeps_real_pixels": bool(model.keeps_real_pixels),
        "metadata": model.metadata_,
    }


def describe_source(path: str | Path, source: Any, header: dict[str, str]) -> dict[str, Any]:
    """The facts of a saved lesion source: what it samples from, and that it is real pixels."""
    names = source.class_names_
    lesions = {names[c]: int((source.patch_labels_ == c).sum()) for c in source.lesions_per_image_}
    generator = getattr(source, "generator_", None)
    return {
        "file": str(path),
        "sha256": source.file_digest_,
        "model_type": header.get("model_type"),
        "class": type(source).__name__,
        "kind": "lesion source",
        "format_version": header.get("format_version"),
        "synthaug_version": header.get("synthaug_version"),
        "sample_shape": list(source.sample_shape_),
        "classes": names,
        "normal_class": names[source.normal_label_],
        "normal_backgrounds": len(source.backgrounds_),
        "lesions": lesions,
        "parameters": json.loads(header["params"]),
        "generator": None
        if generator is None
        else {
            "model_type": generator.registry_name,
            "class": type(generator).__name__,
            "epochs": len(generator.history_),
        },
        "stores_training_images": bool(source.stores_training_images),
        "keeps_real_pixels": bool(source.keeps_real_pixels),
        "metadata": source.metadata_,
    }


def _num(x: float) -> str:
    return f"{x:.4g}"


def format_source_info(facts: dict[str, Any]) -> str:
    """The text ``synthaug info`` prints for a saved lesion source."""
    lesions = ", ".join(f"{name} ({n} lesions)" for name, n in facts["lesions"].items())
    lines = [
        f"{facts['file']}",
        f"  family          {facts['model_type']} ({facts['class']}), a fitted lesion source",
        f"  sha256          {facts['sha256']} (integrity checked; detects edits, not a signature)",
        f"  written by      synthaug {facts['synthaug_version']}, lesion source format "
        f"{facts['format_version']}",
        f"  sample shape    {tuple(facts['sample_shape'])}",
        f"  classes         {len(facts['classes'])}: {', '.join(facts['classes'])}",
        f"  samples from    {facts['normal_backgrounds']} normal images (class "
        f"{facts['normal_class']!r}) and {lesions}",
    ]
    if facts["generator"] is not None:
        g = facts["generator"]
        lines.append(
            f"  generator       {g['model_type']} ({g['class']}), {g['epochs']} epochs, "
            f"trained on the lesions"
        )
    lines.append(
        "  real pixels     STORED: its normal backgrounds and lesions are cut from real "
        "training images, and every sample is a real image with lesions moved into it (not "
        "synthetic; as private as the training images)"
    )
    params = ", ".join(f"{k}={v!r}" for k, v in facts["parameters"].items())
    lines.append(f"  parameters      {params}")
    for key, value in facts["metadata"].items():
        text = json.dumps(value)
        lines.append(f"  {key:<15} {text if len(text) <= 100 else text[:97] + '...'}")
    return "\n".join(lines)


def _saved_seed(params: Any) -> Any:
    """The first non-None ``seed`` in saved parameters (nested estimators' included)."""
    if isinstance(params, dict):
        if params.get("seed") is not None:
            return params["seed"]
        for value in params.values():
            found = _saved_seed(value)
            if found is not None:
                return found
    return None


def _training_data_line(value: dict[str, Any]) -> str:
    held = value.get("holdout")
    if value.get("private"):
        return (
            f"  trained on      {value['data']} (private: no item count or fingerprint "
            f"recorded); "
            + (
                f"held out fraction {held['fraction']} (seed {held['seed']}; the items are not "
                f"recorded, 'synthaug evaluate' recomputes them)"
                if held
                else "nothing held out"
            )
        )
    return (
        f"  trained on      {value['data']} ({value['n_items']} items, fingerprint "
        f"{str(value.get('fingerprint'))[:12]}); "
        + (
            f"held out {len(held['indices'])} (fraction {held['fraction']}, seed "
            f"{held['seed']}) for 'synthaug evaluate'"
            if held
            else "nothing held out"
        )
    )


def format_info(facts: dict[str, Any]) -> str:
    """The text ``synthaug info`` prints."""
    if facts.get("kind") == "lesion source":
        return format_source_info(facts)
    classes = ", ".join(f"{name} ({n})" for name, n in facts["classes"].items())
    seconds = facts["fit_seconds"]
    trained = f"{facts['epochs']} epochs" + (
        f" in {seconds:.1f} s" if seconds is not None else " (time not recorded)"
    )
    lines = [
        f"{facts['file']}",
        f"  family          {facts['model_type']} ({facts['class']}), "
        f"{facts['n_weights']:,} weights",
        f"  sha256          {facts['sha256']} (integrity checked; detects edits, not a signature)",
        f"  written by      synthaug {facts['synthaug_version']}, model format "
        f"{facts['format_version']}",
        f"  sample shape    {tuple(facts['sample_shape'])}",
        f"  classes         {len(facts['classes'])}: {classes}",
        f"  trained         {trained}",
    ]
    for i, (key, v) in enumerate(facts["losses"].items()):
        lines.append(
            f"  {'losses' if i == 0 else '':<15} {key}: {_num(v['first'])} -> {_num(v['last'])} "
            f"(first -> last epoch; min {_num(v['min'])})"
        )
    if not facts["losses"] and facts["epochs"]:
        lines.append("  losses          not recorded")
    dp = facts["privacy"]
    if dp is None:
        lines.append("  privacy         not trained with differential privacy")
    else:
        if dp.get("mechanism") == "mean-embedding":
            # DP-MERF: one release of the data, no training steps on it.
            how = (
                f"one Gaussian release of the class mean embedding, noise "
                f"{_num(dp['noise_multiplier'])}, with the class counts; "
                f"{dp.get('accountant', '?')} accountant"
            )
        else:
            how = (
                f"{dp.get('accountant', '?')} accountant, noise {_num(dp['noise_multiplier'])}, "
                f"sample rate {_num(dp['sample_rate'])}, {dp['steps']} steps"
            )
        lines.append(
            f"  privacy         epsilon {_num(dp['epsilon'])}, delta {_num(dp['delta'])} ({how})"
        )
        seed = _saved_seed(facts["parameters"])
        if seed is not None:
            lines.append(
                f"  {'':<15} the file keeps seed={seed}: whoever reads it can regenerate the "
                f"privacy noise (the exact class counts follow); for a release, fit with no seed"
            )
    lines.append(
        "  training images "
        + (
            "STORED in the file (its samples can be real training images; do not share it as "
            "private)"
            if facts["stores_training_images"]
            else "not stored"
        )
    )
    params = ", ".join(f"{k}={v!r}" for k, v in facts["parameters"].items())
    lines.append(f"  parameters      {params}")
    for key, value in facts["metadata"].items():
        if (
            key == "training_data"
            and isinstance(value, dict)
            and ("n_items" in value or value.get("private"))
        ):
            lines.append(_training_data_line(value))
            continue
        text = json.dumps(value)
        lines.append(f"  {key:<15} {text if len(text) <= 100 else text[:97] + '...'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if is_volume_path(args.model):
        facts = describe_volumes(args.model)
        print(json.dumps(facts, indent=2) if args.json else format_volume_info(facts))
        return 0
    if args.plot is not None:
        check_output(Path(args.plot), folder=False, overwrite=True)
    facts = describe_model(args.model)
    if args.plot is not None and facts.get("kind") == "lesion source":
        raise InvalidParameterError(
            f"{args.model} is a lesion source, which has no training losses to plot; drop --plot"
        )
    print(json.dumps(facts, indent=2) if args.json else format_info(facts))
    if args.plot is not None:
        model = load(args.model, device="cpu")
        path = save_loss_curves(model.history_, args.plot, title=Path(args.model).name)
        print(f"wrote the loss curves to {path}")
    return 0
