"""``synthaug evaluate``: fidelity, utility and privacy of a saved generator's samples."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from synthaug.cli._types import fraction, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="fidelity, utility and privacy of a saved generator's samples",
        description=(
            "Sample a saved generator and compare its samples with real data: fidelity (FD, "
            "precision/recall/density/coverage, C2ST, label fidelity), utility (TRTR, TSTR, "
            "TRTS, real+synthetic) and privacy (DCR, memorization, membership inference). "
            "The model must have been trained on the train part of the same split, and the "
            "test part must be unseen by it, or the privacy figures mean nothing."
        ),
    )
    p.add_argument("model", help="a generator saved with .save() (.safetensors)")
    p.add_argument(
        "--data",
        default="digits",
        help="'digits' or a .npz file with X/y or train_images/train_labels/test_images/"
        "test_labels arrays (default: %(default)s)",
    )
    p.add_argument("--out", default="eval.json", help="JSON output file (default: %(default)s)")
    p.add_argument(
        "--test-size",
        type=fraction,
        default=0.25,
        help="held-out fraction when the data has no test split (default: %(default)s)",
    )
    p.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of that train/test split (default: %(default)s)",
    )
    p.add_argument(
        "--n-synthetic",
        type=positive_int,
        default=None,
        help="samples to generate (default: as many as the train part, with its labels)",
    )
    p.add_argument(
        "--classifier",
        choices=("logreg", "cnn"),
        default="logreg",
        help="utility classifier (default: %(default)s)",
    )
    p.add_argument(
        "--classifier-epochs",
        type=positive_int,
        default=30,
        help="CNN epochs (default: %(default)s)",
    )
    p.add_argument("--features", help="a saved FeatureExtractor to embed with (reuse across runs)")
    p.add_argument("--save-features", help="save the trained FeatureExtractor to this file")
    p.add_argument(
        "--feature-epochs",
        type=positive_int,
        default=30,
        help="epochs of a newly trained FeatureExtractor (default: %(default)s)",
    )
    p.add_argument(
        "--k", type=positive_int, default=5, help="k of the k-NN metrics (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="sampling and metric seed (default: 0)")
    p.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda[:N]'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    import synthaug
    from synthaug.errors import InvalidDataError, InvalidParameterError, ShapeMismatchError
    from synthaug.metrics import FeatureExtractor, fidelity, privacy, utility

    if args.seed < 0 or args.split_seed < 0:
        raise InvalidParameterError("--seed and --split-seed must be >= 0")
    model = synthaug.load(args.model, device=args.device)
    train, test, data_name = load_evaluation_data(args.data, args.test_size, args.split_seed)
    if tuple(model.sample_shape_) != tuple(train.sample_shape):
        raise ShapeMismatchError(
            f"the model makes samples of shape {tuple(model.sample_shape_)} but {data_name} has "
            f"{train.sample_shape}; evaluate it on the data it was trained on"
        )
    if len(model.class_names_) != train.n_classes:
        raise InvalidDataError(
            f"the model knows {len(model.class_names_)} classes {model.class_names_} but "
            f"{data_name} has {train.n_classes} {train.classes}"
        )
    warnings = []
    if {c: n for c, n in train.class_counts().items() if n} != dict(model.class_counts_):
        warnings.append(
            "the model's training class counts differ from this split's train part, so it was "
            "probably trained on other data; privacy figures assume it was trained on exactly "
            "this train part (check --test-size / --split-seed)"
        )

    rng = np.random.default_rng(args.seed)
    n = args.n_synthetic or len(train)
    idx = rng.permutation(len(train)) if n == len(train) else rng.choice(len(train), n)
    images, labels = model.sample(n, y=train.labels[idx], seed=args.seed)
    synthetic = synthaug.data.ImageDataset(images, labels, train.classes)

    if args.features:
        fx = FeatureExtractor.load(args.features, device=args.device)
    else:
        fx = FeatureExtractor(epochs=args.feature_epochs, seed=args.seed, device=args.device)
        fx.fit(train)
    if args.save_features:
        fx.save(args.save_features)

    fid = fidelity(train, synthetic, features=fx, k=args.k, seed=args.seed)
    util = utility(
        train,
        synthetic,
        test,
        classifier=args.classifier,
        classifier_epochs=args.classifier_epochs,
        seed=args.seed,
        device=args.device,
    )
    priv = privacy(train, synthetic, test, seed=args.seed)
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
        "fidelity": fid,
        "utility": util,
        "privacy": priv,
        "warnings": warnings,
        "synthaug_version": synthaug.__version__,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(format_report(result))
    print(f"\nwrote {out}")
    return 0


# -- data ---------------------------------------------------------------------------------------
# Kept minimal and local on purpose: synthaug.data.load_npz (issue 4) will replace it.
def load_evaluation_data(spec: str, test_size: float, seed: int) -> tuple[Any, Any, str]:
    """``(train, test, name)`` from ``"digits"`` or a ``.npz`` file."""
    from synthaug.data import load_digits

    if spec == "digits":
        train, test = load_digits().split(test_size, seed=seed)
        return train, test, f"sklearn digits (split test_size={test_size}, seed={seed})"
    return _load_npz(Path(spec), test_size, seed)


def _load_npz(path: Path, test_size: float, seed: int) -> tuple[Any, Any, str]:
    import zipfile

    import numpy as np

    from synthaug.data import from_arrays
    from synthaug.errors import DataFileError, InvalidDataError

    if not path.is_file():
        raise DataFileError(f"no data file at {path}; give 'digits' or a .npz file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFileError(f"{path} is not a readable .npz file: {exc}") from exc

    def labels(name: str) -> Any:
        y = arrays[name]
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise DataFileError(
                f"{path}: {name} must hold one label per sample, got shape {y.shape} "
                f"(multi-label data is not supported)"
            )
        return y

    try:
        if {"train_images", "train_labels", "test_images", "test_labels"} <= set(arrays):
            y_tr, y_te = labels("train_labels"), labels("test_labels")
            if not (
                np.issubdtype(y_tr.dtype, np.integer) and np.issubdtype(y_te.dtype, np.integer)
            ):
                raise DataFileError(f"{path}: train_labels and test_labels must be integers")
            classes = [str(i) for i in range(int(max(y_tr.max(), y_te.max())) + 1)]
            train = from_arrays(arrays["train_images"], y_tr, classes)
            test = from_arrays(arrays["test_images"], y_te, classes)
            return train, test, f"{path} (train/test arrays)"
        if {"X", "y"} <= set(arrays):
            data = from_arrays(arrays["X"], labels("y"))
            train, test = data.split(test_size, seed=seed)
            return train, test, f"{path} (X/y, split test_size={test_size}, seed={seed})"
    except InvalidDataError as exc:
        raise DataFileError(f"{path}: {exc}") from exc
    raise DataFileError(
        f"{path} holds arrays {sorted(arrays)}; expected X and y, or train_images, "
        f"train_labels, test_images and test_labels"
    )


# -- report -------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


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
    keys = ("dcr_p5_ratio", "dcr_median_ratio", "memorization_rate", "mia_auc", "exact_copies")
    lines.append("privacy   " + "".join(f"{k:>19}" for k in keys))
    lines.append("          " + "".join(f"{_fmt(priv[k]):>19}" for k in keys))
    lines.append(
        f"          (memorization baseline {priv['memorization_baseline']:.3f}; "
        f"MIA AUC 0.5 = no leakage; DCR ratios near 1 = as far as unseen real data)"
    )
    for w in result["warnings"]:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
