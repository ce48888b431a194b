"""Reading data and writing samples for the subcommands.

Every command that reads real data takes the same options, added by :func:`add_data_arguments`
and read by :func:`read_data`: ``--data`` is ``digits``, a MedMNIST-style ``.npz`` file, or a
folder with one subfolder per class holding either images or DICOM files (found by their
``DICM`` preamble, with or without a ``.dcm`` suffix). :func:`check_data_fits_model` is the one
check that real data suits a saved model.

Output formats are a dispatch table: a new format (``dicom``, say) is one function
``writer(dataset, path, synthetic=None, masks=None, overwrite=False, model_digest=None,
dicom=DicomMarking()) -> Path`` added to ``WRITERS`` (with whether it writes a folder in
``FOLDER_FORMATS`` and, when a file suffix should select it, one entry in ``SUFFIX_FORMATS``);
``--format`` offers every key. Only the DICOM writer has a place for :class:`DicomMarking`
(the Modality, and whether the pixels are generated or derived from patient images).

Outputs are checked before any work (:func:`prepare_output`): an existing file or a non-empty
folder is refused unless ``--overwrite``. Every writer builds its output aside and renames it
into place, and a folder gets ``manifest.csv`` (file, class, synthetic yes/no, the source
file of a real item, the model's digest for a synthetic one); synthetic files are named
``synthetic_...``, real PNGs keep their original names.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydicom.misc import is_dicom
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from synthaug.data import (
    DicomDataset,
    ImageDataset,
    check_output,
    load_dicom_folder,
    load_digits,
    load_image_folder,
    load_npz,
    save_image_folder,
    save_npz,
    write_dicom,
)
from synthaug.errors import (
    DataFileError,
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
)

Writer = Callable[..., Path]


@dataclass(frozen=True)
class DicomMarking:
    """What ``--format dicom`` writes about the images' origin (other formats have no place).

    Attributes
    ----------
    modality : str
        The Modality attribute: the input's (:func:`dicom_modality`), ``--modality``, or OT.
    derivation : str or None
        ``None``: a generator made the images, and the files are marked synthetic. Otherwise
        the images are real pixels that synthaug changed (a source that keeps real pixels),
        the files are marked derived from patient images, and this says how.
    source_studies : tuple of str
        With a derivation: the Study Instance UIDs of the real images, when they were DICOM.
    """

    modality: str = "OT"
    derivation: str | None = None
    source_studies: tuple[str, ...] = ()


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
    dicom: DicomMarking = DicomMarking(),
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
    dicom: DicomMarking = DicomMarking(),
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
    dicom: DicomMarking = DicomMarking(),
) -> Path:
    # write_dicom marks every file synthetic or derived; a real image unchanged is neither.
    if synthetic is not None and not bool(synthetic.all()):
        raise InvalidParameterError(
            f"{SYNTHETIC_ONLY}; write a mixed real + synthetic set as .npz or PNG instead, or "
            f"only the synthetic items with --synthetic-only"
        )
    derived = dicom.derivation is not None
    write_dicom(
        dataset,
        out_dir=path,
        series_description="synthaug samples",  # the mark (SYNTHETIC or DERIVED) is prepended
        modality=dicom.modality,
        origin="derived" if derived else "synthetic",
        derivation=dicom.derivation,
        source_studies=dicom.source_studies,
        masks=masks,
        manifest=[{"model_sha256": model_digest or ""}] * len(dataset),
        overwrite=overwrite,
    )
    return path


# Why --format dicom takes no real items, said the same way wherever it is refused.
SYNTHETIC_ONLY = (
    "--format dicom writes synthetic images only, never the real ones as they were (each file "
    "is marked synthetic, or derived from patient images for a source that keeps real pixels)"
)


WRITERS: dict[str, Writer] = {"npz": _write_npz, "png": _write_png, "dicom": _write_dicom}
# The formats that write a folder (the rest write one file).
FOLDER_FORMATS = {"png", "dicom"}
# Output suffix -> format when --format is not given; a path without a suffix is a PNG folder.
SUFFIX_FORMATS: dict[str, str] = {".npz": "npz", "": "png"}


def output_format(out: Path, fmt: str | None) -> str:
    """The writer for ``out``: ``fmt`` when given, else guessed from the suffix."""
    if fmt is not None:
        return fmt
    if out.suffix.lower() in (".dcm", ".dicom"):
        raise InvalidParameterError(
            f"DICOM output is a folder of files (one per image, per class); give a folder name "
            f"and --format dicom, e.g. --out {out.with_suffix('')} --format dicom"
        )
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
    dicom: DicomMarking = DicomMarking(),
) -> Path:
    writer = WRITERS[output_format(out, fmt)]
    return writer(
        dataset, out, synthetic, masks, overwrite=overwrite, model_digest=model_digest, dicom=dicom
    )


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out (default: refuse an existing file or non-empty folder)",
    )


def add_output_arguments(parser: argparse.ArgumentParser, out_help: str) -> None:
    """``--out`` (a file or folder of samples, ``out_help`` says which), ``--format`` from
    :data:`WRITERS`, ``--modality`` and ``--overwrite``: what :func:`prepare_output` and
    :func:`write_dataset` take."""
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument(
        "--format", choices=sorted(WRITERS), help="output format (default: from --out's suffix)"
    )
    add_modality_option(parser)
    add_overwrite_option(parser)


def modality_code(text: str) -> str:
    """A ``--modality`` value: a DICOM modality code (``CT``, ``MR``, ``OT``, ...), any case."""
    code = text.upper()
    if not re.fullmatch(r"[A-Z]{2,16}", code):
        raise argparse.ArgumentTypeError(
            f"must be a DICOM modality code of 2 to 16 letters (CT, MR, OT, ...), got {text!r}"
        )
    return code


def add_modality_option(parser: argparse.ArgumentParser) -> None:
    """``--modality``: the Modality of DICOM output, over the one :func:`dicom_modality` finds."""
    parser.add_argument(
        "--modality",
        type=modality_code,
        metavar="CODE",
        help="--format dicom: the Modality of the files (CT, MR, ...; the files stay Secondary "
        "Captures) (default: the modality of DICOM input data, else OT)",
    )


def check_modality_option(args: argparse.Namespace, fmt: str) -> None:
    """Refuse ``--modality`` for a format that has no Modality to set (a usage error)."""
    if args.modality is not None and fmt != "dicom":
        args.parser.error(
            f"--modality sets the Modality of DICOM files; --format {fmt} has none (add "
            f"--format dicom, or drop --modality)"
        )


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


DATA_HELP = (
    "'digits', a MedMNIST-style .npz file, or a folder with one subfolder per class holding "
    "images (PNG, JPEG, ...) or DICOM files"
)
# DICOM files are found by content (pydicom's 'DICM' preamble); these suffixes count as DICOM
# even when the file is damaged, so that --on-error decides about it.
_DICOM_SUFFIXES = (".dcm", ".dicom")
# How many skipped files the summary names; the count covers all of them.
_SKIPPED_SHOWN = 3


def image_size(text: str) -> tuple[int, int]:
    """A ``--size`` value: ``N`` (square) or ``HxW``."""
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(f"must be N or HxW with positive integers, got {text!r}")
    return size


def dicom_window(text: str) -> str | tuple[float, float]:
    """A ``--window`` value: ``auto``, ``minmax`` or ``CENTER,WIDTH``."""
    if text in ("auto", "minmax"):
        return text
    try:
        center, width = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be auto, minmax or CENTER,WIDTH (e.g. 40,400), got {text!r}"
        ) from None
    if not (np.isfinite(center) and np.isfinite(width)) or width < 1:
        raise argparse.ArgumentTypeError(f"WIDTH must be >= 1 and both finite, got {text!r}")
    return center, width


def feature_range(text: str) -> tuple[float, float]:
    """A ``--feature-range`` value: ``LO,HI`` (two numbers; their rule is the reader's)."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be LO,HI with two numbers (e.g. -1000,3000; a negative LO needs the '='), "
            f"got {text!r}"
        ) from None
    return low, high


def add_data_arguments(
    parser: argparse.ArgumentParser,
    *,
    required: bool = True,
    default: str | None = None,
    split: bool = True,
    help: str = DATA_HELP,
    flag: str = "--data",
) -> None:
    """Add ``--data`` and the options of reading it (``--split``, ``--size``, ``--window``,
    ``--on-error``) to a subcommand's parser; :func:`data_options` collects them.

    ``split=False`` leaves out ``--split`` for a command that reads the splits it needs itself;
    ``flag`` names the option another way (it is still ``args.data``).
    """
    parser.add_argument(flag, dest="data", required=required, default=default, help=help)
    if split:
        parser.add_argument(
            "--split", default="train", help="split of a .npz file (default: %(default)s)"
        )
    parser.add_argument(
        "--size",
        type=image_size,
        metavar="N|HxW",
        help="resize the images of a folder (images or DICOM) to N x N or H x W pixels "
        "(default: DICOM 64x64, images as stored); digits and .npz are used as stored",
    )
    parser.add_argument(
        "--window",
        type=dicom_window,
        metavar="auto|minmax|CENTER,WIDTH",
        help="DICOM folders: the VOI window to [0, 1]; auto: each file's own Window Center / "
        "Width, minmax: each image's range, CENTER,WIDTH in modality units (CT soft tissue: "
        "--window=40,400; a negative center needs the '=') (default: auto)",
    )
    parser.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        help="DICOM folders: stop at the first unusable file (raise), or leave such files out "
        "and list them on stderr (skip) (default: raise)",
    )
    parser.add_argument(
        "--feature-range",
        type=feature_range,
        metavar="LO,HI",
        help=".npz files: the range the stored values are known to span (Hounsfield units, "
        "12-bit counts), from domain knowledge, never from the data: LO maps to 0 and HI to 1, "
        "values outside are clipped (default: uint8 0..255, float already in 0..1)",
    )


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
        raise DataFileError(f"no data at {path.resolve()}; give {DATA_HELP}")
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
    """``"dicom"`` or ``"images"``: what the class subfolders of ``root`` hold."""
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataFileError(
            f"{root} has no class subfolders; put each class's images or DICOM files in a "
            f"subfolder named after the class"
        )
    first: dict[str, Path] = {}
    for folder in class_dirs:
        for file in sorted(folder.rglob("*")):
            if any(part.startswith(".") for part in file.relative_to(root).parts):
                continue
            if not file.is_file():
                continue
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
            f"{root} has class subfolders but no images ({', '.join(IMG_EXTENSIONS)}) or DICOM "
            f"files in them"
        )
    return next(iter(first))


def _file_kind(file: Path) -> str | None:
    if has_file_allowed_extension(file.name, IMG_EXTENSIONS):  # what load_image_folder reads
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
