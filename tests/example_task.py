"""A whole benchmark task type in one class: the example of docs/extending.md.

``label-fidelity`` fits each method's generator on the training part of the seed's split and
reports how often a real-data classifier gives its samples the class they were made for.
``conftest.py`` imports this module, so the tests can run a grid with it.
"""

from __future__ import annotations

from typing import Any

import torch

from synthaug.bench import (
    TASKS,
    BaseTask,
    Cell,
    CellContext,
    DatasetRef,
    TaskResult,
    build_source,
    split_data,
    validate_method,
)
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.metrics import label_fidelity


@TASKS.register("label-fidelity")
class LabelFidelityTask(BaseTask):
    """Label fidelity of each method's samples, per number of samples per class.

    Config: ``task = "label-fidelity"`` and a ``[samples]`` table with ``per_class = [20, 100]``
    (one setting each); methods are generators (or any method that makes a sample source).
    """

    settings_table = "samples"  # the config table this task reads
    uses_classifiers = False  # no [classifiers] axis
    example = '["cvae", "cgan"]'
    reported = ("label_fidelity",)  # the metrics of the report's tables

    def parse_settings(self, table: Any, dataset: DatasetRef) -> list[dict[str, Any]]:
        per_class = table.get("per_class", [50]) if isinstance(table, dict) else None
        if not isinstance(per_class, list) or not all(
            isinstance(n, int) and n > 0 for n in per_class
        ):
            raise InvalidParameterError(
                f"samples.per_class: give positive integers, got {per_class!r}"
            )
        return [{"label": f"per_class={n}", "samples": {"per_class": n}} for n in per_class]

    def validate_method(self, name: str, params: dict[str, Any]) -> None:
        validate_method(name, params)  # the harness's own checks: errors name the config key

    def run(self, cell: Cell, ctx: CellContext) -> TaskResult:
        with ctx.timed("split"):
            # The config's resampling protocol: a random split, or a fold of a k-fold.
            train, test = split_data(cell, ctx.data)
        with ctx.timed("fit"):
            source, _ = build_source(
                cell.method, cell.method_params, train, seed=cell.seed, device=ctx.device
            )
        n = cell.settings["per_class"]
        labels = torch.arange(train.n_classes).repeat_interleave(n)
        with ctx.timed("score"):
            images, labels = source.sample(len(labels), y=labels, seed=cell.seed)
            synthetic = ImageDataset(images, labels, train.classes)
            scores = label_fidelity(test, synthetic, seed=cell.seed)
        return TaskResult({"label_fidelity": scores["label_fidelity"]})
