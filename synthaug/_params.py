"""Estimator parameters declared once: default, rule and doc in one :class:`Param`.

scikit-learn reads an estimator's parameters from its ``__init__`` signature and wants the
constructor to store them untouched. A family here declares each parameter it adds (or whose
default it changes) once, as a class attribute::

    class CVAE(TorchGenerator):
        latent_dim = Param(16, int_range(1), "Size of the latent code.")
        epochs = Default(200)  # inherited parameter, another default

:class:`Estimator` then writes the keyword-only ``__init__`` (a real signature: ``get_params``,
``clone``, ``GridSearchCV`` and ``inspect.signature`` see every parameter), appends a numpydoc
``Parameters`` section rendered from the declarations to the class docstring, and checks the
rules when ``fit`` runs. Rules are small objects (as scikit-learn's ``Interval`` and
``StrOptions``), so documentation and error messages read the same words.
"""

from __future__ import annotations

import inspect
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from sklearn.base import BaseEstimator

from synthaug.errors import InvalidParameterError

# -- rules ------------------------------------------------------------------------------------


class Rule:
    """What values a parameter accepts, as data: :meth:`accepts` checks, ``str()`` says it.

    ``str(rule)`` is a phrase that completes "it must be ...", used by error messages and the
    API reference alike. Calling a rule returns None for an accepted value, else that phrase.
    """

    def accepts(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def type_name(self) -> str:
        """The type shown in a rendered ``Parameters`` entry."""
        return ""

    def __call__(self, value: Any) -> str | None:
        return None if self.accepts(value) else str(self)

    def __repr__(self) -> str:
        return f"<rule: {self}>"


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _bound(v: float | None, sign: str) -> str:
    if v is None:
        return f"{sign}inf"
    if _is_int(v) and v >= 2**32 and (v + 1) & v == 0:  # 2**64 - 1 reads better than its digits
        return f"2**{int(v).bit_length()} - 1"
    return f"{v}"


@dataclass(frozen=True, repr=False)
class Interval(Rule):
    """An integer or real number between ``low`` and ``high`` (None: unbounded).

    ``low_open`` / ``high_open`` exclude the bound itself; NaN is never accepted.
    """

    kind: str  # "int" or "real"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def accepts(self, value: Any) -> bool:
        if not (_is_int(value) if self.kind == "int" else _is_real(value)) or value != value:
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def type_name(self) -> str:
        return "int" if self.kind == "int" else "float"

    def __str__(self) -> str:
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        what = "an integer" if self.kind == "int" else "a number"
        return f"{what} in {left}{_bound(self.low, '-')}, {_bound(self.high, '')}{right}"


@dataclass(frozen=True, repr=False)
class Options(Rule):
    """One of a fixed set of values (compared with their type: ``1`` is not ``True``)."""

    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(o) and value == o for o in self.values)

    def type_name(self) -> str:
        return "{" + ", ".join(repr(v) for v in self.values) + "}"

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True, repr=False)
class NoneOr(Rule):
    """None, or a value ``inner`` accepts."""

    inner: Rule

    def accepts(self, value: Any) -> bool:
        return value is None or self.inner.accepts(value)

    def type_name(self) -> str:
        inner = self.inner.type_name()
        return f"{inner} or None" if inner else ""

    def __str__(self) -> str:
        return f"None or {self.inner}"


@dataclass(frozen=True, repr=False)
class AnyOf(Rule):
    """A value that at least one of ``rules`` accepts."""

    rules: tuple[Rule, ...]

    def accepts(self, value: Any) -> bool:
        return any(r.accepts(value) for r in self.rules)

    def type_name(self) -> str:
        names = [r.type_name() for r in self.rules]
        return " or ".join(names) if all(names) else ""

    def __str__(self) -> str:
        return " or ".join(str(r) for r in self.rules)


@dataclass(frozen=True, repr=False)
class Satisfies(Rule):
    """A value for which ``predicate`` is true; ``description`` says which in words."""

    predicate: Callable[[Any], bool]
    description: str
    type: str = ""

    def accepts(self, value: Any) -> bool:
        try:
            return bool(self.predicate(value))
        except (TypeError, ValueError):
            return False

    def type_name(self) -> str:
        return self.type

    def __str__(self) -> str:
        return self.description


def int_range(low: int | None = None, high: int | None = None) -> Interval:
    """An integer in ``[low, high]`` (None: unbounded)."""
    return Interval("int", low, high)


def real_range(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Interval:
    """A number in ``[low, high]``; ``low_open`` / ``high_open`` exclude the bound."""
    return Interval("real", low, high, low_open, high_open)


def one_of(*options: Any) -> Options:
    """One of ``options``."""
    return Options(tuple(options))


def none_or(inner: Rule) -> NoneOr:
    """None, or a value ``inner`` accepts."""
    return NoneOr(inner)


def any_of(*rules: Rule) -> AnyOf:
    """A value one of ``rules`` accepts."""
    return AnyOf(tuple(rules))


def _is_pair(lo: float, hi: float, low_open: bool) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        return (
            isinstance(v, (tuple, list))
            and len(v) == 2
            and all(_is_real(x) for x in v)
            and lo <= v[0] <= v[1] <= hi
            and not (low_open and v[0] == lo)
        )

    return check


def pair_in(lo: float, hi: float, *, low_open: bool = False) -> Satisfies:
    """A pair ``(low, high)`` with ``lo <= low <= high <= hi`` (``lo < low`` when ``low_open``)."""
    return Satisfies(
        _is_pair(lo, hi, low_open),
        f"a pair (low, high) with {lo} {'<' if low_open else '<='} low <= high <= {hi}",
        "(float, float)",
    )


def _is_device(v: Any) -> bool:
    return isinstance(v, torch.device) or (
        isinstance(v, str) and (v == "auto" or v.split(":")[0] in ("cpu", "cuda", "mps"))
    )


def odd_int(low: int = 1) -> Satisfies:
    """An odd integer ``>= low`` (a window with a centre pixel)."""
    return Satisfies(
        lambda v: _is_int(v) and v >= low and v % 2 == 1, f"an odd integer >= {low}", "int"
    )


def int_tuple(low: int = 1) -> Satisfies:
    """A non-empty tuple (or list) of integers ``>= low``: layer widths, grid sizes."""
    return Satisfies(
        lambda v: (
            isinstance(v, (tuple, list)) and len(v) > 0 and all(_is_int(x) and x >= low for x in v)
        ),
        f"a non-empty tuple of integers >= {low}",
        "tuple of int",
    )


boolean = Satisfies(lambda v: isinstance(v, bool), "True or False", "bool")
device_like = Satisfies(_is_device, "'auto', 'cpu', 'cuda' or 'cuda:N'", "str")
# torch's generators take seeds below 2**64 (scikit-learn gets their low 32 bits).
seed_like = none_or(int_range(0, 2**64 - 1))
path_like = Satisfies(lambda v: isinstance(v, (str, Path)), "a path", "str")


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


# -- declarations -----------------------------------------------------------------------------

REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    """One estimator parameter: its default, its rule and its one-line doc.

    Parameters
    ----------
    default : object
        The constructor's default (``REQUIRED`` for none; such a parameter comes first and
        may be passed by position).
    rule : Rule or None
        What values are allowed; checked when ``fit`` runs. None: anything.
    doc : str
        What the parameter does, for the rendered ``Parameters`` docstring section.
    type : str
        The type shown in the docs; by default the rule's (``int``, ``float or None``, ...).
    """

    default: Any = REQUIRED
    rule: Rule | None = None
    doc: str = ""
    type: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def type_name(self) -> str:
        if self.type:
            return self.type
        return self.rule.type_name() if self.rule is not None else ""

    def render(self, name: str) -> str:
        """This parameter's numpydoc entry: name, type, default, doc and rule."""
        head = name
        kind = self.type_name()
        if kind:
            head += f" : {kind}"
        if not self.required:
            head += (", " if kind else " : ") + f"default={self.default!r}"
        lines = [head]
        body = inspect.cleandoc(self.doc)
        if self.rule is not None:
            body = f"{body} Must be {self.rule}.".strip()
        lines += [f"    {line}" if line.strip() else "" for line in body.splitlines()]
        return "\n".join(lines)


@dataclass(frozen=True)
class Default:
    """A new default for an inherited parameter; its rule and doc stay the base's."""

    value: Any


def param_field(default: Any, rule: Rule | None = None, doc: str = "", type: str = "") -> Any:
    """A dataclass field that is also a :class:`Param` declaration (see :func:`params_of`).

    A settings dataclass (``synthaug.nn.TrainingSettings``) declares a group of parameters once;
    an estimator takes the whole group as its own with ``class X(Estimator, groups=(...,))``.
    """
    return field(default=default, metadata={"param": Param(default, rule, doc, type)})


def params_of(settings: type) -> dict[str, Param]:
    """The :class:`Param` declarations of a settings dataclass's fields, in field order."""
    return {f.name: f.metadata["param"] for f in fields(settings) if "param" in f.metadata}


def settings_from(settings: type, owner: Any, **overrides: Any) -> Any:
    """A ``settings`` dataclass filled from ``owner``'s attributes of the same names."""
    values = {f.name: getattr(owner, f.name) for f in fields(settings) if hasattr(owner, f.name)}
    return settings(**{**values, **overrides})


_SECTION = re.compile(
    r"^(Attributes|Methods|Notes|References|Examples|See Also|Warns|Raises)\n-+$", re.M
)


def _with_parameters(doc: str | None, params: Mapping[str, Param]) -> str:
    """``doc`` with a ``Parameters`` section rendered from ``params`` before its first
    trailing section (Attributes, Notes, Examples, ...)."""
    text = inspect.cleandoc(doc or "")
    section = "Parameters\n----------\n" + "\n".join(p.render(n) for n, p in params.items())
    match = _SECTION.search(text)
    if match is None:
        return f"{text}\n\n{section}\n" if text else section + "\n"
    return f"{text[: match.start()].rstrip()}\n\n{section}\n\n{text[match.start() :]}"


def _make_init(cls: type, params: Mapping[str, Param]) -> Callable[..., None]:
    names = tuple(params)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = __init__.__signature__.bind(self, *args, **kwargs)  # type: ignore[attr-defined]
        bound.apply_defaults()
        for name in names:
            setattr(self, name, bound.arguments[name])

    positional = [n for n, p in params.items() if p.required]
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [
        inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in positional
    ]
    parameters += [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=p.default)
        for n, p in params.items()
        if not p.required
    ]
    __init__.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    # Named as the class's own method, so tools that inspect it (the API reference) place it.
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__module__ = cls.__module__
    return __init__


class Estimator(BaseEstimator):
    """scikit-learn's estimator contract with parameters declared once as :class:`Param`.

    A subclass declares the parameters it adds as class attributes (``Param(default, rule,
    doc)``), changes an inherited default with ``Default(value)``, and takes a group declared
    by a settings dataclass with ``groups=(Settings,)`` in its class statement. The class then
    gets a keyword-only ``__init__`` that only stores the values under the same names (a
    required parameter may also be passed by position), so ``get_params(deep=True)``,
    ``set_params(a__b=...)``, ``clone`` and ``GridSearchCV`` work with no code of ours, and a
    meta-estimator takes another estimator as a parameter value. The docstring gets a
    ``Parameters`` section rendered from the declarations; fitted state ends in ``_``.

    :meth:`check_params` runs the rules, and those of every estimator held as a parameter
    value; ``fit`` calls it first, and the benchmark harness calls it when it reads a config.
    """

    #: Every parameter of the class, inherited ones included, in signature order.
    _params: ClassVar[dict[str, Param]] = {}

    def __init_subclass__(cls, groups: tuple[type, ...] = (), **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        inherited: dict[str, Param] = {}
        for base in cls.__mro__[1:]:  # the nearest declaration of a name wins
            for name, declared in vars(base).get("_params", {}).items():
                inherited.setdefault(name, declared)
        added: dict[str, Param] = {}
        changed: dict[str, Param] = {}
        for group in groups:
            added.update(params_of(group))
        for name, value in list(vars(cls).items()):
            if isinstance(value, Param):
                added[name] = value
            elif isinstance(value, Default):
                base = added.get(name) or inherited.get(name)
                if base is None:
                    raise TypeError(f"{cls.__name__}.{name}: Default() for an undeclared parameter")
                changed[name] = replace(base, default=value.value)
            else:
                continue
            delattr(cls, name)
        if not added and not changed:
            # A family that only inherits (CopyPaste, CNNClassifier) still lists them.
            doc = cls.__doc__
            if cls._params and "__init__" not in vars(cls) and doc and "Parameters\n" not in doc:
                cls.__doc__ = _with_parameters(doc, cls._params)
            return
        # What the class adds first, then what it inherits, in the base's order.
        params = {**added, **{k: changed.get(k, v) for k, v in inherited.items() if k not in added}}
        params.update({k: v for k, v in changed.items() if k in added})
        # Required parameters first: they may be passed by position.
        cls._params = dict(sorted(params.items(), key=lambda kv: not kv[1].required))
        if "__init__" in vars(cls):
            raise TypeError(
                f"{cls.__name__} declares Param attributes and its own __init__: the "
                f"constructor is written from the declarations; remove __init__"
            )
        cls.__init__ = _make_init(cls, cls._params)  # type: ignore[method-assign]
        cls.__doc__ = _with_parameters(cls.__doc__, cls._params)

    @classmethod
    def _parameter_rules(cls) -> dict[str, Rule]:
        return {name: p.rule for name, p in cls._params.items() if p.rule is not None}

    @classmethod
    def parameters(cls) -> dict[str, Param]:
        """Every parameter's declaration (default, rule, doc), in signature order."""
        return dict(cls._params)

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

    def _forget(self, *names: str) -> None:
        """Delete the fitted attributes ``names`` that are set (a refit or a failed fit
        must not leave stale state behind)."""
        for name in names:
            if name in vars(self):
                delattr(self, name)

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
