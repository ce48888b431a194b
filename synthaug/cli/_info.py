"""``synthaug info``: what a saved model is, what it was trained on, and its file digest.

Arguments: :mod:`synthaug.cli._args.info`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from synthaug.bench import save_loss_curves
from synthaug.data import check_output
from synthaug.generators import load
from synthaug.nn import checkpoint_header


def describe_model(path: str | Path) -> dict[str, Any]:
    """The facts ``synthaug info`` prints, as a JSON-able dict (the file is checked first)."""
    model = load(path, device="cpu")
    header = checkpoint_header(path)
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
        "metadata": model.metadata_,
    }


def _num(x: float) -> str:
    return f"{x:.4g}"


def format_info(facts: dict[str, Any]) -> str:
    """The text ``synthaug info`` prints."""
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
    dp = facts["privacy"]
    if dp is None:
        lines.append("  privacy         not trained with differential privacy")
    else:
        lines.append(
            f"  privacy         epsilon {_num(dp['epsilon'])}, delta {_num(dp['delta'])} "
            f"({dp.get('accountant', '?')} accountant, noise {_num(dp['noise_multiplier'])}, "
            f"sample rate {_num(dp['sample_rate'])}, {dp['steps']} steps)"
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
        if key == "training_data" and isinstance(value, dict) and "n_items" in value:
            held = value.get("holdout")
            lines.append(
                f"  trained on      {value['data']} ({value['n_items']} items, fingerprint "
                f"{str(value.get('fingerprint'))[:12]}); "
                + (
                    f"held out {len(held['indices'])} (fraction {held['fraction']}, seed "
                    f"{held['seed']}) for 'synthaug evaluate'"
                    if held
                    else "nothing held out"
                )
            )
            continue
        text = json.dumps(value)
        lines.append(f"  {key:<15} {text if len(text) <= 100 else text[:97] + '...'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.plot is not None:
        check_output(Path(args.plot), folder=False, overwrite=True)
    facts = describe_model(args.model)
    print(json.dumps(facts, indent=2) if args.json else format_info(facts))
    if args.plot is not None:
        model = load(args.model, device="cpu")
        path = save_loss_curves(model.history_, args.plot, title=Path(args.model).name)
        print(f"wrote the loss curves to {path}")
    return 0
