import json
import subprocess
import sys

import pytest

from synthaug.bench import format_table, run_demo, summarize
from synthaug.cli import main


def test_summarize_and_table():
    runs = [
        {
            "method": "none",
            "balanced_accuracy": 0.5,
            "macro_f1": 0.4,
            "minority_recall": 0.2,
            "augment_seconds": 0,
        },
        {
            "method": "none",
            "balanced_accuracy": 0.7,
            "macro_f1": 0.6,
            "minority_recall": 0.4,
            "augment_seconds": 0,
        },
    ]
    s = summarize(runs)
    assert s["none"]["balanced_accuracy"]["mean"] == pytest.approx(0.6)
    assert s["none"]["balanced_accuracy"]["std"] == pytest.approx(0.1414, abs=1e-4)
    table = format_table(s)
    assert "0.600 ± 0.141" in table


@pytest.mark.slow
def test_demo_end_to_end_tiny(tmp_path, small_digits):
    lines = []
    result = run_demo(
        tmp_path / "out",
        seeds=2,
        epochs=2,
        classifier_epochs=2,
        ratio=0.2,
        verbose=False,
        dataset=small_digits,
        echo=lines.append,
        test_size=0.5,
    )
    assert set(result["summary"]) == {"none", "random-oversampling", "classical", "cvae"}
    assert len(result["runs"]) == 8
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["summary"] == result["summary"]
    png = (tmp_path / "out" / "samples.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("balanced_accuracy" in line for line in lines)


def test_cli_demo_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--ratio", "3"])
    assert exc.value.code == 2
    assert "ratio" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_demo_subprocess(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "synthaug.cli",
            "demo",
            "--out",
            str(out),
            "--seeds",
            "1",
            "--epochs",
            "2",
            "--classifier-epochs",
            "1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "cvae" in proc.stdout and (out / "results.json").exists()


def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from synthaug.errors import InvalidParameterError

    def boom(*args, **kwargs):
        raise InvalidParameterError("bad thing; fix it")

    monkeypatch.setattr("synthaug.bench.run_demo", boom)
    assert main(["demo", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "synthaug: error: bad thing; fix it"
