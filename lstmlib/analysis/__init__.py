"""What the book measures and derives about cells (Parts I and II).

* :mod:`.morphing`: whether a stored vector is still in a fixed-weight
  cell's state (refitted read-out) and still in place (fixed read-out)
* :mod:`.sensitivity`: exact Jacobians of states with respect to earlier
  states, and the bounds that govern their norms
* :mod:`.initialization`: recurrent-weight initialisers and their scales
* :mod:`.bptt`: backpropagation through time, truncated BPTT and RTRL for
  the vanilla cell, by hand
* :mod:`.selectivity`: the prototype's step with its gates as inputs
* :mod:`.drift`: state size and gate saturation along a trajectory and
  during training
* :mod:`.lstm_backward`: the basic LSTM's backward pass by hand
* :mod:`.step_contributions`: the gradient of the shared input weights,
  split into one term per step
* :mod:`.gate_statistics`: what trained gates and units do on text
  (correlations with signals of the text, saturation, time constants)
"""
