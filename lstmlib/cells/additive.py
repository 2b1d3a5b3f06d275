"""The additive cell: "write it down" without any control over the writes.

Part II, "Written memories", starts from this cell. It keeps the principle
that the LSTM is built on, an update that adds to the state instead of
replacing it, and nothing else, so that the chapter can measure what goes
wrong when every write is accepted.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .recurrent import Cell
from .activations import activation_named

__all__ = ["AdditiveCell"]


class AdditiveCell(Cell):
    r"""A cell that adds a write to its state at every step.

    .. math::

        \Delta s_t = \phi(W s_{t-1} + U x_t + b), \qquad
        s_t = s_{t-1} + \Delta s_t, \qquad o_t = s_t

    Nothing decides whether, where or how much to write: every step's write
    is added in full. With ``W = 0`` the write does not depend on the state,
    and ``∂s_t/∂s_{t-1} = I`` exactly.

    Args:
        input_size: m, the size of ``x_t``.
        state_size: n, the size of ``s_t``.
        nonlinearity: φ for the write, ``"tanh"`` (default), ``"relu"`` or
            ``"sigmoid"``.
        recurrent_write: if ``False``, ``W`` is fixed at zero (not a
            parameter): the write reads only the input.

    Parameters: ``W`` ``(n, n)`` (absent without recurrent_write), ``U``
    ``(n, m)``, ``b`` ``(n,)``, initialized from U(-1/√n, 1/√n).

    Inputs: ``x`` ``(B, m)``, ``s`` ``(B, n)``.
    Outputs: ``(s_t, s_t)``, each ``(B, n)``.
    """

    def __init__(self, input_size: int, state_size: int, *,
                 nonlinearity: str = "tanh", recurrent_write: bool = True):
        super().__init__(input_size, state_size)
        self.phi = activation_named("AdditiveCell", nonlinearity).function
        self.nonlinearity = nonlinearity
        self.recurrent_write = bool(recurrent_write)
        if self.recurrent_write:
            self.W = nn.Parameter(torch.empty(state_size, state_size))
        self.U = nn.Parameter(torch.empty(state_size, input_size))
        self.b = nn.Parameter(torch.empty(state_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.uniform_parameters_()

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.U, self.b)       # U x_t + b: (..., n)

    def step(self, ux: Tensor, s: Tensor) -> Tuple[Tensor, Tensor]:
        if self.recurrent_write:
            ux = F.linear(s, self.W) + ux        # W s_{t-1} + U x_t + b
        write = self.phi(ux)                     # Δs_t: (B, n)
        s = s + write                            # s_t = s_{t-1} + Δs_t
        return s, s

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"
                f", recurrent_write={self.recurrent_write}")
