"""The gated recurrent unit (Part II of the book).

The GRU couples the prototype's write and forget gates, f = z and
i = 1 - z, so that every step overwrites a fraction of the state instead
of adding to it: s_t is a coordinatewise convex combination of s_{t-1}
and the candidate s̃_t. With φ = tanh this bounds the state.

Two placements of the reset gate are in use, and they are different
functions: Cho et al. (2014) and the book's source post reset the state
*before* the candidate's matrix product, W (r ⊙ s); PyTorch and cuDNN
reset *after* it, r ⊙ (W s + b_W). :class:`GRUCell` computes either.
"""
from __future__ import annotations


import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .kernels import gru_sequence
from .prototype import GatedCell
from .torch_interop import new_torch_module, torch_weights
from .._checks import check_finite_real

__all__ = ["RESET_PLACEMENTS", "GRUCell"]

#: Where the reset gate acts: before or after the candidate's W product.
RESET_PLACEMENTS = ("before", "after")


class GRUCell(GatedCell):
    r"""The gated recurrent unit, with the reset gate before or after W.

    .. math::

        r_t, z_t &= \sigma(W_{r,z}\, s_{t-1} + U_{r,z}\, x_t + b_{r,z}) \\
        \tilde s_t &= \phi(W (r_t \odot s_{t-1}) + U_{\tilde s}\, x_t
                           + b_{\tilde s})
            && \text{reset="before" (Cho et al. 2014, the post)} \\
        \tilde s_t &= \phi(r_t \odot (W s_{t-1} + b_W) + U_{\tilde s}\, x_t
                           + b_{\tilde s})
            && \text{reset="after" (PyTorch, cuDNN)} \\
        s_t &= z_t \odot s_{t-1} + (1 - z_t) \odot \tilde s_t, \qquad
        \text{output } s_t

    with φ = tanh. ``z_t`` is the weight of the *old* state (a
    "do-not-update" gate, the prototype's forget gate); PyTorch's
    ``h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}`` is the same rule, so its z
    is this z. Both modes keep the same parameters, so that the two are
    comparable weight for weight. With the reset after, every recurrent
    term of a step is one matrix product of ``s_{t-1}`` with the stacked
    ``[W_{r,z}; W]`` (PyTorch's ``weight_hh``); with the reset before, the
    candidate's product acts on ``r_t ⊙ s_{t-1}`` and has to wait for
    ``r_t``, so a step takes two products, one after the other.

    Args:
        input_size: m, the size of ``x_t``.
        state_size: n, the size of ``s_t``.
        reset: ``"before"`` (default) or ``"after"``, see above.
        update_bias: the initial value of ``b_z`` (default 1.0). Since z
            keeps the old state, a positive ``b_z`` starts the cell
            remembering (``z ≈ σ(1) ≈ 0.73``), like an LSTM's forget bias
            of 1. PyTorch's ``nn.GRU`` draws all biases uniformly instead.

    Parameters (rows stacked in the order r | z, then s̃, PyTorch's r, z, n):
        W_gates: ``(2n, n)``, W_{r,z} = ``[W_r; W_z]``, acting on
            ``s_{t-1}`` (PyTorch's ``weight_hh[:2n]``).
        W: ``(n, n)``, the candidate's recurrent weights (``weight_hh[2n:]``).
        U: ``(3n, m)``, ``[U_r; U_z; U_s̃]`` (``weight_ih``).
        b: ``(3n,)``, ``[b_r; b_z; b_s̃]`` (``bias_ih + bias_hh`` for r and
            z, where only the sum matters; ``bias_ih[2n:]`` for s̃).
        b_W: ``(n,)``, reset="after" only: the bias inside the reset
            product (``bias_hh[2n:]``); it is multiplied by r, so it cannot
            be folded into b. With reset="before", ``b_W`` is ``None``.

    Weights are drawn from the uniform distribution 𝒰(−1/√n, 1/√n),
    PyTorch's default; biases are 0 except ``b_z = update_bias``.

    Inputs: ``x`` ``(B, m)``, ``s`` ``(B, n)``.
    Outputs: ``(s_t, s_t)``, each ``(B, n)``: the output is the new state.

    Example: the two placements share their parameters but for ``b_W``;
    from the zero state every unit stays within [-1, 1], a weighted
    average of the old state and a candidate in (-1, 1).

    >>> import torch
    >>> from lstmlib import GRUCell, Recurrent
    >>> before = GRUCell(input_size=3, state_size=5)
    >>> after = GRUCell(input_size=3, state_size=5, reset="after")
    >>> before.b_W is None, after.b_W.shape
    (True, torch.Size([5]))
    >>> outputs, s_T = Recurrent(before)(torch.randn(7, 2, 3))  # (T, B, m)
    >>> outputs.shape, s_T.shape
    (torch.Size([7, 2, 5]), torch.Size([2, 5]))
    >>> bool((outputs.abs() <= 1).all())
    True
    """

    gate_names = ("r", "z", "s_tilde")

    def __init__(self, input_size: int, state_size: int, *,
                 reset: str = "before", update_bias: float = 1.0):
        super().__init__(input_size, state_size, W_gates=2, W=1)
        if reset not in RESET_PLACEMENTS:
            raise ValueError(f"GRUCell: expected reset to be one of "
                             f"{list(RESET_PLACEMENTS)}, got {reset!r}")
        self.reset = reset
        self.update_bias = check_finite_real("GRUCell", "update_bias",
                                             update_bias)
        if reset == "after":
            self.b_W = nn.Parameter(torch.empty(state_size))
        else:
            self.register_parameter("b_W", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # b_z = update_bias; b and b_W otherwise 0
        self.reset_gated_parameters(self.update_bias, biases=("b", "b_W"))

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.U, self.b)  # U x_t + b: (..., 3n)

    def step(self, x_proj: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        n = self.state_size
        gates_x, candidate_x = x_proj.split((2 * n, n), dim=-1)
        if self.reset == "before":
            # r_t, z_t = σ(W_{r,z} s_{t-1} + U_{r,z} x_t + b_{r,z})
            gates = torch.sigmoid(F.linear(s, self.W_gates) + gates_x)
            r, z = gates.split(n, dim=-1)                 # (B, n) each
            # s̃_t = φ(W (r_t ⊙ s_{t-1}) + U_s̃ x_t + b_s̃): (B, n)
            reset_s = F.linear(r * s, self.W)
        else:
            # every recurrent term in one product with [W_{r,z}; W]: (B, 3n)
            gates_s, candidate_s = F.linear(
                s, torch.cat([self.W_gates, self.W])).split((2 * n, n), -1)
            gates = torch.sigmoid(gates_s + gates_x)
            r, z = gates.split(n, dim=-1)                 # (B, n) each
            # s̃_t = φ(r_t ⊙ (W s_{t-1} + b_W) + U_s̃ x_t + b_s̃): (B, n)
            reset_s = r * (candidate_s + self.b_W)
        s_tilde = torch.tanh(reset_s + candidate_x)
        # s_t = z_t ⊙ s_{t-1} + (1 - z_t) ⊙ s̃_t: (B, n)
        s = z * s + (1 - z) * s_tilde
        return s, s

    def forward_sequence(self, x: Tensor, s: Tensor):
        # the fast path of Recurrent: the loop of step in one kernel, for
        # the reset after the product
        if self.reset != "after" or not self.computes_step_of(GRUCell):
            return None
        return gru_sequence(x, s, self.W_gates, self.W, self.U, self.b,
                            self.b_W)

    # -- PyTorch interoperability -------------------------------------------
    @classmethod
    def from_torch(cls, module: nn.GRU | nn.GRUCell) -> GRUCell:
        """A reset="after" cell computing the same function as a one-layer,
        unidirectional ``nn.GRU`` or an ``nn.GRUCell`` (weights are copied,
        not shared)."""
        w = torch_weights("GRUCell.from_torch", module, nn.GRU, nn.GRUCell)
        n = module.hidden_size
        cell = cls(module.input_size, n, reset="after")
        cell.to(device=w.weight_ih.device, dtype=w.weight_ih.dtype)
        with torch.no_grad():
            cell.W_gates.copy_(w.weight_hh[:2 * n])
            cell.W.copy_(w.weight_hh[2 * n:])
            cell.U.copy_(w.weight_ih)
            cell.b.zero_()
            cell.b_W.zero_()
            if w.bias_ih is not None:
                cell.b.add_(w.bias_ih)                    # b_r, b_z, b_s̃
                cell.b[:2 * n].add_(w.bias_hh[:2 * n])    # + b_hr, b_hz
                cell.b_W.copy_(w.bias_hh[2 * n:])         # b_hn
        return cell

    def to_torch(self, kind: str = "GRU") -> nn.GRU | nn.GRUCell:
        """The equivalent PyTorch module: ``kind="GRU"`` gives a time-major
        one-layer ``nn.GRU``, ``kind="GRUCell"`` an ``nn.GRUCell``. Only a
        reset="after" cell has one: PyTorch resets after the product."""
        if self.reset != "after":
            raise ValueError(
                f"GRUCell.to_torch: PyTorch's GRU applies the reset gate "
                f"after the candidate's matrix product, r ⊙ (W s + b_W); "
                f"this cell has reset={self.reset!r}, W (r ⊙ s), a different "
                f"function. Only reset='after' cells can be converted"
            )
        module, w = new_torch_module("GRUCell.to_torch", kind, nn.GRU,
                                     nn.GRUCell, self.W, self.input_size,
                                     self.state_size)
        n = self.state_size
        with torch.no_grad():
            w.weight_hh.copy_(torch.cat([self.W_gates, self.W]))
            w.weight_ih.copy_(self.U)
            w.bias_ih.copy_(self.b)
            w.bias_hh[:2 * n].zero_()
            w.bias_hh[2 * n:].copy_(self.b_W)
        return module

    def extra_repr(self) -> str:
        return super().extra_repr() + f", reset={self.reset!r}"
