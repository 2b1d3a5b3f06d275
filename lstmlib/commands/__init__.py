"""The command lines of the long experiments (run with ``python -m``).

* ``python -m lstmlib.commands.long_range``: the long-range sweeps
* ``python -m lstmlib.commands.ptb``: the full-scale Penn Treebank runs

Each parses its arguments (``--help`` lists them), runs an experiment of
:mod:`lstmlib.experiments` and writes JSON records with their provenance
(:mod:`lstmlib.records`). The library does not import this package.
"""
