"""``synthaug train``: fit a registered generator on a data set and save it.

Arguments: :mod:`synthaug.cli._args.train`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from synthaug._params import configure
from synthaug.cli._files import class_counts_text, data_options, read_data
from synthaug.cli._options import check_registered
from synthaug.data import ImageDataset, check_output
from synthaug.errors import InvalidParameterError
from synthaug.generators import create_generator, list_generators, model_path
from synthaug.nn import world


def run(args: argparse.Namespace) -> int:
    check_registered(args, "--model", args.model, list_generators())
    # Checked before training, so that a bad --out never costs a trained model.
    out = check_output(model_path(args.out), folder=False, overwrite=args.overwrite)
    model = create_generator(args.model, **dict(args.param))
    # The run's settings go wherever the model keeps them (a per-class model: its estimator).
    settings = {"seed": args.seed, "device": args.device, "verbose": not args.quiet}
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    missing = configure(model, **settings) - {"verbose"}
    if missing:
        raise InvalidParameterError(
            f"generator {args.model!r} as configured has no {'/'.join(sorted(missing))} "
            f"parameter to set from the command line; give an inner model by name through a "
            f"preset such as 'perclass-vae', or drop the option"
        )
    model.check_params()  # a bad --param value stops here, before the data is read
    data = read_data(args.data, args.split, **data_options(args))
    record = training_record(args, data)
    dataset = data
    if args.holdout is not None:
        train_idx, test_idx = data.split_indices(args.holdout, seed=args.holdout_seed)
        dataset = data.subset(train_idx)
        record["holdout"] = {
            "fraction": args.holdout,
            "seed": args.holdout_seed,
            "indices": test_idx.tolist(),
        }
    model.fit(dataset)
    if world()[0] != 0:
        return 0  # under torchrun every rank holds the same model: rank 0 saves it
    path = model.save(out, metadata={"training_data": record})
    print(f"trained {args.model} on {len(dataset)} samples ({class_counts_text(dataset)})")
    if args.holdout is not None:
        print(
            f"held out {len(data) - len(dataset)} of {len(data)} items (stratified, seed "
            f"{args.holdout_seed}); 'synthaug evaluate {path}' scores against them"
        )
    print(f"saved {path}")
    return 0


def training_record(args: argparse.Namespace, data: ImageDataset) -> dict[str, Any]:
    """What the model file records about its data, for ``evaluate`` to find it again."""
    spec = args.data if args.data == "digits" else str(Path(args.data).resolve())
    return {
        "data": spec,
        "split": args.split,
        "read_options": {k: v for k, v in data_options(args).items() if v is not None},
        "n_items": len(data),
        "fingerprint": data.fingerprint(),
        "holdout": None,
    }
