"""How much does one seed of the medical demo say? Rerun it with the mixing source's parts all
drawing with the same seed.

Before the medical demo became a harness config (synthaug 0.1.0, 2026-11-29) it mixed its
generator and classical lesions with a half-and-half source of its own whose two halves drew
with the same seed; the harness's ``MixedSource`` gives part ``i`` the seed ``seed + 7919 * i``.
This script runs the current demo with that offset set to zero. If nothing else changed, it
prints the old table exactly; the difference to ``synthaug demo --medical`` is then one other
draw of the classical half, nothing more (docs/medical.md quotes both).

    python benchmarks/medical_mixing_seed.py --out runs/medical-same-seed
"""

from __future__ import annotations

import argparse

import torch

from synthaug._utils import check_seed
from synthaug.augment import MixedSource
from synthaug.cli import main as synthaug_main


def same_seed_sample(
    self: MixedSource, n: int, y: int | str, seed: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``MixedSource.sample`` with every part drawing with ``seed`` (the old demo's mixing)."""
    seed = check_seed(seed)
    k = len(self.sources_)
    share = [n // k + (i < n % k) for i in range(k)]
    images, labels = [], []
    for source, m in zip(self.sources_, share, strict=True):
        if m:
            im, lab = source.sample(m, y=y, seed=seed)
            images.append(im.to(torch.float32))
            labels.append(lab.to(torch.int64))
    return torch.cat(images), torch.cat(labels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/medical-same-seed")
    parser.add_argument("--kind", choices=("chest", "brain"), default="chest")
    args = parser.parse_args(argv)
    MixedSource.sample = same_seed_sample  # this process only, hence one job
    argv = ["demo", "--medical", "--kind", args.kind, "--out", args.out, "--jobs", "1"]
    return synthaug_main([*argv, "--quiet"])


if __name__ == "__main__":
    raise SystemExit(main())
