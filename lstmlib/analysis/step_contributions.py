"""How the gradient of a shared weight splits over the steps.

A recurrent cell applies the same input weights U at every step, so the
gradient of a loss L with respect to U is a sum of one contribution per
step. With x̃_t = U x_t + b the projected input of step t (``(k n,)``, one
n-row block per gate and the candidate) and g_t = ∂L/∂x̃_t the error that
reaches it,

    ∂L/∂U = Σ_t G_t,    G_t = Σ_b g_{t,b} x_{t,b}ᵀ    (k n × m),

summed over the B sequences of a batch. :func:`input_gradient_by_step`
returns the G_t. A chapter compares the contribution of the step where a
distant cause entered with that of the recent steps: when the first is
small, the recent ones decide the direction of every update of U.

>>> import torch
>>> from lstmlib import Recurrent, VanillaRNNCell
>>> cell = VanillaRNNCell(3, 4)
>>> x = torch.randn(6, 2, 3)                             # T = 6, B = 2
>>> G = input_gradient_by_step(cell, x, lambda out: out[-1].square().sum())
>>> G.shape                                              # (T, n, m)
torch.Size([6, 4, 3])
>>> out, _ = Recurrent(cell)(x)
>>> out[-1].square().sum().backward()
>>> torch.allclose(G.sum(dim=0), cell.U.grad, atol=1e-6)
True
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..cells.recurrent import Cell

__all__ = ["input_gradient_by_step"]


def input_gradient_by_step(cell: Cell, x: Tensor,
                           loss_of_outputs: Callable[[Tensor], Tensor]
                           ) -> Tensor:
    """The contribution G_t of each step t to ∂L/∂U, ``(T, k n, m)``.

    ``x`` ``(T, B, m)`` runs from the zero state; ``loss_of_outputs`` maps
    the outputs ``(T, B, output_size)`` to the scalar loss L. The cell's
    ``project_input`` must be the affine map U x + b with U its parameter
    ``U`` ``(k n, m)``, as in every lstmlib cell, so that the G_t sum to
    autograd's ∂L/∂U.
    """
    U = getattr(cell, "U", None)
    if not isinstance(cell, Cell) or not isinstance(U, Tensor) \
            or U.dim() != 2:
        raise TypeError(f"input_gradient_by_step: expected an lstmlib Cell "
                        f"with input weights U (k n, m), got "
                        f"{type(cell).__name__}")
    if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != U.shape[1]:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"input_gradient_by_step: expected x of shape "
                         f"(T, B, {U.shape[1]}), got {shape}")
    with torch.enable_grad():
        x_proj = cell.project_input(x).detach().requires_grad_()  # (T, B, kn)
        state = cell.initial_state(x.shape[1], dtype=x.dtype,
                                   device=x.device)
        outputs = []
        for x_t in x_proj:
            out, state = cell.step(x_t, state)
            outputs.append(out)
        loss = loss_of_outputs(torch.stack(outputs))
        g, = torch.autograd.grad(loss, x_proj)                     # g_t
    return torch.einsum("tbk,tbm->tkm", g, x)                      # G_t
