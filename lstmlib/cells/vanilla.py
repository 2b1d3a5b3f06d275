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

__all__ = ["VanillaRNNCell", "SingleLayerCell", "NONLINEARITIES"]

#: The activation functions φ a vanilla cell accepts, by name (the
#: functions of :data:`~lstmlib.cells.activations.ACTIVATIONS`).
NONLINEARITIES = {name: a.function for name, a in ACTIVATIONS.items()}


class SingleLayerCell(Cell):
    r"""What the vanilla and the additive cell share: one layer
    ``φ(W s_{t-1} + U x_t + b)`` and its parameters.

    Args:
        input_size: m, the size of ``x_t``.
        state_size: n, the size of ``s_t``.
        nonlinearity: φ, one of ``"tanh"`` (default), ``"relu"``,
            ``"sigmoid"``.
        recurrent: if ``False``, the layer does not read the state: ``W``
            is fixed at zero and is not a parameter.

    Parameters: ``W`` ``(n, n)`` (absent without ``recurrent``), ``U``
    ``(n, m)``, ``b`` ``(n,)``, all drawn from the uniform distribution
    𝒰(−1/√n, 1/√n), PyTorch's default for ``nn.RNN``. The subclass
    writes :meth:`project_input` and :meth:`step`, the parts a chapter
    shows.
    """

    def __init__(self, input_size: int, state_size: int,
                 nonlinearity: str = "tanh", *, recurrent: bool = True):
        super().__init__(input_size, state_size)
        self.phi = activation_named(type(self).__name__,
                                    nonlinearity).function
        self.nonlinearity = nonlinearity
        if recurrent:
            self.W = nn.Parameter(torch.empty(state_size, state_size))
        self.U = nn.Parameter(torch.empty(state_size, input_size))
        self.b = nn.Parameter(torch.empty(state_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.uniform_parameters_()

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class VanillaRNNCell(SingleLayerCell):
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

    All are drawn from the uniform distribution 𝒰(−1/√n, 1/√n),
    PyTorch's default for ``nn.RNN``.

    Inputs: ``x`` ``(B, m)``, ``s`` ``(B, n)``.
    Outputs: ``(s_t, s_t)``, each ``(B, n)``: the output is the new state.

    Example: one step of a batch of B = 2, then a sequence of T = 7 steps
    through :class:`~lstmlib.cells.recurrent.Recurrent`.

    >>> import torch
    >>> from lstmlib import Recurrent, VanillaRNNCell
    >>> cell = VanillaRNNCell(input_size=3, state_size=5)
    >>> o_t, s_t = cell(torch.randn(2, 3), cell.initial_state(2))
    >>> o_t.shape, torch.equal(o_t, s_t)              # o_t = s_t
    (torch.Size([2, 5]), True)
    >>> outputs, s_T = Recurrent(cell)(torch.randn(7, 2, 3))   # (T, B, m)
    >>> outputs.shape, s_T.shape
    (torch.Size([7, 2, 5]), torch.Size([2, 5]))
    >>> bool((outputs.abs() <= 1).all())              # φ = tanh
    True
    """

    def __init__(
        self, input_size: int, state_size: int, nonlinearity: str = "tanh"
    ):
        super().__init__(input_size, state_size, nonlinearity)

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
        w.copy_into(cell)                   # b: the sum of the two biases
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
        w.copy_from(self)                   # b to bias_ih, bias_hh = 0
        return module
