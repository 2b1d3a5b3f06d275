r"""Where the boxes of a diagram go.

Every cell of the book is drawn in one family of diagrams, so that a reader
learns to read it once (:func:`cell_layout`):

* the memory (``c`` of the LSTMs, ``s`` of the one-state cells) is one
  straight horizontal line across the top, from the previous state on the
  left to the new state on the right, with the elementwise operations that
  act on it (``⊙ f_t``, ``+``) sitting on the line;
* the gates sit below the line in one row, each feeding up into the
  operation it controls, in the order the line meets them: the gate that
  scales the old memory (forget ``f``, update ``z``), the write gate, then
  the candidate; a read gate whose product feeds the candidate (the
  prototype's ``o``, the GRU's ``r``) stands just left of the candidate,
  a read gate that gates the output (the LSTM's ``o``) right of it;
* what the gates compute from the inputs (the affine maps, their sums)
  sits below the gates; the inputs enter from the bottom left on one line,
  the input bus, from which every box that reads them taps;
* what branches off the memory line (``tanh(c_t)``, peepholes, a
  normalization) hangs from it, right of where it branches.

The layout is computed from the traced :class:`~.graph.DataFlowGraph`, so
it follows the cell's code. Two changes of presentation, no change of
meaning, make the family readable: a fused nonlinearity whose output is cut
into gates (one σ on ``[i, f, o]``) is drawn as one box per gate, and a
fused affine map whose blocks go to different places (``U x_t + b`` feeding
the gates and the candidate) as one box per place, the arrow leaving it
labelled with its blocks. A one-state cell reads its state in two roles,
as the memory and as what the gates read, so ``s_{t-1}`` appears twice: on
the memory line and on the input bus.

Lengths are in ems (the font size); ``y`` grows upwards and the memory line
is at ``y = 0``. :func:`layered_layout` is the generic layout for a graph
that has no state (columns left to right); :func:`unrolled_layout` places
the memory line of several steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

from .graph import DataFlowGraph

__all__ = ["Box", "CellLayout", "Label", "UnrolledLayout", "Wire",
           "cell_layout", "label_size", "layered_layout", "segments_cross",
           "unrolled_layout", "wire_crossings", "wires_through_boxes"]


# -- sizes (ems) --------------------------------------------------------------
GAP = 1.5             # between neighbouring columns
ROW_GAP = 1.3         # between rows of boxes
BUS_GAP = 1.1         # between the lines of a bus and what is above
INPUT_GAP = 1.5       # between the input bus and the boxes above it
BOX_PAD = 0.35        # around the label, inside a box
TERMINAL_PAD = 0.12   # around an input's or output's label
LABEL_SCALE = 0.9     # wire labels' font size relative to the boxes'
UNROLLED_LABEL_SCALE = 1.0   # the same in the unrolled memory line
ARITHMETIC = {"+", "-", "/", r"\odot"}


@lru_cache(maxsize=None)
def label_size(label: str, scale: float = 1.0) -> tuple[float, float]:
    r"""(width, height) in ems of the TeX ``label`` (without ``$``) set in
    Computer Modern at ``scale`` times the font size.

    >>> w, h = label_size(r"\sigma")
    >>> 0.4 < w < 0.7 and 0.3 < h <= 0.75
    True
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    if not label.strip():
        return 0.0, 0.0
    path = TextPath((0, 0), f"${label}$", size=scale,
                    prop=FontProperties(math_fontfamily="cm"))
    extent = path.get_extents()
    return float(extent.width), float(max(extent.height, 0.7 * scale))


# -- what the layout returns --------------------------------------------------
class _Placed:
    """What is drawn centred at (x, y) with a width and a height (ems)."""

    x: float
    y: float
    width: float
    height: float

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top)."""
        return (self.x - self.width / 2, self.y - self.height / 2,
                self.x + self.width / 2, self.y + self.height / 2)


@dataclass(frozen=True)
class Box(_Placed):
    r"""One box (or circle, or terminal label) of a laid-out diagram.

    key: the node's index in the display graph (the traced graph's
        indices, then new ones for the boxes a fused node was split into).
    kind: as :class:`~.graph.Node`'s, or ``"bus"`` for the point where the
        inputs join (drawn as no box).
    role: ``"memory"`` (on the memory line), ``"gate"``, ``"input"``,
        ``"output"``, ``"stage"`` (computed from the inputs only, below
        the gates) or ``"upper"`` (everything else).
    gate: a gate's block name in TeX (``"f"``, ``r"\tilde{c}"``), else "".
    """

    key: int
    kind: str
    label: str
    x: float
    y: float
    width: float
    height: float
    role: str
    gate: str = ""

    @property
    def circle(self) -> bool:
        """Elementwise arithmetic is drawn as a circle."""
        return self.kind == "pointwise" and self.label in ARITHMETIC



@dataclass(frozen=True)
class Wire:
    """An arrow, as a polyline from its source's outline to its target's
    (``points``, ems); ``memory`` marks the segments of the memory line."""

    source: int
    target: int
    points: tuple[tuple[float, float], ...]
    label: str = ""
    memory: bool = False
    arrow: bool = True


@dataclass(frozen=True)
class Label(_Placed):
    """A text beside a wire: a gate's output (``f_t``), or the blocks or
    the input a wire carries. ``owner`` is the key of the wire's source."""

    text: str
    x: float
    y: float
    width: float
    height: float
    owner: int
    gate: str = ""



@dataclass(frozen=True)
class CellLayout:
    """A cell's diagram laid out: boxes, wires, labels and the points where
    a wire branches (``junctions``), all in ems. ``memory`` lists the keys
    of the memory line from left to right; ``gates`` maps a gate's block
    name (TeX) to its box's key."""

    boxes: dict[int, Box]
    wires: tuple[Wire, ...]
    labels: tuple[Label, ...]
    junctions: tuple[tuple[float, float], ...]
    memory: tuple[int, ...]
    gates: dict[str, int] = field(default_factory=dict)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of everything drawn."""
        xs, ys = [], []
        for item in list(self.boxes.values()) + list(self.labels):
            left, bottom, right, top = item.extent
            xs += [left, right]
            ys += [bottom, top]
        for wire in self.wires:
            xs += [x for x, _ in wire.points]
            ys += [y for _, y in wire.points]
        return min(xs), min(ys), max(xs), max(ys)


# -- the display graph: the traced graph, fused gates cut ----------------------
class _Display:
    """A mutable copy of a :class:`DataFlowGraph` for the changes of
    presentation described in the module's docstring."""

    def __init__(self, graph: DataFlowGraph):
        self.kind = {n.index: n.kind for n in graph.nodes}
        self.label = {n.index: n.label for n in graph.nodes}
        self.order = [n.index for n in graph.nodes]   # computation order
        self.edges = [[e.source, e.target, e.label] for e in graph.edges]
        self.gate: dict[int, str] = {}
        self.unused: list[int] = []

    def add(self, kind: str, label: str, after: int | None) -> int:
        key = max(self.order) + 1
        self.kind[key], self.label[key] = kind, label
        where = 0 if after is None else self.order.index(after) + 1
        self.order.insert(where, key)
        return key

    def remove(self, key: int) -> None:
        self.order.remove(key)
        self.edges = [e for e in self.edges if key not in e[:2]]

    def preds(self, key: int) -> list[tuple[int, str]]:
        return [(s, lab) for s, t, lab in self.edges if t == key]

    def succs(self, key: int) -> list[tuple[int, str]]:
        return [(t, lab) for s, t, lab in self.edges if s == key]


def _paths(d: _Display, start: int, end: int, inner_ok) -> list[list[int]]:
    """All paths from ``start`` to ``end`` whose inner nodes pass
    ``inner_ok``."""
    found, stack = [], [[start]]
    while stack:
        path = stack.pop()
        for nxt, _ in d.succs(path[-1]):
            if nxt == end:
                found.append(path + [end])
            elif nxt not in path and inner_ok(nxt):
                stack.append(path + [nxt])
    return found


def _memory_line(d: _Display) -> list[int]:
    """The keys of the memory line: the state input, the operations on the
    way to the state's new value, the new value. The memory is the state
    whose new value is reached through elementwise operations only (the
    LSTM's c), else the last state; its line is then its shortest path."""
    outputs = {d.label[k]: k for k in d.order if d.kind[k] == "output"}
    pairs = [(k, outputs[d.label[k][:-6] + "_t"]) for k in d.order
             if d.kind[k] == "input" and d.label[k].endswith("_{t-1}")
             and d.label[k][:-6] + "_t" in outputs]
    if not pairs:
        raise ValueError("cell_layout: the graph has no state (an input "
                         "s_{t-1} with an output s_t)")
    for m_in, m_out in reversed(pairs):
        paths = _paths(d, m_in, m_out, lambda k: d.kind[k] == "pointwise")
        if paths:
            return max(paths, key=len)
    m_in, m_out = pairs[-1]
    paths = _paths(d, m_in, m_out, lambda k: d.kind[k] not in
                   ("input", "output"))
    return min(paths, key=len) if paths else [m_in, m_out]


def _single_block(label: str) -> bool:
    return bool(label) and "," not in label


def _prepare(graph: DataFlowGraph):
    """The display graph and its memory line."""
    d = _Display(graph)
    line = _memory_line(d)
    m_in = line[0]
    # an input the step ignores is drawn as an arrow that ends nowhere
    d.unused = [k for k in d.order if d.kind[k] == "input" and k != m_in
                and not d.succs(k)]
    for k in d.unused:
        d.order.remove(k)
    # a one-state cell's gates read the memory itself: draw that read on
    # the input bus, as a second s_{t-1}
    others = [k for k in d.order if d.kind[k] == "input" and k != m_in
              and d.label[k] != "x_t"]
    off_line = [e for e in d.edges if e[0] == m_in and e[1] not in line]
    if off_line and not others:
        copy = d.add("input", d.label[m_in], None)
        for e in off_line:
            e[0] = copy
    # one box per gate where one nonlinearity computes several
    for k in list(d.order):
        if d.kind.get(k) != "nonlinearity" or k in line:
            continue
        outs = d.succs(k)
        blocks = list(dict.fromkeys(lab for _, lab in outs))
        if len(blocks) < 2 or not all(map(_single_block, blocks)):
            continue
        last = k
        for block in blocks:
            new = d.add(d.kind[k], d.label[k], last)
            last = new
            d.gate[new] = block
            d.edges += [[s, new, block] for s, _ in d.preds(k)]
            for e in d.edges:               # in place: operand order stays
                if e[0] == k and e[2] == block:
                    e[0], e[2] = new, ""
        d.remove(k)
    # one box per destination where a fused affine map feeds several
    for k in list(d.order):
        if d.kind.get(k) != "affine" or k in line:
            continue
        outs = d.succs(k)
        blocks = list(dict.fromkeys(lab for _, lab in outs))
        if len(blocks) < 2 or not all(blocks):
            continue
        last = k
        for block in blocks:
            new = d.add(d.kind[k], d.label[k], last)
            last = new
            d.edges += [[s, new, lab] for s, lab in d.preds(k)]
            for e in d.edges:
                if e[0] == k and e[2] == block:
                    e[0] = new
        d.remove(k)
    # the remaining gates are named after the block they read
    for k in d.order:
        if d.kind[k] != "nonlinearity" or k in line or k in d.gate:
            continue
        block = _block_read(d, k, depth=2)
        if block:
            d.gate[k] = block
    for e in d.edges:
        if e[1] in d.gate and e[2] == d.gate[e[1]]:
            e[2] = ""                       # the gate's name says it
        if e[0] in d.gate:
            e[2] = ""
    return d, line


def _block_read(d: _Display, key: int, depth: int) -> str:
    """The one block of a fused pre-activation that ``key`` reads, directly
    or through sums, else ""."""
    for source, label in d.preds(key):
        if _single_block(label):
            return label
    if depth:
        for source, label in d.preds(key):
            if d.kind[source] == "pointwise" and d.label[source] == "+":
                found = _block_read(d, source, depth - 1)
                if found:
                    return found
    return ""


# -- the family layout --------------------------------------------------------
def cell_layout(graph: DataFlowGraph) -> CellLayout:
    r"""The diagram of one step of a cell, in the family layout of this
    module's docstring.

    >>> from lstmlib.cells.lstm import BasicLSTMCell
    >>> from lstmlib.display.diagrams import dataflow
    >>> layout = cell_layout(dataflow(BasicLSTMCell(3, 4)))
    >>> [layout.boxes[k].label for k in layout.memory]
    ['c_{t-1}', '\\odot', '+', 'c_t']
    >>> {layout.boxes[k].y for k in layout.memory}
    {0.0}
    >>> sorted(layout.gates)
    ['\\tilde{c}', 'f', 'i', 'o']
    """
    d, line = _prepare(graph)
    return _Placer(d, line).layout()


class _Placer:
    """Places the display graph: rows, columns, then wires and labels."""

    def __init__(self, d: _Display, line: list[int]):
        self.d, self.line = d, line
        self.on_line = set(line)
        self.inputs = [k for k in d.order if d.kind[k] == "input"
                       and k != line[0]]
        self.outputs = [k for k in d.order if d.kind[k] == "output"
                        and k != line[-1]]
        self.size = {k: self._box_size(k) for k in d.order + d.unused}
        # stage: computed from the bus inputs only (a gate never is)
        self.stage: set[int] = set()
        for k in d.order:
            preds = [s for s, _ in d.preds(k)]
            if (d.kind[k] not in ("input", "output") and k not in
                    self.on_line and k not in d.gate and preds and
                    all(s in self.inputs or s in self.stage
                        for s in preds)):
                self.stage.add(k)
        self.upper = {k for k in d.order if d.kind[k] not in
                      ("input", "output") and k not in self.on_line
                      and k not in self.stage}
        self.gates = {k for k in self.upper if k in d.gate}
        self.row = self._rows()

    # -- sizes ---------------------------------------------------------------
    def _box_size(self, key: int) -> tuple[float, float]:
        kind, label = self.d.kind[key], self.d.label[key]
        pad = TERMINAL_PAD if kind in ("input", "output") else BOX_PAD
        w, h = label_size(label)
        if kind == "pointwise" and label in ARITHMETIC:
            side = max(w, h) + 2 * 0.22
            return side, side
        return w + 2 * pad, max(h, 0.75) + 2 * pad

    # -- rows of the part above the inputs ------------------------------------
    def _rows(self) -> dict[int, int]:
        """0: the memory line; 1: what feeds it or hangs from it; 2: the
        gates (and what combines them for an output); 3: what a gate's
        pre-activation needs besides the inputs."""
        d, upper = self.d, self.upper
        feeds_gate: set[int] = set()
        for g in self.gates:                     # ancestors of gates
            stack = [s for s, _ in d.preds(g)]
            while stack:
                k = stack.pop()
                if k in upper and k not in self.gates and \
                        k not in feeds_gate:
                    feeds_gate.add(k)
                    stack += [s for s, _ in d.preds(k)]
        row = {k: 2 for k in self.gates} | {k: 3 for k in feeds_gate}
        first = {k for k in upper - row.keys()
                 if any(s in self.on_line for s, _ in d.preds(k))
                 or any(t in self.on_line for t, _ in d.succs(k))}
        changed = True
        while changed:
            changed = False
            for k in upper - row.keys() - first:
                if any(t in first for t, _ in d.succs(k)):
                    first.add(k)
                    changed = True
        row |= {k: 1 for k in first}
        row |= {k: 2 for k in upper - row.keys()}
        return row

    # -- columns -------------------------------------------------------------
    def _columns(self):
        """Slots (columns) left to right, each a list of keys sharing its
        x; and the keys centred between two others."""
        d, upper, row = self.d, self.upper, self.row
        slots: list[list[int]] = [[self.line[0]]]
        slot_of = {self.line[0]: 0}
        centred: dict[int, tuple[int, int]] = {}
        same_x: dict[int, int] = {}
        deferred: set[int] = set()
        seen: set[int] = set()

        def new_slot(k):
            slots.append([k])
            slot_of[k] = len(slots) - 1

        def stack(k, on):
            slots[slot_of[on]].append(k)
            slot_of[k] = slot_of[on]

        def visit(k):
            if k in seen:
                return
            seen.add(k)
            ups = [s for s, _ in d.preds(k) if s in upper]
            for s in ups:
                visit(s)
            place(k, ups)

        def place(k, ups):
            if k in self.gates:
                new_slot(k)
                for s in ups:
                    if s in deferred:
                        deferred.discard(s)
                        stack(s, k)
                return
            if row[k] == 3 and any(t in self.gates for t, _ in d.succs(k)):
                deferred.add(k)             # goes under its first gate
                return
            above = [s for s in ups if row[s] == row[k] - 1]
            feeders = [s for s in ups if row[s] > row[k] or
                       (row[s] == row[k] and row[k] == 1)]
            if row[k] == 1 and len(feeders) >= 2:
                centred[k] = (feeders[0], feeders[-1])
            elif row[k] == 2 and above:
                stack(k, above[0])
            else:
                new_slot(k)

        for p in self.line[1:-1]:
            ups = [s for s, _ in d.preds(p) if s in upper]
            for s in ups:
                visit(s)
            if ups:
                same_x[p] = min(ups, key=lambda s: row[s])
            else:
                new_slot(p)
        for out in self.outputs:
            for s, _ in d.preds(out):
                if s in upper:
                    visit(s)
        for k in d.order:
            if k in upper:
                visit(k)
        for k in sorted(deferred, key=d.order.index):
            new_slot(k)
        new_slot(self.line[-1])
        for out in self.outputs:
            stack(out, self.line[-1])
        return slots, slot_of, centred, same_x

    # -- the part computed from the inputs ----------------------------------
    def _stage_groups(self):
        """Local stage nodes (all their consumers lead to one box above:
        drawn under it) with that box; the rest is the cluster."""
        d = self.d
        anchor: dict[int, int] = {}
        for k in reversed(d.order):
            if k not in self.stage:
                continue
            targets = set()
            for t, _ in d.succs(k):
                targets.add(anchor.get(t) if t in self.stage else t)
            if len(targets) == 1 and None not in targets:
                anchor[k] = targets.pop()
        cluster = [k for k in d.order if k in self.stage and k not in anchor]
        return anchor, cluster

    def _levels(self) -> dict[int, int]:
        level = {k: 0 for k in self.inputs}
        for k in self.d.order:
            if k in self.stage:
                level[k] = 1 + max(level.get(s, 0)
                                   for s, _ in self.d.preds(k))
        return level

    def _group_x(self, nodes: list[int], roots: list[int],
                 level: dict[int, int], last: set[int]) -> dict[int, float]:
        """Relative x of a group of stage nodes: leaves left to right in
        the order a walk from ``roots`` meets them (those in ``last``
        rightmost), each other node over the mean of its operands."""
        d, members = self.d, set(nodes)
        leaves: list[int] = []
        seen: set[int] = set()

        def has_last(k):
            return k in last or any(has_last(s) for s, _ in d.preds(k)
                                    if s in members)

        def walk(k):
            if k in seen:
                return
            seen.add(k)
            preds = [s for s, _ in d.preds(k) if s in members]
            preds.sort(key=has_last)
            for s in preds:
                walk(s)
            if not preds:
                leaves.append(k)

        for r in roots:
            walk(r)
        for k in nodes:
            walk(k)
        leaves.sort(key=lambda k: k in last)
        x: dict[int, float] = {}
        cursor = 0.0
        for k in leaves:
            w = self.size[k][0]
            if x:
                cursor += w / 2
            x[k] = cursor
            cursor += w / 2 + GAP
        for lev in range(2, max([level[k] for k in nodes], default=1) + 1):
            here = [k for k in nodes if level[k] == lev]
            for k in here:
                xs = [x[s] for s, _ in d.preds(k) if s in members]
                if xs:
                    x[k] = sum(xs) / len(xs)
            here.sort(key=lambda k: x[k])
            for a, b in pairwise(here):      # no two boxes overlap
                least = x[a] + (self.size[a][0] + self.size[b][0]) / 2 + GAP
                x[b] = max(x[b], least)
        return x

    # -- everything together --------------------------------------------------
    def layout(self) -> CellLayout:
        d, row = self.d, self.row
        slots, slot_of, centred, same_x = self._columns()
        anchor, cluster = self._stage_groups()
        level = self._levels()
        # x of the slots
        width = [max(self.size[k][0] for k in slot) for slot in slots]
        for k, a in anchor.items():           # local stage nodes widen
            if a in slot_of:                  # their anchor's slot
                width[slot_of[a]] = max(width[slot_of[a]], self.size[k][0])
        slot_x = [0.0]
        for (w0, w1) in pairwise(width):
            slot_x.append(slot_x[-1] + (w0 + w1) / 2 + GAP)
        x: dict[int, float] = {k: slot_x[s] for k, s in slot_of.items()}

        def x_of(k):
            if k not in x:
                if k in centred:
                    a, b = centred[k]
                    x[k] = (x_of(a) + x_of(b)) / 2
                elif k in same_x:
                    x[k] = x_of(same_x[k])
            return x[k]

        for k in list(centred) + list(same_x):
            x_of(k)
        # local stage groups, under their anchors
        by_anchor: dict[int, list[int]] = {}
        for k in d.order:
            if k in anchor:
                by_anchor.setdefault(anchor[k], []).append(k)
        for a, nodes in by_anchor.items():
            roots = [k for k in nodes if any(t == a for t, _ in d.succs(k))]
            rel = self._group_x(nodes, roots, level, set())
            shift = x_of(a) - sum(rel[r] for r in roots) / len(roots)
            x |= {k: v + shift for k, v in rel.items()}
        # the cluster: exits to the boxes above
        exits = {k: [t for t, _ in d.succs(k) if t not in self.stage]
                 for k in cluster}
        top = max([level[k] for k in cluster], default=0)
        bus_sources = [k for k in cluster if exits[k] and level[k] == top]
        own_row = {k for k in cluster if exits[k] and level[k] < top}
        if cluster:
            rel = self._group_x(cluster, bus_sources, level, own_row)
            targets = [x_of(t) for k in bus_sources for t in exits[k]]
            first = min(targets) if targets else 0.0
            source = min(bus_sources, key=lambda k: rel[k]) \
                if bus_sources else cluster[-1]
            shift = first - rel[source]
            # keep left of whatever rises from below on the right
            risers = [x[k] - self.size[k][0] / 2 for k in anchor]
            risers += [x_of(t) - self.size[t][0] / 2 for k in self.inputs
                       for t, _ in d.succs(k) if t not in self.stage]
            risers += [x_of(t) - self.size[t][0] / 2 for k in own_row
                       for t in exits[k]]
            right = max(rel[k] + self.size[k][0] / 2 for k in cluster)
            if risers:
                shift = min(shift, min(risers) - GAP - right)
            x |= {k: v + shift for k, v in rel.items()}
        # y: rows from the memory line down, then the bus rows, the stage
        # levels and the input bus
        y: dict[int, float] = {}
        heights = {}
        for k in self.upper:
            heights.setdefault(row[k], []).append(self.size[k][1])
        line_h = max(self.size[k][1] for k in self.line)
        y_row = {0: 0.0}
        bottom = -line_h / 2
        for r in (1, 2, 3):
            if r in heights:
                h = max(heights[r])
                y_row[r] = bottom - ROW_GAP - h / 2
                bottom = y_row[r] - h / 2
        for k in self.line + self.outputs:
            y[k] = 0.0
        for k in self.upper:
            y[k] = y_row[row[k]]
        bus_sources.sort(key=lambda k: x[k])
        bus_y = {}
        for k in bus_sources:
            bottom -= BUS_GAP
            bus_y[k] = bottom
        level_h: dict[int, float] = {}
        for k in self.stage:
            level_h[level[k]] = max(level_h.get(level[k], 0),
                                    self.size[k][1])
        y_level = {}
        for lev in sorted(level_h, reverse=True):
            y_level[lev] = bottom - BUS_GAP - level_h[lev] / 2
            bottom = y_level[lev] - level_h[lev] / 2
        for k in self.stage:
            y[k] = y_level[level[k]]
        y_bus = bottom - INPUT_GAP
        for out in self.outputs:
            source = d.preds(out)[0][0] if d.preds(out) else self.line[-1]
            y[out] = y.get(source, 0.0)
        # boxes
        role = {}
        for k in d.order:
            role[k] = ("memory" if k in self.on_line else
                       "gate" if k in self.gates else
                       d.kind[k] if d.kind[k] in ("input", "output") else
                       "stage" if k in self.stage else "upper")
        boxes = {k: Box(k, d.kind[k], d.label[k], x[k], y[k],
                        *self.size[k], role[k], d.gate.get(k, ""))
                 for k in d.order if k in x and k in y}
        wires, bus_key = self._wires(boxes, bus_sources, bus_y, own_row,
                                     y_bus)
        boxes = self._boxes_with_terminals(boxes, bus_key, wires, y_bus)
        wires = _reroute(boxes, wires)
        boxes, wires = self._unused_inputs(boxes, wires)
        labels = _place_labels(boxes, wires, d)
        gates = {boxes[k].gate: k for k in boxes if boxes[k].role == "gate"}
        return CellLayout(boxes, tuple(wires), tuple(labels),
                          tuple(_junctions(wires)), tuple(self.line), gates)

    # -- wires ---------------------------------------------------------------
    def _wires(self, boxes, bus_sources, bus_y, own_row, y_bus):
        """The wires, by the rules of the family: along the memory line;
        straight down from it; up from a bus row; along a row, then up;
        out of a gate vertically, then aside; along the input bus, then
        up."""
        d = self.d
        wires: list[Wire] = []
        bus_key = None
        terminals = [k for k in self.inputs if d.succs(k)]
        if len(terminals) >= 2:
            bus_key = max(d.order) + 1
        taps = []
        for s, t, lab in d.edges:
            if s in self.inputs and t in boxes:         # a tap of the bus
                taps.append((s, t, lab))
                continue
            if s not in boxes or t not in boxes:
                continue
            src, dst = boxes[s], boxes[t]
            memory = s in self.on_line and t in self.on_line
            if memory or (src.y == dst.y and s not in bus_sources):
                pts = [(src.x, src.y), (dst.x, dst.y)]
                if src.y != dst.y:
                    pts = [(src.x, src.y), (dst.x, src.y), (dst.x, dst.y)]
                wires.append(_clipped(Wire(s, t, tuple(pts), lab, memory),
                                      src, dst))
            elif s in self.on_line:                     # hangs from the line
                start = (dst.x, src.y)
                if not src.x < dst.x:
                    start = (src.x, src.y - src.height / 2)
                pts = [start, (dst.x, dst.y)]
                wires.append(_clipped(Wire(s, t, tuple(pts), lab), None,
                                      dst))
            elif s in bus_sources:
                yb = bus_y[s]
                pts = [(src.x, src.y), (src.x, yb), (dst.x, yb),
                       (dst.x, dst.y)]
                wires.append(_clipped(Wire(s, t, tuple(pts), lab), src,
                                      dst))
            elif s in own_row and t not in self.stage:
                pts = [(src.x, src.y), (dst.x, src.y), (dst.x, dst.y)]
                wires.append(_clipped(Wire(s, t, tuple(pts), lab), src,
                                      dst))
            elif src.x == dst.x:
                wires.append(_clipped(Wire(
                    s, t, ((src.x, src.y), (dst.x, dst.y)), lab), src, dst))
            elif s in self.stage and t in self.stage:    # up, then aside
                pts = [(src.x, src.y), (src.x, dst.y), (dst.x, dst.y)]
                wires.append(_clipped(Wire(s, t, tuple(pts), lab), src,
                                      dst))
            elif s in self.gates and dst.y < src.y:       # aside, then down
                pts = [(src.x, src.y), (dst.x, src.y), (dst.x, dst.y)]
                wires.append(_clipped(Wire(s, t, tuple(pts), lab), src,
                                      dst))
            elif s in self.gates:                         # leave, then aside
                pts = [(src.x, src.y), (src.x, dst.y), (dst.x, dst.y)]
                wires.append(_clipped(Wire(s, t, tuple(pts), lab), src,
                                      dst))
            else:                                         # along, then in
                pts = [(src.x, src.y), (dst.x, src.y), (dst.x, dst.y)]
                wires.append(_clipped(Wire(s, t, tuple(pts), lab), src,
                                      dst))
        # the input bus: one line at the bottom, taps up from it
        if taps:
            tap_x = [boxes[t].x for _, t, _ in taps]
            lefts = [b.extent[0] for b in boxes.values()
                     if b.role in ("stage",)] + \
                [boxes[t].extent[0] for _, t, _ in taps]
            x0 = min(lefts) - GAP
            for s, t, lab in taps:
                dst = boxes[t]
                label = lab
                if len(terminals) >= 2 and d.label[s] not in dst.label:
                    label = d.label[s]
                source = bus_key if bus_key is not None else s
                pts = ((x0, y_bus), (dst.x, y_bus), (dst.x, dst.y))
                wires.append(_clipped(Wire(source, t, pts, label), None,
                                      dst))
            self.bus_start = (x0, y_bus)
            self.bus_end = max(tap_x)
        return wires, bus_key

    def _unused_inputs(self, boxes, wires):
        """An input the step ignores: its label at the left, above the
        input bus, with an arrow that ends in a bar."""
        boxes, wires = dict(boxes), list(wires)
        left = min(b.extent[0] for b in boxes.values())
        bus = [b for b in boxes.values() if b.role in ("input", "bus")]
        y = max([b.y for b in bus], default=0.0)
        top = min(b.extent[1] for b in boxes.values() if b.role == "memory")
        for n, k in enumerate(self.d.unused):
            w, h = self.size[k]
            yk = y + (2.4 + 1.6 * n)
            yk = min(yk, top - h)
            b = Box(k, "input", self.d.label[k], left + w / 2, yk, w, h,
                    "unused")
            boxes[k] = b
            wires.append(Wire(k, k, ((b.extent[2], yk),
                                     (b.extent[2] + 1.6, yk)), arrow=False))
        return boxes, wires

    def _boxes_with_terminals(self, boxes, bus_key, wires, y_bus):
        """Place the input terminals at the start of the bus, and the
        memory's previous state at the left end of its line."""
        d = self.d
        boxes = dict(boxes)
        terminals = [k for k in self.inputs if d.succs(k)]
        if not terminals:
            return boxes
        x0, _ = self.bus_start
        states = [k for k in terminals if d.label[k] != "x_t"]
        xs = [k for k in terminals if d.label[k] == "x_t"]
        order = states + xs
        if bus_key is None:                 # one input: its line is the bus
            k = order[0]
            w, h = self.size[k]
            boxes[k] = Box(k, "input", d.label[k], x0 - w / 2, y_bus, w, h,
                           "input")
            # the wires start at the label
            for i, wire in enumerate(wires):
                if wire.source == k:
                    pts = ((x0, y_bus),) + wire.points[1:]
                    wires[i] = Wire(wire.source, wire.target, pts,
                                    wire.label)
            return boxes
        boxes[bus_key] = Box(bus_key, "bus", "", x0, y_bus, 0.0, 0.0, "bus")
        for n, k in enumerate(order):
            w, h = self.size[k]
            if n == 0:                       # from the left
                b = Box(k, "input", d.label[k], x0 - GAP - w / 2, y_bus, w,
                        h, "input")
                pts = ((b.extent[2], y_bus), (x0, y_bus))
            else:                            # from below
                yb = y_bus - BUS_GAP - 1.2 * n - h / 2
                b = Box(k, "input", d.label[k], x0, yb, w, h, "input")
                pts = ((x0, b.extent[3]), (x0, y_bus))
            boxes[k] = b
            wires.append(Wire(k, bus_key, pts, arrow=False))
        return boxes


def _reroute(boxes: dict[int, Box], wires: list[Wire]) -> list[Wire]:
    """Wires that pass through a box they do not connect take another
    route: the orthogonal route (up to three bends, along the rows and
    columns of the layout or between them) that passes through the fewest
    boxes, then runs along or crosses the fewest wires, then is
    shortest."""
    wires = list(wires)
    ys = sorted({round(b.y, 6) for b in boxes.values()})
    lanes = [(a + b) / 2 for a, b in pairwise(ys)]
    xs = sorted({round(b.x, 6) for b in boxes.values()})
    columns = [(a + b) / 2 for a, b in pairwise(xs)]
    for i, wire in enumerate(wires):
        if wire.memory or wire.source not in boxes or \
                wire.target not in boxes or \
                not _hits(wire, boxes):
            continue
        src, dst = boxes[wire.source], boxes[wire.target]
        # a wire that starts on a line (a branch) keeps its start
        on_line = _outside(wire.points[0], src) and not \
            _on_outline(wire.points[0], src)
        start = wire.points[0] if on_line else (src.x, src.y)
        (sx, sy), (dx, dy) = start, (dst.x, dst.y)
        shapes = [[(sx, sy), (dx, sy), (dx, dy)],
                  [(sx, sy), (sx, dy), (dx, dy)]]
        shapes += [[(sx, sy), (sx, ly), (dx, ly), (dx, dy)] for ly in lanes]
        shapes += [[(sx, sy), (lx, sy), (lx, dy), (dx, dy)]
                   for lx in columns]
        shapes += [[(sx, sy), (lx, sy), (lx, ly), (dx, ly), (dx, dy)]
                   for lx in columns for ly in lanes]
        others = wires[:i] + wires[i + 1:]
        best = None
        for shape in shapes:
            candidate = _clipped(Wire(wire.source, wire.target,
                                      tuple(shape), wire.label, wire.memory,
                                      wire.arrow),
                                 None if on_line else src, dst)
            if len(candidate.points) < 2:
                continue
            score = (_hits(candidate, boxes),
                     sum(3 * _wires_overlap(candidate, o) or
                         _wires_cross(candidate, o) for o in others),
                     _length(candidate.points))
            if best is None or score < best[0]:
                best = (score, candidate)
        if best is not None:
            wires[i] = best[1]
    return wires


def _on_outline(point, box: Box) -> bool:
    left, bottom, right, top = box.extent
    x, y = point
    if box.circle:
        r = ((x - box.x) ** 2 + (y - box.y) ** 2) ** 0.5
        return abs(r - box.width / 2) < 1e-6
    return (left - 1e-6 <= x <= right + 1e-6 and
            bottom - 1e-6 <= y <= top + 1e-6)


def _outside(point, box: Box) -> bool:
    left, bottom, right, top = box.extent
    x, y = point
    return not (left + 1e-6 < x < right - 1e-6 and
                bottom + 1e-6 < y < top - 1e-6)


def _hits(wire: Wire, boxes: dict[int, Box]) -> int:
    """How many boxes, other than its ends, a wire passes through."""
    count = 0
    for key, box in boxes.items():
        if key in (wire.source, wire.target) or box.kind == "bus":
            continue
        if any(_segment_hits_rect(p, q, box.extent, margin=-0.02)
               for p, q in pairwise(wire.points)):
            count += 1
    return count


def _length(points) -> float:
    return sum(abs(q[0] - p[0]) + abs(q[1] - p[1])
               for p, q in pairwise(points))


def _wires_cross(a: Wire, b: Wire) -> bool:
    """Whether two wires cross: wires from one source may share a stretch,
    and wires that meet at a box may touch at their ends."""
    if a.source == b.source:
        return False
    pa, pb = list(a.points), list(b.points)
    if {a.source, a.target} & {b.source, b.target}:
        pa, pb = _trimmed(pa), _trimmed(pb)
    return any(segments_cross(p, q, r, t) for p, q in pairwise(pa)
               for r, t in pairwise(pb))


def _wires_overlap(a: Wire, b: Wire) -> bool:
    """Whether two wires from different sources run along each other."""
    if a.source == b.source:
        return False
    for p, q in pairwise(a.points):
        for r, t in pairwise(b.points):
            if _collinear_overlap(p, q, r, t):
                return True
    return False


def _collinear_overlap(p, q, r, t) -> bool:
    """Whether two axis-parallel segments share a stretch of positive
    length."""
    if abs(p[0] - q[0]) < 1e-9 and abs(r[0] - t[0]) < 1e-9 and \
            abs(p[0] - r[0]) < 1e-9:
        lo = max(min(p[1], q[1]), min(r[1], t[1]))
        hi = min(max(p[1], q[1]), max(r[1], t[1]))
        return hi - lo > 1e-6
    if abs(p[1] - q[1]) < 1e-9 and abs(r[1] - t[1]) < 1e-9 and \
            abs(p[1] - r[1]) < 1e-9:
        lo = max(min(p[0], q[0]), min(r[0], t[0]))
        hi = min(max(p[0], q[0]), max(r[0], t[0]))
        return hi - lo > 1e-6
    return False


def _trimmed(points, eps=1e-3):
    """The polyline without a tiny piece at either end."""
    def towards(a, b):
        dx, dy = b[0] - a[0], b[1] - a[1]
        length = (dx * dx + dy * dy) ** 0.5 or 1.0
        return (a[0] + dx / length * eps, a[1] + dy / length * eps)
    points = list(points)
    points[0] = towards(points[0], points[1])
    points[-1] = towards(points[-1], points[-2])
    return points


def wire_crossings(layout) -> list[tuple[Wire, Wire]]:
    """The pairs of wires of a layout that cross (see :func:`_wires_cross`:
    wires from one source may overlap, wires meeting at a box may touch
    there)."""
    wires = layout.wires
    return [(a, b) for i, a in enumerate(wires) for b in wires[i + 1:]
            if _wires_cross(a, b)]


def wires_through_boxes(layout) -> list[tuple[Wire, Box]]:
    """The (wire, box) pairs where a wire passes through a box that is
    neither its source nor its target."""
    found = []
    for wire in layout.wires:
        for key, box in layout.boxes.items():
            if key in (wire.source, wire.target) or box.kind == "bus":
                continue
            if any(_segment_hits_rect(p, q, box.extent, margin=-0.02)
                   for p, q in pairwise(wire.points)):
                found.append((wire, box))
    return found


def _clipped(wire: Wire, source: Box | None, target: Box | None) -> Wire:
    """The wire cut where it leaves its source's outline and where it
    reaches its target's; collinear points merged."""
    pts = _simplify(list(wire.points))
    if source is not None and len(pts) >= 2:
        pts[0] = _exit_point(source, pts[0], pts[1])
    if target is not None and len(pts) >= 2:
        pts[-1] = _exit_point(target, pts[-1], pts[-2])
    return Wire(wire.source, wire.target, tuple(pts), wire.label,
                wire.memory, wire.arrow)


def _simplify(pts):
    out = []
    for p in pts:
        if out and abs(p[0] - out[-1][0]) < 1e-9 and \
                abs(p[1] - out[-1][1]) < 1e-9:
            continue
        out.append(p)
    merged = out[:1]
    for p in out[1:]:
        if len(merged) >= 2:
            (ax, ay), (bx, by) = merged[-2], merged[-1]
            if (abs(ax - bx) < 1e-9 and abs(bx - p[0]) < 1e-9) or \
                    (abs(ay - by) < 1e-9 and abs(by - p[1]) < 1e-9):
                merged[-1] = p
                continue
        merged.append(p)
    return merged


def _exit_point(box: Box, inside, towards):
    """Where the axis-parallel segment from ``inside`` (the box's centre,
    or a point on its axis) towards ``towards`` leaves the box's outline
    (a circle's, if the segment starts at its centre)."""
    (x0, y0), (x1, y1) = inside, towards
    horizontal = abs(x1 - x0) >= abs(y1 - y0)
    if box.circle and abs(x0 - box.x) < 1e-9 and abs(y0 - box.y) < 1e-9:
        r = box.width / 2
        if horizontal:
            return (x0 + (r if x1 > x0 else -r), y0)
        return (x0, y0 + (r if y1 > y0 else -r))
    left, bottom, right, top = box.extent
    if horizontal:
        return (right if x1 > x0 else left, y0)
    return (x0, top if y1 > y0 else bottom)


def _junctions(wires) -> list[tuple[float, float]]:
    """The points where two wires from one source part."""
    by_source: dict[int, list[Wire]] = {}
    for w in wires:
        by_source.setdefault(w.source, []).append(w)
    points = set()
    for group in by_source.values():
        for a, b in ((a, b) for i, a in enumerate(group)
                     for b in group[i + 1:]):
            p = _parting(a.points, b.points)
            if p is not None:
                points.add((round(p[0], 9), round(p[1], 9)))
    return sorted(points)


def _parting(a, b):
    """Where two polylines that start at one point part, if they share
    a first stretch; else None."""
    if a[0] != b[0]:
        return None
    ia = ib = 0
    pa, pb = a[0], b[0]
    shared = False
    while ia < len(a) - 1 and ib < len(b) - 1:
        da = _direction(pa, a[ia + 1])
        db = _direction(pb, b[ib + 1])
        if da != db:
            break
        la = abs(a[ia + 1][0] - pa[0]) + abs(a[ia + 1][1] - pa[1])
        lb = abs(b[ib + 1][0] - pb[0]) + abs(b[ib + 1][1] - pb[1])
        step = min(la, lb)
        pa = (pa[0] + da[0] * step, pa[1] + da[1] * step)
        pb = pa
        shared = True
        if la - step < 1e-9:
            ia += 1
            pa = a[ia]
        if lb - step < 1e-9:
            ib += 1
            pb = b[ib]
        if pa != pb:
            break
    return pa if shared else None


def _direction(p, q):
    dx, dy = q[0] - p[0], q[1] - p[1]
    return ((dx > 1e-9) - (dx < -1e-9), (dy > 1e-9) - (dy < -1e-9))


# -- labels beside wires ------------------------------------------------------
def _place_labels(boxes, wires, d) -> list[Label]:
    """A gate's name (``f_t``) beside the first wire leaving it, and each
    wire label beside the end of its wire; the first spot that covers no
    box, no other label and no other wire."""
    placed: list[Label] = []
    taken = [b.extent for b in boxes.values() if b.kind != "bus"]

    def free(ext, wire):
        for other in taken + [lab.extent for lab in placed]:
            if _overlap(ext, other, 0.08):
                return False
        for w in wires:
            if w is wire:
                continue
            for p, q in pairwise(w.points):
                if _segment_hits_rect(p, q, ext):
                    return False
        return True

    def put(text, wire, owner, gate, spots):
        w, h = label_size(text, LABEL_SCALE)
        w, h = w + 0.15, h + 0.1
        for (x, y) in spots(w, h):
            lab = Label(text, x, y, w, h, owner, gate)
            if free(lab.extent, wire):
                placed.append(lab)
                return
        x, y = spots(w, h)[0]
        placed.append(Label(text, x, y, w, h, owner, gate))

    for k, box in boxes.items():
        if box.role != "gate":
            continue
        out = [w for w in wires if w.source == k]
        if not out:
            continue
        wire = out[0]
        put(f"{box.gate}_t", wire, k, box.gate,
            lambda w, h, wire=wire: _spots_near_start(wire, w, h))
    for wire in wires:
        if wire.label:
            put(wire.label, wire, wire.source, "",
                lambda w, h, wire=wire: _spots_near_end(wire, w, h))
    return placed


def _spots_near_start(wire, w, h):
    (x0, y0), (x1, y1) = wire.points[0], wire.points[1]
    spots = []
    if abs(x0 - x1) < 1e-9:                       # leaves vertically
        sign = 1 if y1 > y0 else -1
        for t in (0.5, 0.35, 0.65):
            ym = y0 + (y1 - y0) * t
            spots += [(x0 + 0.2 + w / 2, ym), (x0 - 0.2 - w / 2, ym)]
        spots += [(x0 + 0.2 + w / 2, y0 + sign * (h / 2 + 0.1))]
    else:
        for t in (0.5, 0.3, 0.7):
            xm = x0 + (x1 - x0) * t
            spots += [(xm, y0 + 0.15 + h / 2), (xm, y0 - 0.15 - h / 2)]
    if len(wire.points) > 2:
        (x1, y1), (x2, y2) = wire.points[1], wire.points[2]
        xm, ym = (x1 + x2) / 2, (y1 + y2) / 2
        spots += [(xm, ym + 0.15 + h / 2), (xm + 0.2 + w / 2, ym)]
    return spots


def _spots_near_end(wire, w, h):
    (x0, y0), (x1, y1) = wire.points[-2], wire.points[-1]
    spots = []
    if abs(x0 - x1) < 1e-9:                       # arrives vertically
        for t in (0.55, 0.4, 0.7, 0.25):
            ym = y1 + (y0 - y1) * t
            spots += [(x1 + 0.2 + w / 2, ym), (x1 - 0.2 - w / 2, ym)]
    else:
        for t in (0.5, 0.3, 0.7):
            xm = x1 + (x0 - x1) * t
            spots += [(xm, y1 + 0.15 + h / 2), (xm, y1 - 0.15 - h / 2)]
    return spots


def _overlap(a, b, margin=0.0) -> bool:
    return (a[0] < b[2] + margin and b[0] < a[2] + margin
            and a[1] < b[3] + margin and b[1] < a[3] + margin)


def _segment_hits_rect(p, q, ext, margin=0.05) -> bool:
    """Whether an axis-parallel (or any) segment meets a rectangle."""
    left, bottom, right, top = ext
    left, bottom, right, top = (left - margin, bottom - margin,
                                right + margin, top + margin)
    (x0, y0), (x1, y1) = p, q
    steps = 24
    for i in range(steps + 1):
        t = i / steps
        x, y = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
        if left < x < right and bottom < y < top:
            return True
    return False


def segments_cross(p1, p2, q1, q2) -> bool:
    """Whether the segments p1–p2 and q1–q2 share a point (touching and
    overlapping count).

    >>> segments_cross((0, 0), (2, 0), (1, -1), (1, 1))
    True
    >>> segments_cross((0, 0), (2, 0), (3, -1), (3, 1))
    False
    """
    def orient(a, b, c):
        v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return 0 if abs(v) < 1e-9 else (1 if v > 0 else -1)

    def on(a, b, c):
        return (min(a[0], b[0]) - 1e-9 <= c[0] <= max(a[0], b[0]) + 1e-9
                and min(a[1], b[1]) - 1e-9 <= c[1] <= max(a[1], b[1]) + 1e-9)

    o1, o2 = orient(p1, p2, q1), orient(p1, p2, q2)
    o3, o4 = orient(q1, q2, p1), orient(q1, q2, p2)
    if o1 != o2 and o3 != o4:
        return True
    return ((o1 == 0 and on(p1, p2, q1)) or (o2 == 0 and on(p1, p2, q2))
            or (o3 == 0 and on(q1, q2, p1)) or (o4 == 0 and on(q1, q2, p2)))


# -- the memory line over several steps ---------------------------------------
@dataclass(frozen=True)
class UnrolledLayout:
    """The memory line of ``steps`` steps: boxes (the states ``c_0 …``,
    one ``⊙`` and one ``+`` per step on the line, and per step a faded
    box for the rest of the step), wires and labels, in ems."""

    boxes: tuple[Box, ...]
    wires: tuple[Wire, ...]
    labels: tuple[Label, ...]

    @property
    def extent(self):
        xs, ys = [], []
        for item in list(self.boxes) + list(self.labels):
            left, bottom, right, top = item.extent
            xs += [left, right]
            ys += [bottom, top]
        for wire in self.wires:
            xs += [x for x, _ in wire.points]
            ys += [y for _, y in wire.points]
        return min(xs), min(ys), max(xs), max(ys)


def unrolled_layout(steps: int = 3, *, state: str = "c",
                    kept: str = "f_{t}", written: str = r"i_{t} \odot "
                    r"\tilde{c}_{t}", rest: str = r"i_{t}, f_{t}, "
                    r"\tilde{c}_{t}, o_{t}", output: str = "h",
                    last: str = "T", backward: bool = True) -> UnrolledLayout:
    r"""The memory line over ``steps`` steps, ``state_0`` to
    ``state_T``: per step a ``⊙`` (by ``kept``) and a ``+`` (of
    ``written``) on one straight line, and below it, faded, the rest of
    the step: a box labelled ``rest`` that reads ``output_{t-1}`` and
    ``x_t`` and gives ``output_t``, which also reads the new memory. The
    labels are TeX with ``{t}`` for the step; with ``last`` (e.g. ``"T"``)
    the steps are numbered ``1, 2, …`` and the last one ``last``, after a
    gap of dots. With ``backward``, a dashed arrow runs back along the
    line, labelled at every step with the factor an error picks up there
    (``⊙ kept``).

    >>> layout = unrolled_layout(3)
    >>> [b.label for b in layout.boxes if b.role == "memory"][:4]
    ['c_{0}', '\\odot', '+', 'c_{1}']
    >>> [b.label for b in layout.boxes if b.role == "memory"][-4:]
    ['c_{T-1}', '\\odot', '+', 'c_{T}']
    """
    names = [str(k) for k in range(1, steps + 1)]
    gap_before_last = bool(last) and steps >= 2
    if gap_before_last:
        names[-1] = last

    def sub(text, t):
        return text.replace("{t}", "{" + t + "}")

    def before(t):
        return str(int(t) - 1) if t.isdigit() else f"{t}-1"

    boxes: list[Box] = []
    wires: list[Wire] = []
    labels: list[Label] = []

    def box(kind, label, x, y, role, pad=BOX_PAD):
        w, h = label_size(label)
        if kind == "pointwise":
            w = h = max(w, h) + 0.44
        elif kind in ("input", "output", "text"):
            w, h = w + 2 * TERMINAL_PAD, max(h, 0.75) + 2 * TERMINAL_PAD
        else:
            w, h = w + 2 * pad, max(h, 0.75) + 2 * pad
        b = Box(len(boxes), kind, label, x, y, w, h, role)
        boxes.append(b)
        return b

    def text_width(text, scale=1.0):
        return label_size(text, scale)[0] + 2 * TERMINAL_PAD

    def label(text, x, y, owner, gate=""):
        w, h = label_size(text, UNROLLED_LABEL_SCALE)
        labels.append(Label(text, x, y, w + 0.15, h + 0.1, owner, gate))

    def wire(a, b, pts, memory=False, arrow=True):
        wires.append(_clipped(Wire(a.key, b.key, tuple(pts), "", memory,
                                   arrow), a, b))

    y_rest = -4.4                 # the faded rest of every step
    y_x = y_rest - 2.4            # the inputs x_t
    gap = 0.9
    c_prev = box("input", f"{state}_{{{before(names[0])}}}", 0.0, 0.0,
                 "memory")
    c_prev = _moved(boxes, c_prev, c_prev.width / 2)
    h_prev = None
    h_label = f"{output}_{{{before(names[0])}}}"
    for n, t in enumerate(names):
        if n == len(names) - 1 and gap_before_last:
            dots = box("text", r"\cdots", c_prev.extent[2] + gap + 0.8, 0.0,
                       "gap")
            wire(c_prev, dots, [(c_prev.x, 0.0), (dots.x, 0.0)],
                 memory=True, arrow=False)
            name = f"{state}_{{{before(t)}}}"
            c_prev = box("input", name, dots.extent[2] + gap
                         + text_width(name) / 2, 0.0, "memory")
            wire(dots, c_prev, [(dots.x, 0.0), (c_prev.x, 0.0)],
                 memory=True, arrow=False)
            if h_prev is not None:
                h_dots = box("text", r"\cdots", dots.x, y_rest, "faded")
                wire(h_prev, h_dots, [(h_prev.x, y_rest), (h_dots.x, y_rest)],
                     arrow=False)
            h_prev = None
            h_label = f"{output}_{{{before(t)}}}"
        kept_t, written_t = sub(kept, t), sub(written, t)
        rest_w = text_width(sub(rest, t)) + 2 * BOX_PAD
        span = max(3.0, rest_w - 1.6, label_size(kept_t, UNROLLED_LABEL_SCALE)[0]
                   + 1.2)
        x_times = c_prev.extent[2] + gap + 0.8
        if h_prev is None:                 # room for h_{t-1} on the left
            x_times = max(x_times, c_prev.extent[2] + text_width(h_label)
                          + 2.0)
        times = box("pointwise", r"\odot", x_times, 0.0, "memory")
        plus = box("pointwise", "+", times.x + span, 0.0, "memory")
        rest_box = box("other", sub(rest, t), (times.x + plus.x) / 2,
                       y_rest, "faded")
        wire(c_prev, times, [(c_prev.x, 0.0), (times.x, 0.0)], memory=True)
        wire(times, plus, [(times.x, 0.0), (plus.x, 0.0)], memory=True)
        wire(rest_box, times, [(times.x, y_rest), (times.x, 0.0)])
        wire(rest_box, plus, [(plus.x, y_rest), (plus.x, 0.0)])
        w_kept = label_size(kept_t, UNROLLED_LABEL_SCALE)[0]
        w_written = label_size(written_t, UNROLLED_LABEL_SCALE)[0]
        label(kept_t, times.x + 0.3 + w_kept / 2, -1.5, times.key, "kept")
        label(written_t, plus.x + 0.3 + w_written / 2, -1.5, plus.key,
              "written")
        name = f"{state}_{{{t}}}"
        x_new = max(plus.extent[2] + gap, plus.x + 0.3 + w_written + 0.5,
                    rest_box.extent[2] + 0.8) + text_width(name) / 2
        c_new = box("input", name, x_new, 0.0, "memory")
        wire(plus, c_new, [(plus.x, 0.0), (c_new.x, 0.0)], memory=True)
        h_new = box("input", f"{output}_{{{t}}}", c_new.x, y_rest, "faded")
        wire(c_new, h_new, [(c_new.x, 0.0), (c_new.x, y_rest)])
        wire(rest_box, h_new, [(rest_box.x, y_rest), (h_new.x, y_rest)])
        if h_prev is None:
            h_prev = box("input", h_label, rest_box.extent[0] - 0.9
                         - text_width(h_label) / 2, y_rest, "faded")
        wire(h_prev, rest_box, [(h_prev.x, y_rest), (rest_box.x, y_rest)])
        x_in = box("input", f"x_{{{t}}}", rest_box.x, y_x, "faded")
        wire(x_in, rest_box, [(x_in.x, y_x), (rest_box.x, y_rest)])
        if backward:
            label(rf"\odot\, {kept_t}", times.x, 1.85, times.key, "backward")
        c_prev, h_prev = c_new, h_new
    if backward:                    # the error, back along the line
        first, final = boxes[0], c_prev
        wires.append(Wire(final.key, first.key,
                          ((final.extent[2], 1.0), (first.extent[0], 1.0)),
                          "backward"))
    return UnrolledLayout(tuple(boxes), tuple(wires), tuple(labels))


def _moved(boxes: list[Box], box: Box, x: float) -> Box:
    """``box`` moved to ``x``, also in ``boxes``."""
    moved = Box(box.key, box.kind, box.label, x, box.y, box.width,
                box.height, box.role, box.gate)
    boxes[boxes.index(box)] = moved
    return moved


# -- the generic layered layout (graphs without a state) -----------------------

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
