"""Built-in data sets, downstream classifiers and task types of the benchmark harness."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from synthaug.bench._registry import (
    get_classifier,
    get_dataset,
    register_classifier,
    register_dataset,
    register_task,
)
from synthaug.data import ImageDataset, load_digits, make_imbalanced
from synthaug.errors import InvalidDataError, InvalidParameterError

# -- data sets ------------------------------------------------------------------------------


@register_dataset("digits")
def digits() -> ImageDataset:
    """scikit-learn's 1,797 8x8 digits (ships with scikit-learn, nothing is downloaded)."""
    return load_digits()


def _lazy_loader(dataset_name: str, function: str) -> Callable[..., ImageDataset]:
    """A loader that looks up ``synthaug.data.<function>`` when called.

    Looking the loader up only when a grid asks for it keeps ``import synthaug.bench`` from
    importing pydicom, highdicom and torchvision's image readers; a synthaug without the function
    gives an error that says so.
    """

    def load(**params: Any) -> ImageDataset:
        return resolve_lazy(load)(**params)

    load.__name__ = f"load_{dataset_name.replace('-', '_')}"
    load.lazy_target = function
    load.dataset_name = dataset_name
    return load


def resolve_lazy(loader: Callable[..., Any]) -> Callable[..., Any]:
    """The real function behind a lazily registered loader (the loader itself otherwise)."""
    target = getattr(loader, "lazy_target", None)
    if target is None:
        return loader
    import synthaug.data

    fn = getattr(synthaug.data, target, None)
    if fn is None:
        raise InvalidParameterError(
            f"dataset.name: {loader.dataset_name!r} needs synthaug.data.{target}, which this "
            f"version of synthaug does not have yet; use 'digits' or a newer synthaug"
        )
    return fn


for _name, _function in (
    ("phantoms", "make_phantoms"),
    ("phantoms-graded", "make_graded_phantoms"),
    ("dicom", "load_dicom_folder"),
    ("npz", "load_npz"),
    ("image-folder", "load_image_folder"),
):
    register_dataset(_name)(_lazy_loader(_name, _function))


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, params_json: str) -> ImageDataset:
    data = resolve_lazy(get_dataset(name))(**json.loads(params_json))
    if not isinstance(data, ImageDataset):
        raise InvalidDataError(
            f"dataset {name!r} loader returned {type(data).__name__}, not an ImageDataset"
        )
    return data


def load_dataset(spec: dict[str, Any]) -> ImageDataset:
    """Load the data set of a cell (cached per process: many cells share one data set)."""
    return _load_cached(spec["name"], json.dumps(spec.get("params", {}), sort_keys=True))


# -- classifiers ----------------------------------------------------------------------------


class LogisticRegressionClassifier:
    """Multinomial logistic regression on flattened pixels (scikit-learn, lbfgs)."""

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, seed: int = 0) -> None:
        self.C = C
        self.max_iter = max_iter
        self.seed = seed

    def fit(self, dataset: ImageDataset) -> LogisticRegressionClassifier:
        from sklearn.linear_model import LogisticRegression

        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
        self.model_.fit(dataset.flat(), dataset.labels.numpy())
        return self

    def predict(self, images: Any) -> np.ndarray:
        return self.model_.predict(np.asarray(images).reshape(len(images), -1))


@register_classifier("logreg")
def logreg(
    *, seed: int, device: str, C: float = 1.0, max_iter: int = 1000
) -> LogisticRegressionClassifier:
    return LogisticRegressionClassifier(C=C, max_iter=max_iter, seed=seed)


class CVSelectClassifier:
    """The best of logistic regression, an RBF SVM and 5-NN by stratified k-fold CV on the
    training data only (so a test split is used once, to score the choice).

    What a user of a released synthetic data set would do: pick a model on the data they have.
    """

    def __init__(self, *, folds: int = 3, seed: int = 0) -> None:
        self.folds = folds
        self.seed = seed

    def _candidates(self) -> dict[str, Any]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.svm import SVC

        return {
            "logreg": LogisticRegression(max_iter=2000, random_state=self.seed),
            "svm-rbf": SVC(random_state=self.seed),
            "5-nn": KNeighborsClassifier(5),
        }

    def fit(self, dataset: ImageDataset) -> CVSelectClassifier:
        from sklearn.model_selection import StratifiedKFold, cross_val_score

        x, y = dataset.flat(), dataset.labels.numpy()
        folds = StratifiedKFold(self.folds, shuffle=True, random_state=self.seed)
        candidates = self._candidates()
        self.cv_scores_ = {
            name: float(cross_val_score(clf, x, y, cv=folds, scoring="balanced_accuracy").mean())
            for name, clf in candidates.items()
        }
        self.chosen_ = max(self.cv_scores_, key=self.cv_scores_.get)
        self.model_ = candidates[self.chosen_].fit(x, y)
        return self

    def predict(self, images: Any) -> np.ndarray:
        return self.model_.predict(np.asarray(images).reshape(len(images), -1))


@register_classifier("cv-select")
def cv_select(*, seed: int, device: str, folds: int = 3) -> CVSelectClassifier:
    return CVSelectClassifier(folds=folds, seed=seed)


@register_classifier("cnn")
def cnn(
    *,
    seed: int,
    device: str,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
) -> Any:
    from synthaug.metrics import CNNClassifier

    return CNNClassifier(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        device=device,
    )


# -- tasks ----------------------------------------------------------------------------------


@contextmanager
def timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    """Add the wall time of the block to ``timings[phase]`` (seconds)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - t0


def _has_generator(method: str) -> bool:
    from synthaug.bench._methods import method_parts
    from synthaug.generators import list_generators

    return any(part in list_generators() for part in method_parts(method))


def _examples(train: ImageDataset, augmented: ImageDataset, per_class: int = 8) -> dict:
    """Up to ``per_class`` real and synthetic training images per class (for the report)."""
    real_idx, synth_idx = [], []
    n_real = len(train)
    for c in range(train.n_classes):
        real_idx.extend(np.flatnonzero(train.labels.numpy() == c)[:per_class])
        synth = np.flatnonzero(augmented.labels[n_real:].numpy() == c)[:per_class] + n_real
        synth_idx.extend(synth)
    return {
        "real_images": train.images[real_idx].numpy(),
        "real_labels": train.labels[real_idx].numpy(),
        "synthetic_images": augmented.images[synth_idx].numpy(),
        "synthetic_labels": augmented.labels[synth_idx].numpy(),
        "classes": np.array(train.classes),
    }


@register_task("classification")
class ClassificationTask:
    """Imbalanced classification: cut minority classes, augment, train, score on real test data.

    Per cell: a stratified split of the data set (``split.test_size`` held out, seeded by the
    cell's seed), the training part made imbalanced (``make_imbalanced``), topped up to balance
    by the cell's method, a downstream classifier trained on it and scored on the untouched
    test part. Metrics follow DeepSMOTE (Dablain et al., IEEE TNNLS 2022): balanced accuracy
    (ACSA), macro-F1, geometric mean of recalls, plus minority-class mean recall and per-class
    recalls.

    Its settings are the ``[imbalance]`` table; its methods are the registered augmentation
    methods and generators, alone or combined (``"cvae+classical"``).
    """

    settings_table = "imbalance"
    uses_classifiers = True
    baselines = ("none", "classical")
    example = '["none", "smote", "classical", "cvae"]'
    reported = ("balanced_accuracy", "macro_f1", "gmean", "minority_recall")
    #: Metrics whose best mean is marked in the tables (the highest; all of ``reported`` here).
    best_is_highest = reported
    #: Whether the report adds a "mean over settings" row (per-seed means across settings).
    mean_over_settings = False

    @staticmethod
    def parse_settings(table: Any, dataset: Callable[[], ImageDataset]) -> list[dict[str, Any]]:
        from synthaug.bench._config import imbalance_settings

        return imbalance_settings(table)

    @staticmethod
    def validate_method(name: str, params: dict[str, Any]) -> None:
        from synthaug.bench._methods import validate_method

        validate_method(name, params)

    #: After ``run`` with a generator: a few real and synthetic images per class (sample grids).
    samples_: dict[str, np.ndarray] | None = None

    def run(self, cell: dict[str, Any], dataset: ImageDataset, timings: dict[str, float]) -> dict:
        from synthaug.augment import AugmentedDataset
        from synthaug.bench._methods import build_source
        from synthaug.metrics import classification_scores

        seed = cell["seed"]
        imb = cell["imbalance"]
        with timed(timings, "imbalance"):
            train, test = dataset.split(cell["split"]["test_size"], seed=seed)
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
        with timed(timings, "augment"):
            source = build_source(
                cell["method"], cell["method_params"], train, seed=seed, device=cell["device"]
            )
            augmented = train if source is None else AugmentedDataset(train, source, seed=seed)
        factory = get_classifier(cell["classifier"])
        with timed(timings, "classifier_fit"):
            clf = factory(seed=seed, device=cell["device"], **cell["classifier_params"])
            clf.fit(augmented)
        with timed(timings, "evaluate"):
            pred = clf.predict(test.images)
            labels = [dataset.classes.index(c) if isinstance(c, str) else int(c) for c in minority]
            scores = classification_scores(
                test.labels.numpy(),
                pred,
                minority_classes=labels,
                labels=range(dataset.n_classes),
            )
        scores["n_train_real"] = len(train)
        scores["n_train_synthetic"] = len(augmented) - len(train)
        if train.is_image and _has_generator(cell["method"]):
            self.samples_ = _examples(train, augmented)
        return scores


# The other built-in task types live in their own modules; importing them registers them.
from synthaug.bench import _anomaly_task, _tstr_task  # noqa: E402, F401  isort: skip
