"""A benchmark task for the Ray tests: tiny cells that sleep, keep a file and say where they ran.

``test-ray-cells`` reads ``[cells]`` (``seconds``, how long each cell sleeps) and has two
methods: ``sleep`` (sleep, write ``kept/cell.txt`` into the cell's folder, report the seed)
and ``crash`` (kill its own worker process, as a segfault or the OOM killer would). Every
cell first leaves ``<cell id>.<node id>.<pid>`` in the folder ``SYNTHAUG_TEST_MARKERS``
names, so a test can see which node is running what and kill it mid-cell.

Ray workers import this module through the ``worker_process_setup_hook`` :func:`on_worker`,
the way a user's own plugin module reaches the workers of a cluster.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import ray

from synthaug.bench import TASKS, BaseTask, Cell, CellContext, DatasetRef, TaskResult
from synthaug.errors import InvalidParameterError

MARKERS = "SYNTHAUG_TEST_MARKERS"


def on_worker() -> None:
    """Ray's worker setup hook: importing this module registered the task."""


def node_id() -> str:
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "no-ray"


@TASKS.register("test-ray-cells")
class RayCellsTask(BaseTask):
    settings_table = "cells"
    uses_classifiers = False
    example = '["sleep"]'
    reported = ("value",)

    def parse_settings(self, table: Any, dataset: DatasetRef) -> list[dict[str, Any]]:
        return [{"label": "cells", "cells": {"seconds": float(table.get("seconds", 0))}}]

    def validate_method(self, name: str, params: dict[str, Any]) -> None:
        if name not in ("sleep", "crash"):
            raise InvalidParameterError(f"methods.{name}: use 'sleep' or 'crash'")

    def load(self, cell: Cell) -> None:
        return None  # no data: the cells only have to take time and keep a file

    def run(self, cell: Cell, ctx: CellContext) -> TaskResult:
        node = node_id()
        Path(os.environ[MARKERS], f"{cell.cell_id}.{node}.{os.getpid()}").touch()
        if cell.method == "crash":
            os._exit(1)
        time.sleep(cell.settings["seconds"])
        (ctx.workdir / "kept").mkdir(parents=True)
        (ctx.workdir / "kept" / "cell.txt").write_text(cell.cell_id)
        return TaskResult({"value": float(cell.seed), "node": node})
