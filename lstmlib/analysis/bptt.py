"""Gradients of a vanilla RNN, computed by hand: BPTT, truncated BPTT, RTRL.

Part I, "Backpropagation through time", is built on this module. For the
vanilla cell of :mod:`lstmlib.cells.vanilla`,

    a_t = W s_{t-1} + U x_t + b,    s_t = φ(a_t),    t = 1, ..., T,

and a loss L = Σ_t ℓ_t(s_t) whose direct gradients ∂ℓ_t/∂s_t are given, the
functions here compute ∂L/∂W, ∂L/∂U, ∂L/∂b and ∂L/∂s_0 without automatic
differentiation:

* :func:`vanilla_bptt` runs the backward recursion
  δ_t = φ'(a_t) ⊙ (∂ℓ_t/∂s_t + Wᵀ δ_{t+1}) from t = T down to 1;
* :func:`truncated_bptt` is truncated BPTT(k₁, k₂) (Williams and Peng's
  BPTT(h; h')): every k₁ steps, the errors of those k₁ steps are
  back-propagated k₂ steps;
* :func:`online_bptt_gradient_errors` measures what updating the weights
  after every step does to the gradient BPTT computes;
* :func:`vanilla_rtrl` carries the sensitivities P_t = ∂s_t/∂θ forward in
  time instead (real-time recurrent learning).

Shapes follow the book: time-major inputs ``x`` ``(T, B, m)``, states
``(B, n)``, and ``grad_states[t - 1]`` = ∂ℓ_t/∂s_t ``(T, B, n)``. A loss on
a read-out, ℓ_t(V s_t + c), enters through ∂ℓ_t/∂s_t = Vᵀ ∇ℓ_t. The loss is
a sum over the batch, so parameter gradients are summed over it too.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..cells.activations import activation_named
from ..cells.recurrent import Recurrent
from .._checks import check_cell_and_sequence, check_positive_int
from ..cells.vanilla import VanillaRNNCell

__all__ = [
    "VanillaGradients",
    "activation_derivative",
    "autograd_graph_size",
    "online_bptt_gradient_errors",
    "truncated_bptt",
    "vanilla_bptt",
    "vanilla_rtrl",
    "vanilla_states",
]


@dataclass
class VanillaGradients:
    """The gradient of a loss with respect to a vanilla RNN's parameters
    and initial state.

    Attributes:
        W: ∂L/∂W ``(n, n)``.
        U: ∂L/∂U ``(n, m)``.
        b: ∂L/∂b ``(n,)``.
        s0: ∂L/∂s_0 ``(B, n)``, the gradient with respect to the state the
            computation started from.
        states: ∂L/∂s_t for t = 1, ..., T ``(T, B, n)``: the total
            derivative, through ℓ_t and through all later steps (``None``
            where an algorithm does not form it, as in RTRL).
    """

    W: Tensor
    U: Tensor
    b: Tensor
    s0: Tensor
    states: Tensor | None = None

    def parameters(self) -> Tensor:
        """∂L/∂W, ∂L/∂U and ∂L/∂b as one flat vector, ``(n² + nm + n,)``."""
        return torch.cat([self.W.reshape(-1), self.U.reshape(-1),
                          self.b.reshape(-1)])

    def __add__(self, other: VanillaGradients) -> VanillaGradients:
        """The sum of the parameter gradients of two computations (of the
        same cell); ``s0`` is the sum too, ``states`` is dropped."""
        if not isinstance(other, VanillaGradients):
            return NotImplemented
        return VanillaGradients(self.W + other.W, self.U + other.U,
                                self.b + other.b, self.s0 + other.s0)


def activation_derivative(nonlinearity: str, s: Tensor) -> Tensor:
    """φ'(a_t), written through the state s_t = φ(a_t) it produced.

    tanh: 1 - s_t²;  sigmoid: s_t (1 - s_t);  relu: 1 where s_t > 0, else 0
    (the subgradient PyTorch uses at a_t = 0). These are the
    ``slope_from_output`` entries of
    :data:`~lstmlib.cells.activations.ACTIVATIONS`.
    """
    phi = activation_named("activation_derivative", nonlinearity)
    return phi.slope_from_output(s)


def _check(cell, x, s0, grad_states=None) -> None:
    check_cell_and_sequence(cell, VanillaRNNCell, x, s0)
    if grad_states is None:
        return
    expected = (x.shape[0], x.shape[1], cell.state_size)
    if not isinstance(grad_states, Tensor) \
            or tuple(grad_states.shape) != expected:
        got = (tuple(grad_states.shape) if isinstance(grad_states, Tensor)
               else type(grad_states).__name__)
        raise ValueError(f"expected grad_states of shape (T, B, n) = "
                         f"{expected}, got {got}")


def vanilla_states(cell: VanillaRNNCell, x: Tensor, s0: Tensor) -> Tensor:
    """The forward pass, kept: s_0, s_1, ..., s_T as ``(T + 1, B, n)``.

    Computed without recording a graph; the backward functions below need
    the states themselves, not autograd's record of how they were made.
    """
    _check(cell, x, s0)
    with torch.no_grad():
        states, _ = Recurrent(cell)(x, s0)      # s_1, ..., s_T
        return torch.cat([s0[None], states])


def vanilla_bptt(cell: VanillaRNNCell, x: Tensor, s0: Tensor,
                 grad_states: Tensor, *,
                 states: Tensor | None = None) -> VanillaGradients:
    """Backpropagation through time for ``L = Σ_t ℓ_t(s_t)``, by hand.

    With δ_t = ∂L/∂a_t and δ_{T+1} = 0, from t = T down to 1:

        δ_t = φ'(a_t) ⊙ (∂ℓ_t/∂s_t + Wᵀ δ_{t+1}),

        ∂L/∂W = Σ_t δ_t s_{t-1}ᵀ,  ∂L/∂U = Σ_t δ_t x_tᵀ,
        ∂L/∂b = Σ_t δ_t,           ∂L/∂s_0 = Wᵀ δ_1.

    Args:
        cell: the vanilla cell (its W, U, b; any nonlinearity).
        x: inputs ``(T, B, m)``.
        s0: initial state ``(B, n)``.
        grad_states: ∂ℓ_t/∂s_t ``(T, B, n)``.
        states: ``(T + 1, B, n)``, the states to differentiate at; by
            default :func:`vanilla_states` recomputes them with the cell's
            current weights. Passing stored ones (say, from a run whose
            weights changed along the way) gives the gradient that such a
            run would use.
    """
    _check(cell, x, s0, grad_states)
    if states is None:
        states = vanilla_states(cell, x, s0)    # states[t] = s_t
    W, T = cell.W.detach(), x.shape[0]
    phi_prime = activation_derivative(cell.nonlinearity, states[1:])
    dW, dU, db = (torch.zeros_like(p) for p in (cell.W, cell.U, cell.b))
    ds = torch.empty_like(grad_states)          # ∂L/∂s_1, ..., ∂L/∂s_T
    W_delta = torch.zeros_like(s0)              # Wᵀ δ_{T+1} = 0: (B, n)
    for t in range(T, 0, -1):                   # t = T, ..., 1
        ds[t - 1] = grad_states[t - 1] + W_delta      # ∂L/∂s_t
        delta = phi_prime[t - 1] * ds[t - 1]    # δ_t: (B, n)
        dW += delta.T @ states[t - 1]           # δ_t s_{t-1}ᵀ, over batch
        dU += delta.T @ x[t - 1]                # δ_t x_tᵀ
        db += delta.sum(0)                      # δ_t
        W_delta = delta @ W                     # Wᵀ δ_t, one row each
    return VanillaGradients(dW, dU, db, s0=W_delta, states=ds)


def truncated_bptt(cell: VanillaRNNCell, x: Tensor, s0: Tensor,
                   grad_states: Tensor, k1: int,
                   k2: int) -> list[VanillaGradients]:
    """Truncated BPTT(k₁, k₂), with the weights held fixed.

    An update is due after every k₁ steps (and after step T). The update
    due after step t back-propagates the errors ∂ℓ_τ/∂s_τ of the steps
    since the previous update, τ = t - k₁ + 1, ..., t, through the last
    k₂ steps, t - k₂ + 1, ..., t, and stops there: s_{t-k₂} is treated
    as a constant. The error of step t travels k₂ steps back, the oldest
    error of the window k₂ - k₁ + 1 steps (Williams and Peng's BPTT(h; h')
    with h = k₂, h' = k₁).

    k₁ = k₂ = k is the common "windowed" scheme (run k steps, back-propagate
    them, detach the state, go on) when k divides T; k₁ = 1 back-propagates
    each error exactly k₂ steps (fewer near the start); k₁ = k₂ = T is full
    BPTT. A last, shorter window still back-propagates k₂ steps.

    Returns one :class:`VanillaGradients` per update, in time order; its
    ``s0`` is the gradient with respect to the state the update stopped
    at (s_0 only if it reached the start). All are computed at the cell's
    current weights; their sum is the gradient the scheme would follow if
    it applied its updates only at the end.
    """
    _check(cell, x, s0, grad_states)
    T = x.shape[0]
    check_positive_int("truncated_bptt", "k1", k1)
    check_positive_int("truncated_bptt", "k2", k2)
    if k2 < k1:
        raise ValueError(f"expected k2 >= k1 (every error of a window is "
                         f"back-propagated at least one step), got k1={k1},"
                         f" k2={k2}")
    states = vanilla_states(cell, x, s0)
    updates, previous = [], 0
    for t in [*range(k1, T, k1), T]:            # an update after step t
        start = max(t - k2, 0)                  # back-propagate to s_start
        errors = grad_states[start:t].clone()
        errors[:previous - start] = 0           # errors since the last one
        updates.append(vanilla_bptt(cell, x[start:t], states[start], errors,
                                    states=states[start:t + 1]))
        previous = t
    return updates


def _last_step_error(states: Tensor, target: Tensor) -> Tensor:
    """∂ℓ/∂s for ℓ = ½‖s_t − y_t‖² on the last of ``states`` only."""
    errors = torch.zeros_like(states[1:])       # (k, B, n)
    errors[-1] = states[-1] - target
    return errors


def online_bptt_gradient_errors(cell: VanillaRNNCell, x: Tensor,
                                targets: Tensor, k2: int,
                                lr: float) -> Tensor:
    """Train ``cell`` online, updating after every step, and measure how
    wrong each update's gradient is.

    The loss of step t is ℓ_t = ½‖s_t − y_t‖². At step t the learner
    computes s_t from its stored s_{t-1} with its current weights θ_t,
    back-propagates ℓ_t through its last k₂ stored states (BPTT(1, k₂)),
    and takes the step θ ← θ − lr · g_used. Those states were computed with
    the weights θ_{t-k₂+1}, ..., θ_t of earlier steps, so g_used is not the
    gradient of any function at θ_t. The reference g_true is BPTT(1, k₂) at
    θ_t: the same k₂ steps recomputed from the same s_{t-k₂} with θ_t.

    Args:
        cell: the vanilla cell; its weights are updated in place.
        x: inputs ``(T, B, m)``; the run starts from s_0 = 0.
        targets: y_t ``(T, B, n)``.
        k2: how many steps each error is back-propagated.
        lr: the learning rate of plain gradient descent.

    Returns:
        ``(T,)``: ‖g_used − g_true‖ / ‖g_true‖ over (W, U, b) at each step.
    """
    s0 = cell.initial_state(x.shape[1], device=x.device, dtype=x.dtype)
    _check(cell, x, s0, targets)
    check_positive_int("online_bptt_gradient_errors", "k2", k2)
    stored, errors = [s0], []
    for t in range(1, x.shape[0] + 1):
        with torch.no_grad():                   # s_t with θ_t
            stored.append(cell.step(cell.project_input(x[t - 1]),
                                    stored[-1])[0])
        start = max(t - k2, 0)
        window, old = x[start:t], torch.stack(stored[start:t + 1])
        fresh = vanilla_states(cell, window, old[0])
        used = vanilla_bptt(cell, window, old[0],
                            _last_step_error(old, targets[t - 1]),
                            states=old)
        exact = vanilla_bptt(cell, window, old[0],
                            _last_step_error(fresh, targets[t - 1]),
                            states=fresh)
        g_used, g_true = used.parameters(), exact.parameters()
        errors.append((g_used - g_true).norm() / g_true.norm())
        with torch.no_grad():
            for p, g in zip((cell.W, cell.U, cell.b),
                            (used.W, used.U, used.b)):
                p -= lr * g
    return torch.stack(errors)


def vanilla_rtrl(cell: VanillaRNNCell, x: Tensor, s0: Tensor,
                 grad_states: Tensor) -> VanillaGradients:
    """Real-time recurrent learning: the same gradient as
    :func:`vanilla_bptt`, accumulated forward in time.

    It carries the sensitivities P_t = ∂s_t/∂θ of the state to every
    parameter (and to s_0) along with the state,

        P_t = [φ'(a_t)] (W P_{t-1} + ∂a_t/∂θ|direct),   P_0 = 0 (I for s_0),

    where the direct term is ∂a_t[i]/∂W[j, k] = [i = j] s_{t-1}[k],
    ∂a_t[i]/∂U[j, k] = [i = j] x_t[k], ∂a_t[i]/∂b[j] = [i = j], and adds
    (∂ℓ_t/∂s_t)ᵀ P_t to the gradient at every step. P_t for W alone holds
    n·n² numbers per sequence and W P_{t-1} costs n⁴ multiply-adds per step
    (against n² for a step of BPTT).
    """
    _check(cell, x, s0, grad_states)
    B, n, m = x.shape[1], cell.state_size, cell.input_size
    W = cell.W.detach()
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    # One sensitivity matrix per parameter, flattened to (B, n, size):
    # row i holds ∂s_t[i]/∂θ for θ = W (n·n), U (n·m), b (n), s_0 (n).
    P = {name: x.new_zeros(B, n, size)
         for name, size in (("W", n * n), ("U", n * m), ("b", n))}
    P["s0"] = eye.expand(B, n, n)               # P_0 = ∂s_0/∂s_0 = I
    grad = {name: x.new_zeros(B, size) for name, size in
            (("W", n * n), ("U", n * m), ("b", n), ("s0", n))}
    s = s0
    with torch.no_grad():
        for x_t, g in zip(x, grad_states):      # g = ∂ℓ_t/∂s_t: (B, n)
            direct = {                          # ∂a_t/∂θ, holding s_{t-1}
                "W": torch.einsum("ij,bk->bijk", eye, s).flatten(2),
                "U": torch.einsum("ij,bk->bijk", eye, x_t).flatten(2),
                "b": eye.expand(B, n, n),
                "s0": 0}
            s = cell.step(cell.project_input(x_t), s)[0]      # s_t
            d = activation_derivative(cell.nonlinearity, s)   # φ'(a_t)
            for name in P:                      # the n⁴ step for W
                P[name] = d[..., None] * (W @ P[name] + direct[name])
                grad[name] += (g[:, None, :] @ P[name])[:, 0]
    return VanillaGradients(grad["W"].sum(0).reshape(n, n),
                            grad["U"].sum(0).reshape(n, m),
                            grad["b"].sum(0), s0=grad["s0"])


def autograd_graph_size(tensor: Tensor) -> int:
    """The number of nodes in the autograd graph behind ``tensor``: the
    backward functions a ``backward()`` from it would visit (0 for a
    tensor that records no graph)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"expected a torch.Tensor, got "
                        f"{type(tensor).__name__}")
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(child for child, _ in node.next_functions)
    return len(seen)
