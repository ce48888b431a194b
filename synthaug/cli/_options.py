"""The options of the subcommands that more than one declares, each declared once with its help.

Torch-free, like every argument declaration of the command line (:mod:`synthaug.cli._args`),
so that ``--help``, usage errors and argument checks answer without importing torch. A
command adds what it takes by calling these in the order its ``--help`` lists them; where the
commands differ in what an option does (what ``--seed`` seeds, what ``--quiet`` silences),
the helper takes those words and the rest of the declaration stays here. The options of data
and output files are here too (``--data`` and its reading options, ``--out``, ``--format``,
``--modality``); the code that reads and writes the files is :mod:`synthaug.cli._files`.

A choice that comes from a registry (``train --model``, ``augment --source``, ``make-data``'s
data set) is not an argparse ``choices=`` list: asking the registry means importing torch. Such
a name is checked by :func:`check_registered` when the command runs, against the registry
itself, with the same one-line usage error and exit 2 that argparse gives; its ``--help``
says where the names are listed.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from synthaug.cli._types import parse_param, positive_int
from synthaug.errors import InvalidParameterError


class _Default:
    """Marks an option's default value, so that a command can tell it from the same value
    given on the command line (``--seed 0``): see :func:`was_given`."""


class _DefaultInt(int, _Default):
    pass


class _DefaultStr(str, _Default):
    pass


def was_given(value: Any) -> bool:
    """Whether an option's value was given on the command line rather than left at its
    default (for the options declared here with a marked default, and ``None`` defaults)."""
    return value is not None and not isinstance(value, _Default)


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """The positional ``model``: a file written by ``synthaug train``."""
    parser.add_argument("model", help="a model saved by 'synthaug train' (.safetensors)")


VOLUMES_HELP = (
    "a NIfTI file (.nii, .nii.gz), a DICOM series folder, a folder of them, or a folder of "
    "class folders of them"
)


def is_volume_path(path: str) -> bool:
    """Whether a command's positional names volumes (a folder or a NIfTI file), not a model
    file; decided from the name alone, before any work module is imported."""
    return Path(path).is_dir() or path.lower().endswith((".nii", ".nii.gz"))


def add_seed_option(
    parser: argparse.ArgumentParser, seeds: str, default_help: str = "%(default)s"
) -> None:
    """``--seed``, 0 by default; ``seeds`` says what it seeds (``"sampling"``), and
    ``default_help`` what the default is when a command does more than use it."""
    parser.add_argument(
        "--seed", type=int, default=_DefaultInt(0), help=f"{seeds} seed (default: {default_help})"
    )


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device``, resolved by the library (``auto``: a GPU when there is one)."""
    parser.add_argument(
        "--device",
        default=_DefaultStr("auto"),
        help="auto, cpu or cuda[:N] (default: %(default)s)",
    )


def add_quiet_option(parser: argparse.ArgumentParser, silences: str) -> None:
    """``--quiet``; ``silences`` says what it turns off (``"progress bar"``)."""
    parser.add_argument("--quiet", action="store_true", help=f"no {silences}")


def add_threads_option(parser: argparse.ArgumentParser, threads: str) -> None:
    """``--threads N``; ``threads`` says whose threads they are and the default."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help=f"{threads}; small networks on a busy machine often run fastest with 1",
    )


def add_param_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--param KEY=VALUE``, repeatable, collected as ``(key, value)`` pairs in ``args.param``;
    ``help`` says what the parameters configure."""
    parser.add_argument(
        "--param", type=parse_param, action="append", default=[], metavar="KEY=VALUE", help=help
    )


def check_param_conflicts(args: argparse.Namespace, options: Mapping[str, str]) -> None:
    """Refuse a ``--param`` that sets what an option given on the same command line sets.

    ``options`` maps a parameter name to the option that sets it (``{"seed": "--seed"}``).
    Without this, the option would silently win (``--param seed=5 --seed 3`` trains with seed
    3). A ``--param`` alone is not refused: the command leaves that parameter to it.
    """
    for key, value in args.param:
        option = options.get(key)
        if option is None:
            continue
        given = getattr(args, option.lstrip("-").replace("-", "_"))
        if was_given(given) and given is not False:
            shown = option if given is True else f"{option} {given}"
            raise InvalidParameterError(
                f"--param {key}={value!r} and {shown} both set {key}; give one of them "
                f"({option} is the usual way)"
            )


def params_given(args: argparse.Namespace) -> set[str]:
    """The parameter names ``--param`` set."""
    return {key for key, _ in args.param}


def check_registered(args: argparse.Namespace, option: str, name: str, names: list[str]) -> None:
    """Refuse ``name`` given as ``option`` unless it is one of ``names`` (a registry's).

    With the usage error argparse gives for a value outside ``choices``, and exit 2: a name
    checked when the command runs reads the same as one checked while parsing.
    """
    if name not in names:
        args.parser.error(
            f"argument {option}: invalid choice: {name!r} (choose from "
            f"{', '.join(map(repr, names))})"
        )


# -- data ---------------------------------------------------------------------------------------
DATA_HELP = (
    "'digits', a MedMNIST-style .npz file, or a folder with one subfolder per class holding "
    "images (PNG, JPEG, ...) or DICOM files"
)


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
    if not (math.isfinite(center) and math.isfinite(width)) or width < 1:
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
    ``--on-error``, ``--feature-range``) to a subcommand's parser;
    :func:`~synthaug.cli._files.data_options` collects them.

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


# -- outputs ------------------------------------------------------------------------------------
# The output formats: each has one writer in synthaug.cli._files.WRITERS.
OUTPUT_FORMATS = ("dicom", "npz", "png")
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
            f"without a suffix (PNG files per class), or pass --format {{{','.join(OUTPUT_FORMATS)}}}"
        ) from None


# The figure files a command writes (grid --out, info --plot): matplotlib's vector and PNG.
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")

# Why --format dicom takes no real items, said the same way wherever it is refused.
SYNTHETIC_ONLY = (
    "--format dicom writes synthetic images only, never the real ones as they were (each file "
    "is marked synthetic, or derived from patient images for a source that keeps real pixels)"
)


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out (default: refuse an existing file or non-empty folder)",
    )


def add_output_arguments(parser: argparse.ArgumentParser, out_help: str) -> None:
    """``--out`` (a file or folder of samples, ``out_help`` says which), ``--format`` from
    :data:`OUTPUT_FORMATS`, ``--modality`` and ``--overwrite``: what :func:`~synthaug.cli._files.prepare_output`
    and :func:`~synthaug.cli._files.write_dataset` take."""
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument(
        "--format", choices=OUTPUT_FORMATS, help="output format (default: from --out's suffix)"
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
    """``--modality``: the Modality of DICOM output, over the one :func:`~synthaug.cli._files.dicom_modality`
    finds."""
    parser.add_argument(
        "--modality",
        type=modality_code,
        metavar="CODE",
        help="--format dicom: the Modality of the files (CT, MR, ...; the files stay Secondary "
        "Captures) (default: the modality of DICOM input data, else OT)",
    )


def add_allow_derived_options(parser: argparse.ArgumentParser) -> None:
    """``--allow-real-pixels`` and ``--allow-exemplars``: the flags that let ``--format dicom``
    write samples derived from patient images (checked by
    :func:`~synthaug.cli._files.check_derived_allowed` once the model or source is known)."""
    parser.add_argument(
        "--allow-real-pixels",
        action="store_true",
        help="--format dicom with a source whose samples are real patient pixels (copy-paste, "
        "lesion-transplant, classical, random-oversampling, smote): write them anyway, marked "
        "derived from patient images and not de-identified, instead of refusing",
    )
    parser.add_argument(
        "--allow-exemplars",
        action="store_true",
        help="--format dicom with a model whose samples are variants of its stored training "
        "images (dagan, deepsmote, delta-transfer): write them anyway, marked derived from "
        "patient images and not de-identified, instead of refusing",
    )


def check_allow_derived_options(args: argparse.Namespace, fmt: str, dicom: str) -> None:
    """Refuse an allow flag with a format that marks derived samples without it (a usage
    error); ``dicom`` says what to add instead (``--format dicom``, and more)."""
    for flag, given in (
        ("--allow-real-pixels", args.allow_real_pixels),
        ("--allow-exemplars", args.allow_exemplars),
    ):
        if given and fmt != "dicom":
            args.parser.error(
                f"{flag} lets --format dicom write images derived from patient images; other "
                f"formats mark them in their manifest without it (drop it, or add {dicom})"
            )


def check_modality_option(args: argparse.Namespace, fmt: str) -> None:
    """Refuse ``--modality`` for a format that has no Modality to set (a usage error)."""
    if args.modality is not None and fmt != "dicom":
        args.parser.error(
            f"--modality sets the Modality of DICOM files; --format {fmt} has none (add "
            f"--format dicom, or drop --modality)"
        )
