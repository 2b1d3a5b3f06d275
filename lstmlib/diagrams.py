r"""Data-flow diagrams of recurrent cells, drawn from the cell's own code.

A diagram drawn by hand can disagree with the equations it illustrates. The
diagrams of this book are not drawn by hand: :func:`dataflow` runs one step
of a cell, ``cell.step(cell.project_input(x_t), state)``, on small random
tensors and records every torch operation the step performs (with a
``TorchFunctionMode``), then simplifies the record into the diagram's
vocabulary:

* inputs ``x_t`` and the previous state (``s_{t-1}``, or ``h_{t-1}`` and
  ``c_{t-1}``) on the left, the new state (``s_t``, or ``h_t`` and ``c_t``)
  on the right;
* affine maps, labelled with the parameters they carry:
  ``F.linear(x, self.U, self.b)`` becomes a box "U x_t + b";
* elementwise operations: σ, tanh, ⊙, +, 1 − ·, ...;
* bookkeeping (slicing, ``chunk``, ``split``, views, transposes) drawn as no
  box at all: where a fused pre-activation is cut into blocks, the arrow
  carries the names of the blocks it holds.

Block names come from the cell's class attribute ``gate_names``: the names
of the blocks of ``project_input(x)`` (for lstmlib's cells, of the rows of U
and b), each ``state_size`` wide, in order, as Python names, e.g.
``("i", "f", "c_tilde", "o")``; ``c_tilde`` is drawn as :math:`\tilde c`. A
parameter with as many rows, such as a fused W, carries the same names, so
``W[:2 * n]`` is drawn as :math:`W_{i,f}`. A cell without ``gate_names``
gets unnamed blocks.

Change the cell's code and the diagram changes with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from .recurrent import Cell

__all__ = ["DataFlowGraph", "Edge", "Node", "dataflow", "draw_dataflow",
           "math_symbol"]


# -- the graph ----------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    r"""One box of a diagram.

    kind: ``"input"``, ``"affine"`` (a product with a parameter matrix),
        ``"nonlinearity"`` (σ, tanh, ...), ``"pointwise"`` (⊙, +,
        1 − ·, ...), ``"other"`` (any other torch operation, by name) or
        ``"output"``.
    label: TeX math (without ``$``), e.g. ``r"U x_t + b"``, ``r"\odot"``.
    """

    index: int
    kind: str
    label: str


@dataclass(frozen=True)
class Edge:
    """An arrow from node ``source`` to node ``target`` (indices); ``label``
    names the blocks it carries where a fused tensor is cut, e.g. ``"i,f"``
    (TeX), else ``""``."""

    source: int
    target: int
    label: str = ""


@dataclass(frozen=True)
class DataFlowGraph:
    """The data flow of one step of a cell: nodes in the order the step
    computes them (inputs first, outputs last), edges in operand order."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def labels(self, kind: str | None = None) -> list[str]:
        """The sorted labels of all nodes, or of the nodes of one kind."""
        return sorted(n.label for n in self.nodes
                      if kind is None or n.kind == kind)

    def connections(self) -> list[tuple[str, str, str]]:
        """Sorted ``(source label, target label, edge label)`` triples."""
        return sorted((self.nodes[e.source].label,
                       self.nodes[e.target].label, e.label)
                      for e in self.edges)

    def expression(self, index: int) -> str:
        r"""Node ``index`` written as a nested expression of its inputs, e.g.
        ``s_t(\tanh(+(U x_t + b(x_t), W s_{t-1}(s_{t-1}))))``; operands of
        + and ⊙ are sorted, so the expression does not depend on the order
        the code wrote them in. Two cells compute the same data flow exactly
        when their outputs have the same expressions."""
        node = self.nodes[index]
        operands = [(f"[{e.label}]" if e.label else "")
                    + self.expression(e.source)
                    for e in self.edges if e.target == index]
        if node.label in ("+", r"\odot"):
            operands.sort()
        if not operands:
            return node.label
        return f"{node.label}({', '.join(operands)})"

    def expressions(self) -> dict[str, str]:
        """:meth:`expression` of every output, by the output's label."""
        return {n.label: self.expression(n.index) for n in self.nodes
                if n.kind == "output"}


def math_symbol(name: str) -> str:
    r"""A Python name as TeX: ``"c_tilde"`` → ``r"\tilde{c}"``,
    ``"W_gates"`` → ``r"W_{\mathrm{gates}}"``, ``"b_W"`` → ``"b_{W}"``."""
    base, _, sub = name.partition("_")
    if sub == "tilde":
        return rf"\tilde{{{base}}}"
    base = base if len(base) == 1 else rf"\mathrm{{{base}}}"
    if not sub:
        return base
    sub = sub if len(sub) == 1 else rf"\mathrm{{{sub}}}"
    return f"{base}_{{{sub}}}"


# -- tracing one step ---------------------------------------------------------
#: How elementwise torch operations are drawn, by the name torch calls them.
NONLINEARITY_LABELS = {"sigmoid": r"\sigma", "tanh": r"\tanh",
                       "relu": r"\mathrm{ReLU}", "exp": r"\exp"}
UNARY_LABELS = {"neg": r"-\cdot", "sqrt": r"\sqrt{\cdot}",
                "abs": r"|\cdot|", "reciprocal": r"1 / \cdot"}
ARITHMETIC_SYMBOLS = {"add": "+", "mul": r"\odot", "sub": "-", "div": "/",
                      "truediv": "/", "true_divide": "/"}
#: Operations that copy or reshape a tensor without computing anything.
BOOKKEEPING = {"clone", "contiguous", "reshape", "reshape_as", "to", "type",
               "float", "double", "view", "view_as", "detach", "repeat",
               "expand", "expand_as"}


@dataclass(frozen=True)
class _Value:
    """What the tracer knows about one tensor: the node computing it (None
    for parameters and constants, which are drawn inside the boxes that use
    them, as ``symbol``), the names of its blocks along the last dimension
    (rows for a parameter), and whether it is only a block of its node's
    output."""

    node: int | None
    names: tuple[str, ...] | None = None
    part: bool = False
    symbol: str = r"\cdot"
    transposed: bool = False
    scalar: bool = False


def _op_name(func) -> str:
    """``Tensor.__radd__`` → ``"radd"``, ``Tensor.T.__get__`` → ``"T"``."""
    name = getattr(func, "__name__", "op")
    if name == "__get__":
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    name = name.strip("_")
    in_place = name[:1] == "i" and name[1:] in ARITHMETIC_SYMBOLS
    return name[1:] if in_place else name


def _narrowing(base: Tensor, piece: Tensor
               ) -> tuple[int, int, int] | None:
    """``(dim, start, stop)`` if ``piece`` is ``base`` narrowed along one
    dimension (a slice, ``chunk``, ``split``), else None."""
    if (piece.dim() != base.dim() or piece.stride() != base.stride()
            or piece.untyped_storage().data_ptr()
            != base.untyped_storage().data_ptr()):
        return None
    cut = [d for d in range(base.dim()) if piece.shape[d] != base.shape[d]]
    offset = piece.storage_offset() - base.storage_offset()
    if len(cut) != 1 or base.stride(cut[0]) == 0:
        return None
    start, rest = divmod(offset, base.stride(cut[0]))
    return None if rest else (cut[0], start, start + piece.shape[cut[0]])


class _Tracer(TorchFunctionMode):
    """Records the torch operations of one step as diagram nodes."""

    def __init__(self, cell: Cell):
        super().__init__()
        self.block = cell.state_size
        self.gate_names = tuple(getattr(cell, "gate_names", ()) or ())
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.values: dict[int, _Value] = {}
        self.alive: list[Tensor] = []      # keeps id()s from being reused
        for name, p in list(cell.named_parameters()) + list(
                cell.named_buffers()):
            names = self.gate_names if p.dim() and p.shape[0] == len(
                self.gate_names) * self.block else None
            self.remember(p, _Value(None, names, symbol=math_symbol(name)))

    def remember(self, tensor: Tensor, value: _Value) -> None:
        self.alive.append(tensor)
        self.values[id(tensor)] = value

    def value(self, tensor: Tensor) -> _Value:
        if id(tensor) not in self.values:   # a tensor made outside the step
            flat = tensor.detach().flatten()
            same = flat.numel() > 0 and bool((flat == flat[0]).all())
            symbol = f"{flat[0].item():g}" if same else r"\mathrm{const}"
            self.remember(tensor, _Value(None, symbol=symbol, scalar=same))
        return self.values[id(tensor)]

    def add_node(self, kind: str, label: str) -> int:
        self.nodes.append(Node(len(self.nodes), kind, label))
        return len(self.nodes) - 1

    def connect(self, value: _Value, target: int) -> None:
        label = ",".join(map(math_symbol, value.names)) \
            if value.part and value.names else ""
        self.edges.append(Edge(value.node, target, label))

    def name_blocks(self, x_proj: Tensor) -> None:
        """Name the blocks of the input projection after ``gate_names``."""
        if not self.gate_names:
            return
        width = len(self.gate_names) * self.block
        if x_proj.shape[-1] != width:
            raise ValueError(
                f"dataflow: the cell's gate_names {self.gate_names} describe "
                f"{len(self.gate_names)} blocks of state_size {self.block}, "
                f"{width} columns, but project_input gives "
                f"{x_proj.shape[-1]}")
        value = self.value(x_proj)
        self.remember(x_proj, _Value(value.node, self.gate_names,
                                     value.part, value.symbol))

    def block_names(self, names, start: int, stop: int):
        if names is None or start % self.block or stop % self.block:
            return None
        return names[start // self.block:stop // self.block]

    # -- the recording ------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        pieces = [result] if isinstance(result, Tensor) else [
            r for r in result if isinstance(r, Tensor)] \
            if isinstance(result, (tuple, list)) else []   # chunk: a tuple
        operands = [a for a in list(args) + list(kwargs.values())
                    for a in (a if isinstance(a, (list, tuple)) else [a])]
        tensors = [a for a in operands if isinstance(a, Tensor)]
        name = _op_name(func)
        if not pieces or not tensors or name.endswith("_like"):
            return result        # .shape, zeros_like(z), ...: not data flow
        base = tensors[0]
        is_view = all(p is not base and p.untyped_storage().data_ptr()
                      == base.untyped_storage().data_ptr() for p in pieces)
        if name in BOOKKEEPING or is_view:
            for piece in pieces:
                self.remember(piece, self.alias(self.value(base), base,
                                                piece))
        else:
            self.remember(result, self.operation(name, operands, result))
        return result

    def alias(self, source: _Value, base: Tensor, piece: Tensor) -> _Value:
        """The value of a view or copy ``piece`` of ``base``."""
        cut = _narrowing(base, piece)
        if source.node is None and piece.dim() == 2 == base.dim() and \
                piece.shape == base.shape[::-1] and \
                piece.stride() == base.stride()[::-1] != base.stride():
            return _Value(None, source.names, symbol=source.symbol,
                          transposed=not source.transposed)
        if cut is None:
            same = piece.shape[-1:] == base.shape[-1:]
            return _Value(source.node, source.names if same else None,
                          source.part, source.symbol, source.transposed)
        dim, start, stop = cut
        names = self.block_names(source.names, start, stop)
        if source.node is None:                     # rows of a parameter
            sub = ",".join(map(math_symbol, names)) if names else \
                f"{start}:{stop}"
            return _Value(None, names, symbol=f"{source.symbol}_{{{sub}}}")
        if dim != base.dim() - 1:
            return _Value(source.node, None, True)
        return _Value(source.node, names, True)

    def operation(self, name: str, operands: Sequence, result: Tensor
                  ) -> _Value:
        """A node for an operation (or, on parameters only, a symbol)."""
        values = [self.value(a) if isinstance(a, Tensor) else
                  _Value(None, symbol=f"{a:g}", scalar=True)
                  for a in operands if isinstance(a, (Tensor, int, float))
                  and not isinstance(a, bool)]         # bools are flags
        computed = [v for v in values if v.node is not None]
        kind, label, names = self.describe(name, values, result)
        if not computed:                        # parameters only: a symbol
            if kind in ("nonlinearity", "other"):   # e.g. σ(p)
                label += "(" + ", ".join(v.symbol for v in values) + ")"
            return _Value(None, names, symbol=label)
        node = self.add_node(kind, label)
        for v in computed:
            self.connect(v, node)
        return _Value(node, names)

    def describe(self, name: str, values: list[_Value], result: Tensor):
        """``(kind, label, block names)`` of an operation on ``values``."""
        def shown(v: _Value) -> str:
            if v.node is not None and not v.part and \
                    self.nodes[v.node].kind == "input":
                return self.nodes[v.node].label
            return v.symbol

        same_width = [v.names for v in values if v.names is not None
                      and len(v.names) * self.block == result.shape[-1]]
        names = same_width[0] if same_width else None
        if name == "addmm":                   # addmm(b, x, W^T) = x W^T + b
            values = values[1:] + values[:1]
        products = ("linear", "matmul", "mm", "addmm")
        if name in products and sum(v.node is None for v in values[:2]) == 1:
            x, weight = values[0], values[1]
            weight_first = x.node is None                   # W @ x
            if weight_first:
                x, weight = weight, x
            # F.linear(x, W) = x W^T, x @ W.T and W @ x are all "W x" in
            # the book's column convention
            w_x = (name == "linear" or weight_first) != weight.transposed
            label = weight.symbol + ("" if w_x else r"^\top") + " " \
                + shown(x)
            if len(values) > 2:
                label += " + " + values[2].symbol
            return "affine", label, weight.names
        if name in NONLINEARITY_LABELS and len(values) == 1:
            return "nonlinearity", NONLINEARITY_LABELS[name], names
        if name in UNARY_LABELS and len(values) == 1:
            return "pointwise", UNARY_LABELS[name], names
        reflected = name[:1] == "r" and name[1:] in ARITHMETIC_SYMBOLS
        if (name in ARITHMETIC_SYMBOLS or reflected) and len(values) == 2:
            symbol = ARITHMETIC_SYMBOLS[name[1:] if reflected else name]
            if all(v.node is not None for v in values):
                return "pointwise", symbol, names
            if reflected:                     # 1 - z is Tensor.__rsub__(z, 1)
                values = values[::-1]
            if symbol == r"\odot" and any(v.scalar for v in values):
                symbol = r"\,"                       # a scalar multiple
            return "pointwise", f" {symbol} ".join(map(shown, values)), names
        if name in ("cat", "concat", "hstack"):
            parts = [v.names for v in values]
            joined = sum(parts, ()) if all(parts) else None
            return "other", r"[\cdot\,;\cdot]", joined
        return "other", rf"\mathrm{{{name}}}", names


def dataflow(cell: Cell) -> DataFlowGraph:
    """The data-flow graph of one step of ``cell``, traced from its code.

    Runs ``cell.step(cell.project_input(x), state)`` once on random tensors
    (batch of 2, the cell's dtype and device) and records what it computes;
    see the module's docstring for the vocabulary. Only operations that
    reach an output are kept. The trace follows the step's Python exactly,
    so branches taken on this call are the ones drawn.
    """
    if not isinstance(cell, Cell):
        raise TypeError(f"dataflow: expected an lstmlib Cell, got "
                        f"{type(cell).__name__}")
    generator = torch.Generator(device="cpu").manual_seed(0)
    ref = cell.initial_state(2)
    ref = ref if isinstance(ref, Tensor) else ref[0]

    def sample(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator,
                           dtype=ref.dtype).to(ref.device)

    x = sample(2, cell.input_size)
    states = [sample(2, cell.state_size) for _ in cell.state_names]
    tracer = _Tracer(cell)
    for tensor, label in zip([x] + states, ["x_t"] + [
            math_symbol(s) + "_{t-1}" for s in cell.state_names]):
        tracer.remember(tensor, _Value(tracer.add_node("input", label)))
    state = states[0] if len(states) == 1 else tuple(states)
    with torch.no_grad(), tracer:
        x_proj = cell.project_input(x)
        tracer.name_blocks(x_proj)
        output, new_state = cell.step(x_proj, state)
    new_state = (new_state,) if isinstance(new_state, Tensor) \
        else tuple(new_state)
    results = [(math_symbol(s) + "_t", t)
               for s, t in zip(cell.state_names, new_state)]
    if not any(tracer.value(t) == tracer.value(output) for _, t in results):
        out = "o_t" if "o" not in tracer.gate_names else \
            r"\mathrm{output}_t"
        results.insert(0, (out, output))
    for label, tensor in results:
        value = tracer.value(tensor)
        node = tracer.add_node("output", label)
        if value.node is not None:
            tracer.connect(value, node)
    return _reachable(tracer.nodes, tracer.edges)


def _reachable(nodes: list[Node], edges: list[Edge]) -> DataFlowGraph:
    """Keep the inputs and the nodes from which an output can be reached,
    renumbered in order."""
    keep = {n.index for n in nodes if n.kind in ("input", "output")}
    for edge in reversed(edges):   # edges run forward in computation order
        if edge.target in keep:
            keep.add(edge.source)
    number = {old: new for new, old in enumerate(sorted(keep))}
    return DataFlowGraph(
        tuple(Node(number[n.index], n.kind, n.label)
              for n in nodes if n.index in keep),
        tuple(Edge(number[e.source], number[e.target], e.label)
              for e in edges if e.source in keep and e.target in keep))


# -- layout -------------------------------------------------------------------
def _layers(graph: DataFlowGraph) -> list[int]:
    """The column of every node: inputs in column 0, each other node one
    right of its rightmost operand, outputs all in the last column."""
    layer = [0] * len(graph.nodes)
    for edge in sorted(graph.edges, key=lambda e: e.target):
        layer[edge.target] = max(layer[edge.target], layer[edge.source] + 1)
    last = max(layer)
    return [last if n.kind == "output" else layer[n.index]
            for n in graph.nodes]


def _crossings(columns, links) -> int:
    """Edge crossings between neighbouring columns for an ordering."""
    rank = {key: i for column in columns for i, key in enumerate(column)}
    total = 0
    for left in columns[:-1]:          # links run to the next column
        pairs = [(rank[a], rank[b]) for a in left for b in links[a]]
        total += sum((a1 - a2) * (b1 - b2) < 0 for k, (a1, b1)
                     in enumerate(pairs) for a2, b2 in pairs[k + 1:])
    return total


def _by_barycenter(column: list, fixed: list, neighbours: dict) -> list:
    """``column`` sorted by the mean rank of each key's neighbours in the
    ``fixed`` column next to it (keys without any keep their rank)."""
    rank = {key: i for i, key in enumerate(fixed)}

    def barycenter(item):
        i, key = item
        ranks = [rank[k] for k in neighbours[key] if k in rank]
        return sum(ranks) / len(ranks) if ranks else i
    return [key for _, key in sorted(enumerate(column), key=barycenter)]


def _order(columns, links, backlinks, sweeps: int = 8):
    """Reorder each column by the mean rank of its neighbours (barycentric
    heuristic), alternating left-to-right and right-to-left sweeps, then
    swap neighbours where that helps; keep the ordering with the fewest
    crossings."""
    best = [list(c) for c in columns]
    best_crossings = _crossings(best, links)
    columns = [list(c) for c in columns]
    last = len(columns) - 1
    for sweep in range(sweeps):
        if sweep % 2 == 0:                               # left to right
            for c in range(1, last + 1):
                columns[c] = _by_barycenter(columns[c], columns[c - 1],
                                            backlinks)
        else:                                            # right to left
            for c in range(last - 1, -1, -1):
                columns[c] = _by_barycenter(columns[c], columns[c + 1],
                                            links)
        columns = _swap_neighbours(columns, links)
        crossings = _crossings(columns, links)
        if crossings < best_crossings:
            best, best_crossings = [list(c) for c in columns], crossings
    return best


def _swap_neighbours(columns, links):
    """Swap neighbours within a column while that removes crossings."""
    columns = [list(c) for c in columns]
    crossings = _crossings(columns, links)
    improved = True
    while improved:
        improved = False
        for column in columns:
            for k in range(len(column) - 1):
                column[k], column[k + 1] = column[k + 1], column[k]
                swapped = _crossings(columns, links)
                if swapped < crossings:
                    crossings, improved = swapped, True
                else:
                    column[k], column[k + 1] = column[k + 1], column[k]
    return columns


def _spread(targets: list[float], gaps: list[float]) -> list[float]:
    """Positions y_k as close as possible (least squares) to ``targets``,
    in order, with y_{k+1} - y_k >= gaps[k] (pool-adjacent-violators)."""
    offsets = [sum(gaps[:k]) for k in range(len(targets))]
    blocks: list[list[float]] = []          # [sum, count] of pooled values
    for target, offset in zip(targets, offsets):
        blocks.append([target - offset, 1])
        while len(blocks) > 1 and \
                blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    pooled = [total / count for total, count in blocks
              for _ in range(int(count))]
    return [p + offset for p, offset in zip(pooled, offsets)]


def _layout(graph: DataFlowGraph):
    """Columns of node keys (node indices, and ``("edge", e, column)`` for
    the points where a long edge crosses a column) and a row coordinate for
    every key, in units of one row."""
    layer = _layers(graph)
    columns: list[list] = [[] for _ in range(max(layer) + 1)]
    for node in graph.nodes:
        columns[layer[node.index]].append(node.index)
    links: dict = {n.index: [] for n in graph.nodes}
    backlinks: dict = {n.index: [] for n in graph.nodes}
    routes = []
    for e, edge in enumerate(graph.edges):
        route = [edge.source] + [("edge", e, c) for c in range(
            layer[edge.source] + 1, layer[edge.target])] + [edge.target]
        for key in route[1:-1]:
            columns[key[2]].append(key)
            links[key], backlinks[key] = [], []
        for a, b in pairwise(route):
            links[a].append(b)
            backlinks[b].append(a)
        routes.append(route)
    columns = _order(columns, links, backlinks)
    row = {key: i - (len(c) - 1) / 2 for c in columns
           for i, key in enumerate(c)}
    for _ in range(30):                  # pull every key towards its links
        for column in columns:
            targets = [sum(row[k] for k in links[key] + backlinks[key])
                       / len(links[key] + backlinks[key])
                       if links[key] + backlinks[key] else row[key]
                       for key in column]
            gaps = [1.0 if isinstance(a, int) and isinstance(b, int) else
                    0.6 for a, b in pairwise(column)]
            row.update(zip(column, _spread(targets, gaps)))
    return columns, row, routes


# -- drawing ------------------------------------------------------------------
#: Face and edge colours of the boxes, by node kind.
BOX_COLOURS = {"affine": ("#dbe8f5", "#2f5d8a"),
               "nonlinearity": ("#fbeec1", "#9a7420"),
               "pointwise": ("#f6dcdc", "#9a3b3b"),
               "other": ("#e6e6e6", "#555555")}
MATH_FONT = "cm"      # Computer Modern, like the equations of the book
LABEL_SCALE = 0.85    # edge labels' font size relative to the boxes'
# Lengths below are in ems (the font size): the diagram scales with it.
GAP = 1.9             # between neighbouring columns of boxes
LEAD = 1.2            # straight arrow beside an edge's label
ROW_GAP = 1.6         # between the boxes of one column


def draw_dataflow(cell, ax=None, *, fontsize: float = 13.0,
                  max_width: float = 9.0):
    """Draw the data flow of one step of ``cell`` (a :class:`Cell`, or a
    :class:`DataFlowGraph` from :func:`dataflow`) left to right: inputs on
    the left, the new state on the right; affine maps in blue boxes,
    nonlinearities in yellow, elementwise operations in red; arrows that
    carry blocks cut from a fused tensor are labelled with the blocks'
    names.

    Args:
        ax: axes to draw into (lengths are laid out in inches at
            ``fontsize``; the axes should be about as large as the figure
            drawn without ``ax``). By default a new figure sized to the
            diagram, at most ``max_width`` inches wide (the diagram and its
            font shrink to fit).
        fontsize: of the labels in the boxes, in points.

    Returns the matplotlib Figure (without ``ax``, a new pyplot figure,
    shown like any other: end a notebook cell with ``plt.show()``; ending
    it with the call itself shows the figure twice).
    """
    import matplotlib.pyplot as plt

    graph = cell if isinstance(cell, DataFlowGraph) else dataflow(cell)
    columns, row, routes = _layout(graph)
    fig = plt.figure() if ax is None else ax.figure
    x, sizes, label_sizes = _measure(fig, graph, columns, fontsize)
    for _ in range(3):            # everything scales with the font (but
        if ax is not None or x[-1] <= max_width:     # the text's extent
            break                                    # only nearly so)
        fontsize *= 0.995 * max_width / x[-1]
        x, sizes, label_sizes = _measure(fig, graph, columns, fontsize)
    em = fontsize / 72                                        # inches
    height = max(h for _, h in sizes.values())
    centre = {key: (x[c], -row[key] * (height + ROW_GAP * em))
              for c, column in enumerate(columns) for key in column}
    ys = [y for _, y in centre.values()]
    bottom, top = min(ys) - height / 2 - em, max(ys) + height / 2 + em
    if ax is None:
        fig.set_size_inches(x[-1], top - bottom)
        ax = fig.add_axes((0, 0, 1, 1))
    ax.set(xlim=(0, x[-1]), ylim=(bottom, top), aspect="equal")
    ax.set_axis_off()
    boxes = [_rectangle(centre[n.index], sizes[n.index]) for n in graph.nodes]
    for node in graph.nodes:
        _draw_node(ax, node, centre[node.index], sizes[node.index], fontsize)
    entries = _entry_points(graph, routes, centre, sizes)
    curves = []
    for edge, route, entry in zip(graph.edges, routes, entries):
        points = [centre[key] for key in route[:-1]] + [entry]
        points[0] = (boxes[edge.source][2], points[0][1])   # right side
        if edge.label:             # a straight stretch to write the label on
            lead = label_sizes[edge.label][0] + LEAD * em
            points.insert(-1, (entry[0] - lead, entry[1]))
        curves.append(_curve(points))
        _draw_arrow(ax, curves[-1], fontsize)
    taken = list(boxes)                    # where a label must not go
    for edge, curve in zip(graph.edges, curves):
        if edge.label:
            others = [p for c in curves if c is not curve
                      for p in _samples(c)]
            size = label_sizes[edge.label]
            spot = _label_spot(curve, size, taken, others, em)
            taken.append(_rectangle(spot, size))
            ax.text(*spot, f"${edge.label}$", ha="center", va="center",
                    fontsize=LABEL_SCALE * fontsize,
                    math_fontfamily=MATH_FONT, zorder=4,
                    bbox={"boxstyle": "square,pad=0.05",
                          "facecolor": "white", "edgecolor": "none"})
    return fig


def _is_circle(node: Node) -> bool:
    return node.kind == "pointwise" and \
        node.label in ARITHMETIC_SYMBOLS.values()


def _text_size(fig, text: str, fontsize: float, pad: float):
    """(width, height) in inches of ``text`` with ``pad`` ems around it."""
    artist = fig.text(0, 0, text, fontsize=fontsize,
                      math_fontfamily=MATH_FONT)
    extent = artist.get_window_extent(fig.canvas.get_renderer())
    artist.remove()
    em = fontsize / 72
    return (extent.width / fig.dpi + 2 * pad * em,
            max(extent.height / fig.dpi, 0.8 * em) + 2 * pad * em)


def _measure(fig, graph: DataFlowGraph, columns, fontsize: float):
    """The x of every column's centre (and last the diagram's width), the
    size of every node's box and of every edge label, in inches. Columns
    are ``GAP`` apart, and further where entering edges carry labels."""
    em = fontsize / 72
    sizes = {}
    for node in graph.nodes:
        pad = 0.1 if node.kind in ("input", "output") else 0.35
        w, h = _text_size(fig, f"${node.label}$", fontsize, pad)
        sizes[node.index] = (max(w, h),) * 2 if _is_circle(node) else (w, h)
    label_sizes = {e.label: _text_size(fig, f"${e.label}$",
                                       LABEL_SCALE * fontsize, 0.1)
                   for e in graph.edges if e.label}
    column_of = {key: c for c, column in enumerate(columns)
                 for key in column}
    gaps = [GAP * em] * len(columns)
    for edge in graph.edges:
        if edge.label:
            c = column_of[edge.target]
            gaps[c] = max(gaps[c], label_sizes[edge.label][0]
                          + (LEAD + 1.5) * em)
    widths = [max([sizes[key][0] for key in column if isinstance(key, int)],
                  default=0.0) for column in columns]
    x = [em + widths[0] / 2]
    for c in range(1, len(columns)):
        x.append(x[-1] + (widths[c - 1] + widths[c]) / 2 + gaps[c])
    return x + [x[-1] + widths[-1] / 2 + em], sizes, label_sizes


def _entry_points(graph: DataFlowGraph, routes, centre, sizes):
    """Where each edge enters its target: on the target's left side, the
    edges entering one node spread over its height, top to bottom in the
    order they arrive from."""
    entries = [None] * len(graph.edges)
    for node in graph.nodes:
        incoming = sorted((e for e, edge in enumerate(graph.edges)
                           if edge.target == node.index),
                          key=lambda e: -centre[routes[e][-2]][1])
        (x, y), (w, h) = centre[node.index], sizes[node.index]
        for k, e in enumerate(incoming):
            dy = 0.0 if len(incoming) == 1 else \
                0.3 * h * (1 - 2 * k / (len(incoming) - 1))
            dx = ((w / 2) ** 2 - dy ** 2) ** 0.5 if _is_circle(node) \
                else w / 2
            entries[e] = (x - dx, y + dy)
    return entries


def _rectangle(centre, size):
    """(left, bottom, right, top) of a box."""
    (x, y), (w, h) = centre, size
    return (x - w / 2, y - h / 2, x + w / 2, y + h / 2)


def _draw_node(ax, node: Node, centre, size, fontsize: float) -> None:
    from matplotlib.patches import Circle, FancyBboxPatch

    (x, y), (w, h) = centre, size
    if node.kind in BOX_COLOURS:
        face, edge = BOX_COLOURS[node.kind]
        if _is_circle(node):
            patch = Circle((x, y), w / 2)
        else:
            r = 0.15 * h
            patch = FancyBboxPatch((x - w / 2 + r, y - h / 2 + r),
                                   w - 2 * r, h - 2 * r,
                                   boxstyle=f"round,pad={r}")
        patch.set(facecolor=face, edgecolor=edge, linewidth=1.0, zorder=2)
        ax.add_patch(patch)
    ax.text(x, y, f"${node.label}$", ha="center", va="center",
            fontsize=fontsize, math_fontfamily=MATH_FONT, zorder=3)


def _curve(points) -> list[tuple[float, float]]:
    """Cubic Bézier segments through ``points``, horizontal at each point:
    the vertices (start, then 3 per segment) of a matplotlib path."""
    vertices = [points[0]]
    for (x0, y0), (x1, y1) in pairwise(points):
        middle = (x0 + x1) / 2
        vertices += [(middle, y0), (middle, y1), (x1, y1)]
    return vertices


def _draw_arrow(ax, vertices, fontsize: float) -> None:
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    codes = [Path.MOVETO] + [Path.CURVE4] * (len(vertices) - 1)
    ax.add_patch(FancyArrowPatch(
        path=Path(vertices, codes), arrowstyle="-|>",
        mutation_scale=0.85 * fontsize, linewidth=1.0, color="#333333",
        zorder=1))


def _along(vertices, t: float) -> tuple[float, float]:
    """The point at parameter t ∈ [0, k] of a curve of k Bézier segments."""
    k = min(int(t), (len(vertices) - 1) // 3 - 1)
    p0, p1, p2, p3 = vertices[3 * k:3 * k + 4]
    u = t - k
    weights = ((1 - u) ** 3, 3 * (1 - u) ** 2 * u, 3 * (1 - u) * u ** 2,
               u ** 3)
    return tuple(sum(w * p[i] for w, p in zip(weights, (p0, p1, p2, p3)))
                 for i in (0, 1))


def _samples(vertices, per_segment: int = 16):
    """Points along a curve."""
    segments = (len(vertices) - 1) // 3
    return [_along(vertices, k / per_segment)
            for k in range(segments * per_segment + 1)]


def _label_spot(vertices, size, taken, points_to_avoid, em: float):
    """Where to write an edge's label of ``size``: on the straight stretch
    before the arrow head, else just above or below it, else somewhere
    along the curve; the first spot that overlaps no box or label in
    ``taken`` and covers none of ``points_to_avoid`` (other edges)."""
    (x, y), (w, h) = vertices[-1], size
    x -= w / 2 + (LEAD - 0.4) * em
    tries = [(x, y), (x, y + h / 2 + 0.2 * em), (x, y - h / 2 - 0.2 * em)]
    segments = (len(vertices) - 1) // 3
    tries += [_along(vertices, k + u) for k in range(segments - 2, -1, -1)
              for u in (0.5, 0.3, 0.7)]
    avoid = [(px, py, px, py) for px, py in points_to_avoid]

    def overlaps(a, b, margin=0.1 * em):
        return (a[0] < b[2] + margin and b[0] < a[2] + margin
                and a[1] < b[3] + margin and b[1] < a[3] + margin)
    for spot in tries:
        box = _rectangle(spot, size)
        if not any(overlaps(box, other) for other in taken + avoid):
            return spot
    return tries[0]
