"""Word- and character-level language models, and their trainer.

A language model reads a token stream and, at every step, gives a
distribution over the next token:

    e_t = E[x_t]                         embedding,   (T, B) -> (T, B, d)
    h_t^(l) = layer_l(h_t^(l-1), state)  recurrent layers, l = 1..L
    logits_t = R h_t^(L) + b_R           read-out,    (T, B, n) -> (T, B, V)
    p(x_{t+1} | x_{<=t}) = softmax(logits_t)

with V the vocabulary size and d the embedding size (the book's notation
page lists E, R and b_R).

Training uses *stateful truncated BPTT* (Chapter 5): the batched stream is
cut into windows of ``bptt`` steps, the state at the end of one window is the
initial state of the next, and it is detached so that gradients stop at the
window's start. Losses are measured in nats per token; perplexity is
``exp`` of that.

:func:`train_language_model` returns a :class:`RunRecord` (config, seed,
per-epoch metrics, versions, device, wall time) that
:func:`save_record` writes as JSON and :func:`load_record` reads back, so
that chapters and tables are built from committed results rather than from
numbers typed by hand.
"""
from __future__ import annotations

import copy
import datetime
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional, Sequence

import torch
from torch import Tensor, nn

from .data import Corpus, batchify, bptt_windows
from ..cells.recurrent import Cell, Recurrent
from .._checks import (check_bool, check_fields, check_int,
                       check_non_negative_int, check_positive_int,
                       check_positive_real, describe, one_of, optional)
from ..seeds import seed_base
from ..records import versions, write_atomically, write_json_atomically

__all__ = ["LanguageModel", "LMConfig", "RunRecord", "EpochMetrics",
           "detach_state", "evaluate_nats", "train_language_model",
           "save_record", "load_record", "uniform_init_",
           "DIVERGENCE_FACTOR", "epoch_line",
           "divergence_threshold", "diverged"]

_TORCH_RECURRENT = (nn.RNN, nn.GRU, nn.LSTM)


class LanguageModel(nn.Module):
    """Embedding → recurrent layers → linear read-out (logits).

    Args:
        vocab_size: V, the number of token types.
        layers: the recurrent layers, bottom first. Each is an lstmlib
            :class:`~lstmlib.Cell` (run by :class:`~lstmlib.Recurrent`) or a
            time-major PyTorch ``nn.RNN``/``nn.GRU``/``nn.LSTM``, for
            cross-checks against PyTorch's kernels. The embedding size d is
            the first layer's input size; each layer's input size must be the
            previous layer's output size.

    Inputs of ``forward``: ``tokens`` ``(T, B)`` ``torch.long`` ids and the
    state (one entry per layer; ``None`` for zeros). Outputs: ``logits``
    ``(T, B, V)`` and the state after the last step.

    ``initialization`` describes how the parameters were drawn when one
    initializer drew all of them (:func:`uniform_init_` sets it, e.g.
    ``"uniform(-0.1, 0.1)"``); it is ``None`` while every module keeps its
    own initialization. A training record copies it (``model["init"]``).
    """

    def __init__(self, vocab_size: int, layers: Sequence[nn.Module]):
        super().__init__()
        check_positive_int("LanguageModel", "vocab_size", vocab_size)
        layers = list(layers)
        if not layers:
            raise ValueError("LanguageModel: expected at least one layer, "
                             "got none")
        sizes = [_layer_sizes(k, layer) for k, layer in enumerate(layers)]
        for k in range(1, len(sizes)):
            if sizes[k][0] != sizes[k - 1][1]:
                raise ValueError(
                    f"LanguageModel: layer {k} expects inputs of size "
                    f"{sizes[k][0]}, but layer {k - 1} outputs "
                    f"{sizes[k - 1][1]}")
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, sizes[0][0])
        self.layers = nn.ModuleList(
            Recurrent(layer) if isinstance(layer, Cell) else layer
            for layer in layers)
        self.readout = nn.Linear(sizes[-1][1], vocab_size)
        self.initialization: Optional[str] = None   # each module's own

    def forward(self, tokens: Tensor, state: Optional[list] = None
                ) -> tuple[Tensor, list]:
        if not isinstance(tokens, Tensor) or tokens.dtype != torch.long \
                or tokens.dim() != 2:
            raise ValueError(
                "LanguageModel: expected tokens as a (T, B) torch.long "
                f"tensor, got {describe(tokens)}")
        if state is None:
            state = [None] * len(self.layers)
        elif len(state) != len(self.layers):
            raise ValueError(f"LanguageModel: expected a state with one "
                             f"entry per layer ({len(self.layers)}), got "
                             f"{len(state)}")
        h = self.embedding(tokens)                      # (T, B, d)
        new_state = []
        for layer, s in zip(self.layers, state):
            h, s = layer(h, s)                          # (T, B, n_l)
            new_state.append(s)
        return self.readout(h), new_state               # (T, B, V)


def _layer_sizes(index: int, layer: nn.Module) -> tuple[int, int]:
    if isinstance(layer, Cell):
        return layer.input_size, layer.output_size
    if isinstance(layer, _TORCH_RECURRENT):
        if layer.batch_first or layer.bidirectional:
            raise ValueError(
                f"LanguageModel: layer {index}: expected a time-major, "
                f"unidirectional nn.{type(layer).__name__}, got "
                f"batch_first={layer.batch_first}, "
                f"bidirectional={layer.bidirectional}")
        return layer.input_size, layer.hidden_size
    raise TypeError(f"LanguageModel: layer {index}: expected an lstmlib Cell "
                    "or nn.RNN/nn.GRU/nn.LSTM, got "
                    f"{type(layer).__name__}")


def detach_state(state):
    """The same nested tuple/list of tensors, cut from the autograd graph:
    what carries a state across truncated-BPTT windows."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    return state                                        # None


def uniform_init_(model: nn.Module, bound: float) -> nn.Module:
    """Draw every parameter of ``model`` from the uniform distribution
    𝒰(−bound, bound), biases included (the initialisation of Zaremba et
    al. 2014), and record it: ``model.initialization`` becomes
    ``"uniform(-bound, bound)"`` with ``bound`` written as Python writes
    the float (``"uniform(-0.1, 0.1)"``), which a training record keeps
    as ``model["init"]``."""
    bound = check_positive_real("uniform_init_", "bound", bound)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-bound, bound)
    model.initialization = f"uniform(-{bound!r}, {bound!r})"
    return model


@torch.no_grad()
def evaluate_nats(model: LanguageModel, stream: Tensor, *, batch_size: int,
                  bptt: int) -> float:
    """Mean cross-entropy in nats per predicted token of ``model`` on a 1-D
    token ``stream``, read as ``batch_size`` parallel streams with the state
    carried across windows of ``bptt`` steps (every token but the first of
    each stream is predicted once)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    batched = batchify(stream, batch_size).to(device)
    total, count, state = 0.0, 0, None
    for inputs, targets in bptt_windows(batched, bptt):
        logits, state = model(inputs, state)
        total += nn.functional.cross_entropy(
            logits.flatten(0, 1), targets.flatten(), reduction="sum").item()
        count += targets.numel()
    model.train(was_training)
    return total / count


@dataclass
class LMConfig:
    """Everything a language-model training run depends on.

    The learning rate of epoch ``e`` (1-based) is
    ``lr * lr_decay ** max(0, e - decay_after)`` (:meth:`lr_at`). Training
    stops after ``epochs`` epochs, or earlier once the validation loss has
    not improved on its best for ``patience`` epochs.
    """

    batch_size: int = 20      # B, parallel streams cut from the train split
    bptt: int = 20            # T, time steps per truncated-BPTT window
    epochs: int = 13          # passes over the training stream, at most
    optimizer: str = "sgd"    # "sgd" or "adam"
    lr: float = 1.0           # learning rate before decay starts, > 0
    lr_decay: float = 1.0     # lr factor per epoch after decay_after; 1: none
    decay_after: int = 0      # epochs at the full lr before decay starts
    # bound on the gradient's global norm; None: no clipping
    clip_norm: Optional[float] = 5.0
    # epochs without a better validation loss before stopping; None: never
    patience: Optional[int] = None
    # parallel streams for validation and test; None: batch_size
    eval_batch_size: Optional[int] = None
    # train on the stream's first tokens only; None: all of it
    max_train_tokens: Optional[int] = None
    # False: differentiate the mean cross-entropy over the window's tokens;
    # True: its sum over the T steps of the batch mean, T times larger, as
    # Zaremba et al.'s code does (their lr 1 and clip_norm 5 act on that
    # gradient). Reported metrics are per token either way.
    loss_sum_over_time: bool = False
    # also measure the test loss as one sequential stream (batch 1, every
    # token after the first predicted), as Zaremba et al. evaluate
    test_one_stream: bool = False
    # None: train in the parameters' dtype; "bfloat16": run the training
    # windows' forward pass under torch.autocast(dtype=torch.bfloat16), the
    # parameters, gradients and Adam's state staying float32 (evaluation
    # stays in the parameters' dtype)
    autocast: Optional[str] = None
    seed: int = field(default_factory=seed_base)   # $LSTMLIB_SEED, or 0

    # What __post_init__ checks, field by field (a class attribute: no
    # annotation, so not a field).
    CHECKS = (
        ("batch_size", check_positive_int),
        ("bptt", check_positive_int),
        ("epochs", check_positive_int),
        ("optimizer", one_of("sgd", "adam")),
        ("lr", check_positive_real),
        ("lr_decay", check_positive_real),
        ("decay_after", check_non_negative_int),
        ("clip_norm", optional(check_positive_real)),
        ("patience", optional(check_positive_int)),
        ("eval_batch_size", optional(check_positive_int)),
        ("max_train_tokens", optional(check_positive_int)),
        ("loss_sum_over_time", check_bool),
        ("test_one_stream", check_bool),
        ("autocast", optional(one_of("bfloat16"))),
        ("seed", check_int),
    )

    def __post_init__(self):
        check_fields("LMConfig", self, self.CHECKS)

    def lr_at(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (1-based)."""
        return self.lr * self.lr_decay ** max(0, epoch - self.decay_after)


@dataclass
class EpochMetrics:
    """One epoch of a training run; losses in nats per token."""

    epoch: int            # 1-based
    lr: float             # the learning rate of this epoch
    train_nats: float     # mean training cross-entropy of the epoch
    valid_nats: float     # validation cross-entropy after the epoch
    seconds: float        # the epoch's wall time, validation included

    @property
    def valid_perplexity(self) -> float:
        return math.exp(self.valid_nats)


@dataclass
class RunRecord:
    """The result of one training run, as committed to the repository."""

    name: str             # a label, e.g. "variant 5, lr 0.01, trial 1"
    # the model's sizes, layers and parameter count, and "init" when one
    # initializer drew every parameter (e.g. "uniform(-0.1, 0.1)"); records
    # written before the "init" entry existed lack it
    model: dict
    config: dict          # the LMConfig, as a dict
    epochs: List[EpochMetrics] = field(default_factory=list)  # one per epoch
    best_epoch: int = 0   # the epoch of lowest validation loss; 0: none yet
    best_valid_nats: float = math.inf   # its validation loss, nats per token
    # test loss with best_epoch's parameters; None: not measured
    test_nats: Optional[float] = None
    # the same parameters' test loss read as one stream (batch 1); None:
    # not measured (config.test_one_stream False)
    test_nats_one_stream: Optional[float] = None
    stopped_early: bool = False  # whether patience ended it before `epochs`
    wall_seconds: float = 0.0    # the whole run's wall time, test included
    device: str = "cpu"          # where it ran, e.g. "cuda:0"
    # the parameters' dtype during the run, and "bfloat16 autocast" after
    # it when config.autocast is "bfloat16" (e.g. "float32, bfloat16
    # autocast")
    precision: str = "float32"
    threads: int = 1             # torch.get_num_threads() during the run
    started: str = ""            # its start, ISO 8601 in UTC, to the second
    command: str = ""            # the command line that ran it, if any
    versions: dict = field(default_factory=dict)   # records.versions()
    # each time the run was continued from a checkpoint: when (ISO 8601,
    # UTC) and from which source ("at", "git_commit", "git_dirty");
    # ``versions`` are those of its first start
    resumed: List[dict] = field(default_factory=list)

    @property
    def best_valid_perplexity(self) -> float:
        return math.exp(self.best_valid_nats)

    @property
    def test_perplexity(self) -> Optional[float]:
        return None if self.test_nats is None else math.exp(self.test_nats)


# A run has diverged when a window's mean cross-entropy is not finite or is
# this many times the uniform predictor's ln V: an untrained model starts
# near ln V and training only lowers it, so three times ln V is far outside
# anything a working run shows, on any machine.
DIVERGENCE_FACTOR = 3.0


def divergence_threshold(vocab_size: int) -> float:
    """``DIVERGENCE_FACTOR * ln V`` nats per token, for ``V`` symbols."""
    check_positive_int("divergence_threshold", "vocab_size", vocab_size)
    return DIVERGENCE_FACTOR * math.log(max(vocab_size, 2))


def diverged(loss_nats: float, vocab_size: int) -> bool:
    """Whether a mean cross-entropy of ``loss_nats`` (nats per token) over
    ``vocab_size`` symbols means the run diverged: not finite, or above
    :func:`divergence_threshold`."""
    return not math.isfinite(loss_nats) or \
        loss_nats > divergence_threshold(vocab_size)


def _progress(iterable: Iterable, total: int, description: str,
              show: Optional[bool]):
    """A tqdm bar on an interactive terminal or in Jupyter; nothing in CI
    logs or pipes (``show=None`` decides by that), so that logs stay
    readable."""
    if show is None:
        show = not os.environ.get("CI") and sys.stderr.isatty()
    if not show:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, total=total, desc=description, leave=False)


def train_language_model(model: LanguageModel, corpus: Corpus,
                         config: LMConfig, *, name: str = "run",
                         test: bool = True, progress: Optional[bool] = None,
                         command: str = "",
                         on_epoch: Optional[Callable[[RunRecord], None]]
                         = None,
                         checkpoint: str | os.PathLike | None = None
                         ) -> RunRecord:
    """Train ``model`` on ``corpus.train`` by stateful truncated BPTT.

    Every epoch walks the batched training stream window by window
    (``config.bptt`` steps, ``config.batch_size`` streams), carrying the
    detached state from one window to the next; evaluates on
    ``corpus.valid``; and keeps a copy of the parameters with the best
    validation loss, which ``model`` holds when the function returns and
    which measure the test loss (``test=False`` skips it). ``on_epoch``, if
    given, receives the record after every epoch (e.g. to save it, so that
    an interrupted long run leaves its epochs behind). Deterministic:
    the same config, seed and model give the same metrics.

    ``checkpoint``, if given, is a file that holds the run's state after
    its last finished epoch (record, parameters, optimiser, best
    parameters), written atomically after every epoch. If the file exists
    when the run starts, the run continues from it and ends exactly as it
    would have without the interruption (tested); the record's ``resumed``
    lists when, and from which commit. The file stays when the run ends (started again from it,
    the run ends at once with the same metrics): remove it once the record
    is saved. A checkpoint of another run (a different name, config or
    model) is an error.
    """
    if not isinstance(model, LanguageModel):
        raise TypeError("train_language_model: expected a LanguageModel, "
                        f"got {type(model).__name__}")
    if not isinstance(config, LMConfig):
        raise TypeError("train_language_model: expected an LMConfig, got "
                        f"{type(config).__name__}")
    device = next(model.parameters()).device
    torch.manual_seed(config.seed)
    train = corpus.train
    if config.max_train_tokens is not None:
        train = train[:config.max_train_tokens]
    batched = batchify(train, config.batch_size).to(device)
    windows = math.ceil((batched.shape[0] - 1) / config.bptt)
    eval_batch = config.eval_batch_size or config.batch_size
    if config.optimizer == "sgd":
        optimiser = torch.optim.SGD(model.parameters(), lr=config.lr)
    else:                           # one fused kernel per step for all
        optimiser = torch.optim.Adam(model.parameters(), lr=config.lr,
                                     fused=True)
    dtype = next(model.parameters()).dtype
    precision = str(dtype).removeprefix("torch.")
    if config.autocast is not None:
        precision += f", {config.autocast} autocast"
    record = RunRecord(
        name=name, model=_describe_model(model), config=asdict(config),
        device=str(device), threads=torch.get_num_threads(),
        precision=precision,
        started=datetime.datetime.now(datetime.timezone.utc)
        .isoformat(timespec="seconds"),
        command=command, versions=versions())
    best_parameters = copy.deepcopy(model.state_dict())
    first_epoch = 1
    if checkpoint is not None and Path(checkpoint).is_file():
        best_parameters, first_epoch = _resume(
            checkpoint, record, model, optimiser)
        if config.patience is not None and \
                first_epoch - 1 - record.best_epoch >= config.patience:
            record.stopped_early = first_epoch - 1 < config.epochs
            first_epoch = config.epochs + 1     # it had stopped: no epoch
    start = time.perf_counter() - record.wall_seconds
    for epoch in range(first_epoch, config.epochs + 1):
        epoch_start = time.perf_counter()
        lr = config.lr_at(epoch)
        for group in optimiser.param_groups:
            group["lr"] = lr
        model.train()
        total, count, state = 0.0, 0, None
        for inputs, targets in _progress(
                bptt_windows(batched, config.bptt), windows,
                f"{name} epoch {epoch}", progress):
            state = detach_state(state)                 # truncate here
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=config.autocast == "bfloat16"):
                logits, state = model(inputs, state)
            loss = nn.functional.cross_entropy(      # in the parameters'
                logits.flatten(0, 1).to(dtype),       # dtype, always
                targets.flatten())
            optimiser.zero_grad()
            if config.loss_sum_over_time:               # T × the mean
                (loss * targets.shape[0]).backward()
            else:
                loss.backward()
            if config.clip_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(),
                                         config.clip_norm)
            optimiser.step()
            window_nats = loss.item()
            if diverged(window_nats, model.vocab_size):
                raise FloatingPointError(
                    f"train_language_model: epoch {epoch} diverged: a "
                    f"window's training loss is {window_nats:.4g} nats per "
                    f"token, above {DIVERGENCE_FACTOR:g} x ln V = "
                    f"{divergence_threshold(model.vocab_size):.4g} (the "
                    "uniform predictor's loss is ln V); lower the learning "
                    "rate or clip the gradient")
            total += window_nats * targets.numel()
            count += targets.numel()
        valid = evaluate_nats(model, corpus.valid, batch_size=eval_batch,
                              bptt=config.bptt)
        record.epochs.append(EpochMetrics(
            epoch, lr, total / count, valid,
            time.perf_counter() - epoch_start))
        if valid < record.best_valid_nats:
            record.best_epoch, record.best_valid_nats = epoch, valid
            best_parameters = copy.deepcopy(model.state_dict())
        record.wall_seconds = time.perf_counter() - start
        if checkpoint is not None:
            _save_checkpoint(checkpoint, record, model, optimiser,
                             best_parameters)
        if on_epoch is not None:
            on_epoch(record)
        if config.patience is not None and \
                epoch - record.best_epoch >= config.patience:
            record.stopped_early = epoch < config.epochs
            break
    model.load_state_dict(best_parameters)
    if test:
        record.test_nats = evaluate_nats(model, corpus.test,
                                         batch_size=eval_batch,
                                         bptt=config.bptt)
        if config.test_one_stream:
            record.test_nats_one_stream = evaluate_nats(
                model, corpus.test, batch_size=1, bptt=config.bptt)
    record.wall_seconds = time.perf_counter() - start
    return record


def _save_checkpoint(path: str | os.PathLike, record: RunRecord,
                     model: LanguageModel, optimiser: torch.optim.Optimizer,
                     best_parameters: dict) -> None:
    """Write the state :func:`train_language_model` needs to continue
    after ``record``'s last epoch, atomically."""
    state = {"record": asdict(record), "model": model.state_dict(),
             "optimiser": optimiser.state_dict(), "best": best_parameters,
             "rng": torch.get_rng_state()}
    write_atomically(path, lambda f: torch.save(state, f), binary=True)


def _resume(path: str | os.PathLike, record: RunRecord, model: LanguageModel,
            optimiser: torch.optim.Optimizer) -> tuple[dict, int]:
    """Load the checkpoint ``path`` into ``record``, ``model`` and
    ``optimiser``; return the best parameters and the next epoch."""
    state = torch.load(path, map_location=next(model.parameters()).device,
                       weights_only=False)
    saved = state["record"]
    for key in ("name", "config", "model"):
        if saved[key] != getattr(record, key):
            raise ValueError(
                f"train_language_model: the checkpoint {path} belongs to "
                f"another run ({key} {saved[key]!r}, this run's "
                f"{getattr(record, key)!r}); remove it to start afresh")
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    torch.set_rng_state(state["rng"])
    now = {"at": record.started,
           "git_commit": record.versions.get("git_commit"),
           "git_dirty": record.versions.get("git_dirty")}
    for key in ("epochs", "best_epoch", "best_valid_nats", "wall_seconds",
                "started", "versions", "resumed"):
        setattr(record, key, saved.get(key, getattr(record, key)))
    record.epochs = [EpochMetrics(**e) for e in saved["epochs"]]
    record.resumed = [*record.resumed, now]
    return state["best"], len(record.epochs) + 1


def epoch_line(record: RunRecord, epochs: int) -> str:
    """One line on the last epoch of ``record``: its metrics, the time so
    far and an estimate of the time left (the mean epoch time so far times
    the epochs left of ``epochs``), for logs that are not a terminal."""
    last = record.epochs[-1]
    spent = sum(e.seconds for e in record.epochs)
    left = spent / len(record.epochs) * (epochs - last.epoch)
    return (f"epoch {last.epoch}/{epochs}: lr {last.lr:.3g}, train "
            f"perplexity {math.exp(last.train_nats):.1f}, valid "
            f"{last.valid_perplexity:.1f} (best {record.best_valid_perplexity:.1f}"
            f", epoch {record.best_epoch}); {spent / 60:.1f} min so far, "
            f"about {left / 60:.0f} min left")


def _describe_model(model: LanguageModel) -> dict:
    """The record's ``model`` entry: sizes, layers, parameter count, and
    ``"init"`` if an initializer of the whole model recorded itself in
    ``model.initialization`` (:func:`uniform_init_` does)."""
    description = {
        "vocab_size": model.vocab_size,
        "embedding_size": model.embedding.embedding_dim,
        "layers": [repr(layer.cell if isinstance(layer, Recurrent)
                        else layer) for layer in model.layers],
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    initialization = getattr(model, "initialization", None)
    if initialization is not None:
        description["init"] = initialization
    return description


def save_record(record: RunRecord, path: str | os.PathLike) -> Path:
    """Write ``record`` as JSON to ``path`` with
    :func:`write_json_atomically`."""
    return write_json_atomically(asdict(record), path)


def load_record(path: str | os.PathLike) -> RunRecord:
    """Read a :class:`RunRecord` written by :func:`save_record`."""
    data: dict[str, Any] = json.loads(Path(path).read_text())
    known = {f.name for f in fields(RunRecord)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"load_record: {path} has unknown fields "
                         f"{sorted(unknown)}; expected only {sorted(known)}")
    data["epochs"] = [EpochMetrics(**e) for e in data.get("epochs", [])]
    return RunRecord(**data)
