"""Diagrams of recurrent cells, traced from the cell's own code.

``draw_dataflow(cell)`` draws one step of ``cell`` in three stages, one
module each:

* :mod:`.tracing`: :func:`dataflow` runs the step on small tensors,
  records every torch operation and simplifies the record into a
  :class:`DataFlowGraph` (:mod:`.graph`) of boxes and arrows;
* :mod:`.layout`: :func:`~.layout.cell_layout` places the boxes in the
  one layout every cell of the book shares: the memory line straight
  across the top, the gates in a row below it, the inputs entering from
  the bottom left;
* :mod:`.drawing`: :func:`draw_dataflow` draws it with matplotlib,
  optionally with one gate highlighted.

:func:`draw_unrolled_memory` draws the memory line of several steps, the
LSTM's constant-error path. Change the cell's code and the diagrams change
with it.
"""

from .drawing import draw_dataflow, draw_unrolled_memory, rendered_points
from .graph import DataFlowGraph, Edge, Node
from .layout import CellLayout, cell_layout, unrolled_layout
from .tracing import dataflow, math_symbol

__all__ = ["CellLayout", "DataFlowGraph", "Edge", "Node", "cell_layout",
           "dataflow", "draw_dataflow", "draw_unrolled_memory",
           "math_symbol", "rendered_points", "unrolled_layout"]
