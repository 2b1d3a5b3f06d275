"""lstmlib: the companion library of the book *Written Memories, Executed*.

Its modules follow the book's parts:

* :mod:`lstmlib.recurrent` — the Cell contract and :class:`Recurrent` (Chapter 1)
* :mod:`lstmlib.vanilla` — :class:`VanillaRNNCell` (Chapter 2)
* :mod:`lstmlib.tasks` — synthetic sequence tasks used by the experiments
* :mod:`lstmlib.training` — small, seeded training loops
* :mod:`lstmlib.source`, :mod:`lstmlib.versions` — showing the library's own
  source in a chapter, and the versions a result was produced with
"""

__version__ = "0.1.0"

from .recurrent import Cell, Recurrent, State
from .vanilla import NONLINEARITIES, VanillaRNNCell
from .tasks import DELAYED_RECALL_BASELINE_MSE, delayed_recall
from .training import FinalStateRegressor, train_regression
from .source import show_source
from .versions import show_versions, versions

__all__ = [
    "__version__",
    "Cell",
    "Recurrent",
    "State",
    "VanillaRNNCell",
    "NONLINEARITIES",
    "delayed_recall",
    "DELAYED_RECALL_BASELINE_MSE",
    "FinalStateRegressor",
    "train_regression",
    "show_source",
    "show_versions",
    "versions",
]
