"""Run a benchmark grid: every cell an independent task, locally or on Ray, resumable.

Finished cells go to ``DIR/results.jsonl`` (see :mod:`synthaug.bench._results`); a rerun
skips them. Files a cell keeps (DICOM exports, say) go to its own folder under
``DIR/cells/``. Only the driver writes into ``DIR``: a Ray worker, which may run on another
machine, runs its cell in a temporary folder and sends the files back with the result.
"""

from __future__ import annotations

import datetime as _dt
import json
import multiprocessing
import os
import platform
import random
import shutil
import socket
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from synthaug._utils import import_optional, progress_bar, resolve_device, show_warning_line
from synthaug.bench._config import BenchConfig
from synthaug.bench._report import write_report
from synthaug.bench._results import (
    CONFIG,
    ERRORS,
    RESULTS,
    append_record,
    grid_order,
    read_results,
    rewrite_without,
)
from synthaug.bench._task import Cell, CellContext, get_task, stable_hash
from synthaug.data import check_output
from synthaug.errors import BenchmarkError, InvalidParameterError

BACKENDS = ("local", "ray")
RAY_RETRIES = 3
"""How many times Ray reruns a batch of cells whose worker or node died before it returned."""
# How long an address may take to answer before a Ray run is refused: ray.init itself waits
# for an unreachable cluster for many minutes, saying nothing on the command line.
_CONNECT_TIMEOUT = 10.0
_VERSIONED = (
    "synthaug",
    "torch",
    "numpy",
    "scikit-learn",
    "scipy",
    "imbalanced-learn",
    "albumentations",
)


def _versions() -> dict[str, str]:
    # torch's own string says which build (CPU, CUDA version) ran the cell.
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for name in _VERSIONED:
        if name in out:
            continue
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _seed_everything(seed: int) -> None:
    """Global seeding, per task: only the harness does this (library code never does)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_cell(
    cell: Cell,
    threads: int | None = None,
    workdir: str | Path | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Run one grid cell and return its result record (raises on failure).

    Parameters
    ----------
    cell : Cell
    threads : int, optional
        CPU threads for the cell: torch's, and those of the BLAS and OpenMP pools that numpy,
        scipy and scikit-learn use (torch's setting does not reach them); the previous counts
        are restored after. Without it, each library uses its own default.
    workdir : path, optional
        The cell's folder for files it keeps (default: a ``cells/`` folder in the current
        directory).
    device : str, optional
        Run on this device instead of the cell's (a Ray task runs on the GPU Ray gave it,
        whatever index the config named); the cell and its id are unchanged.
    """
    if not threads:
        return _run_cell(cell, workdir, device)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        # A BLAS pool's thread count changes the order of its sums, and so lbfgs's path: on
        # digits a logistic regression moved by one test item between 1 and 2 BLAS threads.
        with threadpool_limits(limits=threads):
            return _run_cell(cell, workdir, device)
    finally:
        torch.set_num_threads(previous)


def _pool_threads() -> dict[str, int]:
    """The largest thread count of the loaded BLAS and OpenMP pools, by kind."""
    out: dict[str, int] = {}
    for pool in threadpool_info():
        kind = f"{pool['user_api']}_threads"
        out[kind] = max(out.get(kind, 0), int(pool["num_threads"]))
    return out


def cell_folder(out: str | Path, cell: Cell) -> Path:
    """``out/cells/<setting>/<method>[/<classifier>]/seed<s>-<id>``: a cell's own folder."""

    def safe(text: str) -> str:
        return "".join(ch if ch.isalnum() or ch in "-+=." else "_" for ch in text)

    parts = [safe(cell.setting), safe(cell.method)]
    if cell.classifier != "-":
        parts.append(safe(cell.classifier))
    return Path(out, "cells", *parts, f"seed{cell.seed}-{cell.cell_id[:8]}")


def _run_cell(cell: Cell, workdir: str | Path | None, device: str | None) -> dict[str, Any]:
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    _seed_everything(cell.seed)
    task = get_task(cell.task)
    device = resolve_device(device or cell.device)
    ctx = CellContext(None, str(device), Path(workdir) if workdir else cell_folder(".", cell))
    with ctx.timed("load_data"):
        ctx.data = task.load(cell)
    result = task.run(cell, ctx)
    ctx.timings["total"] = time.perf_counter() - t0
    return {
        "samples": result.samples,
        "cell_id": cell.cell_id,
        "cell": {**cell.to_dict(), "cell_id": cell.cell_id},
        "seed": cell.seed,
        "metrics": result.metrics,
        "timings": ctx.timings,
        "versions": _versions(),
        "device": {
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            **_pool_threads(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "hostname": socket.gethostname(),
        },
        "started": started.isoformat(timespec="seconds"),
    }


def _run_cell_safely(
    cell: Cell, threads: int | None, workdir: Path, device: str | None = None
) -> tuple[bool, dict[str, Any]]:
    """``(True, record)`` or ``(False, error)``: one failing cell must not stop the others."""
    try:
        return True, run_cell(cell, threads, workdir, device)
    except Exception as exc:  # noqa: BLE001 - reported per cell, then the run fails overall
        return False, _error_record(cell, f"{type(exc).__name__}: {exc}", traceback.format_exc())


def _error_record(cell: Cell, error: str, trace: str) -> dict[str, Any]:
    return {
        "cell_id": cell.cell_id,
        "cell": {**cell.to_dict(), "cell_id": cell.cell_id},
        "error": error,
        "traceback": trace,
    }


# -- backends -------------------------------------------------------------------------------


def fit_groups(cells: list[Cell]) -> list[list[Cell]]:
    """The cells in the batches one worker runs in turn: those that reuse one generator fit
    (:meth:`~synthaug.bench.Task.fit_group`) together, so the fit is made once, not once per
    worker that happens to draw one of them; every other cell alone. Batches follow the grid
    (seed-major) order of their first cells.
    """
    groups: dict[Any, list[Cell]] = {}
    for cell in cells:
        key = get_task(cell.task).fit_group(cell)
        groups.setdefault(key if key is not None else ("cell", cell.cell_id), []).append(cell)
    return list(groups.values())


def watch_parent(parent: int, every: float = 1.0) -> None:
    """Worker initializer: exit when the process that started the pool is gone (and show
    warnings as one line each).

    A killed ``synthaug bench`` (SIGKILL, a closed terminal) cannot shut its pool down, and
    spawn workers would otherwise run their cells to the end with nobody to collect them. An
    orphan is handed to another parent, so a changed parent pid means the run is over.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="synthaug-watch-parent", daemon=True).start()
    # A worker's warnings reach the same terminal as the run's: one line each, like the CLI's.
    warnings.showwarning = show_warning_line


def _run_batch(cells: list[Cell], threads: int | None, out: Path) -> list[tuple[bool, dict]]:
    return [_run_cell_safely(cell, threads, cell_folder(out, cell)) for cell in cells]


def _run_local(
    cells: list[Cell], jobs: int, threads: int | None, out: Path
) -> Iterator[tuple[bool, dict[str, Any]]]:
    if jobs == 1:
        for batch in fit_groups(cells):
            yield from _run_batch(batch, threads, out)
        return
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    # spawn, not fork: forking a process that already ran torch threads can deadlock.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=ctx, initializer=watch_parent, initargs=(os.getpid(),)
    ) as pool:
        futures = [pool.submit(_run_batch, batch, threads, out) for batch in fit_groups(cells)]
        try:
            for future in as_completed(futures):
                yield from future.result()
        finally:
            for future in futures:
                future.cancel()


def _read_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative POSIX path (empty when there is none)."""
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _run_batch_on_ray(cells: list[Cell], threads: int, gpus: int) -> list[tuple[bool, dict]]:
    """A Ray task: run a batch of cells on whichever machine Ray chose.

    Each cell runs in a temporary folder of this machine; the files it kept travel back in
    its record (``"files"``: relative path to bytes) and the folder is removed, so nothing of
    the run stays on a worker's disk and the driver alone writes the output folder. A cell
    given a GPU runs on the one Ray gave the task (Ray makes it the only visible device); a
    cell without one stays on the CPU even where ``device = "auto"`` would find a GPU.
    """
    records = []
    for cell in cells:
        device = "cuda" if gpus else ("cpu" if cell.device == "auto" else None)
        # The cell id in the name says whose folder a killed worker left behind.
        with tempfile.TemporaryDirectory(prefix=f"synthaug-cell-{cell.cell_id[:8]}-") as tmp:
            workdir = Path(tmp, "cell")
            ok, record = _run_cell_safely(cell, threads, workdir, device)
            if ok:
                record["files"] = _read_files(workdir)
        records.append((ok, record))
    return records


def gpus_per_cell(device: str, cluster_gpus: float) -> int:
    """GPUs a Ray task asks for per cell: 1 for a CUDA device, and for ``"auto"`` on a cluster
    that has a GPU; else 0."""
    kind = device.split(":")[0]
    return int(kind == "cuda" or (kind == "auto" and cluster_gpus > 0))


def _check_reachable(address: str) -> None:
    """Refuse an address where nothing answers, before ray.init waits for it for minutes."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray reads its own way: Ray says what is wrong with it
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise InvalidParameterError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            f"'ray start --head' and pass the address it prints"
        ) from None


def _check_cluster_fits(nodes: list[dict[str, Any]], cpus: int, gpus: int, device: str) -> None:
    """Refuse a request no live node can grant: Ray would queue those tasks forever."""
    resources = [n["Resources"] for n in nodes if n.get("Alive")]
    if gpus and not any(r.get("GPU", 0) >= gpus for r in resources):
        raise InvalidParameterError(
            f"device {device!r} runs each cell on a GPU, but no node of the Ray cluster has "
            f'one; add a GPU node or set device = "cpu" in the config'
        )
    fits = [r.get("CPU", 0) for r in resources if r.get("GPU", 0) >= gpus]
    if not any(c >= cpus for c in fits):
        largest = max(fits, default=0)
        raise InvalidParameterError(
            f"threads={cpus} asks Ray for {cpus} CPUs per cell, but the largest node of the Ray "
            f"cluster{' with a GPU' if gpus else ''} has {largest:g}; lower threads (--threads)"
        )


def _run_ray(
    cells: list[Cell], jobs: int, address: str | None, threads: int | None
) -> Iterator[tuple[bool, dict[str, Any]]]:
    ray = import_optional("ray")
    cpus = threads or 1
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            _check_reachable(address)
            try:
                ray.init(address=address, log_to_driver=False)
            except ConnectionError as exc:
                raise InvalidParameterError(
                    f"could not connect to the Ray cluster at {address}: {exc}"
                ) from None
        else:
            ray.init(num_cpus=jobs * cpus, include_dashboard=False, log_to_driver=False)
    pending: dict[Any, list[Cell]] = {}
    try:
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        gpus = {}  # per device; a config has one
        for device in {cell.device for cell in cells}:
            gpus[device] = gpus_per_cell(device, cluster_gpus)
            _check_cluster_fits(ray.nodes(), cpus, gpus[device], device)
        tasks = {
            # A worker or node that dies before the batch returns has it rerun elsewhere;
            # nothing of it was recorded, so no cell is recorded twice. Cell errors are not
            # retried: they come back as records. A GPU worker ends after its batch (Ray's
            # default for GPU tasks): CUDA keeps the device it saw first, and Ray may give
            # the next task another one.
            n: ray.remote(
                num_cpus=cpus,
                num_gpus=n,
                max_calls=1 if n else 0,
                max_retries=RAY_RETRIES,
                retry_exceptions=False,
            )(_run_batch_on_ray)
            for n in set(gpus.values())
        }
        for batch in fit_groups(cells):
            n = gpus[batch[0].device]
            pending[tasks[n].remote(batch, cpus, n)] = batch
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            batch = pending.pop(ref)
            try:
                records = ray.get(ref)
            except ray.exceptions.RayError as exc:
                # Its worker died RAY_RETRIES + 1 times (or Ray lost it): these cells fail,
                # the others go on, and a rerun of the command retries them.
                first = (str(exc).strip().splitlines() or [""])[0]
                error = f"{type(exc).__name__}: {first}"
                trace = "".join(traceback.format_exception(exc))
                records = [(False, _error_record(cell, error, trace)) for cell in batch]
            yield from records
    finally:
        for ref in pending:  # a run stopped early: its cells must not go on on the cluster
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


# -- the driver -----------------------------------------------------------------------------


def _write_cell_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write the files a Ray worker sent back into the cell's folder, replacing what an earlier
    run of the cell left there; all or nothing, so a crash leaves no half folder."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for name, data in files.items():
        path = partial / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def _save_samples(out: Path, samples: dict[str, Any] | None, cell: dict[str, Any]) -> None:
    """Keep the example images of a cell's method once per setting, method and seed.

    The driver writes them (a Ray worker may run on another machine); the report draws the
    sample grids from them.
    """
    if not samples:
        return
    folder = out / "samples"
    folder.mkdir(exist_ok=True)
    key = {k: cell[k] for k in ("dataset", "setting", "method", "method_params", "seed")}
    path = folder / f"{stable_hash(key)}.npz"
    if not path.exists():
        meta = {k: cell[k] for k in ("setting", "method", "seed")}
        tmp = folder / f"{path.stem}.tmp.npz"
        np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **samples)
        os.replace(tmp, path)


def _error_summary(errors: dict[str, int], shown: int = 3, width: int = 200) -> str:
    """The first distinct cell errors with how many cells raised each, for the final message."""
    parts = [
        f"{text if len(text) <= width else text[: width - 3] + '...'} "
        f"({n} cell{'s' if n > 1 else ''})"
        for text, n in list(errors.items())[:shown]
    ]
    more = len(errors) - shown
    return "; ".join(parts) + (
        f"; and {more} other error{'s' if more > 1 else ''}" if more > 0 else ""
    )


def run_bench(
    config: BenchConfig,
    out: str | Path,
    *,
    jobs: int = 1,
    threads: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    force: bool = False,
    progress: bool = True,
    report: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every unfinished cell of ``config`` and write the report into ``out``.

    Parameters
    ----------
    config : BenchConfig
        From :func:`~synthaug.bench.load_config`.
    out : path
        Output folder: ``results.jsonl``, ``config.json``, ``report.*``, ``plots/``.
    jobs : int
        Cells run at once: local processes, or the cells a local Ray runs at once (it gets
        ``jobs * threads`` CPUs). Unused with ``ray_address``: the cluster's CPUs decide.
    threads : int, optional
        Torch threads per cell. Default: CPU cores // ``jobs`` for local processes (torch's own
        default when ``jobs`` is 1), 1 on Ray, where each cell also asks Ray for that many
        CPUs (and for one GPU when the config's device is CUDA, or ``"auto"`` on a cluster
        with a GPU).
    backend : {"local", "ray"}
    ray_address : str, optional
        Address of a running Ray cluster (``host:6379`` from ``ray start --head``,
        ``ray://host:10001`` or ``auto``); default starts a local Ray. Workers send each
        cell's result and files back; a batch whose worker or node dies is rerun elsewhere
        (up to :data:`RAY_RETRIES` times), then counted as failed.
    force : bool
        Rerun cells that already have results (their old lines are dropped).
    progress : bool
        Show a progress bar over cells with the estimated time left.

    Returns
    -------
    dict
        ``total``, ``skipped`` (already finished), ``ran`` and ``failed`` cell counts.

    Raises
    ------
    BenchmarkError
        When some cells raised; their errors are in ``errors.jsonl`` and the others are kept.
        When every cell to run raised, the message gives the first distinct errors and how
        many cells raised each, and no report is written unless earlier cells had finished.
    """
    if backend not in BACKENDS:
        raise InvalidParameterError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InvalidParameterError(f"jobs must be a positive integer, got {jobs!r}")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise InvalidParameterError(f"threads must be a positive integer or None, got {threads!r}")
    if ray_address is not None and backend != "ray":
        raise InvalidParameterError("ray_address is only used with backend='ray'")
    # A bench folder is added to on purpose (finished cells are kept and skipped), so an
    # existing one is fine; a file in its place or an unwritable place is not.
    out = check_output(out, folder=True, overwrite=True)
    out.mkdir(parents=True, exist_ok=True)
    results = out / RESULTS
    cells = config.cells()
    ids = {c.cell_id for c in cells}
    meta = {
        "config_hash": config.hash,
        "source": config.source,
        "config": config.to_dict(),
        "cell_ids": sorted(ids),
        # config.json is written with sorted keys: the grid's own order is kept here.
        "order": grid_order(
            [s["label"] for s in config.settings], list(config.classifiers), list(config.methods)
        ),
    }
    (out / CONFIG).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if force and results.exists():
        rewrite_without(results, ids)
    done = {r["cell_id"] for r in read_results(results, repair=True)}
    todo = [c for c in cells if c.cell_id not in done]
    by_id = {c.cell_id: c for c in todo}
    skipped = len(cells) - len(todo)
    where = (
        f"ray at {ray_address}"
        if ray_address
        else f"{backend}, {jobs} job{'s' if jobs > 1 else ''}"
    )
    echo(
        f"{config.name}: {len(cells)} cells, {skipped} already done, {len(todo)} to run "
        f"({where}) -> {results}"
    )
    (out / ERRORS).unlink(missing_ok=True)
    failed = 0
    errors: dict[str, int] = {}  # each distinct error message: how many cells raised it
    if todo:
        stream: Iterable[tuple[bool, dict[str, Any]]] = (
            _run_ray(todo, jobs, ray_address, threads)
            if backend == "ray"
            else _run_local(todo, jobs, threads, out)
        )

        with progress_bar(show=progress, total=len(todo), unit="cell") as bar:
            recorded = set(done)
            for ok, record in stream:
                cell = record["cell"]
                if record["cell_id"] in recorded:
                    continue  # delivered twice (a backend's retry): the first one counts
                if ok:
                    recorded.add(record["cell_id"])
                    files = record.pop("files", None)
                    if files:  # sent back by a Ray worker: before the line that says it is done
                        _write_cell_files(cell_folder(out, by_id[record["cell_id"]]), files)
                    _save_samples(out, record.pop("samples", None), cell)
                    record["config_hash"] = config.hash
                    record["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(
                        timespec="seconds"
                    )
                    append_record(results, record)
                else:
                    failed += 1
                    first_line = record["error"].splitlines()[0] if record["error"] else ""
                    errors[first_line] = errors.get(first_line, 0) + 1
                    append_record(out / ERRORS, record)
                    bar.write(
                        f"cell failed: {cell['setting']} {cell['method']} {cell['classifier']} "
                        f"seed {cell['seed']}: {record['error']}"
                    )
                bar.set_postfix_str(f"{cell['setting']} {cell['method']} {cell['classifier']}")
                bar.update()
    summary = {"total": len(cells), "skipped": skipped, "ran": len(todo) - failed, "failed": failed}
    if failed and failed == len(todo):
        # Nothing new finished: rerunning as it is would most likely fail the same way.
        if report and skipped:
            write_report(out, echo=echo)
        what = "the one cell to run" if len(todo) == 1 else f"all {len(todo)} cells to run"
        raise BenchmarkError(
            f"{what} failed: {_error_summary(errors)} (details in {out / ERRORS}); fix that, "
            f"then run the command again"
        )
    if report:
        write_report(out, echo=echo)
    if failed:
        raise BenchmarkError(
            f"{failed} of {len(todo)} cells failed (details in {out / ERRORS}); the others are "
            f"saved, and rerunning the same command retries only the failed ones"
        )
    return summary
