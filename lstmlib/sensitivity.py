"""How much the state at one step depends on the state k steps earlier.

Part I, "Vanishing and exploding sensitivity", is built on this module, and
later parts reuse it for the gated cells. For a cell run along a trajectory
``s_0, s_1, ..., s_T`` driven by inputs ``x_1, ..., x_T``, the sensitivity of
``s_{t+k}`` to ``s_t`` is the Jacobian

    ∂s_{t+k}/∂s_t = J_{t+k} J_{t+k-1} ... J_{t+1},   J_u = ∂s_u/∂s_{u-1},

and its size is the spectral norm ‖∂s_{t+k}/∂s_t‖₂: the largest factor by
which a small change of ``s_t`` can be stretched k steps later. The Jacobians
are computed exactly by automatic differentiation, not by finite differences.

A cell whose state is a tuple (the LSTM's ``(h, c)``) is treated as one
vector, the concatenation of its parts in the order of ``state_names``.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.func import jacrev

from .recurrent import Cell, State

__all__ = ["state_vector", "state_from_vector", "step_jacobians",
           "jacobian_norms"]


def state_vector(state: State) -> Tensor:
    """A state of one sequence as one vector: ``(1, n)`` or a tuple of such
    Tensors becomes ``(n * len(state_names),)``."""
    parts = (state,) if isinstance(state, Tensor) else tuple(state)
    return torch.cat([p.reshape(-1) for p in parts])


def state_from_vector(cell: Cell, vector: Tensor) -> State:
    """The inverse of :func:`state_vector` for ``cell``'s state structure."""
    parts = vector.reshape(len(cell.state_names), 1, cell.state_size)
    return parts[0] if len(cell.state_names) == 1 else tuple(parts)


def _one_sequence(cell: Cell, x: Tensor) -> Tensor:
    if x.dim() == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 2 or x.shape[1] != cell.input_size:
        raise ValueError(
            f"expected the inputs of one sequence, shape (T, "
            f"{cell.input_size}) or (T, 1, {cell.input_size}), got "
            f"{tuple(x.shape)}")
    return x


def step_jacobians(cell: Cell, x: Tensor, state: State | None = None
                   ) -> tuple[Tensor, Tensor]:
    """The one-step Jacobians ``J_t = ∂s_t/∂s_{t-1}`` along a trajectory.

    Args:
        cell: any :class:`~lstmlib.Cell`.
        x: the inputs of one sequence, ``(T, m)`` or ``(T, 1, m)``.
        state: the initial state for a batch of one (zeros if ``None``).

    Returns:
        jacobians: ``(T, N, N)`` with N the length of :func:`state_vector`;
            ``jacobians[t-1]`` is ``J_t``.
        states: ``(T + 1, N)``, the visited states ``s_0 ... s_T``.
    """
    x = _one_sequence(cell, x)
    if state is None:
        state = cell.initial_state(1, device=x.device, dtype=x.dtype)
    cell.check_state(state, batch_size=1, like=x)
    s = state_vector(state).detach()

    def next_state(vector, x_t):
        _, new = cell(x_t[None], state_from_vector(cell, vector))
        return state_vector(new)

    jacobians, states = [], [s]
    for x_t in x:
        jacobians.append(jacrev(next_state)(s, x_t))     # (N, N)
        s = next_state(s, x_t).detach()
        states.append(s)
    return torch.stack(jacobians), torch.stack(states)


def jacobian_norms(cell: Cell, x: Tensor, state: State | None = None, *,
                   start: int = 0) -> Tensor:
    """``‖∂s_{start+k}/∂s_start‖₂`` for ``k = 1, ..., T - start``.

    The cell runs along the trajectory driven by ``x`` (one sequence,
    ``(T, m)`` or ``(T, 1, m)``) from ``state`` (zeros if ``None``); the
    product of one-step Jacobians is accumulated from step ``start`` on and
    its spectral norm recorded after every step. Returns a ``(T - start,)``
    Tensor whose entry ``k - 1`` is the sensitivity after k steps. It is
    differentiable with respect to the cell's parameters (a regulariser can
    use it); call ``.detach()`` to keep the number only.
    """
    T = _one_sequence(cell, x).shape[0]
    if isinstance(start, bool) or not isinstance(start, int) \
            or not 0 <= start < T:
        raise ValueError(f"expected start to be an int in [0, {T - 1}] for "
                         f"a sequence of {T} steps, got {start!r}")
    jacobians, _ = step_jacobians(cell, x, state)
    product = torch.eye(jacobians.shape[1], dtype=jacobians.dtype,
                        device=jacobians.device)
    norms = []
    for J in jacobians[start:]:
        product = J @ product                 # ∂s_{t+k}/∂s_t
        norms.append(torch.linalg.matrix_norm(product, ord=2))
    return torch.stack(norms)
