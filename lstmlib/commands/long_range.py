"""The command line of the long-range sweeps: which cells solve the
long-range tasks as the lag grows.

    python -m lstmlib.commands.long_range --tasks adding copy --lags 10 20 40 \\
        --steps 1000 --out sweep.json

writes the records (:func:`lstmlib.experiments.long_range.lag_sweep`)
together with the command, the date, the machine and the library versions
(:func:`lstmlib.records.versions`), rewriting the file atomically after
every run.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import datetime, timezone
from typing import Sequence

import torch

from ..experiments.long_range import LAG_CELLS, LAG_TASKS, lag_sweep
from ..records import versions, write_json_atomically
from .arguments import (non_negative_int, positive_int, add_machine_options,
                        add_budget_options)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lstmlib.commands.long_range",
        description=__doc__.split("\n\n")[0] + "\n\nPrints one JSON line "
        "per run (cell, task, lag, seed) as it finishes.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", default=list(LAG_CELLS),
                        choices=list(LAG_CELLS), metavar="CELL",
                        help="cells to train, among: "
                             f"{', '.join(LAG_CELLS)} (default: all)")
    parser.add_argument("--tasks", nargs="+", default=["adding", "copy"],
                        choices=list(LAG_TASKS), metavar="TASK",
                        help=f"tasks, among: {', '.join(LAG_TASKS)} "
                             "(quote 'temporal order') "
                             "(default: adding copy)")
    parser.add_argument("--lags", nargs="+", type=positive_int,
                        default=[10, 20, 40], metavar="T",
                        help="lags T (temporal order runs only T >= 20) "
                             "(default: 10 20 40)")
    parser.add_argument("--seeds", nargs="+", type=non_negative_int,
                        default=None, metavar="SEED",
                        help="seeds to run (default: $LSTMLIB_SEED, or 0)")
    add_budget_options(parser, steps=400, state_help="units of each cell")
    add_machine_options(parser)
    parser.add_argument("--out", required=True, metavar="FILE.json",
                        help="where to write the sweep (required)")
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    """The command: run a sweep, write its records and provenance."""
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    lags = args.lags
    if "copy" in args.tasks or "temporal order" in args.tasks:
        lags = {task: [T for T in args.lags
                       if task != "temporal order" or T >= 20]
                for task in args.tasks}
    found = versions()
    result = dict(
        command="python -m lstmlib.commands.long_range " + shlex.join(
            sys.argv[1:] if argv is None else list(argv)),
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine=f"{found['cpu']} ({torch.get_num_threads()} thread(s)), "
                f"device "
                f"{args.device}" + (f" ({torch.cuda.get_device_name()})"
                                    if args.device.startswith("cuda")
                                    else ""),
        versions=found, records=[])

    def save(record: dict) -> None:
        result["records"].append(record)
        print(json.dumps(record), flush=True)
        write_json_atomically(result, args.out)

    lag_sweep(args.cells, args.tasks, lags, seeds=args.seeds, log=save,
              state_size=args.state_size, batch_size=args.batch_size,
              steps=args.steps, lr=args.lr, device=args.device)
    return result


if __name__ == "__main__":
    main()
