"""Writing outputs safely: checked before any work, built aside, renamed into place, never mixed.

Every writer of synthaug (image folders, DICOM folders, ``.npz`` files, the command line's
outputs) goes through :func:`atomic_output`: the output is built in a hidden sibling
(``.name.partial-...``) and renamed over the target only once it is complete, so an
interrupted run leaves the target as it was, and two runs never share a folder. A folder
output also gets ``manifest.csv``: one row per file, with the class and whatever the caller
knows (synthetic or not, the source file of a real item, the model's digest).
"""

from __future__ import annotations

import csv
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from synthaug.errors import DataFileError

MANIFEST_NAME = "manifest.csv"


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(os.sep)


def check_output(path: str | Path, *, folder: bool, overwrite: bool) -> Path:
    """Refuse an output ``path`` that cannot be written, before any work is done.

    Parameters
    ----------
    path : str or Path
        Where the output will go.
    folder : bool
        Whether the output is a folder (else a file).
    overwrite : bool
        Whether an existing output may be replaced. Without it an existing file and a
        non-empty folder are refused: a new run never adds to, or silently replaces, an old one.

    Returns
    -------
    Path

    Raises
    ------
    DataFileError
        A folder where a file is meant or the reverse, an existing output without
        ``overwrite``, or a place that cannot be written.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        if folder and not path.is_dir():
            raise DataFileError(
                f"{path} is a file, but a folder is written there; choose a folder name"
            )
        if not folder and path.is_dir():
            raise DataFileError(
                f"{path} is a folder, but a file is written there; give a file name inside it, "
                f"e.g. {path / 'out'}{path.suffix or ''}"
            )
        if not overwrite:
            if not folder:
                raise DataFileError(
                    f"{path} already exists; choose another name, or pass --overwrite "
                    f"(overwrite=True) to replace it"
                )
            held = sum(1 for _ in path.iterdir())
            if held:
                raise DataFileError(
                    f"{path} already holds {held} entr{'y' if held == 1 else 'ies'}; write to a "
                    f"new or empty folder, or pass --overwrite (overwrite=True) to replace it"
                )
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise DataFileError(f"cannot write {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise DataFileError(f"cannot write {path}: no permission to write in {base}")
    return path


@contextmanager
def atomic_output(path: str | Path, *, folder: bool, overwrite: bool) -> Iterator[Path]:
    """Yield a hidden sibling of ``path`` to build the output in; rename it into place on success.

    On any exception (``KeyboardInterrupt`` included) the sibling is removed and ``path`` is
    left as it was. With ``overwrite`` an existing ``path`` is replaced only after the new
    output is complete.
    """
    path = check_output(path, folder=folder, overwrite=overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataFileError(f"cannot create the folder {path.parent}: {exc}") from exc
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    partial = path.with_name(f".{path.name}.partial-{tag}")
    try:
        if folder:
            partial.mkdir()
        yield partial
        try:
            if folder and path.is_dir():
                # os.replace cannot replace a non-empty folder: move the old one aside first.
                old = path.with_name(f".{path.name}.old-{tag}")
                os.replace(path, old)
                os.replace(partial, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(partial, path)
        except OSError as exc:
            raise DataFileError(f"cannot write {path}: {exc}") from exc
    finally:
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        elif partial.exists():
            partial.unlink()


def write_manifest(folder: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    """``folder/manifest.csv``: one row per written file; columns are the rows' keys, in order."""
    columns = list(dict.fromkeys(k for row in rows for k in row)) or ["file", "class"]
    path = folder / MANIFEST_NAME
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path
