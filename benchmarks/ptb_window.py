"""One training window of the post's model at full scale: float32 against
bfloat16 autocast, and the floor its read-out sets.

    python benchmarks/ptb_window.py          # CPU, one thread
    python benchmarks/ptb_window.py --device cuda \
        --out lstmlib/results/benchmarks/ptb_window_gpu.json

The eight-architecture comparison of Part III (``python -m
lstmlib.commands.ptb architectures``) repeats, about 1,030 times an epoch,
one *window*: the forward pass of
:func:`lstmlib.experiments.ptb.architecture_model` (embedding and state
250, vocabulary 10,000) over 30 steps of 30 streams, the cross-entropy,
the backward pass and an Adam step, exactly as
:func:`lstmlib.experiments.language_model.train_language_model` runs it.
For each variant asked for (default 8, the basic LSTM, which has a fused
path, and 1, the pseudo LSTM, which runs the step loop), four
contestants run interleaved (``time_runs``, medians):

* ``float32``: the trainer's window with ``LMConfig.autocast = None``;
* ``bfloat16``: the same under ``torch.autocast(dtype=torch.bfloat16)``
  (``LMConfig.autocast = "bfloat16"``; parameters, gradients and Adam
  stay float32);
* ``readout float32`` and ``readout bfloat16``: the read-out's three
  matrix products alone, on operands of its shapes (forward
  ``(900, 250) × (250, 10000)`` and the two of the backward pass), in
  each dtype. No window can be faster than its read-out, so these are a
  floor under each window.

Adam is the fused kernel in both (``torch.optim.Adam(fused=True)``, what
the trainer uses). Times are of the process CPU clock on a CPU (with one
thread, the cost of the run), of the wall clock on a GPU. Reported per
window and as minutes per epoch of the full training set.

Results go to a JSON file (``--out``) with the machine, date, threads,
load average and command, and a table beside it (``.md``).
"""
from __future__ import annotations

import argparse
import datetime
import statistics
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recurrent import (load_average, machine, provenance_lines, time_runs,
                       write_result)

from lstmlib.experiments.ptb import (POST_PROTOCOL, POST_STATE_SIZE,
                                     architecture_model)

VOCAB = 10_000
#: Windows of one epoch of the Penn Treebank training set (929,589 tokens)
#: cut into 30 streams of 30 steps.
WINDOWS_PER_EPOCH = -(-(929_589 // POST_PROTOCOL.batch_size - 1)
                      // POST_PROTOCOL.bptt)
#: The issue's target, minutes per epoch on one core.
TARGET_MINUTES = 1.5


def window(variant: int, autocast: bool, device: torch.device):
    """A function running one training window of ``variant``, as the
    trainer does (its state carried and detached between calls)."""
    torch.manual_seed(0)
    model = architecture_model(VOCAB, variant, POST_STATE_SIZE).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    g = torch.Generator().manual_seed(0)
    T, B = POST_PROTOCOL.bptt, POST_PROTOCOL.batch_size
    x, y = (torch.randint(0, VOCAB, (T, B), generator=g).to(device)
            for _ in range(2))
    state = [None]

    def run() -> float:
        from lstmlib.experiments.language_model import detach_state
        state[0] = detach_state(state[0])
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=autocast):
            logits, state[0] = model(x, state[0])
        loss = nn.functional.cross_entropy(
            logits.flatten(0, 1).float(), y.flatten())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return loss.item()
    return run


def readout(dtype: torch.dtype, device: torch.device):
    """The read-out's three products of one window, alone, in ``dtype``."""
    rows = POST_PROTOCOL.bptt * POST_PROTOCOL.batch_size
    g = torch.Generator().manual_seed(0)
    h, W, d = (torch.randn(*s, generator=g).to(device, dtype) for s in
               ((rows, POST_STATE_SIZE), (VOCAB, POST_STATE_SIZE),
                (rows, VOCAB)))
    b = torch.zeros(VOCAB, device=device, dtype=dtype)

    def run() -> None:
        torch.addmm(b, h, W.t())                # logits
        d.t().mm(h)                             # ∂L/∂W
        d.mm(W)                                 # ∂L/∂h
    return run


def case(variant: int, device: torch.device, args) -> dict:
    runners = [window(variant, False, device), window(variant, True, device),
               readout(torch.float32, device),
               readout(torch.bfloat16, device)]
    losses = [runners[0](), runners[1]()]
    times = time_runs([(r, None) for r in runners], min_reps=args.min_reps,
                      max_reps=args.max_reps, budget_s=args.budget,
                      device=device)
    ms = [1e3 * statistics.median(t[args.clock]) for t in times]
    per_epoch = [m * WINDOWS_PER_EPOCH / 60e3 for m in ms]
    return {"variant": variant, "float32_ms": round(ms[0], 3),
            "bfloat16_ms": round(ms[1], 3),
            "readout_float32_ms": round(ms[2], 3),
            "readout_bfloat16_ms": round(ms[3], 3),
            "float32_min_per_epoch": round(per_epoch[0], 3),
            "bfloat16_min_per_epoch": round(per_epoch[1], 3),
            "readout_bfloat16_min_per_epoch": round(per_epoch[3], 3),
            "first_loss": {"float32": losses[0], "bfloat16": losses[1]},
            "reps": len(times[0][args.clock])}


def summary(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# One training window of the post's model, float32 and bfloat16",
        "",
        *provenance_lines(meta),
        f"- model: architecture_model(10000, variant, 250), window of "
        f"{POST_PROTOCOL.bptt} steps x {POST_PROTOCOL.batch_size} streams, "
        f"fused Adam; {WINDOWS_PER_EPOCH} windows per epoch",
        f"- command: `{meta['command']}`",
        "",
        f"Minutes per epoch = ms per window x {WINDOWS_PER_EPOCH} / 60,000; "
        f"the target is {TARGET_MINUTES} min per epoch on one core. "
        "Read-out: its three matrix products alone, a floor under the "
        "window.",
        "",
        "| variant | float32 ms | bfloat16 ms | read-out float32 ms "
        "| read-out bfloat16 ms | float32 min/epoch | bfloat16 min/epoch "
        "| read-out bfloat16 min/epoch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['variant']} | {r['float32_ms']:.0f} | {r['bfloat16_ms']:.0f}"
            f" | {r['readout_float32_ms']:.0f} | {r['readout_bfloat16_ms']:.0f}"
            f" | {r['float32_min_per_epoch']:.2f} "
            f"| {r['bfloat16_min_per_epoch']:.2f} "
            f"| {r['readout_bfloat16_min_per_epoch']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--variants", type=lambda s: [int(v) for v in s.split(",")],
                   default=[8, 1])
    p.add_argument("--min-reps", type=int, default=7)
    p.add_argument("--max-reps", type=int, default=41)
    p.add_argument("--budget", type=float, default=5.0,
                   help="seconds of repetitions per case, at least")
    p.add_argument("--clock", choices=["cpu", "wall"], default=None)
    p.add_argument("--quick", action="store_true",
                   help="two repetitions per case (a smoke run)")
    p.add_argument("--out",
                   default="lstmlib/results/benchmarks/ptb_window_cpu.json")
    args = p.parse_args(argv)
    if args.quick:
        args.min_reps, args.max_reps, args.budget = 2, 2, 0.0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    args.clock = args.clock or ("wall" if device.type == "cuda" else "cpu")
    torch.set_num_threads(args.threads)
    command = "python " + " ".join(
        [sys.argv[0] if argv is None else "benchmarks/ptb_window.py",
         *(sys.argv[1:] if argv is None else argv)])
    meta = {"date": datetime.datetime.now().astimezone().isoformat(
                timespec="seconds"),
            "machine": machine(device), "device": str(device),
            "threads": torch.get_num_threads(), "dtype": "float32",
            "clock": args.clock, "command": command,
            "windows_per_epoch": WINDOWS_PER_EPOCH,
            "target_minutes": TARGET_MINUTES,
            "load_before": load_average(),
            "timing": "interleaved, median of repetitions; 2 warm-up "
                      f"rounds; at least {args.min_reps} repetitions and "
                      f"{args.budget} s per case, at most {args.max_reps}"}
    rows = []
    for variant in args.variants:
        r = case(variant, device, args)
        rows.append(r)
        print(f"variant {variant}: float32 {r['float32_ms']:.0f} ms, "
              f"bfloat16 {r['bfloat16_ms']:.0f} ms, read-out "
              f"{r['readout_float32_ms']:.0f} / {r['readout_bfloat16_ms']:.0f}"
              f" ms; {r['float32_min_per_epoch']:.2f} / "
              f"{r['bfloat16_min_per_epoch']:.2f} min per epoch", flush=True)
    return write_result({"meta": meta, "rows": rows}, args.out, summary)


if __name__ == "__main__":
    main()
