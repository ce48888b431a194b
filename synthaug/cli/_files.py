"""Reading data and writing samples for the subcommands.

Output formats are a dispatch table: a new format (``dicom``, say) is one function
``writer(dataset, path, synthetic=None, masks=None) -> Path`` added to ``WRITERS`` (and, when a file suffix
should select it, one entry in ``SUFFIX_FORMATS``); ``--format`` offers every key.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthaug.data import (
    ImageDataset,
    load_digits,
    load_image_folder,
    load_npz,
    save_image_folder,
    save_npz,
    write_dicom,
)
from synthaug.errors import DataFileError, InvalidParameterError

Writer = Callable[..., Path]


def _write_npz(
    dataset: ImageDataset,
    path: Path,
    synthetic: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
) -> Path:
    extra = {}
    if synthetic is not None:
        extra["synthetic"] = synthetic.numpy()
    if masks is not None:
        extra["masks"] = masks.numpy()
    return save_npz(dataset, path, extra=extra or None)


def _write_png(
    dataset: ImageDataset,
    path: Path,
    synthetic: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
) -> Path:
    return save_image_folder(dataset, path)  # PNG has no place for masks


def _write_dicom(
    dataset: ImageDataset,
    path: Path,
    synthetic: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
) -> Path:
    # write_dicom marks every file synthetic; real images must never carry that mark.
    if synthetic is not None and not bool(synthetic.all()):
        raise InvalidParameterError(
            "--format dicom writes synthetic images only (every file is marked synthetic); "
            "write a mixed real + synthetic set as .npz or PNG instead, or only the synthetic "
            "items with --synthetic-only"
        )
    write_dicom(dataset, out_dir=path, series_description="SYNTHETIC synthaug samples", masks=masks)
    return path


WRITERS: dict[str, Writer] = {"npz": _write_npz, "png": _write_png, "dicom": _write_dicom}
# Output suffix -> format when --format is not given; a path without a suffix is a PNG folder.
SUFFIX_FORMATS: dict[str, str] = {".npz": "npz", "": "png"}


def output_format(out: Path, fmt: str | None) -> str:
    """The writer for ``out``: ``fmt`` when given, else guessed from the suffix."""
    if fmt is not None:
        return fmt
    try:
        return SUFFIX_FORMATS[out.suffix.lower()]
    except KeyError:
        raise InvalidParameterError(
            f"cannot tell the output format from {out}; end it in .npz, give a folder name "
            f"without a suffix (PNG files per class), or pass --format {{{','.join(WRITERS)}}}"
        ) from None


def write_dataset(
    dataset: ImageDataset,
    out: Path,
    fmt: str | None,
    synthetic: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
) -> Path:
    writer = WRITERS[output_format(out, fmt)]
    return (
        writer(dataset, out, synthetic) if masks is None else writer(dataset, out, synthetic, masks)
    )


def read_data(spec: str, split: str = "train") -> ImageDataset:
    """``digits``, a MedMNIST-style ``.npz`` file, or a folder with one subfolder per class."""
    if spec == "digits":
        return load_digits()
    path = Path(spec)
    if path.is_dir():
        return load_image_folder(path)
    if path.suffix.lower() == ".npz":
        return load_npz(path, split=split)
    if not path.exists():
        raise DataFileError(
            f"no data at {path.resolve()}; give 'digits', a MedMNIST-style .npz file or a folder "
            f"with one subfolder of images per class"
        )
    raise DataFileError(
        f"{path} is neither a .npz file nor a folder; give 'digits', a MedMNIST-style .npz file "
        f"or a folder with one subfolder of images per class"
    )


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with a JSON value (``latent_dim=8``, ``hidden_dims=[64,32]``) or a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"must look like KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if isinstance(value, list):
        value = tuple(value)
    return key, value


def class_counts_text(dataset: ImageDataset, counts: dict[int, int] | None = None) -> str:
    counts = dataset.class_counts() if counts is None else counts
    return ", ".join(f"{dataset.classes[c]}: {n}" for c, n in counts.items() if n) or "none"


def as_label(model: Any, text: str) -> int | str:
    """A ``--class`` value: a class name of the model, else an integer label."""
    if text in model.class_names_:
        return text
    try:
        return int(text)
    except ValueError:
        return text


def synthetic_mask(n_real: int, n_total: int) -> torch.Tensor:
    return torch.from_numpy(np.arange(n_total) >= n_real)
