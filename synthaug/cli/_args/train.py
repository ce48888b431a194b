"""Arguments of ``synthaug train`` (the work: :mod:`synthaug.cli._train`).

``--model`` names a registered generator (``--source`` a sample source), but has no
``choices=``: listing the registry means importing every generator, and so torch, for
``--help`` too. The name is checked against the
registry when the command runs, before anything is read or trained, with argparse's usage
error; an unknown name lists the registered ones.
"""

from __future__ import annotations

import argparse

from synthaug.cli._options import (
    add_data_arguments,
    add_device_option,
    add_overwrite_option,
    add_param_option,
    add_quiet_option,
    add_seed_option,
)
from synthaug.cli._types import open_fraction, positive_int


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="fit a generator (or a lesion source) on a data set and save it as .safetensors",
        description="Fit a registered generator on 'digits', a MedMNIST-style .npz file or a "
        "folder with one subfolder per class of images or DICOM files, and save it. A lesion "
        "source (--source copy-paste, lesion-transplant) is fitted and saved the same way, for "
        "'synthaug augment --model' to reuse without refitting.",
    )
    add_data_arguments(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--model",
        metavar="NAME",
        help="a registered generator: cvae, cgan, ... (docs/generators.md; an unknown name lists "
        "them all)",
    )
    what.add_argument(
        "--source",
        metavar="NAME",
        help="a sample source to fit and save instead (those that keep fitted state: "
        "copy-paste, lesion-transplant, lesion-transplant-cvae); its file holds real "
        "training pixels",
    )
    p.add_argument(
        "--out",
        required=True,
        help="where to save the model: a .safetensors file (a name without a suffix gets "
        "'.safetensors' appended; any other suffix is refused)",
    )
    p.add_argument("--epochs", type=positive_int, help="training epochs (default: the model's)")
    add_seed_option(
        p, "training", default_help="0; with --dp-epsilon a fresh seed the file does not keep"
    )
    add_device_option(p)
    add_param_option(
        p, "other generator parameters, e.g. --param latent_dim=8 --param hidden_dims=[64,32]"
    )
    p.add_argument(
        "--dp-epsilon",
        type=float,
        metavar="E",
        help="train with differential privacy (DP-SGD; dp-merf: one release of a mean "
        "embedding), to (E, delta)-DP: synthaug.DP(epsilon=E); "
        "the model file then records nothing of the data the guarantee does not cover (see "
        "docs/privacy.md)",
    )
    p.add_argument(
        "--dp-delta",
        type=float,
        metavar="D",
        help="with --dp-epsilon: the delta, below 1/n for n training items (default: "
        "min(1e-5, 1/(n ln n)))",
    )
    p.add_argument(
        "--holdout",
        type=open_fraction,
        metavar="FRAC",
        help="keep a stratified FRAC of the data out of training and record which items in the "
        "model, so that 'synthaug evaluate' scores against exactly that part",
    )
    p.add_argument(
        "--holdout-seed", type=int, default=0, help="seed of the hold-out split (default: 0)"
    )
    add_overwrite_option(p)
    add_quiet_option(p, "progress bar")
    return p


def check(args: argparse.Namespace) -> None:
    if args.dp_delta is not None and args.dp_epsilon is None:
        args.parser.error("--dp-delta sets the delta of --dp-epsilon; give --dp-epsilon too")
