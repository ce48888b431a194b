"""``synthaug make-data``: a data set the library makes, written as files the commands read.

Arguments: :mod:`synthaug.cli._args.make_data`.

The data set comes from the registry :data:`synthaug.data.DATASETS` and goes through the
writers every command uses (:func:`~synthaug.cli._files.write_dataset`), so the README's
command-line examples run on a fresh checkout with nothing downloaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synthaug.cli._files import DicomMarking, class_counts_text, prepare_output, write_dataset
from synthaug.cli._options import check_registered
from synthaug.data import DATASETS, Provenance, real_provenance
from synthaug.errors import InvalidParameterError

# Data sets drawn in code: no record of any person, so DICOM files of them may say "synthetic
# image, generated; contains no patient data", and a PNG manifest marks them synthetic. Any
# other (digits: real handwriting) is written as what it is, .npz or PNG, never as DICOM.
DRAWN_IN_CODE = ("phantoms", "phantoms-graded")
# The Modality of phantom DICOM files: the chest phantoms imitate CT, the brain ones MR.
PHANTOM_MODALITY = {"chest": "CT", "brain": "MR"}


def run(args: argparse.Namespace) -> int:
    check_registered(args, "NAME", args.name, DATASETS.list())
    out = Path(args.out)
    fmt = prepare_output(out, args.format, args.overwrite)
    drawn = args.name in DRAWN_IN_CODE
    if fmt == "dicom" and not drawn:
        raise InvalidParameterError(
            f"{args.name} holds real images, and --format dicom marks every file a synthetic "
            f"image; write it as .npz or PNG (DICOM: {', '.join(DRAWN_IN_CODE)})"
        )
    params = dict(args.param)
    if args.masks:
        if "return_masks" not in (DATASETS.accepted_params(args.name) or ()):
            raise InvalidParameterError(f"{args.name} has no lesion masks to write; drop --masks")
        params["return_masks"] = True
    made = DATASETS.create(args.name, **params)
    dataset, masks = made if args.masks else (made, None)
    kind = (dataset.metadata or [{}])[0].get("kind") if drawn else None
    modality = args.modality or PHANTOM_MODALITY.get(kind, "OT")
    # .npz is a plain data set, without origin arrays; folders say per file what it is.
    provenance = None
    if fmt != "npz":
        drawn_in_code = Provenance("synthetic", f"drawn by synthaug's {args.name} generator")
        provenance = [drawn_in_code if drawn else real_provenance(i) for i in range(len(dataset))]
    path = write_dataset(
        dataset,
        out,
        fmt,
        provenance,
        masks=masks,
        overwrite=args.overwrite,
        dicom=DicomMarking(modality=modality),
    )
    what = " with lesion masks" if masks is not None else ""
    where = f", Modality {modality}" if fmt == "dicom" else ""
    print(
        f"wrote {len(dataset)} {args.name} images ({class_counts_text(dataset)}){what} to "
        f"{path} [{fmt}{where}]"
    )
    return 0
