"""lstmlib.display.diagrams: data-flow graphs traced from a cell's code, and their
drawings."""
import math

import matplotlib
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lstmlib import Cell, VanillaRNNCell
from lstmlib.cells.lstm import LSTMVariantCell
from lstmlib.cells.registry import REGISTERED_CELLS
from lstmlib.display.diagrams import (DataFlowGraph, dataflow, draw_dataflow,
                              math_symbol)

matplotlib.use("Agg")


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


# -- small gated cells written the way lstmlib's cells are --------------------
class GatedCell(Cell):
    """Fused parameters W (k·n, n), U (k·n, m), b (k·n,), one block per
    name in ``gate_names``."""

    def __init__(self, input_size, state_size):
        super().__init__(input_size, state_size)
        k, n, m = len(self.gate_names), state_size, input_size
        self.W = nn.Parameter(torch.empty(k * n, n))
        self.U = nn.Parameter(torch.empty(k * n, m))
        self.b = nn.Parameter(torch.empty(k * n))
        for p in self.parameters():
            nn.init.uniform_(p, -1 / math.sqrt(n), 1 / math.sqrt(n))

    def project_input(self, x):
        return F.linear(x, self.U, self.b)  # U x_t + b: (..., k·n)


class TinyGRUCell(GatedCell):
    """r, z = σ(...); s̃ = φ(r ⊙ (W_s̃ s) + U_s̃ x + b_s̃);
    s_t = z ⊙ s_{t-1} + (1 - z) ⊙ s̃."""

    gate_names = ("r", "z", "s_tilde")

    def step(self, x_proj, s):
        n = self.state_size
        w_s = F.linear(s, self.W)                              # (B, 3n)
        r, z = torch.sigmoid(x_proj[..., :2 * n]
                             + w_s[..., :2 * n]).chunk(2, dim=-1)
        s_tilde = torch.tanh(x_proj[..., 2 * n:] + r * w_s[..., 2 * n:])
        s = z * s + (1 - z) * s_tilde
        return s, s


class TinyLSTMCell(GatedCell):
    """The LSTM with state (h, c) and fused blocks i | f | c̃ | o."""

    state_names = ("h", "c")
    gate_names = ("i", "f", "c_tilde", "o")

    def step(self, x_proj, state):
        h, c = state
        z = x_proj + F.linear(h, self.W)                       # (B, 4n)
        i, f, c_tilde, o = z.chunk(4, dim=-1)                  # (B, n) each
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(c_tilde)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class TinyPrototypeCell(Cell):
    """Two recurrent matrices: W_gates (3n, n) on s_{t-1} for i, f, o and
    W (n, n) on o ⊙ s_{t-1} for the candidate; U, b rows i | f | o | s̃."""

    gate_names = ("i", "f", "o", "s_tilde")

    def __init__(self, input_size, state_size):
        super().__init__(input_size, state_size)
        n, m = state_size, input_size
        self.W_gates = nn.Parameter(torch.randn(3 * n, n) / n)
        self.W = nn.Parameter(torch.randn(n, n) / n)
        self.U = nn.Parameter(torch.randn(4 * n, m) / n)
        self.b = nn.Parameter(torch.zeros(4 * n))

    def project_input(self, x):
        return F.linear(x, self.U, self.b)  # U x_t + b: (..., 4n)

    def step(self, x_proj, s):
        n = self.state_size
        gates_x, candidate_x = x_proj.split((3 * n, n), dim=-1)
        gates = torch.sigmoid(F.linear(s, self.W_gates) + gates_x)
        i, f, o = gates.split(n, dim=-1)
        s_tilde = torch.tanh(F.linear(o * s, self.W) + candidate_x)
        s = f * s + i * s_tilde
        return s, s


# -- the vanilla cell ---------------------------------------------------------
def test_vanilla_cell_graph_is_exactly_its_equation():
    graph = dataflow(VanillaRNNCell(3, 4))
    assert graph.labels() == sorted(
        ["x_t", "s_{t-1}", "U x_t + b", "W s_{t-1}", "+", r"\tanh", "s_t"])
    assert graph.labels("input") == ["s_{t-1}", "x_t"]
    assert graph.labels("output") == ["s_t"]
    assert graph.connections() == sorted([
        ("x_t", "U x_t + b", ""), ("s_{t-1}", "W s_{t-1}", ""),
        ("U x_t + b", "+", ""), ("W s_{t-1}", "+", ""),
        ("+", r"\tanh", ""), (r"\tanh", "s_t", "")])


@pytest.mark.parametrize("nonlinearity,label",
                         [("relu", r"\mathrm{ReLU}"), ("sigmoid", r"\sigma")])
def test_vanilla_nonlinearity_is_the_one_the_cell_uses(nonlinearity, label):
    graph = dataflow(VanillaRNNCell(2, 2, nonlinearity=nonlinearity))
    assert graph.labels("nonlinearity") == [label]


# -- gated cells --------------------------------------------------------------
def test_gru_like_cell_has_its_gates_products_and_complement():
    graph = dataflow(TinyGRUCell(3, 2))
    assert graph.labels("nonlinearity") == [r"\sigma", r"\tanh"]
    assert graph.labels("affine") == ["U x_t + b", "W s_{t-1}"]
    assert graph.labels("pointwise").count(r"\odot") == 3
    assert "1 - \\cdot" in graph.labels("pointwise")
    connections = graph.connections()
    # the fused blocks are named where they are cut
    assert ("U x_t + b", "+", "r,z") in connections
    assert ("U x_t + b", "+", r"\tilde{s}") in connections
    assert (r"\sigma", r"\odot", "r") in connections
    assert (r"\sigma", "1 - \\cdot", "z") in connections
    assert ("s_{t-1}", r"\odot", "") in connections       # z ⊙ s_{t-1}
    assert graph.labels("output") == ["s_t"]


def test_lstm_like_cell_with_tuple_state():
    graph = dataflow(TinyLSTMCell(3, 2))
    assert graph.labels("input") == ["c_{t-1}", "h_{t-1}", "x_t"]
    assert graph.labels("output") == ["c_t", "h_t"]     # output h_t is a state
    assert graph.labels("nonlinearity") == sorted([r"\sigma"] * 3
                                                  + [r"\tanh"] * 2)
    for gate in ("i", "f", "o"):
        assert ("+", r"\sigma", gate) in graph.connections()
    assert ("+", r"\tanh", r"\tilde{c}") in graph.connections()
    expressions = graph.expressions()
    # c_t = f ⊙ c_{t-1} + i ⊙ tanh(c̃): c_{t-1} enters through one product
    assert expressions["c_t"].count("c_{t-1}") == 1
    assert expressions["h_t"].startswith(r"h_t(\odot(\sigma([o]")


def test_prototype_like_cell_names_both_recurrent_matrices():
    graph = dataflow(TinyPrototypeCell(3, 2))
    assert graph.labels("affine") == sorted(
        ["U x_t + b", r"W_{\mathrm{gates}} s_{t-1}", r"W \cdot"])
    connections = graph.connections()
    assert ("U x_t + b", "+", "i,f,o") in connections
    assert ("U x_t + b", "+", r"\tilde{s}") in connections
    assert (r"\sigma", r"\odot", "o") in connections       # o ⊙ s_{t-1}
    assert (r"\odot", r"W \cdot", "") in connections       # W (o ⊙ s)


def test_rows_of_a_fused_parameter_are_named_after_their_blocks():
    class SlicedLSTMCell(TinyLSTMCell):
        def step(self, x_proj, state):
            h, c = state
            n = self.state_size
            a_if = F.linear(h, self.W[:2 * n]) + x_proj[..., :2 * n]
            i, f = torch.sigmoid(a_if).chunk(2, dim=-1)
            c = f * c + i * torch.tanh(x_proj[..., 2 * n:3 * n])
            h = torch.sigmoid(x_proj[..., 3 * n:]) * torch.tanh(c)
            return h, (h, c)

    graph = dataflow(SlicedLSTMCell(3, 2))
    assert "W_{i,f} h_{t-1}" in graph.labels("affine")
    assert ("U x_t + b", r"\sigma", "o") in graph.connections()


def test_gate_names_must_match_the_input_projection():
    cell = TinyLSTMCell(3, 2)
    cell.gate_names = ("i", "f", "o")                   # 3 blocks, not 4
    with pytest.raises(ValueError, match="gate_names .* 6 columns, but "
                                         "project_input gives 8"):
        dataflow(cell)


def test_a_cell_without_gate_names_gets_unnamed_blocks():
    cell = TinyLSTMCell(3, 2)
    cell.gate_names = ()
    graph = dataflow(cell)
    assert all(e.label == "" for e in graph.edges)
    assert graph.labels() == dataflow(TinyLSTMCell(3, 2)).labels()


# -- the diagram cannot drift from the code -----------------------------------
def test_graph_changes_when_the_step_changes():
    class SwappedGRUCell(TinyGRUCell):
        def step(self, x_proj, s):                  # z and 1 - z swapped
            n = self.state_size
            w_s = F.linear(s, self.W)
            r, z = torch.sigmoid(x_proj[..., :2 * n]
                                 + w_s[..., :2 * n]).chunk(2, dim=-1)
            s_tilde = torch.tanh(x_proj[..., 2 * n:] + r * w_s[..., 2 * n:])
            s = (1 - z) * s + z * s_tilde
            return s, s

    original, swapped = dataflow(TinyGRUCell(3, 2)), dataflow(
        SwappedGRUCell(3, 2))
    assert original.labels() == swapped.labels()       # same boxes ...
    assert original.expressions() != swapped.expressions()  # ... other flow

    class NoBiasCell(VanillaRNNCell):
        def project_input(self, x):
            return F.linear(x, self.U)

    assert "U x_t" in dataflow(NoBiasCell(2, 3)).labels()


def test_operand_order_does_not_change_the_expression():
    class Reordered(VanillaRNNCell):
        def step(self, ux, s):
            s = self.phi(ux + s @ self.W.T)
            return s, s

    assert dataflow(Reordered(2, 3)).expressions() == \
        dataflow(VanillaRNNCell(2, 3)).expressions()


@pytest.mark.parametrize("product,label", [
    (lambda s, W: F.linear(s, W), "W s_{t-1}"),
    (lambda s, W: s @ W.T, "W s_{t-1}"),
    (lambda s, W: (W @ s.T).T, "W s_{t-1}"),
    (lambda s, W: s @ W, r"W^\top s_{t-1}"),
])
def test_matrix_products_are_written_in_column_convention(product, label):
    class Written(VanillaRNNCell):
        def step(self, ux, s):
            s = self.phi(product(s, self.W) + ux)
            return s, s

    assert label in dataflow(Written(2, 3)).labels("affine")


def test_unused_computation_is_pruned():
    class Wasteful(VanillaRNNCell):
        def step(self, ux, s):
            torch.exp(s)                               # computed, unused
            return super().step(ux, s)

    assert dataflow(Wasteful(2, 3)) == dataflow(VanillaRNNCell(2, 3))


def test_tracing_leaves_the_cell_and_global_rng_alone():
    cell = VanillaRNNCell(2, 3)
    before = {k: v.clone() for k, v in cell.state_dict().items()}
    torch.manual_seed(1)
    expected = torch.rand(1)
    torch.manual_seed(1)
    dataflow(cell)
    assert torch.rand(1) == expected
    assert all(torch.equal(before[k], v) for k, v in cell.state_dict().items())


def lstmlib_cells():
    """Every cell class of the library: the registry's and the LSTM
    variants (tests/test_cell_contract.py checks that lstmlib.cells
    defines no other)."""
    return [cell.cell_class for cell in REGISTERED_CELLS] + [LSTMVariantCell]


@pytest.mark.parametrize("cls", lstmlib_cells(), ids=lambda c: c.__name__)
def test_every_lstmlib_cell_traces_to_a_connected_graph(cls):
    graph = dataflow(cls(3, 4))
    targets = {e.target for e in graph.edges}
    sources = {e.source for e in graph.edges}
    for node in graph.nodes:
        if node.kind != "input":            # everything drawn is computed
            assert node.index in targets, node
        if node.kind != "output":           # ... and used, inputs aside
            assert node.index in sources or node.kind == "input", node
    assert graph.labels("output")


def test_math_symbol():
    assert math_symbol("c_tilde") == r"\tilde{c}"
    assert math_symbol("W_gates") == r"W_{\mathrm{gates}}"
    assert math_symbol("b_W") == "b_{W}"
    assert math_symbol("h") == "h"


def test_dataflow_rejects_a_non_cell():
    with pytest.raises(TypeError, match="expected an lstmlib Cell"):
        dataflow(nn.RNNCell(2, 3))


# -- drawing ------------------------------------------------------------------
@pytest.mark.parametrize("cell", [VanillaRNNCell(2, 3), TinyGRUCell(2, 3),
                                  TinyLSTMCell(2, 3)],
                         ids=lambda c: type(c).__name__)
def test_drawing_is_a_figure_at_most_page_wide(cell):
    import matplotlib.pyplot as plt

    fig = draw_dataflow(cell)
    assert isinstance(fig, matplotlib.figure.Figure)
    width, height = fig.get_size_inches()
    assert width <= 9.0 + 1e-9 and height > 0
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert {f"${label}$" for label in dataflow(cell).labels()} <= labels
    plt.close(fig)


def test_drawing_into_given_axes_and_from_a_graph():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    graph = dataflow(VanillaRNNCell(2, 3))
    assert isinstance(graph, DataFlowGraph)
    assert draw_dataflow(graph, ax=ax) is fig
    plt.close(fig)


@pytest.mark.parametrize("cell_class", lstmlib_cells(),
                         ids=lambda c: c.__name__)
def test_every_library_cell_traces_with_its_declared_gate_names(cell_class):
    """A wrong or missing gate_names declaration fails here."""
    cell = cell_class(3, 4)
    graph = dataflow(cell)
    assert graph.expressions()
    if cell.gate_names:
        blocks = len(cell.gate_names) * cell.state_size
        assert cell.project_input(torch.zeros(1, 3)).shape[-1] == blocks
