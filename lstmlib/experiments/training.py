"""Small, seeded training loops for the chapters' experiments.

Models: :class:`FinalStateRegressor` and :class:`FinalStateClassifier`
read the last output of a recurrent cell; :class:`PerStepClassifier`
reads every output. :func:`train_model` fits any of them by Adam on a
given loss; :func:`train_regression` is it with the mean squared error.
:mod:`lstmlib.experiments.long_range` uses them to train every cell of the book on
the long-range tasks (Part III, "Long-range memory").
"""

from __future__ import annotations

from typing import Callable, List, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..cells.recurrent import Cell, Recurrent
from .._checks import check_finite_real, check_positive_int
from ..seeds import seed_or_base

__all__ = ["FinalStateRegressor", "FinalStateClassifier",
           "PerStepClassifier", "per_step_cross_entropy", "train_model",
           "train_regression"]


def _as_inputs(owner: str, cell: Cell, x: Tensor) -> Tensor:
    """``x`` as ``(T, B, input_size)`` floats: symbol ids ``(T, B)``
    (an integer tensor) are one-hot encoded to ``input_size`` channels."""
    if isinstance(x, Tensor) and not x.is_floating_point():
        if x.dim() != 2:
            raise ValueError(f"{owner}: expected symbol ids of shape (T, B),"
                             f" got shape {tuple(x.shape)}")
        if x.min() < 0 or x.max() >= cell.input_size:
            raise ValueError(f"{owner}: expected symbol ids in "
                             f"[0, {cell.input_size}), got values in "
                             f"[{int(x.min())}, {int(x.max())}]")
        ref = cell.reference_tensor()
        return F.one_hot(x, cell.input_size).to(ref.dtype)  # (T, B, m)
    return x


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


class FinalStateClassifier(FinalStateRegressor):
    """Class scores from the last output: logits ``z = V o_T + c``.

    A :class:`FinalStateRegressor` with ``num_classes`` outputs that also
    accepts symbol ids, one-hot encoding them to ``input_size`` channels;
    train it with ``F.cross_entropy`` (softmax over the C scores).

    Inputs: ``x`` ``(T, B, input_size)`` floats, or ``(T, B)`` integer
    symbol ids. Output: ``(B, num_classes)`` logits.
    """

    def __init__(self, cell: Cell, num_classes: int):
        check_positive_int("FinalStateClassifier", "num_classes", num_classes)
        super().__init__(cell, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        cell = self.recurrent.cell
        return super().forward(_as_inputs("FinalStateClassifier", cell, x))


class PerStepClassifier(nn.Module):
    """A recurrent cell with a linear read-out at every step: logits
    ``z_t = V o_t + c`` for ``t = 1, ..., T``, one prediction per step (the
    copy task answers at every step). Train it with
    :func:`per_step_cross_entropy`.

    Inputs: ``x`` ``(T, B, input_size)`` floats, or ``(T, B)`` integer
    symbol ids, one-hot encoded to ``input_size`` channels.
    Output: ``(T, B, num_classes)`` logits.
    """

    def __init__(self, cell: Cell, num_classes: int):
        super().__init__()
        check_positive_int("PerStepClassifier", "num_classes", num_classes)
        self.recurrent = Recurrent(cell)
        self.readout = nn.Linear(cell.output_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = _as_inputs("PerStepClassifier", self.recurrent.cell, x)
        outputs, _ = self.recurrent(x)  # (T, B, n)
        return self.readout(outputs)  # (T, B, num_classes)


def per_step_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy (nats) averaged over every step and sequence:
    ``-(1/TB) Σ_t Σ_b log softmax(z_t,b)[target_t,b]``.

    ``logits`` ``(T, B, C)``, ``target`` ``(T, B)`` class ids.
    """
    if logits.dim() != 3 or tuple(target.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"per_step_cross_entropy: expected logits (T, B, C)"
                         f" and target (T, B), got {tuple(logits.shape)} and"
                         f" {tuple(target.shape)}")
    return F.cross_entropy(logits.flatten(0, 1), target.flatten())


def train_model(
    model: nn.Module,
    make_batch: Callable[[torch.Generator], Tuple[Tensor, Tensor]],
    loss: Callable[[Tensor, Tensor], Tensor],
    *,
    steps: int,
    lr: float = 1e-2,
    seed: int | None = None,
    clip_norm: float | None = 1.0,
    before_step: Callable[[int], None] | None = None,
    stop_below: float | None = None,
) -> List[float]:
    """Fit ``model`` by Adam on ``loss(model(x), target)``.

    ``make_batch(generator)`` draws a fresh ``(x, target)`` batch each step
    from a generator seeded with ``seed`` (default: the base seed of
    :mod:`lstmlib.seeds`), so a run is reproducible.
    Gradients are clipped to norm ``clip_norm`` (``None`` disables
    clipping). ``before_step(k)``, if given, is called before step
    ``k = 0, 1, ...`` and once more after the last step with ``k`` the
    number of steps taken, e.g. to measure the model as it trains. With
    ``stop_below``, training stops early once the mean loss of the last
    10 steps is below it. Returns the training loss of every step taken.
    """
    check_positive_int("train_model", "steps", steps)
    if not callable(loss):
        raise TypeError(f"train_model: expected a callable loss(output, "
                        f"target), got {type(loss).__name__}")
    if stop_below is not None:
        check_finite_real("train_model", "stop_below", stop_below)
    generator = torch.Generator().manual_seed(
        seed_or_base(seed, "train_model"))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for k in range(steps):
        if before_step is not None:
            before_step(k)
        x, target = make_batch(generator)
        value = loss(model(x), target)
        optimiser.zero_grad()
        value.backward()
        if clip_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimiser.step()
        losses.append(value.item())
        if stop_below is not None and len(losses) >= 10 \
                and sum(losses[-10:]) / 10 < stop_below:
            break
    if before_step is not None:
        before_step(len(losses))
    return losses


def train_regression(
    model: nn.Module,
    make_batch: Callable[[torch.Generator], Tuple[Tensor, Tensor]],
    *,
    steps: int,
    lr: float = 1e-2,
    seed: int | None = None,
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
    of every step. This is :func:`train_model` with ``F.mse_loss``.
    """
    check_positive_int("train_regression", "steps", steps)
    return train_model(model, make_batch, F.mse_loss, steps=steps, lr=lr,
                       seed=seed, clip_norm=clip_norm,
                       before_step=before_step)
