"""``synthaug bench``: run a benchmark grid described in TOML, resumably, then report.

Arguments: :mod:`synthaug.cli._args.bench`.
"""

from __future__ import annotations

import argparse

from synthaug.bench import load_config, run_bench


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, quick=args.quick, tune=args.tune)
    run_bench(
        config,
        args.out,
        jobs=args.jobs,
        threads=args.threads,
        backend=args.backend,
        ray_address=args.ray_address,
        force=args.force,
        progress=not args.quiet,
    )
    return 0
