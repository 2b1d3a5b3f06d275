"""Drawing a data-flow diagram with matplotlib.

:func:`draw_dataflow` traces a cell (:mod:`.tracing`), places its boxes
(:mod:`.layout`), sizes every box to its TeX label, and draws boxes
coloured by kind, arrows as smooth curves entering their targets from the
left, and each arrow's block names where they overlap neither a box nor
another arrow. Lengths are in inches and scale with the font size.
"""

from __future__ import annotations

from itertools import pairwise

from .graph import DataFlowGraph, Node
from .layout import layered_layout
from .tracing import ARITHMETIC_SYMBOLS, dataflow

__all__ = ["draw_dataflow"]


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
    columns, row, routes = layered_layout(graph)
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
