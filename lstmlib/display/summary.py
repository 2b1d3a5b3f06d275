r"""Every cell of the book, side by side (the closing chapter, "Summary").

:data:`CELLS` has a row for every cell of the registry
(:mod:`lstmlib.cells.registry`), in its order, the order the book derives
them; the GRU and the peephole LSTM have two rows, one per setting. The
registry gives a row its chapter and how to build the cell; the row adds
which of the equations in the cell's own docstring show its step, its
parameter count in closed form, and the bounds its state obeys. The
summary chapter generates its table from these rows, and
``tests/test_summary.py`` checks every row: the cell builds, the closed
form counts its parameters, and the bounds hold on long runs with large
inputs; it also checks that every registered cell has a row.

The equations are not typed twice: :func:`docstring_equations` reads the
``.. math::`` block of a cell's docstring, so the table shows what
``help(cell)`` shows.

A bound is a claim about every step t = 1, 2, ... of a run from the zero
state, for any weights and inputs. Two kinds occur:

* limit ``"1"``: the quantity stays below 1 (a squashing function, a
  weighted average of values in (-1, 1), a variance divided down);
* limit ``"t"``: the largest unit grows by less than 1 per step, so it
  stays below t. This is the bound of every cell that *adds* a write in
  (-1, 1) to a state that is kept, not squashed; it is no bound by a
  constant, and a persistent input reaches it.

In exact arithmetic both are strict; in floating point tanh and σ round to
exactly ±1, 0 or 1 at large arguments, so :meth:`StateBound.holds` checks
``≤`` (the chapter "Three working models" shows a GRU state of exactly
1.0).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from ..cells.recurrent import Cell, state_parts, unroll
from ..cells.registry import registered_cell

__all__ = ["BOUND_LIMITS", "BOUND_MEASURES", "CELLS", "CellSummary",
           "Equation", "StateBound", "docstring_equations",
           "end_to_end_jacobian", "grid_successes", "state_trajectory"]

#: How a bound measures a part at step t: the largest |unit| over units
#: and sequences, or the largest variance over the units of a sequence
#: (divisor n, as in NormalizedPrototypeLSTMCell).
BOUND_MEASURES = ("abs", "var")

#: What a bound's measure stays below at step t.
BOUND_LIMITS = ("1", "t")


@dataclass(frozen=True)
class Equation:
    """One equation of a docstring's ``.. math::`` block."""
    lhs: str | None    # the left-hand side, "s_t"; None without "="
    latex: str            # the equation, alignment marks removed
    note: str = ""        # the text after "&&", e.g. which GRU placement


def docstring_equations(cls: type) -> list[Equation]:
    r"""The equations of the first ``.. math::`` block of ``cls``'s
    docstring, split at line breaks ``\\`` and at ``\qquad``.

    ``&`` alignment marks and the ``aligned`` environment are removed and
    white space is collapsed; the text after ``&&`` on a line becomes the
    equation's ``note``. ``ValueError`` if the docstring has no block.
    """
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    try:
        start = next(k for k, line in enumerate(lines)
                     if line.strip() == ".. math::")
    except StopIteration:
        raise ValueError(f"docstring_equations: expected a '.. math::' "
                         f"block in the docstring of {cls.__name__}, "
                         f"found none") from None
    block = []
    for line in lines[start + 1:]:
        if line.strip() and not line.startswith(" "):
            break                                   # the block has ended
        block.append(line)
    text = " ".join(block)
    for marker in (r"\begin{aligned}", r"\end{aligned}"):
        text = text.replace(marker, " ")
    equations = []
    for row in text.split(r"\\"):
        row, _, note = row.partition("&&")
        for part in row.split(r"\qquad"):
            latex = " ".join(part.replace("&", " ").split()).rstrip(",")
            latex = latex.strip()
            if latex:
                lhs, equals, _ = latex.partition("=")
                equations.append(Equation(lhs.strip() if equals else None,
                                          latex, " ".join(note.split())))
    return equations


@dataclass(frozen=True)
class StateBound:
    """The claim ``measure(part at step t) < limit`` for every step t ≥ 1
    of a run from the zero state, for any weights and inputs.

    Attributes:
        part: a name in the cell's ``state_names`` (``"s"``, ``"h"``,
            ``"c"``) or ``"output"``, what a step returns first.
        symbol: the part at step t in LaTeX, e.g. ``r"\\phi(s_t)"``.
        measure: ``"abs"`` or ``"var"`` (see :data:`BOUND_MEASURES`).
        limit: ``"1"`` or ``"t"`` (see :data:`BOUND_LIMITS`).
        reason: why it holds, in a few words.
    """
    part: str
    symbol: str
    measure: str
    limit: str
    reason: str

    def __post_init__(self):
        for name, value, allowed in (("measure", self.measure,
                                      BOUND_MEASURES),
                                     ("limit", self.limit, BOUND_LIMITS)):
            if value not in allowed:
                raise ValueError(f"StateBound: expected {name} to be one "
                                 f"of {list(allowed)}, got {value!r}")

    def latex(self) -> str:
        """The claim as inline LaTeX, e.g. ``\\lVert c_t \\rVert_\\infty
        < t``."""
        if self.measure == "var":
            lhs = rf"\operatorname{{var}}({self.symbol})"
        else:
            lhs = rf"\lVert {self.symbol} \rVert_\infty"
        return f"{lhs} < {self.limit}"

    def measured(self, trajectory: dict[str, Tensor]) -> Tensor:
        """The measure at every step, ``(T,)``, from a
        :func:`state_trajectory` (largest over sequences and units)."""
        values = trajectory[self.part]                    # (T, B, n)
        if self.measure == "var":
            return values.var(dim=-1, correction=0).amax(dim=-1)
        return values.abs().amax(dim=(-2, -1))

    def limits(self, steps: int) -> Tensor:
        """The limit at steps 1, ..., ``steps``, ``(steps,)``, float64."""
        if self.limit == "1":
            return torch.ones(steps, dtype=torch.float64)
        return torch.arange(1, steps + 1, dtype=torch.float64)

    def holds(self, trajectory: dict[str, Tensor]) -> bool:
        """Whether the claim held at every step of ``trajectory``, as
        ``≤`` (floating point reaches the ends of tanh's and σ's
        ranges)."""
        measured = self.measured(trajectory).double().cpu()
        return bool((measured <= self.limits(len(measured))).all())


def state_trajectory(cell: Cell, x: Tensor) -> dict[str, Tensor]:
    """Run ``cell`` from the zero state over ``x`` (time-major,
    ``(T, B, m)``) and keep everything: ``{"output": (T, B, n), name:
    (T, B, n) for name in cell.state_names}``, entry t - 1 for step t."""
    cell.check_input(x, expected_dims=3, layout="(T, B, input_size)")
    outputs, _, states = unroll(cell, x, keep_states=True)
    return {"output": outputs,
            **dict(zip(cell.state_names, state_parts(states)))}


@dataclass(frozen=True)
class CellSummary:
    """One cell of the book, as the summary chapter lists it.

    Attributes:
        name: the book's name for it.
        chapter: the chapter (document name) that derives it.
        build: ``build(m, n)`` returns a new cell with input size m and
            state size n.
        shown: the left-hand sides of the docstring's equations that show
            the cell's step (see :func:`docstring_equations`).
        parameters: ``parameters(m, n)``, the parameter count in closed
            form (it also accepts sympy symbols).
        bounds: what bounds the state, see :class:`StateBound`.
        note: shown equations that carry a note must carry this one (the
            GRU's docstring states both reset placements).
        lag_name: the cell's name in ``lstmlib.experiments.long_range.LAG_CELLS``
            where Part III's long-range sweeps ran it, else ``None``.
        post_variant: the source post's architecture number (1 the pseudo
            LSTM, 8 the basic LSTM), else ``None``.
        registered: the name of the cell's entry in
            :data:`lstmlib.cells.registry.REGISTERED_CELLS`, else ``None``
            (a cell described outside the registry).
    """
    name: str
    chapter: str
    build: Callable[[int, int], Cell]
    shown: tuple[str, ...]
    parameters: Callable[[int, int], int]
    bounds: tuple[StateBound, ...]
    note: str = ""
    lag_name: str | None = None
    post_variant: int | None = None
    registered: str | None = None

    @property
    def cell_class(self) -> type:
        return type(self.build(1, 1))

    def equations(self) -> list[str]:
        """The LaTeX of the shown equations, in the docstring's order."""
        chosen = [eq.latex for eq in docstring_equations(self.cell_class)
                  if eq.lhs in self.shown
                  and (not eq.note or self.note in eq.note)]
        if len(chosen) != len(self.shown):
            raise ValueError(f"CellSummary {self.name!r}: expected one "
                             f"equation for each of {list(self.shown)} in "
                             f"the docstring of {self.cell_class.__name__}"
                             f", found {len(chosen)}")
        return chosen


def grid_successes(records: Sequence[dict], cell: str, task: str, T: int
                   ) -> tuple[int, int] | None:
    """``(successes, trials)`` of the test point of the long-range grid
    for the cell labelled ``cell`` (``GridCell.label``, which for the
    book's seven cells is their name in ``LAG_CELLS``) on ``task`` at lag
    ``T``, from the grid's records (:func:`lstmlib.experiments.
    long_range_grid.load_grid`); ``None`` if that point has no record."""
    found = [r["summary"] for r in records
             if r["point"]["phase"] == "test" and r["cell_label"] == cell
             and r["point"]["task"] == task and r["point"]["T"] == T]
    if len(found) > 1:
        raise ValueError(f"grid_successes: expected at most one test point "
                         f"for {cell!r} on {task} at T = {T}, got "
                         f"{len(found)}")
    return (found[0]["successes"], found[0]["trials"]) if found else None


def end_to_end_jacobian(cell: Cell, x: Tensor) -> Tensor:
    """``∂s_T/∂s_0`` for one sequence ``x`` ``(T, m)`` from the zero
    state, an ``(N, N)`` matrix with N the length of the state vector
    (the parts of a tuple state concatenated, as in
    :func:`lstmlib.analysis.sensitivity.state_vector`).

    It is the product of :func:`lstmlib.analysis.sensitivity.step_jacobians`, found
    with one forward and one backward pass: the sequence runs as a batch
    of N identical copies, and since the rows of a batch do not interact,
    the gradient of ``Σ_i s_T[i, i]`` with respect to the initial states
    has in row i the gradient of unit i of s_T, row i of the Jacobian.
    """
    cell.check_input(x, expected_dims=2, layout="(T, input_size)")
    n, k = cell.state_size, len(cell.state_names)
    with torch.enable_grad():
        s_0 = torch.zeros(n * k, n * k, dtype=x.dtype, device=x.device,
                          requires_grad=True)            # N copies of s_0
        parts = s_0.split(n, dim=-1)
        state = parts[0] if k == 1 else parts
        _, state = unroll(cell, x, state)                 # x_t to every copy
        s_T = state if k == 1 else torch.cat(state, dim=-1)   # (N, N)
        (jacobian,) = torch.autograd.grad(s_T.diagonal().sum(), s_0)
    return jacobian


def _block(m, n):
    """One n-wide block: an n×n recurrent matrix, an n×m input matrix and
    a bias."""
    return n * (n + m + 1)


def _row(registered: str, shown: tuple[str, ...],
         parameters: Callable[[int, int], int],
         bounds: tuple[StateBound, ...], *, label: str | None = None,
         keywords: dict | None = None, note: str = "",
         lag_name: str | None = None, post_variant: int | None = None
         ) -> CellSummary:
    """The row of the registered cell named ``registered``, called
    ``label`` (default: its registered name), built with ``keywords`` on
    top of its defaults; its chapter and class come from the registry."""
    cell = registered_cell(registered)
    build = partial(cell.build, **keywords) if keywords else cell.build
    return CellSummary(label or cell.name, cell.chapter, build, shown,
                       parameters, bounds, note, lag_name, post_variant,
                       registered)


_SQUASHED = "tanh"
_ADDS = "adds less than 1 a step"
_CELL_H = StateBound("h", "h_t", "abs", "1", r"$o_t \odot \phi(c_t)$")
_CELL_C = StateBound("c", "c_t", "abs", "t", _ADDS)

#: A row for every cell of the registry, in its order, the order the book
#: derives them.
CELLS: tuple[CellSummary, ...] = (
    _row("vanilla RNN", ("s_t",), _block,
         (StateBound("s", "s_t", "abs", "1", _SQUASHED),),
         lag_name="vanilla RNN"),
    _row("additive cell", (r"\Delta s_t", "s_t"), _block,
         (StateBound("s", "s_t", "abs", "t", _ADDS),)),
    _row("prototype LSTM", (r"\tilde s_t", "s_t"),
         lambda m, n: 4 * _block(m, n),
         (StateBound("s", "s_t", "abs", "t", _ADDS),),
         lag_name="prototype"),
    _row("normalized prototype", ("s_t",), lambda m, n: 4 * _block(m, n),
         (StateBound("s", "s_t", "var", "1", "divided by its spread"),
          StateBound("s", "s_t", "abs", "t", _ADDS)),
         lag_name="normalized prototype"),
    _row("GRU", (r"\tilde s_t", "s_t"), lambda m, n: 3 * _block(m, n),
         (StateBound("s", "s_t", "abs", "1", "weighted average"),),
         label="GRU, reset before $W$", keywords={"reset": "before"},
         note='reset="before"', lag_name="GRU"),
    _row("GRU", (r"\tilde s_t", "s_t"), lambda m, n: 3 * _block(m, n) + n,
         (StateBound("s", "s_t", "abs", "1", "weighted average"),),
         label="GRU, reset after $W$", keywords={"reset": "after"},
         note='reset="after"'),
    _row("pseudo LSTM", (r"\tilde s_t", "s_t", r"\text{output}_t"),
         lambda m, n: 4 * _block(m, n),
         (StateBound("output", r"\phi(s_t)", "abs", "1",
                     "read through tanh"),
          StateBound("s", "s_t", "abs", "t", _ADDS)),
         lag_name="pseudo LSTM", post_variant=1),
    _row("basic LSTM", ("c_t", "h_t"), lambda m, n: 4 * _block(m, n),
         (_CELL_H, _CELL_C), lag_name="basic LSTM", post_variant=8),
    _row("peephole LSTM", ("(i_t, f_t)", "o_t"),
         lambda m, n: 4 * _block(m, n) + 3 * n * n, (_CELL_H, _CELL_C),
         label="LSTM, full peepholes", keywords={"peephole": "full"},
         lag_name="peephole LSTM"),
    _row("peephole LSTM", ("(i_t, f_t)", "o_t"),
         lambda m, n: 4 * _block(m, n) + 3 * n, (_CELL_H, _CELL_C),
         label="LSTM, diagonal peepholes",
         keywords={"peephole": "diagonal"}),
)
