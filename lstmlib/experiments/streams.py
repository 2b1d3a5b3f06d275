"""A stream that never restarts, and truncated BPTT that carries the state
across it.

Most of the book's tasks are episodes: every sequence starts from the zero
state. Gers, Schmidhuber and Cummins (2000) trained LSTMs on a *continual*
input stream instead, never cut into episodes, so that nothing reset the
state. Here such a stream is cut into windows for truncated
backpropagation through time, with the state carried from one window to
the next and never reset. That is where a cell whose state nothing bounds
is put to the test: its state has the whole stream to drift in, not one
short episode.

* :class:`MarkedRecallStream`: B endless streams of random values, some of
  them marked; the target at every step is the most recently marked value.
* :class:`StreamRegressor`: a cell with a linear read-out at every step,
  ``y_t = V o_t + c``, whose ``forward`` takes and returns the state.
* :func:`train_on_stream`: K such models, one stream each, trained side by
  side on consecutive windows of their streams; with ``carry_state=False``
  every window starts from zeros instead (the episodic control).

Example: two GRUs on their own streams, 5 windows of 10 steps.

>>> import torch
>>> from lstmlib.cells.gru import GRUCell
>>> models = [StreamRegressor(GRUCell(3, 8), 2) for _ in range(2)]
>>> streams = [MarkedRecallStream(4, 2, generator=torch.Generator()
...                               .manual_seed(k)) for k in range(2)]
>>> run = train_on_stream(models, streams, windows=5, window_length=10)
>>> run.losses.shape, run.state_norm.shape, run.final_states.shape
(torch.Size([5, 2]), torch.Size([5, 2]), torch.Size([2, 4, 8]))
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state
from torch.nn import functional as F

from .._checks import check_positive_int
from ..cells.recurrent import Cell, Recurrent, State, state_parts
from .ensembles import step_stacked_

__all__ = ["MARKED_RECALL_BASELINE_MSE", "MarkedRecallStream",
           "StreamRegressor", "StreamTraining", "train_on_stream"]

#: Mean squared error of always answering 0 on a :class:`MarkedRecallStream`
#: once a value has been marked: the variance of U(-1, 1), 1/3.
MARKED_RECALL_BASELINE_MSE = 1.0 / 3.0


class MarkedRecallStream:
    """B endless streams: remember the last marked value until the next mark.

    At every step t each stream shows a fresh value ``v_t ~ U(-1, 1)^size``
    and a flag ``a_t``, 1 with probability ``marker_probability`` and 0
    otherwise: the input is ``x_t = (a_t, v_t)``, ``(1 + size,)``. The
    target is the value shown at the most recent marked step up to and
    including t (0 before the first mark), so the unmarked values are
    distractions to be ignored. Consecutive calls of :meth:`window`
    continue the same streams.

    Args:
        batch_size: B, the number of streams.
        size: the length of each value.
        marker_probability: the chance that a step is marked; the gaps
            between marks are geometric with mean ``1 / marker_probability``.
        generator: the ``torch.Generator`` that draws the streams.
        dtype: the floating-point type of inputs and targets (``None``:
            torch's default).
    """

    def __init__(self, batch_size: int, size: int, *,
                 marker_probability: float = 0.1,
                 generator: torch.Generator | None = None,
                 dtype: torch.dtype | None = None):
        check_positive_int("MarkedRecallStream", "batch_size", batch_size)
        check_positive_int("MarkedRecallStream", "size", size)
        if not 0 < marker_probability <= 1:
            raise ValueError(f"MarkedRecallStream: expected 0 < "
                             f"marker_probability <= 1, got "
                             f"{marker_probability!r}")
        self.batch_size, self.size = batch_size, size
        self.marker_probability = float(marker_probability)
        self.generator = generator
        self.dtype = dtype or torch.get_default_dtype()
        self.held = torch.zeros(batch_size, size, dtype=self.dtype)  # (B, size)

    @property
    def input_size(self) -> int:
        """The length of each input, 1 + size (the flag, then the value)."""
        return 1 + self.size

    def window(self, length: int) -> tuple[Tensor, Tensor]:
        """The next ``length`` steps of the streams: inputs
        ``(length, B, 1 + size)`` and targets ``(length, B, size)``."""
        check_positive_int("MarkedRecallStream.window", "length", length)
        shape = (length, self.batch_size)
        marked = torch.rand(shape, generator=self.generator,
                            dtype=self.dtype) < self.marker_probability
        values = 2 * torch.rand(*shape, self.size, generator=self.generator,
                                dtype=self.dtype) - 1
        targets = []
        for a_t, v_t in zip(marked, values):
            self.held = torch.where(a_t[:, None], v_t, self.held)
            targets.append(self.held)
        x = torch.cat([marked.to(self.dtype)[..., None], values], dim=-1)
        return x, torch.stack(targets)


class StreamRegressor(nn.Module):
    """A cell with a linear read-out at every step, ``y_t = V o_t + c``,
    that takes the state to start from and returns the state it ends in,
    so that a stream can be run window after window.

    Inputs of ``forward``: ``x`` ``(T, B, input_size)`` and the state
    (``None``: zeros). Outputs: ``y`` ``(T, B, target_size)`` and the final
    state.
    """

    def __init__(self, cell: Cell, target_size: int):
        super().__init__()
        check_positive_int("StreamRegressor", "target_size", target_size)
        self.recurrent = Recurrent(cell)
        self.readout = nn.Linear(cell.output_size, target_size)

    def forward(self, x: Tensor, state: State | None = None
                ) -> tuple[Tensor, State]:
        outputs, state = self.recurrent(x, state)          # (T, B, n)
        return self.readout(outputs), state


class StreamTraining(NamedTuple):
    """What :func:`train_on_stream` measured.

    losses: ``(windows, K)``, each window's mean squared error (over its
        steps, streams and components), before that window's update.
    state_norm: ``(windows, K)``, the largest ``‖s‖`` over the B streams at
        the end of each window (a cell with several state parts: the norm
        of their concatenation).
    final_states: the state at the end of the last window, member index
        first: ``(K, B, n)``, or a tuple of such Tensors.
    """

    losses: Tensor
    state_norm: Tensor
    final_states: State


def _stacked(tree, pick):
    """Apply ``pick`` to a state: one Tensor or a tuple of them."""
    if isinstance(tree, Tensor):
        return pick(tree)
    return tuple(pick(part) for part in tree)


def train_on_stream(
    models: Sequence[StreamRegressor],
    streams: Sequence[MarkedRecallStream],
    *,
    windows: int,
    window_length: int,
    lr: float = 1e-2,
    clip_norm: float | None = 1.0,
    carry_state: bool = True,
) -> StreamTraining:
    """Train K models by truncated BPTT, model k on ``streams[k]``.

    For each of ``windows`` windows: take the next ``window_length`` steps
    of every stream, run every model from its state (the state the last
    window ended in, detached, when ``carry_state``; zeros otherwise),
    take the mean squared error over the window, and make one Adam step
    (learning rate ``lr``), each model's gradient clipped to ``clip_norm``
    on its own. The K models run as one computation, vmapped over their
    stacked parameters (``torch.func``), each exactly as it would be
    trained alone; they must have the same type and parameter shapes, and
    receive their trained parameters.
    """
    owner = "train_on_stream"
    check_positive_int(owner, "windows", windows)
    check_positive_int(owner, "window_length", window_length)
    models, streams = list(models), list(streams)
    if not models or len(streams) != len(models):
        raise ValueError(f"{owner}: expected one stream per model and at "
                         f"least one model, got {len(models)} models and "
                         f"{len(streams)} streams")
    if any(not isinstance(m, StreamRegressor) for m in models) or \
            len({type(m.recurrent.cell) for m in models}) > 1:
        raise TypeError(f"{owner}: expected StreamRegressors of one cell "
                        f"type, got {sorted({type(m).__name__ for m in models})}")
    if len({s.batch_size for s in streams}) > 1:
        raise ValueError(f"{owner}: expected streams of one batch size, got "
                         f"{sorted({s.batch_size for s in streams})}")
    params, buffers = stack_module_state(models)       # (K, ...) leaves
    template = copy.deepcopy(models[0]).to("meta")

    def loss_of_one(p, b, x, target, state):
        y, state = functional_call(template, (p, b), (x, state))
        return F.mse_loss(y, target), state

    losses_of_all = torch.vmap(loss_of_one)
    optimiser = torch.optim.Adam(list(params.values()), lr=lr)
    cell, B = models[0].recurrent.cell, streams[0].batch_size
    like = params["readout.weight"]

    def zeros():
        one = cell.initial_state(B, dtype=like.dtype, device=like.device)
        return _stacked(one, lambda s: s.expand(len(models), *s.shape)
                        .clone())

    state = zeros()
    losses, norms = [], []
    for _ in range(windows):
        xs, targets = zip(*(stream.window(window_length)
                            for stream in streams))
        start = state if carry_state else zeros()
        value, state = losses_of_all(params, buffers, torch.stack(xs),
                                     torch.stack(targets), start)   # (K,)
        step_stacked_(optimiser, value, list(params.values()), clip_norm)
        state = _stacked(state, Tensor.detach)    # truncate: no gradient
        whole = torch.cat(state_parts(state), dim=-1)   # (K, B, n·parts)
        losses.append(value.detach())
        norms.append(whole.norm(dim=-1).amax(dim=-1))
    with torch.no_grad():
        for k, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(params[name][k])
    return StreamTraining(torch.stack(losses), torch.stack(norms), state)
