"""Data-parallel fit: two gloo processes train the model one process trains on the same batches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from data_parallel_worker import tiny_data, tiny_model

from synthaug.errors import InvalidParameterError
from synthaug.generators import CVAE, DAGAN
from synthaug.nn._distributed import draw_rows, shard_bounds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_match_single_process_training(tmp_path, one_torch_thread):
    worker = Path(__file__).with_name("data_parallel_worker.py")
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "OMP_NUM_THREADS": "1",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(worker), str(tmp_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    single = tiny_model().set_params(verbose=False).fit(tiny_data())
    expected = single.modules_.state_dict()
    ranks = [torch.load(tmp_path / f"weights-{r}.pt") for r in range(2)]
    for name, value in expected.items():
        # the ranks hold the same weights, and they are single-process training's up to the
        # order of the floating point sums that average the gradients
        torch.testing.assert_close(ranks[0][name], ranks[1][name], rtol=0, atol=0)
        torch.testing.assert_close(ranks[0][name], value, rtol=1e-4, atol=1e-5)
    runs = [json.loads((tmp_path / f"run-{r}.json").read_text()) for r in range(2)]
    for run in runs:
        assert len(run["history"]) == 3
        for got, want in zip(run["history"], single.history_, strict=True):
            assert got.keys() == want.keys()
            for key in want:
                assert got[key] == pytest.approx(want[key], rel=1e-4)
    # rank 0 alone writes the checkpoint (every epoch here) and shows the progress bar
    assert runs[0]["writes"] == [1, 2, 3] and runs[1]["writes"] == []
    assert (tmp_path / "checkpoint" / "checkpoint.pt").is_file()
    assert "CVAE" in outputs[0][1] and "CVAE" not in outputs[1][1]


def test_shard_bounds_cover_the_batch():
    for n in (4, 5, 20, 21):
        parts = [shard_bounds(n, r, 3) for r in range(3)]
        assert [o for o, _ in parts] == [0, parts[0][1], parts[0][1] + parts[1][1]]
        assert (
            sum(c for _, c in parts) == n
            and max(c for _, c in parts) - min(c for _, c in parts) <= 1
        )


def test_draw_rows_outside_data_parallel_is_the_plain_draw():
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    got = draw_rows(5, lambda n: torch.randn((n, 2), generator=g1))
    torch.testing.assert_close(got, torch.randn((5, 2), generator=g2), rtol=0, atol=0)


def test_data_parallel_refusals(monkeypatch, tiny_images):
    monkeypatch.setattr("synthaug.generators._torch.init_data_parallel", lambda device: (0, 2))
    with pytest.raises(InvalidParameterError, match="does not train data-parallel"):
        DAGAN(epochs=1, verbose=False).fit(tiny_images)
    with pytest.raises(InvalidParameterError, match="batch_size >= 4"):
        CVAE(epochs=1, batch_size=3, verbose=False).fit(tiny_images)
