r"""Drawing a cell's diagram with matplotlib.

:func:`draw_dataflow` traces a cell (:mod:`.tracing`), lays it out in the
family layout of :func:`~.layout.cell_layout` (the memory line straight
across the top, the gates in one row below it, the inputs entering from
the bottom left) and draws it: affine maps in blue boxes, nonlinearities
in yellow ones, elementwise arithmetic in red circles, the memory line
thick. ``highlight`` picks out one gate (or the memory line) in colour and
greys the other gates. :func:`draw_unrolled_memory` draws the memory line
of several steps, the picture of the constant-error path.

Lengths are in ems (the font size); a diagram is at most
:data:`MAX_WIDTH_EMS` wide so that its smallest text stays at least 10 pt
where the book's page (about 700 pixels) shrinks it
(:func:`rendered_points` measures that).
"""

from __future__ import annotations

from itertools import pairwise

from .graph import DataFlowGraph, Node
from .layout import (LABEL_SCALE, UNROLLED_LABEL_SCALE, Box, CellLayout,
                     UnrolledLayout, cell_layout, layered_layout,
                     unrolled_layout)
from .tracing import ARITHMETIC_SYMBOLS, dataflow, math_symbol

__all__ = ["draw_dataflow", "draw_unrolled_memory", "rendered_points"]


#: Face and edge colours of the boxes, by node kind.
BOX_COLOURS = {"affine": ("#dbe8f5", "#2f5d8a"),
               "nonlinearity": ("#fbeec1", "#9a7420"),
               "pointwise": ("#f6dcdc", "#9a3b3b"),
               "other": ("#e6e6e6", "#555555")}
#: A highlighted gate, and the gates it is set against.
HIGHLIGHT = ("#ffd2a6", "#d9480f")
GREYED = ("#f1f1f1", "#b0b0b0", "#8a8a8a")       # face, edge, text
FADED = "#b8b8b8"
WIRE = "#333333"
MEMORY_WIDTH = 2.6    # line width (points) of the memory line
MATH_FONT = "cm"      # Computer Modern, like the equations of the book
PAGE_WIDTH_PX = 700   # the width the book's pages give a figure
#: The widest a diagram may be, in ems: at the page's width its text is
#: then at least 10 pt (see :func:`rendered_points`).
MAX_WIDTH_EMS = 50.0
# Lengths below are in ems (the font size): the diagram scales with it.
GAP = 1.9             # between neighbouring columns of boxes (layered)
LEAD = 1.2            # straight arrow beside an edge's label (layered)
ROW_GAP = 1.6         # between the boxes of one column (layered)
MARGIN = 0.4          # around a diagram


def rendered_points(fig, page_width_px: float = PAGE_WIDTH_PX,
                    css_dpi: float = 96.0) -> float:
    """The size, in points as a reader sees them, of the smallest text of
    ``fig`` on a page ``page_width_px`` CSS pixels wide: the notebook saves
    the figure at ``fig.dpi`` and the page shrinks it to its width if it is
    wider.

    >>> import matplotlib.pyplot as plt
    >>> fig = plt.figure(figsize=(14, 2), dpi=100)
    >>> _ = fig.text(0.5, 0.5, "x", fontsize=12)
    >>> round(rendered_points(fig), 2)    # 12 pt, shrunk by 700 / 1400
    6.25
    >>> plt.close(fig)
    """
    width_px = fig.get_size_inches()[0] * fig.dpi
    shrink = min(1.0, page_width_px / width_px)
    sizes = [t.get_fontsize() for ax in fig.axes for t in ax.texts] + \
        [t.get_fontsize() for t in fig.texts]
    return float(min(sizes) * fig.dpi / css_dpi * shrink)


def _gate_key(layout: CellLayout, name: str) -> int | None:
    for candidate in (name, math_symbol(name)):
        if candidate in layout.gates:
            return layout.gates[candidate]
    return None


def draw_dataflow(cell, ax=None, *, fontsize: float = 13.0,
                  max_width: float = 9.0, highlight: str | None = None):
    r"""Draw one step of ``cell`` (a :class:`Cell`, or a
    :class:`DataFlowGraph` from :func:`dataflow`) in the book's family of
    cell diagrams: the memory line straight across the top, from the
    previous state (left) to the new one (right); the gates in one row
    below it, each feeding up into what it controls; what they compute
    from the inputs below them; the inputs entering from the bottom left.
    Affine maps are blue boxes, nonlinearities yellow ones, elementwise
    arithmetic red circles. The layout is computed from the cell's code
    (:func:`~.layout.cell_layout`); a graph without a state is drawn left
    to right instead.

    Args:
        ax: axes to draw into (lengths are laid out in ems of
            ``fontsize``; the axes should be about as large as the figure
            drawn without ``ax``). By default a new figure sized to the
            diagram, at most ``max_width`` inches wide (the diagram and
            its font shrink to fit).
        fontsize: of the labels in the boxes, in points.
        highlight: a gate's name as the cell calls its block (``"f"``,
            ``"i"``, ``"o"``, ``"c_tilde"``, ``"r"``, ``"z"``; TeX such as
            ``r"\tilde{c}"`` works too), drawn in colour with what it
            feeds, the other gates greyed; or the memory's name (``"c"``,
            ``"s"``) to colour the memory line.

    Returns the matplotlib Figure (without ``ax``, a new pyplot figure,
    shown like any other: end a notebook cell with ``plt.show()``; ending
    it with the call itself shows the figure twice).

    >>> from lstmlib.cells.lstm import BasicLSTMCell
    >>> fig = draw_dataflow(BasicLSTMCell(3, 4), highlight="f")
    >>> rendered_points(fig) >= 10
    True
    """
    graph = cell if isinstance(cell, DataFlowGraph) else dataflow(cell)
    try:
        layout = cell_layout(graph)
    except ValueError:
        if highlight is not None:
            raise
        return _draw_layered(graph, ax, fontsize, max_width)
    memory = layout.boxes[layout.memory[-1]].label.split("_")[0]
    gate = None
    if highlight is not None and highlight not in (memory,
                                                   math_symbol(memory)):
        gate = _gate_key(layout, highlight)
        if gate is None:
            raise ValueError(
                f"draw_dataflow: highlight must be one of the gates "
                f"{sorted(layout.gates)} or the memory {memory!r}, got "
                f"{highlight!r}")
    return _draw_cell(layout, ax, fontsize, max_width, gate,
                      highlight_memory=highlight is not None and gate is None)


def _figure(ax, extent, fontsize, max_width):
    """A figure (or the given axes) showing ``extent`` (ems); the font
    size after shrinking to ``max_width`` inches."""
    import matplotlib.pyplot as plt

    left, bottom, right, top = extent
    left, bottom, right, top = (left - MARGIN, bottom - MARGIN,
                                right + MARGIN, top + MARGIN)
    width_em, height_em = right - left, top - bottom
    if ax is None:
        if width_em * fontsize / 72 > max_width:
            fontsize = max_width * 72 / width_em
        em = fontsize / 72
        fig = plt.figure(figsize=(width_em * em, height_em * em))
        ax = fig.add_axes((0, 0, 1, 1))
    ax.set(xlim=(left, right), ylim=(bottom, top), aspect="equal")
    ax.set_axis_off()
    return ax.figure, ax, fontsize


def _draw_cell(layout: CellLayout, ax, fontsize, max_width, gate,
               highlight_memory=False):
    fig, ax, fontsize = _figure(ax, layout.extent, fontsize, max_width)
    em_points = fontsize                  # one em in points
    lit = set()                           # wires in the highlight colour
    if gate is not None:
        lit = {id(w) for w in layout.wires if w.source == gate}
    for wire in layout.wires:
        colour, width = WIRE, 1.1
        if wire.memory:
            width = MEMORY_WIDTH
            if highlight_memory:
                colour = HIGHLIGHT[1]
        if id(wire) in lit:
            colour, width = HIGHLIGHT[1], 2.0
        _polyline(ax, wire.points, colour, width, em_points, wire.arrow)
    for x, y in layout.junctions:
        _dot(ax, x, y)
    for box in layout.boxes.values():
        style = None
        if gate is not None and box.role == "gate":
            style = "highlight" if box.key == gate else "greyed"
        _box(ax, box, fontsize, style)
    for label in layout.labels:
        colour = WIRE
        if gate is not None and label.gate:
            colour = HIGHLIGHT[1] if label.owner == gate else GREYED[2]
        ax.text(label.x, label.y, f"${label.text}$", ha="center",
                va="center", fontsize=LABEL_SCALE * fontsize,
                math_fontfamily=MATH_FONT, color=colour, zorder=4)
    return fig


def _polyline(ax, points, colour, width, em_points, arrow=True, zorder=1,
              style="-"):
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    codes = [Path.MOVETO] + [Path.LINETO] * (len(points) - 1)
    ax.add_patch(FancyArrowPatch(
        path=Path(points, codes), arrowstyle="-|>" if arrow else "-",
        mutation_scale=0.8 * em_points, linewidth=width, color=colour,
        joinstyle="round", capstyle="butt", linestyle=style,
        zorder=zorder))


def _dot(ax, x, y, colour=WIRE, zorder=1.5):
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), 0.13, facecolor=colour, edgecolor="none",
                        zorder=zorder))


def _box(ax, box: Box, fontsize, style=None, faded=False):
    from matplotlib.patches import Circle, FancyBboxPatch

    text_colour = WIRE
    if box.kind in BOX_COLOURS:
        face, edge = BOX_COLOURS[box.kind]
        if style == "highlight":
            face, edge = HIGHLIGHT
        elif style == "greyed":
            face, edge, text_colour = GREYED
        if faded:
            face, edge, text_colour = "#f7f7f7", FADED, FADED
        if box.circle:
            patch = Circle((box.x, box.y), box.width / 2)
        else:
            r = 0.15 * min(box.height, box.width)
            patch = FancyBboxPatch(
                (box.x - box.width / 2 + r, box.y - box.height / 2 + r),
                box.width - 2 * r, box.height - 2 * r,
                boxstyle=f"round,pad={r}")
        patch.set(facecolor=face, edgecolor=edge,
                  linewidth=2.0 if style == "highlight" else 1.0, zorder=2,
                  gid=f"box:{box.key}:{box.gate}")
        ax.add_patch(patch)
    elif faded:
        text_colour = FADED
    if box.label:
        ax.text(box.x, box.y, f"${box.label}$", ha="center", va="center",
                fontsize=fontsize, math_fontfamily=MATH_FONT, zorder=3,
                color=text_colour)


def draw_unrolled_memory(cell=None, steps: int = 3, ax=None, *,
                         fontsize: float = 13.0, max_width: float = 9.0,
                         last: str = "T", backward: bool = True):
    r"""Draw the memory line of ``cell`` unrolled over ``steps`` steps,
    from ``c_0`` to ``c_T``: at every step the line meets one ``⊙`` (the
    old memory times the forget gate) and one ``+`` (the write), and
    nothing else, on one straight line. The rest of every step (the gates,
    the candidate, ``h_t``, which reads ``c_t`` and is read by the next
    step) is faded below it. With ``backward``, each step is labelled with
    the factor ``× f_t`` that an error picks up on its way back along the
    line: the constant-error path of the LSTM.

    Args:
        cell: the cell whose memory line is drawn (default: the basic
            LSTM). What the ``⊙`` and the ``+`` take from the rest of the
            step is read from its trace (``f_t`` and ``i_t ⊙ c̃_t`` for the
            LSTM, ``z_t`` and ``(1 - z_t) ⊙ s̃_t`` for the GRU).
        steps: the number of steps drawn; with ``last`` (``"T"``) the last
            one is step ``T``, after a gap of dots. Up to 4 steps of the
            LSTM (3 of the GRU, whose terms are longer) fit the book's
            page with text of at least 10 pt.
        ax, fontsize, max_width: as for :func:`draw_dataflow`.

    Returns the matplotlib Figure.

    >>> import matplotlib.pyplot as plt
    >>> from lstmlib.display.diagrams import draw_unrolled_memory
    >>> fig = draw_unrolled_memory(steps=3)        # c_0, c_1, c_2, ..., c_T
    >>> rendered_points(fig) >= 10
    True
    >>> plt.close(fig)
    """
    kept, written, state, output, rest = _memory_terms(cell)
    layout = unrolled_layout(steps, state=state, kept=kept, written=written,
                             output=output, rest=rest, last=last,
                             backward=backward)
    return _draw_unrolled(layout, ax, fontsize, max_width)


def _memory_terms(cell):
    """What the memory line of ``cell`` takes at its ``⊙`` and its ``+``,
    as TeX with ``{t}`` for the step, read from the cell's layout."""
    if cell is None:
        from ...cells.lstm import BasicLSTMCell
        cell = BasicLSTMCell(2, 2)
    graph = cell if isinstance(cell, DataFlowGraph) else dataflow(cell)
    layout = cell_layout(graph)
    boxes, wires = layout.boxes, layout.wires
    line = layout.memory
    state = boxes[line[-1]].label[:-2]

    def term(key, depth=0):
        box = boxes[key]
        if box.role == "gate":
            return f"{box.gate}_{{t}}"
        operands = [w.source for w in wires if w.target == key
                    and w.source in boxes]
        parts = [term(k, depth + 1) for k in operands]
        if box.label == r"\odot" and len(parts) == 2:
            return rf"{parts[0]} \odot {parts[1]}"
        if box.label == r"1 - \cdot" and len(parts) == 1:
            return rf"(1 - {parts[0]})"
        return r"\cdots"

    side = {}
    for k in line[1:-1]:
        others = [w.source for w in wires if w.target == k
                  and w.source not in line]
        if others:
            side[boxes[k].label] = term(others[0])
    kept = side.get(r"\odot", "f_{t}")
    written = side.get("+", r"i_{t} \odot \tilde{c}_{t}")
    gates = sorted(layout.gates, key=lambda g: boxes[layout.gates[g]].x)
    rest = ", ".join(f"{g}_{{t}}" for g in gates) or r"\cdots"
    others = [b.label[:-6] for b in boxes.values() if b.role == "input"
              and b.label.endswith("_{t-1}") and b.label[:-6] != state]
    output = others[0] if others else state
    return kept, written, state, output, rest


def _draw_unrolled(layout: UnrolledLayout, ax, fontsize, max_width):
    fig, ax, fontsize = _figure(ax, layout.extent, fontsize, max_width)
    line = {b.key for b in layout.boxes if b.role in ("memory", "gap")}
    for wire in layout.wires:
        if wire.label == "backward":
            _polyline(ax, wire.points, HIGHLIGHT[1], 1.4, fontsize,
                      style=(0, (4, 3)))
        elif wire.memory:
            _polyline(ax, wire.points, WIRE, MEMORY_WIDTH, fontsize,
                      wire.arrow)
        elif wire.target in line and wire.source not in line:
            _polyline(ax, wire.points, "#6f6f6f", 1.1, fontsize)
        else:                               # the rest of the step: faded
            _polyline(ax, wire.points, FADED, 1.0, fontsize, wire.arrow)
    for box in layout.boxes:
        _box(ax, box, fontsize, faded=box.role == "faded")
    for label in layout.labels:
        colour = HIGHLIGHT[1] if label.gate == "backward" else WIRE
        ax.text(label.x, label.y, f"${label.text}$", ha="center",
                va="center", fontsize=UNROLLED_LABEL_SCALE * fontsize,
                math_fontfamily=MATH_FONT, color=colour, zorder=4)
    return fig


def _draw_layered(graph: DataFlowGraph, ax, fontsize: float,
                  max_width: float):
    """The generic drawing, left to right, of a graph without a state."""
    import matplotlib.pyplot as plt

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
