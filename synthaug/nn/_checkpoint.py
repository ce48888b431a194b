"""Model files: safetensors tensors plus a JSON-able header, written atomically, never pickled.

Every synthaug file type (generators, feature extractors) is one ``.safetensors`` file whose
header metadata names the format and its version, the library version, and a SHA-256 digest
of the whole content: every other header entry and every tensor's name, dtype, shape and bytes.
A reader refuses a foreign file, a newer format, or any edit (a swapped class name as much as a
flipped weight) before it builds anything.

The digest detects corruption and edits; it is not a signature. Anyone who can write the file
can also write a matching digest, so it says nothing about who made the file.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save

from synthaug._version import __version__
from synthaug.data import atomic_output
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


# The header key of the digest, and the marker of a digest that covers the header too (files
# written before it existed carry a digest of the tensors alone).
DIGEST_KEY = "sha256"
_SCOPE_KEY = "digest_scope"
_FULL_SCOPE = "header+tensors"


def content_digest(meta: dict[str, str], tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every header entry but the digest itself, then over :func:`tensor_digest`.

    The header is hashed as sorted-key JSON, so the digest does not depend on how a safetensors
    writer orders its metadata.
    """
    header = {k: v for k, v in meta.items() if k != DIGEST_KEY}
    h = hashlib.sha256()
    h.update(json.dumps(header, sort_keys=True, ensure_ascii=True).encode())
    h.update(tensor_digest(tensors).encode())
    return h.hexdigest()


def write_checkpoint(
    path: Path,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, str],
    format_name: str,
    version: int,
) -> Path:
    """Write ``tensors`` with ``meta`` plus format, versions and content digest, atomically.

    The temp file is renamed over ``path`` only once complete, so a crash never leaves a
    half-written file.
    """
    meta = {
        "format": format_name,
        "format_version": str(version),
        "synthaug_version": __version__,
        **meta,
        _SCOPE_KEY: _FULL_SCOPE,
    }
    meta[DIGEST_KEY] = content_digest(meta, tensors)
    with atomic_output(path, folder=False, overwrite=True) as partial:
        # Written by Python, not safetensors' save_file: that creates files mode 0600 whatever
        # the umask, and a model file is as readable as any other file the user writes.
        partial.write_bytes(save(tensors, metadata=meta))
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
        Missing, unreadable or foreign file, newer format, or any edit after saving.
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
    if meta.get(_SCOPE_KEY) == _FULL_SCOPE:
        if meta.get(DIGEST_KEY) != content_digest(meta, tensors):
            raise CheckpointError(
                f"{path} failed its integrity check: its header or weights changed after it was "
                f"saved (edited or corrupted); use the file as it was written, or save it again"
            )
    else:
        # Files written before the digest covered the header: only the tensors can be checked.
        if meta.get(DIGEST_KEY) != tensor_digest(tensors):
            raise CheckpointError(
                f"{path} failed its integrity check: its weights changed after it was saved"
            )
        warnings.warn(
            f"{path} was saved by an older synthaug whose integrity check covers the weights "
            f"but not the header (class names, parameters); save it again to protect both",
            UserWarning,
            stacklevel=3,
        )
    return meta, tensors


def checkpoint_header(path: str | Path) -> dict[str, str]:
    """The header metadata of a safetensors file, unchecked (read the file first to check it)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from exc
