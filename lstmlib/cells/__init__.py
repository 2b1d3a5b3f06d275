"""The recurrent cells, each written like its equations (Parts I and II).

* :mod:`.recurrent`: the :class:`Cell` contract, :class:`Recurrent` (a cell
  unrolled over a sequence) and :func:`unroll`, the step-by-step loop
* :mod:`.activations`: the activation functions φ and σ with their
  derivatives and largest slopes, in one table
* :mod:`.vanilla`, :mod:`.additive`, :mod:`.prototype`, :mod:`.gru`,
  :mod:`.lstm`: the cells of the derivation, vanilla RNN to peephole LSTM
* :mod:`.registry`: every cell the sweeps, the summary and the tests
  derive their lists from
* :mod:`.kernels`: whole-sequence kernels with hand-derived backward
  passes, the fast path the basic LSTM, the GRU and the vanilla RNN choose
  in ``forward_sequence``; tensors in, tensors out, no cell imported
* :mod:`.torch_interop`: reading and writing PyTorch's recurrent modules
  for the cells' ``from_torch`` and ``to_torch``
"""
