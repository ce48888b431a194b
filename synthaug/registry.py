"""One registry type: find generators, detectors, sample sources, classifiers, data sets,
benchmark methods and task types by name.

Every kind of pluggable thing in synthaug has one :class:`Registry` instance
(``synthaug.generators.GENERATORS``, ``synthaug.anomaly.DETECTORS``,
``synthaug.augment.SOURCES``, ``synthaug.metrics.CLASSIFIERS``, ``synthaug.data.DATASETS``,
``synthaug.bench.METHODS`` and ``synthaug.bench.TASKS``), with the same four verbs:
``register``, ``get``, ``list`` and ``create``. The command line, the samplers and the
benchmark harness resolve names only through them, so adding a generator or a benchmark
method is one decorated class or function (timm's ``@register_model`` / ``create_model``).
"""

from __future__ import annotations

import fnmatch
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

from synthaug.errors import InvalidParameterError

__all__ = ["Preset", "Registry"]

T = TypeVar("T")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _signature_params(obj: Any) -> list[str] | None:
    """Keyword names ``obj(**params)`` accepts; ``None`` when it takes any (``**kwargs``)."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    params = [
        p for p in inspect.signature(target).parameters.values() if p.name not in ("self", "cls")
    ]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


class Registry(Generic[T]):
    """Names mapped to classes or factory functions of one kind.

    Parameters
    ----------
    kind : str
        What the entries are, for messages (``"generator"``, ``"detector"`` ...).

    Examples
    --------
    >>> from synthaug.registry import Registry
    >>> shapes = Registry("shape")
    >>> @shapes.register("square")
    ... class Square:
    ...     def __init__(self, *, side=1.0):
    ...         self.side = side
    >>> shapes.list(), shapes.create("square", side=2.0).side
    (['square'], 2.0)
    >>> shapes.accepted_params("square")
    ['side']
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    # -- registering ------------------------------------------------------------------------
    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: T | None = None) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator that does.

        Names are letters, digits, ``.``, ``_`` and ``-`` (``+`` combines benchmark methods).
        Registering another object under a taken name raises ``ValueError``.
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"{self.kind} name must start with a letter or digit and hold only letters, "
                f"digits, '.', '_' and '-', got {name!r}"
            )

        def decorate(entry: T) -> T:
            taken = self._entries.get(name)
            if taken is not None and taken is not entry:
                raise ValueError(f"{self.kind} name {name!r} is already registered to {taken!r}")
            self._entries[name] = entry
            return entry

        return decorate if obj is None else decorate(obj)

    # -- finding ------------------------------------------------------------------------------
    def get(self, name: str) -> T:
        """The entry registered as ``name``; an unknown name raises ``InvalidParameterError``."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise InvalidParameterError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.list()) or '(none)'}"
            ) from None

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching the shell-style ``pattern`` (``"perclass-*"``), sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def name_of(self, entry: Any) -> str | None:
        """The name ``entry`` is registered under (the first, if several), or ``None``."""
        return next((n for n, e in self._entries.items() if e is entry), None)

    def accepted_params(self, name: str) -> list[str] | None:
        """Keyword parameters ``create(name, ...)`` takes; ``None`` when it takes any."""
        entry = self.get(name)
        accepted = getattr(entry, "accepted_params", None)
        if callable(accepted):
            return list(accepted())
        return _signature_params(entry)

    def create(self, name: str, /, **params: Any) -> Any:
        """Build the entry registered as ``name`` with ``params``.

        An unknown name or a keyword the entry does not take raises
        :class:`~synthaug.errors.InvalidParameterError` naming what is allowed.
        """
        entry = self.get(name)
        accepted = self.accepted_params(name)
        if accepted is not None:
            unknown = sorted(set(params) - set(accepted))
            if unknown:
                raise InvalidParameterError(
                    f"{self.kind} {name!r} has no parameter(s) {unknown}; valid: {sorted(accepted)}"
                )
        if not hasattr(entry, "accepted_params"):
            target = entry.__init__ if inspect.isclass(entry) else entry
            try:  # a required parameter left out: say so before calling
                inspect.signature(target).bind_partial(**params)
                missing = [
                    p.name
                    for p in inspect.signature(target).parameters.values()
                    if p.default is p.empty
                    and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                    and p.name not in ("self", "cls")
                    and p.name not in params
                ]
            except TypeError as exc:
                raise InvalidParameterError(
                    f"bad parameters for {self.kind} {name!r}: {exc}"
                ) from None
            if missing:
                raise InvalidParameterError(
                    f"{self.kind} {name!r} needs the parameter(s) {missing}"
                )
        return entry(**params)  # type: ignore[operator]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.list())})"


class Preset:
    """A registry entry that builds a meta-estimator around an inner one from flat keywords.

    ``Preset(PerClass, "estimator", CVAE)`` called with ``latent_dim=8, n_jobs=2`` returns
    ``PerClass(estimator=CVAE(latent_dim=8), n_jobs=2)``: keywords of the outer class go to
    it, every other keyword to the inner class. That keeps a name such as ``perclass-vae``
    usable with flat parameters on the command line and in benchmark configs, while the
    classes themselves compose by instance (scikit-learn's ``BaggingClassifier(estimator=...)``).

    Parameters
    ----------
    outer : type
        The meta-estimator class.
    inner_param : str
        The parameter of ``outer`` that takes the inner estimator.
    inner : type
        The inner estimator class.
    defaults : mapping, optional
        Inner parameters to use unless given (``{"epochs": 200}``).
    """

    def __init__(
        self,
        outer: type,
        inner_param: str,
        inner: type,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self.outer = outer
        self.inner_param = inner_param
        self.inner = inner
        self.defaults = dict(defaults or {})

    def _outer_params(self) -> list[str]:
        names = _signature_params(self.outer) or []
        return [n for n in names if n != self.inner_param]

    def accepted_params(self) -> list[str]:
        """The outer class's parameters (but the inner one) and all of the inner class's."""
        inner = _signature_params(self.inner) or []
        return sorted(set(self._outer_params()) | set(inner))

    def __call__(self, **params: Any) -> Any:
        own = set(self._outer_params())
        outer_params = {k: v for k, v in params.items() if k in own}
        inner_params = {**self.defaults, **{k: v for k, v in params.items() if k not in own}}
        return self.outer(**{self.inner_param: self.inner(**inner_params)}, **outer_params)

    def __repr__(self) -> str:
        return f"Preset({self.outer.__name__}({self.inner_param}={self.inner.__name__}(...)))"
