"""The LSTM family: the pseudo LSTM, the basic LSTM, the eight cells in
between, and the LSTM with peepholes (Part II, "Deriving the LSTM").

* :class:`PseudoLSTMCell` squashes its state with φ wherever it is read;
  its gates and candidate write all see φ(s_{t-1}).
* :class:`BasicLSTMCell` is the LSTM of PyTorch's ``nn.LSTM``: it reads its
  state *after* writing it, so it passes a gated shadow state h_t along
  with the memory cell c_t.
* :class:`LSTMVariantCell` adds to the pseudo LSTM any subset of the three
  differences that separate it from the basic LSTM. Without any it is the
  pseudo LSTM, with all three the basic LSTM.
* :class:`PeepholeLSTMCell` lets the gates see the memory cell itself.

φ is tanh and σ the logistic sigmoid throughout. Stacked parameters keep
the blocks of the gates and the candidate write in PyTorch's order
i | f | c̃ | o (the book's W_ifgo, U_ifgo, b_ifgo), except in the pseudo
LSTM, which keeps the prototype's layout: gates i | f | o, then the
candidate write s̃.
"""
from __future__ import annotations


import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .kernels import lstm_sequence
from .prototype import GatedCell
from .torch_interop import new_torch_module, torch_weights
from .._checks import check_finite_real

__all__ = ["LSTM_VARIANTS", "PEEPHOLES", "BasicLSTMCell",
           "LSTMVariantCell", "PeepholeLSTMCell", "PseudoLSTMCell"]

#: The eight architectures of the post's comparison, by the post's number,
#: as the keyword arguments of :class:`LSTMVariantCell` that build them:
#: 1 is the pseudo LSTM, 8 the basic LSTM.
LSTM_VARIANTS = {
    1: {"diff1": False, "diff2": False, "diff3": False},
    2: {"diff1": True, "diff2": False, "diff3": False},
    3: {"diff1": True, "diff2": True, "diff3": False},
    4: {"diff1": True, "diff2": False, "diff3": True},
    5: {"diff1": False, "diff2": True, "diff3": False},
    6: {"diff1": False, "diff2": True, "diff3": True},
    7: {"diff1": False, "diff2": False, "diff3": True},
    8: {"diff1": True, "diff2": True, "diff3": True},
}

#: The kinds of peephole connection :class:`PeepholeLSTMCell` accepts.
PEEPHOLES = ("full", "diagonal")


def _check_flag(owner: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: expected {name} to be True or False, got "
                        f"{value!r}")
    return value


class _LSTMFamilyCell(GatedCell):
    """What the cells here share: a fused input map U x_t + b with 4n rows,
    weights drawn from the uniform distribution 𝒰(−1/√n, 1/√n), and
    biases 0 except the forget gate's (rows n to 2n in every layout here),
    which starts at ``forget_bias``."""

    def __init__(self, input_size: int, state_size: int,
                 forget_bias: float, **recurrent_blocks: int):
        super().__init__(input_size, state_size, **recurrent_blocks)
        self.forget_bias = check_finite_real(type(self).__name__,
                                             "forget_bias", forget_bias)

    def reset_parameters(self) -> None:
        """Weights drawn from 𝒰(−1/√n, 1/√n) (PyTorch's default); b = 0
        except the forget gate's block, b_f = ``forget_bias``."""
        self.reset_gated_parameters(self.forget_bias)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.U, self.b)  # U x_t + b: (..., 4n)

    def new_like(self, kind: type, **keywords) -> _LSTMFamilyCell:
        """A new ``kind`` cell with this cell's sizes, forget bias, device
        and dtype, its parameters freshly drawn; ``keywords`` are kind's
        other arguments."""
        cell = kind(self.input_size, self.state_size,
                    forget_bias=self.forget_bias, **keywords)
        return cell.to(device=self.W.device, dtype=self.W.dtype)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", forget_bias={self.forget_bias}"


class PseudoLSTMCell(_LSTMFamilyCell):
    r"""The pseudo LSTM: the prototype LSTM, reading its state through φ.

    .. math::

        \begin{aligned}
        (i_t, f_t, o_t) &= \sigma(W_{i,f,o}\, \phi(s_{t-1})
                              + U_{i,f,o}\, x_t + b_{i,f,o}) \\
        \tilde s_t &= \phi(W (o_t \odot \phi(s_{t-1}))
                           + U_{\tilde s}\, x_t + b_{\tilde s}) \\
        s_t &= f_t \odot s_{t-1} + i_t \odot \tilde s_t \\
        \text{output}_t &= \phi(s_t)
        \end{aligned}

    The state is never squashed itself (the write stays incremental);
    every use of it other than that write sees φ(s_{t-1}) ∈ (-1, 1)^n.

    Args:
        input_size: m, the size of ``x_t``.
        state_size: n, the size of ``s_t``.
        forget_bias: the initial value of the forget gate's bias b_f
            (default 1.0: f_t ≈ σ(1) ≈ 0.73 at the start of training).

    Parameters (the layout of :class:`~lstmlib.cells.prototype.PrototypeLSTMCell`,
    so ``load_state_dict`` moves weights between the two):
        W_gates: ``(3n, n)``, W_{i,f,o}, rows i | f | o, acting on
            φ(s_{t-1}).
        W: ``(n, n)``, the candidate write's weights, acting on
            o_t ⊙ φ(s_{t-1}).
        U: ``(4n, m)``, rows i | f | o | s̃.
        b: ``(4n,)``, blocks i | f | o | s̃.

    Inputs: ``x`` ``(B, m)``, ``s`` ``(B, n)``.
    Outputs: ``(φ(s_t), s_t)``, each ``(B, n)``.

    Example: the output is φ of the state; the state is not squashed.

    >>> import torch
    >>> from lstmlib import PseudoLSTMCell, Recurrent
    >>> cell = PseudoLSTMCell(input_size=3, state_size=5)
    >>> o_t, s_t = cell(torch.randn(2, 3), cell.initial_state(2))  # B = 2
    >>> o_t.shape, torch.equal(o_t, torch.tanh(s_t))
    (torch.Size([2, 5]), True)
    >>> outputs, s_T = Recurrent(cell)(torch.randn(7, 2, 3))   # (T, B, m)
    >>> outputs.shape, torch.equal(outputs[-1], torch.tanh(s_T))
    (torch.Size([7, 2, 5]), True)
    """

    gate_names = ("i", "f", "o", "s_tilde")

    def __init__(self, input_size: int, state_size: int, *,
                 forget_bias: float = 1.0):
        super().__init__(input_size, state_size, forget_bias, W_gates=3, W=1)
        self.reset_parameters()

    def step(self, x_proj: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        n = self.state_size
        ux_gates, ux_write = x_proj.split([3 * n, n], dim=-1)
        squashed = torch.tanh(s)                        # φ(s_{t-1}): (B, n)
        gates = torch.sigmoid(F.linear(squashed, self.W_gates) + ux_gates)
        i, f, o = gates.chunk(3, dim=-1)                # each (B, n)
        s_tilde = torch.tanh(F.linear(o * squashed, self.W) + ux_write)
        s = f * s + i * s_tilde                         # s_t: (B, n)
        return torch.tanh(s), s


class LSTMVariantCell(_LSTMFamilyCell):
    r"""The pseudo LSTM plus any of the three differences between it and
    the basic LSTM: the eight architectures that the source post
    (r2rt, 2016) compares.

    The three differences (the post's "LSTM diffs"):

    1. ``diff1``, read after write: the candidate write reads the shadow
       state passed from the previous step, h_{t-1} = o_{t-1} ⊙ φ(c_{t-1}),
       gated by the previous step's read gate, instead of o_t ⊙ φ(c_{t-1}).
    2. ``diff2``, gates read the read-gated state: the write and forget
       gates (and, with diff 1, the read gate) see the gated vector ĥ_t
       that the candidate write reads, instead of φ(c_{t-1}).
    3. ``diff3``, gated output: the output is h_t = o_t ⊙ φ(c_t) instead
       of φ(c_t).

    With ĥ_t the read-gated vector that the candidate write sees (``r`` in
    the code) and v^o_t, v^{i,f}_t the vectors that the read gate and the
    write and forget gates see (``v`` and ``g``):

    .. math::

        \begin{aligned}
        v^o_t &= h_{t-1} \text{ with diffs 1 and 2, else } \phi(c_{t-1})\\
        o_t &= \sigma(W_o v^o_t + U_o x_t + b_o) \\
        \hat h_t &= h_{t-1} \text{ with diff 1, else }
            o_t \odot \phi(c_{t-1})\\
        v^{i,f}_t &= \hat h_t \text{ with diff 2, else } \phi(c_{t-1}) \\
        (i_t, f_t) &= \sigma(W_{i,f}\, v^{i,f}_t + U_{i,f}\, x_t
            + b_{i,f}) \\
        \tilde c_t &= \phi(W_{\tilde c}\, \hat h_t + U_{\tilde c}\, x_t
            + b_{\tilde c}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot \tilde c_t \\
        h_t &= o_t \odot \phi(c_t) \\
        \text{output}_t &= h_t \text{ with diff 3, else } \phi(c_t)
        \end{aligned}

    Without diff 1, the read gate o_t cannot read the gated vector ĥ_t,
    since ĥ_t needs o_t; so diff 2 alone moves only the write and forget
    gates onto ĥ_t (the post's architectures 5 and 6). With diffs 1 and 2
    all three gates read h_{t-1}.

    =====  ============  ==============================================
    post   differences   keywords (:data:`LSTM_VARIANTS`)
    =====  ============  ==============================================
    1      none          the pseudo LSTM (:class:`PseudoLSTMCell`)
    2      1             ``diff1=True``
    3      1, 2          ``diff1=True, diff2=True``
    4      1, 3          ``diff1=True, diff3=True``
    5      2             ``diff2=True``
    6      2, 3          ``diff2=True, diff3=True``
    7      3             ``diff3=True``
    8      1, 2, 3       the basic LSTM (:class:`BasicLSTMCell`)
    =====  ============  ==============================================

    Every variant carries the state ``(h, c)`` with h_t = o_t ⊙ φ(c_t),
    also where no later step reads h (without diff 1 the cell ignores
    h_{t-1}), so that all eight share one state structure and one set of
    parameters. The step computes three products (i | f fused, c̃, o)
    whatever the switches, so that one body of code serves all eight;
    :class:`BasicLSTMCell` fuses its four into one.

    Args:
        input_size: m, the size of ``x_t``.
        state_size: n, the size of ``h_t`` and ``c_t``.
        diff1, diff2, diff3: which differences to include (default none).
        forget_bias: the initial forget-gate bias b_f (default 1.0).

    Parameters (the layout of :class:`BasicLSTMCell`, so that
    ``load_state_dict`` moves weights between any two variants and the
    basic LSTM; :meth:`from_pseudo` and :meth:`to_pseudo` convert from and
    to :class:`PseudoLSTMCell`'s layout):
        W: ``(4n, n)``, W_ifgo, rows i | f | c̃ | o.
        U: ``(4n, m)``, U_ifgo, rows i | f | c̃ | o.
        b: ``(4n,)``, b_ifgo, blocks i | f | c̃ | o.

    Inputs: ``x`` ``(B, m)``, state ``(h, c)``, each ``(B, n)``.
    Outputs: ``(output_t, (h_t, c_t))``, each ``(B, n)``.

    Example: the post's architecture 4, one step from the zero state; and
    architecture 1, which computes what the pseudo LSTM computes.

    >>> import torch
    >>> from lstmlib import (LSTM_VARIANTS, LSTMVariantCell, PseudoLSTMCell,
    ...                      Recurrent)
    >>> cell = LSTMVariantCell(input_size=3, state_size=5, **LSTM_VARIANTS[4])
    >>> cell.differences
    (1, 3)
    >>> output, (h, c) = cell(torch.randn(2, 3), cell.initial_state(2))
    >>> output.shape, h.shape, c.shape
    (torch.Size([2, 5]), torch.Size([2, 5]), torch.Size([2, 5]))
    >>> torch.equal(output, h)                        # diff 3: output h_t
    True
    >>> pseudo = PseudoLSTMCell(3, 5)
    >>> variant = LSTMVariantCell.from_pseudo(pseudo)   # no differences
    >>> x = torch.randn(7, 2, 3)                        # (T, B, m)
    >>> torch.allclose(Recurrent(variant)(x)[0], Recurrent(pseudo)(x)[0],
    ...                atol=1e-6)
    True
    """

    gate_names = ("i", "f", "c_tilde", "o")

    state_names = ("h", "c")

    def __init__(self, input_size: int, state_size: int, *,
                 diff1: bool = False, diff2: bool = False,
                 diff3: bool = False, forget_bias: float = 1.0):
        super().__init__(input_size, state_size, forget_bias, W=4)
        owner = type(self).__name__
        self.diff1 = _check_flag(owner, "diff1", diff1)
        self.diff2 = _check_flag(owner, "diff2", diff2)
        self.diff3 = _check_flag(owner, "diff3", diff3)
        self.reset_parameters()

    @property
    def differences(self) -> tuple[int, ...]:
        """The differences included, e.g. ``(1, 3)``; ``()`` for none."""
        flags = (self.diff1, self.diff2, self.diff3)
        return tuple(k for k, on in enumerate(flags, start=1) if on)

    def step(self, x_proj: Tensor, state: tuple[Tensor, Tensor]
             ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c = state                                    # each (B, n)
        n = self.state_size
        W_if, W_c, W_o = self.W.split([2 * n, n, n])    # rows i|f, c̃, o
        ux_if, ux_c, ux_o = x_proj.split([2 * n, n, n], dim=-1)
        squashed = torch.tanh(c)                        # φ(c_{t-1})
        v = h if self.diff1 and self.diff2 else squashed    # v^o_t
        o = torch.sigmoid(F.linear(v, W_o) + ux_o)      # o_t: (B, n)
        r = h if self.diff1 else o * squashed           # ĥ_t: (B, n)
        g = r if self.diff2 else squashed               # v^{i,f}_t: (B, n)
        i, f = torch.sigmoid(F.linear(g, W_if) + ux_if).chunk(2, dim=-1)
        c_tilde = torch.tanh(F.linear(r, W_c) + ux_c)   # c̃_t: (B, n)
        c = f * c + i * c_tilde                         # c_t: (B, n)
        squashed = torch.tanh(c)                        # φ(c_t)
        h = o * squashed                                # h_t: (B, n)
        return (h if self.diff3 else squashed), (h, c)

    # -- moving parameters between the pseudo, variant and basic cells ----
    @classmethod
    def from_pseudo(cls, cell: PseudoLSTMCell, *, diff1: bool = False,
                    diff2: bool = False, diff3: bool = False
                    ) -> LSTMVariantCell:
        """A variant with the parameters of a :class:`PseudoLSTMCell`
        (copied, not shared), rows reordered from i | f | o | s̃ to
        i | f | c̃ | o. Without differences it computes the same outputs
        as ``cell``, and its c_t is the pseudo cell's s_t."""
        if not isinstance(cell, PseudoLSTMCell):
            raise TypeError(f"LSTMVariantCell.from_pseudo: expected a "
                            f"PseudoLSTMCell, got {type(cell).__name__}")
        variant = cell.new_like(cls, diff1=diff1, diff2=diff2, diff3=diff3)
        n = cell.state_size
        W_i, W_f, W_o = cell.W_gates.detach().split(n)
        U, b = cell.U.detach().split(n), cell.b.detach().split(n)
        order = [0, 1, 3, 2]                    # blocks i|f|o|s̃ as i|f|c̃|o
        with torch.no_grad():
            variant.W.copy_(torch.cat([W_i, W_f, cell.W.detach(), W_o]))
            variant.U.copy_(torch.cat([U[k] for k in order]))
            variant.b.copy_(torch.cat([b[k] for k in order]))
        return variant

    def to_pseudo(self) -> PseudoLSTMCell:
        """A :class:`PseudoLSTMCell` with this cell's parameters, rows
        reordered to its layout; it computes the same outputs as this cell
        only when no difference is included."""
        n = self.state_size
        pseudo = self.new_like(PseudoLSTMCell)
        W_i, W_f, W_c, W_o = self.W.detach().split(n)
        U, b = self.U.detach().split(n), self.b.detach().split(n)
        order = [0, 1, 3, 2]                    # blocks i|f|c̃|o as i|f|o|s̃
        with torch.no_grad():
            pseudo.W_gates.copy_(torch.cat([W_i, W_f, W_o]))
            pseudo.W.copy_(W_c)
            pseudo.U.copy_(torch.cat([U[k] for k in order]))
            pseudo.b.copy_(torch.cat([b[k] for k in order]))
        return pseudo

    @classmethod
    def from_basic(cls, cell: BasicLSTMCell, *, diff1: bool = True,
                   diff2: bool = True, diff3: bool = True
                   ) -> LSTMVariantCell:
        """A variant with the parameters of a :class:`BasicLSTMCell`
        (copied; the layouts are the same). With all three differences,
        the default, it computes the same outputs and states as ``cell``."""
        if not isinstance(cell, BasicLSTMCell):
            raise TypeError(f"LSTMVariantCell.from_basic: expected a "
                            f"BasicLSTMCell, got {type(cell).__name__}")
        variant = cell.new_like(cls, diff1=diff1, diff2=diff2, diff3=diff3)
        variant.load_state_dict(cell.state_dict())
        return variant

    def to_basic(self) -> BasicLSTMCell:
        """A :class:`BasicLSTMCell` with this cell's parameters (copied);
        it computes the same function only when all three differences are
        included."""
        basic = self.new_like(BasicLSTMCell)
        basic.load_state_dict(self.state_dict())
        return basic

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", diff1={self.diff1}, "
                f"diff2={self.diff2}, diff3={self.diff3}")


class BasicLSTMCell(_LSTMFamilyCell):
    r"""The basic LSTM, as in PyTorch's ``nn.LSTM``.

    .. math::

        \begin{aligned}
        (a_i, a_f, a_{\tilde c}, a_o) &= W_{\text{ifgo}} h_{t-1}
            + U_{\text{ifgo}} x_t + b_{\text{ifgo}} \\
        i_t &= \sigma(a_i), \quad f_t = \sigma(a_f), \quad
        \tilde c_t = \phi(a_{\tilde c}), \quad o_t = \sigma(a_o) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot \tilde c_t \\
        h_t &= o_t \odot \phi(c_t), \qquad \text{output}_t = h_t
        \end{aligned}

    The gates and the candidate write all read h_{t-1}, so one product
    with the stacked W_ifgo gives all four pre-activations.

    Args:
        input_size: m, the size of ``x_t``.
        state_size: n, the size of ``h_t`` and ``c_t``.
        forget_bias: the initial forget-gate bias b_f (default 1.0).

    Parameters (PyTorch's row order i, f, g, o with g = c̃):
        W: ``(4n, n)``, W_ifgo, rows i | f | c̃ | o (PyTorch's
            ``weight_hh``).
        U: ``(4n, m)``, U_ifgo, rows i | f | c̃ | o (PyTorch's
            ``weight_ih``).
        b: ``(4n,)``, b_ifgo, blocks i | f | c̃ | o (PyTorch's
            ``bias_ih + bias_hh``; only their sum matters).

    Inputs: ``x`` ``(B, m)``, state ``(h, c)``, each ``(B, n)``.
    Outputs: ``(h_t, (h_t, c_t))``, each ``(B, n)``.

    Example: a cell converted from PyTorch's ``nn.LSTM`` computes its
    function.

    >>> import torch
    >>> from lstmlib import BasicLSTMCell, Recurrent
    >>> lstm = torch.nn.LSTM(input_size=3, hidden_size=5)
    >>> cell = BasicLSTMCell.from_torch(lstm)
    >>> x = torch.randn(7, 2, 3)                            # (T, B, m)
    >>> outputs, (h_T, c_T) = Recurrent(cell)(x)
    >>> outputs.shape, h_T.shape, c_T.shape
    (torch.Size([7, 2, 5]), torch.Size([2, 5]), torch.Size([2, 5]))
    >>> torch.allclose(outputs, lstm(x)[0], atol=1e-6)
    True
    """

    gate_names = ("i", "f", "c_tilde", "o")

    state_names = ("h", "c")

    def __init__(self, input_size: int, state_size: int, *,
                 forget_bias: float = 1.0):
        super().__init__(input_size, state_size, forget_bias, W=4)
        self.reset_parameters()

    def step(self, x_proj: Tensor, state: tuple[Tensor, Tensor]
             ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c = state                                    # each (B, n)
        a = F.linear(h, self.W) + x_proj                # a_t: (B, 4n)
        a_i, a_f, a_c, a_o = a.chunk(4, dim=-1)         # each (B, n)
        i, f, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.sigmoid(a_o)
        c_tilde = torch.tanh(a_c)                       # c̃_t
        c = f * c + i * c_tilde                         # c_t
        h = o * torch.tanh(c)                           # h_t
        return h, (h, c)

    def forward_sequence(self, x: Tensor, state: tuple[Tensor, Tensor]):
        # the fast path of Recurrent: the loop of step in one kernel
        if not self.computes_step_of(BasicLSTMCell):
            return None                                 # a changed step
        h, c = state
        return lstm_sequence(x, h, c, self.W, self.U, self.b)

    # -- PyTorch interoperability -------------------------------------------
    @classmethod
    def from_torch(cls, module: nn.LSTM | nn.LSTMCell) -> BasicLSTMCell:
        """A cell computing the same function as a one-layer,
        unidirectional ``nn.LSTM`` without projection, or an
        ``nn.LSTMCell`` (weights are copied, not shared)."""
        w = torch_weights("BasicLSTMCell.from_torch", module, nn.LSTM,
                          nn.LSTMCell)
        cell = cls(module.input_size, module.hidden_size)
        w.copy_into(cell)                   # b: the sum of the two biases
        return cell

    def to_torch(self, kind: str = "LSTM") -> nn.LSTM | nn.LSTMCell:
        """The equivalent PyTorch module: ``kind="LSTM"`` gives a
        time-major one-layer ``nn.LSTM``, ``kind="LSTMCell"`` an
        ``nn.LSTMCell``; b goes to ``bias_ih``, ``bias_hh`` is zero."""
        module, w = new_torch_module("BasicLSTMCell.to_torch", kind, nn.LSTM,
                                     nn.LSTMCell, self.W, self.input_size,
                                     self.state_size)
        w.copy_from(self)                   # b to bias_ih, bias_hh = 0
        return module


class PeepholeLSTMCell(_LSTMFamilyCell):
    r"""The LSTM with peepholes: the gates also see the memory cell, and
    the read gate is computed after the write, from c_t.

    .. math::

        \begin{aligned}
        (a_i, a_f, a_{\tilde c}, a_o) &= W_{\text{ifgo}} h_{t-1} + U_{\text{ifgo}} x_t + b_{\text{ifgo}} \\
        (i_t, f_t) &= \sigma((a_i, a_f) + Q_{i,f}\, c_{t-1}) \\
        \tilde c_t &= \phi(a_{\tilde c}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot \tilde c_t \\
        o_t &= \sigma(a_o + Q_o c_t) \\
        h_t &= o_t \odot \phi(c_t), \qquad \text{output}_t = h_t
        \end{aligned}

    With ``peephole="full"`` (the post's form) Q_{i,f} stacks two n×n
    matrices Q_i, Q_f and Q_o is n×n. With ``peephole="diagonal"`` (Graves 2013;
    Gers and Schmidhuber 2000 connect a gate to the cells of its own
    memory block, which is this form when every block has one cell)
    every unit sees only its own cell:
    Q_{i,f} c_{t-1} becomes (p_i ⊙ c_{t-1}, p_f ⊙ c_{t-1}) and Q_o c_t becomes
    p_o ⊙ c_t, which is the full form with diagonal matrices.

    Args:
        input_size: m, the size of ``x_t``.
        state_size: n, the size of ``h_t`` and ``c_t``.
        peephole: ``"full"`` (default) or ``"diagonal"``.
        forget_bias: the initial forget-gate bias b_f (default 1.0).

    Parameters:
        W, U, b: as in :class:`BasicLSTMCell` (rows i | f | c̃ | o), so
            ``load_state_dict(basic.state_dict(), strict=False)`` copies a
            basic LSTM's weights.
        Q: Q_{i,f}, the peepholes of i and f onto c_{t-1}, rows i | f:
            ``(2n, n)`` full, ``(2n,)`` diagonal.
        Q_o: the read gate's peephole onto c_t: ``(n, n)`` full, ``(n,)``
            diagonal.

    W, U and b are initialized as in :class:`BasicLSTMCell`; Q and Q_o
    start at zero, so a new cell computes exactly the basic LSTM with the
    same W, U, b, and uses its peepholes only as far as training grows
    them (the gradient with respect to Q and Q_o is not zero at zero).

    Inputs: ``x`` ``(B, m)``, state ``(h, c)``, each ``(B, n)``.
    Outputs: ``(h_t, (h_t, c_t))``, each ``(B, n)``.

    Example: diagonal peepholes; given a basic LSTM's W, U and b, a new
    cell computes that LSTM.

    >>> import torch
    >>> from lstmlib import BasicLSTMCell, PeepholeLSTMCell, Recurrent
    >>> cell = PeepholeLSTMCell(input_size=3, state_size=5,
    ...                         peephole="diagonal")
    >>> cell.Q.shape, cell.Q_o.shape
    (torch.Size([10]), torch.Size([5]))
    >>> basic = BasicLSTMCell(3, 5)
    >>> cell.load_state_dict(basic.state_dict(), strict=False).missing_keys
    ['Q', 'Q_o']
    >>> x = torch.randn(7, 2, 3)                            # (T, B, m)
    >>> outputs, (h_T, c_T) = Recurrent(cell)(x)
    >>> outputs.shape, h_T.shape, c_T.shape
    (torch.Size([7, 2, 5]), torch.Size([2, 5]), torch.Size([2, 5]))
    >>> torch.allclose(outputs, Recurrent(basic)(x)[0], atol=1e-6)
    True
    """

    gate_names = ("i", "f", "c_tilde", "o")

    state_names = ("h", "c")

    def __init__(self, input_size: int, state_size: int, *,
                 peephole: str = "full", forget_bias: float = 1.0):
        if peephole not in PEEPHOLES:
            raise ValueError(f"PeepholeLSTMCell: expected peephole to be one "
                             f"of {list(PEEPHOLES)}, got {peephole!r}")
        super().__init__(input_size, state_size, forget_bias, W=4)
        n = state_size
        self.peephole = peephole
        full = peephole == "full"
        self.Q = nn.Parameter(torch.empty((2 * n, n) if full else (2 * n,)))
        self.Q_o = nn.Parameter(torch.empty((n, n) if full else (n,)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """W, U, b as in :class:`BasicLSTMCell`; Q = 0 and Q_o = 0."""
        super().reset_parameters()
        with torch.no_grad():
            self.Q.zero_()
            self.Q_o.zero_()

    def peephole_input(self, c: Tensor, Q: Tensor) -> Tensor:
        """Q c for full peepholes; the diagonal form multiplies each n-block
        of the vector Q by c. ``c`` ``(B, n)`` → ``(B, rows of Q)``."""
        if self.peephole == "full":
            return F.linear(c, Q)                       # Q c
        return Q * c.repeat(1, Q.shape[0] // self.state_size)

    def step(self, x_proj: Tensor, state: tuple[Tensor, Tensor]
             ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c_prev = state                               # each (B, n)
        n = self.state_size
        a = F.linear(h, self.W) + x_proj                # (B, 4n)
        a_if, a_c, a_o = a.split([2 * n, n, n], dim=-1)
        a_if = a_if + self.peephole_input(c_prev, self.Q)   # + Q c_{t-1}
        i, f = torch.sigmoid(a_if).chunk(2, dim=-1)     # each (B, n)
        c = f * c_prev + i * torch.tanh(a_c)            # c_t
        o = torch.sigmoid(a_o + self.peephole_input(c, self.Q_o))  # sees c_t
        h = o * torch.tanh(c)                           # h_t
        return h, (h, c)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", peephole={self.peephole!r}"
