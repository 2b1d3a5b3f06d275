"""The command lines of the long experiments (run with ``python -m``).

* ``python -m lstmlib.commands.long_range``: the long-range sweeps
* ``python -m lstmlib.commands.long_range_grid``: the long-range grid
  (learning rate selected per cell, then five seeds a lag; resumable)
* ``python -m lstmlib.commands.gated_versus_vanilla``: Part II's closing
  test, gated cells against the orthogonal vanilla RNN over seed ensembles
* ``python -m lstmlib.commands.ptb``: the full-scale Penn Treebank runs
* ``python -m lstmlib.commands.char_lm``: the full-scale character-level
  LSTM and its gate report

Each parses its arguments (``--help`` lists them, each with its default;
:mod:`lstmlib.commands.arguments` checks their values, so a bad one stops
the command at once with one line naming the option), runs an experiment
of :mod:`lstmlib.experiments` and writes JSON records with their
provenance (:mod:`lstmlib.records`), printing a line as each epoch or run
ends. The library does not import this package.
"""
