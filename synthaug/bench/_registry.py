"""Find benchmark building blocks by name: methods, datasets, classifiers and task types.

Adding a method, a data set, a downstream classifier or a task type to the harness is one
decorated function (``@register_method("smote")``); configs refer to it by that name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from synthaug.errors import InvalidParameterError

F = TypeVar("F", bound=Callable[..., Any])

_METHODS: dict[str, Callable[..., Any]] = {}
_DATASETS: dict[str, Callable[..., Any]] = {}
_CLASSIFIERS: dict[str, Callable[..., Any]] = {}
_TASKS: dict[str, Any] = {}


def _register(table: dict[str, Any], kind: str, name: str) -> Callable[[F], F]:
    if not isinstance(name, str) or not name or "+" in name:
        raise ValueError(f"{kind} name must be a non-empty string without '+', got {name!r}")

    def decorate(obj: F) -> F:
        if name in table and table[name] is not obj:
            raise ValueError(f"{kind} name {name!r} is already registered to {table[name]}")
        table[name] = obj
        return obj

    return decorate


def register_method(name: str) -> Callable[[F], F]:
    """Register an augmentation method for the harness.

    The function is called as ``fn(train, *, seed, device, **params)`` with the imbalanced
    training :class:`~synthaug.data.ImageDataset` and returns either ``None`` (train on the data
    as it is) or a fitted sample source with ``sample(n, y=label, seed=...)``, which the harness
    uses to top every class up to the majority count (:class:`~synthaug.augment.AugmentedDataset`).

    Generators registered with :func:`synthaug.generators.register_generator` are methods
    without further work, and ``"a+b"`` mixes the sources of methods ``a`` and ``b``.

    Examples
    --------
    >>> from synthaug.augment import RandomOverSampling
    >>> @register_method("my-duplicates")
    ... def my_duplicates(train, *, seed, device):
    ...     return RandomOverSampling().fit(train)
    >>> "my-duplicates" in list_methods()
    True
    """
    return _register(_METHODS, "method", name)


def register_dataset(name: str) -> Callable[[F], F]:
    """Register a data set loader: ``fn(**params) -> ImageDataset``."""
    return _register(_DATASETS, "dataset", name)


def register_classifier(name: str) -> Callable[[F], F]:
    """Register a downstream classifier factory: ``fn(*, seed, device, **params)``.

    It returns an object with ``fit(dataset)`` and ``predict(images) -> ndarray of labels``.
    """
    return _register(_CLASSIFIERS, "classifier", name)


def register_task(name: str) -> Callable[[F], F]:
    """Register a task type: what one grid cell does and how its config is read.

    The class has

    - ``settings_table``: the config table holding the task's settings (``"imbalance"``);
    - ``parse_settings(table, dataset) -> [{"label": str, settings_table: payload}, ...]``,
      where ``dataset()`` loads the config's data set if the settings need its classes;
      errors name the bad key;
    - ``validate_method(name, params)``, raising for a method the task cannot run;
    - ``uses_classifiers`` (whether cells cross the ``[classifiers]`` axis), ``baselines``
      (methods the report compares every other method with, when configured), ``example``
      (a methods list for error messages), ``reported`` (the metrics of the tables, the first
      one ranks methods), ``best_is_highest`` (metrics whose highest mean is marked best) and
      ``mean_over_settings`` (false, or the label of a per-seed mean across settings that
      the report adds, e.g. ``"mean over normal classes"``);
    - ``run(cell, dataset, timings) -> dict of metrics``, with the payload in
      ``cell[settings_table]``.

    See :class:`synthaug.bench._tasks.ClassificationTask` for the reference implementation.
    """
    return _register(_TASKS, "task", name)


def list_methods() -> list[str]:
    """Names of the registered methods plus every registered generator, sorted."""
    from synthaug.generators import list_generators

    return sorted(set(_METHODS) | set(list_generators()))


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def list_classifiers() -> list[str]:
    return sorted(_CLASSIFIERS)


def list_tasks() -> list[str]:
    return sorted(_TASKS)


def _lookup(table: dict[str, Any], kind: str, name: str, where: str) -> Any:
    try:
        return table[name]
    except KeyError:
        raise InvalidParameterError(
            f"{where}: unknown {kind} {name!r}; available: {', '.join(sorted(table))}"
        ) from None


def get_dataset(name: str, where: str = "dataset.name") -> Callable[..., Any]:
    return _lookup(_DATASETS, "dataset", name, where)


def get_classifier(name: str, where: str = "classifiers") -> Callable[..., Any]:
    return _lookup(_CLASSIFIERS, "classifier", name, where)


def get_task(name: str, where: str = "task") -> Any:
    return _lookup(_TASKS, "task", name, where)


def get_method(name: str, where: str = "methods") -> Callable[..., Any]:
    """The function behind one (non-combined) method name; generators are wrapped on the fly."""
    if name in _METHODS:
        return _METHODS[name]
    from synthaug.generators import list_generators

    if name in list_generators():
        from synthaug.bench._methods import generator_method

        return generator_method(name)
    raise InvalidParameterError(
        f"{where}: unknown method {name!r}; available: {', '.join(list_methods())} "
        f"(or combinations such as 'cvae+classical')"
    )


def check_params(fn: Callable[..., Any], params: dict[str, Any], where: str, *, skip=()) -> None:
    """Raise if ``params`` cannot be passed to ``fn`` as keywords (names the bad key)."""
    sig = inspect.signature(fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    allowed = [
        n
        for n, p in sig.parameters.items()
        if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    for key in params:
        if key not in allowed or key in skip:
            usable = [n for n in allowed if n not in skip]
            raise InvalidParameterError(
                f"{where}.{key}: unknown parameter; allowed: {', '.join(usable) or '(none)'}"
            )
