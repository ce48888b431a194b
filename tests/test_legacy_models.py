"""Model files written by an earlier release load and sample exactly as they did (issue 31).

The files in tests/fixtures/legacy_models/ were written once by
tests/fixtures/make_legacy_models.py at the commit its README names; they are never
regenerated here. Each loads on the CPU and must give bit-identical samples for the seed it
was saved with, and the parameters the file recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fixtures.make_legacy_models import encode  # the encoding the fixtures were written with
from safetensors import safe_open
from safetensors.torch import load_file

import synthaug

FIXTURES = Path(__file__).parent / "fixtures" / "legacy_models"
NAMES = sorted(p.name.removesuffix(".json") for p in FIXTURES.glob("*.json"))


def test_every_family_has_a_fixture():
    assert len(NAMES) >= 10, f"fixtures missing from {FIXTURES}"


@pytest.mark.parametrize("name", NAMES)
def test_legacy_model_loads_and_samples_identically(name, one_torch_thread):
    spec = json.loads((FIXTURES / f"{name}.json").read_text())
    expected = load_file(str(FIXTURES / f"{name}.expected.safetensors"))
    model = synthaug.load(FIXTURES / f"{name}.safetensors", device="cpu")

    assert model.registry_name == spec["type"]
    params = {k: encode(v) for k, v in model.get_params(deep=False).items()}
    assert params == spec["params"]
    with safe_open(str(FIXTURES / f"{name}.safetensors"), framework="pt") as f:
        recorded = json.loads(f.metadata()["params"])  # what the file itself records
    assert params == recorded

    call = spec["sample"]
    images, labels = model.sample(call["n"], y=call["y"], seed=call["seed"])
    assert torch.equal(labels, expected["labels"])
    assert torch.equal(images, expected["images"])
    images, labels = model.sample(call["n"], seed=call["seed"])
    assert torch.equal(labels, expected["labels_y_none"])
    assert torch.equal(images, expected["images_y_none"])
