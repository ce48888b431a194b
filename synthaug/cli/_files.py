"""Reading data and writing samples for the subcommands.

Output formats are a dispatch table: a new format (``dicom``, say) is one function
``writer(dataset, path, synthetic=None, masks=None, overwrite=False, model_digest=None) ->
Path`` added to ``WRITERS`` (with whether it writes a folder in ``FOLDER_FORMATS`` and, when a
file suffix should select it, one entry in ``SUFFIX_FORMATS``); ``--format`` offers every key.

Outputs are checked before any work (:func:`prepare_output`): an existing file or a non-empty
folder is refused unless ``--overwrite``. Every writer builds its output aside and renames it
into place, and a folder gets ``manifest.csv`` (file, class, synthetic yes/no, the source
file of a real item, the model's digest for a synthetic one); synthetic files are named
``synthetic_...``, real PNGs keep their original names.
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
    check_output,
    load_digits,
    load_image_folder,
    load_npz,
    save_image_folder,
    save_npz,
    write_dicom,
)
from synthaug.errors import DataFileError, InvalidParameterError

Writer = Callable[..., Path]


def _source_file(meta: dict[str, Any] | None) -> str:
    """The file a real item was read from (image folders say ``path``, DICOM ``file``)."""
    meta = meta or {}
    return str(meta.get("path") or meta.get("file") or "")


def _manifest(
    dataset: ImageDataset, synthetic: torch.Tensor | None, model_digest: str | None
) -> tuple[list[dict[str, str]], list[bool]]:
    flags = [True] * len(dataset) if synthetic is None else [bool(x) for x in synthetic.tolist()]
    metadata = dataset.metadata or [{}] * len(dataset)
    rows = [
        {
            "synthetic": "yes" if is_synthetic else "no",
            "source": "" if is_synthetic else _source_file(meta),
            "model_sha256": (model_digest or "") if is_synthetic else "",
        }
        for is_synthetic, meta in zip(flags, metadata, strict=True)
    ]
    return rows, flags


def _png_names(dataset: ImageDataset, flags: list[bool]) -> list[str]:
    """``synthetic_<index>`` for synthetic items; a real item keeps its file's name when known."""
    names, taken = [], set()
    metadata = dataset.metadata or [{}] * len(dataset)
    for i, (is_synthetic, meta, label) in enumerate(
        zip(flags, metadata, dataset.labels.tolist(), strict=True)
    ):
        source = "" if is_synthetic else _source_file(meta)
        stem = Path(source).stem if source else ""
        if not stem or stem.startswith("synthetic_") or stem.startswith("."):
            stem = f"{'synthetic' if is_synthetic else 'real'}_{i:06d}"
        name, k = stem, 1
        while (label, name) in taken:  # two real files of one class with the same name
            name, k = f"{stem}_{k}", k + 1
        taken.add((label, name))
        names.append(name)
    return names


def _write_npz(
    dataset: ImageDataset,
    path: Path,
    synthetic: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
    overwrite: bool = False,
    model_digest: str | None = None,
) -> Path:
    extra = {}
    if synthetic is not None:
        extra["synthetic"] = synthetic.numpy()
    if masks is not None:
        extra["masks"] = masks.numpy()
    return save_npz(dataset, path, extra=extra or None, overwrite=overwrite)


def _write_png(
    dataset: ImageDataset,
    path: Path,
    synthetic: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
    overwrite: bool = False,
    model_digest: str | None = None,
) -> Path:
    rows, flags = _manifest(dataset, synthetic, model_digest)
    # PNG has no place for masks.
    return save_image_folder(
        dataset, path, names=_png_names(dataset, flags), manifest=rows, overwrite=overwrite
    )


def _write_dicom(
    dataset: ImageDataset,
    path: Path,
    synthetic: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
    overwrite: bool = False,
    model_digest: str | None = None,
) -> Path:
    # write_dicom marks every file synthetic; real images must never carry that mark.
    if synthetic is not None and not bool(synthetic.all()):
        raise InvalidParameterError(
            "--format dicom writes synthetic images only (every file is marked synthetic); "
            "write a mixed real + synthetic set as .npz or PNG instead, or only the synthetic "
            "items with --synthetic-only"
        )
    write_dicom(
        dataset,
        out_dir=path,
        series_description="SYNTHETIC synthaug samples",
        masks=masks,
        manifest=[{"model_sha256": model_digest or ""}] * len(dataset),
        overwrite=overwrite,
    )
    return path


WRITERS: dict[str, Writer] = {"npz": _write_npz, "png": _write_png, "dicom": _write_dicom}
# The formats that write a folder (the rest write one file).
FOLDER_FORMATS = {"png", "dicom"}
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


def prepare_output(out: Path, fmt: str | None, overwrite: bool) -> str:
    """The format of ``out``, after checking it can be written (before any work is done)."""
    fmt = output_format(out, fmt)
    check_output(out, folder=fmt in FOLDER_FORMATS, overwrite=overwrite)
    return fmt


def write_dataset(
    dataset: ImageDataset,
    out: Path,
    fmt: str | None,
    synthetic: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
    *,
    overwrite: bool = False,
    model_digest: str | None = None,
) -> Path:
    writer = WRITERS[output_format(out, fmt)]
    return writer(dataset, out, synthetic, masks, overwrite=overwrite, model_digest=model_digest)


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out (default: refuse an existing file or non-empty folder)",
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
