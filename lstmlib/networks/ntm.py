r"""A compact neural Turing machine (Part IV, "Neural Turing machines").

The LSTM keeps its memory in the cell vector c_t: n slots of one number
each, written by i_t ⊙ c̃_t and forgotten by f_t. A neural Turing machine
(NTM; Graves, Wayne and Danihelka 2014) keeps the same two operations but
moves the memory out of the cell, into a matrix M_t of N rows ("slots")
of D numbers each, and lets a small controller decide *where* to read,
forget and write through soft addressing weights over the rows.

The symbols are the book's (its notation page), not Graves et al.'s; the
code keeps the paper's names, given in parentheses. Shapes, for a batch of
B sequences:

* M: ``(B, N, D)``, the memory (``memory``); row i is M(i). The code
  calls the width D ``W`` or ``memory_width``.
* w: ``(B, N)``, an addressing weighting: w(i) ≥ 0, Σ_i w(i) = 1.
* q, ℰ, v, ℛ: ``(B, D)``, a key (``key``), an erase vector (``erase``),
  an add vector (``add``), a read vector (``r``).
* ω, g, ψ: ``(B,)``, the key strength ≥ 0 (``beta``), the interpolation
  gate in [0, 1] (``g``), the sharpening exponent ≥ 1 (``gamma``).
* χ: ``(B, S)``, the shift weighting (``s``), a distribution over the
  S = 2·``shift_range`` + 1 circular shifts -``shift_range``, ...,
  ``shift_range`` (a range of 1 gives {-1, 0, +1}).

Addressing is four stages, one function each, composed by :func:`address`:

1. :func:`content_addressing`: w^c(i) = softmax_i(ω cos(q, M(i))).
2. :func:`interpolate`: w^g = g w^c + (1 - g) w_{t-1}.
3. :func:`shift`: w̃(i) = Σ_j w^g(j) χ(i - j), indices mod N.
4. :func:`sharpen`: w(i) = w̃(i)^ψ / Σ_j w̃(j)^ψ.

:func:`read` and :func:`write` are the memory operations; :class:`NTM`
runs an LSTM controller (:class:`~lstmlib.cells.lstm.BasicLSTMCell`) with one
read head and one write head over a sequence. :func:`binary_copy_task`
is the copy task of Graves et al., :class:`LSTMTagger` an LSTM baseline
for it, :func:`train_copy` a small seeded training loop, and
:func:`train_copy_side_by_side` K such runs at once (seed ensembles).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from ..experiments.ensembles import clip_stacked_grad_norm_
from ..cells.lstm import BasicLSTMCell
from ..cells.recurrent import Recurrent
from .._checks import check_positive_int
from ..seeds import seed_or_base

__all__ = [
    "COSINE_EPS",
    "NTM",
    "SHARPEN_EPS",
    "HeadWeights",
    "LSTMTagger",
    "NTMState",
    "address",
    "binary_copy_baseline_bits",
    "binary_copy_task",
    "content_addressing",
    "copy_bits_per_sequence",
    "interpolate",
    "read",
    "sharpen",
    "shift",
    "train_copy",
    "train_copy_side_by_side",
    "write",
]

#: Added to the product of norms in the cosine similarity, so that an
#: all-zero key or row gives similarity 0 instead of 0/0.
COSINE_EPS = 1e-8
#: Added to w̃ before raising it to ψ: d(w^ψ)/dψ = w^ψ ln w is 0·(-∞) at
#: w = 0, and a weighting can underflow to 0 in floating point.
SHARPEN_EPS = 1e-12


# -- input checks -------------------------------------------------------
def _tensor(owner: str, name: str, value, layout: str, dims: int) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{owner}: expected {name} to be a torch.Tensor "
                        f"{layout}, got {type(value).__name__}")
    if value.dim() != dims:
        raise ValueError(f"{owner}: expected {name} of shape {layout}, "
                         f"got shape {tuple(value.shape)}")
    return value


def _same(owner: str, name: str, value: Tensor, shape, layout: str):
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{owner}: expected {name} of shape {layout} = "
                         f"{tuple(shape)}, got {tuple(value.shape)}")


def _weighting(owner: str, name: str, w, memory: Tensor | None = None):
    _tensor(owner, name, w, "(B, N)", 2)
    if memory is not None:
        _same(owner, name, w, memory.shape[:2], "(B, N)")


def _per_sequence(owner: str, name: str, value, batch: int):
    _tensor(owner, name, value, "(B,)", 1)
    _same(owner, name, value, (batch,), "(B,)")


# -- the four addressing stages ------------------------------------------
def content_addressing(memory: Tensor, key: Tensor, beta: Tensor) -> Tensor:
    r"""Focus on the rows that resemble the key.

    .. math::

        \cos(q, M(i)) = \frac{q \cdot M(i)}
                    {\lVert q\rVert\,\lVert M(i)\rVert + \varepsilon},
        \qquad
        w^c(i) = \frac{\exp(\omega \cos(q, M(i)))}
                      {\sum_j \exp(\omega \cos(q, M(j)))}

    memory M ``(B, N, D)``, key q ``(B, D)``, beta: the key strength ω
    ``(B,)`` (≥ 0) → w^c ``(B, N)``. ω = 0 gives the uniform weighting;
    as ω grows, w^c tends to one-hot on the most similar row.
    """
    owner = "content_addressing"
    _tensor(owner, "memory", memory, "(B, N, W)", 3)
    _tensor(owner, "key", key, "(B, W)", 2)
    _same(owner, "key", key, (memory.shape[0], memory.shape[2]), "(B, W)")
    _per_sequence(owner, "beta", beta, memory.shape[0])
    dots = (memory * key.unsqueeze(1)).sum(dim=-1)             # (B, N)
    norms = (torch.linalg.vector_norm(memory, dim=-1)          # (B, N)
             * torch.linalg.vector_norm(key, dim=-1, keepdim=True))
    similarity = dots / (norms + COSINE_EPS)                   # cos: (B, N)
    return torch.softmax(beta.unsqueeze(-1) * similarity, dim=-1)


def interpolate(w_content: Tensor, w_prev: Tensor, g: Tensor) -> Tensor:
    r"""Choose between the content focus and the previous weighting.

    .. math:: w^g = g\, w^c + (1 - g)\, w_{t-1}

    w_content (w^c), w_prev (w_{t-1}) ``(B, N)``, g ``(B,)`` in [0, 1]
    → w^g ``(B, N)``.
    g = 1 addresses by content alone; g = 0 keeps the previous location,
    which the shift then moves. A convex combination of two weightings is
    a weighting.
    """
    _weighting("interpolate", "w_content", w_content)
    _weighting("interpolate", "w_prev", w_prev)
    _same("interpolate", "w_prev", w_prev, w_content.shape, "(B, N)")
    _per_sequence("interpolate", "g", g, w_content.shape[0])
    g = g.unsqueeze(-1)                                        # (B, 1)
    return g * w_content + (1 - g) * w_prev


def shift(w: Tensor, s: Tensor) -> Tensor:
    r"""Move the focus by a soft circular shift.

    .. math:: \tilde w(i) = \sum_{j=0}^{N-1} w(j)\, \chi((i - j) \bmod N)

    with χ, the shift weighting, a distribution over the S offsets
    -(S - 1)/2, ..., (S - 1)/2 (its middle column is offset 0), zero for
    offsets outside that range. Written as a sum of rotations:
    w̃ = Σ_d χ(d) roll(w, d), where roll(w, d)(i) = w(i - d), so offset +1
    moves weight from row i to row i + 1.

    w ``(B, N)``, s: the shift weighting χ ``(B, S)`` with S odd and
    S ≤ N → w̃ ``(B, N)``. A χ one-hot on offset 0 leaves w unchanged; a
    circular convolution of two distributions is a distribution.
    """
    _weighting("shift", "w", w)
    _tensor("shift", "s", s, "(B, S)", 2)
    B, N = w.shape
    S = s.shape[1]
    if s.shape[0] != B or S % 2 == 0 or S > N:
        raise ValueError(f"shift: expected s of shape (B, S) with B = {B}, "
                         f"S odd and S <= N = {N}, got {tuple(s.shape)}")
    R = S // 2
    wrapped = torch.cat([w[:, N - R:], w, w[:, :R]], dim=-1)   # (B, N + 2R)
    rolled = wrapped.unfold(-1, N, 1).flip(1)                  # (B, S, N)
    return (s.unsqueeze(-1) * rolled).sum(dim=1)               # Σ_d χ(d) ...


def sharpen(w: Tensor, gamma: Tensor) -> Tensor:
    r"""Undo the blur of the shift by raising to a power and renormalizing.

    .. math:: w(i) = \frac{(\tilde w(i) + \varepsilon)^\psi}
                          {\sum_j (\tilde w(j) + \varepsilon)^\psi}

    w (w̃) ``(B, N)``, gamma: the sharpening exponent ψ ``(B,)`` (≥ 1) →
    ``(B, N)``. ψ = 1 is the identity up to ε = :data:`SHARPEN_EPS`;
    larger ψ moves weight towards the largest entries, and ψ → ∞ gives
    one-hot (for a unique maximum).
    """
    _weighting("sharpen", "w", w)
    _per_sequence("sharpen", "gamma", gamma, w.shape[0])
    log_w = torch.log(w + SHARPEN_EPS)                         # (B, N)
    return torch.softmax(gamma.unsqueeze(-1) * log_w, dim=-1)


def address(memory: Tensor, w_prev: Tensor, key: Tensor, beta: Tensor,
            g: Tensor, s: Tensor, gamma: Tensor) -> Tensor:
    """The four stages in order: content, interpolation, shift,
    sharpening. memory M ``(B, N, D)``, w_prev ``(B, N)``, key q
    ``(B, D)``, s (χ) ``(B, S)``, beta (ω), g, gamma (ψ) ``(B,)`` → w_t
    ``(B, N)``."""
    w_c = content_addressing(memory, key, beta)
    w_g = interpolate(w_c, w_prev, g)
    return sharpen(shift(w_g, s), gamma)


# -- reading and writing ------------------------------------------------
def read(memory: Tensor, w: Tensor) -> Tensor:
    r"""The read head: a weighted sum of rows.

    .. math:: \mathcal R = \sum_i w(i)\, M(i)

    memory ``(B, N, D)``, w ``(B, N)`` → the read vector ℛ ``(B, D)``.
    This is the NTM's read gate: where the LSTM scales each slot by o_t,
    the NTM chooses rows by w.
    """
    _tensor("read", "memory", memory, "(B, N, W)", 3)
    _weighting("read", "w", w, memory)
    return (w.unsqueeze(-1) * memory).sum(dim=1)


def write(memory: Tensor, w: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    r"""The write head: erase (forget), then add (write).

    .. math::

        M_t(i) = \underbrace{M_{t-1}(i) \odot
                 (1 - w_t(i)\, \mathcal E_t)}_{\text{erase}}
               + \underbrace{w_t(i)\, v_t}_{\text{add}}

    memory M_{t-1} ``(B, N, D)``, w ``(B, N)``, erase: the erase vector
    ℰ ``(B, D)`` in [0, 1], add: the add vector v ``(B, D)`` → M_t
    ``(B, N, D)``.

    The two steps are the LSTM's two memory operations, per row: erase is
    the forget gate, keeping 1 - w(i) ℰ of row i where the LSTM keeps f_t
    of each slot, and add is the gated write, adding w(i) v where the LSTM
    adds i_t ⊙ c̃_t. With w one-hot on row i and ℰ = 1, row i is cleared
    and every other row kept exactly.
    """
    owner = "write"
    _tensor(owner, "memory", memory, "(B, N, W)", 3)
    _weighting(owner, "w", w, memory)
    rows = (memory.shape[0], memory.shape[2])
    for name, value in (("erase", erase), ("add", add)):
        _tensor(owner, name, value, "(B, W)", 2)
        _same(owner, name, value, rows, "(B, W)")
    w = w.unsqueeze(-1)                                        # (B, N, 1)
    kept = memory * (1 - w * erase.unsqueeze(1))               # forget
    return kept + w * add.unsqueeze(1)                         # write


# -- the machine ---------------------------------------------------------
class HeadWeights(NamedTuple):
    """The addressing weightings of every step: read and write, each
    ``(T, B, N)``."""
    read: Tensor
    write: Tensor


class NTMState(NamedTuple):
    """What an :class:`NTM` carries from step to step."""
    h: Tensor        #: controller output (B, n)
    c: Tensor        #: controller memory cell (B, n)
    memory: Tensor   #: M_t (B, N, D)
    w_read: Tensor   #: read weighting (B, N)
    w_write: Tensor  #: write weighting (B, N)
    r: Tensor        #: last read vector ℛ_t (B, D)


class NTM(nn.Module):
    r"""A neural Turing machine with an LSTM controller, one read head and
    one write head, run over a sequence.

    One step, from x_t ``(B, m)`` and the state of step t - 1:

    .. math::

        \begin{aligned}
        (h_t, c_t) &= \mathrm{LSTM}([x_t; \mathcal R_{t-1}],
                                     (h_{t-1}, c_{t-1}))
            && (B, n) \\
        (\text{raw}^w_t, \text{raw}^r_t) &= \mathrm{heads}(h_t)
            && \text{an affine map} \\
        w^w_t &= \mathrm{address}(M_{t-1}, w^w_{t-1}, \text{raw}^w_t),
            \quad
        w^r_t = \mathrm{address}(M_{t-1}, w^r_{t-1}, \text{raw}^r_t)
            && (B, N) \\
        \mathcal R_t &= \mathrm{read}(M_{t-1}, w^r_t) && (B, D) \\
        M_t &= \mathrm{write}(M_{t-1}, w^w_t, \mathcal E_t, v_t)
            && (B, N, D) \\
        y_t &= R [h_t; \mathcal R_t] + b_R
            && (B, \text{output\_size})
        \end{aligned}

    A head's raw outputs are squashed into range: the key q = tanh(·),
    the key strength ω = softplus(·), the interpolation gate g = σ(·),
    the shift weighting χ = softmax(·), the sharpening exponent
    ψ = 1 + softplus(·), and for the write head the erase vector
    ℰ = σ(·) and the add vector v = tanh(·). Both heads address the
    memory as it was before this step's write, M_{t-1}, so their two
    addressings run as one batched call; what step t writes can be read
    from step t + 1 on.

    The initial state has zero controller state, every memory entry equal
    to ``memory_init`` (a constant memory, so content addressing starts out
    uniform), both weightings one-hot on row 0 and ℛ_0 = 0.

    Args:
        input_size: m.
        output_size: size of y_t.
        controller_size: n, the controller LSTM's state size.
        memory_slots: N, the number of rows of M.
        memory_width: D, the size of a row (``W`` in the code).
        shift_range: shifts -shift_range, ..., shift_range are allowed
            (default 1), S = 2·shift_range + 1 of them.
        memory_init: the value of every entry of M_0 (default 1e-6).

    Parameters:
        controller: a :class:`~lstmlib.cells.lstm.BasicLSTMCell` (m + D → n).
        heads: ``nn.Linear(n, 2(D + S + 3) + 2D)``: the write head's
            q | ω | g | χ | ψ, the read head's q | ω | g | χ | ψ, then the
            write head's ℰ | v.
        readout: ``nn.Linear(n + D, output_size)``, R and b_R.
        None of them depends on N: the memory's size is free.

    Inputs of ``forward``: x ``(T, B, m)``; optional state
    (:class:`NTMState`, zeros by default); ``return_weights``.
    Outputs: y ``(T, B, output_size)``, the final :class:`NTMState`, and
    with ``return_weights=True`` a :class:`HeadWeights` of ``(T, B, N)``
    weightings.
    """

    def __init__(self, input_size: int, output_size: int, *,
                 controller_size: int = 64, memory_slots: int = 16,
                 memory_width: int = 8, shift_range: int = 1,
                 memory_init: float = 1e-6):
        super().__init__()
        for name, value in (("input_size", input_size),
                            ("output_size", output_size),
                            ("controller_size", controller_size),
                            ("memory_slots", memory_slots),
                            ("memory_width", memory_width),
                            ("shift_range", shift_range)):
            check_positive_int("NTM", name, value)
        if 2 * shift_range + 1 > memory_slots:
            raise ValueError(f"NTM: expected 2 * shift_range + 1 <= "
                             f"memory_slots, got shift_range={shift_range}, "
                             f"memory_slots={memory_slots}")
        self.input_size, self.output_size = input_size, output_size
        self.memory_slots, self.memory_width = memory_slots, memory_width
        self.shift_range = shift_range
        self.memory_init = float(memory_init)
        W, S = memory_width, 2 * shift_range + 1
        self.controller = BasicLSTMCell(input_size + W, controller_size)
        self._address_sizes = [W, 1, 1, S, 1]          # q | ω | g | χ | ψ
        self.heads = nn.Linear(controller_size, 2 * (W + S + 3) + 2 * W)
        self.readout = nn.Linear(controller_size + W, output_size)

    def initial_state(self, batch_size: int) -> NTMState:
        """h = c = 0, M_0 = ``memory_init`` everywhere, both weightings
        one-hot on row 0, ℛ_0 = 0."""
        check_positive_int("NTM.initial_state", "batch_size", batch_size)
        ref = self.readout.weight
        kw = {"device": ref.device, "dtype": ref.dtype}
        B, N, W = batch_size, self.memory_slots, self.memory_width
        n = self.controller.state_size
        zeros = torch.zeros(B, n, **kw)
        w0 = torch.zeros(B, N, **kw)
        w0[:, 0] = 1
        return NTMState(zeros, zeros, torch.full((B, N, W),
                                                 self.memory_init, **kw),
                        w0, w0.clone(), torch.zeros(B, W, **kw))

    def _addressing(self, raw: Tensor) -> tuple[Tensor, ...]:
        """q, ω, g, χ, ψ (``key, beta, g, s, gamma``) from a head's raw
        outputs."""
        k, beta, g, s, gamma = raw.split(self._address_sizes, dim=-1)
        return (torch.tanh(k), F.softplus(beta).squeeze(-1),
                torch.sigmoid(g).squeeze(-1), torch.softmax(s, dim=-1),
                1 + F.softplus(gamma).squeeze(-1))

    def step(self, x_t: Tensor, state: NTMState
             ) -> tuple[Tensor, NTMState]:
        """One step of the equations above; x_t ``(B, m)``."""
        h, c, memory, w_read, w_write, r = state
        inp = torch.cat([x_t, r], dim=-1)                  # (B, m + D)
        cell = self.controller
        h, (_, c) = cell.step(cell.project_input(inp), (h, c))
        B, W = x_t.shape[0], self.memory_width
        raw, erase, add = self.heads(h).split(
            [2 * sum(self._address_sizes), W, W], dim=-1)
        raw = raw.view(B, 2, -1).transpose(0, 1).reshape(2 * B, -1)
        # both heads address M_{t-1}: one call, rows [write heads; reads]
        w = address(torch.cat([memory, memory]),          # (2B, N, D)
                    torch.cat([w_write, w_read]), *self._addressing(raw))
        w_write, w_read = w.chunk(2)                       # each (B, N)
        r = read(memory, w_read)                           # ℛ_t: (B, D)
        memory = write(memory, w_write, torch.sigmoid(erase),
                       torch.tanh(add))                    # M_t
        y = self.readout(torch.cat([h, r], dim=-1))
        return y, NTMState(h, c, memory, w_read, w_write, r)

    def forward(self, x: Tensor, state: NTMState | None = None, *,
                return_weights: bool = False):
        _tensor("NTM", "x", x, f"(T, B, {self.input_size})", 3)
        if x.shape[-1] != self.input_size or x.shape[0] == 0:
            raise ValueError(f"NTM: expected x of shape (T >= 1, B, "
                             f"{self.input_size}), got {tuple(x.shape)}")
        ref = self.readout.weight
        if x.dtype != ref.dtype or x.device != ref.device:
            raise TypeError(f"NTM: expected x with dtype {ref.dtype} on "
                            f"{ref.device} (the parameters'), got "
                            f"{x.dtype} on {x.device}")
        if state is None:
            state = self.initial_state(x.shape[1])
        elif not isinstance(state, NTMState):
            raise TypeError(f"NTM: expected state to be an NTMState or "
                            f"None, got {type(state).__name__}")
        outputs, reads, writes = [], [], []
        for x_t in x:
            y, state = self.step(x_t, state)
            outputs.append(y)
            reads.append(state.w_read)
            writes.append(state.w_write)
        y = torch.stack(outputs)                           # (T, B, out)
        if return_weights:
            return y, state, HeadWeights(torch.stack(reads),
                                         torch.stack(writes))
        return y, state

    def extra_repr(self) -> str:
        return (f"memory_slots={self.memory_slots}, "
                f"memory_width={self.memory_width}, "
                f"shift_range={self.shift_range}")


class LSTMTagger(nn.Module):
    """The LSTM baseline: a :class:`~lstmlib.cells.lstm.BasicLSTMCell` run by
    :class:`~lstmlib.cells.recurrent.Recurrent`, and an affine read-out of h_t
    at every step, y_t = R h_t + b_R. x ``(T, B, m)`` → y ``(T, B, out)``."""

    def __init__(self, input_size: int, output_size: int, state_size: int):
        super().__init__()
        self.recurrent = Recurrent(BasicLSTMCell(input_size, state_size))
        self.readout = nn.Linear(state_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        h, _ = self.recurrent(x)                           # (T, B, n)
        return self.readout(h)


# -- the copy task -------------------------------------------------------
def binary_copy_task(batch_size: int, length: int, width: int, *,
                     generator: torch.Generator | None = None,
                     dtype: torch.dtype | None = None
                     ) -> tuple[Tensor, Tensor]:
    """The copy task of Graves et al. (2014): see T = ``length`` random
    binary vectors, then a delimiter, then reproduce them in order.

    Input, 2T + 1 steps of width + 1 channels: steps 0..T-1 carry the
    vectors (bits uniform in {0, 1}) with the delimiter channel 0; step T
    is the delimiter alone (last channel 1); steps T+1..2T are zero, and
    the model answers there. Target: the T vectors, to be compared with
    the model's outputs at the last T steps.

    Returns: x ``(2T + 1, B, width + 1)``, target ``(T, B, width)``,
    of ``dtype`` (default: torch's default dtype).
    """
    for name, value in (("batch_size", batch_size), ("length", length),
                        ("width", width)):
        check_positive_int("binary_copy_task", name, value)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    bits = torch.randint(0, 2, (length, batch_size, width),
                         generator=generator).to(dtype)
    x = torch.zeros(2 * length + 1, batch_size, width + 1, dtype=dtype)
    x[:length, :, :width] = bits
    x[length, :, width] = 1                                # delimiter
    return x, bits


def binary_copy_baseline_bits(length: int, width: int) -> float:
    """Bits per sequence of answering 1/2 for every bit: each of the
    T·width independent fair bits (T = ``length``) costs -log2(1/2) =
    1 bit."""
    check_positive_int("binary_copy_baseline_bits", "length", length)
    check_positive_int("binary_copy_baseline_bits", "width", width)
    return float(length * width)


def copy_bits_per_sequence(logits: Tensor, target: Tensor) -> Tensor:
    """Binary cross-entropy in bits, summed over a sequence's T·width
    bits and averaged over the batch. logits: the model's outputs at the
    last T steps, ``(T, B, width)``; target ``(T, B, width)``."""
    if logits.shape != target.shape:
        raise ValueError(f"copy_bits_per_sequence: expected logits of the "
                         f"target's shape {tuple(target.shape)}, got "
                         f"{tuple(logits.shape)}")
    nats = F.binary_cross_entropy_with_logits(logits, target,
                                              reduction="sum")
    return nats / (math.log(2) * target.shape[1])


def train_copy(model: nn.Module, *, steps: int, lengths: Sequence[int],
               width: int, batch_size: int = 32, lr: float = 3e-3,
               seed: int | None = None, clip_norm: float = 10.0
               ) -> list[float]:
    """Train ``model`` (x ``(T, B, width + 1)`` → outputs ``(T, B,
    width)``, or a tuple whose first entry they are) on
    :func:`binary_copy_task` by Adam. Each step draws one length
    uniformly from ``lengths`` and a fresh batch, from a generator seeded
    with ``seed`` (default: the base seed of :mod:`lstmlib.seeds`; on
    the CPU; batches are moved to the model's device).
    Gradients are clipped to norm ``clip_norm``. Returns the training
    loss of every step, in bits per bit
    (:func:`copy_bits_per_sequence` / (T·width); 1 is chance)."""
    check_positive_int("train_copy", "steps", steps)
    lengths = list(lengths)
    generator = torch.Generator().manual_seed(
        seed_or_base(seed, "train_copy"))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    reference = next(model.parameters())       # batches go to its device
    losses = []
    for _ in range(steps):
        k = int(torch.randint(len(lengths), (1,), generator=generator))
        L = lengths[k]
        x, target = binary_copy_task(batch_size, L, width,
                                     generator=generator,
                                     dtype=reference.dtype)
        x, target = x.to(reference.device), target.to(reference.device)
        y = model(x)
        y = y[0] if isinstance(y, tuple) else y
        loss = copy_bits_per_sequence(y[-L:], target) / (L * width)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimiser.step()
        losses.append(loss.item())
    return losses


# -- K copies of one model, trained side by side -------------------------
class _MemberLinear(TorchFunctionMode):
    """Inside this mode, ``F.linear`` with a stacked weight ``(K, out, in)``
    (and bias ``(K, out)``) applies member k's weight to the k-th of K
    equal blocks of the batch, the second-to-last dimension of the input:
    x ``(..., K·B, in)`` → ``(..., K·B, out)``. Every other call runs as
    usual. ``used`` collects the stacked tensors that went through it."""

    def __init__(self):
        super().__init__()
        self.used: set[int] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear and args[1].dim() == 3:
            x, weight = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            K, out, m = weight.shape
            *lead, rows, _ = x.shape
            y = torch.matmul(x.reshape(*lead, K, rows // K, m),
                             weight.transpose(1, 2))  # (..., K, B, out)
            if bias is not None:
                y = y + bias.unsqueeze(-2)
                self.used.add(id(bias))
            self.used.add(id(weight))
            return y.reshape(*lead, rows, out)
        return func(*args, **kwargs)


def train_copy_side_by_side(models: Sequence[nn.Module], *, steps: int,
                            lengths: Sequence[int], width: int,
                            seeds: Sequence[int], batch_size: int = 32,
                            lr: float = 3e-3, clip_norm: float = 10.0
                            ) -> list[list[float]]:
    """Train K models of one architecture on the copy task at once, each
    as :func:`train_copy` trains one: Adam, gradients clipped to norm
    ``clip_norm`` per model, batches from a generator per model seeded
    with ``seeds[k]``. The models are updated in place; returns each
    one's losses (bits per bit), ``losses[k][step]``.

    The K batches of a step run as one batch of K·B sequences through the
    first model's own code (``torch.func.functional_call`` with the
    parameters stacked), every ``F.linear`` applying each model's weights
    to its own block; so the models must use their parameters only
    through ``F.linear`` (true of :class:`NTM` and of :class:`LSTMTagger`,
    whose ``Recurrent`` runs its plain loop here), which is checked.
    One Adam over the stacked parameters is K Adams: it works entry by
    entry, and all share the step count.

    The one difference from K runs of :func:`train_copy`: one batch needs
    one length. Every model draws from its generator what ``train_copy``
    draws, a length and then its bits, but all train on the length model
    0 drew. Model 0's run is therefore exactly ``train_copy(models[0],
    seed=seeds[0])``, and with a single length every model's run is its
    own ``train_copy`` (both tested to 1e-10 in float64)."""
    models = list(models)
    check_positive_int("train_copy_side_by_side", "steps", steps)
    check_positive_int("train_copy_side_by_side", "width", width)
    check_positive_int("train_copy_side_by_side", "batch_size", batch_size)
    seeds = list(seeds)
    if not models or len(seeds) != len(models) or any(
            isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise ValueError(f"train_copy_side_by_side: expected one int seed "
                         f"per model, got {len(models)} models and seeds "
                         f"{seeds!r}")
    kinds = {type(m) for m in models}
    shapes = {tuple((n, tuple(p.shape)) for n, p in m.named_parameters())
              for m in models}
    if len(kinds) != 1 or len(shapes) != 1:
        raise TypeError("train_copy_side_by_side: expected models of one "
                        "class with parameters of the same shapes")
    lengths, K = list(lengths), len(models)
    template = copy.deepcopy(models[0])
    for module in template.modules():
        if isinstance(module, Recurrent):
            module.fused = False                  # the plain loop: F.linear
    stacked = {name: torch.stack([dict(m.named_parameters())[name].detach()
                                  for m in models]).requires_grad_()
               for name, _ in models[0].named_parameters()}
    optimiser = torch.optim.Adam(stacked.values(), lr=lr)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    reference = next(iter(stacked.values()))
    losses = []
    for step in range(steps):
        drawn = [int(torch.randint(len(lengths), (1,), generator=g))
                 for g in generators]
        L = lengths[drawn[0]]                     # model 0's draw, for all
        x, target = zip(*(binary_copy_task(batch_size, L, width,
                                           generator=g,
                                           dtype=reference.dtype)
                          for g in generators))
        x = torch.cat(x, dim=1).to(reference.device)          # (T, K·B, ·)
        target = torch.stack(target, dim=1).to(reference.device)
        failure = None
        with _MemberLinear() as mode:
            try:
                y = functional_call(template, stacked, (x,))
            except RuntimeError as error:     # e.g. a stacked shape misused
                failure = error
        unused = [n for n, p in stacked.items() if id(p) not in mode.used]
        if unused:
            raise TypeError(f"train_copy_side_by_side: parameters {unused} "
                            "act other than through F.linear") from failure
        if failure is not None:
            raise failure
        y = y[0] if isinstance(y, tuple) else y
        logits = y[-L:].reshape(L, K, batch_size, width)
        nats = F.binary_cross_entropy_with_logits(
            logits, target, reduction="none").sum(dim=(0, 2, 3))  # (K,)
        loss = nats / (math.log(2) * batch_size * L * width)
        optimiser.zero_grad()
        loss.sum().backward()                     # each model: its own
        clip_stacked_grad_norm_([p.grad for p in stacked.values()],
                                clip_norm)
        optimiser.step()
        losses.append(loss.tolist())
    with torch.no_grad():
        for k, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(stacked[name][k])
    return [list(run) for run in zip(*losses)]
