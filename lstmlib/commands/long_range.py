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

from ..experiments.long_range import LAG_CELLS, lag_sweep
from ..records import versions, write_json_atomically

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> dict:
    """The command: run a sweep, write its records and provenance."""
    parser = argparse.ArgumentParser(
        prog="python -m lstmlib.commands.long_range", description=__doc__.split(
            "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", default=list(LAG_CELLS))
    parser.add_argument("--tasks", nargs="+", default=["adding", "copy"])
    parser.add_argument("--lags", nargs="+", type=int, default=[10, 20, 40])
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="seeds to run (default: $LSTMLIB_SEED, or 0)")
    parser.add_argument("--state-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
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
