"""Benchmark lstmlib's recurrent layers against PyTorch's built-ins.

    python benchmarks/recurrent.py                      # the full grid, CPU
    python benchmarks/recurrent.py --quick              # one size, a smoke run
    python benchmarks/recurrent.py --device cuda        # the same on a GPU

For every case, ``Recurrent(cell)`` and the PyTorch module it was converted
from (``from_torch``, so both compute the same function on the same input)
are timed in one process, interleaved (the order alternates every
repetition), and the medians of the repeated runs are compared:

    ratio = median time of lstmlib / median time of the built-in.

A *training step* is forward, ``out.sum().backward()`` and nothing else
(gradients are cleared with ``p.grad = None`` before each run, outside the
timing); *inference* is the forward pass under ``torch.no_grad()``.

Cells with no built-in counterpart are timed against
``Recurrent(BasicLSTMCell)`` of the same sizes, interleaved the same way,
together with the ratio of the matrix arithmetic of their steps to the
basic LSTM's (what their extra work explains).

Results go to a JSON file (``--out``) with the machine, the date, the
threads, the load average before and after and the exact command, and a
readable table (the same name with ``.md``).
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
import warnings
from typing import Callable

import torch
from torch import nn

import lstmlib
from lstmlib.cells.gru import GRUCell
from lstmlib.records import write_json_atomically
from lstmlib.cells.lstm import (
    BasicLSTMCell,
    LSTMVariantCell,
    PeepholeLSTMCell,
    PseudoLSTMCell,
)
from lstmlib.cells.prototype import PrototypeLSTMCell
from lstmlib.cells.recurrent import Recurrent
from lstmlib.cells.vanilla import VanillaRNNCell
from lstmlib.records import versions

#: The targets of the issue: lstmlib / built-in, at most.
TARGETS = {"train": 1.25, "infer": 1.5}

#: (name in the tables, built-in module, lstmlib cell from a built-in).
PAIRS = {
    "lstm": ("Recurrent(BasicLSTMCell) / nn.LSTM", nn.LSTM,
             BasicLSTMCell.from_torch),
    "gru": ('Recurrent(GRUCell(reset="after")) / nn.GRU', nn.GRU,
            GRUCell.from_torch),
    "rnn": ("Recurrent(VanillaRNNCell) / nn.RNN", nn.RNN,
            VanillaRNNCell.from_torch),
}

SIZES = [(128, 256), (200, 200), (650, 650)]     # (input, state)
BATCHES = [1, 32]
LENGTHS = [35, 100]


def _others(m: int, n: int):
    """Cells without a built-in: (name, cell, rows of its recurrent and
    of its input matrices in multiples of n; the basic LSTM's are 4, 4)."""
    return [
        ("PrototypeLSTMCell", PrototypeLSTMCell(m, n), 4, 4),
        ("PseudoLSTMCell", PseudoLSTMCell(m, n), 4, 4),
        ("LSTMVariantCell(diffs 1, 2, 3)",
         LSTMVariantCell(m, n, diff1=True, diff2=True, diff3=True), 4, 4),
        ("LSTMVariantCell(no diffs)", LSTMVariantCell(m, n), 4, 4),
        ('PeepholeLSTMCell("diagonal")',
         PeepholeLSTMCell(m, n, peephole="diagonal"), 4, 4),
        ('PeepholeLSTMCell("full")', PeepholeLSTMCell(m, n), 7, 4),
        ('GRUCell(reset="before")', GRUCell(m, n, reset="before"), 3, 3),
    ]


class WithoutOneDNN(nn.Module):
    """A built-in module run with oneDNN switched off: on a CPU,
    ``nn.LSTM`` then runs PyTorch's own implementation (a matrix product
    and one fused elementwise kernel per step) instead of oneDNN's fused
    LSTM kernel. Only ``nn.LSTM`` uses oneDNN here; ``nn.GRU`` and
    ``nn.RNN`` run PyTorch's own implementation either way."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):
        with torch.backends.mkldnn.flags(enabled=False):
            return self.module(x)


# -- timing ------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _runner(module: nn.Module, x: torch.Tensor, mode: str):
    params = list(module.parameters())

    def run() -> None:
        if mode == "infer":
            with torch.no_grad():
                module(x)
            return
        out, _ = module(x)
        out.sum().backward()

    def clear() -> None:
        for p in params:
            p.grad = None

    return run, clear


def time_runs(runners: list[tuple[Callable[[], object],
                                   Callable[[], None] | None]],
              *, min_reps: int, max_reps: int, budget_s: float,
              device: torch.device) -> list[dict[str, list[float]]]:
    """Seconds per call of each ``run`` of ``runners`` (``(run, clear)``
    pairs; ``clear``, if not None, runs before each call, untimed),
    interleaved: every repetition calls every run once, in an order that
    rotates from one repetition to the next. Two warm-up rounds are
    discarded; repetitions continue until ``min_reps`` are done and
    ``budget_s`` is spent (or ``max_reps``).

    Each call is timed twice: wall-clock (``"wall"``) and CPU time of the
    process (``"cpu"``, ``time.process_time``). On a machine shared with
    other work the wall clock of a run includes the time the run waited
    for a core; the CPU time does not, so it is the steadier measure of
    what a run costs."""
    for _ in range(2):
        for run, clear in runners:
            if clear is not None:
                clear()
            run()
    _sync(device)
    times = [{"wall": [], "cpu": []} for _ in runners]
    start = time.perf_counter()
    rep = 0
    while rep < max_reps and (rep < min_reps
                              or time.perf_counter() - start < budget_s):
        shift = rep % len(runners)
        for k in [*range(shift, len(runners)), *range(shift)]:
            run, clear = runners[k]
            if clear is not None:
                clear()
            _sync(device)
            c0, t0 = time.process_time(), time.perf_counter()
            run()
            _sync(device)
            times[k]["wall"].append(time.perf_counter() - t0)
            times[k]["cpu"].append(time.process_time() - c0)
        rep += 1
    return times


def time_interleaved(modules: list[nn.Module], x: torch.Tensor, mode: str,
                     *, min_reps: int, max_reps: int, budget_s: float,
                     device: torch.device) -> list[dict[str, list[float]]]:
    """:func:`time_runs` of a training step or inference (``mode``) of
    each module on ``x``; gradients are cleared before each call."""
    return time_runs([_runner(mod, x, mode) for mod in modules],
                     min_reps=min_reps, max_reps=max_reps,
                     budget_s=budget_s, device=device)


def _medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {clock: statistics.median(v) for clock, v in times.items()}


# -- the machine ---------------------------------------------------------------
def machine(device: torch.device) -> dict:
    found = versions()
    info = {"cpu": found["cpu"], "cores": found["cpu_count"],
            "platform": found["platform"], "python": found["python"],
            "torch": torch.__version__, "lstmlib": lstmlib.__version__,
            "mkldnn": torch.backends.mkldnn.is_available(),
            "cpu_capability": found["cpu_capability"],
            "cpu_bfloat16": found["cpu_bfloat16"]}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


# -- the cases -------------------------------------------------------------------
def builtin_cases(args, device, log) -> list[dict]:
    rows = []
    for kind in args.cells:
        name, module_cls, convert = PAIRS[kind]
        for (m, n) in args.sizes:
            for B in args.batches:
                for T in args.lengths:
                    torch.manual_seed(0)
                    builtin = module_cls(m, n).to(device)
                    cell = convert(builtin).to(device)
                    modules = [builtin, Recurrent(cell, fused=True)]
                    labels = ["builtin", "fused"]
                    if kind == "lstm" and device.type == "cpu" \
                            and torch.backends.mkldnn.is_available():
                        modules.append(WithoutOneDNN(builtin))
                        labels.append("native")
                    if args.plain:
                        modules.append(Recurrent(cell, fused=False))
                        labels.append("plain")
                    x = torch.randn(T, B, m, device=device)
                    for mode in args.modes:
                        times = time_interleaved(
                            modules, x, mode, min_reps=args.min_reps,
                            max_reps=args.max_reps, budget_s=args.budget,
                            device=device)
                        med = {lab: _medians(t)
                               for lab, t in zip(labels, times)}
                        row = {"pair": kind, "name": name, "mode": mode,
                               "batch": B, "seq": T, "input": m,
                               "state": n, "reps": len(times[0]["cpu"]),
                               "target": TARGETS[mode]}
                        clock = args.clock
                        for lab in labels:
                            row[f"{lab}_ms"] = round(
                                1e3 * med[lab][clock], 4)
                            row[f"{lab}_wall_ms"] = round(
                                1e3 * med[lab]["wall"], 4)
                        for lab in labels[1:]:
                            row[f"{lab}_ratio"] = round(
                                med[lab][clock] / med["builtin"][clock], 3)
                            row[f"{lab}_wall_ratio"] = round(
                                med[lab]["wall"] / med["builtin"]["wall"],
                                3)
                        rows.append(row)
                        log(f"{kind:4} {mode:5} B={B:<3} T={T:<4} "
                            f"{m}/{n}: " + "  ".join(
                                f"{lab} {row[f'{lab}_ratio']:.2f}"
                                for lab in labels[1:])
                            + f"  (nn {row['builtin_ms']:.2f} ms,"
                            f" {row['reps']} reps; wall "
                            + "  ".join(f"{row[f'{lab}_wall_ratio']:.2f}"
                                        for lab in labels[1:]) + ")")
    return rows


def other_cases(args, device, log) -> list[dict]:
    rows = []
    B, T = args.other_batch, args.other_seq
    for (m, n) in args.other_sizes:
        torch.manual_seed(0)
        basic = BasicLSTMCell(m, n).to(device)
        fused, plain = (Recurrent(basic, fused=f) for f in (True, False))
        x = torch.randn(T, B, m, device=device)
        for name, cell, rec_rows, in_rows in _others(m, n):
            modules = [plain, fused, Recurrent(cell.to(device))]
            for mode in args.modes:
                times = time_interleaved(
                    modules, x, mode, min_reps=args.min_reps,
                    max_reps=args.max_reps, budget_s=args.budget,
                    device=device)
                base, base_fused, ms = (_medians(t)[args.clock]
                                        for t in times)
                # matrix arithmetic per step and row, recurrent + input
                work = rec_rows * n * n + in_rows * n * m
                basic_work = 4 * n * n + 4 * n * m
                rows.append({"cell": name, "mode": mode, "batch": B,
                             "seq": T, "input": m, "state": n,
                             "basic_ms": round(1e3 * base, 4),
                             "basic_fused_ms": round(1e3 * base_fused, 4),
                             "cell_ms": round(1e3 * ms, 4),
                             "ratio_to_basic": round(ms / base, 3),
                             "ratio_to_fused_basic": round(ms / base_fused,
                                                           3),
                             "matmul_ratio": round(work / basic_work, 3),
                             "reps": len(times[0]["cpu"])})
                log(f"{name:32} {mode:5} {m}/{n}: "
                    f"{rows[-1]['ratio_to_basic']:.2f} of the basic LSTM's "
                    f"loop, {rows[-1]['ratio_to_fused_basic']:.2f} of its "
                    f"fused path (matmul work "
                    f"{rows[-1]['matmul_ratio']:.2f})")
    return rows


# -- the report ------------------------------------------------------------------
def provenance_lines(meta: dict) -> list[str]:
    """The date, machine, versions, threads, clock and load average of a
    result file's ``meta``, as Markdown list items (the command is left to
    the caller, to put last)."""
    mach = meta["machine"]
    return [
        f"- date: {meta['date']}",
        f"- machine: {mach['cpu']}, {mach['cores']} cores"
        + (f", {mach['cpu_capability']}" if "cpu_capability" in mach else "")
        + ({True: ", bfloat16 instructions",
            False: ", no bfloat16 instructions"}.get(mach.get("cpu_bfloat16"),
                                                    ""))
        + (f", GPU {mach['gpu']}" if "gpu" in mach else ""),
        f"- torch {mach['torch']}, device {meta['device']}, "
        f"{meta['threads']} thread(s), dtype float32, times of the "
        f"{'process CPU' if meta['clock'] == 'cpu' else 'wall'} clock",
        f"- load average (1, 5, 15 min) before {meta['load_before']}, "
        f"after {meta['load_after']}",
    ]


def write_result(result: dict, path: str, summary) -> dict:
    """Record the load average after the run in ``result["meta"]``, write
    ``result`` as JSON at ``path`` (atomically: an interrupted run leaves
    the previous file) and ``summary(result)`` beside it as ``.md``."""
    result["meta"]["load_after"] = load_average()
    out = write_json_atomically(result, path)
    out.with_suffix(".md").write_text(summary(result))
    print(f"wrote {out} and {out.with_suffix('.md')}", flush=True)
    return result


def summary(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# lstmlib vs PyTorch's recurrent modules",
        "",
        *provenance_lines(meta),
        f"- command: `{meta['command']}`",
        "",
        "Ratio = median time of `Recurrent(cell)` (fused path) / median "
        "time of the built-in (interleaved runs); ✓ meets the target "
        "(training ≤ 1.25, inference ≤ 1.5). The plain-loop ratio is "
        "`Recurrent(cell, fused=False)`, the loop over `cell.step`. The "
        "oneDNN-off ratio is `nn.LSTM` itself with oneDNN switched off "
        "(PyTorch's own LSTM implementation) over `nn.LSTM` with it.",
        "",
    ]
    rows = result["builtin"]
    has_plain = any("plain_ratio" in r for r in rows)
    has_native = any("native_ratio" in r for r in rows)
    head = ("| pair | B | T | input/state | mode | built-in ms | fused ms "
            "| ratio |" + (" plain-loop ratio |" if has_plain else "")
            + (" oneDNN-off ratio |" if has_native else ""))
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ok = "✓" if r["fused_ratio"] <= r["target"] else "✗"
        lines.append(
            f"| {r['pair']} | {r['batch']} | {r['seq']} | "
            f"{r['input']}/{r['state']} | {r['mode']} | "
            f"{r['builtin_ms']:.2f} | {r['fused_ms']:.2f} | "
            f"{r['fused_ratio']:.2f} {ok} |"
            + (f" {r['plain_ratio']:.2f} |" if has_plain else "")
            + ((f" {r['native_ratio']:.2f} |" if "native_ratio" in r
                else " – |") if has_native else ""))
    if result.get("others"):
        lines += ["", "Cells without a built-in (plain loop), against "
                  "Recurrent(BasicLSTMCell) of the same sizes, its plain "
                  "loop and its fused path:", "",
                  "| cell | B | T | input/state | mode | ms "
                  "| ratio to basic loop | ratio to fused basic "
                  "| matmul work ratio |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in result["others"]:
            lines.append(
                f"| {r['cell']} | {r['batch']} | {r['seq']} | "
                f"{r['input']}/{r['state']} | {r['mode']} | "
                f"{r['cell_ms']:.2f} | {r['ratio_to_basic']:.2f} | "
                f"{r['ratio_to_fused_basic']:.2f} | "
                f"{r['matmul_ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def _sizes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in s.split("/")) for s in text.split(",")]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch.set_num_threads for both sides (default 1)")
    p.add_argument("--cells", default="lstm,gru,rnn",
                   type=lambda s: s.split(","))
    p.add_argument("--sizes", type=_sizes, default=SIZES,
                   help="input/state pairs, e.g. 128/256,650/650")
    p.add_argument("--batches", type=_ints, default=BATCHES)
    p.add_argument("--lengths", type=_ints, default=LENGTHS)
    p.add_argument("--modes", default="train,infer",
                   type=lambda s: s.split(","))
    p.add_argument("--plain", action="store_true",
                   help="also time Recurrent(cell, fused=False)")
    p.add_argument("--others", action="store_true",
                   help="also time the cells without a built-in")
    p.add_argument("--other-sizes", type=_sizes,
                   default=[(128, 256), (200, 200)])
    p.add_argument("--other-batch", type=int, default=32)
    p.add_argument("--other-seq", type=int, default=100)
    p.add_argument("--clock", choices=["cpu", "wall"], default=None,
                   help="the times the ratios are taken from: CPU time of "
                        "the process (default on a CPU) or wall-clock "
                        "(default on a GPU); both are recorded")
    p.add_argument("--min-reps", type=int, default=7)
    p.add_argument("--max-reps", type=int, default=41)
    p.add_argument("--budget", type=float, default=1.5,
                   help="seconds of repetitions per case, at least")
    p.add_argument("--quick", action="store_true",
                   help="B=32, T=35, 128/256 only, few repetitions")
    p.add_argument("--out", default="lstmlib/results/benchmarks/cpu.json")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.batches, args.lengths = [(128, 256)], [32], [35]
        args.other_sizes = [(128, 256)]
        args.min_reps, args.budget = 3, 0.2
    device = torch.device(args.device)
    if args.clock is None:
        args.clock = "wall" if device.type == "cuda" else "cpu"
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(True)
    # torch.backends.mkldnn.flags warns about Intel GPUs on every entry
    warnings.filterwarnings("ignore", message="TF32 acceleration on top")

    def log(msg: str) -> None:
        print(msg, flush=True)

    command = "python " + " ".join([sys.argv[0] if argv is None
                                    else "benchmarks/recurrent.py",
                                    *(sys.argv[1:] if argv is None
                                      else argv)])
    meta = {"date": datetime.datetime.now().astimezone().isoformat(
                timespec="seconds"),
            "machine": machine(device), "device": str(device),
            "threads": torch.get_num_threads(), "dtype": "float32",
            "clock": args.clock,
            "command": command, "load_before": load_average(),
            "timing": "interleaved, median of repetitions; 2 warm-up "
                      f"rounds; at least {args.min_reps} repetitions and "
                      f"{args.budget} s per case, at most {args.max_reps}"}
    log(f"{meta['machine']['cpu']}, {meta['threads']} thread(s), "
        f"load {meta['load_before']}")
    result = {"meta": meta, "builtin": builtin_cases(args, device, log)}
    if args.others:
        result["others"] = other_cases(args, device, log)
    return write_result(result, args.out, summary)


if __name__ == "__main__":
    main()
