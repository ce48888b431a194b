"""One rank of the data-parallel test (tests/test_data_parallel.py runs two, as torchrun would).

Reads RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT from the environment, fits the tiny CVAE
the test describes, and writes this rank's weights, history and checkpoint writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from synthaug.data import load_digits
from synthaug.generators import CVAE
from synthaug.nn import Trainer


def tiny_data():
    digits = load_digits()
    idx = torch.cat([torch.nonzero(digits.labels == c).flatten()[:6] for c in range(10)])
    return digits.subset(idx)


def tiny_model(checkpoint_dir: str | None = None) -> CVAE:
    return CVAE(
        epochs=3,
        batch_size=20,
        hidden_dims=(16,),
        latent_dim=3,
        seed=7,
        device="cpu",
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=1,
    )


class _Terminal:
    """This rank's stderr, taken for a terminal as torchrun's would be when run from one:
    progress bars are drawn only on a terminal, and the test checks which rank draws one."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return True

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main(out: str) -> None:
    torch.set_num_threads(1)
    sys.stderr = _Terminal(sys.stderr)
    out_dir = Path(out)
    writes: list[int] = []
    save = Trainer._save

    def counted_save(self, state, *args):
        writes.append(state.rounds)
        return save(self, state, *args)

    Trainer._save = counted_save
    model = tiny_model(str(out_dir / "checkpoint")).fit(tiny_data())
    rank = torch.distributed.get_rank()
    torch.save(model.modules_.state_dict(), out_dir / f"weights-{rank}.pt")
    (out_dir / f"run-{rank}.json").write_text(
        json.dumps({"history": model.history_, "writes": writes})
    )
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
