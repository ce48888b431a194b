"""Declarative parameter rules, checked once when ``fit`` runs (as imbalanced-learn does)."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Collection, Mapping
from typing import Any, ClassVar

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
    import torch

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


class ParamsMixin:
    """scikit-learn style ``get_params`` / ``set_params`` / ``repr`` from the constructor signature.

    Shared by generators and anomaly detectors, whose constructors only store their keyword
    arguments as attributes of the same name. Two exceptions are declared, not hand-written:
    ``_param_attrs`` maps a parameter to the attribute that holds it (``score`` lives in
    ``score_kind`` where ``score`` is also a method), and ``_passthrough_attr`` names the dict
    holding ``**kwargs`` passed on to an inner model (``_passthrough_names`` says which names
    it takes; ``None``: any, checked when the inner model is built).
    """

    _param_attrs: ClassVar[dict[str, str]] = {}
    _passthrough_attr: ClassVar[str | None] = None

    @classmethod
    def _param_names(cls) -> list[str]:
        import inspect

        sig = inspect.signature(cls.__init__)
        return [
            p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD
        ]

    @classmethod
    def _passthrough_names(cls) -> Collection[str] | None:
        return None

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters as a dict."""
        params = {
            name: getattr(self, self._param_attrs.get(name, name)) for name in self._param_names()
        }
        if self._passthrough_attr is not None:
            params.update(getattr(self, self._passthrough_attr))
        return params

    def set_params(self, **params: Any) -> ParamsMixin:
        """Set constructor parameters; unknown names raise."""
        own = set(self._param_names())
        extra = None if self._passthrough_attr is None else getattr(self, self._passthrough_attr)
        extra_names = self._passthrough_names()
        for name, value in params.items():
            if name in own:
                setattr(self, self._param_attrs.get(name, name), value)
            elif extra is not None and (extra_names is None or name in extra_names):
                extra[name] = value
            else:
                valid = sorted(own | set(extra_names or ()))
                raise InvalidParameterError(
                    f"{type(self).__name__} has no parameter {name!r}; valid: {valid}"
                )
        return self

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
