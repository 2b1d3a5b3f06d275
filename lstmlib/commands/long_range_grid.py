"""The command line of the long-range grid: which cells can learn the
long-range tasks, with the learning rate tuned per cell and task and
several seeds per point (:mod:`lstmlib.experiments.long_range_grid`).

    nohup python -m lstmlib.commands.long_range_grid --threads 1 \\
        > long_range_grid.log 2>&1 &

runs the default grid (:data:`~lstmlib.experiments.long_range_grid.
DEFAULT_PROTOCOL`) into ``--out`` (default: the committed folder,
``lstmlib/results/long_range_grid/``). Each point (cell, task, lag,
learning rate, phase) is one JSON file holding its K runs, written
atomically when the point is done, with the exact command, the date, the
machine (processor, threads), the precision, the library versions with
the git commit and whether the tree was dirty
(:func:`lstmlib.records.versions`), the model's parameter count and the
point's settings. A point whose file exists is skipped, so a killed run
resumes where it stopped when the same command is run again; a file made
under other settings (budget, rates, seeds, selection lag) stops the
command instead of being mixed in.

The points run in the order of the test plan: before the first test lag
of a task, the selection of that task (every cell at every rate, on the
validation set); then the test points of that lag, each cell at the rate
its selection chose, on the test set. :func:`grid_coverage` re-reads
each record's command with this parser and lists what was asked for but
is missing, and any record its command did not ask for; ``--coverage``
prints it.

The default grid, 12 cell variants, 4 tasks, 3 rates: 144 selection
points of 3 seeds and 72 test points of 5 seeds. Its cost on one thread
of the book's 2-core CPU, estimated from timed steps of every variant
(the other core busy): about 3.3 core-hours, in this order and
cumulatively: adding (Le) selection at T = 50 and test at T = 100,
0.4 h; temporal order, selection at 50 and test at 100, 0.9 h; adding
(Hochreiter & Schmidhuber), selection at 50 and test at 100, 1.3 h;
adding (Le) at T = 200, 1.7 h; copy with 64 units and 3,000 steps,
selection and test at T = 10, 2.9 h; adding (Hochreiter & Schmidhuber)
at T = 200, 3.3 h.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Sequence, Tuple

import torch

from ..experiments.long_range_grid import (
    DEFAULT_PROTOCOL, GRID_CELLS, GRID_FOLDER, GRID_TASKS, GridPoint,
    GridProtocol, SEED_LIMIT, expected_points, load_point, point_path,
    run_grid)
from ..records import versions
from .arguments import (add_machine_options, non_negative_int,
                        positive_float, positive_int)

__all__ = ["main", "grid_coverage", "Coverage", "protocol_from_arguments",
           "PROGRAM"]

#: How the records name the command.
PROGRAM = "python -m lstmlib.commands.long_range_grid"


def task_lag(text: str) -> Tuple[str, int]:
    """``"TASK=T"`` → ``(TASK, T)``, TASK a grid task, T an integer at
    least the task's smallest lag."""
    task, equals, lag = text.partition("=")
    if not equals or task not in GRID_TASKS:
        raise argparse.ArgumentTypeError(
            f"expected TASK=T with TASK among {', '.join(GRID_TASKS)}, got "
            f"{text!r}")
    smallest = GRID_TASKS[task].minimum_lag
    if not lag.isdigit() or int(lag) < smallest:
        raise argparse.ArgumentTypeError(
            f"expected a lag T >= {smallest} for {task}, got {text!r}")
    return task, int(lag)


def task_count(what: str):
    """The type of ``"TASK=N"`` → ``(TASK, N)``, TASK a grid task, N a
    positive integer (``what`` names N in errors)."""
    def parse(text: str) -> Tuple[str, int]:
        task, equals, count = text.partition("=")
        if not equals or task not in GRID_TASKS:
            raise argparse.ArgumentTypeError(
                f"expected TASK={what.upper()} with TASK among "
                f"{', '.join(GRID_TASKS)}, got {text!r}")
        if not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(
                f"expected a positive {what} for {task}, got {text!r}")
        return task, int(count)
    parse.__name__ = f"task_{what.replace(' ', '_')}"
    return parse


def _parser() -> argparse.ArgumentParser:
    p = DEFAULT_PROTOCOL
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description=__doc__.split("\n\n")[0] + "\n\nPrints one JSON line "
        "per point as it finishes (or is found done).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(GRID_FOLDER), metavar="FOLDER",
                        help="the folder of the point files; existing "
                             "points are skipped (default: the committed "
                             "grid, lstmlib/results/long_range_grid)")
    parser.add_argument("--cells", nargs="+", default=list(GRID_CELLS),
                        choices=list(GRID_CELLS), metavar="CELL",
                        help=f"cell variants, among: "
                             f"{', '.join(GRID_CELLS)} (default: all)")
    parser.add_argument("--tasks", nargs="+", default=None,
                        choices=list(GRID_TASKS), metavar="TASK",
                        help=f"tasks, among: {', '.join(GRID_TASKS)} "
                             f"(default: every task of --select)")
    parser.add_argument("--phase", choices=["select", "all"], default="all",
                        help="'select': the selection points only; 'all': "
                             "selection, then test (default: %(default)s)")
    parser.add_argument("--select", nargs="+", type=task_lag,
                        default=list(p.select_lags.items()),
                        metavar="TASK=T",
                        help="the selection lag of each task (default: "
                             + " ".join(f"{t}={T}" for t, T in
                                        p.select_lags.items()) + ")")
    parser.add_argument("--test", nargs="+", type=task_lag,
                        default=list(p.test_plan), metavar="TASK=T",
                        help="the test lags, in the order they run "
                             "(default: " + " ".join(
                                 f"{t}={T}" for t, T in p.test_plan) + ")")
    parser.add_argument("--lrs", nargs="+", type=positive_float,
                        default=list(p.lrs), metavar="LR",
                        help="the Adam learning rates of the selection "
                             "(default: " + " ".join(
                                 f"{lr:g}" for lr in p.lrs) + ")")
    parser.add_argument("--seeds", type=positive_int,
                        default=len(p.test_seeds), metavar="K",
                        help="seeds per test point (default: %(default)s)")
    parser.add_argument("--select-seeds", type=positive_int,
                        default=len(p.select_seeds), metavar="K",
                        help="seeds per selection point (default: "
                             "%(default)s)")
    parser.add_argument("--seed-base", type=non_negative_int,
                        default=p.select_seeds[0], metavar="BASE",
                        help="selection seeds BASE, BASE+1, ..., test seeds "
                             "BASE+100, BASE+101, ... (default: "
                             "%(default)s)")
    parser.add_argument("--state-size", type=positive_int,
                        default=p.state_size,
                        help="units of each cell; the 'matched' variants "
                             "get the basic LSTM's parameter count at this "
                             "size (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive_int,
                        default=p.batch_size,
                        help="sequences per training step "
                             "(default: %(default)s)")
    parser.add_argument("--steps", type=positive_int, default=p.steps,
                        help="training steps of every run, no early stop "
                             "(default: %(default)s)")
    parser.add_argument("--task-state-size", nargs="+",
                        type=task_count("state size"),
                        default=list(p.task_state_sizes.items()),
                        metavar="TASK=N",
                        help="a task's own state size, instead of "
                             "--state-size (default: " + (" ".join(
                                 f"{t}={n}" for t, n in
                                 p.task_state_sizes.items()) or "none")
                        + ")")
    parser.add_argument("--task-steps", nargs="+", type=task_count("steps"),
                        default=list(p.task_steps.items()),
                        metavar="TASK=STEPS",
                        help="a task's own number of steps, instead of "
                             "--steps (default: " + (" ".join(
                                 f"{t}={n}" for t, n in
                                 p.task_steps.items()) or "none") + ")")
    parser.add_argument("--validation-size", type=positive_int,
                        default=p.validation_size,
                        help="validation sequences (default: %(default)s)")
    parser.add_argument("--test-size", type=positive_int,
                        default=p.test_size,
                        help="test sequences (default: %(default)s)")
    add_machine_options(parser, device_option=False)
    parser.add_argument("--coverage", action="store_true",
                        help="run nothing: print what the records in "
                             "--out cover (grid_coverage) as JSON and exit "
                             "(default: off)")
    return parser


def protocol_from_arguments(args: argparse.Namespace
                            ) -> Tuple[GridProtocol, List[str]]:
    """The protocol and the cells parsed arguments ask for. Raises
    ``ValueError`` for a protocol that cannot be run (e.g. a test lag of
    a task without a selection lag)."""
    select = dict(args.select)
    tasks = list(select) if args.tasks is None else list(args.tasks)
    missing = [t for t in tasks if t not in select]
    if missing:
        raise ValueError(f"expected a selection lag (--select TASK=T) for "
                         f"every task, missing: {', '.join(missing)}")
    plan = tuple((t, T) for t, T in args.test if t in tasks)
    if len(set(plan)) != len(plan):
        raise ValueError(f"expected each test lag once, got "
                         f"{[f'{t}={T}' for t, T in plan]}")
    base, K, K_select = args.seed_base, args.seeds, args.select_seeds
    if K_select > 100 or base + 100 + K > SEED_LIMIT:
        raise ValueError(f"expected at most 100 selection seeds and test "
                         f"seeds below {SEED_LIMIT}, got --select-seeds "
                         f"{K_select} --seeds {K} --seed-base {base}")
    protocol = GridProtocol(
        state_size=args.state_size, batch_size=args.batch_size,
        steps=args.steps, lrs=tuple(float(lr) for lr in args.lrs),
        select_seeds=tuple(range(base, base + K_select)),
        test_seeds=tuple(range(base + 100, base + 100 + K)),
        select_lags={t: select[t] for t in tasks},
        test_plan=plan if args.phase == "all" else (),
        validation_size=args.validation_size, test_size=args.test_size,
        task_steps={t: n for t, n in args.task_steps if t in tasks},
        task_state_sizes={t: n for t, n in args.task_state_size
                          if t in tasks})
    return protocol, list(dict.fromkeys(args.cells))


def _line(record: dict, status: str) -> str:
    p, s = record["point"], record["summary"]
    return json.dumps(dict(status=status, **p,
                           successes=f"{s['successes']}/{s['trials']}",
                           loss_median=s["loss_median"],
                           seconds=record["seconds"]["total"]))


def main(argv: Sequence[str] | None = None) -> List[Path]:
    """The command: run (or resume) a grid; the paths of its points."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        protocol, cells = protocol_from_arguments(args)
    except ValueError as error:
        parser.error(str(error))
    folder = Path(args.out)
    if args.coverage:
        coverage = grid_coverage(folder)
        print(json.dumps(dict(
            records=coverage.records, commands=coverage.commands,
            expected=len(coverage.expected),
            missing=[p.name() for p in coverage.missing],
            waiting=[list(w[1:]) for w in coverage.waiting],
            unexpected=coverage.unexpected), indent=1))
        return []
    torch.set_num_threads(args.threads)
    found = versions()
    provenance = dict(
        command=PROGRAM + " " + shlex.join(
            sys.argv[1:] if argv is None else list(argv)),
        machine=dict(cpu=found["cpu"], cpu_count=found["cpu_count"],
                     threads=torch.get_num_threads(), device="cpu",
                     platform=found["platform"]),
        versions=found)
    try:
        return run_grid(folder, protocol, cells, provenance=provenance,
                        log=lambda record, status: print(
                            _line(record, status), flush=True))
    except ValueError as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")


# -- coverage -----------------------------------------------------------------
@dataclass
class Coverage:
    """What the records of a grid folder say about their commands.

    Attributes:
        commands: the distinct commands that wrote the records.
        records: the number of record files.
        expected: the points those commands asked for, as far as the
            folder can tell (test points only once their selection is
            complete).
        missing: expected points without a record.
        waiting: ``(command, cell, task, T)`` of test points whose
            selection is not complete yet.
        unexpected: record files their own command did not ask for (a
            point outside it, other settings, a file under the wrong
            name).
    """
    commands: List[str] = field(default_factory=list)
    records: int = 0
    expected: List[GridPoint] = field(default_factory=list)
    missing: List[GridPoint] = field(default_factory=list)
    waiting: List[tuple] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Nothing missing, waiting or unexpected."""
        return not (self.missing or self.waiting or self.unexpected)


def _arguments(command: str) -> List[str]:
    words = shlex.split(command)
    head = shlex.split(PROGRAM)
    if words[:len(head)] != head:
        raise ValueError(f"grid_coverage: expected a command starting with "
                         f"{PROGRAM!r}, got {command!r}")
    return words[len(head):]


def grid_coverage(folder: str | Path = GRID_FOLDER) -> Coverage:
    """Check the records in ``folder`` against the commands that wrote
    them: each record's command is parsed again with this command's own
    parser, and the points it asks for (:func:`~lstmlib.experiments.
    long_range_grid.expected_points`) are compared with the files there.
    ``--out`` is ignored: the folder checked is ``folder``."""
    folder = Path(folder)
    coverage = Coverage()
    by_command = {}
    for phase in ("select", "test"):
        for path in sorted((folder / phase).glob("*.json")):
            record = load_point(path)
            by_command.setdefault(record["command"], []).append(
                (path, record))
            coverage.records += 1
    expected_all = {}
    for command, found in by_command.items():
        coverage.commands.append(command)
        args = _parser().parse_args(_arguments(command))
        protocol, cells = protocol_from_arguments(args)
        expected, waiting = expected_points(folder, protocol, cells)
        coverage.waiting += [(command, *w) for w in waiting]
        asked = set(expected)
        for point in expected:
            expected_all.setdefault(point, None)
        for path, record in found:
            point = GridPoint(**record["point"])
            if point not in asked:
                coverage.unexpected.append(f"{path}: not asked for by its "
                                           f"command")
            elif record.get("settings") != protocol.settings(point.task):
                coverage.unexpected.append(f"{path}: settings differ from "
                                           f"its command's")
            elif path != point_path(folder, point):
                coverage.unexpected.append(f"{path}: should be "
                                           f"{point_path(folder, point)}")
    coverage.expected = list(expected_all)
    coverage.missing = [p for p in coverage.expected
                        if not point_path(folder, p).is_file()]
    return coverage


if __name__ == "__main__":
    main()
