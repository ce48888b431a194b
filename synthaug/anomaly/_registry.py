"""Find anomaly detectors by name: ``@register_detector("pca")``, ``create_detector("pca")``."""

from __future__ import annotations

from synthaug.registry import Registry

DETECTORS: Registry = Registry("detector")
"""Every anomaly detector reachable by name (the CLI and the harness resolve names here)."""

register_detector = DETECTORS.register
"""``@register_detector("name")``: make a detector class reachable by name."""
create_detector = DETECTORS.create
"""``create_detector("pca", n_components=5)``: an unfitted detector by name."""
list_detectors = DETECTORS.list
"""``list_detectors()``: registered names, sorted."""
