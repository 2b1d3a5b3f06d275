"""The command line of the full-scale Penn Treebank experiments.

    python -m lstmlib.commands.ptb zaremba-small --out zaremba.json
    python -m lstmlib.commands.ptb architectures --out-dir runs/

The experiments themselves (configurations, models, the sweep and its
summary) are in :mod:`lstmlib.experiments.ptb`; this module only parses the
command line, runs them and prints a summary.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Sequence

import torch

from ..cells.lstm import LSTM_VARIANTS
from ..experiments.data import load_ptb
from ..experiments.language_model import (LMConfig, epoch_line, load_record,
                                          save_record, train_language_model)
from ..experiments.ptb import (ARCHITECTURE_RESULTS, POST_LEARNING_RATES,
                               POST_PROTOCOL, POST_STATE_SIZE, POST_TRIALS,
                               ZAREMBA_SMALL, architecture_record_name,
                               record_variant, run_architectures, summarize_architectures,
                               zaremba_small_model)
from ..records import IN_PROGRESS, RESULTS_FOLDER
from ..seeds import seed_base
from .arguments import (existing_folder, int_at_least, non_negative_int,
                        positive_float, positive_int, add_machine_options,
                        add_patience_option)

__all__ = ["main", "ArchitectureCoverage", "architecture_coverage"]

PROGRAM = "python -m lstmlib.commands.ptb"


def _autocast(args) -> str | None:
    """LMConfig.autocast for ``--precision``."""
    return None if args.precision == "float32" else args.precision


def _zaremba(args) -> int:
    torch.set_num_threads(args.threads)
    corpus = load_ptb(args.data)
    config = LMConfig(**{**vars(ZAREMBA_SMALL), "epochs": args.epochs,
                         "seed": args.seed,
                         "max_train_tokens": args.max_train_tokens,
                         "loss_sum_over_time": args.loss == "sum-over-time",
                         "autocast": _autocast(args)})
    torch.manual_seed(config.seed)
    model = zaremba_small_model(len(corpus.vocab),
                                args.implementation).to(args.device)
    out = Path(args.out)
    record = train_language_model(
        model, corpus, config, name=f"zaremba-small ({args.implementation})",
        command=args.command, progress=args.progress,
        on_epoch=lambda r: (save_record(r, out),
                            print(epoch_line(r, config.epochs), flush=True)))
    save_record(record, out)
    one_stream = ("" if record.test_nats_one_stream is None else
                  f" ({math.exp(record.test_nats_one_stream):.1f} as one "
                  f"stream)")
    print(f"valid perplexity {record.best_valid_perplexity:.1f} (epoch "
          f"{record.best_epoch}), test perplexity "
          f"{record.test_perplexity:.1f}{one_stream}; published 120.7 / "
          f"114.5; record: {out}")
    return 0


def _print_coverage(folder: str) -> int:
    coverage = architecture_coverage(folder)
    print(f"{coverage.records} finished records of "
          f"{len(coverage.expected)} asked for by {len(coverage.commands)} "
          f"command(s) in {folder}")
    for variant, lr, trial in coverage.missing:
        print(f"missing: variant {variant}, lr {lr:g}, trial {trial}")
    for line in coverage.unexpected:
        print(f"unexpected: {line}")
    return 1 if coverage.unexpected else 0


def _architectures(args) -> int:
    if args.coverage:
        return _print_coverage(args.out_dir)
    torch.set_num_threads(args.threads)
    base = LMConfig(**{**vars(POST_PROTOCOL), "epochs": args.epochs,
                       "patience": args.patience, "seed": args.seed,
                       "max_train_tokens": args.max_train_tokens,
                       "autocast": _autocast(args)})
    paths = run_architectures(
        args.out_dir, variants=args.variants, lrs=args.lrs,
        trials=args.trials, first_trial=args.first_trial, base=base,
        state_size=args.state_size,
        vocab_limit=args.vocab_limit, data_root=args.data,
        device=args.device, progress=args.progress, command=args.command,
        on_epoch=lambda r: print(f"{r.name}: {epoch_line(r, args.epochs)}",
                                 flush=True))
    for row in summarize_architectures([load_record(p) for p in paths]):
        print(f"lr {row['lr']:.0e}  variant {row['variant']}  "
              f"perplexity {row['valid_perplexity']:7.2f}  "
              f"nats {row['valid_nats']:.4f} ± {row['ci95_nats']:.4f}  "
              f"({row['trials']} trials)")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lstmlib.commands.ptb",
        description="Full-scale language-model experiments of the book "
                    "(Penn Treebank). Each run writes a JSON record after "
                    "every epoch and prints one line per epoch.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", type=existing_folder, default=None,
                        metavar="DIR",
                        help="folder holding ptb/ptb.{train,valid,test}.txt "
                             "(default: $LSTMLIB_DATA, else the cache "
                             "~/.cache/lstmlib, downloading into it)")
    add_machine_options(common)
    common.add_argument("--seed", type=non_negative_int, default=None,
                        help="seed of the first run (default: "
                        "$LSTMLIB_SEED, or 0)")
    common.add_argument("--max-train-tokens", type=positive_int,
                        default=None, metavar="N",
                        help="train on the first N tokens only, a "
                             "small-scale run (default: all)")
    common.add_argument("--precision", choices=("float32", "bfloat16"),
                        default="float32",
                        help="float32 throughout, or the training windows' "
                             "forward pass under bfloat16 autocast with "
                             "float32 parameters, gradients and optimizer "
                             "(faster on a CPU with bfloat16 instructions); "
                             "the record says which (default: %(default)s)")
    common.add_argument("--progress", action=argparse.BooleanOptionalAction,
                        default=None, help="show progress bars within an "
                        "epoch (default: only on an interactive terminal "
                        "outside CI; the line per epoch is always printed)")
    commands = parser.add_subparsers(dest="experiment", required=True,
                                     metavar="{zaremba-small,architectures}")

    zaremba = commands.add_parser(
        "zaremba-small", parents=[common],
        help="Zaremba et al. (2014), small non-regularised LSTM",
        description="Zaremba et al. (2014), small non-regularised LSTM on "
                    "Penn Treebank.")
    zaremba.add_argument("--implementation", choices=("lstmlib", "torch"),
                         default="lstmlib",
                         help="two BasicLSTMCell layers (lstmlib) or "
                              "nn.LSTM (torch), as a cross-check "
                              "(default: %(default)s)")
    zaremba.add_argument("--epochs", type=positive_int,
                         default=ZAREMBA_SMALL.epochs,
                         help="epochs to train (default: %(default)s)")
    zaremba.add_argument("--loss", choices=("sum-over-time", "token-mean"),
                         default="sum-over-time",
                         help="the loss differentiated: the sum over the "
                              "window's steps of the batch mean, as in "
                              "Zaremba et al.'s code, or the mean over "
                              "tokens (20 times smaller gradients) "
                              "(default: %(default)s)")
    zaremba.add_argument("--out", required=True, metavar="FILE.json",
                         help="where to write the record (required; the "
                              "book's is lstmlib/results/zaremba_small/"
                              "lstmlib.json)")
    zaremba.set_defaults(run=_zaremba)

    sweep = commands.add_parser(
        "architectures", parents=[common],
        help="the source post's eight-architecture comparison",
        description="The source post's eight-architecture comparison: one "
                    "record per (variant, learning rate, trial); runs whose "
                    "record exists are skipped, and a stopped run continues "
                    "from its checkpoint (*.checkpoint.pt, beside the "
                    "record, after every epoch), so a sweep resumes.")
    sweep.add_argument("--out-dir", required=True, metavar="DIR",
                       help="folder for the records (required; the book's "
                            "is lstmlib/results/eight_architectures)")
    sweep.add_argument("--variants", type=int, nargs="+",
                       default=sorted(LSTM_VARIANTS),
                       choices=sorted(LSTM_VARIANTS), metavar="V",
                       help="architectures, 1 (pseudo LSTM) to 8 (basic "
                            "LSTM) (default: all)")
    sweep.add_argument("--lrs", type=positive_float, nargs="+",
                       default=list(POST_LEARNING_RATES), metavar="LR",
                       help="Adam learning rates (default: %s)" % " ".join(
                           f"{lr:g}" for lr in POST_LEARNING_RATES))
    sweep.add_argument("--trials", type=positive_int, default=POST_TRIALS,
                       help="runs per (variant, learning rate), seeded "
                            "--seed, --seed + 1, ... (default: %(default)s)")
    sweep.add_argument("--first-trial", type=non_negative_int, default=0,
                       metavar="K",
                       help="run only trials K to TRIALS - 1, e.g. to spread "
                            "one architecture's seeds over processes "
                            "(default: %(default)s)")
    sweep.add_argument("--epochs", type=positive_int,
                       default=POST_PROTOCOL.epochs,
                       help="most epochs per run (default: %(default)s)")
    add_patience_option(sweep, POST_PROTOCOL.patience)
    sweep.add_argument("--state-size", type=positive_int,
                       default=POST_STATE_SIZE,
                       help="units of the state and of the embedding "
                            "(default: %(default)s)")
    sweep.add_argument("--vocab-limit", type=int_at_least(2), default=None,
                       metavar="V",
                       help="keep the V-1 most frequent words, a "
                            "small-scale run (default: all 10,000)")
    sweep.add_argument("--coverage", action="store_true",
                       help="run nothing: check the finished records in "
                            "--out-dir against the commands that wrote "
                            "them and print what is done, missing and "
                            "unexpected; exit status 1 if anything is "
                            "unexpected (default: off)")
    sweep.set_defaults(run=_architectures)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "first_trial", 0) >= getattr(args, "trials", 1):
        parser.error(f"argument --first-trial: expected a trial below "
                     f"--trials {args.trials}, got {args.first_trial}")
    args.command = f"{PROGRAM} " + shlex.join(argv)
    if args.seed is None:
        args.seed = seed_base()
    return args.run(args)


# -- coverage -----------------------------------------------------------------
@dataclass
class ArchitectureCoverage:
    """What the records of a sweep folder say about their commands.

    Attributes:
        commands: the distinct commands that wrote the records.
        records: the number of finished records (``*.partial.json`` files,
            runs still being written, are not counted).
        expected: ``(variant, lr, trial)`` of every run those commands
            asked for.
        missing: expected runs without a finished record.
        unexpected: record files their own command did not ask for (a run
            outside it, a configuration other than the command's, a file
            under the wrong name).
    """
    commands: List[str] = field(default_factory=list)
    records: int = 0
    expected: List[tuple] = field(default_factory=list)
    missing: List[tuple] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Nothing missing or unexpected."""
        return not (self.missing or self.unexpected)


def _sweep_arguments(command: str) -> argparse.Namespace:
    words = shlex.split(command)
    head = shlex.split(PROGRAM) + ["architectures"]
    if words[:len(head)] != head:
        raise ValueError("architecture_coverage: expected a command starting "
                         f"with {' '.join(head)!r}, got {command!r}")
    return _parser().parse_args(words[len(head) - 1:])


def architecture_coverage(folder: str | Path | None = None
                          ) -> ArchitectureCoverage:
    """Check the finished records in ``folder`` (default: the committed
    sweep, ``lstmlib/results/eight_architectures``) against the commands
    that wrote them: each record's command is parsed again with this
    command's parser, and its runs and their configuration are compared
    with the files. A command without ``--seed`` is taken to have run at
    seed base 0. ``--out-dir`` is ignored: the folder checked is
    ``folder``."""
    folder = (RESULTS_FOLDER / ARCHITECTURE_RESULTS if folder is None
              else Path(folder))
    coverage = ArchitectureCoverage()
    expected: dict[tuple, None] = {}
    for path in sorted(folder.glob("variant*.json")):
        if path.name.endswith(IN_PROGRESS):
            continue
        record = load_record(path)
        coverage.records += 1
        if record.command not in coverage.commands:
            coverage.commands.append(record.command)
        args = _sweep_arguments(record.command)
        base = 0 if args.seed is None else args.seed
        runs = [(v, lr, k) for lr in args.lrs for v in args.variants
                for k in range(args.first_trial, args.trials)]
        for run in runs:
            expected.setdefault(run, None)
        config = record.config
        trial = config["seed"] - base
        run = (record_variant(record), config["lr"], trial)
        asked = {**vars(POST_PROTOCOL), "lr": config["lr"],
                 "seed": config["seed"], "epochs": args.epochs,
                 "patience": args.patience,
                 "max_train_tokens": args.max_train_tokens,
                 "autocast": _autocast(args)}
        if run not in runs:
            coverage.unexpected.append(f"{path}: not asked for by its "
                                       "command")
        elif config != asked:
            differ = sorted(k for k in set(config) | set(asked)
                            if config.get(k) != asked.get(k))
            coverage.unexpected.append(f"{path}: configuration differs from "
                                       f"its command's in {differ}")
        elif record.model.get("embedding_size") != args.state_size:
            coverage.unexpected.append(f"{path}: state size differs from "
                                       "its command's")
        elif path.name != architecture_record_name(*run):
            coverage.unexpected.append(f"{path}: should be "
                                       f"{architecture_record_name(*run)}")
    coverage.expected = list(expected)
    coverage.missing = [run for run in expected if not
                        (folder / architecture_record_name(*run)).is_file()]
    return coverage


if __name__ == "__main__":
    sys.exit(main())
