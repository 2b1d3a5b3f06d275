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
from pathlib import Path
from typing import Sequence

import torch

from ..cells.lstm import LSTM_VARIANTS
from ..experiments.data import load_ptb
from ..experiments.language_model import (LMConfig, epoch_line, load_record,
                                          save_record, train_language_model)
from ..experiments.ptb import (POST_LEARNING_RATES, POST_PROTOCOL,
                               POST_STATE_SIZE, POST_TRIALS, ZAREMBA_SMALL,
                               run_architectures, summarize_architectures,
                               zaremba_small_model)
from ..seeds import seed_base

__all__ = ["main"]


def _zaremba(args) -> int:
    torch.set_num_threads(args.threads)
    corpus = load_ptb(args.data)
    config = LMConfig(**{**vars(ZAREMBA_SMALL), "epochs": args.epochs,
                         "seed": args.seed,
                         "max_train_tokens": args.max_train_tokens,
                         "loss_sum_over_time": args.loss == "sum-over-time"})
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


def _architectures(args) -> int:
    torch.set_num_threads(args.threads)
    base = LMConfig(**{**vars(POST_PROTOCOL), "epochs": args.epochs,
                       "patience": args.patience, "seed": args.seed,
                       "max_train_tokens": args.max_train_tokens})
    paths = run_architectures(
        args.out_dir, variants=args.variants, lrs=args.lrs,
        trials=args.trials, base=base, state_size=args.state_size,
        vocab_limit=args.vocab_limit, data_root=args.data,
        device=args.device, progress=args.progress, command=args.command)
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
                    "(Penn Treebank). Each run writes a JSON record.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", default=None, metavar="DIR",
                        help="folder holding ptb/ (default: $LSTMLIB_DATA, "
                             "the cache, or download)")
    common.add_argument("--device", default="cpu",
                        help="torch device (default: cpu)")
    common.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default: 1)")
    common.add_argument("--seed", type=int, default=None,
                        help="seed of the first run (default: "
                        "$LSTMLIB_SEED, or 0)")
    common.add_argument("--max-train-tokens", type=int, default=None,
                        metavar="N", help="train on the first N tokens only "
                                          "(a small-scale run)")
    common.add_argument("--progress", action=argparse.BooleanOptionalAction,
                        default=None, help="show progress bars (default: "
                        "only on an interactive terminal outside CI)")
    commands = parser.add_subparsers(dest="experiment", required=True)

    zaremba = commands.add_parser(
        "zaremba-small", parents=[common],
        help="Zaremba et al. (2014), small non-regularised LSTM")
    zaremba.add_argument("--implementation", choices=("lstmlib", "torch"),
                         default="lstmlib")
    zaremba.add_argument("--epochs", type=int, default=ZAREMBA_SMALL.epochs)
    zaremba.add_argument("--loss", choices=("sum-over-time", "token-mean"),
                         default="sum-over-time",
                         help="the loss differentiated: the sum over the "
                              "window's steps of the batch mean, as in "
                              "Zaremba et al.'s code (default), or the mean "
                              "over tokens (20 times smaller gradients)")
    zaremba.add_argument("--out", required=True, metavar="FILE.json")
    zaremba.set_defaults(run=_zaremba)

    sweep = commands.add_parser(
        "architectures", parents=[common],
        help="the source post's eight-architecture comparison")
    sweep.add_argument("--out-dir", required=True, metavar="DIR")
    sweep.add_argument("--variants", type=int, nargs="+",
                       default=sorted(LSTM_VARIANTS),
                       choices=sorted(LSTM_VARIANTS))
    sweep.add_argument("--lrs", type=float, nargs="+",
                       default=list(POST_LEARNING_RATES))
    sweep.add_argument("--trials", type=int, default=POST_TRIALS)
    sweep.add_argument("--epochs", type=int, default=POST_PROTOCOL.epochs)
    sweep.add_argument("--patience", type=int,
                       default=POST_PROTOCOL.patience)
    sweep.add_argument("--state-size", type=int, default=POST_STATE_SIZE)
    sweep.add_argument("--vocab-limit", type=int, default=None, metavar="V",
                       help="keep the V-1 most frequent words (small scale)")
    sweep.set_defaults(run=_architectures)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.command = "python -m lstmlib.commands.ptb " + shlex.join(argv)
    if args.seed is None:
        args.seed = seed_base()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
