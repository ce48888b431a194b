"""Find generators by name: ``@register_generator("cvae")``, ``create_generator("cvae")``."""

from __future__ import annotations

from synthaug.registry import Registry

#: Every generator reachable by name: the CLI, the samplers and the harness resolve names here.
GENERATORS: Registry = Registry("generator")

#: ``@register_generator("name")``: make a generator class reachable by name everywhere.
register_generator = GENERATORS.register
#: ``create_generator("cvae", latent_dim=8)``: an unfitted generator by name.
create_generator = GENERATORS.create
#: ``list_generators()``: registered names, sorted (``list_generators("perclass-*")`` filters).
list_generators = GENERATORS.list
