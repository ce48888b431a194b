"""``synthaug train``: fit a registered generator on a data set and save it."""

from __future__ import annotations

import argparse

from synthaug._params import configure
from synthaug.cli._files import (
    add_data_arguments,
    add_overwrite_option,
    class_counts_text,
    data_options,
    parse_param,
    read_data,
)
from synthaug.cli._types import positive_int
from synthaug.data import check_output
from synthaug.errors import InvalidParameterError
from synthaug.generators import create_generator, list_generators, model_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fit a generator on a data set and save it as .safetensors",
        description="Fit a registered generator on 'digits', a MedMNIST-style .npz file or a "
        "folder with one subfolder per class of images or DICOM files, and save it.",
    )
    add_data_arguments(p)
    p.add_argument("--model", required=True, choices=list_generators(), help="generator name")
    p.add_argument("--out", required=True, help="where to save the model (.safetensors)")
    p.add_argument("--epochs", type=positive_int, help="training epochs (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: %(default)s)")
    p.add_argument(
        "--param",
        type=parse_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="other generator parameters, e.g. --param latent_dim=8 --param hidden_dims=[64,32]",
    )
    add_overwrite_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
    dataset = read_data(args.data, args.split, **data_options(args))
    model.fit(dataset)
    path = model.save(out)
    print(f"trained {args.model} on {len(dataset)} samples ({class_counts_text(dataset)})")
    print(f"saved {path}")
    return 0
