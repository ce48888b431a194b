"""The digits demo: a bundled harness config, its table, and the command line."""

import os
import subprocess
import sys

import pytest

from synthaug.bench import bundled_config, parse_config, read_results
from synthaug.cli import main
from synthaug.cli._demo import digits_config, format_table, medical_config, run_demo, summarize
from synthaug.data import DATASETS


def record(method, seed, ba, f1, minority, augment):
    return {
        "cell": {"method": method},
        "seed": seed,
        "metrics": {"balanced_accuracy": ba, "macro_f1": f1, "minority_recall": minority},
        "timings": {"augment": augment},
    }


def test_summarize_and_table():
    records = [record("none", 0, 0.5, 0.4, 0.2, 0.0), record("none", 1, 0.7, 0.6, 0.4, 0.0)]
    columns = ("balanced_accuracy", "macro_f1", "minority_recall")
    s = summarize(records, ["none"], columns)
    assert s["none"]["balanced_accuracy"]["mean"] == pytest.approx(0.6)
    assert s["none"]["balanced_accuracy"]["std"] == pytest.approx(0.1414, abs=1e-4)
    table = format_table(s)
    assert "0.600 ± 0.141" in table


def test_digits_config_takes_the_demo_options():
    config = digits_config(seeds=2, ratio=0.2, epochs=7, classifier_steps=3)
    assert config.seeds == [0, 1] and config.task == "classification"
    assert config.settings[0]["imbalance"]["ratio"] == 0.2
    assert config.methods["cvae"] == {"epochs": 7} and config.classifiers["resnet"] == {"steps": 3}
    assert list(config.methods) == [
        "none",
        "random-oversampling",
        "classical",
        "logit-adjusted",
        "balanced-online",
        "cvae",
        "cvae+balanced-online",
    ]
    # The defaults are the bundled file's: what `make demo` runs.
    default = digits_config()
    assert default.seeds == [0, 1, 2] and default.methods["cvae"] == {"epochs": 150}


@pytest.mark.slow
def test_demo_end_to_end_tiny(tmp_path, small_digits):
    DATASETS.register("test-small-digits", lambda: small_digits)
    data = bundled_config("digits_demo")
    data.update(seeds=2, dataset={"name": "test-small-digits"}, split={"test_size": 0.5})
    data["imbalance"]["ratios"] = [0.2]
    data["methods"]["cvae"]["epochs"] = 2
    data["classifiers"]["resnet"]["steps"] = 2
    data["methods"]["cvae+balanced-online"]["cvae"]["epochs"] = 2
    lines = []
    table = run_demo(
        parse_config(data), tmp_path / "out", jobs=1, progress=False, echo=lines.append
    )
    for method in ("none", "random-oversampling", "classical", "logit-adjusted", "cvae"):
        assert f"\n{method} " in table
    assert len(read_results(tmp_path / "out" / "results.jsonl")) == 14
    assert (tmp_path / "out" / "report.md").read_text().startswith("# Benchmark report")
    png = (tmp_path / "out" / "plots" / "samples_ratio=0.2_cvae.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("balanced_accuracy" in line for line in lines)
    # A rerun finds every cell done and prints the same table.
    again = run_demo(
        parse_config(data), tmp_path / "out", jobs=1, progress=False, echo=lines.append
    )
    assert again == table and any("14 already done, 0 to run" in line for line in lines)


@pytest.mark.parametrize(("option", "value"), [("--ratio", "3"), ("--jobs", "0"), ("--jobs", "x")])
def test_cli_demo_rejects_bad_arguments(option, value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", option, value])
    assert exc.value.code == 2
    assert option.lstrip("-") in capsys.readouterr().err


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
            "--classifier-steps",
            "1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "cvae" in proc.stdout and (out / "results.jsonl").exists()


@pytest.mark.parametrize(
    "error, code",
    [
        ("InvalidParameterError", 2),
        ("DataFileError", 2),
        ("CheckpointError", 2),
        ("InvalidDataError", 2),
        ("MissingDependencyError", 2),
        ("TrainingDivergedError", 1),
        ("BenchmarkError", 1),
    ],
)
def test_exit_code_says_whether_the_input_or_the_work_failed(
    error, code, tmp_path, monkeypatch, capsys
):
    import synthaug.errors

    def boom(*args, **kwargs):
        raise getattr(synthaug.errors, error)("it went wrong")

    monkeypatch.setattr("synthaug.cli._demo.run_demo", boom)
    assert main(["demo", "--out", str(tmp_path)]) == code
    assert capsys.readouterr().err == "synthaug: error: it went wrong\n"


def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from synthaug.errors import InvalidParameterError

    def boom(*args, **kwargs):
        raise InvalidParameterError("bad thing; fix it")

    monkeypatch.setattr("synthaug.cli._demo.run_demo", boom)
    assert main(["demo", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "synthaug: error: bad thing; fix it"


def test_cli_demo_passes_jobs_to_the_harness(tmp_path, monkeypatch):
    seen = {}

    def record(config, out, **kwargs):
        seen.update(kwargs, out=out)
        return ""

    monkeypatch.setattr("synthaug.cli._demo.run_demo", record)
    assert main(["demo", "--jobs", "3", "--out", str(tmp_path), "--quiet"]) == 0
    assert seen["jobs"] == 3 and seen["progress"] is False
    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert seen["jobs"] is None  # run_demo picks the CPU cores


@pytest.mark.parametrize(
    ("medical", "jobs", "expected"),
    [
        (False, None, (min(os.cpu_count() or 1, 8), 1)),
        (True, None, (1, None)),  # one CGAN fit is most of the work: one cell, every core
        (False, 3, (3, 1)),
        (True, 1, (1, None)),
    ],
)
def test_demo_picks_jobs_and_threads(medical, jobs, expected, tmp_path, monkeypatch):
    seen = {}

    class Stop(Exception):
        pass

    def fake_run_bench(config, out, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr("synthaug.cli._demo.run_bench", fake_run_bench)
    config = medical_config() if medical else digits_config()
    with pytest.raises(Stop):
        run_demo(config, tmp_path, jobs=jobs, progress=False)
    assert (seen["jobs"], seen["threads"]) == expected
