"""The results folder of a benchmark run: ``results.jsonl``, ``errors.jsonl``, ``config.json``.

``results.jsonl`` holds one JSON object per finished cell, appended with a single ``write`` +
``fsync`` by the driver process only. A crash can leave at most a partial last line; reading
skips it and the next run cuts it off before appending, then reruns every cell whose line is
missing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from synthaug._utils import finite_json
from synthaug.errors import DataFileError

RESULTS = "results.jsonl"
ERRORS = "errors.jsonl"
CONFIG = "config.json"


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one line, written in one call and flushed to disk."""
    line = (json.dumps(finite_json(record), sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_results(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """The records in a results file, skipping a truncated last line and unreadable lines.

    Parameters
    ----------
    repair : bool
        Cut a partial last line off the file so that the next append starts on a new line.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    records = []
    lines = raw.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    for number, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            print(f"synthaug: skipping unreadable line {number} of {path}", file=sys.stderr)
            continue
        if isinstance(record, dict) and "cell_id" in record:
            records.append(record)
    if tail.strip():
        # A line without its newline was cut short by a crash: never trust it.
        print(f"synthaug: ignoring a truncated last line in {path}", file=sys.stderr)
        if repair:
            with open(path, "r+b") as fh:
                fh.truncate(len(raw) - len(tail))
    return records


def rewrite_without(path: Path, drop: set[str]) -> None:
    """Atomically rewrite the results file without the records of the cells in ``drop``."""
    kept = [r for r in read_results(path, repair=True) if r["cell_id"] not in drop]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
    os.replace(tmp, path)


def load_records(out: str | Path) -> list[dict[str, Any]]:
    """The results of ``out`` that belong to its current config (all of them without one).

    A record belongs when its cell is one of the config's cells: a cell's id hashes everything
    that decides its result, so the cells a grid shares with an earlier, smaller version of
    itself (one method added, say) are reused, not rerun and not dropped. Folders written
    before cell ids were listed fall back to the config hash.

    Records come in the config's order (settings, then classifiers, then methods, then seeds),
    whatever order parallel workers finished them in, so reports are the same on every run.
    """
    out = Path(out)
    if not (out / RESULTS).exists():
        raise DataFileError(f"no {RESULTS} in {out}; run `synthaug bench CONFIG --out {out}` first")
    records = read_results(out / RESULTS)
    meta_path = out / CONFIG
    meta: dict[str, Any] = {}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if "cell_ids" in meta:
            wanted = set(meta["cell_ids"])
            records = [r for r in records if r["cell_id"] in wanted]
        else:
            current = meta.get("config_hash")
            matching = [r for r in records if r.get("config_hash") == current]
            if matching:
                records = matching
    # A cell rerun with --force appears once; keep the newest line if one slipped in twice.
    latest: dict[str, dict[str, Any]] = {}
    for r in records:
        latest[r["cell_id"]] = r
    records = list(latest.values())
    if "order" in meta:  # folders written before it was recorded keep their file order
        records.sort(key=_grid_order(meta["order"]))
    return records


def grid_order(settings: list[str], classifiers: list[str], methods: list[str]) -> dict:
    """The order of a grid's axes as ``config.json`` records it (``"order"``)."""
    return {"setting": settings, "classifier": classifiers, "method": methods}


def _grid_order(order: dict[str, list[str]]) -> Any:
    """Sort key placing a record where its cell sits in the grid (unknown values last)."""

    def key(record: dict[str, Any]) -> tuple[int, ...]:
        cell = record["cell"]
        ranks = []
        for axis in ("setting", "classifier", "method"):
            values = order.get(axis, [])
            ranks.append(values.index(cell[axis]) if cell.get(axis) in values else len(values))
        return (*ranks, record.get("seed", 0))

    return key
