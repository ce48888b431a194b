#!/usr/bin/env python3
"""Compare the metrics of two `synthaug bench` run folders, cell by cell, bit for bit.

    python benchmarks/compare_runs.py BEFORE_DIR AFTER_DIR

Reads each folder's results.jsonl (one JSON record per finished cell; a truncated last line
is ignored, a cell that appears twice keeps its newest line) and, when config.json lists
"cell_ids", keeps only those cells, as synthaug.bench's load_records does. For every cell id
in both folders it compares the "metrics" objects exactly: each value is compared through its
canonical JSON text, so 0.1 vs 0.10000000000000002, 1 vs 1.0 and null vs a number all count
as differences. Timings, hostnames and dates are not compared.

Exit status: 0 when both folders hold the same cell ids and every metric is identical,
1 otherwise (differing values or differing cell id sets), 2 on unreadable input.
Needs only the standard library (does not import synthaug).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def load(folder: Path) -> dict[str, dict[str, Any]]:
    """cell id -> record, for the cells of the folder's current config."""
    path = folder / "results.jsonl"
    if not path.exists():
        print(f"compare: no results.jsonl in {folder}", file=sys.stderr)
        sys.exit(2)
    raw = path.read_bytes().split(b"\n")
    records: dict[str, dict[str, Any]] = {}
    for line in raw[:-1]:  # the part after the last newline is a truncated line, if any
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "cell_id" in record:
            records[record["cell_id"]] = record
    config = folder / "config.json"
    if config.exists():
        ids = json.loads(config.read_text()).get("cell_ids")
        if ids is not None:
            records = {k: v for k, v in records.items() if k in set(ids)}
    return records


def describe(record: dict[str, Any]) -> str:
    cell = record.get("cell", {})
    parts = [f"{k}={cell[k]}" for k in ("setting", "classifier", "method", "seed") if k in cell]
    return " ".join(parts)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    before_dir, after_dir = map(Path, argv)
    before, after = load(before_dir), load(after_dir)
    status = 0
    only_before = sorted(set(before) - set(after))
    only_after = sorted(set(after) - set(before))
    if only_before or only_after:
        status = 1
        print(
            f"cell id sets differ: {len(only_before)} only in {before_dir}, "
            f"{len(only_after)} only in {after_dir}"
        )
        for cid in only_before:
            print(f"  only in {before_dir}: {cid} {describe(before[cid])}")
        for cid in only_after:
            print(f"  only in {after_dir}: {cid} {describe(after[cid])}")
    common = [cid for cid in before if cid in after]
    n_diff = 0
    for cid in common:
        m1 = before[cid].get("metrics", {})
        m2 = after[cid].get("metrics", {})
        diffs = []
        for key in sorted(set(m1) | set(m2)):
            v1 = _canon(m1[key]) if key in m1 else "<missing>"
            v2 = _canon(m2[key]) if key in m2 else "<missing>"
            if v1 != v2:
                diffs.append((key, v1, v2))
        if diffs:
            n_diff += 1
            print(f"DIFF {cid} {describe(before[cid])}")
            for key, v1, v2 in diffs:
                print(f"    {key}: {v1} != {v2}")
    if n_diff:
        status = 1
    print(
        f"{len(common)} common cells: {len(common) - n_diff} identical, {n_diff} differ"
        + ("" if not (only_before or only_after) else "; cell id sets differ")
    )
    if status == 0:
        print("ALL EQUAL")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
