"""Would a compiled LSTM step close the batch-1 gap? A measured answer.

    python benchmarks/compiled_step.py \
        --out lstmlib/results/benchmarks/compiled_step_cpu.json

At batch 1 the fast path of ``Recurrent(BasicLSTMCell)`` runs at about
twice ``nn.LSTM``'s inference time on a CPU, where ``nn.LSTM`` runs
oneDNN's fused LSTM kernel (``lstmlib/results/benchmarks/cpu.md``). The
fast path makes eight PyTorch calls per step, through Python. This script
removes both costs at once: it compiles
(``torch.utils.cpp_extension.load_inline``, a C++ compiler is needed) a
forward pass whose loop is C++, with one matrix product per step, the
same ``addmm_`` the fast path calls, and all the gate arithmetic of the
step in a single pass over the units. What is left between it and
``nn.LSTM`` is the matrix product itself.

Inference only, float32, batch 1, one thread; checked against
``Recurrent(BasicLSTMCell)`` before timing. Times are CPU-time medians of
interleaved runs; the results go to ``--out`` (JSON) and a table beside it.
This is a measurement, not a path of the library: lstmlib has no compiled
code.
"""
from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recurrent import (load_average, machine, provenance_lines, time_runs,
                       write_result)

from lstmlib.cells.kernels import project_inputs
from lstmlib.cells.lstm import BasicLSTMCell
from lstmlib.cells.recurrent import Recurrent

SOURCE = r"""
#include <torch/extension.h>
#include <cmath>

// h_1..h_T of the basic LSTM from the projected inputs a = U x_t + b
// (T, B, 4n), gates in PyTorch's order i | f | g | o: per step one addmm_
// adds W h_{t-1}, then one pass over the units computes the gates, c_t and
// h_t. float32, contiguous inputs.
torch::Tensor lstm_forward(torch::Tensor gates, torch::Tensor h0,
                           torch::Tensor c0, torch::Tensor Wt) {
  const int64_t T = gates.size(0), B = gates.size(1), n = h0.size(1);
  auto H = torch::empty({T, B, n}, h0.options());
  auto c = c0.clone();
  torch::Tensor h = h0;
  for (int64_t t = 0; t < T; ++t) {
    auto a = gates[t];
    a.addmm_(h, Wt);
    auto h_t = H[t];
    const float* ap = a.data_ptr<float>();
    float* cp = c.data_ptr<float>();
    float* hp = h_t.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b) {
      const float* row = ap + b * 4 * n;
      for (int64_t j = 0; j < n; ++j) {
        const float i = 1.f / (1.f + std::exp(-row[j]));
        const float f = 1.f / (1.f + std::exp(-row[n + j]));
        const float g = std::tanh(row[2 * n + j]);
        const float o = 1.f / (1.f + std::exp(-row[3 * n + j]));
        const float c_new = f * cp[b * n + j] + i * g;
        cp[b * n + j] = c_new;
        hp[b * n + j] = o * std::tanh(c_new);
      }
    }
    h = h_t;
  }
  return H;
}
"""


def build():
    """Compile the step (cached by torch between runs); seconds taken."""
    from torch.utils.cpp_extension import load_inline
    start = time.perf_counter()
    module = load_inline("lstmlib_compiled_step_benchmark",
                         cpp_sources=SOURCE, functions=["lstm_forward"],
                         extra_cflags=["-O3"])
    return module, time.perf_counter() - start


def compiler_version() -> str:
    try:
        return subprocess.run(["c++", "--version"], capture_output=True,
                              text=True, check=True).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError) as error:
        return f"unknown ({error})"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="128/256,200/200,650/650",
                   type=lambda s: [tuple(int(v) for v in pair.split("/"))
                                   for pair in s.split(",")])
    p.add_argument("--lengths", default=[35, 100],
                   type=lambda s: [int(v) for v in s.split(",")])
    p.add_argument("--reps", type=int, default=41)
    p.add_argument("--out",
                   default="lstmlib/results/benchmarks/compiled_step_cpu.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    command = "python " + " ".join(
        [sys.argv[0] if argv is None else "benchmarks/compiled_step.py",
         *(sys.argv[1:] if argv is None else argv)])
    meta = {"date": datetime.datetime.now().astimezone().isoformat(
                timespec="seconds"),
            "machine": machine(torch.device("cpu")), "device": "cpu",
            "threads": 1, "clock": "cpu", "compiler": compiler_version(),
            "command": command, "load_before": load_average()}
    compiled, meta["compile_s"] = build()
    rows = []
    for (m, n) in args.sizes:
        for T in args.lengths:
            torch.manual_seed(0)
            lstm = torch.nn.LSTM(m, n)
            cell = BasicLSTMCell.from_torch(lstm)
            fused = Recurrent(cell)
            x = torch.randn(T, 1, m)
            zeros = torch.zeros(1, n)
            with torch.no_grad():
                def step_in_cpp():
                    return compiled.lstm_forward(project_inputs(x, cell.U, cell.b),
                                                 zeros, zeros, cell.W.t())
                difference = (step_in_cpp() - fused(x)[0]).abs().max().item()
                names = ["builtin", "fused", "compiled"]
                times = time_runs([(lambda: lstm(x), None),
                                   (lambda: fused(x), None),
                                   (step_in_cpp, None)],
                                  min_reps=args.reps, max_reps=args.reps,
                                  budget_s=0, device=torch.device("cpu"))
            med = {name: statistics.median(t["cpu"])
                   for name, t in zip(names, times)}
            rows.append({"input": m, "state": n, "batch": 1, "seq": T,
                         "builtin_ms": round(1e3 * med["builtin"], 4),
                         "fused_ms": round(1e3 * med["fused"], 4),
                         "compiled_ms": round(1e3 * med["compiled"], 4),
                         "fused_ratio": round(med["fused"] / med["builtin"],
                                              3),
                         "compiled_ratio": round(
                             med["compiled"] / med["builtin"], 3),
                         "max_difference": difference})
            print(f"{m}/{n} T={T}: fused {rows[-1]['fused_ratio']:.2f}, "
                  f"compiled {rows[-1]['compiled_ratio']:.2f} of nn.LSTM "
                  f"({rows[-1]['builtin_ms']:.2f} ms)", flush=True)
    return write_result({"meta": meta, "rows": rows}, args.out, summary)


def summary(result: dict) -> str:
    meta = result["meta"]
    lines = ["# A compiled LSTM step against nn.LSTM (inference, batch 1)",
             "", *provenance_lines(meta),
             f"- compiler: {meta['compiler']}; build took "
             f"{meta['compile_s']:.0f} s (0 when cached)",
             f"- command: `{meta['command']}`", "",
             "| input/state | T | nn.LSTM ms | fast path ratio "
             "| compiled step ratio | max difference |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['input']}/{r['state']} | {r['seq']} | "
                     f"{r['builtin_ms']:.2f} | {r['fused_ratio']:.2f} | "
                     f"{r['compiled_ratio']:.2f} | "
                     f"{r['max_difference']:.1e} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
