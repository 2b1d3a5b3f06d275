"""lstmlib: the companion library of the book *Deriving the LSTM*.

Its modules follow the book's parts:

* :mod:`lstmlib.recurrent`: the Cell contract and :class:`Recurrent`
  (Chapter 1)
* :mod:`lstmlib.vanilla`: :class:`VanillaRNNCell` (Chapter 2)
* :mod:`lstmlib.sensitivity`: exact Jacobian norms and the bounds that
  govern them (Chapter 3)
* :mod:`lstmlib.initialization`: recurrent-weight initializers (Chapter 4)
* :mod:`lstmlib.bptt`: BPTT, truncated BPTT and RTRL for the vanilla cell,
  by hand (Chapter 5)
* :mod:`lstmlib.additive`: :class:`AdditiveCell`, writing without control
  (Chapter 6)
* :mod:`lstmlib.selectivity`: the prototype's step with its gates as
  inputs, and its Jacobians by the gates (Chapter 7)
* :mod:`lstmlib.prototype`, :mod:`lstmlib.gru`: the prototype LSTM, its
  normalized form and the GRU
* :mod:`lstmlib.drift`: measuring internal state drift (state size and
  gate saturation) along a trajectory and during training (Chapter 9)
* :mod:`lstmlib.lstm`, :mod:`lstmlib.lstm_backward`: the pseudo LSTM, the
  eight variants between it and the basic LSTM, the basic and peephole
  LSTMs, and the basic LSTM's backward pass by hand
* :mod:`lstmlib.diagrams`: data-flow diagrams of cells, traced from their
  code
* :mod:`lstmlib.tasks`: synthetic sequence tasks used by the experiments
* :mod:`lstmlib.data`: Penn Treebank and Tiny Shakespeare (download,
  checksum, offline copies), batching for truncated BPTT
* :mod:`lstmlib.training`: small, seeded training loops for the synthetic
  tasks
* :mod:`lstmlib.long_range`: which cells solve the long-range tasks, as lag
  grows (Part III)
* :mod:`lstmlib.language_model`, :mod:`lstmlib.experiments`: language
  models, their stateful truncated-BPTT trainer and result records; the
  full-scale Penn Treebank experiments as commands (Part III)
* :mod:`lstmlib.depth`: plain, highway and residual layers, deep networks
  built from them, and their Jacobians through depth (Part IV)
* :mod:`lstmlib.ntm`: a compact neural Turing machine (Part IV)
* :mod:`lstmlib.fused`: the fast path of :class:`Recurrent` for the cells
  with a PyTorch counterpart (hand-derived backward passes), on by
  default; ``Recurrent(cell, fused=False)`` keeps the plain loop
* :mod:`lstmlib.summary`: every cell side by side, generated from the
  cells themselves (the closing chapter)
* :mod:`lstmlib.torch_modules`: reading PyTorch's recurrent modules for the
  cells' ``from_torch``
* :mod:`lstmlib.ensembles`: K seeds of one small model trained at once
  (stacked weights, one batched product per step), equal to K separate
  runs
* :mod:`lstmlib.seeds`: the one seed knob (``LSTMLIB_SEED``) that moves
  every seed the chapters and lstmlib's defaults set
* :mod:`lstmlib.seed_statistics`: what the chapters assert about seed
  ensembles (median and spread, success rate with its interval, paired
  comparison), computed with ``scipy.stats``
* :mod:`lstmlib.source`, :mod:`lstmlib.versions`: showing the library's own
  source in a chapter, and the versions a result was produced with
"""
__version__ = "0.1.0"

from .recurrent import (Cell, Recurrent, State, check_finite_real,
                        check_positive_int)
from .vanilla import NONLINEARITIES, VanillaRNNCell
from .sensitivity import (MAX_SLOPE, SensitivityBounds, activation_slope,
                          directional_derivative_norms, finite_change_bound,
                          finite_change_norms, jacobian_norms,
                          largest_slope_between, sensitivity_bounds,
                          state_from_vector, state_vector, step_jacobians,
                          vanilla_preactivations)
from .initialization import (initialize_recurrent_, orthogonal_,
                             unit_column_normal_, unit_column_normal_std,
                             unit_column_uniform_, unit_column_uniform_bound,
                             xavier_uniform_, xavier_uniform_bound)
from .bptt import (VanillaGradients, activation_derivative,
                   autograd_graph_size, online_bptt_gradient_errors,
                   truncated_bptt, vanilla_bptt, vanilla_rtrl,
                   vanilla_states)
from .additive import AdditiveCell
from .prototype import NormalizedPrototypeLSTMCell, PrototypeLSTMCell
from .selectivity import (GateJacobians, GateValues, gate_jacobians,
                          prototype_gates, prototype_update)
from .gru import RESET_PLACEMENTS, GRUCell
from .drift import (DriftLog, GateTrajectory, gate_trajectory,
                    saturated_fraction, train_ensemble_logging_drift,
                    train_regression_logging_drift)
from .lstm import (LSTM_VARIANTS, PEEPHOLES, BasicLSTMCell, LSTMVariantCell,
                   PeepholeLSTMCell, PseudoLSTMCell)
from .lstm_backward import LSTMGradients, LSTMStates, lstm_bptt, lstm_states
from .diagrams import DataFlowGraph, dataflow, draw_dataflow
from .tasks import (ADDING_BASELINE_MSE, ADDING_HOCHREITER_TOLERANCE,
                    DELAYED_RECALL_BASELINE_MSE,
                    TEMPORAL_ORDER_BASELINE_ACCURACY,
                    TEMPORAL_ORDER_BASELINE_CROSS_ENTROPY,
                    TEMPORAL_ORDER_CLASSES, TEMPORAL_ORDER_SYMBOLS,
                    adding_hochreiter_baseline_accuracy,
                    adding_hochreiter_baseline_mse, adding_problem,
                    copy_memory, copy_memory_baseline, delayed_recall,
                    temporal_order)
from .data import (CharCorpus, ChecksumError, Corpus, DownloadError,
                   Vocabulary, batchify, bptt_windows, limit_vocabulary,
                   load_ptb, load_tiny_shakespeare, locate_data_file)
from .training import (FinalStateClassifier, FinalStateRegressor,
                       PerStepClassifier, per_step_cross_entropy,
                       train_model, train_regression)
from .language_model import (EpochMetrics, LanguageModel, LMConfig,
                             RunRecord, detach_state, evaluate_nats,
                             load_record, save_record, train_language_model,
                             uniform_init_)
from .depth import (LAYER_KINDS, DeepNetwork, HighwayLayer, PlainLayer,
                    ResidualBlock, deep_network, depth_jacobians,
                    depth_sensitivity, layer_gradient_norms,
                    train_regression_ensemble)
from .ntm import (NTM, HeadWeights, LSTMTagger, NTMState,
                  binary_copy_baseline_bits, binary_copy_task,
                  copy_bits_per_sequence, train_copy,
                  train_copy_side_by_side)
from .fused import (FusedGRU, FusedLSTM, FusedVanillaRNN, fused_forward,
                    fused_supported)
from .summary import (CELLS, CellSummary, StateBound, end_to_end_jacobian,
                      longest_lag_solved, state_trajectory)
from .torch_modules import TorchWeights, torch_weights
from .ensembles import Ensemble, ensemble_fast_path, train_ensemble
from .seeds import (SEED_VARIABLE, generator, manual_seed, seed, seed_base,
                    seeds)
from .seed_statistics import (MeanInterval, PairedComparison, Proportion,
                              Spread, mean_interval, paired_comparison,
                              spread, success_rate)
from .source import show_source
from .versions import show_versions, versions

__all__ = [
    "__version__",
    # Chapter 1-2: cells and the recurrence
    "Cell", "Recurrent", "State", "check_positive_int", "check_finite_real",
    "VanillaRNNCell",
    "NONLINEARITIES",
    # Chapter 3: sensitivity
    "MAX_SLOPE", "SensitivityBounds", "activation_slope",
    "directional_derivative_norms", "finite_change_bound",
    "finite_change_norms", "jacobian_norms", "largest_slope_between",
    "sensitivity_bounds", "state_from_vector", "state_vector",
    "step_jacobians", "vanilla_preactivations",
    # Chapter 4: initialization
    "initialize_recurrent_", "orthogonal_", "unit_column_normal_",
    "unit_column_normal_std", "unit_column_uniform_",
    "unit_column_uniform_bound", "xavier_uniform_", "xavier_uniform_bound",
    # Chapter 5: backpropagation through time
    "VanillaGradients", "activation_derivative", "autograd_graph_size",
    "online_bptt_gradient_errors", "truncated_bptt", "vanilla_bptt",
    "vanilla_rtrl", "vanilla_states",
    # Part II
    "AdditiveCell", "GateJacobians", "GateValues", "gate_jacobians",
    "prototype_gates", "prototype_update", "PrototypeLSTMCell", "NormalizedPrototypeLSTMCell",
    "DriftLog", "GateTrajectory", "gate_trajectory", "saturated_fraction",
    "train_regression_logging_drift",
    "GRUCell", "RESET_PLACEMENTS", "PseudoLSTMCell", "LSTMVariantCell",
    "LSTM_VARIANTS", "BasicLSTMCell", "PeepholeLSTMCell", "PEEPHOLES",
    "LSTMGradients", "LSTMStates", "lstm_bptt", "lstm_states",
    "DataFlowGraph", "dataflow", "draw_dataflow",
    # experiments
    "DELAYED_RECALL_BASELINE_MSE", "delayed_recall", "FinalStateRegressor",
    "train_regression", "ADDING_BASELINE_MSE", "ADDING_HOCHREITER_TOLERANCE",
    "adding_hochreiter_baseline_accuracy", "adding_hochreiter_baseline_mse",
    "adding_problem", "copy_memory", "copy_memory_baseline",
    "TEMPORAL_ORDER_BASELINE_ACCURACY", "TEMPORAL_ORDER_BASELINE_CROSS_ENTROPY",
    "TEMPORAL_ORDER_CLASSES", "TEMPORAL_ORDER_SYMBOLS", "temporal_order",
    "FinalStateClassifier", "PerStepClassifier", "per_step_cross_entropy",
    "train_model",
    "LAG_CELLS", "LAG_RESULTS_FILE", "LAG_TASKS", "LagTask", "lag_model",
    "lag_sweep", "load_lag_results", "solve_lag_task",
    # data and language models
    "CharCorpus", "ChecksumError", "Corpus", "DownloadError", "Vocabulary",
    "batchify", "bptt_windows", "limit_vocabulary", "load_ptb",
    "load_tiny_shakespeare", "locate_data_file",
    "EpochMetrics", "LanguageModel", "LMConfig", "RunRecord", "detach_state",
    "evaluate_nats", "load_record", "save_record", "train_language_model",
    "uniform_init_",
    # Part IV
    "LAYER_KINDS", "DeepNetwork", "HighwayLayer", "PlainLayer",
    "ResidualBlock", "deep_network", "depth_jacobians", "depth_sensitivity",
    "layer_gradient_norms",
    "NTM", "HeadWeights", "LSTMTagger", "NTMState",
    "binary_copy_baseline_bits", "binary_copy_task", "copy_bits_per_sequence",
    "train_copy",
    "FusedGRU", "FusedLSTM", "FusedVanillaRNN", "fused_forward",
    "fused_supported",
    "CELLS", "CellSummary", "StateBound", "end_to_end_jacobian",
    "longest_lag_solved", "state_trajectory",
    "TorchWeights", "torch_weights",
    # the book's tooling
    # seeds, seed ensembles and what the chapters assert about them
    "Ensemble", "train_ensemble", "ensemble_fast_path",
    "train_regression_ensemble", "train_copy_side_by_side",
    "train_ensemble_logging_drift",
    "SEED_VARIABLE", "seed_base", "seed", "seeds", "manual_seed", "generator",
    "Spread", "spread", "Proportion", "success_rate", "MeanInterval",
    "mean_interval", "PairedComparison", "paired_comparison",
    "show_source", "show_versions", "versions",
]

# lstmlib.long_range is also a command (python -m lstmlib.long_range); it is
# imported on first use of one of its names, so that running it as a module
# does not find it already imported (runpy warns about that).
_FROM_LONG_RANGE = ("LAG_CELLS", "LAG_RESULTS_FILE", "LAG_TASKS", "LagTask",
                    "lag_model", "lag_sweep", "load_lag_results",
                    "solve_lag_task", "solve_lag_task_seeds")


def __getattr__(name: str):
    if name in _FROM_LONG_RANGE:
        from . import long_range
        return getattr(long_range, name)
    raise AttributeError(f"module 'lstmlib' has no attribute {name!r}")
