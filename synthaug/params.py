"""Declaring estimator parameters: :class:`Param`, :class:`Default` and the rules.

A family declares each parameter it adds once, on its class, with its default, its rule and
its doc; the constructor, the docstring's ``Parameters`` section and the error for a bad value
are made from that declaration (see ``docs/extending.md``).

Examples
--------
>>> from synthaug.params import Param, int_range
>>> from synthaug.generators import CVAE
>>> class WideCVAE(CVAE):
...     depth = Param(2, int_range(1), "Extra hidden layers.")
>>> WideCVAE(depth=3).get_params()["depth"]
3
>>> print(WideCVAE.parameters()["depth"].rule)
an integer in [1, inf)
"""

from synthaug._params import (
    REQUIRED,
    AnyOf,
    Default,
    Estimator,
    Interval,
    NoneOr,
    Options,
    Param,
    Rule,
    Satisfies,
    any_of,
    boolean,
    device_like,
    int_range,
    int_tuple,
    none_or,
    odd_int,
    one_of,
    pair_in,
    param_field,
    params_of,
    path_like,
    real_range,
    seed_like,
)

__all__ = [
    "REQUIRED",
    "AnyOf",
    "Default",
    "Estimator",
    "Interval",
    "NoneOr",
    "Options",
    "Param",
    "Rule",
    "Satisfies",
    "any_of",
    "boolean",
    "device_like",
    "int_range",
    "int_tuple",
    "none_or",
    "odd_int",
    "one_of",
    "pair_in",
    "param_field",
    "params_of",
    "path_like",
    "real_range",
    "seed_like",
]
