"""argparse value types shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

Number = TypeVar("Number", int, float)


def _number(
    text: str,
    convert: Callable[[str], Number],
    accepts: Callable[[Number], bool],
    unreadable: str,
    refused: str,
) -> Number:
    """``convert(text)`` when ``accepts`` it, else argparse's error: ``must be <unreadable>``
    for text that is no number, ``must be <refused>`` for a number out of range.

    Each type below is one call, so that how a value is checked and refused is written once.
    """
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {unreadable}, got {text!r}") from None
    if not accepts(value):
        raise argparse.ArgumentTypeError(f"must be {refused}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a positive integer", "a positive integer")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: 0 < v < math.inf, "a number > 0", "a finite number > 0")


def fraction(text: str) -> float:
    return _number(text, float, lambda v: 0 < v <= 1, "a number in (0, 1]", "in (0, 1]")


def open_fraction(text: str) -> float:
    return _number(text, float, lambda v: 0 < v < 1, "a number in (0, 1)", "in (0, 1)")


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with a JSON value (``latent_dim=8``, ``hidden_dims=[64,32]``) or a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"must look like KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if isinstance(value, list):
        value = tuple(value)
    return key, value
