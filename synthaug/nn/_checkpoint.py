"""Model files: safetensors tensors plus a JSON-able header, written atomically, never pickled.

Every synthaug file type (generators, feature extractors) is one ``.safetensors`` file whose
header metadata names the format and its version, the library version, and a SHA-256 digest
of the tensor bytes, so a reader can refuse a foreign file, a newer format or edited weights
before it builds anything.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from synthaug._version import __version__
from synthaug.errors import CheckpointError


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of ``tensors`` (order-independent)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def write_checkpoint(
    path: Path,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, str],
    format_name: str,
    version: int,
) -> Path:
    """Write ``tensors`` with ``meta`` plus format, versions and SHA-256 digest, atomically.

    The temp file is renamed over ``path`` only once complete, so a crash never leaves a
    half-written file.
    """
    meta = {
        "format": format_name,
        "format_version": str(version),
        "synthaug_version": __version__,
        **meta,
        "sha256": tensor_digest(tensors),
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


def read_checkpoint(
    path: str | Path, format_name: str, version: int, what: str
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Read header metadata and tensors of a ``format_name`` file, checking format and digest.

    Parameters
    ----------
    path : str or Path
    format_name : str
        The ``format`` the header must name.
    version : int
        The newest format version this reader understands.
    what : str
        What the file holds, for messages ("model", "feature extractor").

    Raises
    ------
    CheckpointError
        Missing, unreadable or foreign file, newer format, or weights edited after saving.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no {what} file at {path}; check the path ({what} files are .safetensors)"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is not a readable synthaug {what} file (truncated or corrupted?): {exc}"
        ) from exc
    if meta.get("format") != format_name:
        raise CheckpointError(
            f"{path} is a safetensors file but not a synthaug {what} (no '{format_name}' header)"
        )
    try:
        found = int(meta.get("format_version", ""))
    except ValueError:
        raise CheckpointError(
            f"{path} has an unreadable format version {meta.get('format_version')!r}"
        ) from None
    if found > version:
        raise CheckpointError(
            f"{path} uses {what} format {found}, newer than this synthaug understands "
            f"({version}; written by synthaug {meta.get('synthaug_version')}); upgrade synthaug"
        )
    if meta.get("sha256") != tensor_digest(tensors):
        raise CheckpointError(
            f"{path} failed its integrity check: the weights were modified after saving"
        )
    return meta, tensors
