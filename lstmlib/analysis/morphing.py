"""Morphed or vanished: is a stored vector still in the state, and where?
(Part I, "The vanilla RNN").

A cell is shown ``v ~ U(-1, 1)^m`` at step 1 and zeros afterwards
(:func:`lstmlib.experiments.tasks.delayed_recall`); its weights are fixed.
After step k its state is ``s_k(v)``, shape ``(n,)``. Two affine
read-outs ``v̂ = R [s; 1]`` (R of shape ``(m, n + 1)``, fitted by least
squares) ask two different questions of that state:

* **refitted**: ``R_k``, fitted on states after step k. Its error says
  whether v can still be read *linearly* from ``s_k`` at all. When even
  ``R_k`` does no better than guessing the mean (mean squared error
  ``1/3``), the information has vanished, as far as a linear read-out can
  tell.
* **fixed**: ``R_1``, fitted at the first delay and applied at every
  later one: is v still *where it was*? When ``R_k`` recovers v and
  ``R_1`` does not, the information has morphed: it is still in the
  state, moved where a read-out that expects it at its old place does
  not look.

A third number says whether any read-out, linear or not, could still
succeed: how much the state depends on v at all, the largest distance of
a state coordinate from its mean over the batch. When it is at the level
of rounding, the states of different inputs are (nearly) the same
numbers, and nothing can tell the inputs apart.

>>> import torch
>>> from lstmlib.cells.vanilla import VanillaRNNCell
>>> cell = VanillaRNNCell(2, 4, nonlinearity="relu")   # holds (v, -v)+
>>> with torch.no_grad():
...     _ = cell.W.copy_(torch.eye(4))
...     _ = cell.U.copy_(torch.cat([torch.eye(2), -torch.eye(2)]))
...     _ = cell.b.zero_()
>>> found = recall_readout_errors(cell, [1, 5, 50], generator_offset=0)
>>> [round(e, 12) for e in found.refitted], [round(e, 12) for e in found.fixed]
([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
from torch import Tensor

from .._checks import check_positive_int, describe
from ..cells.recurrent import Recurrent
from ..experiments.tasks import delayed_recall
from ..seeds import seed

__all__ = ["fit_affine_readout", "apply_affine_readout", "ReadoutErrors",
           "recall_readout_errors"]


def _with_ones(states: Tensor) -> Tensor:
    """``[s; 1]`` for every row of ``states`` ``(B, n)``, in float64."""
    states = states.to(torch.float64)
    return torch.cat([states, states.new_ones(len(states), 1)], dim=1)


def fit_affine_readout(states: Tensor, targets: Tensor) -> Tensor:
    """The least-squares affine read-out from ``states`` ``(B, n)`` to
    ``targets`` ``(B, m)``: ``R`` ``(n + 1, m)`` minimising
    ``‖[s; 1]ᵀ R - v‖²`` summed over the batch, in float64
    (``torch.linalg.lstsq``; the minimum-norm solution when the states do
    not span their space)."""
    if states.dim() != 2 or targets.dim() != 2 \
            or len(states) != len(targets):
        raise ValueError(f"fit_affine_readout: expected states (B, n) and "
                         f"targets (B, m) with the same B, got "
                         f"{describe(states)} and {describe(targets)}")
    A = _with_ones(states)                                   # (B, n + 1)
    # gelsd (SVD) copes with columns that are constant or repeat, as the
    # states of a cell that has forgotten are; the CPU driver only
    driver = "gelsd" if A.device.type == "cpu" else None
    return torch.linalg.lstsq(A, targets.to(torch.float64),
                              driver=driver).solution


def apply_affine_readout(readout: Tensor, states: Tensor) -> Tensor:
    """``[s; 1]ᵀ R`` for every row of ``states`` ``(B, n)``: ``(B, m)``,
    float64."""
    return _with_ones(states) @ readout


@dataclass(frozen=True)
class ReadoutErrors:
    """What :func:`recall_readout_errors` measured, one entry per delay.

    Attributes:
        delays: the delays k.
        refitted: held-out mean squared error of the read-out fitted at
            delay k.
        fixed: held-out mean squared error of the read-out fitted at
            ``delays[0]``, applied at delay k.
        input_dependence: the largest ``|s_k(v)_i - mean_v s_k(v)_i|``
            over the held-out inputs and units: how much the state still
            depends on v at all.
    """
    delays: Tuple[int, ...]
    refitted: Tuple[float, ...]
    fixed: Tuple[float, ...]
    input_dependence: Tuple[float, ...]


def _recall_outputs(cell, steps: int, count: int, offset: int,
                    dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    """The cell's outputs after steps 1..steps for ``count`` vectors shown
    at step 1, ``(steps, count, n)``, and the vectors ``(count, m)``."""
    generator = torch.Generator().manual_seed(seed(offset))
    x, v = delayed_recall(count, steps, cell.input_size, generator=generator,
                          dtype=dtype)
    with torch.no_grad():
        outputs, _ = Recurrent(cell)(x)
    return outputs, v


def recall_readout_errors(cell, delays: Sequence[int], *,
                          train_size: int = 4096, test_size: int = 1024,
                          generator_offset: int = 0) -> ReadoutErrors:
    """Refitted and fixed affine read-outs of a fixed-weight cell that was
    shown ``v`` at step 1 (see the module's docstring).

    The cell (a cell whose output is its state, such as
    :class:`~lstmlib.cells.vanilla.VanillaRNNCell`, in its own dtype) runs
    ``train_size`` and ``test_size`` sequences of
    :func:`~lstmlib.experiments.tasks.delayed_recall` up to the longest
    delay, drawn from the generators of ``lstmlib.seed(generator_offset)``
    and ``lstmlib.seed(generator_offset + 1)``; its state after step k is
    read for every delay k, so every delay sees the same vectors, and the
    held-out ones are never fitted. The read-outs are fitted on the first
    set and measured on the second. The cell is not changed."""
    owner = "recall_readout_errors"
    delays = list(delays)
    if not delays:
        raise ValueError(f"{owner}: expected at least one delay, got none")
    for k in delays:
        check_positive_int(owner, "each delay", k)
    check_positive_int(owner, "train_size", train_size)
    check_positive_int(owner, "test_size", test_size)
    dtype = next(cell.parameters()).dtype
    refitted: List[float] = []
    fixed: List[float] = []
    dependence: List[float] = []
    longest = max(delays)
    states, v = _recall_outputs(cell, longest, train_size, generator_offset,
                                dtype)                    # (T, B, n), (B, m)
    test_states, v_test = _recall_outputs(cell, longest, test_size,
                                          generator_offset + 1, dtype)
    target = v_test.to(torch.float64)
    first = None
    for k in delays:
        s, s_test = states[k - 1], test_states[k - 1]     # after step k
        readout = fit_affine_readout(s, v)                # (n + 1, m)
        first = readout if first is None else first
        for errors, R in ((refitted, readout), (fixed, first)):
            error = apply_affine_readout(R, s_test) - target
            errors.append(error.square().mean().item())
        deviation = s_test - s_test.mean(dim=0)
        dependence.append(deviation.abs().max().item())
    return ReadoutErrors(tuple(delays), tuple(refitted), tuple(fixed),
                         tuple(dependence))
