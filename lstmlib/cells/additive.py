"""The additive cell: "write it down" without any control over the writes.

Part II, "Written memories", starts from this cell. It keeps the principle
that the LSTM is built on, an update that adds to the state instead of
replacing it, and nothing else, so that the chapter can measure what goes
wrong when every write is accepted.
"""
from __future__ import annotations

from typing import Tuple

from torch import Tensor
from torch.nn import functional as F

from .vanilla import SingleLayerCell

__all__ = ["AdditiveCell"]


class AdditiveCell(SingleLayerCell):
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
    ``(n, m)``, ``b`` ``(n,)``, drawn from the uniform distribution
    𝒰(−1/√n, 1/√n): the vanilla cell's layer
    (:class:`~lstmlib.cells.vanilla.SingleLayerCell`).

    Inputs: ``x`` ``(B, m)``, ``s`` ``(B, n)``.
    Outputs: ``(s_t, s_t)``, each ``(B, n)``.

    Example: with φ = tanh every write lies in [-1, 1]^n, so after T = 7
    steps from the zero state no unit has moved by more than 7.

    >>> import torch
    >>> from lstmlib import AdditiveCell, Recurrent
    >>> cell = AdditiveCell(input_size=3, state_size=5)
    >>> [name for name, _ in cell.named_parameters()]
    ['W', 'U', 'b']
    >>> outputs, s_T = Recurrent(cell)(torch.randn(7, 2, 3))   # (T, B, m)
    >>> outputs.shape, bool((s_T.abs() <= 7).all())
    (torch.Size([7, 2, 5]), True)
    >>> no_W = AdditiveCell(3, 5, recurrent_write=False)
    >>> [name for name, _ in no_W.named_parameters()]
    ['U', 'b']
    """

    def __init__(self, input_size: int, state_size: int, *,
                 nonlinearity: str = "tanh", recurrent_write: bool = True):
        super().__init__(input_size, state_size, nonlinearity,
                         recurrent=bool(recurrent_write))
        self.recurrent_write = bool(recurrent_write)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.U, self.b)       # U x_t + b: (..., n)

    def step(self, ux: Tensor, s: Tensor) -> Tuple[Tensor, Tensor]:
        if self.recurrent_write:
            ux = F.linear(s, self.W) + ux        # W s_{t-1} + U x_t + b
        write = self.phi(ux)                     # Δs_t: (B, n)
        s = s + write                            # s_t = s_{t-1} + Δs_t
        return s, s

    def extra_repr(self) -> str:
        return (super().extra_repr()
                + f", recurrent_write={self.recurrent_write}")
