"""The gradient of the basic LSTM over a sequence, derived by hand.

Part II, "Deriving the LSTM", is built on this module. For the cell of
:class:`~lstmlib.cells.lstm.BasicLSTMCell`, with the pre-activations cut into
four blocks,

    a_t = W h_{t-1} + U x_t + b = (a_i, a_f, a_c̃, a_o),
    i_t = σ(a_i),  f_t = σ(a_f),  c̃_t = φ(a_c̃),  o_t = σ(a_o),
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t,    h_t = o_t ⊙ φ(c_t),

and a loss L = Σ_t ℓ_t(h_t) (+ ℓ(c_T)) whose direct gradients ∂ℓ_t/∂h_t
(and ∂ℓ/∂c_T) are given, :func:`lstm_bptt` computes ∂L/∂W, ∂L/∂U, ∂L/∂b,
∂L/∂h_0 and ∂L/∂c_0 without automatic differentiation.

The derivation. h_t reaches L directly and through a_{t+1}; c_t reaches
L through h_t and through c_{t+1}, where ∂c_{t+1}/∂c_t = [f_{t+1}] (the
gates read h_t, not c_t). Writing dv for the total derivative ∂L/∂v and
δ_t = ∂L/∂a_t, from t = T down to 1, with δ_{T+1} = 0 and
dc_{T+1} ⊙ f_{T+1} replaced by ∂ℓ/∂c_T (zero if not given):

    dh_t = ∂ℓ_t/∂h_t + Wᵀ δ_{t+1}
    dc_t = dh_t ⊙ o_t ⊙ φ'(c_t) + dc_{t+1} ⊙ f_{t+1}
    do_t = dh_t ⊙ φ(c_t),        dc̃_t = dc_t ⊙ i_t,
    di_t = dc_t ⊙ c̃_t,           df_t = dc_t ⊙ c_{t-1},
    δ_t  = (di_t ⊙ σ'(a_i), df_t ⊙ σ'(a_f), dc̃_t ⊙ φ'(a_c̃), do_t ⊙ σ'(a_o))

with σ'(a_i) = i_t(1 - i_t), φ'(a_c̃) = 1 - c̃_t² and so on, read off the
kept gates. Then

    ∂L/∂W = Σ_t δ_t h_{t-1}ᵀ,   ∂L/∂U = Σ_t δ_t x_tᵀ,   ∂L/∂b = Σ_t δ_t,
    ∂L/∂h_0 = Wᵀ δ_1,           ∂L/∂c_0 = dc_1 ⊙ f_1.

The term dc_{t+1} ⊙ f_{t+1} is the memory cell's direct path backwards
(the constant-error carousel): along it the gradient is multiplied by
the forget gate and nothing else, no weight matrix and no φ'. The
factors f_t are kept in :class:`LSTMStates`.

Shapes: time-major inputs ``x`` ``(T, B, m)``, states ``(B, n)``,
``grad_h[t - 1]`` = ∂ℓ_t/∂h_t ``(T, B, n)``. The loss is a sum over the
batch, so parameter gradients are summed over it too.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..cells.kernels import lstm_forward
from ..cells.lstm import BasicLSTMCell
from .._checks import check_cell_and_sequence

__all__ = ["LSTMGradients", "LSTMStates", "lstm_bptt", "lstm_states"]


@dataclass
class LSTMStates:
    """The forward pass of a :class:`~lstmlib.cells.lstm.BasicLSTMCell` over a
    sequence, kept for the backward pass.

    Attributes:
        h: ``(T + 1, B, n)``, h_0, h_1, ..., h_T.
        c: ``(T + 1, B, n)``, c_0, c_1, ..., c_T.
        i, f, c_tilde, o: ``(T, B, n)`` each; entry ``t - 1`` holds the
            gates i_t, f_t, o_t and the candidate write c̃_t of step t.
            f_t is the factor ∂c_t/∂c_{t-1} = [f_t] of the memory cell's
            direct path.
    """

    h: Tensor
    c: Tensor
    i: Tensor
    f: Tensor
    c_tilde: Tensor
    o: Tensor


@dataclass
class LSTMGradients:
    """The gradient of a loss with respect to a basic LSTM's parameters
    and initial state.

    Attributes:
        W: ∂L/∂W ``(4n, n)``, rows i | f | c̃ | o.
        U: ∂L/∂U ``(4n, m)``.
        b: ∂L/∂b ``(4n,)``.
        h0: ∂L/∂h_0 ``(B, n)``.
        c0: ∂L/∂c_0 ``(B, n)``.
        h: ∂L/∂h_t for t = 1, ..., T ``(T, B, n)``, total derivatives.
        c: ∂L/∂c_t for t = 1, ..., T ``(T, B, n)``, total derivatives.
        preactivations: δ_t = ∂L/∂a_t for t = 1, ..., T ``(T, B, 4n)``,
            blocks i | f | c̃ | o.
    """

    W: Tensor
    U: Tensor
    b: Tensor
    h0: Tensor
    c0: Tensor
    h: Tensor
    c: Tensor
    preactivations: Tensor

    def parameters(self) -> Tensor:
        """∂L/∂W, ∂L/∂U and ∂L/∂b as one flat vector."""
        return torch.cat([self.W.reshape(-1), self.U.reshape(-1),
                          self.b.reshape(-1)])


def _check(cell, x, state, grad_h=None, grad_final_c=None) -> None:
    check_cell_and_sequence(cell, BasicLSTMCell, x, state)
    B, n = x.shape[1], cell.state_size
    for name, grad, shape in (("grad_h", grad_h, (x.shape[0], B, n)),
                              ("grad_final_c", grad_final_c, (B, n))):
        if grad is None:
            continue
        if not isinstance(grad, Tensor) or tuple(grad.shape) != shape:
            got = (tuple(grad.shape) if isinstance(grad, Tensor)
                   else type(grad).__name__)
            raise ValueError(f"expected {name} of shape {shape}, got {got}")


def lstm_states(cell: BasicLSTMCell, x: Tensor,
                state: tuple[Tensor, Tensor]) -> LSTMStates:
    """The forward pass with its gates kept, without recording a graph.

    It is the forward pass of the cell's fast path,
    :func:`lstmlib.cells.kernels.lstm_forward`, which keeps h_t, c_t and
    the activated gates of every step for its own backward pass.

    Args:
        cell: the basic LSTM (its W, U, b).
        x: inputs ``(T, B, m)``.
        state: the initial ``(h_0, c_0)``, each ``(B, n)``.
    """
    _check(cell, x, state)
    h0, c0 = (part.detach() for part in state)
    with torch.no_grad():
        h, c, gates, _ = lstm_forward(x, h0, c0, cell.W, cell.U, cell.b,
                                      keep=True)   # h_1..h_T, c_1..c_T
    i, f, c_tilde, o = gates.chunk(4, dim=-1)       # each (T, B, n)
    return LSTMStates(torch.cat([h0[None], h]), torch.cat([c0[None], c]),
                      i, f, c_tilde, o)


def lstm_bptt(cell: BasicLSTMCell, x: Tensor,
              state: tuple[Tensor, Tensor], grad_h: Tensor, *,
              grad_final_c: Tensor | None = None,
              states: LSTMStates | None = None) -> LSTMGradients:
    """Backpropagation through time for the basic LSTM, by hand (the
    recursion of the module docstring).

    Args:
        cell: the basic LSTM (its W, U, b).
        x: inputs ``(T, B, m)``.
        state: the initial ``(h_0, c_0)``, each ``(B, n)``.
        grad_h: ∂ℓ_t/∂h_t ``(T, B, n)``, the direct gradients.
        grad_final_c: ∂ℓ/∂c_T ``(B, n)``, a direct gradient of the final
            memory cell (say, from the next window of truncated BPTT);
            zero if ``None``.
        states: the forward pass to differentiate at; by default
            :func:`lstm_states` recomputes it with the cell's weights.
    """
    _check(cell, x, state, grad_h, grad_final_c)
    if states is None:
        states = lstm_states(cell, x, state)
    W, T = cell.W.detach(), x.shape[0]
    h, c, i, f, c_tilde, o = (states.h, states.c, states.i, states.f,
                              states.c_tilde, states.o)
    dW, dU, db = (torch.zeros_like(p) for p in (cell.W, cell.U, cell.b))
    dh_all, dc_all = torch.empty_like(grad_h), torch.empty_like(grad_h)
    deltas = grad_h.new_empty(*grad_h.shape[:2], 4 * cell.state_size)
    W_delta = torch.zeros_like(grad_h[0])       # Wᵀ δ_{T+1} = 0: (B, n)
    carry = (torch.zeros_like(grad_h[0]) if grad_final_c is None
             else grad_final_c)                 # dc_{T+1} ⊙ f_{T+1}
    for t in range(T, 0, -1):                   # t = T, ..., 1
        k = t - 1                               # index of step t's gates
        squashed = torch.tanh(c[t])             # φ(c_t)
        dh = grad_h[k] + W_delta                # ∂L/∂h_t
        dc = dh * o[k] * (1 - squashed ** 2) + carry          # ∂L/∂c_t
        do, dc_tilde = dh * squashed, dc * i[k]
        di, df = dc * c_tilde[k], dc * c[t - 1]
        delta = torch.cat([di * i[k] * (1 - i[k]),            # δ_t:
                           df * f[k] * (1 - f[k]),            # (B, 4n)
                           dc_tilde * (1 - c_tilde[k] ** 2),
                           do * o[k] * (1 - o[k])], dim=-1)
        dW += delta.T @ h[t - 1]                # δ_t h_{t-1}ᵀ, over batch
        dU += delta.T @ x[k]                    # δ_t x_tᵀ
        db += delta.sum(0)                      # δ_t
        W_delta = delta @ W                     # Wᵀ δ_t, one row each
        carry = dc * f[k]                       # dc_t ⊙ f_t: the carousel
        dh_all[k], dc_all[k], deltas[k] = dh, dc, delta
    return LSTMGradients(dW, dU, db, h0=W_delta, c0=carry, h=dh_all,
                         c=dc_all, preactivations=deltas)

