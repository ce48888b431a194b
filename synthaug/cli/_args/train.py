"""Arguments of ``synthaug train`` (the work: :mod:`synthaug.cli._train`).

``--model`` names a registered generator, but has no ``choices=``: listing the registry means
importing every generator, and so torch, for ``--help`` too. The name is checked against the
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
        help="fit a generator on a data set and save it as .safetensors",
        description="Fit a registered generator on 'digits', a MedMNIST-style .npz file or a "
        "folder with one subfolder per class of images or DICOM files, and save it.",
    )
    add_data_arguments(p)
    p.add_argument(
        "--model",
        required=True,
        metavar="NAME",
        help="a registered generator: cvae, cgan, ... (docs/generators.md; an unknown name lists "
        "them all)",
    )
    p.add_argument("--out", required=True, help="where to save the model (.safetensors)")
    p.add_argument("--epochs", type=positive_int, help="training epochs (default: the model's)")
    add_seed_option(p, "training")
    add_device_option(p)
    add_param_option(
        p, "other generator parameters, e.g. --param latent_dim=8 --param hidden_dims=[64,32]"
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
