"""The estimator base and its declarative parameter rules, checked once when ``fit`` runs
(as imbalanced-learn's ``_parameter_constraints`` are)."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from sklearn.base import BaseEstimator

from synthaug.errors import InvalidParameterError

# A rule takes a value and returns None when it is fine, else a phrase naming what is allowed.
Rule = Callable[[Any], "str | None"]


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def int_range(low: int | None = None, high: int | None = None) -> Rule:
    def rule(v: Any) -> str | None:
        if _is_int(v) and (low is None or v >= low) and (high is None or v <= high):
            return None
        return f"an integer in [{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"

    return rule


def real_range(
    low: float | None = None, high: float | None = None, *, low_open: bool = False
) -> Rule:
    def rule(v: Any) -> str | None:
        ok = _is_real(v) and v == v  # v == v excludes NaN
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v <= high
        if ok:
            return None
        bracket = "(" if low_open else "["
        return f"a number in {bracket}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"

    return rule


def one_of(*options: Any) -> Rule:
    def rule(v: Any) -> str | None:
        return None if v in options else f"one of {list(options)}"

    return rule


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "True or False"


def none_or(inner: Rule) -> Rule:
    def rule(v: Any) -> str | None:
        if v is None:
            return None
        msg = inner(v)
        return None if msg is None else f"None or {msg}"

    return rule


def device_like(v: Any) -> str | None:
    if isinstance(v, torch.device) or (
        isinstance(v, str) and (v == "auto" or v.split(":")[0] in ("cpu", "cuda", "mps"))
    ):
        return None
    return "'auto', 'cpu', 'cuda' or 'cuda:N'"


seed_like = none_or(int_range(0))


def validate_params(owner: str, params: Mapping[str, Any], rules: Mapping[str, Rule]) -> None:
    """Raise :class:`InvalidParameterError` naming the first parameter that breaks its rule."""
    for name, rule in rules.items():
        if name not in params:
            continue
        msg = rule(params[name])
        if msg is not None:
            raise InvalidParameterError(
                f"{owner}: parameter {name}={params[name]!r} is invalid; it must be {msg}"
            )


class Estimator(BaseEstimator):
    """scikit-learn's estimator contract plus synthaug's declarative parameter rules.

    Subclasses follow scikit-learn's rules (``BaseEstimator``): the constructor takes keyword
    parameters and only stores them, under the same names; fitted state ends in ``_``. So
    ``get_params(deep=True)``, ``set_params(a__b=...)``, ``clone`` and ``GridSearchCV`` work
    with no code of ours, and a meta-estimator takes another estimator as a parameter value.

    ``_parameter_constraints`` maps parameter names to rules (``int_range(1)``, ...); the rules
    of every class in the hierarchy apply, so a family inherits its base's training rules.
    :meth:`check_params` runs them, and those of every estimator held as a parameter value;
    ``fit`` calls it first, and the benchmark harness calls it when it reads a config.
    """

    _parameter_constraints: ClassVar[dict[str, Rule]] = {}

    @classmethod
    def _parameter_rules(cls) -> dict[str, Rule]:
        rules: dict[str, Rule] = {}
        for klass in reversed(cls.__mro__):
            rules.update(vars(klass).get("_parameter_constraints", {}))
        return rules

    def check_params(self) -> None:
        """Raise :class:`~synthaug.errors.InvalidParameterError` for the first bad parameter.

        Nested estimators (parameter values that are estimators, or lists of them) are
        checked too.
        """
        params = self.get_params(deep=False)
        validate_params(type(self).__name__, params, self._parameter_rules())
        for value in params.values():
            for inner in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(inner, tuple) and len(inner) == 2:  # (name, estimator) pairs
                    inner = inner[1]
                if isinstance(inner, Estimator):
                    inner.check_params()

    def set_params(self, **params: Any) -> Estimator:
        """Set parameters, nested ones as ``inner__name``; an unknown name raises
        :class:`~synthaug.errors.InvalidParameterError` listing the valid ones."""
        try:
            return super().set_params(**params)
        except ValueError as exc:
            if isinstance(exc, InvalidParameterError):
                raise
            raise InvalidParameterError(str(exc)) from exc

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has run (fitted attributes end in ``_``)."""
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def __sklearn_is_fitted__(self) -> bool:
        return self.is_fitted


def configure(estimator: BaseEstimator, **values: Any) -> set[str]:
    """Set each of ``values`` on every parameter of that name, the nested ones included.

    ``configure(PerClass(CVAE()), seed=3, verbose=False)`` sets ``estimator__seed`` and
    ``estimator__verbose``: the benchmark harness and the command line use it to place the
    seed, device and verbosity of a run wherever a (meta-)estimator keeps them.

    Returns
    -------
    set of str
        The names that no parameter took.
    """
    keys = estimator.get_params(deep=True)
    placed: dict[str, Any] = {}
    for key in keys:
        name = key.rsplit("__", 1)[-1]
        if name in values:
            placed[key] = values[name]
    # Outer parameters first: setting a nested estimator's parameter after replacing it.
    for key in sorted(placed, key=lambda k: k.count("__")):
        estimator.set_params(**{key: placed[key]})
    return set(values) - {k.rsplit("__", 1)[-1] for k in placed}
