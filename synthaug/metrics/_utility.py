"""Utility: is the synthetic data worth training on? The train/test swaps of Esteban et al."""

from __future__ import annotations

from typing import Any

from synthaug.data import ImageDataset
from synthaug.errors import InvalidDataError, InvalidParameterError
from synthaug.metrics._classification import classification_scores
from synthaug.metrics._classifiers import CNNClassifier, LogisticRegressionClassifier
from synthaug.metrics._inputs import DataLike, as_datasets

SCORES = ("balanced_accuracy", "macro_f1")


def utility(
    real_train: DataLike,
    synthetic: DataLike,
    real_test: DataLike,
    *,
    classifier: str = "logreg",
    classifier_epochs: int = 30,
    seed: int = 0,
    device: str = "auto",
) -> dict[str, Any]:
    """Downstream value of synthetic data: train on one set, test on another.

    Scenarios (Esteban, Hyland & Rätsch 2017 introduced TSTR and TRTS):

    - ``trtr``: train on real training data, test on the real test set (the reference);
    - ``tstr``: train on synthetic, test on real;
    - ``trts``: train on real, test on synthetic (does synthetic look like its label?);
    - ``tmtr``: train on real + synthetic ("mixed"), test on real (augmentation).

    Parameters
    ----------
    real_train, synthetic, real_test : ImageDataset or (images, labels)
        Same sample shape and classes. ``real_test`` must be unseen by the generator.
    classifier : {"logreg", "cnn"}
        ``"logreg"``: scikit-learn logistic regression on the flattened pixels;
        ``"cnn"``: :class:`CNNClassifier` (the demo's classifier; images only).
    classifier_epochs : int
        Epochs of the CNN.
    seed : int
        Seeds the CNN (logistic regression is deterministic).
    device : str
        Where the CNN trains.

    Returns
    -------
    dict
        ``<scenario>_balanced_accuracy`` and ``<scenario>_macro_f1`` for each scenario (scored
        over the classes present in the test set of that scenario), ``tstr_trtr_ratio``
        (TSTR / TRTR balanced accuracy; 1 means synthetic data trains as well as real), and
        ``classifier``.

    Examples
    --------
    >>> from synthaug.data import load_digits
    >>> train, test = load_digits().split(0.5, seed=0)
    >>> u = utility(train, test, test)
    >>> u["trtr_balanced_accuracy"] > 0.9
    True
    """
    if classifier not in ("logreg", "cnn"):
        raise InvalidParameterError(f"classifier must be 'logreg' or 'cnn', got {classifier!r}")
    sets = as_datasets({"real_train": real_train, "synthetic": synthetic, "real_test": real_test})
    train, syn, test = sets["real_train"], sets["synthetic"], sets["real_test"]
    if classifier == "cnn" and not train.is_image:
        raise InvalidParameterError(
            "classifier='cnn' needs (C, H, W) images; use classifier='logreg' for vectors"
        )
    for name, ds in (("real_train", train), ("synthetic", syn)):
        present = sum(1 for n in ds.class_counts().values() if n)
        if present < 2:
            raise InvalidDataError(
                f"{name} holds {present} class; a classifier trained on it needs at least 2"
            )

    def fit(ds: ImageDataset) -> Any:
        if classifier == "cnn":
            return CNNClassifier(epochs=classifier_epochs, seed=seed, device=device).fit(ds)
        # lbfgs is deterministic: the seed does not change the fit.
        return LogisticRegressionClassifier(max_iter=2000, seed=seed).fit(ds)

    def score(model: Any, ds: ImageDataset, prefix: str) -> dict[str, float]:
        s = classification_scores(ds.labels.numpy(), model.predict(ds.images))
        return {f"{prefix}_{key}": s[key] for key in SCORES}

    on_real = fit(train)
    out: dict[str, Any] = {}
    out.update(score(on_real, test, "trtr"))
    out.update(score(fit(syn), test, "tstr"))
    out.update(score(on_real, syn, "trts"))
    out.update(score(fit(train.concat(syn)), test, "tmtr"))
    base = out["trtr_balanced_accuracy"]
    out["tstr_trtr_ratio"] = out["tstr_balanced_accuracy"] / base if base > 0 else float("nan")
    out["classifier"] = (
        f"CNNClassifier(epochs={classifier_epochs}, seed={seed})"
        if classifier == "cnn"
        else "LogisticRegression(max_iter=2000) on pixels"
    )
    return out
