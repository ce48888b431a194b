"""``synthaug augment``: real data topped up with a saved generator's or a sample source's samples.

Arguments: :mod:`synthaug.cli._args.augment`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from synthaug._params import configure
from synthaug.augment import SOURCES, AugmentedDataset
from synthaug.cli._files import (
    DicomMarking,
    check_data_fits_model,
    class_counts_text,
    data_options,
    dicom_modality,
    dicom_source_studies,
    prepare_output,
    read_data,
    write_dataset,
)
from synthaug.cli._options import check_registered, output_format
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.generators import load


def run(args: argparse.Namespace) -> int:
    if args.source is not None:
        check_registered(args, "--source", args.source, SOURCES.list())
    out = Path(args.out)
    fmt = output_format(out, args.format)
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
