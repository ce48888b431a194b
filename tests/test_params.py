"""Parameters are declared once: the declarations, the constructor, the docs and the errors agree.

Every estimator found through the registries (and the public unregistered ones) is checked, so
a new family gets these checks with no change here.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pytest
from test_estimators import EXTRA, every_estimator

import synthaug
from synthaug.errors import InvalidParameterError
from synthaug.generators import CVAE, TorchGenerator
from synthaug.params import (
    REQUIRED,
    Default,
    Estimator,
    Interval,
    Param,
    any_of,
    int_range,
    int_tuple,
    none_or,
    odd_int,
    one_of,
    pair_in,
    real_range,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _classes() -> list[type]:
    """Every registered or public estimator class of ours. GenerativeOverSampler is an
    imbalanced-learn over-sampler and follows imbalanced-learn's own declarations."""
    seen: dict[str, type] = {}
    for param in every_estimator():
        cls = type(param.values[0]())
        if issubclass(cls, Estimator):
            seen[cls.__name__] = cls
    return list(seen.values())


CLASSES = _classes()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_parameter_is_declared_with_a_doc(cls):
    params = cls.parameters()
    signature = inspect.signature(cls)
    assert list(signature.parameters) == list(params)
    for name, declared in params.items():
        assert declared.doc.strip(), f"{cls.__name__}.{name} has no doc"
        default = signature.parameters[name].default
        assert default is declared.default or (declared.required and default is REQUIRED)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_docstring_parameters_are_rendered_from_the_declarations(cls):
    doc = inspect.getdoc(cls)
    # One Parameters section (none without parameters), the rendered one: no hand-written copy.
    assert doc.count("Parameters\n----------") == (1 if cls.parameters() else 0)
    for name, declared in cls.parameters().items():
        assert declared.render(name) in doc
    assert not any("_parameter_constraints" in vars(k) for k in cls.__mro__)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_value_outside_an_interval_names_the_rule(cls):
    """For each numeric rule, a value just outside it is refused with the rule's phrase."""
    for name, declared in cls.parameters().items():
        rule = declared.rule
        inner = rule.inner if hasattr(rule, "inner") else rule
        if not isinstance(inner, Interval) or inner.low is None:
            continue
        bad = inner.low - 1 if inner.kind == "int" else inner.low - 0.5
        factory = EXTRA.get(cls.__name__)
        est = factory() if factory else cls(**{n: p.default for n, p in cls.parameters().items()})
        est.set_params(**{name: bad})
        with pytest.raises(InvalidParameterError) as err:
            est.check_params()
        assert f"{name}={bad!r} is invalid; it must be {rule}" in str(err.value)


def test_generated_constructor_is_keyword_only_and_stores_values_untouched():
    class Family(TorchGenerator):
        """A family."""

        width = Param(4, int_range(1), "Channels.")
        epochs = Default(7)

    sig = inspect.signature(Family)
    assert sig.parameters["width"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["epochs"].default == 7
    dims = (3, 2)
    model = Family(width=dims)  # stored as given: rules are checked by fit, not __init__
    assert model.width is dims
    with pytest.raises(TypeError):
        Family(4)  # the positional form is refused
    with pytest.raises(InvalidParameterError, match=r"width=\(3, 2\) is invalid"):
        model.check_params()
    assert "epochs : int, default=7" in inspect.getdoc(Family)


def test_required_parameters_come_first_and_may_be_positional():
    class Wrapper(Estimator):
        """Wraps."""

        inner = Param(REQUIRED, None, "The wrapped estimator.", type="estimator")
        n = Param(1, int_range(1), "Copies.")

    assert Wrapper("x").inner == "x"
    assert list(inspect.signature(Wrapper).parameters) == ["inner", "n"]
    with pytest.raises(TypeError):
        Wrapper()


def test_declaration_mistakes_are_refused_when_the_class_is_made():
    with pytest.raises(TypeError, match="undeclared"):

        class Bad(Estimator):
            x = Default(3)

    with pytest.raises(TypeError, match="own __init__"):

        class Both(Estimator):
            x = Param(1, None, "x")

            def __init__(self, x=1):
                self.x = x


@pytest.mark.parametrize(
    ("rule", "good", "bad", "phrase"),
    [
        (int_range(1), [1, 10**9], [0, 1.0, True, None], "an integer in [1, inf)"),
        (real_range(0, 1, low_open=True), [0.5, 1], [0, float("nan"), "1"], "a number in (0, 1]"),
        (one_of(True, False, "bf16"), [True, "bf16"], [1, 0, "fp32"], "one of True, False, 'bf16'"),
        (none_or(int_range(0)), [None, 0], [-1], "None or an integer in [0, inf)"),
        (odd_int(1), [1, 3], [2, 0, 3.0], "an odd integer >= 1"),
        (int_tuple(1), [(1,), [2, 3]], [(), (0,), (1.5,), 3], "a non-empty tuple of integers"),
        (
            pair_in(0.0, 1.0),
            [(0.1, 0.2), (0, 1)],
            [(0.3, 0.2), (0, 2), (0.1,)],
            "a pair (low, high)",
        ),
        (any_of(one_of(-1), int_range(1)), [-1, 4], [0, -2], "one of -1 or an integer in [1, inf)"),
    ],
)
def test_rules_check_and_say_what_they_allow(rule, good, bad, phrase):
    assert all(rule.accepts(v) for v in good)
    assert not any(rule.accepts(v) for v in bad)
    assert str(rule).startswith(phrase)
    assert rule(bad[0]) == str(rule) and rule(good[0]) is None


def test_extending_doc_lists_the_training_parameters_of_the_code():
    """docs/extending.md names every training parameter TorchGenerator declares, no more."""
    text = (DOCS / "extending.md").read_text()
    sentence = text[text.index("declares the training parameters") :]
    sentence = sentence[: sentence.index("and owns `fit`")]
    documented = re.findall(r"`(\w+)`", sentence)
    assert documented == list(TorchGenerator.parameters())


def test_extending_example_lists_no_inherited_parameter():
    source = (Path(__file__).parent / "example_family.py").read_text()
    declared = re.findall(r"^    (\w+) = Param\(", source, flags=re.M)
    assert declared == ["noise"]
    inherited = set(TorchGenerator.parameters())
    assert not inherited & set(declared)
    assert "def __init__" not in source.split("class ClassMeans")[1]


def test_parameters_are_public_data():
    assert synthaug.params.Param is Param
    declared = CVAE.parameters()["latent_dim"]
    assert (declared.default, str(declared.rule)) == (16, "an integer in [1, inf)")


def test_api_reference_renders_the_declared_parameters():
    """The griffe extension behind docs/api gives each estimator its declared signature and
    the rendered Parameters section (defaults and rules), which static reading cannot see."""
    griffe = pytest.importorskip("griffe")
    path = DOCS / "_ext" / "griffe_params.py"
    spec = importlib.util.spec_from_file_location("griffe_params", path)
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    package = griffe.load(
        "synthaug.generators",
        extensions=griffe.load_extensions(ext.DeclaredParameters()),
        search_paths=[str(DOCS.parent)],
    )
    cvae = package["CVAE"]
    init = cvae.members["__init__"]
    assert [p.name for p in init.parameters][1:] == list(CVAE.parameters())
    assert init.parameters["latent_dim"].default == "16"
    assert CVAE.parameters()["latent_dim"].render("latent_dim") in cvae.docstring.value
