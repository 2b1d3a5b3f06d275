"""Where the boxes of a data-flow diagram go: a layered layout.

:func:`layered_layout` puts every node of a :class:`~.graph.DataFlowGraph`
in a column (inputs first, outputs last, every other node one column right
of its rightmost operand), routes edges that skip columns through a point
in each column they cross, orders each column to cut down crossings (the
barycentric heuristic, then swaps of neighbours) and pulls every box
towards the boxes it is linked to. Rows come out in units of one row;
:mod:`.drawing` turns them into inches.
"""

from __future__ import annotations

from itertools import pairwise

from .graph import DataFlowGraph

__all__ = ["layered_layout"]


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


def layered_layout(graph: DataFlowGraph):
    r"""Columns of node keys (node indices, and ``("edge", e, column)`` for
    the points where a long edge crosses a column), a row coordinate for
    every key, in units of one row, and the route of every edge: the keys
    it passes through, from its source to its target.

    >>> from lstmlib.display.diagrams.graph import Edge, Node
    >>> chain = DataFlowGraph((Node(0, "input", "x_t"),
    ...                        Node(1, "nonlinearity", r"\sigma"),
    ...                        Node(2, "output", "s_t")),
    ...                       (Edge(0, 1), Edge(1, 2)))
    >>> layered_layout(chain)
    ([[0], [1], [2]], {0: 0.0, 1: 0.0, 2: 0.0}, [[0, 1], [1, 2]])
    """
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
