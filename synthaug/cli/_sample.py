"""``synthaug sample``: draw samples from a saved generator into a .npz file or PNG folders.

Arguments: :mod:`synthaug.cli._args.sample`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.cli._files import (
    DicomMarking,
    as_label,
    check_derived_allowed,
    class_counts_text,
    dicom_modality,
    prepare_output,
    write_dataset,
)
from synthaug.data import ImageDataset
from synthaug.generators import load


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    fmt = prepare_output(out, args.format, args.overwrite)
    model = load(args.model, device=args.device)
    if fmt == "dicom":
        check_derived_allowed(
            args.model,
            model,
            allow_real_pixels=args.allow_real_pixels,
            allow_exemplars=args.allow_exemplars,
        )
    y = None if args.label is None else as_label(model, args.label)
    images, labels, provenance = model.sample(args.n, y=y, seed=args.seed, return_provenance=True)
    samples = ImageDataset(images, labels, model.class_names_)
    derived = any(p.is_derived for p in provenance)
    name = getattr(model, "registry_name", type(model).__name__)
    path = write_dataset(
        samples,
        out,
        fmt,
        provenance,
        overwrite=args.overwrite,
        model_digest=getattr(model, "file_digest_", None),
        # A saved model does not record its data's modality (OT unless --modality says), nor
        # the studies of the training images it stores.
        dicom=DicomMarking(
            modality=dicom_modality(None, args.modality),
            derivation=f"made by synthaug sample from {name} model {Path(args.model).name}"
            if derived
            else None,
        ),
    )
    print(f"wrote {len(samples)} samples ({class_counts_text(samples)}) to {path} [{fmt}]")
    if derived:
        print(f"marked derived from patient images, not synthetic: {provenance[0].how}")
    return 0
