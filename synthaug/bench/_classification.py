"""The ``classification`` task type: imbalanced training sets, augmented, scored on real data.

Config::

    task = "classification"
    [imbalance]
    minority_classes = [5, 6, 7, 8, 9]
    ratios = [0.1, 0.02]             # one setting per ratio
    counts = [[40, 40, 20, 10, 5]]   # and/or one per explicit count list
"""

from __future__ import annotations

from typing import Any

from synthaug._params import configure
from synthaug.bench._config import check_keys, describe_classes, fail, is_int, resolve_classes
from synthaug.bench._methods import (
    FULL_DATA,
    augment_cell,
    has_generator,
    is_free_baseline,
    shared_fit_group,
    training_params,
    validate_method,
)
from synthaug.bench._resampling import data_seed
from synthaug.bench._task import (
    SMALLEST_TEST_CLASS,
    TASKS,
    BaseTask,
    Cell,
    CellContext,
    DatasetRef,
    Setting,
    TaskResult,
    build_classifier,
    example_images,
    smallest_class,
    split_data,
)
from synthaug.data import ImageDataset, make_imbalanced
from synthaug.metrics import CLASSIFIERS, classification_scores

_IMBALANCE_KEYS = ("minority_classes", "ratios", "counts")


@TASKS.register("classification")
class ClassificationTask(BaseTask):
    """Imbalanced classification: cut minority classes, augment, train, score on real test data.

    Per cell: the training and test parts of the data set under the config's resampling
    protocol (a stratified random split seeded by the cell's seed, or one fold of a repeated
    stratified k-fold; the development pool is never in either), the training part made imbalanced (``make_imbalanced``), topped up to balance
    by the cell's method, a downstream classifier trained on it and scored on the untouched
    test part. Metrics follow DeepSMOTE (Dablain et al., IEEE TNNLS 2022): balanced accuracy
    (ACSA), macro-F1, geometric mean of recalls, plus minority-class mean recall and per-class
    recalls.

    Its settings are the ``[imbalance]`` table; its methods are the registered augmentation
    methods, generators and sample sources, alone or combined (``"cvae+classical"``), the
    free baselines that change the classifier's training (``"logit-adjusted"``), and the
    ``"full-data"`` ceiling (the same classifier on the training split before the cut). A
    training method runs only with classifiers that have its parameters (no sampler for
    logistic regression). Every cell records ``train_steps`` (the classifier's optimiser
    steps: the config's budget, equal for every method) and, among its timings,
    ``fit_seconds`` (what the method's own fitting cost, reused generator fits included).
    """

    settings_table = "imbalance"
    baselines = ("none", "classical")
    references = (FULL_DATA,)
    example = '["none", "smote", "classical", "logit-adjusted", "cvae"]'
    reported = ("balanced_accuracy", "macro_f1", "gmean", "minority_recall")

    def applies(self, method: str, params: dict[str, Any], classifier: str) -> bool:
        accepted = CLASSIFIERS.accepted_params(classifier)
        wanted = training_params(method, params)
        return accepted is None or all(k in accepted for k in wanted)

    def is_free_baseline(self, method: str, params: dict[str, Any]) -> bool:
        return is_free_baseline(method, params)

    def fit_group(self, cell: Cell) -> str | None:
        return shared_fit_group(cell)

    def parse_settings(self, table: Any, dataset: DatasetRef) -> list[Setting]:
        return imbalance_settings(table, dataset)

    def validate_method(self, name: str, params: dict[str, Any]) -> None:
        validate_method(name, params)

    def run(self, cell: Cell, ctx: CellContext) -> TaskResult:
        dataset: ImageDataset = ctx.data
        # The imbalance is part of the data: it follows the split's seed.
        seed = data_seed(cell.split, cell.seed)
        imb = cell.settings
        with ctx.timed("imbalance"):
            train, test = split_data(cell, dataset)
            full = train
            if "counts" in imb:
                train = make_imbalanced(train, counts=imb["counts"], seed=seed)
                counts = train.class_counts()
                top = max(counts.values())
                minority = [c for c, n in counts.items() if n < top]
            else:
                minority = imb["minority_classes"]
                train = make_imbalanced(
                    train, ratio=imb["ratio"], minority_classes=minority, seed=seed
                )
        recipe, augmented = augment_cell(cell, ctx, train)
        if cell.method == FULL_DATA:
            augmented = full
        with ctx.timed("classifier_fit"):
            clf = build_classifier(cell, ctx.device)
            configure(clf, **recipe.classifier_params)
            clf.fit(augmented)
        with ctx.timed("evaluate"):
            pred = clf.predict(test.images)
            labels = [dataset.classes.index(c) if isinstance(c, str) else int(c) for c in minority]
            scores = classification_scores(
                test.labels.numpy(),
                pred,
                minority_classes=labels,
                labels=range(dataset.n_classes),
            )
        scores["n_train_real"] = len(train) if cell.method != FULL_DATA else len(full)
        scores["n_train_synthetic"] = len(augmented) - scores["n_train_real"]
        scores["train_steps"] = getattr(clf, "n_steps_", None)
        scores[SMALLEST_TEST_CLASS] = smallest_class(test)
        # A timing, not a metric: the same cell gives the same metrics, never the same seconds.
        ctx.timings["fit_seconds"] = ctx.timings["augment"] + recipe.reused_seconds
        samples = None
        if train.is_image and has_generator(cell.method, cell.method_params):
            samples = example_images(train, augmented)
        return TaskResult(scores, samples)


def imbalance_settings(table: Any, dataset: DatasetRef) -> list[Setting]:
    """The settings of the ``[imbalance]`` table: one per ratio and one per count list.

    The minority classes and the length of every count list are checked against
    ``dataset``'s classes; the settings keep them as written (they are part of each cell's id).
    """
    imbalance = check_keys(table, _IMBALANCE_KEYS, "imbalance")
    ratios = imbalance.get("ratios", [])
    counts = imbalance.get("counts", [])
    if not ratios and not counts:
        raise fail(
            "imbalance", "give ratios = [...] (with minority_classes) and/or counts = [[...]]"
        )
    settings: list[Setting] = []
    if not isinstance(ratios, list):
        raise fail("imbalance.ratios", f"must be a list of numbers in (0, 1], got {ratios!r}")
    if ratios:
        minority = imbalance.get("minority_classes")
        if (
            not isinstance(minority, list)
            or not minority
            or not all(is_int(c) or isinstance(c, str) for c in minority)
        ):
            raise fail(
                "imbalance.minority_classes",
                f"ratios need a non-empty list of class labels or names, got {minority!r}",
            )
        resolve_classes(minority, dataset, "imbalance.minority_classes")
        for r in ratios:
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 1:
                raise fail("imbalance.ratios", f"each ratio must be in (0, 1], got {r!r}")
            settings.append(
                {
                    "label": f"ratio={r:g}",
                    "imbalance": {"ratio": float(r), "minority_classes": minority},
                }
            )
    elif "minority_classes" in imbalance:
        raise fail("imbalance.minority_classes", "only used with ratios; counts name every class")
    if not isinstance(counts, list) or (counts and not all(isinstance(c, list) for c in counts)):
        raise fail(
            "imbalance.counts", "must be a list of per-class count lists, e.g. [[100, 50, 10]]"
        )
    for c in counts:
        if not c or not all(is_int(n) and n >= 0 for n in c):
            raise fail(
                "imbalance.counts", f"each count list holds non-negative integers, got {c!r}"
            )
        classes = dataset().classes
        if len(c) != len(classes):
            raise fail(
                "imbalance.counts",
                f"{c!r} has {len(c)} counts; data set {dataset.name!r} has {len(classes)} "
                f"classes ({describe_classes(classes)}): give one count per class",
            )
        settings.append(
            {"label": "counts=" + "/".join(str(n) for n in c), "imbalance": {"counts": c}}
        )
    labels = [s["label"] for s in settings]
    if len(set(labels)) != len(labels):
        raise fail("imbalance", "the same setting appears twice")
    return settings
