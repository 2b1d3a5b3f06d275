"""Networks built from layers and cells (Part IV).

* :mod:`.depth`: plain, highway and residual layers, deep networks built
  from them and their Jacobians through depth
* :mod:`.ntm`: a compact neural Turing machine and an LSTM baseline
"""
