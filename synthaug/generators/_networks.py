"""Building blocks for the generator networks."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(
    in_dim: int, hidden: Sequence[int], out_dim: int, *, activation: type[nn.Module] = nn.SiLU
) -> nn.Sequential:
    """A plain multilayer perceptron: Linear → activation for each hidden width, then Linear."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), activation()]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)
