"""``synthaug sample``: draw samples from a saved generator into a .npz file or PNG folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.cli._files import (
    DicomMarking,
    add_output_arguments,
    as_label,
    check_modality_option,
    class_counts_text,
    dicom_modality,
    prepare_output,
    write_dataset,
)
from synthaug.cli._options import add_device_option, add_model_argument, add_seed_option
from synthaug.cli._types import positive_int
from synthaug.data import ImageDataset
from synthaug.generators import load


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="draw samples from a saved model",
        description="Draw samples from a saved model and write them as a MedMNIST-style .npz "
        "file, as PNG images in one folder per class, or as synthetic DICOM files.",
    )
    add_model_argument(p)
    p.add_argument("--n", type=positive_int, required=True, help="number of samples")
    p.add_argument(
        "--class",
        dest="label",
        help="only this class (name or label); default: classes in their training proportions",
    )
    add_output_arguments(p, "samples.npz, or a folder for PNG files")
    add_seed_option(p, "sampling")
    add_device_option(p)
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    fmt = prepare_output(out, args.format, args.overwrite)
    check_modality_option(args, fmt)
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
