"""Data-flow diagrams of recurrent cells, traced from the cell's own code.

``draw_dataflow(cell)`` draws one step of ``cell`` in three stages, one
module each:

* :mod:`.tracing`: :func:`dataflow` runs the step on small tensors,
  records every torch operation and simplifies the record into a
  :class:`DataFlowGraph` (:mod:`.graph`) of boxes and arrows;
* :mod:`.layout`: :func:`~.layout.layered_layout` places the boxes in
  columns, left to right, with few crossing arrows;
* :mod:`.drawing`: :func:`draw_dataflow` draws the boxes and arrows with
  matplotlib.

Change the cell's code and the diagram changes with it.
"""

from .drawing import draw_dataflow
from .graph import DataFlowGraph, Edge, Node
from .tracing import dataflow, math_symbol

__all__ = ["DataFlowGraph", "Edge", "Node", "dataflow", "draw_dataflow",
           "math_symbol"]
