"""Small, seeded training loops for the chapters' experiments."""

from __future__ import annotations

from typing import Callable, List, Tuple

import torch
from torch import Tensor, nn

from .recurrent import Cell, Recurrent, check_positive_int

__all__ = ["FinalStateRegressor", "train_regression"]


class FinalStateRegressor(nn.Module):
    """A recurrent cell followed by a linear read-out of its last output.

    ``y = V o_T + c``: the question "what does the state still know after T
    steps?" asked with the most forgiving decoder, a learned affine map.

    Inputs: ``x`` ``(T, B, input_size)``. Output: ``(B, target_size)``.
    """

    def __init__(self, cell: Cell, target_size: int):
        super().__init__()
        self.recurrent = Recurrent(cell)
        self.readout = nn.Linear(cell.output_size, target_size)

    def forward(self, x: Tensor) -> Tensor:
        outputs, _ = self.recurrent(x)  # (T, B, n)
        return self.readout(outputs[-1])  # (B, target_size)


def train_regression(
    model: nn.Module,
    make_batch: Callable[[torch.Generator], Tuple[Tensor, Tensor]],
    *,
    steps: int,
    lr: float = 1e-2,
    seed: int = 0,
    clip_norm: float | None = 1.0,
    before_step: Callable[[int], None] | None = None,
) -> List[float]:
    """Fit ``model(x) ≈ target`` by Adam on the mean squared error.

    ``make_batch(generator)`` draws a fresh ``(x, target)`` batch each step
    from a generator seeded with ``seed``, so a run is reproducible.
    Gradients are clipped to norm ``clip_norm`` (``None`` disables
    clipping). ``before_step(k)``, if given, is called before step
    ``k = 0, ..., steps - 1`` and once more with ``k = steps`` after the
    last, e.g. to measure the model as it trains. Returns the training loss
    of every step.
    """
    check_positive_int("train_regression", "steps", steps)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for k in range(steps):
        if before_step is not None:
            before_step(k)
        x, target = make_batch(generator)
        loss = nn.functional.mse_loss(model(x), target)
        optimiser.zero_grad()
        loss.backward()
        if clip_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimiser.step()
        losses.append(loss.item())
    if before_step is not None:
        before_step(steps)
    return losses
