"""Find sample sources by name: the non-generative baselines (``"classical"``, ``"smote"``)."""

from __future__ import annotations

from synthaug.registry import Registry

SOURCES: Registry = Registry("sample source")
"""Sample sources that are not generators: ``SOURCES.create("smote", k_neighbors=3)``.
Generators are sample sources too; they live in ``synthaug.generators.GENERATORS``."""

register_source = SOURCES.register
"""``@register_source("name")``: make a sample source class reachable by name."""
