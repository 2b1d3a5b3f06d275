"""The command line of Part II's closing experiment: do the gated cells
learn lags that the best-initialised vanilla cell cannot?

    python -m lstmlib.commands.gated_versus_vanilla --runs 20 \\
        --lags 10 20 40 80 --out gated_versus_vanilla_cpu.json

For every task, lag and contestant it trains ``--runs`` seeds at once
(:func:`lstmlib.experiments.long_range.solve_lag_task_seeds`, one seed
ensemble) under one budget, and writes every run's record together with
the contestant's parameter count, the command, the date, the machine and
the library versions (:func:`lstmlib.records.versions`), rewriting the
file atomically after each ensemble. A contestant is a cell of
:data:`lstmlib.experiments.long_range.LAG_CELLS` with a state size,
written ``NAME:SIZE`` (``"vanilla RNN:33"``) or ``NAME`` for the default
size (``--state-size``). The vanilla RNN there is the orthogonally
initialised one; 33 units give it about the basic LSTM's parameter count
at 16.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime, timezone
from typing import List, Sequence, Tuple

import torch

from ..experiments.long_range import (LAG_CELLS, LAG_TASKS, lag_model,
                                      solve_lag_task_seeds)
from .arguments import (non_negative_int, positive_float, positive_int,
                        add_machine_options, add_budget_options)
from ..records import versions, write_json_atomically
from ..seeds import seeds as consecutive_seeds

__all__ = ["main", "contestant"]

#: What the command runs unless told otherwise: the orthogonal vanilla
#: RNN at the gated cells' size and at the basic LSTM's parameter count,
#: the GRU and the basic LSTM.
DEFAULT_CONTESTANTS = ["vanilla RNN", "vanilla RNN:33", "GRU", "basic LSTM"]


def contestant(text: str, state_size: int) -> Tuple[str, int]:
    """``"NAME:SIZE"`` or ``"NAME"`` → ``(NAME, SIZE)`` (``state_size`` when
    no size is given); NAME must be a key of ``LAG_CELLS``."""
    name, _, size = text.rpartition(":") if ":" in text else (text, "", "")
    if name not in LAG_CELLS:
        raise ValueError(f"gated_versus_vanilla: expected a cell of "
                         f"{list(LAG_CELLS)}, optionally ':SIZE', got "
                         f"{text!r}")
    if size and not (size.isdigit() and int(size) > 0):
        raise ValueError(f"gated_versus_vanilla: expected a positive state "
                         f"size after ':', got {text!r}")
    return name, int(size) if size else state_size


def parameter_count(cell: str, task: str, state_size: int) -> int:
    """Trainable parameters of the whole model (cell and read-out)."""
    model = lag_model(cell, task, state_size=state_size, seed=0)
    return sum(p.numel() for p in model.parameters())


def main(argv: Sequence[str] | None = None) -> dict:
    """The command: run the grid, write its records and provenance."""
    parser = argparse.ArgumentParser(
        prog="python -m lstmlib.commands.gated_versus_vanilla",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contestants", nargs="+",
                        default=DEFAULT_CONTESTANTS, metavar="CELL[:SIZE]",
                        help="cells of LAG_CELLS, each with an optional "
                             "state size (default: 'vanilla RNN' "
                             "'vanilla RNN:33' GRU 'basic LSTM')")
    parser.add_argument("--tasks", nargs="+", default=["adding"],
                        choices=list(LAG_TASKS), metavar="TASK",
                        help=f"tasks, among: {', '.join(LAG_TASKS)} "
                             "(quote 'temporal order') (default: adding)")
    parser.add_argument("--lags", nargs="+", type=positive_int,
                        default=[10, 20, 40, 80], metavar="T",
                        help="lags T (default: 10 20 40 80)")
    parser.add_argument("--runs", type=positive_int, default=20,
                        help="seeds per contestant and lag, trained as one "
                             "seed ensemble (default: %(default)s)")
    parser.add_argument("--offset", type=non_negative_int, default=1000,
                        help="the seeds are lstmlib.seeds(runs, offset), "
                             "from $LSTMLIB_SEED + offset on "
                             "(default: %(default)s)")
    add_budget_options(parser, steps=600,
                       state_help="units of a contestant without ':SIZE'")
    parser.add_argument("--solved-fraction", type=positive_float,
                        default=0.1,
                        help="solved: held-out loss below this fraction of "
                             "the task's chance loss, below 1 "
                             "(default: %(default)s)")
    add_machine_options(parser, device_option=False)
    parser.add_argument("--out", required=True, metavar="FILE.json",
                        help="where to write the records (required); the "
                             "book's are in lstmlib/results/"
                             "gated_versus_vanilla/")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        contestants: List[Tuple[str, int]] = [
            contestant(text, args.state_size) for text in args.contestants]
    except ValueError as error:
        parser.error(str(error))
    run_seeds = consecutive_seeds(args.runs, offset=args.offset)
    found = versions()
    result = dict(
        command="python -m lstmlib.commands.gated_versus_vanilla " +
                shlex.join(sys.argv[1:] if argv is None else list(argv)),
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine=f"{found['cpu']} ({torch.get_num_threads()} thread(s))",
        versions=found, seeds=run_seeds, records=[])
    for task in args.tasks:
        for T in args.lags:
            for cell, size in contestants:
                records, _ = solve_lag_task_seeds(
                    cell, task, T, run_seeds, state_size=size,
                    batch_size=args.batch_size, steps=args.steps,
                    lr=args.lr, solved_fraction=args.solved_fraction)
                count = parameter_count(cell, task, size)
                for record in records:
                    record["parameters"] = count
                result["records"].extend(records)
                solved = sum(r["solved"] for r in records)
                print(f"{task} T={T} {cell}:{size} ({count} parameters): "
                      f"solved {solved}/{len(records)}", flush=True)
                write_json_atomically(result, args.out)
    return result


if __name__ == "__main__":
    main()
