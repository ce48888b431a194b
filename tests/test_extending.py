"""The examples of docs/extending.md work as the page says (the page includes these files)."""

from __future__ import annotations

import pytest
import torch

import synthaug
from synthaug.bench import parse_config, read_results, run_bench
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError
from synthaug.generators import GENERATORS, create_generator


def test_a_new_generator_family_is_one_decorated_class(tmp_path, tiny_images):
    # Registered by name, fitted, sampled, saved and loaded with no code beyond the family.
    assert "tiny-means" in GENERATORS
    model = create_generator("tiny-means", epochs=30, noise=0.0, verbose=False).fit(tiny_images)
    images, labels = model.sample(6, y=[0, 1, 2, 0, 1, 2], seed=0)
    assert images.shape == (6, 1, 8, 8) and labels.tolist() == [0, 1, 2, 0, 1, 2]
    # With no noise a sample is its class's learned mean: close to the real class mean.
    real_mean = tiny_images.images[tiny_images.labels == 1].mean(0)
    assert (images[1] - real_mean).abs().max() < 0.1
    loaded = synthaug.load(model.save(tmp_path / "tiny.safetensors"))
    assert torch.equal(loaded.sample(6, seed=3)[0], model.sample(6, seed=3)[0])
    # The harness runs it as a method with no further code.
    cfg = parse_config(
        {
            "seeds": 1,
            "dataset": {"name": "digits"},
            "imbalance": {"minority_classes": [9], "ratios": [0.1]},
            "classifiers": {"logreg": {"max_iter": 100}},
            "methods": {"tiny-means": {"epochs": 3}},
        }
    )
    assert run_bench(cfg, tmp_path / "grid", progress=False, echo=lambda *_: None)["ran"] == 1


def test_a_new_task_type_is_one_registered_class(tmp_path, one_torch_thread):
    config = {
        "task": "label-fidelity",
        "seeds": 1,
        "dataset": {"name": "digits"},
        "samples": {"per_class": [5, 20]},
        "methods": {"cvae": {"epochs": 2}, "tiny-means": {"epochs": 5}},
    }
    cfg = parse_config(config)
    assert [s["label"] for s in cfg.settings] == ["per_class=5", "per_class=20"]
    run_bench(cfg, tmp_path, progress=False, echo=lambda *_: None)
    records = read_results(tmp_path / "results.jsonl")
    assert len(records) == 4
    assert all(0 <= r["metrics"]["label_fidelity"] <= 1 for r in records)
    assert "label_fidelity" in (tmp_path / "report.md").read_text()
    with pytest.raises(InvalidParameterError, match="samples.per_class"):
        parse_config({**config, "samples": {"per_class": [0]}})
    with pytest.raises(InvalidParameterError, match="methods.cvae.epochz"):
        parse_config({**config, "methods": {"cvae": {"epochz": 2}}})


def test_feature_vector_data_works_with_the_example_family():
    data = ImageDataset(torch.rand(20, 5), torch.arange(2).repeat(10))
    model = create_generator("tiny-means", epochs=2, verbose=False).fit(data)
    assert model.sample(3, y=1, seed=0)[0].shape == (3, 5)
