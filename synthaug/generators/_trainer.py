"""One training loop for every generator: batching on the device, progress, history, NaN stop."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from tqdm.auto import tqdm

from synthaug.errors import TrainingDivergedError

StepFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    params: Iterable[torch.nn.Parameter] | None = None,
    grad_clip: float | None = None,
) -> None:
    """Zero the gradients, back-propagate ``loss``, clip (when asked) and step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None and params is not None:
        torch.nn.utils.clip_grad_norm_(list(params), grad_clip)
    optimizer.step()


class Trainer:
    """Runs ``epochs`` passes of a model's ``step`` over tensors already on the device.

    The data never leaves the device: each epoch draws a permutation there with the given
    ``torch.Generator`` and slices mini-batches from it, so there is no per-batch host-device
    copy and no per-sample Python. Losses are summed on the device and read once per epoch.

    Parameters
    ----------
    epochs : int
    batch_size : int
    verbose : bool
        Show a tqdm progress bar over epochs.
    desc : str
        Label of the progress bar.
    """

    def __init__(
        self, *, epochs: int, batch_size: int, verbose: bool = True, desc: str = "training"
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.verbose = verbose
        self.desc = desc

    def run(
        self,
        step: StepFn,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator,
        history: list[dict[str, float]],
    ) -> list[dict[str, float]]:
        """Train; append one ``{"epoch": i, <loss>: value, ...}`` dict per epoch to ``history``."""
        n = len(x)
        bar = tqdm(
            range(self.epochs), desc=self.desc, unit="epoch", disable=not self.verbose, leave=False
        )
        for epoch in bar:
            perm = torch.randperm(n, generator=generator, device=x.device)
            sums: dict[str, torch.Tensor] = {}
            seen = 0
            for start in range(0, n, self.batch_size):
                idx = perm[start : start + self.batch_size]
                # A lone trailing sample makes batch statistics undefined; it is seen next epoch.
                if len(idx) < 2 <= n:
                    continue
                losses = step(x[idx], y[idx])
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + value.detach() * len(idx)
                seen += len(idx)
            keys = list(sums)
            values = (torch.stack([sums[k] for k in keys]) / max(seen, 1)).tolist() if keys else []
            record = {"epoch": float(epoch + 1), **dict(zip(keys, values, strict=True))}
            bad = [k for k, v in zip(keys, values, strict=True) if not math.isfinite(v)]
            if bad:
                raise TrainingDivergedError(
                    f"training diverged at epoch {epoch + 1}: non-finite {', '.join(bad)}; lower lr, "
                    f"set grad_clip, or check the data for extreme values"
                )
            history.append(record)
            if self.verbose:
                bar.set_postfix(
                    {k: f"{v:.4g}" for k, v in zip(keys, values, strict=True)}, refresh=False
                )
        bar.close()
        return history
