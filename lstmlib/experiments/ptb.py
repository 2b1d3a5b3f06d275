"""The book's full-scale Penn Treebank experiments: their configurations,
models, the sweep and its summary. The command line is
:mod:`lstmlib.commands.ptb` (``python -m lstmlib.commands.ptb --help``).
Two experiments:

``zaremba-small``
    The small, non-regularised LSTM of Zaremba, Sutskever & Vinyals (2014,
    Table 1) on Penn Treebank: 2 layers of 200 units, embedding 200,
    unrolled 20 steps, batch 20, every parameter from 𝒰(−0.1, 0.1) (the
    record's ``model["init"]`` says ``"uniform(-0.1, 0.1)"``), SGD at
    learning rate 1 halved after every epoch from the fifth on, 13 epochs,
    gradient norm clipped at 5. Published: validation perplexity 120.7,
    test 114.5. ``--implementation lstmlib`` uses two
    :class:`~lstmlib.BasicLSTMCell` layers; ``torch`` uses ``nn.LSTM`` on the
    same pipeline, as a cross-check.

``architectures``
    The eight-architecture comparison of the source post (Chapter
    "The eight-architecture comparison"): one layer of
    :class:`~lstmlib.LSTMVariantCell` (variants 1–8, :data:`LSTM_VARIANTS`),
    state and embedding 250, truncated BPTT of 30 steps, batch 30, Adam at
    several learning rates, forget bias 1 and other gate biases 0, up to 20
    epochs stopping when the validation loss has not improved for 2, several
    trials. One JSON record per run; runs whose record exists are skipped,
    so an interrupted sweep resumes where it stopped.

Every run writes a :class:`~lstmlib.experiments.language_model.RunRecord` (config,
seed, per-epoch metrics, versions, device, threads, wall time, the command)
after every epoch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from scipy import stats

import torch
from torch import nn

from .data import limit_vocabulary, load_ptb
from .language_model import (LanguageModel, LMConfig, RunRecord, load_record,
                             save_record, train_language_model,
                             uniform_init_)
from ..cells.lstm import LSTM_VARIANTS, BasicLSTMCell, LSTMVariantCell
from .seed_statistics import PairedComparison, mean_interval, \
    paired_comparison
from ..records import IN_PROGRESS, RESULTS_FOLDER
from ..seeds import seed_base

__all__ = ["ZAREMBA_SMALL", "ZAREMBA_SMALL_PUBLISHED", "POST_PROTOCOL",
           "zaremba_small_model", "architecture_model", "run_architectures",
           "architecture_record_name", "summarize_architectures",
           "POST_LEARNING_RATES", "POST_TRIALS", "POST_STATE_SIZE",
           "ARCHITECTURE_RESULTS", "POST_CLAIMS", "NO_EFFECT_CLAIM",
           "load_architecture_records", "record_variant", "ClaimTest",
           "post_claim_tests"]

#: Zaremba et al. (2014), small non-regularised configuration. Their code
#: differentiates the sum over the 20 steps of each step's batch-mean loss,
#: hence ``loss_sum_over_time``: lr 1 and clip 5 are meant for that gradient.
ZAREMBA_SMALL = LMConfig(batch_size=20, bptt=20, epochs=13, optimizer="sgd",
                         lr=1.0, lr_decay=0.5, decay_after=4, clip_norm=5.0,
                         loss_sum_over_time=True, test_one_stream=True)

#: Their Table 1: perplexities of the small non-regularised LSTM.
ZAREMBA_SMALL_PUBLISHED = {"valid_perplexity": 120.7,
                           "test_perplexity": 114.5}

#: The source post's protocol, per learning rate (``lr`` is set per run).
POST_PROTOCOL = LMConfig(batch_size=30, bptt=30, epochs=20, optimizer="adam",
                         lr=1e-3, clip_norm=None, patience=2)

#: The post's learning rates and its numbers of trials and state size.
POST_LEARNING_RATES = (3e-3, 1e-3, 3e-4, 1e-4)
POST_TRIALS = 5
POST_STATE_SIZE = 250


#: The folder among the committed results (``lstmlib/results/``) that holds
#: the sweep's records: the command's ``--out-dir``.
ARCHITECTURE_RESULTS = "eight_architectures"

#: The source post's four claims about its table, each as the pairs
#: ``(a, b)`` of architectures that it compares, ``a`` the one the post
#: finds better (lower loss). Difference 1's claim is that it makes no
#: clear difference ("though it tends to hurt"): its pairs are
#: (without, with) and are tested both ways.
POST_CLAIMS = {
    "architecture 5 has the lowest loss":
        tuple((5, v) for v in (1, 2, 3, 4, 6, 7, 8)),
    "difference 3 hurts": ((1, 7), (2, 4), (5, 6), (3, 8)),
    "difference 2 recovers what difference 3 loses": ((6, 7), (8, 4)),
    "difference 1 makes no clear difference": ((1, 2), (5, 3), (7, 4),
                                               (6, 8)),
}
NO_EFFECT_CLAIM = "difference 1 makes no clear difference"


def zaremba_small_model(vocab_size: int, implementation: str = "lstmlib",
                        size: int = 200) -> LanguageModel:
    """Two LSTM layers of ``size`` units over an embedding of ``size``, all
    parameters drawn from 𝒰(−0.1, 0.1) by :func:`uniform_init_`, which
    records it in ``model.initialization``; ``implementation`` is
    ``"lstmlib"`` (:class:`~lstmlib.BasicLSTMCell`) or ``"torch"``
    (``nn.LSTM``)."""
    if implementation == "lstmlib":
        layers = [BasicLSTMCell(size, size), BasicLSTMCell(size, size)]
    elif implementation == "torch":
        layers = [nn.LSTM(size, size, num_layers=2)]
    else:
        raise ValueError("zaremba_small_model: expected implementation "
                         f"'lstmlib' or 'torch', got {implementation!r}")
    return uniform_init_(LanguageModel(vocab_size, layers), 0.1)


def architecture_model(vocab_size: int, variant: int,
                       state_size: int = POST_STATE_SIZE) -> LanguageModel:
    """One layer of the post's architecture ``variant`` (1 = pseudo LSTM,
    8 = basic LSTM) with an embedding of ``state_size``; the cell's own
    initialisation (forget bias 1, other biases 0)."""
    if variant not in LSTM_VARIANTS:
        raise ValueError("architecture_model: expected a variant in "
                         f"{sorted(LSTM_VARIANTS)}, got {variant!r}")
    cell = LSTMVariantCell(state_size, state_size, **LSTM_VARIANTS[variant])
    return LanguageModel(vocab_size, [cell])


def architecture_record_name(variant: int, lr: float, trial: int) -> str:
    """The file name (without folder) of one run of the sweep."""
    return f"variant{variant}_lr{lr:.0e}_trial{trial}.json"


def run_architectures(out_dir: str | Path, *, variants: Iterable[int],
                      lrs: Iterable[float], trials: int,
                      first_trial: int = 0,
                      base: LMConfig = POST_PROTOCOL,
                      state_size: int = POST_STATE_SIZE,
                      vocab_limit: int | None = None,
                      data_root: str | None = None, device: str = "cpu",
                      progress: bool | None = None,
                      command: str = "",
                      on_epoch: Callable[[RunRecord], None] | None = None
                      ) -> list[Path]:
    """Run every (variant, learning rate, trial) of the sweep whose record
    is not yet in ``out_dir``; trial ``k`` is seeded with ``base.seed + k``.
    Trials ``first_trial`` to ``trials - 1`` are run, so that the seeds of
    one architecture can be spread over processes.
    A run in progress keeps a checkpoint beside its record
    (``*.checkpoint.pt``), so a run that was stopped continues from its
    last finished epoch.
    ``on_epoch``, if given, receives a run's record after each of its
    epochs (once the partial record is saved). Returns the paths of all
    the sweep's records."""
    if not 0 <= first_trial < trials:
        raise ValueError("run_architectures: expected 0 <= first_trial < "
                         f"trials, got first_trial={first_trial}, "
                         f"trials={trials}")
    corpus = load_ptb(data_root)
    if vocab_limit is not None:
        corpus = limit_vocabulary(corpus, vocab_limit)
    paths = []
    for lr in lrs:
        for variant in variants:
            for trial in range(first_trial, trials):
                path = Path(out_dir) / architecture_record_name(
                    variant, lr, trial)
                paths.append(path)
                if path.exists():
                    continue
                config = LMConfig(**{**vars(base), "lr": lr,
                                     "seed": base.seed + trial})
                torch.manual_seed(config.seed)
                model = architecture_model(len(corpus.vocab), variant,
                                           state_size).to(device)
                record = train_language_model(
                    model, corpus, config, progress=progress,
                    name=f"variant {variant}, lr {lr:g}, trial {trial}",
                    command=command,
                    on_epoch=lambda r, p=path.with_suffix(".partial.json"):
                    _saved_then(r, p, on_epoch),
                    checkpoint=path.with_suffix(".checkpoint.pt"))
                save_record(record, path)
                path.with_suffix(".partial.json").unlink(missing_ok=True)
                path.with_suffix(".checkpoint.pt").unlink(missing_ok=True)
    return paths


def _saved_then(record: RunRecord, path: Path,
                on_epoch: Callable[[RunRecord], None] | None) -> None:
    """Save ``record`` to ``path``, then hand it to ``on_epoch``."""
    save_record(record, path)
    if on_epoch is not None:
        on_epoch(record)


def summarize_architectures(records: Sequence[RunRecord]) -> list[dict]:
    """Group records by (variant, learning rate) and give, for each, the
    number of trials and the mean best validation loss (nats per token and
    perplexity) with the half-width of its 95% confidence interval
    (Student's t; ``nan`` for a single trial), sorted by learning rate then
    variant."""
    groups: dict[tuple, list[float]] = {}
    for record in records:
        key = (record.config["lr"], record_variant(record))
        groups.setdefault(key, []).append(record.best_valid_nats)
    rows = []
    for (lr, variant), losses in sorted(groups.items(),
                                        key=lambda kv: (-kv[0][0],
                                                        kv[0][1])):
        interval = mean_interval(losses, confidence=0.95)
        half = interval.half_width if len(losses) > 1 else math.nan
        rows.append({"lr": lr, "variant": variant, "trials": len(losses),
                     "valid_nats": interval.mean, "ci95_nats": half,
                     "valid_perplexity": math.exp(interval.mean)})
    return rows


def record_variant(record: RunRecord) -> int:
    """The post's variant number of a record of :func:`run_architectures`
    (read from its name, ``"variant v, ..."``)."""
    head = record.name.split(",")[0]
    if not head.startswith("variant "):
        raise ValueError("record_variant: expected a record named "
                         f"'variant v, ...', got {record.name!r}")
    return int(head.split()[1])


def load_architecture_records(folder: str | Path | None = None
                              ) -> list[RunRecord]:
    """The finished runs of the sweep in ``folder`` (default: the committed
    ones, ``lstmlib/results/eight_architectures``), sorted by learning rate
    (largest first), variant and seed; runs still being written
    (``*.partial.json``) are left out."""
    folder = (RESULTS_FOLDER / ARCHITECTURE_RESULTS if folder is None
              else Path(folder))
    if not folder.is_dir():
        raise FileNotFoundError("load_architecture_records: expected a "
                                f"folder of sweep records, got {folder}")
    records = [load_record(path) for path in folder.glob("variant*.json")
               if not path.name.endswith(IN_PROGRESS)]
    return sorted(records, key=lambda r: (-r.config["lr"], record_variant(r),
                                          r.config["seed"]))


@dataclass(frozen=True)
class ClaimTest:
    """One pair ``(a, b)`` of one of the post's claims, tested on the
    seeds both architectures ran (``seeds``).

    ``one_sided`` compares the best validation losses (nats per token)
    ``a - b`` seed by seed in the claim's direction (``a`` lower), or both
    ways for :data:`NO_EFFECT_CLAIM`; ``low``/``high`` bound the mean
    difference with a two-sided ``confidence`` interval (paired t);
    ``adjusted_p`` is ``one_sided.t_p`` adjusted for the number of pairs
    judged together (Benjamini–Hochberg); ``verdict`` is

    - ``"too few seeds"``: fewer than the ``min_seeds`` the judgement
      needs (``adjusted_p`` is ``nan``; the pair is not judged);
    - ``"replicates"``: the adjusted p is below ``1 - confidence`` (for the
      no-effect claim: it is not, so no clear effect was found);
    - ``"reversed"``: the interval lies wholly on the other side of zero
      (for the no-effect claim: ``"an effect"``, the adjusted p is below);
    - ``"undecided"``: neither.
    """
    claim: str
    a: int
    b: int
    seeds: tuple[int, ...]
    one_sided: PairedComparison
    low: float
    high: float
    adjusted_p: float
    verdict: str

    @property
    def perplexity_ratio(self) -> float:
        """exp(mean difference): ``a``'s perplexity over ``b``'s."""
        return math.exp(self.one_sided.mean_difference)


def post_claim_tests(records: Sequence[RunRecord], lr: float, *,
                     confidence: float = 0.95,
                     min_seeds: int = POST_TRIALS) -> list[ClaimTest]:
    """Test the post's claims (:data:`POST_CLAIMS`) on the sweep's records
    at learning rate ``lr``: every pair whose two architectures share at
    least two seeds, in the order of :data:`POST_CLAIMS`. Pairs with at
    least ``min_seeds`` shared seeds (by default the protocol's trials)
    are judged, their p-values adjusted together; see
    :class:`ClaimTest`."""
    by_variant: dict[int, dict[int, float]] = {}
    for record in records:
        if record.config["lr"] == lr:
            by_variant.setdefault(record_variant(record), {})[
                record.config["seed"]] = record.best_valid_nats
    found = []
    for claim, pairs in POST_CLAIMS.items():
        for a, b in pairs:
            seeds = tuple(sorted(set(by_variant.get(a, ())) &
                                 set(by_variant.get(b, ()))))
            if len(seeds) < 2:
                continue
            x = [by_variant[a][s] for s in seeds]
            y = [by_variant[b][s] for s in seeds]
            alternative = ("two-sided" if claim == NO_EFFECT_CLAIM
                           else "less")
            found.append((claim, a, b, seeds,
                          paired_comparison(x, y, alternative=alternative,
                                            confidence=confidence),
                          paired_comparison(x, y, confidence=confidence)))
    judged = [k for k, (_, _, _, seeds, _, _) in enumerate(found)
              if len(seeds) >= min_seeds]
    adjusted = [math.nan] * len(found)
    if judged:
        for k, p in zip(judged, stats.false_discovery_control(
                [found[k][4].t_p for k in judged], method="bh")):
            adjusted[k] = float(p)
    level = 1 - confidence
    tests = []
    for (claim, a, b, seeds, one, two), p in zip(found, adjusted):
        if len(seeds) < min_seeds:
            verdict = "too few seeds"
        elif claim == NO_EFFECT_CLAIM:
            verdict = "an effect" if p < level else "replicates"
        elif p < level:
            verdict = "replicates"
        elif two.mean_low > 0:
            verdict = "reversed"
        else:
            verdict = "undecided"
        tests.append(ClaimTest(claim, a, b, seeds, one, two.mean_low,
                               two.mean_high, p, verdict))
    return tests
