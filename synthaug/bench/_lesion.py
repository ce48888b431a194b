"""The ``lesion`` task type: rare lesion slices among plentiful normal anatomy, through DICOM.

Config (the medical demo, ``synthaug demo --medical``, is this task; the lesion grid
``benchmarks/phantoms_lesions.toml`` another)::

    task = "lesion"
    seeds = 1

    [dataset]
    name = "phantoms"          # a registered loader taking n_per_class and seed
    kind = "chest"             # chest: CT files; brain: MR files
    size = 64

    [lesion]
    n_train = 400              # training slices, of which lesion_fraction have a lesion
    lesion_fraction = 0.05
    # or: n_normal = 400 with n_lesion = 20 or a list ([5, 20]: one setting each)
    # kinds = ["chest", "brain"]   # optional: one setting per kind (overrides dataset.kind)
    n_test_per_class = 100     # a separate balanced test set
    classifier_size = 32       # the classifier sees slices average-pooled to this size
    dicom = true               # write real slices as DICOM and train on what is read back

    [classifiers]
    maxpool-cnn = { steps = 300 }

    [methods]
    none = {}
    classical = {}
    synthetic = { method = "cgan", epochs = 30 }
    copy-paste = {}
    full-data = {}             # the ceiling: as many lesion slices as normal ones

Per cell (method x classifier x seed): the seed's phantoms (training set from seed ``2s``,
test set from ``2s + 1``), written as DICOM into the cell's folder and read back (every later
step sees only the read-back images; the worst round-trip pixel error is recorded); the
method tops the lesion class up to the normal count (a single generator's lesion samples are
exported as synthetic DICOM too); the classifier is trained and scored on the test set:
AUROC, sensitivity at 90% specificity, lesion recall (sensitivity at probability 0.5),
specificity and balanced accuracy. The lesion sources (``copy-paste``, ``lesion-transplant``)
also report ``localisation_dice``: the Dice of the lesion masks they found from image labels
against the phantoms' true masks, which nothing trains on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synthaug._params import configure
from synthaug.bench._config import check_keys, fail, is_int
from synthaug.bench._methods import (
    FULL_DATA,
    augment_cell,
    has_generator,
    is_free_baseline,
    method_parts,
    shared_fit_group,
    training_params,
    uses_lesion_source,
    validate_method,
)
from synthaug.bench._resampling import FRESH_DRAWS
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
    stable_hash,
)
from synthaug.data import DATASETS, ImageDataset, load_dicom_folder, write_dicom
from synthaug.errors import InvalidParameterError
from synthaug.generators import GENERATORS
from synthaug.metrics import CLASSIFIERS, binary_scores

_LESION_KEYS = (
    "n_train",
    "lesion_fraction",
    "n_normal",
    "n_lesion",
    "kinds",
    "n_test_per_class",
    "classifier_size",
    "dicom",
)
LESION = "lesion"


def lesion_counts(n_train: int, lesion_fraction: float) -> tuple[int, int]:
    """``(normal, lesion)`` training slices: at least 2 lesion slices."""
    n_lesion = max(2, round(n_train * lesion_fraction))
    return n_train - n_lesion, n_lesion


_DEVELOPMENT_SEEDS = 10**9


@TASKS.register("lesion")
class LesionTask(BaseTask):
    """Lesion classification on phantom slices with lesions as a small minority, via DICOM.

    Settings are the ``[lesion]`` table (one setting); methods are those of the
    ``classification`` task (``none``, ``classical``, generators, combinations, named
    variants such as ``synthetic = { method = "cgan" }``).
    """

    settings_table = "lesion"
    # Every seed draws fresh phantoms: the seeds are independent.
    protocols = (FRESH_DRAWS,)
    baselines = ("none", "classical")
    references = (FULL_DATA,)
    example = '["none", "classical", "cgan"]'
    reported = (
        "auroc",
        "sensitivity_at_90_specificity",
        "lesion_recall",
        "balanced_accuracy",
        "specificity",
        "localisation_dice",
    )
    chance_at_half = ("auroc",)

    def parse_settings(self, table: Any, dataset: DatasetRef) -> list[Setting]:
        check_keys(table, _LESION_KEYS, "lesion")
        n_test = table.get("n_test_per_class", 100)
        size = table.get("classifier_size", 32)
        dicom = table.get("dicom", True)
        counts = _parse_counts(table)
        kinds = table.get("kinds", [dataset.params.get("kind", "chest")])
        if (
            not isinstance(kinds, list)
            or not kinds
            or any(k not in ("chest", "brain") for k in kinds)
            or len(set(kinds)) != len(kinds)
        ):
            raise fail("lesion.kinds", f"must be a list of 'chest' and/or 'brain', got {kinds!r}")
        if not is_int(n_test) or n_test < 1:
            raise fail("lesion.n_test_per_class", f"must be an integer >= 1, got {n_test!r}")
        if not is_int(size) or size < 8:
            raise fail("lesion.classifier_size", f"must be an integer >= 8, got {size!r}")
        if not isinstance(dicom, bool):
            raise fail("lesion.dicom", f"must be true or false, got {dicom!r}")
        accepted = DATASETS.accepted_params(dataset.name)
        if accepted is not None and not {"n_per_class", "seed"} <= set(accepted):
            raise fail(
                "dataset.name",
                f"task 'lesion' needs a loader that takes n_per_class and seed, such as "
                f"'phantoms'; {dataset.name!r} does not",
            )
        for key in ("n_per_class", "seed"):
            if key in dataset.params:
                raise fail(
                    f"dataset.{key}",
                    "set by task 'lesion' per cell (from [lesion] counts and the seed); remove it",
                )
        if len(kinds) > 1 and accepted is not None and "kind" not in accepted:
            raise fail("lesion.kinds", f"loader {dataset.name!r} takes no kind")
        try:  # two slices: checks the loader's parameters (kind, size) at once
            params = {**dataset.params, **({"kind": kinds[0]} if "kinds" in table else {})}
            probe = DATASETS.create(dataset.name, n_per_class=1, seed=0, **params)
        except InvalidParameterError as exc:
            raise fail("dataset", str(exc)) from None
        if probe.n_classes != 2:
            raise fail("dataset", f"task 'lesion' needs two classes, got {probe.classes}")
        if size > min(probe.sample_shape[-2:]):
            raise fail(
                "lesion.classifier_size",
                f"{size} is larger than the slices ({probe.sample_shape[-2]}x"
                f"{probe.sample_shape[-1]}); pool to at most their size",
            )
        settings = []
        for kind in kinds:
            for n_normal, n_lesion in counts:
                prefix = f"{kind} " if "kinds" in table else ""
                settings.append(
                    {
                        "label": f"{prefix}lesions={n_lesion}/{n_normal + n_lesion}",
                        "lesion": {
                            **({"kind": kind} if "kinds" in table else {}),
                            "n_normal": n_normal,
                            "n_lesion": n_lesion,
                            "n_test_per_class": n_test,
                            "classifier_size": size,
                            "dicom": dicom,
                        },
                    }
                )
        return settings

    def validate_method(self, name: str, params: dict[str, Any]) -> None:
        validate_method(name, params)

    def is_free_baseline(self, method: str, params: dict[str, Any]) -> bool:
        return is_free_baseline(method, params)

    def fit_group(self, cell: Cell) -> str | None:
        if uses_lesion_source(cell.method, cell.method_params):
            # Every lesion source of a cell's data reuses one localizer fit: run them together.
            unused = ("method", "method_params", "classifier", "classifier_params")
            data = {k: v for k, v in cell.to_dict().items() if k not in unused}
            return stable_hash({"data": data, "lesion-sources": True})
        return shared_fit_group(cell)

    def applies(self, method: str, params: dict[str, Any], classifier: str) -> bool:
        accepted = CLASSIFIERS.accepted_params(classifier)
        return accepted is None or all(k in accepted for k in training_params(method, params))

    def load(self, cell: Cell) -> dict[str, Any]:
        """The seed's training and test phantoms (the loader must take ``n_per_class`` and
        ``seed``, as :func:`~synthaug.data.make_phantoms` does); the development pool draws
        them from seeds offset by a billion. The ``full-data`` row trains on as many lesion
        slices as normal ones. A loader that can return the true lesion masks (``return_masks``)
        does so, for the localisation score only."""
        name, params = cell.dataset["name"], dict(cell.dataset.get("params", {}))
        if "kind" in cell.settings:
            params["kind"] = cell.settings["kind"]
        n_normal = cell.settings["n_normal"]
        ceiling = FULL_DATA in (cell.method, cell.method_params.get("method"))
        counts = (n_normal, n_normal if ceiling else cell.settings["n_lesion"])
        n_test = cell.settings["n_test_per_class"]
        # Generated data: the development pool is phantoms drawn from seeds no reported cell
        # uses (reported cells use seeds 2s and 2s + 1).
        development = cell.dataset.get("pool") == "development"
        base = 2 * cell.seed + (_DEVELOPMENT_SEEDS if development else 0)
        accepted = DATASETS.accepted_params(name)
        masks = None
        if accepted is not None and "return_masks" in accepted:
            train, masks = DATASETS.create(
                name, n_per_class=counts, seed=base, return_masks=True, **params
            )
        else:
            train = DATASETS.create(name, n_per_class=counts, seed=base, **params)
        return {
            "train": train,
            "test": DATASETS.create(name, n_per_class=n_test, seed=base + 1, **params),
            "train_masks": masks,
        }

    def run(self, cell: Cell, ctx: CellContext) -> TaskResult:
        setting = cell.settings
        kind = setting.get("kind", cell.dataset.get("params", {}).get("kind", "chest"))
        modality = "CT" if kind == "chest" else "MR"
        train, test = ctx.data["train"], ctx.data["test"]
        true_masks = ctx.data.get("train_masks")
        size = setting["classifier_size"]
        metrics: dict[str, Any] = {}
        if setting["dicom"]:
            with ctx.timed("dicom"):
                train, test, error, order = _through_dicom(
                    ctx.workdir / "dicom" / "real", train, test, kind, modality
                )
            metrics["max_round_trip_error"] = error
            if true_masks is not None:
                true_masks = true_masks[torch.from_numpy(order)]
        lesion = train.classes.index(LESION) if LESION in train.classes else 1
        recipe, augmented = augment_cell(cell, ctx, train)
        source = recipe.source
        found = getattr(source, "training_masks_", None)
        if found is not None and true_masks is not None:
            metrics["localisation_dice"] = _dice(found, true_masks, train.labels == lesion)
        if setting["dicom"] and source is not None and _single_generator(cell):
            # What the classifier trained on, as files a viewer opens.
            with ctx.timed("dicom"):
                mask = augmented.synthetic_mask
                write_dicom(
                    augmented.images[mask],
                    [augmented.classes[c] for c in augmented.labels[mask].tolist()],
                    ctx.workdir / "dicom" / "synthetic",
                    classes=augmented.classes,
                    modality=modality,
                    series_description=f"SYNTHETIC {kind} slices ({cell.method})",
                )
        with ctx.timed("classifier_fit"):
            pooled = ImageDataset(
                _pool(augmented.images, size), augmented.labels, augmented.classes
            )
            clf = build_classifier(cell, ctx.device)
            configure(clf, **recipe.classifier_params)
            clf.fit(pooled)
        with ctx.timed("evaluate"):
            proba = clf.predict_proba(_pool(test.images, size))[:, lesion]
            scores = binary_scores(test.labels.numpy(), proba, positive=lesion)
        metrics.update(
            {
                "lesion_recall": scores["recall"],
                "specificity": scores["specificity"],
                "balanced_accuracy": scores["balanced_accuracy"],
                "auroc": scores["auroc"],
                "sensitivity_at_90_specificity": scores["sensitivity_at_90_specificity"],
                "n_train_synthetic": len(augmented) - len(train),
                SMALLEST_TEST_CLASS: smallest_class(test),
            }
        )
        samples = None
        if has_generator(cell.method, cell.method_params) or uses_lesion_source(
            cell.method, cell.method_params
        ):
            samples = example_images(train, augmented)
        return TaskResult(metrics, samples)


def _single_generator(cell: Cell) -> bool:
    parts = method_parts(cell.method)
    method = cell.method_params.get("method", cell.method)
    return len(parts) == 1 and method in GENERATORS


def _through_dicom(
    folder: Path, train: ImageDataset, test: ImageDataset, kind: str, modality: str
) -> tuple[ImageDataset, ImageDataset, float, np.ndarray]:
    """Write both sets as DICOM, read them back; the read-back sets, the worst pixel error and
    the order of the read-back training items (indices into ``train``)."""
    back, err, orders = {}, 0.0, {}
    size = tuple(train.sample_shape[-2:])
    for split, ds in (("train", train), ("test", test)):
        files = write_dicom(
            ds,
            out_dir=folder / split,
            modality=modality,
            series_description=f"SYNTHETIC {kind} phantom {split}",
        )
        read = load_dicom_folder(folder / split, size=size, classes=ds.classes)
        order = np.argsort([str(f) for f in files])
        err = max(err, float((read.images - ds.images[order]).abs().max()))
        back[split], orders[split] = read, order
    return back["train"], back["test"], err, orders["train"]


def _dice(found: torch.Tensor, true: torch.Tensor, rows: torch.Tensor) -> float:
    """Mean Dice of ``found`` against ``true`` masks over the items ``rows`` (lesion images)."""
    a, b = found[rows].flatten(1), true[rows].flatten(1)
    overlap = 2 * (a & b).sum(1).double()
    total = (a.sum(1) + b.sum(1)).double()
    return float(torch.where(total > 0, overlap / total.clamp(min=1), 1.0).mean())


def _parse_counts(table: dict[str, Any]) -> list[tuple[int, int]]:
    """``(normal, lesion)`` training counts: ``n_normal`` with each of ``n_lesion`` (an
    integer or a list), or ``n_train`` and ``lesion_fraction``."""
    if "n_normal" in table or "n_lesion" in table:
        for key in ("n_train", "lesion_fraction"):
            if key in table:
                raise fail(
                    f"lesion.{key}",
                    "give n_normal and n_lesion, or n_train and lesion_fraction, not both",
                )
        n_normal = table.get("n_normal", 380)
        n_lesion = table.get("n_lesion", 20)
        lesions = n_lesion if isinstance(n_lesion, list) else [n_lesion]
        if not is_int(n_normal) or n_normal < 2:
            raise fail("lesion.n_normal", f"must be an integer >= 2, got {n_normal!r}")
        if not lesions or any(not is_int(k) or k < 2 for k in lesions):
            raise fail(
                "lesion.n_lesion",
                f"must be an integer >= 2 or a list of them (a lesion class with one image "
                f"has nothing to learn variation from), got {n_lesion!r}",
            )
        return [(n_normal, k) for k in lesions]
    n_train = table.get("n_train", 400)
    fraction = table.get("lesion_fraction", 0.05)
    if not is_int(n_train) or n_train < 4:
        raise fail("lesion.n_train", f"must be an integer >= 4, got {n_train!r}")
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not (0 < fraction < 1)
    ):
        raise fail("lesion.lesion_fraction", f"must be in (0, 1), got {fraction!r}")
    n_normal, n_lesion = lesion_counts(n_train, fraction)
    if n_normal < 2:
        raise fail("lesion.n_train", f"{n_train} is too small for two classes")
    return [(n_normal, n_lesion)]


def _pool(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.adaptive_avg_pool2d(images, size)
