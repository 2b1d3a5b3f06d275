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

Besides the exact measurement (:func:`step_jacobians`,
:func:`jacobian_norms`, :func:`directional_derivative_norms`), the module
measures *finite* changes, by running a cell twice from states that differ
by Δs_t (:func:`finite_change_norms`), and evaluates for the vanilla cell the
upper bounds of the chapter's theorem (:func:`sensitivity_bounds`,
:func:`finite_change_bound`).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.func import jacrev, jvp

from ..cells.activations import ACTIVATIONS, activation_named
from ..cells.recurrent import Cell, State, unroll
from ..cells.vanilla import VanillaRNNCell

__all__ = [
    "MAX_SLOPE",
    "SensitivityBounds",
    "activation_slope",
    "directional_derivative_norms",
    "finite_change_bound",
    "finite_change_norms",
    "jacobian_norms",
    "product_norms",
    "largest_slope_between",
    "sensitivity_bounds",
    "state_from_vector",
    "state_vector",
    "step_jacobians",
    "trajectory_jacobians",
    "vanilla_preactivations",
]


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
    states = _trajectory(cell, x, state_vector(state).detach())

    def next_state(vector, x_t):
        _, new = cell(x_t[None], state_from_vector(cell, vector))
        return state_vector(new)

    jacobians = [jacrev(next_state)(s, x_t)           # J_t at s_{t-1}: (N, N)
                 for s, x_t in zip(states[:-1], x)]
    return torch.stack(jacobians), states


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
    _check_start(start, _one_sequence(cell, x).shape[0])
    jacobians, _ = step_jacobians(cell, x, state)
    product = torch.eye(jacobians.shape[1], dtype=jacobians.dtype,
                        device=jacobians.device)
    norms = []
    for J in jacobians[start:]:
        product = J @ product                 # ∂s_{t+k}/∂s_t
        norms.append(torch.linalg.matrix_norm(product, ord=2))
    return torch.stack(norms)


# -- Bounds for the vanilla cell -------------------------------------------
#
# For s_u = φ(a_u), a_u = W s_{u-1} + U x_u + b (a_u is the pre-activation
# of step u), the chapter proves
#
#   ‖∂s_{t+k}/∂s_t‖₂ ≤ ∏_{j=1}^{k} ‖[φ'(a_{t+j})]‖₂ ‖W‖₂ ≤ (γ' ‖W‖₂)^k
#   ‖Δs_{t+k}‖ ≤ ∏_{j=1}^{k} γ_j ‖W‖₂ ‖Δs_t‖  (mean value theorem, any Δs_t)
#
# where [φ'(a)] is the diagonal matrix of the slopes φ'(a_i), whose spectral
# norm is its largest |entry|, γ' = max_{j≤k} ‖[φ'(a_{t+j})]‖₂ is the
# largest slope visited, and γ_j the largest slope on the segments between
# the two runs' pre-activations a_{t+j} (where the mean-value points ξ
# lie). Both are at most γ̄ = sup_ℝ |φ'| (MAX_SLOPE). The functions below
# compute both sides.

#: γ̄ = sup over ℝ of |φ'(a)| for each nonlinearity of a VanillaRNNCell:
#: tanh' = 1 - tanh² peaks at 1 and σ' = σ(1 - σ) at 1/4, both at a = 0
#: (the ``max_slope`` column of :data:`~lstmlib.cells.activations.ACTIVATIONS`).
MAX_SLOPE = {name: a.max_slope for name, a in ACTIVATIONS.items()}


def activation_slope(nonlinearity: str, a: Tensor) -> Tensor:
    """φ'(a), elementwise, for ``"tanh"``, ``"sigmoid"`` or ``"relu"``
    (the ``slope`` column of :data:`~lstmlib.cells.activations.ACTIVATIONS`).

    relu is not differentiable at 0; like autograd, we take relu'(0) = 0.
    """
    return activation_named("activation_slope", nonlinearity).slope(a)


def largest_slope_between(nonlinearity: str, a: Tensor, a_prime: Tensor
                          ) -> Tensor:
    """sup |φ'(ξ)| over ξ in the segment between ``a`` and ``a_prime``,
    elementwise: the largest slope a mean-value point ξ of the segment
    can have (γ_j is its maximum over the units).

    tanh' and σ' are even and decrease in |ξ|, so the supremum sits at the
    point of the segment nearest to 0 (0 itself if the segment crosses
    it). relu' is 1 on (0, ∞) and 0 elsewhere, so the supremum is 1 if the
    segment reaches above 0 and 0 otherwise.
    """
    name = activation_named("largest_slope_between", nonlinearity).name
    if name == "relu":
        return (torch.maximum(a, a_prime) > 0).to(a.dtype)
    crosses_zero = (a * a_prime) <= 0
    distance = torch.where(crosses_zero, torch.zeros_like(a),
                           torch.minimum(a.abs(), a_prime.abs()))
    # evaluated at -distance: σ(-d)(1 - σ(-d)) has no cancellation
    return activation_slope(name, -distance)


def _vanilla(cell) -> VanillaRNNCell:
    if not isinstance(cell, VanillaRNNCell):
        raise TypeError(f"expected a VanillaRNNCell (the bound needs W and "
                        f"an elementwise φ), got {type(cell).__name__}")
    return cell


def _check_start(start, T: int) -> None:
    if isinstance(start, bool) or not isinstance(start, int) \
            or not 0 <= start < T:
        raise ValueError(f"expected start to be an int in [0, {T - 1}] for "
                         f"a sequence of {T} steps, got {start!r}")


def _trajectory(cell: Cell, x: Tensor, s: Tensor) -> Tensor:
    """States ``s_0 ... s_T`` as ``(T + 1, N)`` vectors, from vector s,
    without a graph; x is one sequence ``(T, m)``."""
    with torch.no_grad():
        _, _, states = unroll(cell, x, state_from_vector(cell, s),
                              keep_states=True)         # (T, 1, n) each
    return torch.cat([s[None], _state_rows(states)[:, 0]])


def vanilla_preactivations(cell: Cell, x: Tensor, states: Tensor
                           ) -> Tensor:
    """The pre-activations ``a_u = W s_{u-1} + U x_u + b`` for
    u = 1, ..., T, ``(T, n)``: row ``u - 1`` holds ``a_u``.

    Args:
        cell: a :class:`~lstmlib.VanillaRNNCell`; ``s_u = φ(a_u)``.
        x: the inputs ``x_1 ... x_T`` of one sequence, ``(T, m)``.
        states: the visited states ``s_0 ... s_T`` (or ``s_0 ... s_{T-1}``),
            ``(T + 1, n)`` or ``(T, n)``, as :func:`step_jacobians` returns.
    """
    cell, x = _vanilla(cell), _one_sequence(cell, x)
    T = x.shape[0]
    if states.dim() != 2 or states.shape[0] not in (T, T + 1) \
            or states.shape[1] != cell.state_size:
        raise ValueError(
            f"expected states of shape ({T + 1}, {cell.state_size}) or "
            f"({T}, {cell.state_size}), got {tuple(states.shape)}")
    with torch.no_grad():
        return states[:T] @ cell.W.T + cell.project_input(x)    # (T, n)


class SensitivityBounds(NamedTuple):
    """Three upper bounds on ``‖∂s_{t+k}/∂s_t‖₂``, each ``(T - t,)``,
    entry ``k - 1`` for k steps, from the tightest to the loosest."""
    stepwise: Tensor    # ∏_{j=1}^{k} ‖[φ'(a_{t+j})]‖₂ ‖W‖₂
    visited: Tensor     # (γ'_k ‖W‖₂)^k, γ'_k = largest |φ'| visited so far
    worst_case: Tensor  # (γ̄ ‖W‖₂)^k, γ̄ = MAX_SLOPE[φ]


def sensitivity_bounds(cell: Cell, x: Tensor, state: State | None = None,
                       *, start: int = 0) -> SensitivityBounds:
    """Upper bounds on :func:`jacobian_norms` ``(cell, x, state,
    start=start)`` for a :class:`~lstmlib.VanillaRNNCell`.

    With t = ``start``, a_u the pre-activation of step u along the
    trajectory (:func:`vanilla_preactivations`) and
    ‖[φ'(a)]‖₂ = max_i |φ'(a_i)|:

    * ``stepwise[k-1]`` = ∏_{j=1}^{k} ‖[φ'(a_{t+j})]‖₂ ‖W‖₂,
    * ``visited[k-1]`` = (γ'_k ‖W‖₂)^k, γ'_k = max_{j≤k} ‖[φ'(a_{t+j})]‖₂,
    * ``worst_case[k-1]`` = (γ̄ ‖W‖₂)^k, γ̄ = sup_ℝ |φ'| (``MAX_SLOPE``).
    """
    cell, x = _vanilla(cell), _one_sequence(cell, x)
    _check_start(start, x.shape[0])
    if state is None:
        state = cell.initial_state(1, device=x.device, dtype=x.dtype)
    cell.check_state(state, batch_size=1, like=x)
    states = _trajectory(cell, x, state_vector(state).detach())
    a = vanilla_preactivations(cell, x, states)[start:]       # (T - t, n)
    slope = activation_slope(cell.nonlinearity, a).abs().amax(dim=1)
    w = torch.linalg.matrix_norm(cell.W.detach(), ord=2)      # ‖W‖₂
    k = torch.arange(1, len(slope) + 1, dtype=w.dtype, device=w.device)
    return SensitivityBounds(
        stepwise=torch.cumprod(slope * w, dim=0),
        visited=(torch.cummax(slope, dim=0).values * w) ** k,
        worst_case=(MAX_SLOPE[cell.nonlinearity] * w) ** k)


# -- Finite changes ----------------------------------------------------------

def _from_start(cell: Cell, x: Tensor, delta: Tensor, state: State | None,
                start: int) -> tuple[Tensor, Tensor]:
    """Validated inputs ``x_{t+1} ... x_T`` and states ``s_t ... s_T``,
    t = start; ``delta`` must have the shape of a state vector."""
    x = _one_sequence(cell, x)
    _check_start(start, x.shape[0])
    if state is None:
        state = cell.initial_state(1, device=x.device, dtype=x.dtype)
    cell.check_state(state, batch_size=1, like=x)
    states = _trajectory(cell, x, state_vector(state).detach())
    if not isinstance(delta, Tensor) or delta.shape != states[0].shape:
        got = tuple(delta.shape) if isinstance(delta, Tensor) \
            else type(delta).__name__
        raise ValueError(f"expected delta of shape "
                         f"{tuple(states[0].shape)} (a state vector), "
                         f"got {got}")
    return x[start:], states[start:]


def finite_change_norms(cell: Cell, x: Tensor, delta: Tensor,
                        state: State | None = None, *, start: int = 0
                        ) -> Tensor:
    """``‖Δs_{t+k}‖`` for k = 1, ..., T - t, with t = ``start``.

    Two trajectories of ``cell`` are driven by the same inputs ``x`` (one
    sequence, ``(T, m)``); they agree up to step t, where the second is
    moved to ``s_t + delta`` (``delta`` = Δs_t, a vector like
    :func:`state_vector`). ``Δs_{t+k}`` is their difference k steps later;
    nothing is linearized, so ``delta`` may be of any size. Any cell.
    """
    x, base = _from_start(cell, x, delta, state, start)
    moved = _trajectory(cell, x, base[0] + delta.detach())
    return torch.linalg.vector_norm(moved[1:] - base[1:], dim=1)


def finite_change_bound(cell: Cell, x: Tensor, delta: Tensor,
                        state: State | None = None, *, start: int = 0
                        ) -> Tensor:
    """The mean value bound on :func:`finite_change_norms`, for a
    :class:`~lstmlib.VanillaRNNCell`:

        ‖Δs_{t+k}‖ ≤ ∏_{j=1}^{k} γ_j ‖W‖₂ ‖Δs_t‖,
        γ_j = max_i sup |φ'(ξ)| over ξ between a_{t+j,i} and a'_{t+j,i},

    where a and a' are the pre-activations of the two trajectories
    (:func:`largest_slope_between`). Returns a ``(T - t,)`` Tensor.
    """
    cell = _vanilla(cell)
    x, base = _from_start(cell, x, delta, state, start)
    moved = _trajectory(cell, x, base[0] + delta.detach())
    a = vanilla_preactivations(cell, x, base)                 # (T - t, n)
    a_prime = vanilla_preactivations(cell, x, moved)
    gamma = largest_slope_between(cell.nonlinearity, a, a_prime).amax(1)
    w = torch.linalg.matrix_norm(cell.W.detach(), ord=2)        # ‖W‖₂
    return torch.linalg.vector_norm(delta) * torch.cumprod(gamma * w, 0)


def directional_derivative_norms(cell: Cell, x: Tensor, direction: Tensor,
                                 state: State | None = None, *,
                                 start: int = 0) -> Tensor:
    """``‖(∂s_{t+k}/∂s_t) u‖`` for k = 1, ..., T - t, with t = ``start`` and
    u = ``direction`` (a vector like :func:`state_vector`).

    The derivative of the whole trajectory in direction u is pushed forward
    step by step (forward-mode automatic differentiation, one
    ``torch.func.jvp``); it is exact, like :func:`jacobian_norms`, and is
    what :func:`finite_change_norms` approaches for ``delta = ε u``,
    divided by ε, as ε → 0. Any cell.
    """
    x, base = _from_start(cell, x, direction, state, start)

    def unrolled(s):                            # s_t ↦ (s_{t+1} ... s_T)
        _, _, states = unroll(cell, x, state_from_vector(cell, s),
                              keep_states=True)
        return _state_rows(states)[:, 0]        # (T - t, N)

    _, pushed = jvp(unrolled, (base[0],), (direction.detach(),))
    return torch.linalg.vector_norm(pushed, dim=1)


def trajectory_jacobians(cell: Cell, x: Tensor, state: State | None = None
                         ) -> tuple[Tensor, Tensor]:
    """The one-step Jacobians ``J_t = ∂s_t/∂s_{t-1}`` along a trajectory,
    all T of them from one reverse-mode call.

    The same numbers as :func:`step_jacobians` (to
    rounding), for any cell, about ten times faster over hundreds of
    steps. The trajectory s_0, ..., s_T is run first, without a graph and
    one step at a time as there. Then the T steps are evaluated once more
    as *one batch* of T independent one-step problems, row t holding
    (s_{t-1}, x_t). Row t of the output depends on row t of the input
    only (every cell of lstmlib treats the rows of a batch
    independently), so the Jacobian of the output summed over the rows,
    with respect to the whole ``(T, N)`` input, holds J_t in its row-t
    block: one ``jacrev`` of N outputs instead of T of them.

    Args:
        cell: any :class:`~lstmlib.Cell`.
        x: the inputs of one sequence, ``(T, m)`` or ``(T, 1, m)``.
        state: the initial state for a batch of one (zeros if ``None``).

    Returns:
        jacobians: ``(T, N, N)``, ``jacobians[t-1]`` = J_t, N the length
            of :func:`state_vector`; detached (no
            graph to the parameters).
        states: ``(T + 1, N)``, the visited states s_0, ..., s_T.
    """
    x = _one_sequence(cell, x)
    if state is None:
        state = cell.initial_state(1, device=x.device, dtype=x.dtype)
    cell.check_state(state, batch_size=1, like=x)
    parts = len(cell.state_names)

    def as_state(rows: Tensor) -> State:       # (B, N) -> the cell's state
        split = rows.reshape(rows.shape[0], parts, cell.state_size)
        return split[:, 0] if parts == 1 else tuple(split.unbind(1))

    def summed_step(previous: Tensor) -> Tensor:   # (T, N) -> (N,)
        _, new = cell(x, as_state(previous))
        return _state_rows(new).sum(0)

    with torch.no_grad():
        states = _trajectory(cell, x, state_vector(state))   # (T + 1, N)
        jacobians = torch.func.jacrev(summed_step)(states[:-1])
    return jacobians.permute(1, 0, 2).detach(), states   # (T, N, N)


def _state_rows(state: State) -> Tensor:
    """A batch of states as rows: ``(..., B, n)`` or a tuple of such
    Tensors becomes ``(..., B, n * len(state_names))`` (the batched
    :func:`state_vector`)."""
    parts = (state,) if isinstance(state, Tensor) else tuple(state)
    return torch.cat(parts, dim=-1)


def product_norms(jacobians: Tensor) -> Tensor:
    """``‖J_k ⋯ J_1‖₂`` for k = 1, ..., T, from ``jacobians`` ``(T, N, N)``
    (``jacobians[t-1]`` = J_t): the sensitivities ‖∂s_k/∂s_0‖₂ that
    :func:`jacobian_norms` returns, as ``(T,)``."""
    if not isinstance(jacobians, Tensor) or jacobians.dim() != 3 \
            or jacobians.shape[1] != jacobians.shape[2]:
        got = (tuple(jacobians.shape) if isinstance(jacobians, Tensor)
               else type(jacobians).__name__)
        raise ValueError(f"expected jacobians of shape (T, N, N), got {got}")
    product, products = torch.eye(jacobians.shape[1], dtype=jacobians.dtype,
                                  device=jacobians.device), []
    for J in jacobians:
        product = J @ product                  # ∂s_k/∂s_0
        products.append(product)
    return torch.linalg.matrix_norm(torch.stack(products), ord=2)
