"""Tests for lstmlib.display.summary: the table of the book's cells, a row
or two for every cell of the derivation in lstmlib.cells.registry."""
from pathlib import Path

import pytest
import torch
import yaml

from lstmlib import Recurrent
from lstmlib.cells.lstm import LSTM_VARIANTS, BasicLSTMCell, PseudoLSTMCell
from lstmlib.cells.registry import REGISTERED_CELLS, registered_cell
from lstmlib.analysis.sensitivity import step_jacobians
from lstmlib.display.summary import (BOUND_LIMITS, BOUND_MEASURES, CELLS,
                             CellSummary, Equation, StateBound,
                             docstring_equations, end_to_end_jacobian,
                             grid_successes, state_trajectory)

pytestmark = pytest.mark.usefixtures("float64_and_seeded")

ROOT = Path(__file__).resolve().parent.parent

NAMES = [entry.name for entry in CELLS]


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_names_are_unique_and_all_ten_cells_are_listed():
    assert len(NAMES) == len(set(NAMES)) == 10
    assert NAMES[0] == "vanilla RNN" and NAMES[-1].startswith("LSTM, diag")


def derivation_chapters() -> set:
    """The chapters of Parts I and II in _toc.yml: the summary tabulates
    every registered cell that one of them introduces."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return {Path(chapter["file"]).name for part in toc["parts"]
            if part["caption"].startswith(("Part I:", "Part II:"))
            for chapter in part["chapters"]}


def test_every_cell_of_the_derivation_has_a_row_in_the_registrys_order():
    rows = [entry.registered for entry in CELLS]
    chapters = derivation_chapters()
    assert len(chapters) >= 13                  # Parts I and II grow
    assert list(dict.fromkeys(rows)) == [
        c.name for c in REGISTERED_CELLS if c.chapter in chapters]
    for entry in CELLS:
        cell = registered_cell(entry.registered)
        assert entry.cell_class is cell.cell_class, entry.name
        assert entry.chapter == cell.chapter, entry.name


@pytest.mark.parametrize("entry", CELLS, ids=NAMES)
@pytest.mark.parametrize("m, n", [(1, 1), (3, 7), (10, 4), (250, 250)])
def test_closed_form_counts_the_parameters(entry, m, n):
    assert count(entry.build(m, n)) == entry.parameters(m, n)


def test_closed_forms_in_terms_of_blocks():
    def block(m, n):
        return n * (n + m + 1)

    by_name = {e.name: e.parameters(5, 9) for e in CELLS}
    assert by_name["vanilla RNN"] == by_name["additive cell"] == block(5, 9)
    assert by_name["GRU, reset before $W$"] == 3 * block(5, 9)
    assert by_name["GRU, reset after $W$"] == 3 * block(5, 9) + 9
    assert by_name["basic LSTM"] == 4 * block(5, 9)
    assert by_name["LSTM, full peepholes"] == 4 * block(5, 9) + 3 * 81
    assert by_name["LSTM, diagonal peepholes"] == 4 * block(5, 9) + 27


@pytest.mark.parametrize("entry", CELLS, ids=NAMES)
def test_shown_equations_come_from_the_docstring(entry):
    equations = entry.equations()
    assert len(equations) == len(entry.shown) >= 1
    doc = " ".join(entry.cell_class.__doc__.replace("&", " ").split())
    for latex, lhs in zip(equations, entry.shown):
        assert latex.startswith(lhs)
        assert latex.split("=", 1)[1].split()[0] in doc


def test_gru_entries_show_their_own_reset_placement():
    before, after = (e for e in CELLS if e.name.startswith("GRU"))
    assert r"W (r_t \odot s_{t-1})" in before.equations()[0]
    assert r"r_t \odot (W s_{t-1} + b_W)" in after.equations()[0]


def test_docstring_equations_parses_rows_notes_and_qquad():
    class Example:
        r"""An example.

        .. math::

            \begin{aligned}
            a_t &= x + y, \qquad b_t = 2 \\
            c_t &= a_t
                   + b_t && \text{first way} \\
            \text{output } c_t
            \end{aligned}

        Not part of the block.
        """
    assert docstring_equations(Example) == [
        Equation("a_t", "a_t = x + y"), Equation("b_t", "b_t = 2"),
        Equation("c_t", "c_t = a_t + b_t", r"\text{first way}"),
        Equation(None, r"\text{output } c_t")]


def test_docstring_equations_without_a_block_raises():
    class Plain:
        """No equations here."""
    with pytest.raises(ValueError, match="Plain"):
        docstring_equations(Plain)


def test_an_entry_whose_equations_are_missing_raises():
    entry = CellSummary("broken", "none", BasicLSTMCell, ("q_t",),
                        lambda m, n: 0, ())
    with pytest.raises(ValueError, match="q_t"):
        entry.equations()


@pytest.mark.parametrize("entry", CELLS, ids=NAMES)
def test_bounds_hold_on_long_runs_with_large_inputs(entry):
    T, B, m, n = 200, 4, 3, 6
    cell = entry.build(m, n)
    noise = 10 * torch.randn(T, B, m)
    persistent = (10 * torch.randn(1, B, m)).expand(T, B, m)
    with torch.no_grad():
        for x in (noise, persistent):
            run = state_trajectory(cell, x)
            for bound in entry.bounds:
                assert bound.holds(run), (entry.name, bound)


@pytest.mark.parametrize("entry", [e for e in CELLS
                                   if e.name != "normalized prototype"
                                   and any(b.limit == "t" for b in e.bounds)],
                         ids=lambda e: e.name)
def test_bounds_by_t_are_not_bounds_by_a_constant(entry):
    """A persistent input drives the part bounded by t far past 1."""
    T = 200
    cell = entry.build(3, 6)
    x = (10 * torch.randn(1, 4, 3)).expand(T, 4, 3)
    with torch.no_grad():
        run = state_trajectory(cell, x)
    for bound in entry.bounds:
        if bound.limit == "t":
            assert bound.measured(run)[-1] > 0.3 * T


def test_a_bound_that_is_false_is_reported():
    bound = StateBound("s", "s_t", "abs", "1", "claimed")
    run = {"s": torch.tensor([[[0.5]], [[1.5]]])}             # (T, B, n)
    assert not bound.holds(run)
    assert bound.measured(run).tolist() == [0.5, 1.5]
    assert StateBound("s", "s_t", "abs", "t", "").holds(run)


def test_state_bound_validates_and_renders():
    with pytest.raises(ValueError, match="measure"):
        StateBound("s", "s_t", "mean", "1", "")
    with pytest.raises(ValueError, match="limit"):
        StateBound("s", "s_t", "abs", "2", "")
    assert set(BOUND_MEASURES) == {"abs", "var"}
    assert set(BOUND_LIMITS) == {"1", "t"}
    assert StateBound("c", "c_t", "abs", "t", "").latex() == \
        r"\lVert c_t \rVert_\infty < t"
    assert StateBound("s", "s_t", "var", "1", "").latex() == \
        r"\operatorname{var}(s_t) < 1"


@pytest.mark.parametrize("entry", CELLS, ids=NAMES)
def test_state_trajectory_agrees_with_recurrent(entry):
    cell = entry.build(3, 5)
    x = torch.randn(12, 2, 3)
    with torch.no_grad():
        run = state_trajectory(cell, x)
        outputs, final = Recurrent(cell)(x)
    assert torch.allclose(run["output"], outputs, rtol=0, atol=1e-14)
    parts = (final,) if len(cell.state_names) == 1 else final
    for name, part in zip(cell.state_names, parts):
        assert run[name].shape == (12, 2, 5)
        assert torch.allclose(run[name][-1], part, rtol=0, atol=1e-14)


@pytest.mark.parametrize("entry", CELLS, ids=NAMES)
def test_end_to_end_jacobian_is_the_product_of_step_jacobians(entry):
    cell = entry.build(3, 5)
    x = torch.randn(15, 3)
    with torch.no_grad():
        steps, _ = step_jacobians(cell, x)
    product = torch.eye(steps.shape[1])
    for J in steps:
        product = J @ product
    assert torch.allclose(end_to_end_jacobian(cell, x), product,
                          rtol=1e-10, atol=1e-13)


def test_end_to_end_jacobian_rejects_a_batch():
    cell = CELLS[0].build(3, 5)
    with pytest.raises(ValueError, match="T, 3"):
        end_to_end_jacobian(cell, torch.randn(10, 2, 3))


def test_grid_successes():
    def record(phase, label, task, T, k):
        return {"point": {"phase": phase, "task": task, "T": T},
                "cell_label": label, "summary": {"successes": k, "trials": 5}}
    records = [record("test", "a", "x", 100, 4), record("select", "a", "x",
                                                        50, 1),
               record("test", "a", "y", 100, 0)]
    assert grid_successes(records, "a", "x", 100) == (4, 5)
    assert grid_successes(records, "a", "y", 100) == (0, 5)
    assert grid_successes(records, "a", "x", 50) is None     # selection
    assert grid_successes(records, "b", "x", 100) is None
    with pytest.raises(ValueError, match="at most one"):
        grid_successes(records * 2, "a", "x", 100)


def test_lag_names_are_the_grid_labels_of_the_books_cells():
    """The summary finds a cell's grid results by its lag name: each is
    the label of one grid variant, built by the same LAG_CELLS entry."""
    grid = pytest.importorskip("lstmlib.experiments.long_range_grid")
    labels = {c.label for c in grid.GRID_CELLS.values()}
    assert {e.lag_name for e in CELLS if e.lag_name} <= labels


def test_lag_names_build_the_same_cells_as_the_long_range_sweeps():
    long_range = pytest.importorskip("lstmlib.experiments.long_range")
    lag_names = [e.lag_name for e in CELLS if e.lag_name is not None]
    assert lag_names == list(long_range.LAG_CELLS)     # each swept cell
    for entry in CELLS:
        if entry.lag_name is not None:
            made = long_range.LAG_CELLS[entry.lag_name](2, 3)
            assert type(made) is entry.cell_class, entry.name
            assert count(made) == entry.parameters(2, 3)


def test_post_variants_are_the_pseudo_and_the_basic_lstm():
    variant = {e.post_variant: e.cell_class for e in CELLS
               if e.post_variant is not None}
    assert variant == {1: PseudoLSTMCell, 8: BasicLSTMCell}
    assert not any(LSTM_VARIANTS[1].values())
    assert all(LSTM_VARIANTS[8].values())
