"""Find generators by name: ``@register_generator("cvae")``, ``create_generator("cvae")``."""

from __future__ import annotations

from synthaug.registry import Registry

GENERATORS: Registry = Registry("generator")
"""Every generator reachable by name: the CLI, the samplers and the harness resolve names here."""

register_generator = GENERATORS.register
"""``@register_generator("name")``: make a generator class reachable by name everywhere."""
create_generator = GENERATORS.create
"""``create_generator("cvae", latent_dim=8)``: an unfitted generator by name."""
list_generators = GENERATORS.list
"""``list_generators()``: registered names, sorted (``list_generators("perclass-*")`` filters)."""
