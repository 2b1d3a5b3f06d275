"""The vanilla RNN cell (Chapter 2 of the book)."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .activations import ACTIVATIONS, activation_named
from .kernels import vanilla_sequence
from .recurrent import Cell
from .torch_interop import new_torch_module, torch_weights

__all__ = ["VanillaRNNCell", "NONLINEARITIES"]

#: The activation functions φ a vanilla cell accepts, by name (the
#: functions of :data:`~lstmlib.cells.activations.ACTIVATIONS`).
NONLINEARITIES = {name: a.function for name, a in ACTIVATIONS.items()}


class VanillaRNNCell(Cell):
    r"""The vanilla RNN cell: one layer whose output is also the next state.

    .. math::

        s_t = \phi(W s_{t-1} + U x_t + b), \qquad o_t = s_t

    Args:
        input_size: m, the size of ``x_t``.
        state_size: n, the size of ``s_t``.
        nonlinearity: φ, one of ``"tanh"`` (default), ``"relu"``,
            ``"sigmoid"``.

    Parameters (``state_dict`` names are the book's symbols):
        W: ``(n, n)``, the recurrent weights (PyTorch's ``weight_hh``).
        U: ``(n, m)``, the input weights (PyTorch's ``weight_ih``).
        b: ``(n,)``, the bias (PyTorch's ``bias_ih + bias_hh``; only their sum
            matters, so the book keeps one).

    All are initialised from U(-1/√n, 1/√n), PyTorch's default for
    ``nn.RNN``.

    Inputs: ``x`` ``(B, m)``, ``s`` ``(B, n)``.
    Outputs: ``(s_t, s_t)``, each ``(B, n)``: the output is the new state.
    """

    def __init__(
        self, input_size: int, state_size: int, nonlinearity: str = "tanh"
    ):
        super().__init__(input_size, state_size)
        self.phi = activation_named("VanillaRNNCell", nonlinearity).function
        self.nonlinearity = nonlinearity
        self.W = nn.Parameter(torch.empty(state_size, state_size))
        self.U = nn.Parameter(torch.empty(state_size, input_size))
        self.b = nn.Parameter(torch.empty(state_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.uniform_parameters_()

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.U, self.b)  # U x_t + b: (..., n)

    def step(self, ux: Tensor, s: Tensor) -> Tuple[Tensor, Tensor]:
        # s_t = φ(W s_{t-1} + U x_t + b): (B, n)
        s = self.phi(F.linear(s, self.W) + ux)
        return s, s

    def forward_sequence(self, x: Tensor, s: Tensor):
        # the fast path of Recurrent: the loop of step in one kernel
        if not self.computes_step_of(VanillaRNNCell):
            return None
        return vanilla_sequence(x, s, self.W, self.U, self.b,
                                self.nonlinearity)

    # -- PyTorch interoperability -------------------------------------------
    @classmethod
    def from_torch(cls, module: nn.RNN | nn.RNNCell) -> "VanillaRNNCell":
        """A cell computing the same function as a one-layer, unidirectional
        ``nn.RNN`` or an ``nn.RNNCell`` (weights are copied, not shared)."""
        w = torch_weights("VanillaRNNCell.from_torch", module, nn.RNN,
                          nn.RNNCell)
        cell = cls(module.input_size, module.hidden_size,
                   nonlinearity=module.nonlinearity)
        cell.to(device=w.weight_ih.device, dtype=w.weight_ih.dtype)
        with torch.no_grad():
            cell.W.copy_(w.weight_hh)
            cell.U.copy_(w.weight_ih)
            cell.b.copy_(w.summed_bias())       # only the sum matters
        return cell

    def to_torch(self, kind: str = "RNN") -> nn.RNN | nn.RNNCell:
        """The equivalent PyTorch module: ``kind="RNN"`` gives a time-major
        one-layer ``nn.RNN``, ``kind="RNNCell"`` an ``nn.RNNCell``. PyTorch has no
        sigmoid RNN, so a sigmoid cell raises ``ValueError``."""
        if self.nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"VanillaRNNCell.to_torch: PyTorch supports nonlinearity "
                f"'tanh' or 'relu', this cell uses {self.nonlinearity!r}"
            )
        module, w = new_torch_module("VanillaRNNCell.to_torch", kind, nn.RNN,
                                     nn.RNNCell, self.W, self.input_size,
                                     self.state_size,
                                     nonlinearity=self.nonlinearity)
        with torch.no_grad():
            w.weight_hh.copy_(self.W)
            w.weight_ih.copy_(self.U)
            w.bias_ih.copy_(self.b)
            w.bias_hh.zero_()
        return module

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"
