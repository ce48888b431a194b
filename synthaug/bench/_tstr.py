"""The ``tstr`` task type: release a synthetic copy of the data, then measure its utility and risk.

Config::

    task = "tstr"
    seeds = 3

    [dataset]
    name = "digits"

    [privacy]
    epsilons = [1.0, 10.0, inf]   # one setting each; inf trains without differential privacy
    # delta = 1e-5                # default: synthaug.DP's default for the training-set size
    # max_grad_norm = 1.0

    [split]
    test_size = 0.25

    [classifiers]
    cv-select = {}

    [methods]
    real = {}                     # the real training split itself: the ceiling, and the risk
    dp-sgd = { network = "linear", epochs = 40, batch_size = 256, lr = 2e-3, max_grad_norm = 1.0 }
    cvae = { epochs = 100, private = { epochs = 60, batch_size = 128 } }
    cvae-b256 = { method = "cvae", private = { epochs = 30, batch_size = 256 } }   # a variant

Per cell (privacy budget x method x classifier x seed): the seed's stratified split; the
generator trained on the training part (with ``dp=synthaug.DP(epsilon, ...)`` for a finite
epsilon; ``private`` overrides the generator's parameters then, since DP-SGD favours smaller
networks and larger batches); a class-balanced synthetic set as large as the training part;
the classifier trained on it and scored on the real test part (train on synthetic, test on
real: Esteban et al., 2017); label fidelity; the empirical privacy figures of
:func:`synthaug.metrics.privacy` with the test part as the non-members; and the membership
attacks of :func:`synthaug.metrics.membership_attacks` on the same parts (the white-box one
on the generator itself): ``attack_auc_<attack>`` and ``attack_tpr_at_1fpr_<attack>`` for
``distance``, ``likelihood`` (NaN where skipped: a GAN, the real data) and
``density_ratio``, the same for ``strongest`` with its name in ``attack_strongest``, and
``attack_candidates`` (members plus non-members scored).

``dp-sgd`` (or a variant naming it as ``method``) is the free private baseline: no release,
a :class:`~synthaug.metrics.DPSGDClassifier` trained with DP-SGD directly on the training
part at the setting's epsilon (``max_grad_norm`` its own clipping bound, default the
``[privacy]`` one; without DP at ``inf``) and scored on the same real test part. It ignores
the ``[classifiers]`` axis (its cells under each classifier are the same model); it releases
no data, so its privacy and attack figures are NaN and ``n_synthetic`` is 0;
``classifier_trained`` names its network and ``epsilon_spent`` is its own accountant's.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from synthaug._params import configure
from synthaug._utils import import_optional
from synthaug.bench._config import check_keys, fail
from synthaug.bench._methods import validate_method
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
    smallest_class,
    split_data,
)
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.generators import GENERATORS
from synthaug.metrics import (
    DPSGDClassifier,
    classification_scores,
    label_fidelity,
    membership_attacks,
    privacy,
)
from synthaug.nn import DP

_PRIVACY_KEYS = ("epsilons", "delta", "max_grad_norm")
REAL = "real"
DP_SGD = "dp-sgd"
# What a dp-sgd row takes: the classifier's training settings and its own clipping bound.
_DP_SGD_KEYS = ("method", "network", "epochs", "batch_size", "lr", "max_grad_norm")
_PRIVACY_FIGURES = (
    "mia_auc",
    "dcr_p5_ratio",
    "dcr_median_ratio",
    "memorization_rate",
    "memorization_baseline",
    "exact_copies",
)
# Shown in the report's tables when the results hold them (older runs do not).
_ATTACK_TABLES = ("attack_auc_strongest", "attack_tpr_at_1fpr_strongest")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _attack_figures(attacks: dict[str, Any]) -> dict[str, Any]:
    """Flat metrics of :func:`~synthaug.metrics.membership_attacks`' result: per attack (and
    ``strongest``) ``attack_auc_<name>`` and ``attack_tpr_at_1fpr_<name>``, NaN for a
    skipped attack; ``attack_strongest`` names it; ``attack_candidates`` counts those scored."""
    out: dict[str, Any] = {}
    for name, figures in [*attacks["attacks"].items(), ("strongest", attacks["strongest"])]:
        out[f"attack_auc_{name}"] = figures.get("auc", math.nan)
        out[f"attack_tpr_at_1fpr_{name}"] = figures.get("tpr_at_1fpr", math.nan)
    out["attack_strongest"] = attacks["strongest"]["attack"]
    out["attack_candidates"] = attacks["n_members"] + attacks["n_nonmembers"]
    return out


def generator_params(params: dict[str, Any], epsilon: float | None) -> dict[str, Any]:
    """The generator's parameters for one budget: ``private`` overrides apply under DP."""
    own = {k: v for k, v in params.items() if k not in ("private", "method")}
    if epsilon is not None:
        own.update(params.get("private", {}))
    return own


@TASKS.register("tstr")
class TSTRTask(BaseTask):
    """Train on synthetic, test on real, at each privacy budget; with the privacy figures.

    Settings are the ``[privacy]`` table: one setting per epsilon (``inf``: no differential
    privacy). Methods are ``"real"`` (the training data released as they are: the utility
    ceiling and the privacy floor) and registered generators, each with optional ``private``
    parameter overrides used when epsilon is finite.
    """

    settings_table = "privacy"
    baselines = (REAL, DP_SGD)
    references = (REAL,)
    example = '["real", "cvae", "cgan"]'
    reported = (
        "balanced_accuracy",
        "label_fidelity",
        "mia_auc",
        "dcr_median_ratio",
        "memorization_rate",
        "epsilon_spent",
    )
    # Utility is better high; the privacy figures have no "best" direction worth bolding
    # (an MIA AUC is best at 0.5, a DCR ratio at 1).
    best_is_highest = ("balanced_accuracy", "label_fidelity")
    # An MIA AUC far below 0.5 is an attack score pointing the wrong way, not privacy.
    chance_at_half = ("mia_auc",)

    def reported_metrics(self, metrics: list[dict[str, Any]]) -> tuple[str, ...]:
        # The strongest attack's figures follow the black-box MIA AUC, where the results
        # have them (runs made before the attacks existed do not).
        extra = [k for k in _ATTACK_TABLES if any(k in m for m in metrics)]
        at = self.reported.index("mia_auc") + 1
        return (*self.reported[:at], *extra, *self.reported[at:])

    def parse_settings(self, table: Any, dataset: DatasetRef) -> list[Setting]:
        check_keys(table, _PRIVACY_KEYS, "privacy")
        # Loading it now shows a bad loader parameter before any cell runs.
        if dataset().n_classes < 2:
            raise fail("dataset", "task 'tstr' trains a classifier: give a data set of 2+ classes")
        epsilons = table.get("epsilons", [math.inf])
        if not isinstance(epsilons, list) or not epsilons:
            raise fail("privacy.epsilons", f"must be a non-empty list, got {epsilons!r}")
        delta = table.get("delta")
        max_grad_norm = table.get("max_grad_norm", 1.0)
        settings = []
        for eps in epsilons:
            if not _number(eps) or not eps > 0:
                raise fail(
                    "privacy.epsilons", f"each epsilon must be a number > 0 or inf, got {eps!r}"
                )
            private = math.isfinite(eps)
            if private:
                try:
                    DP(epsilon=float(eps), delta=delta, max_grad_norm=max_grad_norm)
                except InvalidParameterError as exc:
                    raise fail("privacy", str(exc)) from None
            settings.append(
                {
                    "label": f"epsilon={eps:g}",
                    "privacy": {
                        "epsilon": float(eps) if private else None,
                        "delta": delta,
                        "max_grad_norm": max_grad_norm,
                    },
                }
            )
        if any(s["privacy"]["epsilon"] is not None for s in settings):
            import_optional("opacus", "privacy")
        if len({s["label"] for s in settings}) != len(settings):
            raise fail("privacy.epsilons", "an epsilon appears twice")
        return settings

    def validate_method(self, name: str, params: dict[str, Any]) -> None:
        where = f"methods.{name}"
        if name == REAL:
            if params:
                raise fail(where, "the real data take no parameters")
            return
        generator = params.get("method", name)
        if generator == DP_SGD:
            _validate_dp_sgd(where, params)
            return
        if generator not in GENERATORS:
            raise fail(
                where,
                f"task 'tstr' compares generators; use {REAL!r}, {DP_SGD!r} or one of "
                f"{', '.join(GENERATORS.list())} (a variant names its generator: "
                f'cvae-small = {{ method = "cvae", ... }})',
            )
        if "dp" in params:
            raise fail(f"{where}.dp", "set per setting from [privacy] epsilons; remove it")
        private = params.get("private", {})
        if not isinstance(private, dict):
            raise fail(f"{where}.private", "must be a table of generator parameters")
        if "dp" in private:
            raise fail(f"{where}.private.dp", "set from [privacy] epsilons; remove it")
        validate_method(generator, generator_params(params, None))
        validate_method(generator, generator_params(params, 1.0))

    def run(self, cell: Cell, ctx: CellContext) -> TaskResult:
        dataset: ImageDataset = ctx.data
        seed = cell.seed
        budget = cell.settings
        epsilon = budget["epsilon"]
        with ctx.timed("split"):
            train, test = split_data(cell, dataset)
        if cell.method_params.get("method", cell.method) == DP_SGD:
            return _run_dp_sgd(cell, ctx, train, test)
        spent, noise = math.inf, 0.0
        model = None
        if cell.method == REAL:
            synthetic = train
        else:
            dp = None
            if epsilon is not None:
                dp = DP(
                    epsilon=epsilon,
                    delta=budget["delta"],
                    max_grad_norm=budget["max_grad_norm"],
                )
            params = generator_params(cell.method_params, epsilon)
            with ctx.timed("generator_fit"):
                model = GENERATORS.create(cell.method_params.get("method", cell.method), **params)
                configure(model, seed=seed, device=ctx.device, verbose=False, dp=dp)
                model.fit(train)
            with ctx.timed("sample"):
                # Class-balanced, as large as the training part.
                labels = torch.arange(len(train)) % train.n_classes
                images, labels = model.sample(len(train), y=labels, seed=seed)
                synthetic = ImageDataset(images.cpu(), labels.cpu(), train.classes)
            if dp is not None:
                spent = model.privacy_spent_[0]
                noise = model.privacy_["noise_multiplier"]
        with ctx.timed("classifier_fit"):
            clf = build_classifier(cell, ctx.device).fit(synthetic)
        with ctx.timed("evaluate"):
            scores = classification_scores(
                test.labels.numpy(), clf.predict(test.images), labels=range(dataset.n_classes)
            )
            out = {k: scores[k] for k in ("balanced_accuracy", "macro_f1")}
            out["label_fidelity"] = label_fidelity(train, synthetic, seed=seed)["label_fidelity"]
            figures = privacy(train, synthetic, test, seed=seed)
            out.update({k: figures[k] for k in _PRIVACY_FIGURES})
            out.update(
                _attack_figures(membership_attacks(train, synthetic, test, model=model, seed=seed))
            )
        out["epsilon_spent"] = spent
        out["noise_multiplier"] = noise
        out["n_synthetic"] = len(synthetic)
        out[SMALLEST_TEST_CLASS] = smallest_class(test)
        if hasattr(clf, "chosen_"):
            out["classifier_chosen"] = clf.chosen_
        return TaskResult(out)


def _validate_dp_sgd(where: str, params: dict[str, Any]) -> None:
    check_keys(params, _DP_SGD_KEYS, where)
    own = {k: v for k, v in params.items() if k not in ("method", "max_grad_norm")}
    try:
        DPSGDClassifier(**own).check_params()
        if "max_grad_norm" in params:
            DP(epsilon=1.0, max_grad_norm=params["max_grad_norm"])
    except InvalidParameterError as exc:
        raise fail(where, str(exc)) from None


def _run_dp_sgd(
    cell: Cell, ctx: CellContext, train: ImageDataset, test: ImageDataset
) -> TaskResult:
    """A ``dp-sgd`` cell: the classifier trained with DP-SGD on ``train``, scored on ``test``."""
    budget = cell.settings
    params = cell.method_params
    dp = None
    if budget["epsilon"] is not None:
        dp = DP(
            epsilon=budget["epsilon"],
            delta=budget["delta"],
            max_grad_norm=params.get("max_grad_norm", budget["max_grad_norm"]),
        )
    own = {k: v for k, v in params.items() if k not in ("method", "max_grad_norm")}
    clf = DPSGDClassifier(**own, dp=dp, seed=cell.seed, device=ctx.device)
    with ctx.timed("classifier_fit"):
        clf.fit(train)
    with ctx.timed("evaluate"):
        scores = classification_scores(
            test.labels.numpy(), clf.predict(test.images), labels=range(train.n_classes)
        )
    out: dict[str, Any] = {k: scores[k] for k in ("balanced_accuracy", "macro_f1")}
    # Nothing is released, so there is nothing to measure fidelity or attacks on.
    out["label_fidelity"] = math.nan
    out.update(dict.fromkeys(_PRIVACY_FIGURES, math.nan))
    for name in ("distance", "likelihood", "density_ratio", "strongest"):
        out[f"attack_auc_{name}"] = math.nan
        out[f"attack_tpr_at_1fpr_{name}"] = math.nan
    out["attack_strongest"] = "none: no data released"
    out["attack_candidates"] = 0
    out["epsilon_spent"] = math.inf if dp is None else clf.privacy_spent_[0]
    out["noise_multiplier"] = 0.0 if dp is None else clf.privacy_["noise_multiplier"]
    out["n_synthetic"] = 0
    out["classifier_trained"] = f"{DP_SGD}:{clf.network}"
    out["classifier_steps"] = clf.n_steps_
    out[SMALLEST_TEST_CLASS] = smallest_class(test)
    return TaskResult(out)
