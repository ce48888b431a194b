"""How many of pydicom's shipped test ``.dcm`` files load, with and without ``synthaug[dicom]``.

Every ``.dcm`` file in pydicom's local test-data folder (nothing is downloaded) is read with
``synthaug.data.load_dicom_folder(on_error="skip")`` twice, each time in a fresh interpreter:
once with the decoder plugins of the ``dicom`` extra hidden (pylibjpeg and its libjpeg,
openjpeg and rle plugins, pyjpegls, python-gdcm), which is numpy + Pillow alone, and once as
installed. Skipped files are grouped by reason.

    PYTHONPATH=$PWD python benchmarks/dicom_decode_coverage.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

# Import names of the decoders the dicom extra brings (pyjpegls is pulled in by highdicom).
EXTRA_MODULES = ("pylibjpeg", "libjpeg", "openjpeg", "rle", "jpeg_ls", "gdcm")


def _measure() -> dict:
    """Run in the child: load every test file, report what loaded and why the rest did not."""
    if os.environ.get("HIDE_DICOM_EXTRA") == "1":
        for name in EXTRA_MODULES:
            sys.modules[name] = None  # makes `import name` raise ImportError
    import logging
    import shutil
    import tempfile
    import warnings
    from pathlib import Path

    import pydicom

    from synthaug.data import load_dicom_folder

    logging.getLogger("synthaug.data").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    data_dir = Path(pydicom.data.__file__).parent / "test_files"
    files = sorted(data_dir.glob("*.dcm"))  # the 78 files at the top level
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "all"
        folder.mkdir()
        for f in files:
            shutil.copy(f, folder / f.name)
        ds = load_dicom_folder(tmp, size=(32, 32), on_error="skip")
    loaded = sorted({Path(m["file"]).name for m in ds.metadata})
    skipped = {Path(f).name: reason for f, reason in ds.skipped}
    return {"n_files": len(files), "loaded": loaded, "skipped": skipped, "n_images": len(ds)}


def _category(reason: str) -> str:
    if "synthaug[dicom]" in reason:
        return "no decoder installed"
    if "no pixel data" in reason:
        return "no pixel data (RT plan, SR, ECG, ...)"
    if "not a DICOM file" in reason:
        return "no DICOM file meta header"
    if "Transfer Syntax UID" in reason:
        return "malformed: no transfer syntax"
    return "malformed or undecodable pixel data"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(_measure()))
        return
    results = {}
    for label, hide in (("numpy + Pillow only", "1"), ("with synthaug[dicom]", "0")):
        env = {**os.environ, "HIDE_DICOM_EXTRA": hide}
        out = subprocess.run(
            [sys.executable, __file__, "--child"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        results[label] = json.loads(out.stdout.strip().splitlines()[-1])
    for label, r in results.items():
        print(
            f"\n== {label}: {len(r['loaded'])} of {r['n_files']} files load ({r['n_images']} images)"
        )
        counts = Counter(_category(reason) for reason in r["skipped"].values())
        for cat, n in counts.most_common():
            names = sorted(f for f, reason in r["skipped"].items() if _category(reason) == cat)
            print(f"  {n:>3} {cat}: {', '.join(names)}")
    without, with_ = results.values()
    gained = sorted(set(with_["loaded"]) - set(without["loaded"]))
    print(f"\nfiles the extra makes loadable ({len(gained)}): {', '.join(gained)}")
    for f, reason in sorted(with_["skipped"].items()):
        if _category(reason) == "malformed or undecodable pixel data":
            print(f"  still failing with the extra: {f}: {reason[:160]}")


if __name__ == "__main__":
    main()
