"""Character-level LSTMs on Tiny Shakespeare, and what their gates do
(the chapter "What trained gates do on text").

Two scales share one measurement:

* the chapter's live run: K small one-layer models,
  ``PerStepClassifier(BasicLSTMCell(V, n), V)`` on one-hot characters,
  trained at once as an :class:`~lstmlib.experiments.ensembles.Ensemble`
  on windows drawn at random from the training text
  (:func:`random_windows`), each window starting from the zero state;
* the full-scale run of ``python -m lstmlib.commands.char_lm``: a
  :class:`~lstmlib.experiments.language_model.LanguageModel` of stacked
  basic LSTMs (:func:`char_language_model`), trained by stateful truncated
  BPTT with :data:`CHAR_LM_FULL`.

:func:`char_model_states` runs either kind of model over held-out text and
keeps every layer's states and gates; :func:`gate_report` turns them into
the plain numbers a record holds (no weights): per layer, how often each
gate is saturated, the spread of the forget gates' time constants against
the τ of b_f at initialisation, and, for each signal of the text, the unit
that tracks it best with its activation over the first characters.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from ..analysis.gate_statistics import (forget_bias_time_constant,
                                        line_positions, lstm_layer_states,
                                        memoryless_correlation,
                                        saturation_fractions,
                                        speaker_name_lines, time_constants,
                                        unit_correlations)
from ..analysis.lstm_backward import LSTMStates
from ..cells.lstm import BasicLSTMCell
from .._checks import check_positive_int, describe
from .language_model import LanguageModel, LMConfig
from .training import PerStepClassifier

__all__ = ["TEXT_SIGNALS", "CHAR_LM_FULL", "CHAR_LM_LAYERS",
           "CHAR_LM_STATE_SIZE", "CHAR_LM_EMBEDDING", "random_windows",
           "char_language_model", "char_model_states", "gate_report"]

#: The signals of the text that a unit may track, by name: each maps the
#: text to a ``(T,)`` float tensor.
TEXT_SIGNALS: dict[str, Callable[[str], Tensor]] = {
    "position in line": line_positions,
    "speaker name": speaker_name_lines,
}

#: The full-scale model: 2 layers of 256 units reading a 64-dimensional
#: embedding of the 65 characters (about 0.9 million parameters).
CHAR_LM_LAYERS = 2
CHAR_LM_STATE_SIZE = 256
CHAR_LM_EMBEDDING = 64

#: How the full-scale model trains: 50 parallel streams, windows of 50
#: characters (a state carried across them; 400 updates per epoch), Adam
#: at 2e-3 decayed by 0.9 per epoch after the fifth, gradient norm clipped
#: at 5, at most 15 epochs (about a CPU hour at the default size), and
#: stopping once validation has not improved for 2 epochs.
CHAR_LM_FULL = LMConfig(batch_size=50, bptt=50, epochs=15,
                        optimizer="adam", lr=2e-3, lr_decay=0.9,
                        decay_after=5, clip_norm=5.0, patience=2)


def random_windows(stream: Tensor, length: int, batch_size: int,
                   generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``batch_size`` windows of ``length`` characters, each starting at a
    uniformly drawn place in ``stream``: the inputs ``(T, B)`` and the
    next character at every step, the targets ``(T, B)``
    (T = ``length``, B = ``batch_size``). A ``make_batch`` for
    :func:`~lstmlib.experiments.ensembles.train_ensemble`.

    >>> stream = torch.arange(100)
    >>> x, y = random_windows(stream, 5, 3, torch.Generator().manual_seed(0))
    >>> x.shape, torch.equal(y, x + 1)
    (torch.Size([5, 3]), True)
    """
    check_positive_int("random_windows", "length", length)
    check_positive_int("random_windows", "batch_size", batch_size)
    if not isinstance(stream, Tensor) or stream.dim() != 1 or \
            stream.numel() < length + 1:
        raise ValueError(f"random_windows: expected a 1-D stream of at "
                         f"least length + 1 = {length + 1} tokens, got "
                         f"{describe(stream)}")
    starts = torch.randint(0, stream.numel() - length, (batch_size,),
                           generator=generator)                  # (B,)
    window = stream[starts + torch.arange(length + 1)[:, None]]  # (T+1, B)
    return window[:-1], window[1:]


def char_language_model(vocab_size: int, *,
                        layers: int = CHAR_LM_LAYERS,
                        state_size: int = CHAR_LM_STATE_SIZE,
                        embedding_size: int = CHAR_LM_EMBEDDING,
                        forget_bias: float = 1.0) -> LanguageModel:
    """An embedding, ``layers`` basic LSTMs of ``state_size`` units
    (forget bias ``forget_bias`` at the start) and a linear read-out: the
    model of the full-scale run. Seed torch's generator first."""
    for name, value in (("vocab_size", vocab_size), ("layers", layers),
                        ("state_size", state_size),
                        ("embedding_size", embedding_size)):
        check_positive_int("char_language_model", name, value)
    sizes = [embedding_size] + [state_size] * layers
    return LanguageModel(vocab_size, [
        BasicLSTMCell(m, n, forget_bias=forget_bias)
        for m, n in zip(sizes, sizes[1:])])


def char_model_states(model: PerStepClassifier | LanguageModel,
                      tokens: Tensor) -> list[LSTMStates]:
    """Every layer's states and gates while ``model`` reads ``tokens``
    from the zero state.

    Args:
        model: a ``PerStepClassifier`` around a ``BasicLSTMCell`` (one-hot
            inputs) or a ``LanguageModel`` whose layers are all
            ``BasicLSTMCell`` (embedded inputs).
        tokens: character ids ``(T,)`` (one stream) or ``(T, B)``.

    Returns:
        One :class:`~lstmlib.analysis.lstm_backward.LSTMStates` per layer,
        bottom first, with a stream dimension ``B`` (1 for ``(T,)``).
    """
    if not isinstance(tokens, Tensor) or tokens.dtype != torch.long or \
            tokens.dim() not in (1, 2):
        raise ValueError("char_model_states: expected torch.long ids (T,) "
                         f"or (T, B), got {describe(tokens)}")
    if tokens.dim() == 1:
        tokens = tokens[:, None]                             # (T, 1)
    if isinstance(model, PerStepClassifier):
        cells = [model.recurrent.cell]
        reference = cells[0].reference_tensor()
        x = F.one_hot(tokens, cells[0].input_size).to(reference)
    elif isinstance(model, LanguageModel):
        cells = [getattr(layer, "cell", layer) for layer in model.layers]
        x = model.embedding(tokens).detach()                 # (T, B, d)
    else:
        raise TypeError("char_model_states: expected a PerStepClassifier or "
                        f"a LanguageModel, got {type(model).__name__}")
    if not all(isinstance(cell, BasicLSTMCell) for cell in cells):
        raise TypeError("char_model_states: expected BasicLSTMCell layers, "
                        f"got {[type(c).__name__ for c in cells]}")
    return lstm_layer_states(cells, x)


def gate_report(states: Sequence[LSTMStates], text: str, *,
                forget_bias: float = 1.0, trace_length: int = 300) -> dict:
    """What the layers' gates and units do on ``text``, as plain numbers.

    Args:
        states: one per layer, recorded on ``text`` as a single stream
            (``B = 1``), e.g. by :func:`char_model_states`.
        text: the characters read, ``T`` of them.
        forget_bias: the b_f the cells started from; its τ is reported
            beside the measured ones.
        trace_length: how many of the first characters the best units'
            activations are kept for.

    Returns:
        ``{"text": the first trace_length characters, "forget_bias",
        "initial_time_constant", "memoryless_r": {signal: corr*}, "layers":
        [...]}``, with corr* the largest |corr| any function of the current
        character reaches (:func:`~lstmlib.analysis.gate_statistics.
        memoryless_correlation`); per layer:

        * ``"saturation"``: for ``"i"``, ``"f"``, ``"o"``, the per-unit
          fractions of steps left- and right-saturated (lists of n) and
          their means over the units (``"left_mean"``, ``"right_mean"``);
        * ``"time_constants"``: the per-unit τ (list of n) and their 10th,
          50th and 90th percentiles and maximum;
        * ``"signals"``: per signal of :data:`TEXT_SIGNALS`, the unit whose
          h or c correlates most strongly with it (``"unit"``, ``"part"``
          ``"h"`` or ``"c"``, ``"r"``) and that activation over the first
          ``trace_length`` characters (``"trace"``).
    """
    signals = {name: make(text) for name, make in TEXT_SIGNALS.items()}
    codes = torch.tensor([ord(character) for character in text])
    memoryless = {name: memoryless_correlation(signal, codes)
                  for name, signal in signals.items()}
    layers = []
    for kept in states:
        if kept.h.shape[0] != len(text) + 1 or kept.h.shape[1] != 1:
            raise ValueError(f"gate_report: expected states of one stream "
                             f"over the {len(text)} characters of text, got "
                             f"h of shape {tuple(kept.h.shape)}")
        parts = {"h": kept.h[1:, 0], "c": kept.c[1:, 0]}       # (T, n)
        saturation = {}
        for gate in ("i", "f", "o"):
            left, right = saturation_fractions(getattr(kept, gate))
            saturation[gate] = {"left": left.tolist(),
                                "right": right.tolist(),
                                "left_mean": left.mean().item(),
                                "right_mean": right.mean().item()}
        tau = time_constants(kept.f).double()                   # (n,)
        found = {}
        for name, signal in signals.items():
            r = {part: unit_correlations(a, signal)
                 for part, a in parts.items()}                  # (n,) each
            part = max(r, key=lambda p: r[p].abs().max().item())
            unit = int(r[part].abs().argmax())
            found[name] = {"unit": unit, "part": part,
                           "r": r[part][unit].item(),
                           "trace": parts[part][:trace_length, unit]
                           .tolist()}
        layers.append({
            "saturation": saturation,
            "time_constants": {
                "units": tau.tolist(),
                "q10": _quantile(tau, 0.1),
                "median": _quantile(tau, 0.5),
                "q90": _quantile(tau, 0.9),
                "max": tau.max().item()},
            "signals": found})
    return {"text": text[:trace_length], "forget_bias": forget_bias,
            "initial_time_constant": forget_bias_time_constant(forget_bias),
            "memoryless_r": memoryless, "layers": layers}


def _quantile(values: Tensor, q: float) -> float:
    """The ``q``-quantile of ``values`` (linear interpolation, as
    ``torch.quantile``), where a value may be ``inf`` (a forget gate that
    is exactly 1 throughout): ``torch.quantile`` gives ``nan`` there."""
    ordered = values.sort().values
    position = q * (ordered.numel() - 1)
    low, weight = int(position), position - int(position)
    if weight == 0:
        return ordered[low].item()
    return (ordered[low] + weight * (ordered[low + 1] - ordered[low])).item()
