"""The medical demo: phantoms through DICOM, a generator, and the lesion classifier table."""

import json

import numpy as np
import pydicom
import pytest

from synthaug.bench import (
    format_medical_table,
    lesion_scores,
    medical_generator_name,
    run_medical_demo,
)
from synthaug.cli import main
from synthaug.errors import InvalidParameterError


def test_lesion_scores_by_hand():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.2, 0.9, 0.4])
    s = lesion_scores(y, p)
    assert s["lesion_recall"] == pytest.approx(0.5)
    assert s["specificity"] == pytest.approx(2 / 3)
    assert s["balanced_accuracy"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert s["auroc"] == pytest.approx(5 / 6)  # 5 of the 6 (lesion, normal) pairs ranked right


def test_generator_is_resolved_by_registry_name():
    from synthaug.generators import list_generators

    assert medical_generator_name() in list_generators()


@pytest.mark.slow
def test_medical_demo_end_to_end_tiny(tmp_path):
    lines = []
    result = run_medical_demo(
        tmp_path / "out",
        size=16,
        classifier_size=8,
        n_train=40,
        n_test_per_class=6,
        epochs=1,
        classifier_epochs=1,
        generator="cvae",
        verbose=False,
        echo=lines.append,
    )
    assert set(result["summary"]) == {"none", "classical", "synthetic", "synthetic+classical"}
    assert result["config"]["train"] == {"normal": 38, "lesion": 2}
    assert result["dicom"]["max_round_trip_error"] <= 0.5 / 65535 + 1e-6
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["summary"] == result["summary"]
    assert (tmp_path / "out" / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    synthetic = sorted((tmp_path / "out" / "dicom" / "synthetic").rglob("*.dcm"))
    assert len(synthetic) == 36  # the lesion class topped up from 2 to 38
    ds = pydicom.dcmread(synthetic[0])
    assert "SYNTHETIC" in ds.SeriesDescription and ds.Modality == "CT"
    assert len(list((tmp_path / "out" / "dicom" / "real").rglob("*.dcm"))) == 40 + 12
    assert any("lesion_recall" in line for line in lines)
    table = format_medical_table(result["summary"])
    assert "synthetic+classical" in table and "auroc" in table


def test_medical_demo_bad_parameters(tmp_path):
    with pytest.raises(InvalidParameterError, match="kind"):
        run_medical_demo(tmp_path, kind="knee")
    with pytest.raises(InvalidParameterError, match="lesion_fraction"):
        run_medical_demo(tmp_path, lesion_fraction=1.0)
    with pytest.raises(InvalidParameterError, match="classifier_size"):
        run_medical_demo(tmp_path, size=16, classifier_size=32)
    with pytest.raises(InvalidParameterError, match="epochs"):
        run_medical_demo(tmp_path, epochs=0)
    with pytest.raises(InvalidParameterError, match="unknown generator"):
        run_medical_demo(tmp_path, generator="nope")


def test_cli_medical_flag_is_parsed_and_errors_are_one_line(capsys, tmp_path):
    rc = main(["demo", "--medical", "--ratio", "1", "--out", str(tmp_path)])
    assert rc == 1
    assert "lesion_fraction must be in (0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--medical", "--kind", "knee"])
