"""Saving and loading generators: safetensors weights, JSON configuration, no pickle.

One ``.safetensors`` file holds everything (see :mod:`synthaug.nn`'s model files). Its header
carries the registered model type, the constructor parameters (a nested estimator is stored
as its registered type and parameters) and the fitted attributes, so a loader can refuse a
file of another model type or a newer format before building anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from synthaug._params import Estimator
from synthaug._utils import resolve_device
from synthaug.errors import CheckpointError, InvalidParameterError
from synthaug.generators._registry import GENERATORS
from synthaug.nn import DIGEST_KEY, DP, checkpoint_header, read_checkpoint, write_checkpoint
from synthaug.registry import Registry

FORMAT_NAME = "synthaug-generator"
# 2: a meta-estimator stores its inner estimator as {"__synthaug_generator__": ...}.
FORMAT_VERSION = 2
_DP_KEY = "__synthaug_dp__"
_GENERATOR_KEY = "__synthaug_generator__"


def encode_param(value: Any) -> Any:
    """JSON for the parameter values that are not plain JSON (``json.dumps(default=...)``)."""
    if isinstance(value, DP):
        return {_DP_KEY: value.to_dict()}
    if isinstance(value, Estimator):
        name = GENERATORS.name_of(type(value))
        if name is not None:
            return {_GENERATOR_KEY: {"type": name, "params": value.get_params(deep=False)}}
    raise TypeError(f"cannot store a {type(value).__name__} in a model file")


def decode_param(obj: dict[str, Any]) -> Any:
    """The inverse of :func:`encode_param` (``json.loads(object_hook=...)``)."""
    if set(obj) == {_DP_KEY}:
        return DP(**obj[_DP_KEY])
    if set(obj) == {_GENERATOR_KEY}:
        spec = obj[_GENERATOR_KEY]
        cls = GENERATORS.get(spec["type"])
        return cls(**as_params(spec["params"]))
    return obj


def as_params(params: dict[str, Any]) -> dict[str, Any]:
    """JSON arrays back to tuples: parameters are never lists (``hidden_dims=(64, 32)``)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def place_on(model: Any, device: torch.device | str) -> None:
    """Set every ``device`` parameter of ``model`` and its nested estimators to ``device``."""
    keys = [k for k in model.get_params(deep=True) if k.split("__")[-1] == "device"]
    model.set_params(**{k: str(device) for k in keys})


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (torch's state_dict errors span many)."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def model_path(path: str | Path) -> Path:
    """Where ``save(path)`` writes: ``path`` with ``.safetensors`` appended when it lacks it."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return path
    return path.with_name(path.name + ".safetensors")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_fitted_state(model: Any) -> None:
    """Raise ``ValueError`` when restored fitted attributes contradict each other."""
    names, classes, counts = model.class_names_, model.classes_, model.class_counts_
    if (
        len(names) != model.n_classes_
        or not all(isinstance(name, str) for name in names)
        or not classes
        or not set(classes) <= set(range(model.n_classes_))
        or sorted(counts) != sorted(classes)
        or min(counts.values()) < 1
        or not model.sample_shape_
        or min(model.sample_shape_) < 1
        or not all(isinstance(r, dict) and all(map(_is_number, r.values())) for r in model.history_)
        or not (model.fit_seconds_ is None or _is_number(model.fit_seconds_))
    ):
        raise ValueError(
            f"its fitted state is inconsistent (n_classes_={model.n_classes_}, "
            f"class_names_={names}, classes_={classes}, class_counts_={counts}, "
            f"sample_shape_={model.sample_shape_}, or a history_ / fit_seconds_ that are not "
            f"numbers)"
        )


# What a history_ record keeps when the losses are dropped: where training was, not what it saw.
_PROGRESS_KEYS = ("epoch", "steps")


def without_unaccounted(state: Any) -> Any:
    """A fitted state (as :meth:`_fitted_state` gives it, members' states nested in it) with
    every ``history_`` reduced to its epochs or steps and every ``fit_seconds_`` None."""
    if isinstance(state, list):
        return [without_unaccounted(v) for v in state]
    if not isinstance(state, dict):
        return state
    out = {k: without_unaccounted(v) for k, v in state.items()}
    if isinstance(out.get("history_"), list):
        out["history_"] = [
            {k: v for k, v in record.items() if k in _PROGRESS_KEYS}
            for record in out["history_"]
            if isinstance(record, dict)
        ]
    if "fit_seconds_" in out:
        out["fit_seconds_"] = None
    return out


def generator_parts(
    model: Any, *, drop_unaccounted: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, header)`` of a fitted generator's file, without the file: what a file of
    another kind that holds a generator (a lesion transplant's) stores of it."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.modules_.state_dict().items()}
    tensors.update(
        {f"extra.{k}": v.detach().cpu().contiguous() for k, v in model._extra_tensors().items()}
    )
    params = model.get_params(deep=False)
    fitted = model._fitted_state()
    meta = {
        "model_type": model.registry_name,
        "params": json.dumps(params, default=encode_param),
        "fitted": json.dumps(
            without_unaccounted(fitted) if drop_unaccounted else fitted, default=encode_param
        ),
        "stores_training_images": json.dumps(bool(model.stores_training_images)),
    }
    return tensors, meta


def metadata_entry(metadata: dict[str, Any] | None) -> dict[str, str]:
    """The header entry of ``save(metadata=...)`` (none for no metadata)."""
    if not metadata:
        return {}
    try:
        return {"metadata": json.dumps(metadata)}
    except TypeError as exc:
        raise InvalidParameterError(
            f"save(metadata=...) must be JSON-able (str, numbers, lists, dicts): {exc}"
        ) from None


def save_generator(
    model: Any,
    path: str | Path,
    metadata: dict[str, Any] | None = None,
    *,
    drop_unaccounted: bool = False,
) -> Path:
    """Write ``model`` to ``path`` atomically (a crash never leaves a half-written file).

    ``metadata`` (JSON-able) is stored in the header, covered by the file's digest, and comes
    back as the loaded model's ``metadata_``; ``drop_unaccounted`` leaves out the losses and
    the fit time (:func:`without_unaccounted`).
    """
    tensors, meta = generator_parts(model, drop_unaccounted=drop_unaccounted)
    meta.update(metadata_entry(metadata))
    return write_checkpoint(model_path(path), tensors, meta, FORMAT_NAME, FORMAT_VERSION)


def build_generator(
    meta: dict[str, str], tensors: dict[str, torch.Tensor], device: Any, path: str | Path
) -> Any:
    """The fitted generator that :func:`generator_parts` stored as ``(tensors, meta)``, on
    ``device``; ``path`` names the file in messages.

    Raises
    ------
    CheckpointError
        Another model type, or a header or tensors that do not make the model they claim.
    """
    model_type = meta.get("model_type", "")
    cls = GENERATORS.get(model_type) if model_type in GENERATORS else None
    if not isinstance(cls, type):
        known = [n for n in GENERATORS.list() if isinstance(GENERATORS.get(n), type)]
        raise CheckpointError(
            f"{path} holds a model of type {model_type!r}, which this synthaug cannot build "
            f"(known model types: {known})"
        )
    try:
        params = json.loads(meta["params"], object_hook=decode_param)
        fitted = json.loads(meta["fitted"], object_hook=decode_param)
    except (KeyError, TypeError, json.JSONDecodeError, InvalidParameterError) as exc:
        raise CheckpointError(
            f"{path} has a damaged configuration header: {one_line(exc)}"
        ) from exc
    if not isinstance(params, dict) or not isinstance(fitted, dict):
        raise CheckpointError(
            f"{path} has a damaged configuration header: 'params' and 'fitted' must be JSON "
            f"objects, got {type(params).__name__} and {type(fitted).__name__}"
        )
    extra = {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")}
    weights = {k: v for k, v in tensors.items() if not k.startswith("extra.")}
    try:
        model = cls(**as_params(params))
        place_on(model, device)
        # A file whose digest matches can still be written by other code than ours (the
        # digest is no signature): its parameters and fitted state are checked like a user's.
        model.check_params()
        model._restore_state(fitted, device)
        check_fitted_state(model)
        model._restore_extra_tensors(extra)
        model.modules_.load_state_dict(weights, strict=True)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"{path} does not match the {cls.__name__} it claims to hold: {one_line(exc)}"
        ) from exc
    model.modules_.to(device)
    return model


def load_generator(path: str | Path, *, device: str = "auto") -> Any:
    """Load a generator file (format ``synthaug-generator``); :func:`load` reads any kind."""
    meta, tensors = read_checkpoint(path, FORMAT_NAME, FORMAT_VERSION, "model")
    try:
        metadata = json.loads(meta.get("metadata", "{}"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{path} has a damaged configuration header: {one_line(exc)}"
        ) from exc
    model = build_generator(meta, tensors, resolve_device(device), path)
    model.file_digest_ = meta[DIGEST_KEY]
    model.metadata_ = metadata if isinstance(metadata, dict) else {}
    return model


MODEL_FILES: Registry = Registry("model file format")
"""Loaders of synthaug's model files by the ``format`` their header names, each
``loader(path, *, device)``: generators register theirs here, and a higher layer registers the
kinds it saves (``synthaug.augment``: fitted lesion sources), so that :func:`load` reads them
all without this layer importing that one."""
MODEL_FILES.register(FORMAT_NAME, load_generator)


def file_format(path: str | Path) -> str | None:
    """The ``format`` a model file's header names, unchecked; None when there is none to read
    (a missing or unreadable file: the loader then says what is wrong with it)."""
    try:
        return checkpoint_header(path).get("format")
    except CheckpointError:
        return None


def load(path: str | Path, *, device: str = "auto") -> Any:
    """Load a generator saved with ``save``, or any other model file of synthaug (a fitted
    lesion source: its loader is registered when :mod:`synthaug.augment` is imported, which
    ``import synthaug`` does).

    Parameters
    ----------
    path : str or Path
        A ``.safetensors`` file written by a synthaug generator.
    device : str
        Where to put the networks (``"auto"``: CUDA when available).

    Returns
    -------
    generator
        The fitted model; its ``file_digest_`` is the file's SHA-256 content digest (the same
        one ``synthaug info`` prints and manifests record) and ``metadata_`` what ``save`` was
        given (``{}`` when nothing).

    Raises
    ------
    CheckpointError
        Missing, truncated or edited file (header or weights), another model type, or a newer
        format version.

    Examples
    --------
    >>> import synthaug
    >>> from synthaug.data import load_digits
    >>> from synthaug.generators import CVAE
    >>> path = CVAE(epochs=1, verbose=False).fit(load_digits()).save("/tmp/cvae.safetensors")
    >>> synthaug.load(path).sample(2, y=3, seed=0)[1].tolist()
    [3, 3]
    """
    found = file_format(path)
    if found in MODEL_FILES and found != FORMAT_NAME:
        return MODEL_FILES.get(found)(path, device=device)
    # A generator's file; or missing, unreadable or foreign: the generator loader says which.
    return load_generator(path, device=device)
