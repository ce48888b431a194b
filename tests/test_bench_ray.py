"""The Ray backend on a cluster of two nodes on this machine: results and files travel back to
the driver, a node killed mid-grid has its cells rerun elsewhere, each cell is recorded once,
and cells ask Ray for the CPUs and GPUs they use.

The nodes have 1 CPU each and their own temporary folder; every node is shut down by the
fixtures, also when a test fails. Cells come from ``tests/ray_cells.py``, which the workers
import through Ray's ``worker_process_setup_hook``.
"""

from __future__ import annotations

import _thread
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch

from synthaug.bench import _runner, parse_config, read_results, run_bench
from synthaug.bench._runner import _check_cluster_fits, cell_folder, gpus_per_cell
from synthaug.cli import main
from synthaug.errors import BenchmarkError, InvalidParameterError

ray = pytest.importorskip("ray")
ray_cells = pytest.importorskip("ray_cells")  # after ray: it imports ray
from ray.cluster_utils import Cluster  # noqa: E402

TESTS = Path(__file__).resolve().parent
# Ray notices a dead node after missing its health checks; the defaults take about 30 s.
QUICK_NODE_DEATH = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 2,
}


def quiet(*_):
    pass


def cells_config(seeds=2, seconds=0.0, methods=("sleep",), device="cpu"):
    return parse_config(
        {
            "task": "test-ray-cells",
            "seeds": seeds,
            "device": device,
            "dataset": {"name": "digits"},
            "cells": {"seconds": seconds},
            "methods": list(methods),
        }
    )


def recorded_ids(out: Path) -> list[str]:
    """The cell id of every line of results.jsonl, duplicates kept."""
    lines = (out / "results.jsonl").read_text().splitlines()
    return [json.loads(line)["cell_id"] for line in lines]


@pytest.fixture(scope="module")
def cluster():
    """A head node with 1 CPU; tests add (and kill) further nodes."""
    # Short: Ray's socket paths under it must fit in 107 bytes.
    temp = tempfile.mkdtemp(prefix="sa-ray-")
    cluster = Cluster()
    try:
        cluster.add_node(
            num_cpus=1, temp_dir=temp, include_dashboard=False, _system_config=QUICK_NODE_DEATH
        )
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def nodes(cluster):
    """The cluster; nodes a test added are killed after it."""
    yield cluster
    ray.shutdown()
    for node in list(cluster.worker_nodes):
        cluster.remove_node(node, allow_graceful=False)


@pytest.fixture
def driver(nodes, tmp_path):
    """Connect this process to the cluster as a user with plugin modules would: workers import
    ``ray_cells``, leave markers in ``tmp_path/markers`` and keep temporary folders in
    ``tmp_path/worker-tmp``."""
    markers, worker_tmp = tmp_path / "markers", tmp_path / "worker-tmp"
    markers.mkdir()
    worker_tmp.mkdir()
    path = os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(
        address=nodes.address,
        log_to_driver=False,
        runtime_env={
            "worker_process_setup_hook": "ray_cells.on_worker",
            "env_vars": {
                "PYTHONPATH": path,
                ray_cells.MARKERS: str(markers),
                "TMPDIR": str(worker_tmp),
            },
        },
    )
    return markers, worker_tmp


@pytest.mark.slow
def test_a_node_killed_mid_grid_has_its_cell_rerun_and_every_cell_is_recorded_once(
    nodes, driver, tmp_path
):
    markers, worker_tmp = driver
    doomed = nodes.add_node(num_cpus=1)
    config = cells_config(seeds=6, seconds=1.5)
    out = tmp_path / "out"
    killed: list[str] = []  # cells that were running on the node when it was killed
    stop = threading.Event()

    def kill_the_node_once_it_runs_a_cell() -> None:
        while not stop.is_set():
            running = [m.name.split(".")[0] for m in markers.iterdir() if doomed.node_id in m.name]
            if running:
                nodes.remove_node(doomed, allow_graceful=False)
                killed.extend(running)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_node_once_it_runs_a_cell)
    killer.start()
    try:
        summary = run_bench(config, out, backend="ray", progress=False, echo=quiet, report=False)
    finally:
        stop.set()
        killer.join()
    assert len(killed) == 1, "the second node never ran a cell: nothing was killed mid-cell"
    assert summary == {"total": 6, "skipped": 0, "ran": 6, "failed": 0}
    cells = config.cells()
    assert sorted(recorded_ids(out)) == sorted(c.cell_id for c in cells)  # each exactly once
    records = {r["cell_id"]: r for r in read_results(out / "results.jsonl")}
    assert records[killed[0]]["metrics"]["node"] != doomed.node_id  # rerun on the head node
    for cell in cells:  # the files came back to the driver's folder
        kept = cell_folder(out, cell) / "kept" / "cell.txt"
        assert kept.read_text() == cell.cell_id
    assert not list(out.rglob("*.partial"))
    # No cell folder stays on a worker's disk, except the one of the cell killed with its node.
    left = [p.name for p in worker_tmp.iterdir() if p.name.startswith("synthaug-cell-")]
    assert all(name.startswith(f"synthaug-cell-{killed[0][:8]}-") for name in left), left


@pytest.mark.slow
def test_a_cell_that_kills_its_worker_fails_alone_once_ray_gives_up(driver, tmp_path, monkeypatch):
    markers, _ = driver
    monkeypatch.setattr(_runner, "RAY_RETRIES", 0)  # each attempt starts a worker: seconds
    config = cells_config(seeds=1, methods=("sleep", "crash"))
    out = tmp_path / "out"
    with pytest.raises(BenchmarkError, match="1 of 2 cells failed"):
        run_bench(config, out, backend="ray", progress=False, echo=quiet, report=False)
    crash, sleep = sorted(config.cells(), key=lambda c: c.method)
    assert recorded_ids(out) == [sleep.cell_id]
    error = json.loads((out / "errors.jsonl").read_text())
    assert error["cell_id"] == crash.cell_id
    assert error["error"].startswith("WorkerCrashedError: "), error["error"]
    assert len([m for m in markers.iterdir() if m.name.startswith(crash.cell_id)]) == 1


@pytest.mark.slow
def test_stopping_the_driver_stops_its_cells_on_the_cluster(driver, tmp_path):
    markers, _ = driver
    config = cells_config(seeds=2, seconds=60)  # one runs, one waits for the CPU

    def interrupt_once_a_cell_runs() -> None:
        while not any(markers.iterdir()):
            time.sleep(0.02)
        _thread.interrupt_main()  # Ctrl-C

    threading.Thread(target=interrupt_once_a_cell_runs, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_bench(config, tmp_path / "out", backend="ray", progress=False, echo=quiet)
    # This process is still connected (as a notebook would be): the cell's worker is killed
    # and the waiting cell never starts.
    (marker,) = markers.iterdir()
    pid = int(marker.name.split(".")[2])
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)
    time.sleep(2)
    assert len(list(markers.iterdir())) == 1


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_cuda_cells_ask_ray_for_a_gpu_and_run_on_the_one_ray_gave(nodes, driver, tmp_path):
    config = cells_config(seeds=1, device="cuda:1")
    with pytest.raises(InvalidParameterError, match="no node of the Ray cluster has one"):
        run_bench(config, tmp_path / "a", backend="ray", progress=False, echo=quiet)
    nodes.add_node(num_cpus=1, num_gpus=1)  # a GPU as Ray counts it; this machine may have none
    if torch.cuda.is_available():
        run_bench(config, tmp_path / "b", backend="ray", progress=False, echo=quiet, report=False)
        (record,) = read_results(tmp_path / "b" / "results.jsonl")
        assert record["device"]["device"] == "cuda:0"  # Ray's GPU, whatever the config's index
        return
    with pytest.raises(BenchmarkError, match="the one cell to run failed"):
        run_bench(config, tmp_path / "b", backend="ray", progress=False, echo=quiet, report=False)
    error = json.loads((tmp_path / "b" / "errors.jsonl").read_text())["error"]
    # Asked for on the GPU Ray gave the task (its only visible device), not the config's cuda:1.
    assert "device='cuda' was asked for but CUDA is not available" in error, error


@pytest.mark.slow
def test_run_bench_connects_to_a_cluster_by_its_address_and_lets_go_after(nodes, tmp_path):
    config = parse_config(
        {
            "seeds": 1,
            "dataset": {"name": "digits"},
            "imbalance": {"minority_classes": [9], "ratios": [0.1]},
            "classifiers": {"logreg": {"max_iter": 50}},
            "methods": ["none"],
        }
    )
    lines = []
    summary = run_bench(
        config,
        tmp_path,
        backend="ray",
        ray_address=nodes.address,
        progress=False,
        echo=lines.append,
        report=False,
    )
    assert summary["ran"] == 1 and len(recorded_ids(tmp_path)) == 1
    assert f"(ray at {nodes.address})" in lines[0]
    assert not ray.is_initialized()  # it connected, so it disconnected


# -- without a cluster ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "cluster_gpus", "gpus"),
    [
        ("cpu", 0, 0),
        ("cpu", 4, 0),
        ("cuda", 0, 1),
        ("cuda:1", 2, 1),
        ("auto", 0, 0),
        ("auto", 1, 1),
        ("mps", 0, 0),
    ],
)
def test_gpus_per_cell(device, cluster_gpus, gpus):
    assert gpus_per_cell(device, cluster_gpus) == gpus


def test_requests_no_node_can_grant_are_refused():
    cpu_nodes = [{"Alive": True, "Resources": {"CPU": 4.0}}, {"Alive": False, "Resources": {}}]
    _check_cluster_fits(cpu_nodes, 4, 0, "cpu")
    with pytest.raises(InvalidParameterError, match="largest node of the Ray cluster has 4;"):
        _check_cluster_fits(cpu_nodes, 8, 0, "cpu")
    with pytest.raises(InvalidParameterError, match="^device 'cuda' runs each cell on a GPU"):
        _check_cluster_fits(cpu_nodes, 1, 1, "cuda")
    mixed = cpu_nodes + [{"Alive": True, "Resources": {"CPU": 2.0, "GPU": 1.0}}]
    _check_cluster_fits(mixed, 2, 1, "cuda")
    with pytest.raises(InvalidParameterError, match="cluster with a GPU has 2;"):
        _check_cluster_fits(mixed, 4, 1, "cuda")


def test_an_address_where_nothing_answers_is_a_one_line_error(tmp_path, capsys):
    config = tmp_path / "grid.toml"
    config.write_text(
        'task = "test-ray-cells"\nseeds = 1\n[dataset]\nname = "digits"\n[cells]\n'
        "[methods]\nsleep = {}\n"
    )
    argv = ["bench", str(config), "--out", str(tmp_path / "out"), "--quiet"]
    assert main([*argv, "--address", "127.0.0.1:1"]) == 2
    assert "--address needs --backend ray" in capsys.readouterr().err
    started = time.monotonic()
    assert main([*argv, "--backend", "ray", "--address", "127.0.0.1:1"]) == 2
    assert time.monotonic() - started < 30  # ray.init alone waits for minutes
    err = capsys.readouterr().err
    assert "no Ray cluster answers at 127.0.0.1:1" in err and "ray start --head" in err
    assert not ray.is_initialized()


def test_files_of_a_ray_cell_come_back_in_its_record_and_leave_no_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(ray_cells.MARKERS, str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "worker-tmp"))
    (tmp_path / "worker-tmp").mkdir()
    (cell,) = cells_config(seeds=1).cells()
    ((ok, record),) = _runner._run_batch_on_ray([cell], 1, 0)
    assert ok and record["files"] == {"kept/cell.txt": cell.cell_id.encode()}
    assert record["device"]["device"] == "cpu"
    assert not list((tmp_path / "worker-tmp").iterdir())


def test_a_cell_delivered_twice_is_recorded_once(tmp_path, monkeypatch):
    monkeypatch.setenv(ray_cells.MARKERS, str(tmp_path))
    run_local = _runner._run_local

    def twice(*args):
        for item in run_local(*args):
            yield item
            yield item

    monkeypatch.setattr(_runner, "_run_local", twice)
    config = cells_config(seeds=2)
    summary = run_bench(config, tmp_path / "out", progress=False, echo=quiet, report=False)
    assert summary["ran"] == 2
    assert sorted(recorded_ids(tmp_path / "out")) == sorted(c.cell_id for c in config.cells())
