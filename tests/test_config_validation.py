"""A benchmark config is checked against its data before any cell runs: the classes and counts
its settings name, the loader's parameters, the paths (read from the config's folder); and a
run in which no cell finished says why."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import shutil
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from synthaug.bench import METHODS, bundled_config, load_config, parse_config, run_bench
from synthaug.cli import main
from synthaug.data import DATASETS, save_image_folder, save_npz
from synthaug.errors import BenchmarkError, DataFileError, InvalidDataError, InvalidParameterError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
DIGITS = "labels 0-9 and names '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'"


def grid(dataset: str = 'name = "digits"', imbalance: str = "counts = [[5, 5, 5]]") -> str:
    """A classification grid's TOML with the given [dataset] and [imbalance] bodies."""
    return (
        f"seeds = 1\n[dataset]\n{dataset}\n[imbalance]\n{imbalance}\n"
        "[classifiers]\nlogreg = {}\n[methods]\nnone = {}\n"
    )


def config(**over):
    cfg = {
        "seeds": 1,
        "dataset": {"name": "digits"},
        "imbalance": {"minority_classes": [8, 9], "ratios": [0.1]},
        "split": {"test_size": 0.5},
        "classifiers": {"logreg": {"max_iter": 200}},
        "methods": ["none"],
    }
    cfg.update(over)
    return cfg


# -- classes and counts against the data ---------------------------------------------------------


def test_unknown_class_name_names_the_file_key_value_and_classes(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(grid(imbalance='minority_classes = [5, "cat"]\nratios = [0.1]'))
    with pytest.raises(InvalidParameterError) as info:
        load_config(path)
    assert str(info.value) == (
        f"imbalance.minority_classes: 'cat' is not a class of data set 'digits', which has "
        f"{DIGITS} (in {path})"
    )


@pytest.mark.parametrize(
    ("change", "where", "value"),
    [
        ({"imbalance": {"minority_classes": [9, 10], "ratios": [0.1]}}, "imbalance", "10"),
        ({"imbalance": {"minority_classes": [-1], "ratios": [0.1]}}, "imbalance", "-1"),
        (
            {"task": "anomaly", "imbalance": None, "anomaly": {"normal_classes": [0, 10]}},
            "anomaly",
            "10",
        ),
    ],
)
def test_out_of_range_label_is_refused(change, where, value):
    cfg = {k: v for k, v in config(**change).items() if v is not None}
    if cfg.get("task") == "anomaly":
        cfg.pop("classifiers")
        cfg["methods"] = ["pca"]
    with pytest.raises(InvalidParameterError) as info:
        parse_config(cfg)
    key = "minority_classes" if where == "imbalance" else "normal_classes"
    assert str(info.value) == (
        f"{where}.{key}: {value} is not a class of data set 'digits', which has {DIGITS}"
    )


def test_class_names_and_labels_of_the_data_are_accepted_as_written():
    # "9" is digits' name of label 9; the settings keep what the config wrote (cell ids).
    cfg = parse_config(config(imbalance={"minority_classes": [8, "9"], "ratios": [0.1]}))
    assert cfg.settings[0]["imbalance"]["minority_classes"] == [8, "9"]
    with pytest.raises(InvalidParameterError, match=r"^imbalance.minority_classes: a class"):
        parse_config(config(imbalance={"minority_classes": [9, "9"], "ratios": [0.1]}))


def test_count_list_of_the_wrong_length_is_refused(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(grid(imbalance="counts = [[40, 40, 40, 40, 40, 40, 40, 40, 40, 40], [5, 5]]"))
    with pytest.raises(InvalidParameterError) as info:
        load_config(path)
    assert str(info.value) == (
        f"imbalance.counts: [5, 5] has 2 counts; data set 'digits' has 10 classes ({DIGITS}): "
        f"give one count per class (in {path})"
    )


@pytest.mark.parametrize("task", ["classification", "tstr"])
def test_a_loader_value_it_refuses_fails_the_config(task):
    dataset = {"name": "phantoms", "n_per_class": 4, "size": 8}
    if task == "tstr":
        cfg = config(task=task, dataset=dataset, privacy={"epsilons": [float("inf")]})
        del cfg["imbalance"]
        cfg["methods"] = ["real"]
    else:
        cfg = config(dataset=dataset, imbalance={"minority_classes": ["lesion"], "ratios": [0.5]})
    with pytest.raises(InvalidParameterError, match=r"^dataset: size must be an integer >= 16"):
        parse_config(cfg)


def test_lesion_task_refuses_the_loader_parameters_it_sets():
    cfg = bundled_config("medical_demo")
    cfg["dataset"]["n_per_class"] = 10
    with pytest.raises(InvalidParameterError, match=r"^dataset.n_per_class: set by task 'lesion'"):
        parse_config(cfg)


def test_a_grid_without_cells_is_refused():
    # Logistic regression has no sampler: balanced-online has no cell with it.
    with pytest.raises(InvalidParameterError, match=r"^methods: no cell to run"):
        parse_config(config(methods=["balanced-online"]))


# -- loader parameters and paths -----------------------------------------------------------------


def test_unknown_loader_key_lists_what_the_loader_takes(tmp_path):
    with pytest.raises(InvalidParameterError) as info:
        parse_config(config(dataset={"name": "dicom", "path": str(tmp_path)}))
    assert str(info.value) == (
        "dataset.path: unknown parameter; loader 'dicom' takes root, labels, size, window, "
        "on_error, classes"
    )
    with pytest.raises(InvalidParameterError, match=r"^dataset.root: .*loader 'digits' takes no"):
        parse_config(config(dataset={"name": "digits", "root": "x"}))
    with pytest.raises(InvalidParameterError, match=r"^dataset.root: missing"):
        parse_config(config(dataset={"name": "dicom"}))


def _dicom_folder(root: Path) -> None:
    for cls, name in (("ct", "CT_small.dcm"), ("mr", "MR_small.dcm")):
        (root / cls).mkdir(parents=True)
        shutil.copy(get_testdata_file(name), root / cls)


@pytest.mark.parametrize(
    ("loader", "key", "written", "extra"),
    [
        ("npz", "path", "data/tiny.npz", ""),
        ("image-folder", "root", "data/images", ""),
        ("dicom", "root", "data/scans", 'labels = "folders"\nsize = 16\npool = "all"'),
    ],
)
def test_relative_paths_are_read_from_the_config_folder(
    tiny_images, tmp_path, monkeypatch, loader, key, written, extra
):
    folder = tmp_path / "configs"
    data = folder / written
    if loader == "npz":
        data.parent.mkdir(parents=True)
        save_npz(tiny_images, data)
    elif loader == "image-folder":
        save_image_folder(tiny_images, data)
    else:
        _dicom_folder(data)
    minority = '"mr"' if loader == "dicom" else '"c"'
    (folder / "grid.toml").write_text(
        grid(
            dataset=f'name = "{loader}"\n{key} = "{written}"\n{extra}',
            imbalance=f"minority_classes = [{minority}]\nratios = [0.5]",
        )
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config("../configs/grid.toml")
    assert cfg.dataset["params"][key] == str(data)
    assert cfg.cells()[0].dataset["params"][key] == str(data)
    if loader == "dicom":
        assert cfg.dataset["params"]["labels"] == "folders"  # a keyword, not a path
    # Resuming from another folder finds the same cells.
    monkeypatch.chdir(tmp_path)
    again = load_config("configs/grid.toml")
    assert again.hash == cfg.hash
    assert [c.cell_id for c in again.cells()] == [c.cell_id for c in cfg.cells()]


def test_dicom_labels_csv_is_read_from_the_config_folder(tmp_path, monkeypatch):
    _dicom_folder(tmp_path / "scans")
    (tmp_path / "labels.csv").write_text("file,label\nct/CT_small.dcm,a\nmr/MR_small.dcm,b\n")
    (tmp_path / "grid.toml").write_text(
        grid(
            dataset='name = "dicom"\nroot = "scans"\nlabels = "labels.csv"\nsize = 16\npool = "all"',
            imbalance='minority_classes = ["b"]\nratios = [0.5]',
        )
    )
    monkeypatch.chdir(tmp_path / "scans")
    cfg = load_config(tmp_path / "grid.toml")
    assert cfg.dataset["params"]["labels"] == str(tmp_path / "labels.csv")


def test_data_that_cannot_be_used_fails_the_config_under_its_key(tmp_path):
    _dicom_folder(tmp_path / "scans")  # one file per class: too few to carve the pools
    cfg = config(
        dataset={"name": "dicom", "root": str(tmp_path / "scans"), "size": 16},
        imbalance={"minority_classes": ["mr"], "ratios": [0.5]},
    )
    with pytest.raises(
        InvalidDataError, match=r"^dataset: class\(es\) \['ct', 'mr'\] have a single"
    ):
        parse_config(cfg)


def test_a_dict_config_reads_relative_paths_from_the_current_folder(
    tiny_images, tmp_path, monkeypatch
):
    save_npz(tiny_images, tmp_path / "tiny.npz")
    monkeypatch.chdir(tmp_path)
    cfg = parse_config(
        config(dataset={"name": "npz", "path": "tiny.npz"}, imbalance={"counts": [[5, 5, 3]]})
    )
    assert cfg.dataset["params"]["path"] == str(tmp_path / "tiny.npz")


def test_missing_path_names_the_resolved_path_and_the_config(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "grid.toml"
    path.write_text(grid(dataset='name = "npz"\npath = "../data/absent.npz"'))
    monkeypatch.chdir(folder)
    with pytest.raises(DataFileError) as info:
        load_config("grid.toml")
    assert str(info.value) == (
        f"dataset.path: no file or folder {tmp_path / 'data' / 'absent.npz'} (relative paths "
        f"are read from the config's folder, {folder}); give its path (in grid.toml)"
    )
    with pytest.raises(DataFileError, match="current folder"):
        parse_config(config(dataset={"name": "image-folder", "root": "absent"}))


def test_the_loader_table_of_the_docs_matches_the_loaders():
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    table = text[text.index("| name | parameters (default) |") :].split("\n\n")[0]
    documented = {}
    for row in table.splitlines()[2:]:
        name, params = (cell.strip() for cell in row.strip("|").split("|")[:2])
        documented[name.strip("`")] = dict(re.findall(r"`(\w+)` \(([^)]*)\)", params))
    ours = [n for n in DATASETS.list() if DATASETS.get(n).__module__.startswith("synthaug.")]
    assert sorted(documented) == ours
    for name, params in documented.items():
        signature = inspect.signature(DATASETS.get(name)).parameters
        accepted = [p for p in signature if p != "return_masks"]  # set by tasks only
        assert list(params) == accepted, name
        required = [p for p in accepted if signature[p].default is inspect.Parameter.empty]
        assert [p for p, default in params.items() if default == "required"] == required, name


# -- the shipped configs -------------------------------------------------------------------------

SHIPPED = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").rglob("*.toml"))


@pytest.mark.parametrize("quick", [False, True])
@pytest.mark.parametrize("path", SHIPPED)
def test_every_shipped_config_loads(path, quick, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert load_config(path, quick=quick).cells()


@pytest.mark.parametrize("name", ["digits_demo", "medical_demo"])
def test_bundled_configs_load(name):
    assert parse_config(bundled_config(name)).cells()


def test_committed_results_keep_their_cell_ids(monkeypatch):
    # Checking a config against its data records nothing new: the committed runs still match.
    monkeypatch.chdir(ROOT)
    metas = sorted((ROOT / "benchmarks" / "results").rglob("config.json"))
    assert metas
    for meta_path in metas:
        meta = json.loads(meta_path.read_text())
        tune = meta["config"]["dataset"]["pool"] == "development"
        cfg = load_config(meta["source"], quick=meta["config"]["quick"], tune=tune)
        if cfg.split == {"protocol": "fresh-draws"} and meta["config"]["split"] != cfg.split:
            # Run before protocols were named, when the lesion task (fresh phantoms per seed,
            # nothing split) recorded the unused default test size: that is the only change.
            assert meta["config"]["split"] == {"test_size": 0.4}, meta_path
            cfg = dataclasses.replace(cfg, split=meta["config"]["split"])
        assert cfg.hash == meta["config_hash"], meta_path
        assert sorted(c.cell_id for c in cfg.cells()) == meta["cell_ids"], meta_path


# -- a run in which no cell finished -------------------------------------------------------------


@METHODS.register("test-config-boom")
def _boom(train, *, seed, device):
    raise RuntimeError("boom")


@METHODS.register("test-config-per-seed")
def _per_seed(train, *, seed, device):
    raise ValueError(f"bad seed {seed}")


def test_when_no_cell_finishes_the_message_says_why(tmp_path):
    cfg = parse_config(config(seeds=4, methods=["test-config-boom", "test-config-per-seed"]))
    with pytest.raises(BenchmarkError) as info:
        run_bench(cfg, tmp_path, progress=False, echo=lambda _: None)
    assert str(info.value) == (
        "all 8 cells to run failed: RuntimeError: boom (4 cells); ValueError: bad seed 0 "
        "(1 cell); ValueError: bad seed 1 (1 cell); and 2 other errors (details in "
        f"{tmp_path / 'errors.jsonl'}); fix that, then run the command again"
    )
    assert not (tmp_path / "report.md").exists()  # nothing to report: no misleading error


def test_when_no_new_cell_finishes_the_earlier_ones_are_still_reported(tmp_path, capsys):
    run_bench(parse_config(config()), tmp_path, progress=False, echo=lambda _: None)
    (tmp_path / "report.md").unlink()
    # The same grid with a method that fails: only its cell is to run.
    path = tmp_path / "grid.toml"
    path.write_text(
        'seeds = 1\n[dataset]\nname = "digits"\n'
        "[imbalance]\nminority_classes = [8, 9]\nratios = [0.1]\n[split]\ntest_size = 0.5\n"
        "[classifiers]\nlogreg = { max_iter = 200 }\n"
        '[methods]\nnone = {}\n"test-config-boom" = {}\n'
    )
    assert main(["bench", str(path), "--out", str(tmp_path), "--quiet"]) == 1
    # The CLI's last line says why the run failed, not only that a rerun retries it.
    assert capsys.readouterr().err.splitlines()[-1] == (
        "synthaug: error: the one cell to run failed: RuntimeError: boom (1 cell) (details in "
        f"{tmp_path / 'errors.jsonl'}); fix that, then run the command again"
    )
    assert (tmp_path / "report.md").exists()  # from the cell that finished before
