"""``synthaug sample``: draw samples from a saved generator into a .npz file or PNG folders.

Arguments: :mod:`synthaug.cli._args.sample`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.cli._files import (
    DicomMarking,
    as_label,
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
    y = None if args.label is None else as_label(model, args.label)
    images, labels = model.sample(args.n, y=y, seed=args.seed)
    samples = ImageDataset(images, labels, model.class_names_)
    path = write_dataset(
        samples,
        out,
        fmt,
        overwrite=args.overwrite,
        model_digest=getattr(model, "file_digest_", None),
        # A saved model does not record its data's modality: OT unless --modality says.
        dicom=DicomMarking(modality=dicom_modality(None, args.modality)),
    )
    print(f"wrote {len(samples)} samples ({class_counts_text(samples)}) to {path} [{fmt}]")
    return 0
