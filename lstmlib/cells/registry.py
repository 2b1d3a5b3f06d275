"""The registry of the cells of Parts I and II, in the order the book
derives them: one entry per cell, with its name, its class, the chapter
that introduces it and how to build it with its default arguments.

Everything that means "every cell" derives its list from here: the
summary table (:data:`lstmlib.display.summary.CELLS`, which adds each
cell's shown equations, parameter count and bounds), the long-range
sweeps (:data:`lstmlib.experiments.long_range.LAG_CELLS`) and the tests
(``tests/test_cell_contract.py`` checks the :class:`~lstmlib.Cell`
contract for every entry). Adding a cell to the book means adding its
entry to :data:`REGISTERED_CELLS`; the tests then ask for its summary row.

>>> [cell.name for cell in REGISTERED_CELLS][:3]
['vanilla RNN', 'additive cell', 'prototype LSTM']
>>> registered_cell("GRU").build(3, 5)
GRUCell(input_size=3, state_size=5, reset='before')
>>> registered_cell("LSTM")                      # doctest: +ELLIPSIS
Traceback (most recent call last):
ValueError: registered_cell: expected one of ['vanilla RNN', ...], got 'LSTM'
"""
from __future__ import annotations

from dataclasses import dataclass

from .additive import AdditiveCell
from .gru import GRUCell
from .lstm import BasicLSTMCell, PeepholeLSTMCell, PseudoLSTMCell
from .prototype import NormalizedPrototypeLSTMCell, PrototypeLSTMCell
from .recurrent import Cell
from .vanilla import VanillaRNNCell

__all__ = ["REGISTERED_CELLS", "RegisteredCell", "registered_cell"]


@dataclass(frozen=True)
class RegisteredCell:
    """One cell of the book.

    Attributes:
        name: the book's name for it, e.g. ``"basic LSTM"``.
        cell_class: its class, a :class:`~lstmlib.Cell` subclass.
        chapter: the notebook (document name in ``book/``) that
            introduces it.
    """
    name: str
    cell_class: type[Cell]
    chapter: str

    def build(self, input_size: int, state_size: int, **keywords) -> Cell:
        """A new cell with m = ``input_size`` and n = ``state_size``, its
        other arguments at their defaults unless ``keywords`` set them."""
        return self.cell_class(input_size, state_size, **keywords)


#: The cells of Parts I and II, in the order the book derives them.
REGISTERED_CELLS: tuple[RegisteredCell, ...] = (
    RegisteredCell("vanilla RNN", VanillaRNNCell, "vanilla_rnn"),
    RegisteredCell("additive cell", AdditiveCell, "written_memories"),
    RegisteredCell("prototype LSTM", PrototypeLSTMCell, "prototype_lstm"),
    RegisteredCell("normalized prototype", NormalizedPrototypeLSTMCell,
                   "working_models"),
    RegisteredCell("GRU", GRUCell, "working_models"),
    RegisteredCell("pseudo LSTM", PseudoLSTMCell, "working_models"),
    RegisteredCell("basic LSTM", BasicLSTMCell, "deriving_lstm"),
    RegisteredCell("peephole LSTM", PeepholeLSTMCell, "peepholes"),
)


def registered_cell(name: str) -> RegisteredCell:
    """The entry of :data:`REGISTERED_CELLS` called ``name``;
    ``ValueError`` listing the known names for any other."""
    for cell in REGISTERED_CELLS:
        if cell.name == name:
            return cell
    known = [cell.name for cell in REGISTERED_CELLS]
    raise ValueError(f"registered_cell: expected one of {known}, "
                     f"got {name!r}")
