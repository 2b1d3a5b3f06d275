"""Synthetic sequence tasks, generated in code and seeded.

Each task returns time-major tensors ``(T, B, ·)`` like :class:`~lstmlib.Recurrent`
expects, and states its chance-level baseline so that a chapter can say how far
a trained model is from guessing.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from .recurrent import check_positive_int

__all__ = ["delayed_recall", "DELAYED_RECALL_BASELINE_MSE"]

#: Mean squared error of always answering 0 (the mean) on :func:`delayed_recall`:
#: the variance of U(-1, 1), 1/3.
DELAYED_RECALL_BASELINE_MSE = 1.0 / 3.0


def delayed_recall(
    batch_size: int,
    delay: int,
    size: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tuple[Tensor, Tensor]:
    """Show a vector once, then ask for it back ``delay`` steps later.

    The first input is ``v ~ U(-1, 1)^size``; the following ``delay - 1``
    inputs are zero. The target is ``v`` itself, to be read off the state
    after the last step. A model that carries its state unchanged solves it
    exactly for every delay; one that morphs its state loses part of ``v``
    at every step.

    Returns:
        x: ``(delay, batch_size, size)``.
        target: ``(batch_size, size)``.
    """
    for name, value in (("batch_size", batch_size), ("delay", delay),
                        ("size", size)):
        check_positive_int("delayed_recall", name, value)
    v = torch.rand(batch_size, size, generator=generator, dtype=dtype) * 2 - 1
    x = torch.zeros(delay, batch_size, size, dtype=dtype)
    x[0] = v
    return x, v
