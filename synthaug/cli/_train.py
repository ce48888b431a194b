"""``synthaug train``: fit a registered generator on a data set and save it.

Arguments: :mod:`synthaug.cli._args.train`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from synthaug._params import configure
from synthaug._utils import warn
from synthaug.augment import SOURCES
from synthaug.cli._files import class_counts_text, data_options, read_data
from synthaug.cli._options import (
    check_param_conflicts,
    check_registered,
    params_given,
    was_given,
)
from synthaug.data import ImageDataset, check_output
from synthaug.errors import InvalidParameterError
from synthaug.generators import create_generator, list_generators
from synthaug.nn import DP, world

MODEL_SUFFIX = ".safetensors"
# The generator parameters an option of this command sets, and that option: a --param of the
# same parameter would be silently overridden, so the two together are refused.
OPTION_PARAMS = {
    "seed": "--seed",
    "device": "--device",
    "epochs": "--epochs",
    "verbose": "--quiet",
    "dp": "--dp-epsilon",
}


def model_file(out: str) -> Path:
    """``--out`` as the file to write: ``.safetensors`` as given, appended to a name without a
    suffix; any other suffix is refused.

    A model saved as ``x.npz`` would be silently written to ``x.npz.safetensors`` (the library's
    ``save`` appends the suffix), or, kept as named, be taken for data by every command that
    reads ``.npz``; neither is what was asked, so it is an error.
    """
    path = Path(out)
    if path.suffix == MODEL_SUFFIX:
        return path
    if path.suffix:
        raise InvalidParameterError(
            f"--out {out}: a model file ends in {MODEL_SUFFIX} (a {path.suffix} name would be "
            f"taken for another kind of file); use --out {path.with_suffix(MODEL_SUFFIX)} or "
            f"--out {str(path) + MODEL_SUFFIX}"
        )
    return path.with_name(path.name + MODEL_SUFFIX)


def private_budget(args: argparse.Namespace) -> DP | None:
    """``--dp-epsilon`` / ``--dp-delta`` as the one :class:`~synthaug.nn.DP`, or None.

    The values are checked by ``DP`` itself, so the command refuses exactly what the library
    refuses, with its words.
    """
    if args.dp_epsilon is None:  # --dp-delta alone is refused by the argument check
        return None
    try:
        return DP(epsilon=args.dp_epsilon, delta=args.dp_delta)
    except InvalidParameterError as exc:
        given = f"--dp-epsilon {args.dp_epsilon}" + (
            f" --dp-delta {args.dp_delta}" if args.dp_delta is not None else ""
        )
        raise InvalidParameterError(f"{given}: {exc}") from None


def private_families() -> list[str]:
    """The registered generators that train with ``dp`` (for the error that names them)."""
    names = []
    for name in list_generators():
        try:
            model = create_generator(name)
            if configure(model, dp=DP(epsilon=1.0)):
                continue
            model.check_params()
        except (InvalidParameterError, TypeError):
            continue
        names.append(name)
    return names


def _create(args: argparse.Namespace, dp: DP | None) -> Any:
    """The unfitted generator or source the command line names, with its ``--param``."""
    if args.model is not None:
        return create_generator(args.model, **dict(args.param))
    model = SOURCES.create(args.source, **dict(args.param))
    if not hasattr(model, "save"):
        raise InvalidParameterError(
            f"--source {args.source} keeps nothing worth saving (it draws from the data it is "
            f"given); use it directly with 'synthaug augment --source {args.source}'"
        )
    if dp is not None:
        raise InvalidParameterError(
            f"--source {args.source} keeps real training images, which no differential "
            f"privacy guarantee covers; drop --dp-epsilon"
        )
    return model


def run(args: argparse.Namespace) -> int:
    if args.model is not None:
        check_registered(args, "--model", args.model, list_generators())
    else:
        check_registered(args, "--source", args.source, SOURCES.list())
    # Checked before training, so that a bad --out never costs a trained model.
    out = check_output(model_file(args.out), folder=False, overwrite=args.overwrite)
    check_param_conflicts(args, OPTION_PARAMS)
    dp = private_budget(args)
    name = args.model or args.source
    model = _create(args, dp)
    set_by_param = params_given(args)
    # The run's settings go wherever the model keeps them (a per-class model: its estimator);
    # a parameter --param set is left to it.
    settings: dict[str, Any] = {"device": args.device, "verbose": not args.quiet}
    if was_given(args.seed) or dp is None:
        settings["seed"] = int(args.seed)
    else:
        # Under DP the noise comes from the seed, and the file keeps the seed: whoever reads
        # it could regenerate the noise (the exact class counts follow by subtraction). A
        # fresh seed from OS entropy is kept nowhere.
        settings["seed"] = None
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    if dp is not None:
        settings["dp"] = dp
    # Conflicts are refused above: a parameter --param set was set by no option.
    settings = {k: v for k, v in settings.items() if k not in set_by_param}
    missing = configure(model, **settings) - {"verbose"}
    if "dp" in missing:
        raise InvalidParameterError(
            f"generator {name!r} cannot train with differential privacy (it has no dp "
            f"parameter); drop --dp-epsilon, or train one that can: "
            f"{', '.join(private_families())}"
        )
    if missing and args.source is not None:
        raise InvalidParameterError(
            f"source {name!r} has no {'/'.join(sorted(missing))} parameter to set from the "
            f"command line; drop the option"
        )
    if missing:
        raise InvalidParameterError(
            f"generator {name!r} as configured has no {'/'.join(sorted(missing))} "
            f"parameter to set from the command line; give an inner model by name through a "
            f"preset such as 'perclass-vae', or drop the option"
        )
    # A bad --param value, or a family that refuses dp, stops here, before the data is read.
    model.check_params()
    if dp is not None and (was_given(args.seed) or "seed" in set_by_param):
        warn(
            "a seed with --dp-epsilon: the model file records the seed, and "
            "whoever knows it can regenerate the privacy noise (and so the exact class "
            "counts); fine for reproducible research, but leave --seed out for a model whose "
            "guarantee must hold"
        )
    data = read_data(args.data, args.split, **data_options(args))
    record = training_record(args, data, private=dp is not None)
    dataset = data
    if args.holdout is not None:
        train_idx, test_idx = data.split_indices(args.holdout, seed=args.holdout_seed)
        dataset = data.subset(train_idx)
        record["holdout"] = {"fraction": args.holdout, "seed": args.holdout_seed}
        if dp is None:
            record["holdout"]["indices"] = test_idx.tolist()
    model.fit(dataset)
    if world()[0] != 0:
        return 0  # under torchrun every rank holds the same model: rank 0 saves it
    if dp is None:
        path = model.save(out, metadata={"training_data": record})
    else:
        path = model.save(out, metadata={"training_data": record}, drop_unaccounted=True)
    print(f"trained {name} on {len(dataset)} samples ({class_counts_text(dataset)})")
    if args.holdout is not None:
        print(
            f"held out {len(data) - len(dataset)} of {len(data)} items (stratified, seed "
            f"{args.holdout_seed}); 'synthaug evaluate {path}' scores against them"
        )
    if dp is not None:
        epsilon, delta = model.privacy_spent_
        print(
            f"private: ({epsilon:.3g}, {delta:.3g})-DP; the file records no item count, "
            f"fingerprint, hold-out indices, losses or fit time of the data"
        )
    if args.source is not None:
        print(
            "the file holds real training pixels (normal images and lesions): keep it as "
            "private as the images; 'synthaug augment --model' reuses it"
        )
    print(f"saved {path}")
    return 0


def training_record(
    args: argparse.Namespace, data: ImageDataset, *, private: bool = False
) -> dict[str, Any]:
    """What the model file records about its data, for ``evaluate`` to find it again.

    A private model's record keeps only what the user chose (where the data is, how it was
    read, the hold-out's fraction and seed): the item count, the data's fingerprint and the
    hold-out's item indices are exact facts about the records that no privacy accountant
    sees (the fingerprint lets anyone who knows all other records test a candidate for the
    last one), so they are left out, and ``evaluate`` recomputes the hold-out from the data.
    """
    spec = args.data if args.data == "digits" else str(Path(args.data).resolve())
    record: dict[str, Any] = {
        "data": spec,
        "split": args.split,
        "read_options": {k: v for k, v in data_options(args).items() if v is not None},
        "holdout": None,
    }
    if private:
        record["private"] = True
    else:
        record.update({"n_items": len(data), "fingerprint": data.fingerprint()})
    return record
