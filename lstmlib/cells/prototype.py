"""The prototype LSTM and its normalized variant (Part II of the book).

The prototype glues the three gates to an incremental write: the output
(read) gate selects what of the old state the candidate write may read,
the input (write) gate how much of the candidate is written, the forget
gate how much of the old state is kept. No bound on its state holds
independently of t (only ‖s_t‖∞ < ‖s_0‖∞ + t), which is why it can drift;
the normalized prototype divides the state by √(var(s_t) + 1) at every
step, a soft bound on the spread of its units.

:class:`GatedCell` holds what the prototype shares with the GRU and the
LSTMs built from it: the fused input map and how the gates' parameters
start.
"""
from __future__ import annotations


import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .recurrent import Cell
from .._checks import check_finite_real

__all__ = ["GatedCell", "NormalizedPrototypeLSTMCell", "PrototypeLSTMCell"]


class GatedCell(Cell):
    r"""What the gated cells share: the prototype, the GRU and the LSTMs.

    Their input enters through one fused affine map ``U x_t + b``: ``U``
    and ``b`` stack one n-row block per entry of ``gate_names`` (the gates
    and the candidate write), ``len(gate_names) · n`` rows in all.
    The subclass names its recurrent weights with their number of n-row
    blocks: ``W_gates=3, W=1`` makes ``W_gates`` ``(3n, n)`` and ``W``
    ``(n, n)``. The subclass writes :meth:`project_input` and
    :meth:`step`, the parts a chapter shows.
    """

    def __init__(self, input_size: int, state_size: int,
                 **recurrent_blocks: int):
        super().__init__(input_size, state_size)
        n, k = state_size, len(self.gate_names)
        for name, blocks in recurrent_blocks.items():     # W_gates, W
            setattr(self, name, nn.Parameter(torch.empty(blocks * n, n)))
        self.U = nn.Parameter(torch.empty(k * n, input_size))
        self.b = nn.Parameter(torch.empty(k * n))

    def reset_gated_parameters(self, keep_bias: float,
                               biases: tuple[str, ...] = ("b",)) -> None:
        """Start as every gated cell starts: the weights drawn from the
        uniform distribution 𝒰(−1/√n, 1/√n), PyTorch's default; the
        ``biases`` at 0, except the second block of ``b`` (rows n to 2n),
        the bias of the gate that keeps the old state (the forget gate f,
        the GRU's z): it starts at ``keep_bias``, so that a new cell
        remembers when it is positive."""
        n = self.state_size
        self.uniform_parameters_(exclude=biases)
        with torch.no_grad():
            for name, bias in self.named_parameters():
                if name in biases:
                    bias.zero_()
            self.b[n:2 * n].fill_(keep_bias)


class PrototypeLSTMCell(GatedCell):
    r"""The prototype LSTM: gated reads, writes and forgets of one state.

    .. math::

        i_t, f_t, o_t &= \sigma(W_{i,f,o}\, s_{t-1} + U_{i,f,o}\, x_t
                                + b_{i,f,o}) \\
        \tilde s_t &= \phi(W (o_t \odot s_{t-1}) + U_{\tilde s}\, x_t
                           + b_{\tilde s}) \\
        s_t &= f_t \odot s_{t-1} + i_t \odot \tilde s_t, \qquad
        \text{output } s_t

    with φ = tanh. The three gates read ``s_{t-1}`` and are computed with
    one matrix product; the candidate write reads ``o_t ⊙ s_{t-1}``, a
    different vector, so its recurrent matrix ``W`` is a separate
    parameter. No bound on ``s_t`` holds independently of t: only
    ‖s_t‖∞ < ‖s_0‖∞ + t.

    Args:
        input_size: m, the size of ``x_t``.
        state_size: n, the size of ``s_t``.
        forget_bias: the initial value of ``b_f`` (default 1.0, so that
            ``f_t ≈ σ(1) ≈ 0.73`` at first: remember by default).

    Parameters (rows stacked in the order i | f | o, then s̃):
        W_gates: ``(3n, n)``, W_{i,f,o} = ``[W_i; W_f; W_o]``, acting on
            ``s_{t-1}``.
        W: ``(n, n)``, the candidate's weights, acting on ``o_t ⊙ s_{t-1}``.
        U: ``(4n, m)``, ``[U_i; U_f; U_o; U_s̃]``.
        b: ``(4n,)``, ``[b_i; b_f; b_o; b_s̃]``.

    Weights are drawn from the uniform distribution 𝒰(−1/√n, 1/√n),
    PyTorch's default; biases are 0 except ``b_f = forget_bias``.

    Inputs: ``x`` ``(B, m)``, ``s`` ``(B, n)``.
    Outputs: ``(s_t, s_t)``, each ``(B, n)``: the output is the new state.

    Example: the fused parameters, and a sequence of T = 7 steps from the
    zero state: each step writes at most 1 per unit, so no unit moves by
    more than 7.

    >>> import torch
    >>> from lstmlib import PrototypeLSTMCell, Recurrent
    >>> cell = PrototypeLSTMCell(input_size=3, state_size=5)
    >>> cell.W_gates.shape, cell.W.shape, cell.U.shape   # n = 5, m = 3
    (torch.Size([15, 5]), torch.Size([5, 5]), torch.Size([20, 3]))
    >>> cell.b[5:10].tolist()                            # b_f
    [1.0, 1.0, 1.0, 1.0, 1.0]
    >>> outputs, s_T = Recurrent(cell)(torch.randn(7, 2, 3))   # (T, B, m)
    >>> outputs.shape, s_T.shape
    (torch.Size([7, 2, 5]), torch.Size([2, 5]))
    >>> bool((s_T.abs() <= 7).all())
    True
    """

    gate_names = ("i", "f", "o", "s_tilde")

    def __init__(self, input_size: int, state_size: int, *,
                 forget_bias: float = 1.0):
        super().__init__(input_size, state_size, W_gates=3, W=1)
        self.forget_bias = check_finite_real(type(self).__name__,
                                             "forget_bias", forget_bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.reset_gated_parameters(self.forget_bias)     # b_f = forget_bias

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.U, self.b)  # U x_t + b: (..., 4n)

    def step(self, x_proj: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        n = self.state_size
        gates_x, candidate_x = x_proj.split((3 * n, n), dim=-1)
        # i_t, f_t, o_t = σ(W_{i,f,o} s_{t-1} + U_{i,f,o} x_t + b_{i,f,o})
        gates = torch.sigmoid(F.linear(s, self.W_gates) + gates_x)
        i, f, o = gates.split(n, dim=-1)                  # (B, n) each
        # s̃_t = φ(W (o_t ⊙ s_{t-1}) + U_s̃ x_t + b_s̃): (B, n)
        s_tilde = torch.tanh(F.linear(o * s, self.W) + candidate_x)
        # s_t = f_t ⊙ s_{t-1} + i_t ⊙ s̃_t: (B, n)
        s = f * s + i * s_tilde
        return s, s


class NormalizedPrototypeLSTMCell(PrototypeLSTMCell):
    r"""The prototype LSTM with its state divided by √(var(s_t) + 1).

    .. math::

        s_t = \frac{s'_t}{\sqrt{\operatorname{var}(s'_t) + 1}}, \qquad
        \operatorname{var}(s'_t) = \frac1n \sum_{j=1}^n
            \bigl(s'_{t,j} - \bar s'_t\bigr)^2, \qquad
        \bar s'_t = \frac1n \sum_{j=1}^n s'_{t,j}

    where ``s'_t`` is the prototype's new state (see
    :class:`PrototypeLSTMCell`), computed from the normalized ``s_{t-1}``.
    The variance is the population variance over the n units of each batch
    row (divisor n, not n - 1); the +1 keeps a zero state from being
    divided by zero. Afterwards ``var(s_t) = var(s'_t)/(var(s'_t) + 1)``,
    which is below 1: the spread of the units is bounded, their mean is
    not (a state whose units are all equal has variance 0 and is left as
    is).

    Arguments, parameters, inputs and outputs are the prototype's.

    Example: after every step the variance over the units is below 1.

    >>> import torch
    >>> from lstmlib import NormalizedPrototypeLSTMCell, Recurrent
    >>> cell = NormalizedPrototypeLSTMCell(input_size=3, state_size=5)
    >>> outputs, _ = Recurrent(cell)(torch.randn(7, 2, 3))     # (T, B, m)
    >>> var = outputs.var(dim=-1, correction=0)   # over the n units
    >>> var.shape, bool((var < 1).all())          # every step, every row
    (torch.Size([7, 2]), True)
    """

    def step(self, x_proj: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        s, _ = super().step(x_proj, s)                    # s'_t: (B, n)
        # var(s'_t), the mean square deviation over the n units: (B, 1)
        var = s.var(dim=-1, correction=0, keepdim=True)
        s = s / torch.sqrt(var + 1)                       # (B, n)
        return s, s
