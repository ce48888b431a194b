"""``advise``: does synthetic data help on *your* data? A budgeted comparison run by the harness.

:func:`advise` takes a labelled data set and a time budget, and answers with a ranked table
and a verdict. It is a benchmark grid built in code and run by the harness
(:func:`~synthaug.bench.run_bench`, one cell at a time so that the budget is kept cell by
cell), reported by the harness's statistics (:func:`~synthaug.bench.summarize_results`):

- **The data as they are.** One setting, ``ratio = 1`` for every class smaller than the
  largest: nothing is cut; every sampling method tops each class up to the largest one.
- **A development part held out.** The cells read the harness's evaluation pool: the
  development pool, a fixed stratified 15% of the items (:func:`~synthaug.data.split_pools`),
  is in no run and no table, left for tuning.
- **Repeated stratified k-fold** of the rest (``folds`` = 5, fewer when a class has fewer
  items, at least 3), the corrected repeated k-fold t of Bouckaert & Frank (2004), and every
  method tested against the best free baseline with Holm's adjustment (the report's family
  "vs best free").
- **The methods that fit the data** (:func:`candidate_methods`): ``none``, the free
  baselines, then the generators and lesion sources, most promising first.
- **A budget kept.** The first run of every free baseline is timed, then each generator's
  first run; a generator stays when three runs of every method still fit (later generators:
  one whole repeat of the folds), then whole runs of every method are added while they fit,
  up to ``repeats`` x ``folds``. No run starts once the budget is spent, so the budget is
  exceeded by at most one run. Everything lands in ``DIR/results.jsonl``: a rerun with the
  same folder reuses every finished run, and its budget counts what they took.

The folder gets ``advice.md`` (the verdict, the table, what to run, what was left out),
``advice.toml`` (the comparison at full scale for ``synthaug bench``), the harness's
``report.md`` and ``data.npz``, the data as advise read them (the loader ``"snapshot"`` of
:data:`~synthaug.data.DATASETS` reads it back).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthaug._budget import parse_budget
from synthaug._utils import progress_bar
from synthaug.augment import SOURCES
from synthaug.bench._config import BenchConfig, parse_config
from synthaug.bench._methods import METHODS, TrainingMethod, is_lesion_source
from synthaug.bench._report import (
    BEST_FREE,
    MIN_SEEDS,
    MIN_TEST_CLASS,
    summarize_results,
)
from synthaug.bench._results import RESULTS, load_records, read_results
from synthaug.bench._runner import run_bench
from synthaug.bench._task import SMALLEST_TEST_CLASS
from synthaug.data import DATASETS, ImageDataset, check_output, select_pool
from synthaug.data._dataset import check_image_dataset
from synthaug.errors import (
    BenchmarkError,
    DataFileError,
    InvalidDataError,
    InvalidParameterError,
)
from synthaug.generators import GENERATORS

# The files of an advice folder.
SNAPSHOT = "data.npz"
STATE = "advise.json"
ADVICE_MD = "advice.md"
ADVICE_TOML = "advice.toml"
# The metric that ranks the methods (the classification task's first).
PRIMARY = "balanced_accuracy"
# Fewer folds than this and a training fold of the smallest class holds one or two items.
MIN_FOLDS = 3
# Free baselines, cheapest first: images get the long-tail fixes of the digits tables, feature
# vectors those of benchmarks/tabular.py (the sampler, mixup and jitter need a network on images).
IMAGE_FREE = ("balanced-online", "classical", "logit-adjusted", "mixup")
VECTOR_FREE = ("class-weighted", "logit-adjusted", "random-oversampling", "smote")
# Generators, most promising first: in the order of their balanced accuracy as
# "<generator>+balanced-online" in the shipped digits grid (resnet, ratio 0.02), with the epochs
# it gives them. On images a generator's samples are added and the classifier then trains the
# balanced-online way, which did better there than the plain top-up for every generator but
# cgan. Feature vectors: the generators of benchmarks/tabular.py at their own defaults, in the
# order of their mean balanced accuracy over its two tables.
IMAGE_GENERATORS = {"delta-transfer": 200, "deepsmote": 200, "dagan": 50, "cvae": 150, "cgan": 150}
VECTOR_GENERATORS = {"deepsmote": None, "delta-transfer": None, "cvae": None}
# Lesion sources (images whose largest class is the background class "normal"), with the
# epochs of the medical demo's lesion-transplant.
LESION_SOURCES = {"copy-paste": None, "lesion-transplant": 100}
NORMAL_CLASS = "normal"
# The repeats of the folds that advice.toml runs: what the calibration study of
# docs/benchmarks.md found a gap needs to be seen at the "vs best free" family's level.
FULL_REPEATS = 10
# The generators' networks are built for images up to this side (docs/generators.md).
MAX_GENERATOR_SIDE = 128
# How a generator's images are used on image data.
IMAGE_TRAINING = "balanced-online"

KIND_NONE, KIND_FREE, KIND_GENERATOR = "none", "free", "generator"


# -- the budget -----------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    """``"1h 05m"``, ``"4m 10s"``, ``"12 s"``: seconds for people."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _budget_arg(seconds: float) -> str:
    """A budget as ``--budget`` takes it: ``"1h"``, ``"45m"``, ``"90s"``."""
    seconds = max(1, round(seconds))
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


# -- the data as advise saw them ------------------------------------------------------------


def save_snapshot(dataset: ImageDataset, path: str | Path) -> str:
    """Write ``dataset`` for :func:`load_snapshot` (images or feature vectors, labels, class
    names), renamed into place when complete; returns its fingerprint."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial.npz")
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            images=dataset.images.numpy().astype(np.float32),
            labels=dataset.labels.numpy().astype(np.int64),
            classes=np.asarray(dataset.classes, dtype=str),
        )
    os.replace(tmp, path)
    return dataset.fingerprint()


def load_snapshot(path: Path, fingerprint: str | None = None) -> ImageDataset:
    """The data set that :func:`advise` compared methods on, as it saved it (``DIR/data.npz``).

    Registered as the data set ``"snapshot"`` of :data:`~synthaug.data.DATASETS`, so that the
    harness's cells and ``advice.toml`` read it.

    Parameters
    ----------
    path : Path
        The file :func:`save_snapshot` wrote.
    fingerprint : str, optional
        The data's :meth:`~synthaug.data.ImageDataset.fingerprint`; when given, data that differ
        from it are refused (the file was replaced after the advice was made).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            images, labels, classes = npz["images"], npz["labels"], npz["classes"]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataFileError(
            f"cannot read the advice's data {path}: {exc}; run synthaug advise again to write it"
        ) from exc
    dataset = ImageDataset(images, labels, [str(c) for c in classes])
    if fingerprint is not None and dataset.fingerprint() != fingerprint:
        raise InvalidDataError(
            f"{path} holds other data than the advice was made on (fingerprint "
            f"{dataset.fingerprint()[:12]}, not {fingerprint[:12]}); run synthaug advise again"
        )
    return dataset


DATASETS.register("snapshot", load_snapshot)


@dataclass(frozen=True)
class DataFacts:
    """What :func:`check_data` found out about a data set, for the grid and the advice."""

    n_items: int
    counts: dict[str, int]
    evaluation_counts: dict[str, int]
    folds: int
    minority: list[str]
    shape: tuple[int, ...]
    is_image: bool

    @property
    def n_development(self) -> int:
        return self.n_items - sum(self.evaluation_counts.values())

    def describe(self) -> str:
        what = (
            f"{' x '.join(str(s) for s in self.shape)} images"
            if self.is_image
            else f"{self.shape[0]}-dimensional feature vectors"
        )
        counts = ", ".join(f"{c}: {n}" for c, n in self.counts.items())
        return f"{self.n_items} items in {len(self.counts)} classes ({counts}); {what}"


def check_data(dataset: ImageDataset, folds: int = 5) -> DataFacts:
    """Check that ``dataset`` can answer the question, and how many folds it allows.

    Raises
    ------
    InvalidDataError
        Fewer than two classes with items, a class without items, classes that are all the
        same size (nothing to top up), or a class with fewer than 3 items once the
        development part is held out (too few for the folds).
    """
    check_image_dataset(dataset, "advise takes", "advise needs data; the data set is empty")
    counts = {dataset.classes[c]: n for c, n in dataset.class_counts().items()}
    present = {c: n for c, n in counts.items() if n}
    if len(present) < 2:
        ((name, n),) = present.items()
        raise InvalidDataError(
            f"advise compares ways to train on imbalanced classes and needs at least 2 classes; "
            f"the data have one, {name!r} ({n} items)"
        )
    empty = [c for c, n in counts.items() if not n]
    if empty:
        raise InvalidDataError(
            f"class(es) {empty} have no items; drop them from the data's class names"
        )
    if len(set(counts.values())) == 1:
        raise InvalidDataError(
            f"every class has {len(dataset) // len(counts)} items, so there is no imbalance to "
            f"correct: advise compares ways to top up smaller classes"
        )
    single = [c for c, n in counts.items() if n < 2]
    if single:
        raise InvalidDataError(
            f"class(es) {single} have a single item; advise holds out a development part and "
            f"cross-validates the rest, which needs at least {MIN_FOLDS + 1} items per class: "
            f"add items, or merge or drop those classes"
        )
    try:
        evaluation = select_pool(dataset, "evaluation")
    except InvalidParameterError as exc:  # too few items to stratify the development part
        raise InvalidDataError(
            f"{len(dataset)} items in {len(counts)} classes are too few to hold out the "
            f"stratified development part (15%: {exc}); add items"
        ) from None
    eval_counts = {dataset.classes[c]: n for c, n in evaluation.class_counts().items()}
    smallest = min(eval_counts, key=eval_counts.get)
    if eval_counts[smallest] < MIN_FOLDS:
        raise InvalidDataError(
            f"class {smallest!r} has {counts[smallest]} items, {eval_counts[smallest]} once the "
            f"development part (15%) is held out: too few for "
            f"{MIN_FOLDS}-fold cross-validation, which needs {MIN_FOLDS} per class there; add "
            f"items to it, or merge or drop it"
        )
    largest = max(counts.values())
    return DataFacts(
        n_items=len(dataset),
        counts=counts,
        evaluation_counts=eval_counts,
        folds=min(folds, eval_counts[smallest]),
        minority=[c for c, n in counts.items() if n < largest],
        shape=tuple(dataset.sample_shape),
        is_image=dataset.is_image,
    )


# -- the methods ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One method of the comparison: its name in the grid, its parameters and its kind
    (``"none"``, ``"free"`` or ``"generator"``, which covers the lesion sources)."""

    name: str
    params: dict[str, Any]
    kind: str
    generator: str | None = None


def candidate_methods(
    facts: DataFacts,
    *,
    generators: Sequence[str] | None = None,
    epochs: int | None = None,
) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """The methods to compare on data described by ``facts``, most important first, and the
    ones left out with why.

    ``none``, then the free baselines (images: ``balanced-online``, ``classical``,
    ``logit-adjusted``, ``mixup``; feature vectors: ``class-weighted``, ``logit-adjusted``,
    ``random-oversampling``, ``smote``), then the generators. Images: ``copy-paste`` and
    ``lesion-transplant`` when the largest class is ``normal`` (their background class),
    then ``delta-transfer``, ``deepsmote``, ``dagan``, ``cvae`` and ``cgan``, each as
    ``<generator>+balanced-online``, and none of them for images larger than 128 pixels on a
    side; feature vectors: ``deepsmote``, ``delta-transfer`` and ``cvae``. ``generators``
    replaces the generators (and lesion sources) with the ones named; ``epochs`` sets every
    generator's training epochs.
    """
    free_names = IMAGE_FREE if facts.is_image else VECTOR_FREE
    methods = [Candidate("none", {}, KIND_NONE)]
    methods += [Candidate(m, {}, KIND_FREE) for m in free_names if m in METHODS or m in SOURCES]
    left_out: list[tuple[str, str]] = []
    lesion = facts.is_image and max(facts.counts, key=facts.counts.get) == NORMAL_CLASS
    if generators is None:
        chosen: dict[str, int | None] = {}
        if lesion:
            chosen.update(LESION_SOURCES)
        chosen.update(IMAGE_GENERATORS if facts.is_image else VECTOR_GENERATORS)
        if facts.is_image and max(facts.shape[1:]) > MAX_GENERATOR_SIDE:
            reason = (
                f"the generators' networks are built for images up to {MAX_GENERATOR_SIDE} "
                f"pixels on a side, these are {facts.shape[1]} x {facts.shape[2]} (read them "
                f"smaller, e.g. --size 64, or name generators to try them anyway)"
            )
            left_out += [(g, reason) for g in chosen]
            chosen = {}
    else:
        chosen = {}
        for g in generators:
            _check_generator_name(g, facts)
            defaults = {**LESION_SOURCES, **IMAGE_GENERATORS} if facts.is_image else {}
            chosen[g] = defaults.get(g)
    for g, default_epochs in chosen.items():
        # copy-paste trains nothing: no epochs to set.
        chosen_epochs = None if g == "copy-paste" else (epochs or default_epochs)
        params: dict[str, Any] = {} if chosen_epochs is None else {"epochs": chosen_epochs}
        if is_lesion_source(g) or not facts.is_image:
            methods.append(Candidate(g, params, KIND_GENERATOR, g))
        else:
            methods.append(Candidate(f"{g}+{IMAGE_TRAINING}", {g: params}, KIND_GENERATOR, g))
    return methods, left_out


def _check_generator_name(name: str, facts: DataFacts) -> None:
    if not isinstance(name, str):
        raise InvalidParameterError(f"generators must be names, got {name!r}")
    lesion_sources = [s for s in SOURCES.list() if is_lesion_source(s)]
    if name in GENERATORS:
        return
    if name in lesion_sources:
        if not facts.is_image:
            raise InvalidParameterError(
                f"{name!r} moves lesions between images; the data are feature vectors"
            )
        if NORMAL_CLASS not in facts.counts:
            raise InvalidParameterError(
                f"{name!r} pastes lesions into images of the class {NORMAL_CLASS!r}, which the "
                f"data do not have (classes: {', '.join(facts.counts)})"
            )
        return
    if name in SOURCES or name in METHODS:
        raise InvalidParameterError(
            f"{name!r} is a baseline, not a generator; advise runs the free baselines that "
            f"fit the data by itself"
        )
    raise InvalidParameterError(
        f"unknown generator {name!r}; available: {', '.join([*GENERATORS.list(), *lesion_sources])}"
    )


def build_config(
    facts: DataFacts,
    methods: Sequence[Candidate],
    *,
    fingerprint: str,
    folder: Path,
    classifier_steps: int,
    repeats: int,
    device: str,
) -> tuple[dict[str, Any], BenchConfig]:
    """The advice's grid as a config table (what ``advice.toml`` holds) and as parsed by the
    harness, reading ``data.npz`` in ``folder``."""
    classifiers = {"resnet": {"steps": classifier_steps}} if facts.is_image else {"logreg": {}}
    table = {
        "name": "advice",
        "task": "classification",
        "device": device,
        "dataset": {"name": "snapshot", "path": SNAPSHOT, "fingerprint": fingerprint},
        "imbalance": {"minority_classes": facts.minority, "ratios": [1.0]},
        "split": {"protocol": "repeated-kfold", "folds": facts.folds, "repeats": repeats},
        "classifiers": classifiers,
        "methods": {m.name: m.params for m in methods},
    }
    config = parse_config(table, source=str(folder / ADVICE_TOML), base=folder)
    return table, config


# -- running within the budget ---------------------------------------------------------------


@dataclass
class _Ledger:
    """What each run of the grid cost: measured here, or recorded by an earlier advise."""

    config: BenchConfig
    seconds: dict[tuple[str, int], float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def cell(self, method: str, seed: int) -> BenchConfig:
        """The one-cell config of ``method`` at ``seed``."""
        return dataclasses.replace(
            self.config, methods={method: self.config.methods[method]}, seeds=[seed]
        )

    def cell_id(self, method: str, seed: int) -> str:
        return self.cell(method, seed).cells()[0].cell_id

    def done(self, method: str, seed: int) -> bool:
        return (method, seed) in self.seconds

    def runs(self, method: str) -> int:
        """Finished runs of ``method`` from seed 0 on without a gap."""
        n = 0
        while self.done(method, n):
            n += 1
        return n

    def estimate(self, method: str, kinds: dict[str, str]) -> float | None:
        """Seconds one run of ``method`` takes: its mean, else the mean of the runs of its
        kind (a generator not yet timed costs what the timed ones did), else None."""
        own = [s for (m, _), s in self.seconds.items() if m == method]
        if own:
            return float(np.mean(own))
        alike = [s for (m, _), s in self.seconds.items() if kinds.get(m) == kinds[method]]
        return float(np.mean(alike)) if alike else None

    def cost_to(self, methods: Sequence[str], n: int, kinds: dict[str, str]) -> float:
        """Estimated seconds until every method of ``methods`` has runs 0..n-1."""
        total = 0.0
        for m in methods:
            missing = sum(not self.done(m, s) for s in range(n))
            if missing:
                total += missing * (self.estimate(m, kinds) or 0.0)
        return total


class _Progress:
    """A bar over the planned runs with an estimate of the time left (not tqdm's own, which
    assumes every run costs the same: a generator's costs many classifier runs)."""

    def __init__(self, enabled: bool) -> None:
        self.bar = progress_bar(
            show=enabled,
            total=0,
            unit="run",
            desc="advise",
            bar_format="{desc}: {n_fmt}/{total_fmt} runs |{bar}| {elapsed} {postfix}",
        )

    def plan(self, total: int, left: float | None) -> None:
        self.bar.total = max(total, self.bar.n)
        self.bar.set_postfix_str(
            "ETA: timing the first runs" if left is None else f"ETA {_duration(left)}",
            refresh=False,
        )
        self.bar.refresh()

    def step(self, label: str) -> None:
        self.bar.set_description_str(f"advise {label}", refresh=False)
        self.bar.update()

    def close(self) -> None:
        self.bar.close()


class _Runner:
    """Runs the grid's cells one at a time through the harness, within the budget."""

    def __init__(
        self,
        ledger: _Ledger,
        out: Path,
        budget: float,
        spent_before: float,
        kinds: dict[str, str],
        progress: _Progress,
        threads: int | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        self.threads = threads
        self.state = state
        self.ledger = ledger
        self.out = out
        self.budget = budget
        self.spent_before = spent_before
        self.kinds = kinds
        self.progress = progress
        self.started = time.perf_counter()
        self.ran = 0

    def spent(self) -> float:
        return self.spent_before + time.perf_counter() - self.started

    def left(self) -> float:
        return self.budget - self.spent()

    def run(self, method: str, seed: int) -> bool:
        """Run ``method`` at ``seed`` unless it is done; False when the budget is spent or the
        run failed (its error is kept)."""
        if self.ledger.done(method, seed):
            return True
        if self.left() <= 0:
            return False
        t0 = time.perf_counter()
        try:
            run_bench(
                self.ledger.cell(method, seed),
                self.out,
                threads=self.threads,
                progress=False,
                report=False,
                echo=lambda _: None,
            )
        except BenchmarkError as exc:
            if self.kinds[method] == KIND_NONE:
                raise BenchmarkError(
                    f"a run of 'none' (no augmentation) failed, so nothing can be compared: {exc}"
                ) from exc
            self.ledger.failed[method] = str(exc).split(" (details in ")[0]
            return False
        seconds = time.perf_counter() - t0
        self.ledger.seconds[(method, seed)] = seconds
        if self.state is not None:
            # What the run cost here, harness overhead included: a rerun counts the same.
            self.state.setdefault("seconds", {})[self.ledger.cell_id(method, seed)] = seconds
            _write_state(self.out, self.state)
        self.ran += 1
        self.progress.step(f"{method} run {seed + 1}")
        return True

    def fits(self, methods: Sequence[str], n: int) -> bool:
        """Whether runs 0..n-1 of every method fit in what is left of the budget."""
        need = self.ledger.cost_to(methods, n, self.kinds)
        return need == 0 or need <= self.left()


def _run_within_budget(
    runner: _Runner, methods: Sequence[Candidate], folds: int, max_runs: int
) -> tuple[list[str], list[tuple[str, str]]]:
    """Run the grid's cells as the budget allows; returns the methods kept and those left
    out with why."""
    ledger, kinds = runner.ledger, runner.kinds
    left_out: list[tuple[str, str]] = []
    baselines = [m.name for m in methods if m.kind != KIND_GENERATOR]
    generators = [m.name for m in methods if m.kind == KIND_GENERATOR]
    members: list[str] = []

    def show(extra: Sequence[str] = ()) -> None:
        names = [*members, *extra]
        n = _affordable_runs(runner, names, max_runs)
        total = sum(max(n, ledger.runs(m)) for m in names) + sum(
            1 for g in generators if g not in names and g not in dict(left_out)
        )
        known = all(ledger.estimate(m, kinds) is not None for m in names)
        left = ledger.cost_to(names, n, kinds) if known else None
        runner.progress.plan(total, None if left is None else min(left, max(runner.left(), 0)))

    # 1. The first run of every baseline: the reference every generator is measured against.
    for name in baselines:
        show(baselines)
        if runner.run(name, 0):
            members.append(name)
        elif name in ledger.failed:
            left_out.append((name, f"its first run failed: {ledger.failed[name]}"))
        else:
            left_out.append((name, "the budget ran out before its first run"))
    # 2. Each generator's first run; it stays if enough runs of every method still fit.
    for i, name in enumerate(generators):
        target = (
            MIN_SEEDS if i == 0 or not any(kinds[m] == KIND_GENERATOR for m in members) else folds
        )
        target = max(min(target, max_runs), 1)
        show([name])
        if not runner.fits(members, target):
            left_out.append(
                (
                    name,
                    f"no time left for it once {target} runs of the methods already in were "
                    f"set aside",
                )
            )
            continue
        known = ledger.estimate(name, kinds) is not None
        if known and not runner.fits([*members, name], target):
            left_out.append((name, _too_dear(runner, name, target)))
            continue
        if not runner.run(name, 0):
            why = ledger.failed.get(name)
            left_out.append((name, f"its first run failed: {why}" if why else "the budget ran out"))
            continue
        if runner.fits([*members, name], target):
            members.append(name)
        else:
            left_out.append((name, _too_dear(runner, name, target)))
    # 3. Whole runs of every kept method, while they fit.
    n = 1
    while n < max_runs and runner.left() > 0:
        if not runner.fits(members, n + 1):
            break
        show()
        for name in list(members):
            if not runner.run(name, n) and name in ledger.failed:
                members.remove(name)
                left_out.append((name, f"run {n + 1} failed: {ledger.failed[name]}"))
        if not all(ledger.done(m, n) for m in members):
            break  # the budget ran out inside this run
        n += 1
    show()
    return members, left_out


def _affordable_runs(runner: _Runner, methods: Sequence[str], max_runs: int) -> int:
    n = 1
    while n < max_runs and runner.fits(methods, n + 1):
        n += 1
    return n


def _too_dear(runner: _Runner, name: str, target: int) -> str:
    one = runner.ledger.estimate(name, runner.kinds) or 0.0
    timed = "one run takes" if runner.ledger.done(name, 0) else "a generator's run took"
    return (
        f"{timed} about {_duration(one)}; {target} runs of it beside the others did not fit "
        f"what was left of the budget"
    )


# -- the answer -------------------------------------------------------------------------------


@dataclass
class Advice:
    """What :func:`advise` found.

    Attributes
    ----------
    verdict : str
        The plain answer (``"use balanced-online: no generator beat it on your data; ..."``).
    recommended : str or None
        The method to use, or None when the runs were too few to say.
    table : list of dict
        One row per method, best first: ``method``, ``kind`` (``"none"``, ``"free"``,
        ``"generator"``), ``n`` (runs), ``mean`` and ``ci95_half_width`` of balanced
        accuracy; against the best free baseline (``best_free``) ``gain``, ``ci95_gain``,
        ``p``, ``p_holm`` and ``wtl`` (wins/ties/losses; NaN and ``""`` in its own row);
        against ``none`` ``gain_vs_none`` and ``p_holm_vs_none``.
    best_free : str
        The best free baseline, the reference of every comparison ("" when none ran).
    runs : int
        Runs of every method in the table (folds of the repeated k-fold).
    folds : int
    left_out : list of (str, str)
        Methods the budget or the data left out, with why.
    commands : list of str
        What to run (or change) to use the recommended method.
    spent_seconds, budget_seconds : float
        The seconds the runs of this folder took (earlier advise runs included), and the budget.
    out : Path
        The folder: ``advice.md``, ``advice.toml``, ``report.md``, ``results.jsonl``.
    """

    verdict: str
    recommended: str | None
    table: list[dict[str, Any]]
    best_free: str
    runs: int
    folds: int
    left_out: list[tuple[str, str]]
    commands: list[str]
    spent_seconds: float
    budget_seconds: float
    out: Path


def _p(x: float) -> str:
    return "n/a" if math.isnan(x) else (f"{x:.3f}" if x >= 0.001 else f"{x:.1e}")


def _ranked(rows: list[dict[str, Any]], kinds: dict[str, str]) -> list[dict[str, Any]]:
    """The table of :class:`Advice`: the primary metric's rows, best mean first."""
    out = []
    for r in rows:
        if r["metric"] != PRIMARY:
            continue
        out.append(
            {
                "method": r["method"],
                "kind": kinds.get(r["method"], KIND_FREE),
                "n": r["n"],
                "mean": r["mean"],
                "ci95_half_width": r["ci95_half_width"],
                "gain": r.get(f"gain_vs_{BEST_FREE}", math.nan),
                "ci95_gain": r.get(f"ci95_gain_vs_{BEST_FREE}", math.nan),
                "p": r.get(f"p_vs_{BEST_FREE}", math.nan),
                "p_holm": r.get(f"p_holm_vs_{BEST_FREE}", math.nan),
                "wtl": r.get(f"wtl_vs_{BEST_FREE}", ""),
                "gain_vs_none": r.get("gain_vs_none", math.nan),
                "p_holm_vs_none": r.get("p_holm_vs_none", math.nan),
                "best_free": r["best_free"],
            }
        )
    return sorted(out, key=lambda r: -r["mean"] if not math.isnan(r["mean"]) else math.inf)


def make_verdict(table: list[dict[str, Any]], runs: int) -> tuple[str, str | None]:
    """The plain answer and the method it recommends (None when the runs cannot tell).

    ``table`` is :attr:`Advice.table`. A generator is recommended only when it beats the best
    free baseline with a Holm-adjusted p below 0.05; otherwise the best free baseline is (or
    ``none``, when no free baseline has a higher mean than training as usual).
    """
    if not table:
        return "no run finished, so there is nothing to compare", None
    best = table[0]
    metric = PRIMARY.replace("_", " ")
    if runs < MIN_SEEDS:
        return (
            f"too few runs to conclude: the budget allowed {runs} run{'s' * (runs != 1)} of "
            f"each method and at least {MIN_SEEDS} are needed (highest so far: "
            f"{best['method']}, {metric} {best['mean']:.3f}); rerun with a larger budget and "
            f"the same folder to continue",
            None,
        )
    best_free = best["best_free"]
    by_name = {r["method"]: r for r in table}
    if not best_free:
        return "no free baseline finished a run, so there is no reference to compare with", None
    generators = [r for r in table if r["kind"] == KIND_GENERATOR and not math.isnan(r["gain"])]
    use, note = best_free, ""
    none = by_name.get("none")
    if none is not None and none["mean"] >= by_name[best_free]["mean"]:
        use = "none"
        note = (
            f" (no free baseline beat training as usual; the best, {best_free}, is the reference)"
        )
    elif none is not None and not by_name[best_free]["p_holm_vs_none"] < 0.05:
        note = (
            f" ({best_free} itself is not significantly above none: "
            f"{by_name[best_free]['gain_vs_none']:+.3f}, Holm p "
            f"{_p(by_name[best_free]['p_holm_vs_none'])})"
        )
    if not generators:
        return (
            f"use {use}: no generator was compared (none fit the budget or the data), so "
            f"whether one helps is untested{note}",
            use,
        )
    winners = [r for r in generators if r["gain"] > 0 and r["p_holm"] < 0.05]
    if winners:
        w = max(winners, key=lambda r: r["gain"])
        return (
            f"use {w['method']}: it beat {best_free}, the best free baseline, on your data: "
            f"{metric} {w['gain']:+.3f} ± {w['ci95_gain']:.3f}, Holm p {_p(w['p_holm'])}",
            w["method"],
        )
    top = max(generators, key=lambda r: r["gain"])
    return (
        f"use {use}: no generator beat {best_free} on your data; best {top['method']} "
        f"{top['gain']:+.3f}, Holm p {_p(top['p_holm'])}{note}",
        use,
    )


def _thin_test_class(records: list[dict[str, Any]]) -> int | None:
    """The smallest class of any test fold, when under :data:`MIN_TEST_CLASS` items."""
    sizes = [
        r["metrics"][SMALLEST_TEST_CLASS]
        for r in records
        if isinstance(r["metrics"].get(SMALLEST_TEST_CLASS), (int, float))
    ]
    smallest = int(min(sizes)) if sizes else None
    return smallest if smallest is not None and smallest < MIN_TEST_CLASS else None


def usage_commands(
    method: str | None,
    methods: dict[str, dict[str, Any]],
    generator: str | None,
    *,
    data_option: str,
    is_image: bool,
    classifier: str,
) -> list[str]:
    """How to use ``method`` on the data: ``synthaug`` commands for images, a Python form for
    every data set, or the classifier setting of a free baseline that adds no data."""
    if method is None:
        return []
    if method == "none":
        return ["# nothing to add: train your classifier on your data as it is"]
    params = methods.get(method, {})
    if generator is not None:
        own = params.get(generator, params) if generator != method else params
        keywords = ", ".join(f"{k}={v!r}" for k, v in own.items())
        out = []
        if is_image:
            if is_lesion_source(generator):
                out.append(
                    f"synthaug augment {data_option} --source {generator}"
                    + "".join(f" --param {k}={json.dumps(v)}" for k, v in own.items())
                    + " --out augmented.npz"
                )
            else:
                epochs = f" --epochs {own['epochs']}" if "epochs" in own else ""
                out += [
                    f"synthaug train {data_option} --model {generator}{epochs} "
                    f"--out {generator}.safetensors",
                    f"synthaug augment {data_option} --model {generator}.safetensors "
                    f"--out augmented.npz",
                ]
        out.append(
            "# Python: AugmentedDataset(data, "
            + (
                f"SOURCES.create({generator!r}{', ' + keywords if keywords else ''}).fit(data)"
                if generator in SOURCES
                else f"create_generator({generator!r}{', ' + keywords if keywords else ''})"
                ".fit(data)"
            )
            + ', strategy="balance")'
        )
        if method != generator:
            training = METHODS.get(IMAGE_TRAINING)
            out.append(
                f"# then train on it the {IMAGE_TRAINING} way "
                f"({training.description.rstrip('.').lower()}): {classifier} with "
                + ", ".join(f"{k}={v!r}" for k, v in training.classifier_params.items())
            )
        return out
    entry = METHODS.get(method) if method in METHODS else None
    if isinstance(entry, TrainingMethod):
        settings = ", ".join(f"{k}={v!r}" for k, v in {**entry.classifier_params, **params}.items())
        return [
            f"# no data to add: train your classifier this way: "
            f"{entry.description.rstrip('.')} (synthaug.metrics.CLASSIFIERS {classifier!r} "
            f"with {settings})"
        ]
    return [
        f"synthaug augment {data_option} --source {method} --out augmented.npz"
        if is_image
        else f"# Python: AugmentedDataset(data, SOURCES.create({method!r}).fit(data), "
        f'strategy="balance")'
    ]


# -- the files --------------------------------------------------------------------------------


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return (
            "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(f"no TOML form for {value!r}")


def format_toml(table: dict[str, Any], header: str = "") -> str:
    """``table`` (top-level values, then tables of values) as TOML text."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    if lines:
        lines.append("")
    for key, value in table.items():
        if not isinstance(value, dict):
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            lines += ["", f"[{_toml_key(key)}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


def format_table(advice: Advice) -> str:
    """The ranked table as fixed-width text."""
    head = (
        f"{'':>3} {'method':<32}{'runs':>5}  {'balanced accuracy':<18}"
        f"{'Δ vs ' + (advice.best_free or 'best free'):<26}{'Holm p':>8}"
    )
    lines = [head, "-" * len(head)]
    for i, r in enumerate(advice.table, 1):
        half = "" if math.isnan(r["ci95_half_width"]) else f" ± {r['ci95_half_width']:.3f}"
        if r["method"] == advice.best_free:
            delta, p = "(best free baseline)", ""
        elif math.isnan(r["gain"]):
            delta, p = "", ""
        else:
            ci = "" if math.isnan(r["ci95_gain"]) else f" ± {r['ci95_gain']:.3f}"
            delta, p = f"{r['gain']:+.3f}{ci}", _p(r["p_holm"])
        lines.append(
            f"{i:>3} {r['method']:<32}{r['n']:>5}  {r['mean']:.3f}{half:<12}{delta:<26}{p:>8}"
        )
    return "\n".join(line.rstrip() for line in lines)


def _markdown(
    advice: Advice,
    facts: DataFacts,
    *,
    data_name: str,
    data_option: str,
    classifier_text: str,
    repeats: int,
    thin: int | None,
    cells_here: int,
    budget_text: str,
) -> str:
    out = [
        "# Does synthetic data help on this data?",
        "",
        f"**Verdict: {advice.verdict}.**",
        "",
        f"Made by `synthaug advise` on {_dt.date.today().isoformat()}.",
        "",
        "## What ran",
        "",
        f"- Data: {data_name}: {facts.describe()}.",
        f"- Held out: a stratified development part ({facts.n_development} items, "
        f"{facts.n_development / facts.n_items:.0%}) that no run used and no figure here reports, left for "
        f"tuning settings (what `synthaug bench --tune` runs a config on).",
        f"- Protocol: repeated stratified {facts.folds}-fold cross-validation of the other "
        f"{facts.n_items - facts.n_development} items, {advice.runs} run"
        f"{'s' * (advice.runs != 1)} (folds) of every method; each run trains {classifier_text} "
        f"on the training folds, the classes topped up to the largest by the sampling methods, "
        f"and scores the held-out fold. Intervals and tests: the corrected repeated k-fold t "
        f"(Bouckaert & Frank, 2004); every method is compared with the best free baseline "
        f"({advice.best_free or 'none ran'}) on the same folds, Holm-adjusted over those "
        f"comparisons.",
        f"- Budget: {budget_text}; the runs of this folder took {_duration(advice.spent_seconds)} "
        f"({cells_here} run{'s' * (cells_here != 1)} in this call).",
        "",
        "## Ranking (balanced accuracy, mean ± 95% interval)",
        "",
        f"| rank | method | kind | runs | balanced accuracy | Δ vs {advice.best_free or 'best free'} "
        "| Holm p | wins/ties/losses |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(advice.table, 1):
        half = "" if math.isnan(r["ci95_half_width"]) else f" ± {r['ci95_half_width']:.3f}"
        if math.isnan(r["gain"]):
            delta = p = ""
        else:
            ci = "" if math.isnan(r["ci95_gain"]) else f" ± {r['ci95_gain']:.3f}"
            delta, p = f"{r['gain']:+.3f}{ci}", _p(r["p_holm"])
        kind = {KIND_NONE: "no change", KIND_FREE: "free baseline"}.get(r["kind"], "generator")
        out.append(
            f"| {i} | {r['method']} | {kind} | {r['n']} | {r['mean']:.3f}{half} | {delta} | "
            f"{p} | {r['wtl']} |"
        )
    if thin is not None:
        out += [
            "",
            f"Caution: a test fold held as few as {thin} item{'s' * (thin != 1)} of a class "
            f"(fewer than "
            f"{MIN_TEST_CLASS}), so one item moves that class's recall by {1 / thin:.2f}.",
        ]
    out += ["", "## What to do", ""]
    if advice.commands:
        out += ["```bash", *advice.commands, "```"]
        if "DATA" in data_option and any(data_option in c for c in advice.commands):
            out.append(
                "\n`DATA`: these data as `synthaug` reads them (a MedMNIST-style .npz or a "
                "folder with one subfolder per class)."
            )
    else:
        out.append("Nothing yet: the runs were too few to recommend a method.")
    out += ["", "## Left out", ""]
    for name, why in advice.left_out:
        out.append(f"- `{name}`: {why}")
    full = repeats * facts.folds
    out.append(
        f"- Runs: the full comparison runs {repeats} x {facts.folds}-fold ({full} runs of "
        f"every method); this advice ran {advice.runs}."
        if advice.runs < full
        else f"- Runs: none; all {full} runs of {repeats} x {facts.folds}-fold ran."
    )
    out += [
        "",
        "## Continue or rerun at full scale",
        "",
        "```bash",
        (
            f"synthaug advise {data_option} --budget {_budget_arg(2 * advice.budget_seconds)} "
            f"--out {advice.out}"
            if facts.is_image
            else f"# Python: advise(data, budget={_budget_arg(2 * advice.budget_seconds)!r}, "
            f"out={str(advice.out)!r})"
        )
        + "   # a larger budget: adds runs and methods, reusing these",
        f"synthaug bench {advice.out / ADVICE_TOML} --out {advice.out}   # every method, "
        f"{repeats} x {facts.folds}-fold; reuses these runs",
        "```",
        "",
        f"Every metric, plots and every comparison: {advice.out / 'report.md'} (the harness's "
        f"report; its results are in {advice.out / RESULTS}).",
        "",
    ]
    return "\n".join(out)


# -- the folder -------------------------------------------------------------------------------


def _prepare_folder(out: Path, fingerprint: str, data_name: str) -> dict[str, Any]:
    """Create ``out`` or check that it holds this data's advice (so a rerun continues it);
    returns the folder's state: the data's fingerprint and name, and the seconds each run
    took (``"seconds"``, by cell id)."""
    out = check_output(out, folder=True, overwrite=True)
    state_path = out / STATE
    if out.is_dir() and any(out.iterdir()):
        if not state_path.exists():
            raise DataFileError(
                f"{out} is not empty and holds no advice; give a new or empty folder"
            )
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError) as exc:
            raise DataFileError(f"cannot read {state_path}: {exc}") from exc
        if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
            what = state.get("data", "?") if isinstance(state, dict) else "?"
            raise DataFileError(
                f"{out} holds the advice for other data ({what}); give another folder"
            )
        return state
    out.mkdir(parents=True, exist_ok=True)
    state = {"fingerprint": fingerprint, "data": data_name, "seconds": {}}
    _write_state(out, state)
    return state


def _write_state(out: Path, state: dict[str, Any]) -> None:
    tmp = out / f".{STATE}.partial"
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, out / STATE)


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def advise(
    dataset: ImageDataset,
    *,
    budget: str | float = "30m",
    out: str | Path = "synthaug-advice",
    generators: Sequence[str] | None = None,
    epochs: int | None = None,
    classifier_steps: int = 1000,
    folds: int = 5,
    repeats: int = 10,
    device: str = "auto",
    threads: int | None = None,
    data_name: str = "your data",
    data_option: str = "--data DATA",
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> Advice:
    """Does synthetic data help on ``dataset``? Compare the methods that fit it within a budget.

    The comparison is a grid of the benchmark harness (see the module's notes and
    ``docs/advise.md``): ``none``, the free baselines and the generators that fit the data,
    cross-validated on all but a held-out development part, every method's classifier
    trained for the same steps, as many runs as the budget allows, reported against the best
    free baseline with corrected intervals and Holm-adjusted p-values. Everything runs into
    ``out``; calling again with the same folder continues (finished runs are reused and
    their time counts against the budget).

    Parameters
    ----------
    dataset : ImageDataset
        Labelled images or feature vectors with at least two classes of different sizes.
    budget : str or float, default "30m"
        Time for the runs: ``"90s"``, ``"30m"``, ``"1h30m"`` or seconds. Exceeded by at most
        one run (no run starts once it is spent).
    out : path, default "synthaug-advice"
        The folder of the advice (new, empty, or one this data's advice was written to).
    generators : sequence of str, optional
        The generators (and lesion sources) to compare, replacing those chosen by the data's
        kind, size and classes.
    epochs : int, optional
        Training epochs of every generator (default: the shipped grids' settings).
    classifier_steps : int, default 1000
        Optimiser steps of the image classifier, the same for every method.
    folds : int, default 5
        Folds of the cross-validation (fewer when a class has fewer items; at least 3).
    repeats : int, default 10
        The most repeats of the folds to run (``advice.toml`` runs at least 10).
    device : str, default "auto"
        Where the networks train.
    threads : int, optional
        Torch's CPU threads per run (default: torch's own; small networks on a busy machine
        often run fastest with 1).
    data_name, data_option : str
        How ``advice.md`` names the data, and the ``--data ...`` options of the commands it
        shows (the command line passes what it was given).
    progress : bool
        Show a progress bar with the estimated time left.
    echo : callable
        Where the table and the verdict are printed.

    Returns
    -------
    Advice

    Raises
    ------
    InvalidParameterError
        A bad budget, count or generator name.
    InvalidDataError
        Data that cannot answer the question: one class, equal class sizes, a class with
        fewer than 3 items once the development part is held out.
    DataFileError
        ``out`` holds something else than this data's advice.
    BenchmarkError
        The run without augmentation failed.

    Examples
    --------
    >>> from synthaug.data import load_digits, make_imbalanced
    >>> data = make_imbalanced(load_digits(), ratio=0.1, minority_classes=[8, 9])
    >>> advice = advise(data, budget="20m", out="advice")  # doctest: +SKIP
    >>> advice.verdict  # doctest: +SKIP
    'use balanced-online: no generator beat it on your data; ...'
    """
    budget_seconds = parse_budget(budget)
    classifier_steps = _positive_int(classifier_steps, "classifier_steps")
    folds = _positive_int(folds, "folds", MIN_FOLDS)
    repeats = _positive_int(repeats, "repeats")
    if threads is not None:
        threads = _positive_int(threads, "threads")
    if epochs is not None:
        epochs = _positive_int(epochs, "epochs")
    if generators is not None and (
        isinstance(generators, str) or not isinstance(generators, Sequence)
    ):
        raise InvalidParameterError(f"generators must be a list of names, got {generators!r}")
    facts = check_data(dataset, folds)
    methods, left_out = candidate_methods(facts, generators=generators, epochs=epochs)
    given = Path(out)
    fingerprint = dataset.fingerprint()
    state = _prepare_folder(given, fingerprint, data_name)
    out = given.absolute()
    if not (out / SNAPSHOT).exists():
        save_snapshot(dataset, out / SNAPSHOT)
    table, config = build_config(
        facts,
        methods,
        fingerprint=fingerprint,
        folder=out,
        classifier_steps=classifier_steps,
        repeats=max(repeats, FULL_REPEATS),
        device=device,
    )
    kinds = {m.name: m.kind for m in methods}
    ledger = _Ledger(config)
    max_runs = repeats * facts.folds
    ids = {
        ledger.cell_id(m.name, seed): (m.name, seed) for m in methods for seed in range(max_runs)
    }
    recorded = state.setdefault("seconds", {})
    for record in read_results(out / RESULTS):
        if record["cell_id"] in ids:
            # Runs made by advise count what they took here; runs made by synthaug bench
            # (advice.toml into this folder) count the harness's own time.
            took = recorded.get(record["cell_id"], record["timings"].get("total", 0.0))
            ledger.seconds[ids[record["cell_id"]]] = float(took)
    spent_before = sum(ledger.seconds.values())
    bar = _Progress(progress)
    runner = _Runner(ledger, out, budget_seconds, spent_before, kinds, bar, threads, state)
    try:
        members, budget_left_out = _run_within_budget(runner, methods, facts.folds, max_runs)
    finally:
        bar.close()
    spent = runner.spent()
    left_out += budget_left_out
    runs = min((ledger.runs(m) for m in members if kinds[m] != KIND_GENERATOR), default=0)
    kept = [m for m in members if ledger.runs(m) >= runs]
    left_out += [
        (m, f"only {ledger.runs(m)} of the {runs} runs of the others fit the budget")
        for m in members
        if m not in kept
    ]
    if not kept or runs == 0:
        raise BenchmarkError(
            f"no method finished a run within the budget ({_duration(budget_seconds)}); give a larger "
            f"budget"
        )
    final = dataclasses.replace(
        config, methods={m: config.methods[m] for m in kept}, seeds=list(range(runs))
    )
    run_bench(final, out, threads=threads, progress=False, report=True, echo=lambda _: None)
    records = load_records(out)
    rows = _ranked(summarize_results(records, final.baselines), kinds)
    verdict, recommended = make_verdict(rows, runs)
    thin = _thin_test_class(records)
    if thin is not None and recommended is not None:
        verdict += (
            f"; with caution: a test fold held only {thin} item{'s' * (thin != 1)} of a class "
            f"(fewer than {MIN_TEST_CLASS})"
        )
    classifier = next(iter(final.classifiers))
    generator_of = {m.name: m.generator for m in methods}
    commands = usage_commands(
        recommended,
        final.methods,
        generator_of.get(recommended) if recommended else None,
        data_option=data_option,
        is_image=facts.is_image,
        classifier=classifier,
    )
    advice = Advice(
        verdict=verdict,
        recommended=recommended,
        table=rows,
        best_free=rows[0]["best_free"] if rows else "",
        runs=runs,
        folds=facts.folds,
        left_out=left_out,
        commands=commands,
        spent_seconds=spent,
        budget_seconds=budget_seconds,
        out=out,
    )
    classifier_text = (
        f"the residual CNN ({classifier}) for {classifier_steps} optimiser steps"
        if facts.is_image
        else "logistic regression (logreg)"
    )
    header = (
        f"Written by synthaug advise for {data_name}: the comparison at full scale.\n"
        f"  synthaug bench {out / ADVICE_TOML} --out {out}\n"
        f"reuses the runs advise made; data.npz beside this file is the data it read."
    )
    (out / ADVICE_TOML).write_text(format_toml(table, header))
    (out / ADVICE_MD).write_text(
        _markdown(
            advice,
            facts,
            data_name=data_name,
            data_option=data_option,
            classifier_text=classifier_text,
            repeats=max(repeats, FULL_REPEATS),
            thin=thin,
            cells_here=runner.ran,
            budget_text=_duration(budget_seconds),
        )
    )
    echo(format_table(advice))
    echo(f"\nverdict: {verdict}")
    for command in commands:
        echo(f"  {command}")
    echo(
        f"\nwrote {given / ADVICE_MD} and {given / ADVICE_TOML} (synthaug bench reruns it at "
        f"full scale)"
    )
    return advice
