"""Saving and loading generators: safetensors weights, JSON configuration, no pickle.

One ``.safetensors`` file holds everything. Its header metadata carries the format name and
version, the library version, the registered model type, the constructor parameters, the fitted
attributes and a SHA-256 digest of the tensor bytes, so a loader can refuse a file written by
another model type or a newer format, or one whose weights were edited, before building
anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from synthaug.errors import CheckpointError

FORMAT_NAME = "synthaug-generator"
FORMAT_VERSION = 1


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _encode(value: Any) -> Any:
    """JSON for the parameter objects that are not plain JSON (a ``dp=`` budget)."""
    from synthaug.generators._dp import DP

    if isinstance(value, DP):
        return {"__synthaug_dp__": value.to_dict()}
    raise TypeError(f"cannot store a {type(value).__name__} in a model file")


def _decode(obj: dict[str, Any]) -> Any:
    if set(obj) == {"__synthaug_dp__"}:
        from synthaug.generators._dp import DP

        return DP(**obj["__synthaug_dp__"])
    return obj


def save_generator(model: Any, path: str | Path) -> Path:
    """Write ``model`` to ``path`` atomically (a crash never leaves a half-written file)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = (
            path.with_suffix(path.suffix + ".safetensors")
            if path.suffix
            else path.with_suffix(".safetensors")
        )
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.modules_.state_dict().items()}
    tensors.update(
        {f"extra.{k}": v.detach().cpu().contiguous() for k, v in model._extra_tensors().items()}
    )
    params = model.get_params()
    params["device"] = str(params.get("device", "auto"))
    meta = {
        "model_type": model.registry_name,
        "params": json.dumps(params, default=_encode),
        "fitted": json.dumps(model._fitted_state(), default=_encode),
    }
    return write_checkpoint(path, tensors, meta, FORMAT_NAME, FORMAT_VERSION)


def write_checkpoint(
    path: Path,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, str],
    format_name: str,
    version: int,
) -> Path:
    """Write ``tensors`` with ``meta`` plus format, versions and SHA-256 digest, atomically.

    Shared by every synthaug file type (generators, feature extractors): the temp file is
    renamed over ``path`` only once complete, so a crash never leaves a half-written file.
    """
    from safetensors.torch import save_file

    import synthaug

    meta = {
        "format": format_name,
        "format_version": str(version),
        "synthaug_version": synthaug.__version__,
        **meta,
        "sha256": _digest(tensors),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Read header metadata and tensors, checking the format and the digest."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no model file at {path}; check the path (models are saved as .safetensors)"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is not a readable synthaug model file (truncated or corrupted?): {exc}"
        ) from exc
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path} is a safetensors file but not a synthaug generator (no '{FORMAT_NAME}' header)"
        )
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise CheckpointError(
            f"{path} has an unreadable format version {meta.get('format_version')!r}"
        ) from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses model format {version}, newer than this synthaug understands "
            f"({FORMAT_VERSION}; written by synthaug {meta.get('synthaug_version')}); upgrade synthaug"
        )
    if meta.get("sha256") != _digest(tensors):
        raise CheckpointError(
            f"{path} failed its integrity check: the weights were modified after saving"
        )
    return meta, tensors


def load(path: str | Path, *, device: str = "auto") -> Any:
    """Load a generator saved with ``save``.

    Parameters
    ----------
    path : str or Path
        A ``.safetensors`` file written by a synthaug generator.
    device : str
        Where to put the networks (``"auto"``: CUDA when available).

    Raises
    ------
    CheckpointError
        Missing, truncated or edited file, another model type, or a newer format version.
    """
    from synthaug._utils import resolve_device
    from synthaug.generators._registry import _REGISTRY

    meta, tensors = read_checkpoint(path)
    model_type = meta.get("model_type", "")
    if model_type not in _REGISTRY:
        raise CheckpointError(
            f"{path} holds a model of type {model_type!r}, which this synthaug does not know "
            f"(known: {sorted(_REGISTRY)})"
        )
    try:
        params = json.loads(meta["params"], object_hook=_decode)
        fitted = json.loads(meta["fitted"], object_hook=_decode)
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} has a damaged configuration header: {exc}") from exc
    return _build_from(_REGISTRY[model_type], params, fitted, tensors, resolve_device(device), path)


def _build_from(
    cls: type, params: dict, fitted: dict, tensors: dict, device: torch.device, path: Any
) -> Any:
    params = dict(params)
    if "device" in params:
        params["device"] = str(device)
    extra = {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")}
    weights = {k: v for k, v in tensors.items() if not k.startswith("extra.")}
    try:
        model = cls(**params)
        model._restore_state(fitted, device)
        model._restore_extra_tensors(extra)
        model.modules_.load_state_dict(weights, strict=True)
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"{path} does not match the {cls.__name__} it claims to hold: {exc}"
        ) from exc
    model.modules_.to(device)
    return model
