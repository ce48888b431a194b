"""Find anomaly detectors by name: ``@register_detector("pca")``, ``create_detector("pca")``."""

from __future__ import annotations

from synthaug.registry import Registry

#: Every anomaly detector reachable by name (the CLI and the harness resolve names here).
DETECTORS: Registry = Registry("detector")

#: ``@register_detector("name")``: make a detector class reachable by name.
register_detector = DETECTORS.register
#: ``create_detector("pca", n_components=5)``: an unfitted detector by name.
create_detector = DETECTORS.create
#: ``list_detectors()``: registered names, sorted.
list_detectors = DETECTORS.list
