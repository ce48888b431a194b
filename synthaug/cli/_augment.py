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
    check_derived_allowed,
    class_counts_text,
    data_options,
    dicom_modality,
    dicom_source_studies,
    prepare_output,
    read_data,
    write_dataset,
)
from synthaug.cli._options import check_registered, output_format
from synthaug.data import ImageDataset, sample_origin
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
        check_derived_allowed(
            what,
            model,
            allow_real_pixels=args.allow_real_pixels,
            allow_exemplars=args.allow_exemplars,
        )
    real = read_data(args.data, args.split, **data_options(args))
    fitted_here = args.source is not None
    dicom = DicomMarking()
    if fmt == "dicom":  # before fitting: mixed modalities stop here
        # The files name the model file, not the folders it sits in.
        named = what if fitted_here else f"--model {Path(args.model).name}"
        dicom = _dicom_marking(named, model, real, args.modality, fitted_here)
    if fitted_here:
        model.fit(real)
    else:
        check_data_fits_model(model, real, args.data)
    aug = AugmentedDataset(real, model, args.strategy, seed=args.seed, ratio=args.ratio)
    # The items of a source fitted here index the input; a saved model's index its own
    # training data, which is not at hand.
    options = {
        "overwrite": args.overwrite,
        "model_digest": digest,
        # Input without file metadata (.npz) names its rows (#index).
        "sources": (real.metadata or [{}] * len(real)) if fitted_here else None,
    }
    if args.synthetic_only:
        part = aug.subset(np.flatnonzero(aug.synthetic_mask.numpy()))
        masks = aug.synthetic_masks
        path = write_dataset(
            part, out, fmt, aug.added_provenance, masks=masks, dicom=dicom, **options
        )
    else:
        path = write_dataset(aug, out, fmt, aug.provenance, masks=aug.masks, **options)
    origin = sample_origin(model)
    n_added = sum(aug.synthetic_counts.values())
    print(
        f"added {n_added} {origin} samples ({class_counts_text(aug, aug.synthetic_counts)})"
        + (f": {what} makes them from real training images" if origin == "derived" else "")
    )
    written = part if args.synthetic_only else aug
    print(f"wrote {len(written)} samples ({class_counts_text(written)}) to {path} [{fmt}]")
    if dicom.derivation is not None:
        print(
            f"marked derived from patient images, not synthetic: {what} makes its samples from "
            f"real training images; the files are patient data (not de-identified), Modality "
            f"{dicom.modality}"
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


def _dicom_marking(
    what: str, model: object, real: ImageDataset, modality: str | None, fitted_here: bool
) -> DicomMarking:
    """How the DICOM files say where their pixels come from: generated (synthetic), or made
    from real training images (derived: by a source fitted here, naming the input's studies
    when it was DICOM; or by a saved model or source from its own stored images, whose studies
    synthaug does not know)."""
    modality = dicom_modality(real, modality)
    if sample_origin(model) != "derived":
        return DicomMarking(modality=modality)
    return DicomMarking(
        modality=modality,
        derivation=f"made by synthaug augment {what} from real training images",
        source_studies=dicom_source_studies(real) if fitted_here else (),
    )
