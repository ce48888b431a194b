"""The medical demo: the bundled ``lesion`` grid, phantoms through DICOM, and its table."""

import numpy as np
import pydicom
import pytest

from synthaug.bench import bundled_config, parse_config, read_results
from synthaug.bench._runner import fit_groups
from synthaug.cli import main
from synthaug.cli._demo import format_table, medical_config, run_demo, summarize
from synthaug.errors import InvalidParameterError
from synthaug.generators import GENERATORS
from synthaug.metrics import binary_scores


def test_lesion_scores_by_hand():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.2, 0.9, 0.4])
    s = binary_scores(y, p)
    assert s["recall"] == pytest.approx(0.5)
    assert s["specificity"] == pytest.approx(2 / 3)
    assert s["balanced_accuracy"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert s["auroc"] == pytest.approx(5 / 6)  # 5 of the 6 (lesion, normal) pairs ranked right


def test_generator_is_resolved_by_registry_name():
    config = medical_config()
    assert config.methods["synthetic"]["method"] in GENERATORS
    assert config.settings[0]["lesion"]["n_lesion"] == 20
    swapped = medical_config(generator="cvae", epochs=3, kind="brain")
    assert swapped.methods["synthetic"] == {"method": "cvae", "epochs": 3}
    assert swapped.methods["synthetic+classical"]["synthetic"] == {"method": "cvae", "epochs": 3}
    assert swapped.dataset["params"]["kind"] == "brain"


def test_the_synthetic_rows_of_a_seed_share_one_generator_fit():
    batches = [[c.method for c in b] for b in fit_groups(medical_config(seeds=2).cells())]
    shared = [b for b in batches if len(b) > 1]
    assert shared == [["synthetic", "synthetic+classical"], ["copy-paste", "lesion-transplant"]] * 2
    assert sorted(m for b in batches for m in b) == sorted(
        ["none", "classical", "synthetic", "synthetic+classical", "copy-paste", "lesion-transplant"]
        * 2
    )


def tiny_medical():
    data = bundled_config("medical_demo")
    data["dataset"]["size"] = 16
    data["lesion"].update(n_train=40, n_test_per_class=6, classifier_size=8)
    data["classifiers"]["resnet"]["steps"] = 1
    for entry in (
        data["methods"]["synthetic"],
        data["methods"]["synthetic+classical"]["synthetic"],
    ):
        entry.update(method="cvae", epochs=1)
    # 16x16 slices have lesions of a pixel or two, too small to localise: the lesion rows run
    # end to end in tests/test_lesion_grid.py instead.
    del data["methods"]["copy-paste"], data["methods"]["lesion-transplant"]
    return data


@pytest.mark.slow
def test_medical_demo_end_to_end_tiny(tmp_path):
    lines = []
    config = parse_config(tiny_medical())
    assert config.settings[0]["lesion"]["n_normal"] == 38
    assert config.settings[0]["lesion"]["n_lesion"] == 2
    table = run_demo(config, tmp_path / "out", jobs=1, progress=False, echo=lines.append)
    records = read_results(tmp_path / "out" / "results.jsonl")
    methods = {r["cell"]["method"] for r in records}
    assert methods == {"none", "classical", "synthetic", "synthetic+classical"}
    for r in records:
        assert r["metrics"]["max_round_trip_error"] <= 0.5 / 65535 + 1e-6
    cells = tmp_path / "out" / "cells"
    synthetic = sorted((cells / "lesions=2_40" / "synthetic").rglob("synthetic/**/*.dcm"))
    assert len(synthetic) == 36  # the lesion class topped up from 2 to 38
    ds = pydicom.dcmread(synthetic[0])
    assert "SYNTHETIC" in ds.SeriesDescription and ds.Modality == "CT"
    real = list((cells / "lesions=2_40" / "synthetic").rglob("real/**/*.dcm"))
    assert len(real) == 40 + 12
    assert not list((cells / "lesions=2_40" / "none").rglob("synthetic/**/*.dcm"))
    png = tmp_path / "out" / "plots" / "samples_lesions=2_40_synthetic.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "synthetic+classical" in table and "auroc" in table
    columns = ("lesion_recall", "balanced_accuracy", "auroc", "specificity")
    assert format_table(summarize(records, ["none"], columns), columns=columns).count("\n") == 2


@pytest.mark.parametrize(
    "change, match",
    [
        ({"dataset": {"name": "phantoms", "kind": "knee"}}, "kind"),
        ({"lesion": {"lesion_fraction": 1.0}}, "lesion_fraction"),
        ({"lesion": {"classifier_size": 32}}, "classifier_size"),
        ({"methods": {"synthetic": {"method": "cvae", "epochs": 0}}}, "epochs"),
        ({"methods": {"synthetic": {"method": "nope"}}}, "unknown method"),
        ({"dataset": {"name": "digits"}}, "n_per_class and seed"),
    ],
)
def test_medical_demo_bad_parameters(change, match):
    data = tiny_medical()
    for key, value in change.items():
        data[key] = {**data[key], **value} if key != "dataset" else value
    if "size" not in data["dataset"] and data["dataset"]["name"] == "phantoms":
        data["dataset"]["size"] = 16
    with pytest.raises(InvalidParameterError, match=match):
        parse_config(data)


def test_cli_medical_flag_is_parsed_and_errors_are_one_line(capsys, tmp_path):
    rc = main(["demo", "--medical", "--ratio", "1", "--out", str(tmp_path)])
    assert rc == 2
    assert "lesion_fraction: must be in (0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--medical", "--kind", "knee"])
