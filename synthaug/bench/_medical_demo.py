"""The medical demo: do synthetic lesions help a lesion classifier trained on rare lesions?

Phantom CT (or MR) slices with lesions as a 5% minority go through the whole DICOM path
(written as DICOM, read back), a conditional generator is trained on them, its lesion samples
are exported as DICOM, and a downstream classifier is trained with no augmentation, classical
augmentation, synthetic lesions, and both.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import synthaug
from synthaug.augment import AugmentedDataset, ClassicalAugmentation
from synthaug.bench._demo import format_table
from synthaug.data import ImageDataset, load_dicom_folder, make_phantoms, write_dicom
from synthaug.errors import InvalidParameterError
from synthaug.generators import create_generator, get_generator_class, list_generators
from synthaug.metrics import CNNClassifier

MEDICAL_METHODS = ("none", "classical", "synthetic", "synthetic+classical")
MEDICAL_REPORTED = ("lesion_recall", "balanced_accuracy", "auroc")
LESION = 1


def medical_generator_name() -> str:
    """The generator the demo trains: ``"cgan"`` when registered, else ``"cvae"``."""
    return "cgan" if "cgan" in list_generators() else "cvae"


class _HalfAndHalf:
    """Sample source: half of each request from classical augmentation, half from a generator."""

    def __init__(self, classical: ClassicalAugmentation, generator: Any) -> None:
        self.classical = classical
        self.generator = generator

    def sample(self, n: int, y: int, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        half = n // 2
        parts = [self.generator.sample(n - half, y=y, seed=seed)]
        if half:
            parts.append(self.classical.sample(half, y=y, seed=seed))
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def run_medical_demo(
    out: str | Path = "synthaug-medical-demo",
    *,
    kind: str = "chest",
    size: int = 64,
    n_train: int = 400,
    lesion_fraction: float = 0.05,
    n_test_per_class: int = 100,
    seeds: int = 1,
    epochs: int = 30,
    classifier_epochs: int = 15,
    classifier_size: int = 32,
    generator: str | None = None,
    verbose: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the medical demo and write DICOM folders, ``results.json`` and ``samples.png``.

    For each seed: make ``n_train`` phantom slices of ``kind`` with ``lesion_fraction`` of them
    lesion images, and a separate balanced test set; write both as DICOM under
    ``out/dicom/real`` and read them back with :func:`~synthaug.data.load_dicom_folder` (all
    later steps see only the read-back images); train the generator registered as
    ``generator`` (default: :func:`medical_generator_name`) at ``size`` x ``size``; export its lesion samples under
    ``out/dicom/synthetic``; then train :class:`~synthaug.metrics.CNNClassifier` on the
    imbalanced set as it is (``none``) and balanced with classical augmentation, synthetic
    lesions, or half of each (``synthetic+classical``). The classifier sees the slices
    average-pooled to ``classifier_size`` (the generator and the DICOM files stay at ``size``),
    which keeps the quick settings within minutes on 2 CPU cores.

    Scores on the test set: ``lesion_recall`` (sensitivity), ``balanced_accuracy`` (mean of
    sensitivity and specificity) and ``auroc`` (area under the ROC curve of the lesion
    probability).

    Returns
    -------
    dict
        ``config``, ``runs`` (one per seed and method), ``summary`` (mean and std) and
        ``dicom`` (file counts and the worst round-trip pixel error).
    """
    if kind not in ("chest", "brain"):
        raise InvalidParameterError(f"kind must be 'chest' or 'brain', got {kind!r}")
    if not 0 < lesion_fraction < 1:
        raise InvalidParameterError(f"lesion_fraction must be in (0, 1), got {lesion_fraction}")
    n_lesion = max(2, round(n_train * lesion_fraction))
    n_normal = n_train - n_lesion
    if n_normal < 2:
        raise InvalidParameterError(f"n_train={n_train} is too small for two classes")
    for name, value in (
        ("seeds", seeds),
        ("epochs", epochs),
        ("classifier_epochs", classifier_epochs),
        ("n_test_per_class", n_test_per_class),
    ):
        if value < 1:
            raise InvalidParameterError(f"{name} must be >= 1, got {value}")
    if not 8 <= classifier_size <= size:
        raise InvalidParameterError(f"classifier_size must be in [8, size], got {classifier_size}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gen_name = medical_generator_name() if generator is None else generator
    get_generator_class(gen_name)  # an unknown name fails here, before any work
    modality = "CT" if kind == "chest" else "MR"
    config = {
        "data": f"make_phantoms(kind={kind!r}, size={size})",
        "train": {"normal": n_normal, "lesion": n_lesion},
        "test_per_class": n_test_per_class,
        "seeds": seeds,
        "generator": f"{gen_name}(epochs={epochs})",
        "classifier": f"CNNClassifier(epochs={classifier_epochs}) on {classifier_size}x{classifier_size}",
        "synthetic+classical": "each class topped up half by the generator, half by classical augmentation",
        "synthaug_version": synthaug.__version__,
        "torch_version": torch.__version__,
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads",
    }
    runs: list[dict[str, Any]] = []
    dicom_info: dict[str, Any] = {"max_round_trip_error": 0.0}
    grid = None
    for seed in range(seeds):
        t0 = time.perf_counter()
        train, test, err = _phantoms_through_dicom(
            out / "dicom" / "real" / f"seed{seed}",
            kind,
            size,
            (n_normal, n_lesion),
            n_test_per_class,
            seed,
            modality,
        )
        dicom_info["max_round_trip_error"] = max(dicom_info["max_round_trip_error"], err)
        echo(
            f"seed {seed}: {len(train)} train slices ({n_lesion} lesion) and {len(test)} test "
            f"slices written as DICOM and read back in {time.perf_counter() - t0:.1f}s "
            f"(max pixel error {err:.2g})"
        )
        t0 = time.perf_counter()
        model = create_generator(gen_name, epochs=epochs, seed=seed, verbose=verbose).fit(train)
        gen_seconds = time.perf_counter() - t0
        echo(f"seed {seed}: trained {gen_name} on {size}x{size} slices in {gen_seconds:.1f}s")
        lesions, _ = model.sample(n_normal - n_lesion, y=LESION, seed=seed)
        files = write_dicom(
            lesions,
            ["lesion"] * len(lesions),
            out / "dicom" / "synthetic" / f"seed{seed}",
            modality=modality,
            series_description=f"SYNTHETIC {kind} lesion slices ({gen_name})",
        )
        dicom_info[f"synthetic_files_seed{seed}"] = len(files)
        classical = ClassicalAugmentation().fit(train)
        sources = {
            "none": None,
            "classical": classical,
            "synthetic": model,
            "synthetic+classical": _HalfAndHalf(classical, model),
        }
        test_x = _pool(test.images, classifier_size)
        for method, source in sources.items():
            t0 = time.perf_counter()
            train_set = train if source is None else AugmentedDataset(train, source, seed=seed)
            t1 = time.perf_counter()
            small = ImageDataset(
                _pool(train_set.images, classifier_size), train_set.labels, train_set.classes
            )
            clf = CNNClassifier(epochs=classifier_epochs, seed=seed).fit(small)
            proba = clf.predict_proba(test_x)[:, LESION]
            runs.append(
                {
                    "seed": seed,
                    "method": method,
                    **lesion_scores(test.labels.numpy(), proba),
                    "augment_seconds": t1 - t0 + (gen_seconds if "synthetic" in method else 0.0),
                    "classifier_seconds": time.perf_counter() - t1,
                }
            )
            echo(
                f"seed {seed}: {method:<20} "
                + "  ".join(f"{k}={runs[-1][k]:.3f}" for k in MEDICAL_REPORTED)
            )
        if grid is None:
            grid = (train, model)
    summary = summarize_medical(runs)
    result = {"config": config, "summary": summary, "runs": runs, "dicom": dicom_info}
    (out / "results.json").write_text(json.dumps(result, indent=2))
    from synthaug.bench._plots import save_sample_grid

    real, model = grid
    labels = torch.arange(real.n_classes).repeat_interleave(8)
    images, labels = model.sample(len(labels), y=labels, seed=0)
    save_sample_grid(
        real,
        images,
        labels,
        out / "samples.png",
        title=f"{kind} phantoms read back from DICOM (left) vs {gen_name} samples (right)",
    )
    echo("")
    echo(
        format_medical_table(
            summary,
            title=f"{kind} phantoms {size}x{size}, lesions {n_lesion} of {n_train} training slices, "
            f"{seeds} seed(s), mean ± std",
        )
    )
    echo(
        f"\nwrote {out / 'results.json'}, {out / 'samples.png'} and DICOM folders under {out / 'dicom'}"
    )
    return result


def lesion_scores(y_true: np.ndarray, lesion_proba: np.ndarray) -> dict[str, float]:
    """Lesion recall (sensitivity), specificity, balanced accuracy and AUROC (threshold 0.5)."""
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true)
    pred = (np.asarray(lesion_proba) >= 0.5).astype(int)
    recall = float((pred[y_true == LESION] == LESION).mean())
    specificity = float((pred[y_true != LESION] != LESION).mean())
    return {
        "lesion_recall": recall,
        "specificity": specificity,
        "balanced_accuracy": (recall + specificity) / 2,
        "auroc": float(roc_auc_score(y_true == LESION, lesion_proba)),
    }


def summarize_medical(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and std over seeds of the medical scores, per method."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for method in dict.fromkeys(r["method"] for r in runs):
        rows = [r for r in runs if r["method"] == method]
        summary[method] = {}
        for key in (*MEDICAL_REPORTED, "specificity", "augment_seconds"):
            values = np.array([r[key] for r in rows], dtype=float)
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            summary[method][key] = {"mean": float(values.mean()), "std": std}
    return summary


def format_medical_table(summary: dict[str, dict[str, dict[str, float]]], title: str = "") -> str:
    """The fixed-width table the medical demo prints."""
    return format_table(summary, title, columns=(*MEDICAL_REPORTED, "specificity"))


def _phantoms_through_dicom(
    folder: Path,
    kind: str,
    size: int,
    counts: tuple[int, int],
    n_test: int,
    seed: int,
    modality: str,
) -> tuple[ImageDataset, ImageDataset, float]:
    """Make train and test phantoms, write them as DICOM, read them back; worst pixel error."""
    made = {
        "train": make_phantoms(counts, size=size, kind=kind, seed=2 * seed),
        "test": make_phantoms(n_test, size=size, kind=kind, seed=2 * seed + 1),
    }
    back, err = {}, 0.0
    for split, ds in made.items():
        files = write_dicom(
            ds,
            out_dir=folder / split,
            modality=modality,
            series_description=f"SYNTHETIC {kind} phantom {split}",
        )
        read = load_dicom_folder(folder / split, size=(size, size), classes=ds.classes)
        order = np.argsort([str(f) for f in files])
        err = max(err, float((read.images - ds.images[order]).abs().max()))
        back[split] = read
    return back["train"], back["test"], err


def _pool(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.adaptive_avg_pool2d(images, size)
