"""The command line of the full-scale character-level LSTM: train it on
Tiny Shakespeare and record what its gates do on held-out text.

    python -m lstmlib.commands.char_lm --out char_lm.json
    python -m lstmlib.commands.char_lm --layers 1 --state-size 128 \\
        --epochs 1 --max-train-tokens 100000 --out small.json

It builds :func:`~lstmlib.experiments.char_lm.char_language_model`
(default 2 layers of 256 basic LSTM units), measures its gates on the
first ``--analysis-chars`` characters of the test split before training,
trains it with :data:`~lstmlib.experiments.char_lm.CHAR_LM_FULL` (stateful
truncated BPTT, Adam, early stopping on the validation split), measures
again with the best parameters, and writes one JSON record: the command,
the date, the machine, the library versions, the training run (per-epoch
losses in nats per character) and the two gate reports of
:func:`~lstmlib.experiments.char_lm.gate_report` (no weights). The record
is rewritten after every epoch, so an interrupted run leaves its epochs.

Cost, measured on one thread of the book's 2-core CPU (an AMD EPYC, the
other core busy): the committed run
(``lstmlib/results/char_lm/shakespeare_full.json``, the default size,
2 x 256 units, 50 streams, windows of 50) took 28 minutes for its 15
epochs of the 1,003,854 training characters, about 2 minutes an epoch;
early stopping may end a run sooner.
``--device cuda`` runs it on a GPU (not timed here).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Sequence

import torch

from ..analysis.lstm_backward import LSTMStates
from ..experiments.char_lm import (CHAR_LM_EMBEDDING, CHAR_LM_FULL,
                                   CHAR_LM_LAYERS, CHAR_LM_STATE_SIZE,
                                   char_language_model, char_model_states,
                                   gate_report)
from ..experiments.data import load_tiny_shakespeare
from ..experiments.language_model import (LMConfig, epoch_line,
                                          train_language_model)
from ..records import versions, write_json_atomically
from .arguments import (existing_folder, non_negative_int, positive_float,
                        positive_int, add_machine_options, add_patience_option)
from ..seeds import seed_base

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    full = CHAR_LM_FULL
    parser = argparse.ArgumentParser(
        prog="python -m lstmlib.commands.char_lm",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", required=True, metavar="FILE.json",
                        help="where to write the record")
    parser.add_argument("--data", type=existing_folder, default=None,
                        metavar="DIR",
                        help="folder holding tinyshakespeare/; None: "
                             "$LSTMLIB_DATA, the cache, or a download")
    parser.add_argument("--layers", type=positive_int,
                        default=CHAR_LM_LAYERS, help="LSTM layers")
    parser.add_argument("--state-size", type=positive_int,
                        default=CHAR_LM_STATE_SIZE, help="units per layer")
    parser.add_argument("--embedding-size", type=positive_int,
                        default=CHAR_LM_EMBEDDING,
                        help="size of the character embedding")
    parser.add_argument("--forget-bias", type=float, default=1.0,
                        help="initial forget-gate bias b_f")
    parser.add_argument("--epochs", type=positive_int, default=full.epochs,
                        help="passes over the training text, at most")
    parser.add_argument("--batch-size", type=positive_int,
                        default=full.batch_size, help="parallel streams")
    parser.add_argument("--bptt", type=positive_int, default=full.bptt,
                        help="steps per truncated-BPTT window")
    parser.add_argument("--lr", type=positive_float, default=full.lr,
                        help="Adam's learning rate")
    add_patience_option(parser, full.patience)
    parser.add_argument("--max-train-tokens", type=positive_int,
                        default=None, metavar="N",
                        help="train on the first N characters only (a "
                             "small-scale run); None: all")
    parser.add_argument("--analysis-chars", type=positive_int,
                        default=20_000, metavar="N",
                        help="measure the gates on the first N characters "
                             "of the test split")
    parser.add_argument("--seed", type=non_negative_int, default=None,
                        help="seed of the model and the batches; None: "
                             "$LSTMLIB_SEED, or 0")
    add_machine_options(parser)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction,
                        default=None, help="progress bars; None: only on "
                                           "an interactive terminal")
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    """The command: train, measure before and after, write the record;
    returns the record."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    seed = seed_base() if args.seed is None else args.seed
    torch.set_num_threads(args.threads)
    corpus = load_tiny_shakespeare(args.data)
    config = LMConfig(**{**asdict(CHAR_LM_FULL), "epochs": args.epochs,
                         "batch_size": args.batch_size, "bptt": args.bptt,
                         "lr": args.lr, "patience": args.patience,
                         "max_train_tokens": args.max_train_tokens,
                         "seed": seed})
    torch.manual_seed(seed)
    model = char_language_model(
        len(corpus.vocab), layers=args.layers, state_size=args.state_size,
        embedding_size=args.embedding_size,
        forget_bias=args.forget_bias).to(args.device)
    held_out = corpus.test[:args.analysis_chars]
    text = "".join(corpus.vocab.decode(held_out))

    def report() -> dict:
        states = char_model_states(model, held_out.to(args.device))
        on_cpu = [LSTMStates(s.h.cpu(), s.c.cpu(), s.i.cpu(), s.f.cpu(),
                             s.c_tilde.cpu(), s.o.cpu()) for s in states]
        return gate_report(on_cpu, text, forget_bias=args.forget_bias)

    found = versions()
    command = "python -m lstmlib.commands.char_lm " + shlex.join(argv)
    record = dict(
        command=command,
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine=f"{found['cpu']} ({torch.get_num_threads()} thread(s)), "
                f"device {args.device}"
                + (f" ({torch.cuda.get_device_name()})"
                   if args.device.startswith("cuda") else ""),
        versions=found,
        analysis={"split": "test", "characters": len(text)},
        before_training=report(), run=None, after_training=None)

    def save_epoch(run) -> None:
        record["run"] = asdict(run)
        write_json_atomically(record, args.out)
        print(epoch_line(run, config.epochs), flush=True)

    run = train_language_model(model, corpus, config, name="char-lm",
                               command=command, progress=args.progress,
                               on_epoch=save_epoch)
    record["run"] = asdict(run)
    record["after_training"] = report()
    write_json_atomically(record, args.out)
    layer = record["after_training"]["layers"][-1]
    print(f"test {run.test_nats:.3f} nats per character; top layer: forget "
          f"gates right-saturated {layer['saturation']['f']['right_mean']:.2f}"
          f" of the time, median time constant "
          f"{layer['time_constants']['median']:.1f} steps; record: "
          f"{args.out}")
    return record


if __name__ == "__main__":
    main()
