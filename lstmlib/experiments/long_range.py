"""Which cells learn long-range tasks as the lag grows (Part III,
"Long-range memory").

Every cell of Parts I and II is trained on a task from
:mod:`lstmlib.experiments.tasks` at a lag T, with the same budget (state size, batch,
steps, learning rate), and is called *solved* when its loss on held-out
sequences is below a fixed fraction (default 10%) of the task's chance
baseline. :func:`solve_lag_task` does one run and :func:`lag_sweep` a
grid; each run gives a JSON-able record. The command line that runs a
sweep and writes its records with their provenance is
:mod:`lstmlib.commands.long_range`.

These sweeps measure what one draw does under one budget. The grid of
:mod:`lstmlib.experiments.long_range_grid` measures what a cell *can*
do: a learning rate chosen per cell on a validation set, several seeds
per point, the papers' success criteria; it trains its seeds with
:func:`train_lag_seeds`, the training of :func:`solve_lag_task_seeds`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .ensembles import Ensemble, train_ensemble
from ..analysis.initialization import initialize_recurrent_, orthogonal_
from ..cells.recurrent import Cell
from ..cells.registry import REGISTERED_CELLS
from .._checks import check_finite_real, check_positive_int
from ..seeds import seed_base, seed_or_base
from .tasks import (ADDING_BASELINE_MSE, COPY_DELIMITER,
                    TEMPORAL_ORDER_BASELINE_CROSS_ENTROPY,
                    TEMPORAL_ORDER_CLASSES, TEMPORAL_ORDER_SYMBOLS,
                    adding_problem, copy_memory, copy_memory_baseline,
                    temporal_order)
from .training import (FinalStateClassifier, FinalStateRegressor,
                       PerStepClassifier, per_step_cross_entropy,
                       train_model)
from ..cells.vanilla import VanillaRNNCell

__all__ = ["LAG_CELLS", "LagTask", "LAG_TASKS",
           "lag_model", "solve_lag_task", "solve_lag_task_seeds", "lag_sweep",
           "train_lag_seeds"]

def _orthogonal_vanilla(input_size: int, state_size: int) -> Cell:
    cell = VanillaRNNCell(input_size, state_size)
    return initialize_recurrent_(cell, orthogonal_)     # W orthogonal


#: The registered cells the sweeps leave out: the additive cell, a step
#: of the derivation, not one of the chapter's seven cells.
_NOT_SWEPT = ("additive cell",)

#: The names the records carry where they differ from the registry's.
_RECORD_NAMES = {"prototype LSTM": "prototype"}

#: The cells compared, by name: ``factory(input_size, state_size)``: the
#: cells of :mod:`lstmlib.cells.registry` in its order, except those in
#: ``_NOT_SWEPT``, named as the records name them. The gated cells keep
#: their defaults, which start the gate that keeps the old state at bias 1
#: (forget gate b_f = 1; the GRU's update gate b_z = 1, its keep gate).
LAG_CELLS: Dict[str, Callable[[int, int], Cell]] = {
    _RECORD_NAMES.get(cell.name, cell.name): cell.build
    for cell in REGISTERED_CELLS if cell.name not in _NOT_SWEPT}
# The one choice on top of the registry's defaults: the vanilla RNN gets an
# orthogonal W (Part I, "Initializing the recurrent weights").
LAG_CELLS["vanilla RNN"] = _orthogonal_vanilla


@dataclass(frozen=True)
class LagTask:
    """A long-range task at lag T, as the sweep uses it.

    Attributes:
        lag: what T is for this task.
        input_size, num_outputs: the model's input and read-out sizes.
        batch: ``batch(batch_size, T, generator)`` → ``(x, target)``.
        readout: the model class around the cell.
        loss: ``loss(model(x), target)``, a scalar.
        baseline: ``baseline(T)``, the chance-level loss.
    """

    lag: str
    input_size: int
    num_outputs: int
    batch: Callable[[int, int, torch.Generator], Tuple[Tensor, Tensor]]
    readout: type
    loss: Callable[[Tensor, Tensor], Tensor]
    baseline: Callable[[int], float]


#: The tasks, by name (see :mod:`lstmlib.experiments.tasks` for their rules).
LAG_TASKS: Dict[str, LagTask] = {
    "adding": LagTask(
        "sequence length (variant 'le')", 2, 1,
        lambda b, T, g: adding_problem(b, T, generator=g),
        FinalStateRegressor, F.mse_loss, lambda T: ADDING_BASELINE_MSE),
    "copy": LagTask(
        "delay (sequence length T + 20)", COPY_DELIMITER + 1,
        COPY_DELIMITER + 1,
        lambda b, T, g: copy_memory(b, T, generator=g),
        PerStepClassifier, per_step_cross_entropy, copy_memory_baseline),
    "temporal order": LagTask(
        "minimal sequence length", len(TEMPORAL_ORDER_SYMBOLS),
        len(TEMPORAL_ORDER_CLASSES),
        lambda b, T, g: temporal_order(b, T, generator=g),
        FinalStateClassifier, F.cross_entropy,
        lambda T: TEMPORAL_ORDER_BASELINE_CROSS_ENTROPY),
}


def _check_name(owner: str, what: str, name, table: dict) -> None:
    if name not in table:
        raise ValueError(f"{owner}: expected {what} to be one of "
                         f"{list(table)}, got {name!r}")


def lag_model(cell: str, task: str, *, state_size: int = 16,
              seed: int | None = None) -> nn.Module:
    """A fresh model for ``task`` around the cell named ``cell``, its
    parameters drawn from a generator seeded with ``seed`` (default: the
    base seed of :mod:`lstmlib.seeds`; torch's global generator is left
    as it was)."""
    _check_name("lag_model", "cell", cell, LAG_CELLS)
    _check_name("lag_model", "task", task, LAG_TASKS)
    check_positive_int("lag_model", "state_size", state_size)
    spec = LAG_TASKS[task]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_or_base(seed, "lag_model"))
        return spec.readout(LAG_CELLS[cell](spec.input_size, state_size),
                            spec.num_outputs)


def solve_lag_task(
    cell: str,
    task: str,
    T: int,
    *,
    state_size: int = 16,
    batch_size: int = 64,
    steps: int = 400,
    lr: float = 1e-2,
    seed: int | None = None,
    solved_fraction: float = 0.1,
    eval_size: int = 1000,
    device: str | torch.device = "cpu",
) -> Tuple[dict, nn.Module]:
    """Train the cell named ``cell`` on ``task`` at lag ``T``; say whether
    it solved it.

    The model is :func:`lag_model`'s, trained by :func:`train_model`
    (Adam, gradient norm clipped at 1, a fresh batch every step from a
    generator seeded with ``seed``) for at most ``steps`` steps, stopping
    early once the mean training loss of the last 10 steps is below
    ``solved_fraction × baseline``. It is then evaluated on ``eval_size``
    held-out sequences (generator seeded with ``seed + 10**6``): the task
    counts as **solved** when that loss is below
    ``solved_fraction × baseline(T)``.

    Returns ``(record, model)``: the record is a dict of JSON-able values
    (cell, task, T, state_size, batch_size, lr, seed, max_steps, steps
    taken, train_loss (mean of the last 10 steps), final_loss (held-out),
    baseline, threshold, solved, seconds); the model is the trained one.
    Batches are drawn on the CPU and moved to ``device``.
    """
    owner = "solve_lag_task"
    seed = seed_or_base(seed, owner)
    _check_name(owner, "task", task, LAG_TASKS)
    for name, value in (("T", T), ("batch_size", batch_size),
                        ("steps", steps), ("eval_size", eval_size)):
        check_positive_int(owner, name, value)
    fraction = check_finite_real(owner, "solved_fraction", solved_fraction)
    if not 0 < fraction < 1:
        raise ValueError(f"{owner}: expected 0 < solved_fraction < 1, got "
                         f"{solved_fraction!r}")
    spec = LAG_TASKS[task]
    model = lag_model(cell, task, state_size=state_size, seed=seed)
    model.to(device)
    baseline = spec.baseline(T)
    threshold = fraction * baseline
    started = time.perf_counter()

    def batch(size: int, generator: torch.Generator):
        return tuple(t.to(device) for t in spec.batch(size, T, generator))

    losses = train_model(model, lambda g: batch(batch_size, g), spec.loss,
                         steps=steps, lr=lr, seed=seed,
                         stop_below=threshold)
    x, target = batch(eval_size, torch.Generator().manual_seed(
        seed + 10 ** 6))                                  # held out
    with torch.no_grad():
        final = spec.loss(model(x), target).item()
    record = dict(cell=cell, task=task, T=T, state_size=state_size,
                  batch_size=batch_size, lr=lr, seed=seed, max_steps=steps,
                  steps=len(losses), train_loss=sum(losses[-10:]) / len(
                      losses[-10:]), final_loss=final, baseline=baseline,
                  threshold=threshold, solved=final < threshold,
                  seconds=round(time.perf_counter() - started, 2))
    return record, model


def lag_sweep(cells: Sequence[str], tasks: Sequence[str],
              lags: Sequence[int] | Dict[str, Sequence[int]], *,
              seeds: Sequence[int] | None = None, log: Callable[[dict], None]
              | None = None, **options) -> List[dict]:
    """:func:`solve_lag_task` for every task, lag, cell and seed; the
    records in that order. ``lags`` is one list for all tasks or a dict
    ``{task: lags}``; ``options`` go to :func:`solve_lag_task`; ``log``, if
    given, is called with every record as it is made."""
    for task in tasks:
        _check_name("lag_sweep", "task", task, LAG_TASKS)
    for cell in cells:
        _check_name("lag_sweep", "cell", cell, LAG_CELLS)
    seeds = [seed_base()] if seeds is None else list(seeds)
    records = []
    for task in tasks:
        task_lags = lags[task] if isinstance(lags, dict) else lags
        for T in task_lags:
            for cell in cells:
                for seed in seeds:
                    record, _ = solve_lag_task(cell, task, T, seed=seed,
                                               **options)
                    records.append(record)
                    if log is not None:
                        log(record)
    return records


def solve_lag_task_seeds(
    cell: str,
    task: str,
    T: int,
    seeds: Sequence[int],
    *,
    state_size: int = 16,
    batch_size: int = 64,
    steps: int = 400,
    lr: float = 1e-2,
    solved_fraction: float = 0.1,
    eval_size: int = 1000,
) -> Tuple[List[dict], List[nn.Module]]:
    """:func:`solve_lag_task` once per seed, the K runs trained at once.

    Run k is ``solve_lag_task(cell, task, T, seed=seeds[k], ...)`` with
    the same options: the same initial parameters, batches, early stop
    and held-out sequences, here trained together as one
    :class:`lstmlib.experiments.ensembles.Ensemble` on the CPU. It equals the
    separate run up to floating-point rounding (in float32 the losses
    agree to about 1e-6, so a run that ends within rounding of a
    threshold could stop a step apart).

    Returns ``(records, models)``: K records of the form
    :func:`solve_lag_task` gives (``seconds`` is the ensemble's wall time
    divided by K) and the K trained models, in the order of ``seeds``.
    """
    owner = "solve_lag_task_seeds"
    _check_name(owner, "cell", cell, LAG_CELLS)
    _check_name(owner, "task", task, LAG_TASKS)
    for name, value in (("T", T), ("state_size", state_size),
                        ("batch_size", batch_size), ("steps", steps),
                        ("eval_size", eval_size)):
        check_positive_int(owner, name, value)
    fraction = check_finite_real(owner, "solved_fraction", solved_fraction)
    if not 0 < fraction < 1:
        raise ValueError(f"{owner}: expected 0 < solved_fraction < 1, got "
                         f"{solved_fraction!r}")
    seeds = list(seeds)
    spec = LAG_TASKS[task]
    baseline = spec.baseline(T)
    threshold = fraction * baseline
    started = time.perf_counter()

    def build() -> nn.Module:
        return spec.readout(LAG_CELLS[cell](spec.input_size, state_size),
                            spec.num_outputs)

    losses, models = train_lag_seeds(build, spec, T, seeds,
                                     batch_size=batch_size, steps=steps,
                                     lr=lr, stop_below=threshold)
    seconds = round((time.perf_counter() - started) / len(seeds), 2)
    records = []
    for seed, model, run in zip(seeds, models, losses):
        x, target = spec.batch(eval_size, T, torch.Generator().manual_seed(
            seed + 10 ** 6))                              # held out
        with torch.no_grad():
            final = spec.loss(model(x), target).item()
        records.append(dict(
            cell=cell, task=task, T=T, state_size=state_size,
            batch_size=batch_size, lr=lr, seed=seed, max_steps=steps,
            steps=len(run), train_loss=sum(run[-10:]) / len(run[-10:]),
            final_loss=final, baseline=baseline, threshold=threshold,
            solved=final < threshold, seconds=seconds))
    return records, models

def train_lag_seeds(
    build: Callable[[], nn.Module],
    spec: LagTask,
    T: int,
    seeds: Sequence[int],
    *,
    batch_size: int,
    steps: int,
    lr: float,
    stop_below: float | None = None,
) -> Tuple[List[List[float]], List[nn.Module]]:
    """K runs of one model on one task at lag ``T``, trained at once.

    Member k is ``build()`` right after ``torch.manual_seed(seeds[k])``,
    trained by :func:`~lstmlib.experiments.ensembles.train_ensemble` on
    batches ``spec.batch(batch_size, T, g_k)`` from its own generator
    seeded with ``seeds[k]`` (Adam with learning rate ``lr``, gradient
    norm clipped at 1, at most ``steps`` steps; with ``stop_below``, a
    member stops once the mean of its last 10 losses is below it). This
    is the training of :func:`solve_lag_task_seeds`, for any model
    ``build`` makes (the grid of
    :mod:`lstmlib.experiments.long_range_grid` builds cells that are not
    in :data:`LAG_CELLS`). Torch's global generator is left as it was.

    Returns ``(losses, models)``: each member's training losses, one per
    step it took, and the K trained models, in the order of ``seeds``.
    """
    seeds = list(seeds)
    with torch.random.fork_rng(devices=[]):     # as lag_model: global
        ensemble = Ensemble.from_seeds(build, seeds)    # generator kept
    losses = train_ensemble(ensemble, lambda g: spec.batch(batch_size, T, g),
                            spec.loss, steps=steps, lr=lr, seeds=seeds,
                            stop_below=stop_below)
    return losses, ensemble.members()

