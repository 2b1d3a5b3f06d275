"""What the gates of a trained LSTM do on text: the measurements of
Karpathy, Johnson & Fei-Fei (2015), as functions of recorded states.

A trained character-level model reads held-out text, and
:func:`lstm_layer_states` records, for every layer of basic LSTMs
(:class:`~lstmlib.cells.lstm.BasicLSTMCell`), its h_t, c_t and gates
i_t, f_t, o_t at every step. The rest are tensor-in, tensor-out
measurements of those recordings:

* :func:`line_positions` and :func:`speaker_name_lines`: signals of the
  text that a unit might track (how far into its line a character is;
  whether it belongs to a speaker's name, the line ``"ROMEO:"`` of a play);
* :func:`unit_correlations`: Pearson's correlation between every unit's
  activation and such a signal y, corr(a_j, y) = cov(a_j, y) / (std(a_j)
  std(y)) over the steps;
* :func:`memoryless_correlation`: the largest |corr| that *any* function of
  the current character alone reaches with a signal, the bar a unit must
  clear before its correlation says that it remembers something;
* :func:`saturation_fractions`: how often each unit's gate is
  left-saturated (g < 0.1, shut) or right-saturated (g > 0.9, open);
* :func:`time_constants`: each unit's forget-gate time constant,
  τ_j = -1 / ⟨ln f_{t,j}⟩_t, and :func:`forget_bias_time_constant`, the
  τ = -1 / ln σ(b_f) that every unit of an untrained cell shares.

Why ⟨ln f⟩: along the memory cell, what c_j holds is multiplied by
f_{t+1,j} f_{t+2,j} ⋯ f_{t+k,j} over k steps (the constant-error carousel
of the LSTM's backward pass), and the product of k factors is
exp(k ⟨ln f⟩). τ_j is the number of steps after which that product is
1/e, if the factors were all at their geometric mean. A gate pinned at
f = σ(b_f) gives τ = -1 / ln σ(b_f): about 3.2 steps for b_f = 1.

Shapes: time-major, as everywhere in lstmlib; ``T`` steps, ``B`` streams,
``n`` units. Activations ``(T, B, n)`` or ``(T, n)``; signals ``(T, B)``
or ``(T,)``, the same leading shape.

Example: a unit that *is* the position in the line correlates perfectly;
a gate pinned at σ(1) is never saturated and has τ ≈ 3.2.

>>> import torch
>>> text = "To be,\\nor not.\\n"
>>> position = line_positions(text)                        # (T,)
>>> position[:8].tolist()
[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]
>>> units = torch.stack([position, torch.ones(len(text))], dim=-1)
>>> unit_correlations(units, position)                      # (n,) = (2,)
tensor([1., 0.])
>>> f = torch.full((len(text), 3), torch.sigmoid(torch.tensor(1.0)).item())
>>> saturation_fractions(f).right                          # (n,)
tensor([0., 0., 0.])
>>> time_constants(f), round(forget_bias_time_constant(1.0), 2)
(tensor([3.1922, 3.1922, 3.1922]), 3.19)
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from ..cells.lstm import BasicLSTMCell
from .._checks import check_finite_real, describe
from .lstm_backward import LSTMStates, lstm_states

__all__ = ["SATURATION_LEFT", "SATURATION_RIGHT", "Saturation",
           "lstm_layer_states", "line_positions", "speaker_name_lines",
           "unit_correlations", "memoryless_correlation",
           "saturation_fractions", "time_constants",
           "forget_bias_time_constant"]

#: A gate below this value is *left-saturated* (shut), as in Karpathy,
#: Johnson & Fei-Fei (2015).
SATURATION_LEFT = 0.1
#: A gate above this value is *right-saturated* (open).
SATURATION_RIGHT = 0.9


def lstm_layer_states(cells: Sequence[BasicLSTMCell],
                      x: Tensor) -> list[LSTMStates]:
    """Run a stack of basic LSTMs from zero states and keep every layer's
    states and gates.

    Layer 1 reads ``x``; layer l + 1 reads layer l's h_1..h_T. Nothing is
    differentiated (the forward pass of
    :func:`~lstmlib.analysis.lstm_backward.lstm_states`).

    Args:
        cells: the layers, bottom first, each a
            :class:`~lstmlib.cells.lstm.BasicLSTMCell`.
        x: the first layer's inputs ``(T, B, m)``.

    Returns:
        One :class:`~lstmlib.analysis.lstm_backward.LSTMStates` per layer:
        ``h``, ``c`` ``(T + 1, B, n)`` from the zero state on, and the
        gates ``i``, ``f``, ``c_tilde``, ``o`` ``(T, B, n)``.
    """
    cells = list(cells)
    if not cells or not all(isinstance(c, BasicLSTMCell) for c in cells):
        raise TypeError("lstm_layer_states: expected a non-empty sequence "
                        "of BasicLSTMCell, got "
                        f"{[type(c).__name__ for c in cells]}")
    recorded = []
    for cell in cells:
        states = lstm_states(cell, x, cell.initial_state(
            x.shape[1], device=x.device, dtype=x.dtype))
        recorded.append(states)
        x = states.h[1:]                                # next layer's input
    return recorded


def line_positions(text: str) -> Tensor:
    """How many characters of its line precede each character of ``text``:
    0 for a line's first character, and a newline counts as the last
    character of its line. Returns ``(T,)`` floats, T = ``len(text)``.

    >>> line_positions("ab\\nc").tolist()
    [0.0, 1.0, 2.0, 0.0]
    """
    _check_text("line_positions", text)
    positions, position = [], 0
    for character in text:
        positions.append(position)
        position = 0 if character == "\n" else position + 1
    return torch.tensor(positions, dtype=torch.float)


def speaker_name_lines(text: str) -> Tensor:
    """1 for every character of a speaker's name line, else 0: a line
    that follows an empty line (or starts the text) and ends with ``":"``,
    the way a play names who speaks next; its closing newline included.
    Returns ``(T,)`` floats.

    >>> speaker_name_lines("\\nAll:\\nYes.\\n").tolist()
    [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    _check_text("speaker_name_lines", text)
    marks, previous_empty = [], True
    for line in text.split("\n"):
        is_name = previous_empty and line.endswith(":") and len(line) > 1
        marks.extend([float(is_name)] * (len(line) + 1))    # + its newline
        previous_empty = line == ""
    return torch.tensor(marks[:len(text)], dtype=torch.float)


def unit_correlations(activations: Tensor, signal: Tensor) -> Tensor:
    """Pearson's correlation between each unit's activation and ``signal``
    y, over all steps (and streams):
    corr(a_j, y) = Σ (a_j - ā_j)(y - ȳ) / (‖a_j - ā_j‖ ‖y - ȳ‖).

    Args:
        activations: ``(T, n)`` or ``(T, B, n)``, e.g. the c_t of a layer.
        signal: ``(T,)`` or ``(T, B)``, the leading shape of
            ``activations``.

    Returns:
        ``(n,)`` correlations in [-1, 1]; 0 for a unit that never changes
        (and everywhere if the signal never changes).
    """
    if not isinstance(activations, Tensor) or activations.dim() not in (2, 3):
        raise ValueError("unit_correlations: expected activations (T, n) or "
                         f"(T, B, n), got {describe(activations)}")
    if not isinstance(signal, Tensor) or \
            tuple(signal.shape) != tuple(activations.shape[:-1]):
        raise ValueError("unit_correlations: expected a signal of shape "
                         f"{tuple(activations.shape[:-1])} (the activations' "
                         f"leading shape), got {describe(signal)}")
    a = activations.reshape(-1, activations.shape[-1]).double()  # (TB, n)
    s = signal.reshape(-1).double()                              # (TB,)
    a, s = a - a.mean(0), s - s.mean()
    scale = a.norm(dim=0) * s.norm()                             # (n,)
    covariance = s @ a                                           # (n,)
    r = torch.where(scale > 0, covariance / scale.clamp_min(1e-300),
                    torch.zeros_like(scale))
    return r.clamp(-1, 1).to(activations.dtype)


def memoryless_correlation(signal: Tensor, tokens: Tensor) -> float:
    """The largest |corr| with ``signal`` y that any function of the
    current token alone reaches on this text: the correlation ratio
    corr* = std(ȳ(x_t)) / std(y), the correlation of the best such
    function, ȳ(x) = E[y | x_t = x], the mean of the signal over the steps
    that read the same token.

    A unit whose activation depends only on the current character cannot
    correlate with the signal more strongly than corr*; a unit that does
    must carry something from earlier characters.

    Args:
        signal: ``(T,)`` or ``(T, B)``.
        tokens: the token ids read at those steps, the same shape.

    Returns:
        corr* in [0, 1] (0 when the signal never changes).

    >>> tokens = torch.tensor([0, 1, 0, 1])
    >>> memoryless_correlation(torch.tensor([5., 7., 5., 7.]), tokens)
    1.0
    >>> memoryless_correlation(torch.tensor([5., 5., 7., 7.]), tokens)
    0.0
    """
    if not isinstance(tokens, Tensor) or tokens.dtype != torch.long:
        raise ValueError("memoryless_correlation: expected torch.long "
                         f"token ids, got {describe(tokens)}")
    if not isinstance(signal, Tensor) or signal.shape != tokens.shape:
        raise ValueError("memoryless_correlation: expected a signal of "
                         f"the tokens' shape {tuple(tokens.shape)}, got "
                         f"{describe(signal)}")
    s, x = signal.reshape(-1).double(), tokens.reshape(-1)
    if x.min() < 0:
        raise ValueError("memoryless_correlation: expected non-negative "
                         "token ids")
    counts = torch.bincount(x).double()                          # (V,)
    sums = torch.zeros_like(counts).index_add_(0, x, s)
    best = (sums / counts.clamp_min(1))[x]                       # ȳ(x_t)
    r = unit_correlations(best[:, None], s)[0].item()
    return abs(r)


class Saturation(NamedTuple):
    """How often each unit's gate is saturated: ``left`` the fraction of
    steps with g < ``SATURATION_LEFT`` (shut), ``right`` with
    g > ``SATURATION_RIGHT`` (open); each ``(n,)``."""

    left: Tensor
    right: Tensor


def saturation_fractions(gates: Tensor, left: float = SATURATION_LEFT,
                         right: float = SATURATION_RIGHT) -> Saturation:
    """The fraction of steps (and streams) on which each unit's gate is
    below ``left`` and above ``right``.

    Args:
        gates: gate values in [0, 1], ``(T, n)`` or ``(T, B, n)``.
        left, right: the thresholds, 0 < left < right < 1.

    Returns:
        :class:`Saturation` with ``left`` and ``right`` ``(n,)``; a
        gate's unsaturated fraction is ``1 - left - right``.
    """
    if not isinstance(gates, Tensor) or gates.dim() not in (2, 3):
        raise ValueError("saturation_fractions: expected gates (T, n) or "
                         f"(T, B, n), got {describe(gates)}")
    left = check_finite_real("saturation_fractions", "left", left)
    right = check_finite_real("saturation_fractions", "right", right)
    if not 0 < left < right < 1:
        raise ValueError("saturation_fractions: expected 0 < left < right "
                         f"< 1, got left={left}, right={right}")
    flat = gates.reshape(-1, gates.shape[-1])                   # (TB, n)
    return Saturation((flat < left).to(flat.dtype).mean(0),
                      (flat > right).to(flat.dtype).mean(0))


def time_constants(forget_gates: Tensor) -> Tensor:
    """Each unit's forget-gate time constant, τ_j = -1 / ⟨ln f_{t,j}⟩,
    the mean over all steps (and streams).

    Args:
        forget_gates: f_t ``(T, n)`` or ``(T, B, n)``, values in (0, 1].

    Returns:
        ``(n,)``, in steps: the k at which f's geometric mean raised to
        the k-th power is 1/e. ``inf`` for a unit whose gate is exactly 1
        (in floating point) at every step.
    """
    if not isinstance(forget_gates, Tensor) or forget_gates.dim() not in (2, 3):
        raise ValueError("time_constants: expected forget gates (T, n) or "
                         f"(T, B, n), got {describe(forget_gates)}")
    if (forget_gates <= 0).any() or (forget_gates > 1).any():
        raise ValueError("time_constants: expected forget-gate values in "
                         "(0, 1]")
    flat = forget_gates.reshape(-1, forget_gates.shape[-1]).double()
    mean_log = flat.log().mean(0)                           # ⟨ln f⟩ ≤ 0
    tau = torch.where(mean_log < 0, -1 / mean_log,
                      torch.full_like(mean_log, math.inf))  # ⟨ln f⟩ = 0: ∞
    return tau.to(forget_gates.dtype)


def forget_bias_time_constant(forget_bias: float) -> float:
    """τ = -1 / ln σ(b_f): the time constant of a forget gate held at
    σ(b_f), as at initialisation (weights small, bias b_f). About 3.19
    steps for the book's b_f = 1; for large b_f, τ ≈ e^{b_f}."""
    b = check_finite_real("forget_bias_time_constant", "forget_bias",
                          forget_bias)
    minus_log_f = max(-b, 0.0) + math.log1p(math.exp(-abs(b)))  # -ln σ(b)
    return 1 / minus_log_f


def _check_text(owner: str, text) -> None:
    if not isinstance(text, str) or not text:
        got = repr(text) if isinstance(text, str) else describe(text)
        raise ValueError(f"{owner}: expected a non-empty str, got {got}")
