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


# -- the family layout: one picture a reader learns once ----------------------
# The checks below use the layout's own coordinates (ems, y up, the memory
# line at y = 0) and their own geometry, not the layout's helpers.
from itertools import pairwise  # noqa: E402

from lstmlib.cells.gru import GRUCell  # noqa: E402
from lstmlib.cells.lstm import (BasicLSTMCell, PeepholeLSTMCell,  # noqa: E402
                                PseudoLSTMCell)
from lstmlib.cells.prototype import (NormalizedPrototypeLSTMCell,  # noqa: E402
                                     PrototypeLSTMCell)
from lstmlib.display.diagrams import (cell_layout, draw_unrolled_memory,  # noqa: E402,E501
                                      rendered_points, unrolled_layout)


def registered_layouts():
    return [pytest.param(cell.build, id=cell.name.replace(" ", "_"))
            for cell in REGISTERED_CELLS]


def _layout(build):
    return cell_layout(dataflow(build(3, 4)))


def _orient(a, b, c):
    v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return 0 if abs(v) < 1e-9 else (1 if v > 0 else -1)


def _between(a, b, c):
    return (min(a[0], b[0]) - 1e-9 <= c[0] <= max(a[0], b[0]) + 1e-9 and
            min(a[1], b[1]) - 1e-9 <= c[1] <= max(a[1], b[1]) + 1e-9)


def _segments_meet(p1, p2, q1, q2):
    """Whether two segments share a point (crossing, touching, overlapping)."""
    o1, o2 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    o3, o4 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    if o1 != o2 and o3 != o4:
        return True
    return ((o1 == 0 and _between(p1, p2, q1)) or
            (o2 == 0 and _between(p1, p2, q2)) or
            (o3 == 0 and _between(q1, q2, p1)) or
            (o4 == 0 and _between(q1, q2, p2)))


def test_the_segment_check_itself():
    assert _segments_meet((0, 0), (2, 0), (1, -1), (1, 1))      # a cross
    assert _segments_meet((0, 0), (2, 0), (1, 0), (3, 0))       # overlap
    assert _segments_meet((0, 0), (2, 0), (2, 0), (2, 5))       # touch
    assert not _segments_meet((0, 0), (2, 0), (3, -1), (3, 1))
    assert not _segments_meet((0, 0), (2, 0), (0, 1), (2, 1))  # parallel


def _inner(points, eps=1e-3):
    """The polyline without its two ends (where wires meeting at one box
    may touch)."""
    def towards(a, b):
        dx, dy = b[0] - a[0], b[1] - a[1]
        n = (dx * dx + dy * dy) ** 0.5
        return (a[0] + eps * dx / n, a[1] + eps * dy / n)
    points = list(points)
    return [towards(points[0], points[1])] + points[1:-1] + \
        [towards(points[-1], points[-2])]


def crossing_wires(layout):
    """Pairs of wires that share a point, other than wires from one source
    (a fan-out may share its first stretch) and the ends of wires that meet
    at one box."""
    found = []
    wires = layout.wires
    for i, a in enumerate(wires):
        for b in wires[i + 1:]:
            if a.source == b.source:
                continue
            pa, pb = a.points, b.points
            if {a.source, a.target} & {b.source, b.target}:
                pa, pb = _inner(pa), _inner(pb)
            if any(_segments_meet(p, q, r, s) for p, q in pairwise(pa)
                   for r, s in pairwise(pb)):
                found.append((a, b))
    return found


def _inside(point, extent, margin=0.02):
    left, bottom, right, top = extent
    return (left + margin < point[0] < right - margin and
            bottom + margin < point[1] < top - margin)


def wires_through_boxes(layout):
    """(wire, box) where the wire passes through a box it does not
    connect (sampled finely along every segment)."""
    found = []
    for wire in layout.wires:
        for key, box in layout.boxes.items():
            if key in (wire.source, wire.target) or box.kind == "bus":
                continue
            for (x0, y0), (x1, y1) in pairwise(wire.points):
                if any(_inside((x0 + (x1 - x0) * k / 50,
                                y0 + (y1 - y0) * k / 50), box.extent)
                       for k in range(51)):
                    found.append((wire, box))
                    break
    return found


@pytest.mark.parametrize("build", registered_layouts())
def test_memory_line_is_one_straight_line_from_left_to_right(build):
    layout = _layout(build)
    line = [layout.boxes[k] for k in layout.memory]
    assert len(line) >= 3
    assert all(box.y == 0.0 for box in line)              # one height
    xs = [box.x for box in line]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)   # left to right
    assert line[0].label.endswith("_{t-1}") and line[-1].label.endswith("_t")
    assert line[0].label[:-6] == line[-1].label[:-2]      # one state
    # its wires are horizontal segments joining neighbours on the line
    for a, b in pairwise(layout.memory):
        wires = [w for w in layout.wires if (w.source, w.target) == (a, b)]
        assert len(wires) == 1 and wires[0].memory
        assert {y for _, y in wires[0].points} == {0.0}
    # and nothing else is on the line's height between its ends
    others = [b for k, b in layout.boxes.items() if k not in layout.memory
              and b.role != "output" and xs[0] < b.x < xs[-1]]
    assert all(abs(b.y) > 1.0 for b in others)


@pytest.mark.parametrize("build,line", [
    (PrototypeLSTMCell, ["s_{t-1}", r"\odot", "+", "s_t"]),
    (NormalizedPrototypeLSTMCell, ["s_{t-1}", r"\odot", "+", "/", "s_t"]),
    (GRUCell, ["s_{t-1}", r"\odot", "+", "s_t"]),
    (PseudoLSTMCell, ["s_{t-1}", r"\odot", "+", "s_t"]),
    (BasicLSTMCell, ["c_{t-1}", r"\odot", "+", "c_t"]),
    (PeepholeLSTMCell, ["c_{t-1}", r"\odot", "+", "c_t"]),
    (VanillaRNNCell, ["s_{t-1}", "W s_{t-1}", "+", r"\tanh", "s_t"]),
])
def test_the_memory_line_is_the_path_the_code_computes(build, line):
    """The gated cells' line crosses elementwise operations only (the
    constant-error path); the vanilla cell's goes through W and tanh."""
    layout = _layout(build)
    assert [layout.boxes[k].label for k in layout.memory] == line


GATE_ORDERS = [
    # gate names, left to right: forget (or update), write, then the read
    # gate where its product feeds the candidate, the candidate, and the
    # read gate where it gates the output
    (PrototypeLSTMCell, ["f", "i", "o", r"\tilde{s}"]),
    (NormalizedPrototypeLSTMCell, ["f", "i", "o", r"\tilde{s}"]),
    (PseudoLSTMCell, ["f", "i", "o", r"\tilde{s}"]),
    (GRUCell, ["z", "r", r"\tilde{s}"]),
    (BasicLSTMCell, ["f", "i", r"\tilde{c}", "o"]),
    (PeepholeLSTMCell, ["f", "i", r"\tilde{c}", "o"]),
]


@pytest.mark.parametrize("build,order", GATE_ORDERS,
                         ids=lambda v: getattr(v, "__name__", ""))
def test_gates_sit_in_one_row_below_the_line_in_a_fixed_order(build, order):
    layout = _layout(build)
    assert sorted(layout.gates) == sorted(order)
    gates = [layout.boxes[layout.gates[g]] for g in order]
    assert len({g.y for g in gates}) == 1 and gates[0].y < 0   # one row
    xs = [g.x for g in gates]
    assert xs == sorted(xs)
    # the gate that scales the old memory feeds straight up into the ⊙ on
    # the line, which is the line's first operation
    keep = layout.gates[order[0]]
    up = [w for w in layout.wires if w.source == keep and
          w.target == layout.memory[1]]
    assert len(up) == 1 and len({x for x, _ in up[0].points}) == 1
    assert up[0].points[-1][1] < 0 < 1 + up[0].points[-1][1]   # from below


@pytest.mark.parametrize("build", registered_layouts())
def test_no_two_wires_cross(build):
    assert crossing_wires(_layout(build)) == []


@pytest.mark.parametrize("build", registered_layouts())
def test_no_wire_passes_through_a_box_and_no_label_covers_one(build):
    layout = _layout(build)
    assert wires_through_boxes(layout) == []
    extents = [b.extent for b in layout.boxes.values() if b.kind != "bus"]
    extents += [lab.extent for lab in layout.labels]
    for i, a in enumerate(extents):
        for b in extents[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3]
                        and b[1] < a[3]), (a, b)


@pytest.mark.parametrize("cell", [
    LSTMVariantCell(3, 4), GRUCell(3, 4, reset="after"),
    TinyGRUCell(3, 2), TinyLSTMCell(3, 2), TinyPrototypeCell(3, 2)],
    ids=lambda c: type(c).__name__)
def test_other_cells_are_laid_out_without_wires_through_boxes(cell):
    layout = cell_layout(dataflow(cell))
    assert wires_through_boxes(layout) == []
    assert {layout.boxes[k].y for k in layout.memory} == {0.0}


@pytest.mark.parametrize("build", registered_layouts())
def test_inputs_enter_from_the_bottom_left(build):
    layout = _layout(build)
    inputs = [b for b in layout.boxes.values() if b.role == "input"]
    others = [b for b in layout.boxes.values()       # below the line
              if b.role not in ("input", "bus", "output", "memory")]
    assert inputs and "x_t" in {b.label for b in inputs}
    lowest_else = min(b.y for b in others)
    leftmost_else = min(b.x for b in others)
    for box in inputs:
        assert box.y <= lowest_else + 1e-9       # at the bottom
        assert box.x <= leftmost_else + 1e-9     # on the left


def test_the_read_gate_stands_where_the_code_reads():
    """The prototype's o reads what the candidate sees: left of the
    candidate; the basic LSTM's o gates the output: right of it."""
    proto, basic = _layout(PrototypeLSTMCell), _layout(BasicLSTMCell)
    x = {name: lay.boxes[k].x for lay, tag in ((proto, "p"), (basic, "b"))
         for name, k in [(f"{tag}{g}", k) for g, k in lay.gates.items()]}
    assert x["po"] < x[r"p\tilde{s}"]
    assert x["bo"] > x[r"b\tilde{c}"]


def test_peepholes_hang_from_the_memory_line():
    layout = _layout(PeepholeLSTMCell)
    line = layout.memory
    drops = [w for w in layout.wires if w.source in line and
             w.target not in line]
    labels = {layout.boxes[w.target].label for w in drops}
    assert {"Q c_{t-1}", r"Q_{o} \cdot"} <= labels
    for wire in drops:                     # straight down from the line
        (x0, y0), (x1, y1) = wire.points[0], wire.points[-1]
        assert y0 == 0.0 and x0 == x1 and y1 < 0


def test_a_state_the_step_ignores_is_still_drawn():
    layout = cell_layout(dataflow(LSTMVariantCell(3, 4)))  # h_{t-1} unused
    unused = [b for b in layout.boxes.values() if b.label == "h_{t-1}"]
    assert len(unused) == 1
    assert all(w.target == unused[0].key for w in layout.wires
               if w.source == unused[0].key)           # goes nowhere


# -- highlighting one gate -----------------------------------------------------
def _gate_faces(fig):
    faces = {}
    for patch in fig.axes[0].patches:
        gid = patch.get_gid() or ""
        if gid.startswith("box:") and gid.split(":")[2]:
            faces[gid.split(":")[2]] = matplotlib.colors.to_hex(
                patch.get_facecolor())
    return faces


@pytest.mark.parametrize("cell,gate,others", [
    (BasicLSTMCell(3, 4), "f", ["i", "o", r"\tilde{c}"]),
    (BasicLSTMCell(3, 4), "c_tilde", ["f", "i", "o"]),
    (GRUCell(3, 4), "r", ["z", r"\tilde{s}"]),
    (PrototypeLSTMCell(3, 4), "o", ["f", "i", r"\tilde{s}"]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_highlighted_gate_is_coloured_and_the_others_greyed(cell, gate,
                                                              others):
    import matplotlib.pyplot as plt

    plain = _gate_faces(draw_dataflow(cell))
    faces = _gate_faces(draw_dataflow(cell, highlight=gate))
    lit = faces[math_symbol(gate)]
    assert all(faces[g] != lit for g in others)
    assert len({faces[g] for g in others}) == 1               # all grey
    assert lit != plain[math_symbol(gate)]                    # coloured
    assert all(faces[g] != plain[g] for g in others)          # greyed
    plt.close("all")


def test_highlighting_the_memory_line_and_a_wrong_name():
    import matplotlib.pyplot as plt

    fig = draw_dataflow(BasicLSTMCell(3, 4), highlight="c")
    widths = {round(p.get_linewidth(), 2) for p in fig.axes[0].patches
              if p.get_edgecolor()[:3] != (0.2, 0.2, 0.2)}
    assert widths
    with pytest.raises(ValueError, match="highlight must be one of"):
        draw_dataflow(BasicLSTMCell(3, 4), highlight="q")
    plt.close("all")


# -- the memory line over several steps -----------------------------------------
@pytest.mark.parametrize("steps", [1, 2, 3, 5])
def test_unrolled_line_has_one_product_and_one_sum_per_step(steps):
    layout = unrolled_layout(steps)
    line = [b for b in layout.boxes if b.role == "memory"]
    ops = [b for b in line if b.kind == "pointwise"]
    assert [b.label for b in ops] == [r"\odot", "+"] * steps
    assert {b.y for b in layout.boxes if b.role in ("memory", "gap")} == \
        {0.0}
    xs = [b.x for b in layout.boxes if b.role in ("memory", "gap")]
    assert xs == sorted(xs)
    states = [b.label for b in line if b.kind == "input"]
    assert states[0] == "c_{0}" and states[-1] == (
        "c_{T}" if steps >= 2 else "c_{1}")
    kept = [lab.text for lab in layout.labels if lab.gate == "kept"]
    assert len(kept) == steps and kept[0] == "f_{1}"
    # what is not the line is faded, and only the line is thick
    assert all(b.role in ("memory", "gap", "faded") for b in layout.boxes)
    assert all(w.memory == (w.source in {b.key for b in line} | {
        b.key for b in layout.boxes if b.role == "gap"} and w.target in {
        b.key for b in line} | {b.key for b in layout.boxes
                                if b.role == "gap"})
        for w in layout.wires if w.label != "backward")


def test_unrolled_line_reads_its_terms_from_the_cell():
    gru = unrolled_layout(2, **dict(zip(
        ("kept", "written"), ("z_{t}", r"(1 - z_{t}) \odot \tilde{s}_{t}"))))
    assert "z_{1}" in {lab.text for lab in gru.labels}
    import matplotlib.pyplot as plt
    fig = draw_unrolled_memory(GRUCell(3, 4), steps=2)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"$z_{1}$", r"$(1 - z_{1}) \odot \tilde{s}_{1}$", "$s_{0}$",
            "$s_{T}$"} <= texts
    fig = draw_unrolled_memory(steps=3)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"$f_{1}$", r"$i_{1} \odot \tilde{c}_{1}$", "$c_{T-1}$",
            r"$\odot\, f_{T}$"} <= texts
    plt.close("all")


# -- readable at the book's page width ------------------------------------------
def _smallest_points_on_page(fig, page_px=700):
    """The smallest text of ``fig`` in points as the page shows it: saved at
    fig.dpi, shrunk to the page's width if wider, 96 CSS px an inch."""
    width_px = fig.get_size_inches()[0] * fig.dpi
    shrink = min(1.0, page_px / width_px)
    sizes = [t.get_fontsize() for ax in fig.axes for t in ax.texts]
    return min(sizes) * fig.dpi / 96 * shrink


@pytest.mark.parametrize("draw", [
    *[pytest.param(lambda b=cell.build: draw_dataflow(b(3, 4)),
                   id=cell.name.replace(" ", "_")) for cell in
      REGISTERED_CELLS],
    pytest.param(lambda: draw_dataflow(LSTMVariantCell(3, 4)),
                 id="pseudo_LSTM_variant_1"),
    pytest.param(lambda: draw_unrolled_memory(), id="unrolled"),
    pytest.param(lambda: draw_unrolled_memory(steps=4), id="unrolled_4"),
    pytest.param(lambda: draw_unrolled_memory(GRUCell(3, 4), steps=3),
                 id="unrolled_GRU"),
])
def test_every_text_is_at_least_10_points_at_the_page_width(draw):
    import matplotlib.pyplot as plt

    fig = draw()
    assert _smallest_points_on_page(fig) >= 10
    assert rendered_points(fig) == pytest.approx(
        _smallest_points_on_page(fig))
    plt.close(fig)


def test_docstring_examples_run():
    import doctest

    import matplotlib.pyplot as plt
    from lstmlib.display.diagrams import drawing, graph, layout, tracing

    for module in (drawing, graph, layout, tracing):
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__
    assert doctest.testmod(drawing).attempted >= 5
    plt.close("all")
