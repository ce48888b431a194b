"""Arguments of ``synthaug bench`` (the work: :mod:`synthaug.cli._bench`)."""

from __future__ import annotations

import argparse

from synthaug.cli._options import add_quiet_option, add_threads_option
from synthaug.cli._types import positive_int
from synthaug.errors import InvalidParameterError


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    bench = sub.add_parser(
        "bench",
        help="run a benchmark grid (TOML) locally or on Ray, resumably, and write the report",
        description=(
            "Run every cell (setting x method x classifier x seed) of a TOML grid. Finished "
            "cells are appended to DIR/results.jsonl; rerunning skips them. Ends with "
            "`synthaug report DIR`."
        ),
    )
    bench.add_argument("config", help="benchmark TOML file, e.g. benchmarks/digits_imbalanced.toml")
    bench.add_argument("--out", required=True, metavar="DIR", help="output folder")
    bench.add_argument(
        "--jobs", type=positive_int, default=1, help="cells run at once (default: %(default)s)"
    )
    add_threads_option(
        bench,
        "threads per cell, for torch and for the BLAS/OpenMP pools of numpy, scipy and "
        "scikit-learn (default: CPU cores / jobs; 1 on Ray, where it is also the CPUs each cell "
        "asks for)",
    )
    bench.add_argument(
        "--backend", choices=("local", "ray"), default="local", help="(default: %(default)s)"
    )
    bench.add_argument(
        "--address",
        "--ray-address",
        dest="ray_address",
        metavar="ADDR",
        help="with --backend ray: a running Ray cluster, e.g. HEAD:6379 from 'ray start --head' "
        "or ray://HEAD:10001; its CPUs decide how many cells run at once (default: a local Ray "
        "with --jobs x --threads CPUs)",
    )
    bench.add_argument("--force", action="store_true", help="rerun cells that already finished")
    bench.add_argument(
        "--quick", action="store_true", help="the config's reduced [quick] grid, for smoke runs"
    )
    bench.add_argument(
        "--tune",
        action="store_true",
        help="run on the data set's development pool (a fixed stratified 15%% that no reported "
        "grid touches) to choose settings; the report says it is not for publication",
    )
    add_quiet_option(bench, "progress bar")
    return bench


def check(args: argparse.Namespace) -> None:
    if args.ray_address and args.backend != "ray":
        raise InvalidParameterError("--address needs --backend ray")
