"""Data, tasks, training loops and the experiments of Part III.

* :mod:`.data`: Penn Treebank and Tiny Shakespeare (download, checksum,
  offline copies) and batching for truncated BPTT
* :mod:`.tasks`: the synthetic sequence tasks and their chance baselines
* :mod:`.training`: small, seeded training loops for the synthetic tasks
* :mod:`.streams`: a continual marked-recall stream and truncated BPTT
  with the state carried across windows
* :mod:`.ensembles`: K seeds of one small model trained at once, equal to
  K separate runs
* :mod:`.seed_statistics`: median and spread, success rates with their
  intervals and paired comparisons over seeds (``scipy.stats``)
* :mod:`.long_range`: which cells solve the long-range tasks as the lag
  grows
* :mod:`.long_range_grid`: the same question with a fixed protocol: a
  learning rate chosen per cell on validation sequences, then five seeds
  per lag, success as each task's paper defines it
* :mod:`.language_model`: word-level language models and their stateful
  truncated-BPTT trainer
* :mod:`.ptb`: the full-scale Penn Treebank experiments
* :mod:`.char_lm`: character-level LSTMs on Tiny Shakespeare and the
  report of what their gates do

The command lines that run the long experiments are in
:mod:`lstmlib.commands`.
"""
