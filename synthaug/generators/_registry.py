"""Find generators by name: ``@register_generator("cvae")``, ``create_generator("cvae")``."""

from __future__ import annotations

from typing import Any, TypeVar

from synthaug.errors import InvalidParameterError

_REGISTRY: dict[str, type] = {}
T = TypeVar("T", bound=type)


def register_generator(name: str):
    """Class decorator that makes a generator reachable by ``name`` everywhere in synthaug."""

    def decorate(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"generator name {name!r} is already registered to {_REGISTRY[name]}")
        _REGISTRY[name] = cls
        cls.registry_name = name
        return cls

    return decorate


def list_generators() -> list[str]:
    """Names of every registered generator, sorted."""
    return sorted(_REGISTRY)


def get_generator_class(name: str) -> type:
    """The class registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InvalidParameterError(
            f"unknown generator {name!r}; available: {', '.join(list_generators())}"
        ) from None


def create_generator(name: str, **params: Any):
    """Instantiate the generator registered as ``name`` with ``params``.

    Examples
    --------
    >>> from synthaug.generators import create_generator
    >>> create_generator("cvae", latent_dim=8).latent_dim
    8
    """
    cls = get_generator_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise InvalidParameterError(f"bad parameters for generator {name!r}: {exc}") from exc
