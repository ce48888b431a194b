"""An exponential moving average of a network's weights (the sampler of the GAN families).

Karras et al., ICLR 2018; Yazıcı et al., ICLR 2019: samples from the average of the generator's
recent weights are better than from its last ones. The decay warms up as ``(1 + t) / (10 + t)``
so the average is not dominated by the random initial weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """A frozen copy of ``net`` (``.net``) and how many updates it has seen (``updates``, a
    buffer, so a resumed run continues the same warm-up)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = copy.deepcopy(net).requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))

    def update(
        self,
        params: tuple[list[torch.Tensor], list[torch.Tensor]],
        max_decay: float,
        count: int | None,
        buffers: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None,
    ) -> int:
        """Move the averaged weights towards the trained ones; return the new update count.

        ``params`` (and ``buffers``, copied as they are) pair this copy's tensors with the
        trained network's, built once per fit. ``count`` is the count the caller keeps between
        steps; ``None`` reads it from the buffer (once, after a checkpoint was restored), so
        the step does not synchronise with a GPU to read it every time.
        """
        t = int(self.updates) if count is None else count
        decay = min(max_decay, (1 + t) / (10 + t))
        with torch.no_grad():
            torch._foreach_lerp_(*params, 1 - decay)
            if buffers is not None:
                torch._foreach_copy_(*buffers)
            self.updates += 1
        return t + 1
