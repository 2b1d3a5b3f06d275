"""The data-flow graph of one step of a cell: what :mod:`.tracing` records,
:mod:`.layout` places and :mod:`.drawing` draws.

A :class:`DataFlowGraph` holds :class:`Node` s (boxes, labelled in TeX) in
the order the step computes them and :class:`Edge` s (arrows, labelled with
the blocks of a fused tensor they carry); it can also write each output as
a nested expression, so two cells can be compared without drawing them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DataFlowGraph", "Edge", "Node"]


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
    r"""The data flow of one step of a cell: nodes in the order the step
    computes them (inputs first, outputs last), edges in operand order.

    >>> graph = DataFlowGraph(
    ...     (Node(0, "input", "s_{t-1}"), Node(1, "nonlinearity", r"\tanh"),
    ...      Node(2, "output", "s_t")), (Edge(0, 1), Edge(1, 2)))
    >>> graph.expressions()
    {'s_t': 's_t(\\tanh(s_{t-1}))'}
    """

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
