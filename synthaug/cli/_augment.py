"""``synthaug augment``: real data topped up with a saved generator's or a sample source's samples."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from synthaug._params import configure
from synthaug.augment import SOURCES, AugmentedDataset
from synthaug.cli._files import (
    SYNTHETIC_ONLY,
    DicomMarking,
    add_data_arguments,
    add_output_arguments,
    check_data_fits_model,
    check_modality_option,
    class_counts_text,
    data_options,
    dicom_modality,
    dicom_source_studies,
    output_format,
    prepare_output,
    read_data,
    write_dataset,
)
from synthaug.cli._options import add_device_option, add_param_option, add_seed_option
from synthaug.cli._types import positive_float
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.generators import load


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "augment",
        help="add synthetic samples to a data set",
        description="Add samples of a saved model to real data and write the result; the .npz "
        "output marks synthetic rows in train_synthetic.",
    )
    add_data_arguments(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="a model saved by 'synthaug train'")
    what.add_argument(
        "--source",
        choices=sorted(SOURCES.list()),
        help="a sample source fitted on --data here instead of a saved model (copy-paste and "
        "lesion-transplant move lesions into normal images and write their masks with .npz "
        "and DICOM output)",
    )
    add_param_option(p, "a parameter of --source (repeatable; JSON values)")
    p.add_argument(
        "--synthetic-only",
        action="store_true",
        help="write only the synthetic items (what --format dicom needs)",
    )
    p.add_argument(
        "--allow-real-pixels",
        action="store_true",
        help="--format dicom with a source whose samples are real patient pixels (copy-paste, "
        "lesion-transplant, classical, random-oversampling, smote): write them anyway, marked "
        "derived from patient images and not de-identified, instead of refusing",
    )
    p.add_argument(
        "--strategy",
        choices=["balance", "ratio"],
        default="balance",
        help="balance: every class to the majority count; ratio: --ratio synthetic per real "
        "sample (default: %(default)s)",
    )
    p.add_argument("--ratio", type=positive_float, help="synthetic per real sample (ratio)")
    add_output_arguments(p, "augmented.npz, or a folder for PNG files")
    add_seed_option(p, "sampling")
    add_device_option(p)
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    if (args.strategy == "ratio") != (args.ratio is not None):
        args.parser.error("--ratio is required with --strategy ratio and only allowed with it")
    out = Path(args.out)
    fmt = output_format(out, args.format)
    if args.param and args.source is None:
        args.parser.error("--param configures --source; a saved --model is used as it is")
    if fmt == "dicom" and not args.synthetic_only:
        # Checked before any fitting: DICOM files are all marked synthetic or derived.
        args.parser.error(
            f"{SYNTHETIC_ONLY}; add --synthetic-only, or write the mixed real + synthetic set "
            f"as .npz or PNG"
        )
    check_modality_option(args, fmt)
    if args.allow_real_pixels and fmt != "dicom":
        args.parser.error(
            "--allow-real-pixels lets --format dicom write real patient pixels; other formats "
            "do not need it (drop it, or add --format dicom --synthetic-only)"
        )
    prepare_output(out, fmt, args.overwrite)
    if args.source is not None:
        model = SOURCES.create(args.source, **dict(args.param))
        configure(model, seed=args.seed, device=args.device, verbose=False)
        model.check_params()  # a bad --param stops here, before the data is read
        digest = None  # fitted here, not a saved file
    else:
        model = load(args.model, device=args.device)
        digest = getattr(model, "file_digest_", None)  # set by load
    what = f"--source {args.source}" if args.source is not None else f"--model {args.model}"
    if fmt == "dicom":
        _check_real_pixels(what, model.keeps_real_pixels, args.allow_real_pixels)
    real = read_data(args.data, args.split, **data_options(args))
    dicom = DicomMarking()
    if fmt == "dicom":  # before fitting: mixed modalities stop here
        dicom = _dicom_marking(what, model.keeps_real_pixels, real, args.modality)
    if args.source is not None:
        model.fit(real)
    else:
        check_data_fits_model(model, real, args.data)
    aug = AugmentedDataset(real, model, args.strategy, seed=args.seed, ratio=args.ratio)
    options = {"overwrite": args.overwrite, "model_digest": digest}
    if args.synthetic_only:
        part = aug.subset(np.flatnonzero(aug.synthetic_mask.numpy()))
        masks = aug.synthetic_masks
        path = write_dataset(part, out, fmt, synthetic=None, masks=masks, dicom=dicom, **options)
    else:
        path = write_dataset(
            aug, out, fmt, synthetic=aug.synthetic_mask, masks=aug.masks, **options
        )
    added = sum(aug.synthetic_counts.values())
    print(f"added {added} synthetic samples ({class_counts_text(aug, aug.synthetic_counts)})")
    written = part if args.synthetic_only else aug
    print(f"wrote {len(written)} samples ({class_counts_text(written)}) to {path} [{fmt}]")
    if dicom.derivation is not None:
        print(
            f"marked derived from patient images, not synthetic: {what} keeps real pixels; "
            f"the files are patient data (not de-identified), Modality {dicom.modality}"
        )
    if aug.synthetic_masks is not None:
        if fmt == "png":
            print(
                "lesion masks not written: PNG has no place for them (use .npz, or --format "
                "dicom --synthetic-only for DICOM Segmentation files)"
            )
        elif not args.synthetic_only and aug.masks is None:
            print(
                "lesion masks not written: a saved source does not know the real items' masks "
                "(add --synthetic-only to write the synthetic items with theirs)"
            )
        else:
            print(
                f"wrote the lesion masks with them ({'masks array' if fmt == 'npz' else 'DICOM SEG'})"
            )
    return 0


def _check_real_pixels(what: str, keeps_real_pixels: bool, allowed: bool) -> None:
    """Refuse DICOM of real patient pixels unless ``--allow-real-pixels`` asks for it, and the
    flag where it allows nothing (before anything is fitted or written)."""
    if keeps_real_pixels and not allowed:
        raise InvalidParameterError(
            f"{what} keeps real pixels (each sample is a real training image, changed), so its "
            f"DICOM files hold patient anatomy and cannot be marked synthetic; pass "
            f"--allow-real-pixels to write them marked derived from patient images (Conversion "
            f"Type WSD, Patient Identity Removed NO: patient data, not for sharing), or write "
            f".npz; nothing was written"
        )
    if allowed and not keeps_real_pixels:
        raise InvalidParameterError(
            f"--allow-real-pixels is for sources whose samples are real pixels; {what} "
            f"generates new images, written marked synthetic: drop --allow-real-pixels"
        )


def _dicom_marking(
    what: str, keeps_real_pixels: bool, real: ImageDataset, modality: str | None
) -> DicomMarking:
    """How the DICOM files say where their pixels come from: generated (synthetic), or real
    training pixels changed (derived, naming the input's studies when it was DICOM)."""
    modality = dicom_modality(real, modality)
    if not keeps_real_pixels:
        return DicomMarking(modality=modality)
    return DicomMarking(
        modality=modality,
        derivation=f"made by synthaug augment {what} from real training images",
        source_studies=dicom_source_studies(real),
    )
