r"""Tracing one step of a cell into its data-flow graph, from the cell's code.

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

The result is a :class:`~.graph.DataFlowGraph`; :mod:`.drawing` draws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from ...cells.recurrent import Cell
from .graph import DataFlowGraph, Edge, Node

__all__ = ["ARITHMETIC_SYMBOLS", "BOOKKEEPING", "NONLINEARITY_LABELS",
           "UNARY_LABELS", "dataflow", "math_symbol"]


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
