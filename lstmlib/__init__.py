"""lstmlib: the companion library of the book *Deriving the LSTM*.

Its folders show its architecture by role:

* :mod:`lstmlib.cells`: the cells, each written like its equations, the
  :class:`Cell` contract, the loop that unrolls a cell, the activation
  table, the registry of every cell, the fast whole-sequence kernels and
  PyTorch interop
* :mod:`lstmlib.analysis`: what the book measures and derives about cells
  (sensitivity, initialisation, BPTT by hand, selectivity, drift, the
  LSTM's backward pass)
* :mod:`lstmlib.networks`: highway and residual networks, the neural
  Turing machine
* :mod:`lstmlib.experiments`: data, tasks, training loops, seed ensembles
  and their statistics, the long-range sweeps and the language models
* :mod:`lstmlib.commands`: the command lines of the long experiments
* :mod:`lstmlib.display`: diagrams, source display and the summary table
  that serve the pages
* :mod:`lstmlib.seeds` (the one seed knob, ``LSTMLIB_SEED``) and
  :mod:`lstmlib.records` (atomic JSON writes, provenance and the
  committed results in ``lstmlib/results/``)

Chapter by chapter:

=================================  ===========================================
Chapter                            Modules
=================================  ===========================================
Recurrent neural networks          ``cells.recurrent``
The vanilla RNN                    ``cells.vanilla``, ``cells.activations``,
                                   ``cells.torch_interop``,
                                   ``analysis.morphing``
Vanishing sensitivity              ``analysis.sensitivity``
Initialisation                     ``analysis.initialization``
Backpropagation through time       ``analysis.bptt``
Written memories                   ``cells.additive``
Selectivity                        ``analysis.selectivity``
Gates                              ``cells.prototype``, ``analysis.selectivity``
The prototype LSTM                 ``cells.prototype``, ``analysis.drift``
Working models (GRU, pseudo LSTM)  ``cells.gru``, ``cells.lstm``
Deriving the basic LSTM            ``cells.lstm``, ``display.diagrams``
Peepholes                          ``cells.lstm``
The LSTM's backward pass           ``analysis.lstm_backward``,
                                   ``cells.kernels``
What trained gates do on text      ``analysis.gate_statistics``,
                                   ``experiments.char_lm``,
                                   ``display.text_activations``
From vanilla to gated, on a task   ``experiments.long_range``,
                                   ``commands.gated_versus_vanilla``
Long-range memory                  ``experiments.tasks``,
                                   ``experiments.long_range``,
                                   ``experiments.ensembles``
The eight-architecture comparison  ``experiments.ptb``,
                                   ``experiments.language_model``
A Penn Treebank reference          ``experiments.data``,
                                   ``experiments.language_model``
Highway and residual networks      ``networks.depth``
Neural Turing machines             ``networks.ntm``
Summary                            ``display.summary``, ``cells.registry``
Performance                        ``cells.kernels``, ``experiments.ensembles``
=================================  ===========================================

Every chapter imports what it uses from the top level (``from lstmlib
import GRUCell``); the names below are that public surface.
"""
__version__ = "0.1.0"

from .cells.recurrent import Cell, Recurrent, State, unroll
from ._checks import check_finite_real, check_positive_int
from .cells.vanilla import NONLINEARITIES, VanillaRNNCell
from .analysis.sensitivity import (MAX_SLOPE, SensitivityBounds, activation_slope,
                          directional_derivative_norms, finite_change_bound,
                          finite_change_norms, jacobian_norms,
                          largest_slope_between, sensitivity_bounds,
                          state_from_vector, state_vector, step_jacobians,
                          vanilla_preactivations)
from .analysis.initialization import (initialize_recurrent_, orthogonal_,
                             unit_column_normal_, unit_column_normal_std,
                             unit_column_uniform_, unit_column_uniform_bound,
                             xavier_uniform_, xavier_uniform_bound)
from .analysis.bptt import (VanillaGradients, activation_derivative,
                   autograd_graph_size, online_bptt_gradient_errors,
                   truncated_bptt, vanilla_bptt, vanilla_rtrl,
                   vanilla_states)
from .cells.additive import AdditiveCell
from .cells.prototype import NormalizedPrototypeLSTMCell, PrototypeLSTMCell
from .analysis.selectivity import (GateJacobians, GateValues, gate_jacobians,
                          prototype_gates, prototype_update)
from .cells.gru import RESET_PLACEMENTS, GRUCell
from .analysis.drift import (DriftLog, GateTrajectory, gate_trajectory,
                    saturated_fraction, train_ensemble_logging_drift,
                    train_regression_logging_drift)
from .cells.lstm import (LSTM_VARIANTS, PEEPHOLES, BasicLSTMCell, LSTMVariantCell,
                   PeepholeLSTMCell, PseudoLSTMCell)
from .analysis.lstm_backward import LSTMGradients, LSTMStates, lstm_bptt, lstm_states
from .display.diagrams import DataFlowGraph, dataflow, draw_dataflow
from .experiments.tasks import (ADDING_BASELINE_MSE, ADDING_HOCHREITER_TOLERANCE,
                    DELAYED_RECALL_BASELINE_MSE,
                    TEMPORAL_ORDER_BASELINE_ACCURACY,
                    TEMPORAL_ORDER_BASELINE_CROSS_ENTROPY,
                    TEMPORAL_ORDER_CLASSES, TEMPORAL_ORDER_SYMBOLS,
                    adding_hochreiter_baseline_accuracy,
                    adding_hochreiter_baseline_mse, adding_problem,
                    copy_memory, copy_memory_baseline, delayed_recall,
                    temporal_order)
from .experiments.data import (CharCorpus, ChecksumError, Corpus, DownloadError,
                   Vocabulary, batchify, bptt_windows, limit_vocabulary,
                   load_ptb, load_tiny_shakespeare, locate_data_file)
from .experiments.training import (FinalStateClassifier, FinalStateRegressor,
                       PerStepClassifier, per_step_cross_entropy,
                       train_model, train_regression)
from .experiments.language_model import (EpochMetrics, LanguageModel, LMConfig,
                             RunRecord, detach_state, evaluate_nats,
                             load_record, save_record, train_language_model,
                             uniform_init_)
from .networks.depth import (LAYER_KINDS, DeepNetwork, HighwayLayer, PlainLayer,
                    ResidualBlock, deep_network, depth_jacobians,
                    depth_sensitivity, layer_gradient_norms,
                    train_regression_ensemble)
from .networks.ntm import (NTM, HeadWeights, LSTMTagger, NTMState,
                  binary_copy_baseline_bits, binary_copy_task,
                  copy_bits_per_sequence, train_copy,
                  train_copy_side_by_side)
from .cells.kernels import (FusedGRU, FusedLSTM, FusedVanillaRNN,
                            gru_sequence, lstm_sequence, vanilla_sequence)
from .cells.activations import ACTIVATIONS, Activation, activation_named
from .cells.registry import REGISTERED_CELLS, RegisteredCell, registered_cell
from .display.summary import (CELLS, CellSummary, StateBound, end_to_end_jacobian,
                      grid_successes, state_trajectory)
from .cells.torch_interop import TorchWeights, torch_weights
from .experiments.ensembles import Ensemble, ensemble_fast_path, train_ensemble
from .experiments.long_range import (LAG_CELLS, LAG_TASKS,
                                     LagTask, lag_model, lag_sweep,
                                     solve_lag_task,
                                     solve_lag_task_seeds)
from .seeds import (SEED_VARIABLE, generator, manual_seed, seed, seed_base,
                    seeds)
from .experiments.seed_statistics import (
    MeanInterval, PairedComparison, Proportion, Spread, SuccessComparison,
    compare_success, mean_interval, paired_comparison, spread, success_rate)
from .display.source import show_source
from .records import (load_result, result_names, result_path, show_versions,
                      versions)

__all__ = [
    "__version__",
    # Chapter 1-2: cells and the recurrence
    "Cell", "Recurrent", "State", "unroll", "check_positive_int",
    "check_finite_real",
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
    "LAG_CELLS", "LAG_TASKS", "LagTask", "lag_model",
    "lag_sweep", "solve_lag_task", "solve_lag_task_seeds",
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
    "FusedGRU", "FusedLSTM", "FusedVanillaRNN", "lstm_sequence",
    "gru_sequence", "vanilla_sequence",
    "ACTIVATIONS", "Activation", "activation_named",
    "REGISTERED_CELLS", "RegisteredCell", "registered_cell",
    "CELLS", "CellSummary", "StateBound", "end_to_end_jacobian",
    "grid_successes", "state_trajectory",
    "TorchWeights", "torch_weights",
    # the book's tooling
    # seeds, seed ensembles and what the chapters assert about them
    "Ensemble", "train_ensemble", "ensemble_fast_path",
    "train_regression_ensemble", "train_copy_side_by_side",
    "train_ensemble_logging_drift",
    "SEED_VARIABLE", "seed_base", "seed", "seeds", "manual_seed", "generator",
    "Spread", "spread", "Proportion", "success_rate", "MeanInterval",
    "mean_interval", "SuccessComparison", "compare_success",
    "PairedComparison", "paired_comparison",
    "show_source", "show_versions", "versions",
    # the committed results, shipped with the package
    "load_result", "result_path", "result_names",
]
