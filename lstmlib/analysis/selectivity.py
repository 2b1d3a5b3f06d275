"""The prototype's step with its gates as explicit inputs (Part II).

Chapter 7, "Selectivity", asks what a read decision and a write decision
each change. To ask it of a real cell, the gate values must be inputs that
we can set and differentiate by, not intermediate results: this module
splits the :class:`~lstmlib.cells.prototype.PrototypeLSTMCell` step into the
gates the cell would compute (:func:`prototype_gates`) and the update that
applies given gate values (:func:`prototype_update`), and differentiates
the update by each gate (:func:`gate_jacobians`).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.func import jacrev
from torch.nn import functional as F

from ..cells.prototype import PrototypeLSTMCell

__all__ = ["GateJacobians", "GateValues", "gate_jacobians",
           "prototype_gates", "prototype_update"]


class GateValues(NamedTuple):
    """The three gates of one step, each ``(B, n)`` with values in (0, 1)."""
    i: Tensor   # input (write) gate
    f: Tensor   # forget (remember) gate
    o: Tensor   # output (read) gate


def _prototype(cell) -> PrototypeLSTMCell:
    if type(cell) is not PrototypeLSTMCell:
        raise TypeError(f"expected a PrototypeLSTMCell (the normalized "
                        f"variant's step differs), got "
                        f"{type(cell).__name__}")
    return cell


def _checked(cell, x: Tensor, s: Tensor) -> PrototypeLSTMCell:
    cell = _prototype(cell)
    cell.check_input(x, expected_dims=2)
    cell.check_state(s, batch_size=x.shape[0], like=x)
    return cell


def prototype_gates(cell: PrototypeLSTMCell, x: Tensor, s: Tensor
                    ) -> GateValues:
    """The gates the prototype computes from ``s_{t-1}`` and ``x_t``:

        i_t, f_t, o_t = σ(W_{i,f,o} s_{t-1} + U_{i,f,o} x_t + b_{i,f,o})

    Args: ``x`` ``(B, m)``, ``s`` ``(B, n)``. Returns :class:`GateValues`.
    """
    cell = _checked(cell, x, s)
    n = cell.state_size
    gates_x = cell.project_input(x)[..., :3 * n]      # U_{i,f,o} x + b
    gates = torch.sigmoid(F.linear(s, cell.W_gates) + gates_x)
    return GateValues(*gates.split(n, dim=-1))


def prototype_update(cell: PrototypeLSTMCell, x: Tensor, s: Tensor,
                     gates: GateValues) -> Tensor:
    """The prototype's new state for *given* gate values:

        s̃_t = φ(W (o ⊙ s_{t-1}) + U_s̃ x_t + b_s̃)
        s_t = f ⊙ s_{t-1} + i ⊙ s̃_t

    With ``gates = prototype_gates(cell, x, s)`` this is the cell's own
    step. Args: ``x`` ``(B, m)``, ``s`` ``(B, n)``, ``gates`` three
    ``(B, n)`` Tensors (i, f, o). Returns ``s_t`` ``(B, n)``.
    """
    cell = _checked(cell, x, s)
    i, f, o = gates
    for name, g in zip("ifo", (i, f, o)):
        if not isinstance(g, Tensor) or g.shape != s.shape:
            got = tuple(g.shape) if isinstance(g, Tensor) \
                else type(g).__name__
            raise ValueError(f"expected gate {name} of shape "
                             f"{tuple(s.shape)}, got {got}")
    n = cell.state_size
    candidate_x = cell.project_input(x)[..., 3 * n:]  # U_s̃ x + b_s̃
    s_tilde = torch.tanh(F.linear(o * s, cell.W) + candidate_x)
    return f * s + i * s_tilde


class GateJacobians(NamedTuple):
    """∂s_t/∂i, ∂s_t/∂f, ∂s_t/∂o at one step, each ``(n, n)``: entry
    ``[k, j]`` is the change of ``s_t[k]`` per unit change of gate j."""
    i: Tensor
    f: Tensor
    o: Tensor


def gate_jacobians(cell: PrototypeLSTMCell, x: Tensor, s: Tensor
                   ) -> GateJacobians:
    """The Jacobians of the prototype's new state by its three gates, at
    the gate values the cell computes, by automatic differentiation.

    For one example (``x`` ``(1, m)``, ``s`` ``(1, n)``) and
    ``a_t = W (o ⊙ s_{t-1}) + U_s̃ x_t + b_s̃`` they are

        ∂s_t/∂i = [s̃_t],  ∂s_t/∂f = [s_{t-1}],
        ∂s_t/∂o = [i_t] [φ'(a_t)] W [s_{t-1}]

    where [v] is the diagonal matrix with v on its diagonal.
    """
    cell = _checked(cell, x, s)
    if x.shape[0] != 1:
        raise ValueError(f"expected one example, x of shape "
                         f"(1, {cell.input_size}), got {tuple(x.shape)}")
    gates = tuple(g.detach()[0] for g in prototype_gates(cell, x, s))

    def new_state(i, f, o):                       # (n,) each -> (n,)
        g = GateValues(i[None], f[None], o[None])
        return prototype_update(cell, x, s, g)[0]

    return GateJacobians(*jacrev(new_state, argnums=(0, 1, 2))(*gates))
