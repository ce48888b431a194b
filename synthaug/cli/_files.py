"""Reading data and writing samples for the subcommands.

Every command that reads real data takes the same options, declared (torch-free) by
:func:`~synthaug.cli._options.add_data_arguments` and read by :func:`read_data`: ``--data`` is ``digits``, a MedMNIST-style ``.npz`` file, or a
folder with one subfolder per class holding either images or DICOM files (found by their
``DICM`` preamble, with or without a ``.dcm`` suffix). :func:`check_data_fits_model` is the one
check that real data suits a saved model.

Output formats are a dispatch table: a new format (``dicom``, say) is one function
``writer(output: Output) -> Path`` added to ``WRITERS``, and its name to the
torch-free :mod:`synthaug.cli._options` that declares ``--format`` (``OUTPUT_FORMATS``; with
whether it writes a folder in ``FOLDER_FORMATS`` and, when a file suffix should select it, one
entry in ``SUFFIX_FORMATS``); a test checks that both name the same formats. Every writer gets
each item's :class:`~synthaug.data.Provenance` (real, synthetic or derived from real training
items, and which ones) and says it in its own way; only the DICOM writer has a place for
:class:`DicomMarking` (the Modality, how derived images were made, the input's studies).

Outputs are checked before any work (:func:`prepare_output`): an existing file or a non-empty
folder is refused unless ``--overwrite``. Every writer builds its output aside and renames it
into place. A folder gets ``manifest.csv`` (file, class, origin real/synthetic/derived,
synthetic yes/no, the source file of a real item, the training items a derived one was made
from, the model's digest for an added one); added files are named ``synthetic_...`` or
``derived_...`` after their origin, real PNGs keep their original names. A ``.npz`` file gets
``<split>_origin`` (strings) and the ``<split>_synthetic`` and ``<split>_derived`` flags.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydicom.misc import is_dicom

from synthaug.cli._options import DATA_HELP, FOLDER_FORMATS, SYNTHETIC_ONLY, output_format
from synthaug.data import (
    DicomDataset,
    ImageDataset,
    Provenance,
    check_output,
    load_dicom_folder,
    load_digits,
    load_image_folder,
    load_npz,
    made_from,
    sample_origin,
    save_image_folder,
    save_npz,
    write_dicom,
)
from synthaug.data._scan import IMAGE_SUFFIXES, FolderScan, is_image_file, shown_path
from synthaug.errors import (
    DataFileError,
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
)


@dataclass(frozen=True)
class DicomMarking:
    """What ``--format dicom`` writes beyond each item's provenance (other formats have no place).

    Whether the files are marked synthetic or derived follows the items' provenance.

    Attributes
    ----------
    modality : str
        The Modality attribute: the input's (:func:`dicom_modality`), ``--modality``, or OT.
    derivation : str or None
        For derived images (real pixels that synthaug changed, or variants of a model's stored
        training images): which command made them, for Derivation Description.
    source_studies : tuple of str
        With a derivation: the Study Instance UIDs of the real images, when they were DICOM.
    """

    modality: str = "OT"
    derivation: str | None = None
    source_studies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Output:
    """What :func:`write_dataset` hands its writer: one record, so that every writer has the
    same one-argument signature and a new option is one field here, not one more parameter in
    each writer.

    Attributes
    ----------
    dataset : ImageDataset
        The items to write.
    path : Path
        ``--out``: a file or folder, as the format writes.
    provenance : list of Provenance or None
        One record per item; ``None`` only for a plain ``.npz`` data set (:func:`write_dataset`
        refuses it for a folder, so the folder writers always have the records).
    sources : list of dict or None
        The metadata of the data the provenance's training items index.
    masks : torch.Tensor or None
        Lesion masks, one per item, for formats that have a place for them.
    overwrite : bool
        Replace an existing output.
    model_digest : str or None
        The SHA-256 of the model that made the added items.
    dicom : DicomMarking
        What DICOM output writes beyond the provenance.
    """

    dataset: ImageDataset
    path: Path
    provenance: list[Provenance] | None
    sources: list[dict[str, Any]] | None
    masks: torch.Tensor | None
    overwrite: bool
    model_digest: str | None
    dicom: DicomMarking


Writer = Callable[[Output], Path]


def _source_file(meta: dict[str, Any] | None) -> str:
    """The file a real item was read from (image folders say ``path``, DICOM ``file``)."""
    meta = meta or {}
    return str(meta.get("path") or meta.get("file") or "")


def _manifest(
    dataset: ImageDataset,
    provenance: list[Provenance],
    sources: list[dict[str, Any]] | None,
    model_digest: str | None,
) -> list[dict[str, str]]:
    metadata = dataset.metadata or [{}] * len(dataset)
    made = made_from(provenance, sources)
    rows = []
    for p, meta, words in zip(provenance, metadata, made, strict=True):
        real = p.is_real
        rows.append(
            {
                "origin": p.origin,
                "synthetic": "yes" if p.is_synthetic else "no",
                "source": _source_file(meta) if real else "",
                "made_from": words,
                "model_sha256": "" if real else (model_digest or ""),
            }
        )
    return rows


def _png_names(dataset: ImageDataset, provenance: list[Provenance]) -> list[str]:
    """``synthetic_<index>`` or ``derived_<index>`` for added items, after their origin; a real
    item keeps its file's name when known."""
    names, taken = [], set()
    metadata = dataset.metadata or [{}] * len(dataset)
    for i, (p, meta, label) in enumerate(
        zip(provenance, metadata, dataset.labels.tolist(), strict=True)
    ):
        source = _source_file(meta) if p.is_real else ""
        stem = Path(source).stem if source else ""
        if not stem or stem.startswith(_ADDED_PREFIXES) or stem.startswith("."):
            stem = f"{p.origin}_{i:06d}"
        name, k = stem, 1
        while (label, name) in taken:  # two real files of one class with the same name
            name, k = f"{stem}_{k}", k + 1
        taken.add((label, name))
        names.append(name)
    return names


def _write_npz(output: Output) -> Path:
    extra = {}
    if output.provenance is not None:
        extra = {
            "origin": np.asarray([p.origin for p in output.provenance], dtype=str),
            "synthetic": np.asarray([p.is_synthetic for p in output.provenance], dtype=bool),
            "derived": np.asarray([p.is_derived for p in output.provenance], dtype=bool),
        }
    if output.masks is not None:
        extra["masks"] = output.masks.numpy()
    return save_npz(output.dataset, output.path, extra=extra or None, overwrite=output.overwrite)


def _write_png(output: Output) -> Path:
    dataset, provenance = output.dataset, output.provenance
    rows = _manifest(dataset, provenance, output.sources, output.model_digest)
    # PNG has no place for masks.
    return save_image_folder(
        dataset,
        output.path,
        names=_png_names(dataset, provenance),
        manifest=rows,
        overwrite=output.overwrite,
    )


def _write_dicom(output: Output) -> Path:
    provenance, dicom = output.provenance, output.dicom
    # write_dicom marks every file synthetic or derived; a real image unchanged is neither.
    if any(p.is_real for p in provenance):
        raise InvalidParameterError(
            f"{SYNTHETIC_ONLY}; write a mixed real + synthetic set as .npz or PNG instead, or "
            f"only the synthetic items with --synthetic-only"
        )
    derived = any(p.is_derived for p in provenance)
    write_dicom(
        output.dataset,
        out_dir=output.path,
        series_description="synthaug samples",  # the mark (SYNTHETIC or DERIVED) is prepended
        modality=dicom.modality,
        derivation=dicom.derivation if derived else None,
        source_studies=dicom.source_studies if derived else (),
        provenance=provenance,
        source_metadata=output.sources,
        masks=output.masks,
        manifest=[{"model_sha256": output.model_digest or ""}] * len(output.dataset),
        overwrite=output.overwrite,
    )
    return output.path


# The names of added PNG files; a real file named so is renamed, so no real item is taken for
# an added one.
_ADDED_PREFIXES = ("synthetic_", "derived_")
# One writer per name of synthaug.cli._options.OUTPUT_FORMATS.
WRITERS: dict[str, Writer] = {"npz": _write_npz, "png": _write_png, "dicom": _write_dicom}


def prepare_output(out: Path, fmt: str | None, overwrite: bool) -> str:
    """The format of ``out``, after checking it can be written (before any work is done)."""
    fmt = output_format(out, fmt)
    check_output(out, folder=fmt in FOLDER_FORMATS, overwrite=overwrite)
    return fmt


def write_dataset(
    dataset: ImageDataset,
    out: Path,
    fmt: str | None,
    provenance: list[Provenance] | None,
    *,
    sources: list[dict[str, Any]] | None = None,
    masks: torch.Tensor | None = None,
    overwrite: bool = False,
    model_digest: str | None = None,
    dicom: DicomMarking = DicomMarking(),
) -> Path:
    """Write ``dataset`` as ``fmt``, each item marked by its ``provenance`` (one per item).

    ``sources`` is the metadata of the data the provenance's training items index (the input,
    when the source was fitted on it here); without it the items are not named. ``None``
    writes a plain ``.npz`` data set (no origin arrays: ``make-data``); a folder's manifest
    and DICOM marking need a record per item.
    """
    if provenance is None:
        if output_format(out, fmt) != "npz":
            raise TypeError("write_dataset needs one provenance record per item for a folder")
    elif len(provenance) != len(dataset):
        raise ShapeMismatchError(f"{len(provenance)} provenance records for {len(dataset)} items")
    writer = WRITERS[output_format(out, fmt)]
    return writer(
        Output(
            dataset=dataset,
            path=out,
            provenance=provenance,
            sources=sources,
            masks=masks,
            overwrite=overwrite,
            model_digest=model_digest,
            dicom=dicom,
        )
    )


def check_derived_allowed(
    what: str, source: Any, *, allow_real_pixels: bool = False, allow_exemplars: bool = False
) -> None:
    """Refuse DICOM of samples derived from patient images unless the flag that names the
    risk was given, and a flag where it allows nothing (before anything is fitted or written).

    ``--allow-real-pixels`` covers a source that keeps real pixels (copies, pasted lesions);
    ``--allow-exemplars`` (as ``release`` asks) a model whose samples are variants of its
    stored training images.
    """
    real_pixels = bool(getattr(source, "keeps_real_pixels", True))
    exemplars = not real_pixels and sample_origin(source) == "derived"
    kind = {
        "real pixels": "keeps real pixels (each sample is a real training image, changed)",
        "exemplars": "stores training images and each sample is a variant of one of them",
        "new": "generates new images, written marked synthetic",
    }["real pixels" if real_pixels else "exemplars" if exemplars else "new"]
    needed = "--allow-real-pixels" if real_pixels else "--allow-exemplars" if exemplars else None
    # A flag that names another risk first: its message says which one to use.
    for flag, given in (
        ("--allow-real-pixels", allow_real_pixels),
        ("--allow-exemplars", allow_exemplars),
    ):
        if given and flag != needed:
            fix = f"use {needed} instead" if needed is not None else f"drop {flag}"
            raise InvalidParameterError(f"{flag} is for {_ALLOWS[flag]}; {what} {kind}: {fix}")
    if needed is not None and not (allow_real_pixels or allow_exemplars):
        raise InvalidParameterError(
            f"{what} {kind}, so its DICOM files are derived from patient images and cannot be "
            f"marked synthetic; pass {needed} to write them marked derived (Conversion Type "
            f"WSD, Patient Identity Removed NO: patient data, not for sharing), or write .npz; "
            f"nothing was written"
        )


# What each of the flags that let DICOM hold patient data is for.
_ALLOWS = {
    "--allow-real-pixels": "sources whose samples are real pixels",
    "--allow-exemplars": "models whose samples are variants of stored training images",
}


def dicom_modality(dataset: ImageDataset | None, override: str | None = None) -> str:
    """The Modality DICOM output made from ``dataset`` gets: ``override`` when given, else the
    one modality of ``dataset``'s DICOM files, else ``"OT"`` (other).

    Raises
    ------
    InvalidDataError
        The DICOM files of ``dataset`` have more than one modality (and no ``override``): one
        series has one Modality, and synthaug does not choose one for the user.
    """
    if override is not None:
        return override
    metadata = (dataset.metadata if dataset is not None else None) or []
    found = sorted({str(m.get("modality") or "") for m in metadata if m} - {""})
    if len(found) > 1:
        raise InvalidDataError(
            f"the DICOM input mixes modalities ({', '.join(found)}), and a DICOM series has "
            f"one; pass --modality with the one to write ({found[0]}, ...), or OT for other"
        )
    return found[0] if found else "OT"


def dicom_source_studies(dataset: ImageDataset) -> tuple[str, ...]:
    """The Study Instance UIDs of ``dataset``'s DICOM files, in order of first appearance."""
    metadata = dataset.metadata or []
    studies = dict.fromkeys(str(m.get("StudyInstanceUID") or "") for m in metadata if m)
    return tuple(uid for uid in studies if uid)


# DICOM files are found by content (pydicom's 'DICM' preamble); these suffixes count as DICOM
# even when the file is damaged, so that --on-error decides about it.
_DICOM_SUFFIXES = (".dcm", ".dicom")
# How many skipped files the summary names; the count covers all of them.
_SKIPPED_SHOWN = 3


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """The reading options :func:`add_data_arguments` added, as keywords of :func:`read_data`."""
    return {
        "size": args.size,
        "window": args.window,
        "on_error": args.on_error,
        "feature_range": args.feature_range,
    }


def read_data(
    spec: str,
    split: str = "train",
    *,
    size: tuple[int, int] | None = None,
    window: str | tuple[float, float] | None = None,
    on_error: str | None = None,
    feature_range: tuple[float, float] | None = None,
) -> ImageDataset:
    """Read ``--data``: ``digits``, a ``.npz`` file, or a class folder of images or DICOM files.

    Parameters
    ----------
    spec : str
        ``digits``, a MedMNIST-style ``.npz`` file, or a folder with one subfolder per class
        holding either images or DICOM files (one kind only).
    split : str
        Split of a ``.npz`` file.
    size : (int, int), optional
        ``(height, width)`` to resize a folder's images to (DICOM default: 64 x 64).
    window, on_error : optional
        ``window`` and ``on_error`` of :func:`~synthaug.data.load_dicom_folder`, for DICOM
        folders only. Files skipped with ``on_error="skip"`` are summarised on stderr.
    feature_range : (float, float), optional
        The known range of a ``.npz`` file's values (:func:`~synthaug.data.load_npz`).

    Options that do not apply to the data (``--size`` for digits or ``.npz``, ``--window`` or
    ``--on-error`` for anything but DICOM, ``--feature-range`` or a ``split`` other than
    ``train`` for anything but ``.npz``) raise :class:`~synthaug.errors.InvalidParameterError`
    rather than being ignored.
    """
    # Only a .npz file has splits; any other data is one set, whatever --split would say.
    split_given = None if split == "train" else f"--split {split}"
    given = {
        "--size": size,
        "--window": window,
        "--on-error": on_error,
        "--feature-range": feature_range,
        "--split": split_given,
    }
    path = Path(spec)
    if spec != "digits" and path.suffix.lower() == ".npz" and not path.is_dir():
        _refuse_options(
            spec, "read as stored", {"--size": size, "--window": window, "--on-error": on_error}
        )
        return load_npz(path, split=split, feature_range=feature_range)
    if spec == "digits":
        _refuse_options(spec, "read as stored", given)
        return load_digits()
    if path.is_dir():
        if _folder_kind(path) == "dicom":
            _refuse_options(
                spec,
                "a folder of DICOM files",
                {"--feature-range": feature_range, "--split": split_given},
            )
            return _read_dicom_folder(path, size=size, window=window, on_error=on_error)
        _refuse_options(spec, "a folder of images", {**given, "--size": None})
        return load_image_folder(path, image_size=size)
    if not path.exists():
        raise DataFileError(f"no data at {shown_path(path)}; give {DATA_HELP}")
    raise DataFileError(f"{path} is neither a .npz file nor a folder; give {DATA_HELP}")


def _refuse_options(spec: str, what: str, given: dict[str, Any]) -> None:
    named = [
        value if name == "--split" else name for name, value in given.items() if value is not None
    ]
    if named:
        raise InvalidParameterError(
            f"{' and '.join(named)} {'does' if len(named) == 1 else 'do'} not apply to {spec} "
            f"({what}): --size resizes folders of images or DICOM files, --window and "
            f"--on-error read DICOM folders, --split and --feature-range read .npz files; drop "
            f"{'it' if len(named) == 1 else 'them'}"
        )


def _folder_kind(root: Path) -> str:
    """``"dicom"`` or ``"images"``: what the class subfolders of ``root`` hold (found by the
    loaders' own walk, so a link that breaks their rule is refused here already)."""
    scan = FolderScan(root)
    class_dirs = scan.class_folders()
    if not class_dirs:
        raise DataFileError(
            f"{root} has no class subfolders; put each class's images or DICOM files in a "
            f"subfolder named after the class"
        )
    first: dict[str, Path] = {}
    for folder in class_dirs:
        for file in sorted(scan.files(folder)):
            kind = _file_kind(file)
            if kind is not None:
                first.setdefault(kind, file)
    if len(first) == 2:
        raise DataFileError(
            f"{root} mixes image files ({first['images']}) and DICOM files ({first['dicom']}); "
            f"keep one kind in a data folder (convert one kind, or move it out)"
        )
    if not first:
        raise DataFileError(
            f"{root} has class subfolders but no images ({', '.join(IMAGE_SUFFIXES)}) or DICOM "
            f"files in them"
        )
    return next(iter(first))


def _file_kind(file: Path) -> str | None:
    if is_image_file(file):  # what load_image_folder reads
        return "images"
    if file.suffix.lower() in _DICOM_SUFFIXES:
        return "dicom"
    try:
        return "dicom" if is_dicom(file) else None
    except OSError as exc:
        raise DataFileError(f"cannot read {file}: {exc}") from exc


def _read_dicom_folder(root: Path, **options: Any) -> DicomDataset:
    # Options not given keep load_dicom_folder's own defaults.
    chosen = {name: value for name, value in options.items() if value is not None}
    with _without_last_resort_logging():
        dataset = load_dicom_folder(root, **chosen)
    skipped = dataset.skipped
    if skipped:
        used = len({m["file"] for m in dataset.metadata})
        shown = "; ".join(
            f"{Path(f).relative_to(root)} ({why})" for f, why in skipped[:_SKIPPED_SHOWN]
        )
        more = (
            f"; and {len(skipped) - _SKIPPED_SHOWN} more" if len(skipped) > _SKIPPED_SHOWN else ""
        )
        print(
            f"synthaug: skipped {len(skipped)} of {len(skipped) + used} DICOM files under "
            f"{root} (--on-error skip): {shown}{more}",
            file=sys.stderr,
        )
    return dataset


@contextmanager
def _without_last_resort_logging() -> Iterator[None]:
    """Keep logging's last-resort handler from printing one line per skipped DICOM file.

    The command prints one summary instead; handlers a user configured still get every record.
    """
    logger = logging.getLogger("synthaug.data")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def check_data_fits_model(model: Any, data: ImageDataset, name: str) -> None:
    """Raise unless ``data`` has the sample shape and the class names (in order) of ``model``.

    Raises
    ------
    ShapeMismatchError
        The model makes samples of another shape.
    InvalidDataError
        The model knows other classes, or the same ones in another order.
    """
    if tuple(model.sample_shape_) != tuple(data.sample_shape):
        raise ShapeMismatchError(
            f"the model makes samples of shape {tuple(model.sample_shape_)} but {name} has "
            f"{tuple(data.sample_shape)}; give the data it was trained on (for a folder, with "
            f"the --size it was trained at)"
        )
    if list(model.class_names_) != list(data.classes):
        raise InvalidDataError(
            f"the model knows classes {list(model.class_names_)} but {name} has "
            f"{list(data.classes)}; give data with the same classes in the same order"
        )


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
