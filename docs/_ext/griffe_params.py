"""Griffe extension: an estimator's API entry shows the parameters its declarations make.

Estimators declare parameters as ``Param`` class attributes (``synthaug.params``); the
constructor and the docstring's ``Parameters`` section are written at import time, so the
static reading of the source sees neither. For every class that has declarations this puts
the runtime docstring and the generated ``__init__`` signature (defaults included) in the
reference; the rule of each parameter is in its rendered doc.
"""

from __future__ import annotations

import inspect
from typing import Any

import griffe

_KINDS = {
    inspect.Parameter.POSITIONAL_OR_KEYWORD: griffe.ParameterKind.positional_or_keyword,
    inspect.Parameter.KEYWORD_ONLY: griffe.ParameterKind.keyword_only,
}


class DeclaredParameters(griffe.Extension):
    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        try:
            runtime = griffe.dynamic_import(cls.path)
        except ImportError:
            return
        if not vars(runtime).get("_params"):
            return  # declares nothing itself: its entry is read from the source as usual
        cls.docstring = griffe.Docstring(inspect.getdoc(runtime) or "", parent=cls, parser="numpy")
        parameters = [griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)]
        for p in list(inspect.signature(runtime).parameters.values()):
            default = None if p.default is inspect.Parameter.empty else repr(p.default)
            parameters.append(griffe.Parameter(p.name, kind=_KINDS[p.kind], default=default))
        init = griffe.Function("__init__", parameters=griffe.Parameters(*parameters), parent=cls)
        cls.set_member("__init__", init)
