"""Internal state drift, measured: how large a cell's state grows and how
many of its gates saturate, along a trajectory and during training.

Hochreiter and Schmidhuber (1997) named the problem: if the writes to an
unbounded state are mostly of one sign, the state drifts away, and the
sigmoids that read it go flat. The two symptoms are measured here:

* the size of the state, ``‖s_t‖`` (Euclidean norm over the n units);
* the saturation of the gates, the fraction of gate values g = σ(·) whose
  slope σ' = g (1 - g) is below a threshold (0.01 by default, which holds
  when g < 0.0101 or g > 0.9899): a gate there hardly responds to its
  inputs and passes almost no gradient back to them.

The gates of a step are whatever the cell's ``step`` computes with the
logistic sigmoid, recorded as it runs, so the measurement works for every
gated cell of the book without restating its equations.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from ..cells.recurrent import Cell, Recurrent, State
from .._checks import check_positive_int
from ..experiments.ensembles import step_stacked_
from ..experiments.training import train_regression

__all__ = ["DriftLog", "GateTrajectory", "gate_trajectory",
           "saturated_fraction", "train_regression_logging_drift",
           "train_ensemble_logging_drift"]

_SIGMOIDS = (torch.sigmoid, Tensor.sigmoid, F.sigmoid)


class _SigmoidRecorder(TorchFunctionMode):
    """Keeps the output of every sigmoid computed while it is active."""

    def __init__(self):
        super().__init__()
        self.outputs: list[Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in _SIGMOIDS:
            self.outputs.append(out)
        return out


class GateTrajectory(NamedTuple):
    """What :func:`gate_trajectory` records.

    states: ``(T, B, n)``, the states s_1 ... s_T; a tuple of such Tensors
        for a cell with several state parts, in the order of ``state_names``.
    gates: ``(T, B, G)``, every sigmoid output of each step, concatenated in
        the order the step computes them (G = 3n for the prototype's
        i | f | o, 2n for the GRU's r | z).
    """

    states: State
    gates: Tensor


def gate_trajectory(cell: Cell, x: Tensor, state: State | None = None
                    ) -> GateTrajectory:
    """Run ``cell`` over ``x`` ``(T, B, m)`` from ``state`` (zeros if
    ``None``) and record its states and gates at every step.

    The computation is the cell's own (``project_input`` once, then
    ``step`` T times, as :class:`~lstmlib.Recurrent` does); the gates are
    the outputs of the sigmoids it evaluates. A cell that computes no
    sigmoid raises ``ValueError``.
    """
    x, state = Recurrent(cell).time_major_and_state(x, state)
    x_proj = cell.project_input(x)                  # all T steps at once
    states, gates = [], []
    for x_t in x_proj:
        with _SigmoidRecorder() as recorder:
            _, state = cell.step(x_t, state)
        if not recorder.outputs:
            raise ValueError(f"gate_trajectory: expected a gated cell, but "
                             f"{type(cell).__name__}.step computes no "
                             f"sigmoid")
        states.append(state)
        gates.append(torch.cat(recorder.outputs, dim=-1))   # (B, G)
    if isinstance(state, Tensor):
        stacked = torch.stack(states)                        # (T, B, n)
    else:
        stacked = tuple(torch.stack(part) for part in zip(*states))
    return GateTrajectory(stacked, torch.stack(gates))


def saturated_fraction(gates: Tensor, max_slope: float = 0.01) -> Tensor:
    """The fraction of gate values g whose slope σ' = g (1 - g) is below
    ``max_slope``, for each step: ``gates`` ``(T, ...)`` gives ``(T,)``."""
    if not isinstance(gates, Tensor) or gates.dim() < 1:
        raise TypeError(f"saturated_fraction: expected a Tensor (T, ...) of "
                        f"gate values, got {type(gates).__name__}")
    if not 0 < max_slope <= 0.25:
        raise ValueError(f"saturated_fraction: expected 0 < max_slope <= "
                         f"0.25 (σ' never exceeds 1/4), got {max_slope!r}")
    flat = (gates * (1 - gates) < max_slope).reshape(gates.shape[0], -1)
    return flat.to(gates.dtype).mean(dim=1)


class DriftLog(NamedTuple):
    """Measurements on a fixed probe batch, taken every few training steps.

    step: ``(K,)`` training steps at which the probe ran (0 = before
        training, the last = after it).
    state_norm: ``(K,)`` the largest ``‖s_t‖`` over the probe's steps and
        sequences (for a cell with several state parts, the norm of their
        concatenation).
    saturated: ``(K,)`` the fraction of all gate values of the probe with
        σ' < 0.01.
    """

    step: Tensor
    state_norm: Tensor
    saturated: Tensor


def _probe(cell: Cell, x: Tensor) -> tuple[float, float]:
    with torch.no_grad():
        states, gates = gate_trajectory(cell, x)
    if not isinstance(states, Tensor):
        states = torch.cat(states, dim=-1)
    return (states.norm(dim=-1).max().item(),
            saturated_fraction(gates).mean().item())


def train_regression_logging_drift(
    model: nn.Module,
    make_batch: Callable[[torch.Generator], tuple[Tensor, Tensor]],
    probe: Tensor,
    *,
    steps: int,
    every: int = 20,
    lr: float = 1e-2,
    seed: int | None = None,
    clip_norm: float | None = 1.0,
) -> tuple[list[float], DriftLog]:
    """:func:`~lstmlib.train_regression`, measuring drift as it goes.

    The training is exactly that of ``train_regression`` (Adam on the mean
    squared error, a fresh batch from ``make_batch`` each step, gradients
    clipped to ``clip_norm``; same seed, same losses). Before the first
    step, every ``every`` steps and after the last, the cell
    ``model.recurrent.cell`` (a :class:`~lstmlib.FinalStateRegressor`'s)
    is run on the fixed inputs ``probe`` ``(T, B, m)`` and its largest
    state norm and gate saturation are recorded.

    Returns the training loss of every step and the :class:`DriftLog`.
    """
    check_positive_int("train_regression_logging_drift", "steps", steps)
    check_positive_int("train_regression_logging_drift", "every", every)
    cell = _cell_of("train_regression_logging_drift", model)
    log = []

    def probe_now(k: int) -> None:
        if k % every == 0 or k == steps:
            log.append((k, *_probe(cell, probe)))

    losses = train_regression(model, make_batch, steps=steps, lr=lr,
                              seed=seed, clip_norm=clip_norm,
                              before_step=probe_now)
    step, norm, saturated = zip(*log)
    return losses, DriftLog(torch.tensor(step), torch.tensor(norm),
                            torch.tensor(saturated))


def _cell_of(owner: str, model: nn.Module) -> Cell:
    cell = getattr(getattr(model, "recurrent", None), "cell", None)
    if not isinstance(cell, Cell):
        raise TypeError(f"{owner}: expected a model with a cell at "
                        f"model.recurrent.cell (e.g. a FinalStateRegressor), "
                        f"got {type(model).__name__}")
    return cell


def train_ensemble_logging_drift(
    models: Sequence[nn.Module],
    make_batch: Callable[[torch.Generator], tuple[Tensor, Tensor]],
    probe: Tensor,
    *,
    steps: int,
    seeds: Sequence[int],
    every: int = 20,
    lr: float = 1e-2,
    clip_norm: float | None = 1.0,
) -> tuple[Tensor, list[DriftLog]]:
    """:func:`train_regression_logging_drift` for K models of one kind at
    once: model ``k`` with training seed ``seeds[k]``.

    Each model is trained as ``train_regression_logging_drift(models[k],
    make_batch, probe, seed=seeds[k], ...)`` would train it (its own
    batches, Adam, its own gradient clipped to ``clip_norm``, the same
    probes), equal up to rounding; but the K forward and backward passes
    run as one computation, vmapped over the stacked parameters
    (``torch.func``), which on a CPU takes about half the time of K
    separate runs for the book's small cells. The models must have the
    same type and parameter shapes; they receive their trained parameters.

    Returns the training losses ``(steps, K)`` and one :class:`DriftLog`
    per model.
    """
    owner = "train_ensemble_logging_drift"
    check_positive_int(owner, "steps", steps)
    check_positive_int(owner, "every", every)
    models = list(models)
    seeds = list(seeds)
    if not models or len(seeds) != len(models):
        raise ValueError(f"{owner}: expected one seed per model and at least "
                         f"one model, got {len(models)} models and "
                         f"{len(seeds)} seeds")
    cells = [_cell_of(owner, model) for model in models]
    if len({type(model) for model in models}) > 1 or \
            len({type(cell) for cell in cells}) > 1:
        raise TypeError(f"{owner}: expected models of one kind, got "
                        f"{sorted({type(c).__name__ for c in cells})}")
    params, buffers = stack_module_state(models)     # (K, ...) leaves
    template = copy.deepcopy(models[0]).to("meta")

    def loss_of_one(p, b, x, target):
        return F.mse_loss(functional_call(template, (p, b), (x,)), target)

    losses_of_all = torch.vmap(loss_of_one)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    optimiser = torch.optim.Adam(list(params.values()), lr=lr)
    records: list[list[tuple[int, float, float]]] = [[] for _ in models]

    def copy_back() -> None:
        with torch.no_grad():
            for k, model in enumerate(models):
                for name, p in model.named_parameters():
                    p.copy_(params[name][k])

    def probe_now(k: int) -> None:
        if k % every == 0 or k == steps:
            copy_back()
            for record, cell in zip(records, cells):
                record.append((k, *_probe(cell, probe)))

    losses = []
    for k in range(steps):
        probe_now(k)
        xs, targets = zip(*(make_batch(g) for g in generators))
        value = losses_of_all(params, buffers, torch.stack(xs),
                              torch.stack(targets))           # (K,)
        step_stacked_(optimiser, value, list(params.values()), clip_norm)
        losses.append(value.detach())
    probe_now(steps)
    logs = []
    for record in records:
        step, norm, saturated = zip(*record)
        logs.append(DriftLog(torch.tensor(step), torch.tensor(norm),
                             torch.tensor(saturated)))
    return torch.stack(losses), logs
