"""Model files of fitted lesion sources: ``save(path)`` and ``synthaug.load(path)``.

A fitted :class:`~synthaug.augment.CopyPaste` or :class:`~synthaug.augment.LesionTransplant`
is saved as generators are (one ``.safetensors`` file, written atomically, with a SHA-256
digest of header and tensors, never pickled; see :mod:`synthaug.generators`), so that it is
reused instead of refitted: the tensors it samples from (the lesion patches, the normal
backgrounds with where a lesion may go and their tissue levels; a transplant's generator under
``generator.``), and a JSON header with the source's type, parameters and fitted scalars, a
transplant generator's own header, and that the file holds real training pixels
(``stores_training_images`` and ``keeps_real_pixels``: its normal backgrounds and lesion
patches are cut from real images).

Generators live in a lower layer than sources, so :func:`synthaug.generators.load` finds this
module's loader in :data:`~synthaug.generators.MODEL_FILES`, where importing
:mod:`synthaug.augment` registers it; the types a file may name are in :data:`FILE_TYPES`,
filled by the classes' module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synthaug._params import Estimator
from synthaug._utils import resolve_device
from synthaug.errors import CheckpointError, InvalidParameterError, NotFittedError
from synthaug.generators import (
    MODEL_FILES,
    as_params,
    build_generator,
    decode_param,
    encode_param,
    generator_parts,
    model_path,
)
from synthaug.nn import DIGEST_KEY, read_checkpoint, write_checkpoint
from synthaug.registry import Registry

FORMAT_NAME = "synthaug-lesion-source"
FORMAT_VERSION = 1
# A parameter value that is an estimator of this package (a LesionLocalizer), in JSON.
_ESTIMATOR_KEY = "__synthaug_augment__"
_GENERATOR_PREFIX = "generator."

FILE_TYPES: Registry = Registry("lesion source file type")
"""The classes a lesion-source file may name: the sources, and the estimators their parameters
hold (``"lesion-localizer"``); a name is what the file stores, so it never changes."""


def _encode(value: Any) -> Any:
    name = FILE_TYPES.name_of(type(value)) if isinstance(value, Estimator) else None
    if name is not None:
        # json.dumps encodes what the parameters hold (a CVAE) with this function in turn.
        return {_ESTIMATOR_KEY: {"type": name, "params": value.get_params(deep=False)}}
    return encode_param(value)


def _decode(obj: dict[str, Any]) -> Any:
    if set(obj) == {_ESTIMATOR_KEY}:
        spec = obj[_ESTIMATOR_KEY]
        return FILE_TYPES.get(spec["type"])(**as_params(spec["params"]))
    return decode_param(obj)


def _params_json(params: dict[str, Any]) -> str:
    return json.dumps(params, default=_encode)


def save_source(source: Any, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write the fitted lesion source ``source`` to ``path`` (``.safetensors`` appended when
    missing), atomically; ``metadata`` (JSON-able) comes back as the loaded ``metadata_``."""
    if not source.is_fitted:
        raise NotFittedError(f"{type(source).__name__} is not fitted; call fit(dataset) first")
    name = FILE_TYPES.name_of(type(source))
    if name is None:
        raise InvalidParameterError(
            f"{type(source).__name__} has no file type; register it in FILE_TYPES to save it"
        )
    tensors = {k: v.detach().cpu().contiguous() for k, v in source._fitted_tensors().items()}
    meta = {
        "model_type": name,
        "params": _params_json(source.get_params(deep=False)),
        "fitted": json.dumps(source._fitted_state()),
        # Real training pixels: the normal backgrounds, and the lesions cut from real images.
        "stores_training_images": json.dumps(bool(source.stores_training_images)),
        "keeps_real_pixels": json.dumps(bool(source.keeps_real_pixels)),
    }
    generator = source._fitted_generator()
    if generator is not None:
        inner_tensors, inner_meta = generator_parts(generator)
        tensors.update({_GENERATOR_PREFIX + k: v for k, v in inner_tensors.items()})
        meta["generator"] = json.dumps(inner_meta)
    if metadata:
        try:
            meta["metadata"] = json.dumps(metadata)
        except TypeError as exc:
            raise InvalidParameterError(
                f"save(metadata=...) must be JSON-able (str, numbers, lists, dicts): {exc}"
            ) from None
    return write_checkpoint(model_path(path), tensors, meta, FORMAT_NAME, FORMAT_VERSION)


def _one_line(exc: BaseException) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def load_source(path: str | Path, *, device: str = "auto") -> Any:
    """Load a lesion source saved with ``save`` (what :func:`synthaug.load` calls for one).

    Raises
    ------
    CheckpointError
        Missing, truncated or edited file, an unknown source type, a newer format, or a
        header and tensors that do not make the source they claim (checked like a user's
        input: the digest is no signature).
    """
    meta, tensors = read_checkpoint(path, FORMAT_NAME, FORMAT_VERSION, "lesion source")
    model_type = meta.get("model_type", "")
    if model_type not in FILE_TYPES or not hasattr(FILE_TYPES.get(model_type), "_restore"):
        raise CheckpointError(
            f"{path} holds a lesion source of type {model_type!r}, which this synthaug cannot "
            f"build (known: {[n for n in FILE_TYPES.list() if n != 'lesion-localizer']})"
        )
    cls = FILE_TYPES.get(model_type)
    device = resolve_device(device)
    try:
        params = json.loads(meta["params"], object_hook=_decode)
        fitted = json.loads(meta["fitted"])
        metadata = json.loads(meta.get("metadata", "{}"))
        inner = json.loads(meta["generator"]) if "generator" in meta else None
        if not isinstance(params, dict) or not isinstance(fitted, dict):
            raise TypeError("'params' and 'fitted' must be JSON objects")
    except (KeyError, TypeError, json.JSONDecodeError, InvalidParameterError) as exc:
        raise CheckpointError(
            f"{path} has a damaged configuration header: {_one_line(exc)}"
        ) from exc
    generator = None
    if inner is not None:
        if not isinstance(inner, dict):
            raise CheckpointError(f"{path} has a damaged configuration header: 'generator'")
        n = len(_GENERATOR_PREFIX)
        own = {k[n:]: v for k, v in tensors.items() if k.startswith(_GENERATOR_PREFIX)}
        generator = build_generator(inner, own, device, path)
    tensors = {k: v for k, v in tensors.items() if not k.startswith(_GENERATOR_PREFIX)}
    try:
        source = cls(**as_params(params))
        source.set_params(device=str(device))
        source.check_params()
        source._restore(fitted, tensors, device, generator=generator)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise CheckpointError(
            f"{path} does not match the {cls.__name__} it claims to hold: {_one_line(exc)}"
        ) from exc
    source.file_digest_ = meta[DIGEST_KEY]
    source.metadata_ = metadata if isinstance(metadata, dict) else {}
    return source


MODEL_FILES.register(FORMAT_NAME, load_source)
