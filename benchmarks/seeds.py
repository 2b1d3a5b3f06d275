"""Several seeds of one architecture trained at once, against one by one.

    python benchmarks/seeds.py                    # CPU, the post's model
    python benchmarks/seeds.py --device cuda --out lstmlib/results/benchmarks/seeds_gpu.json

The eight-architecture sweep of Part III (``python -m lstmlib.commands.ptb
architectures``) trains every (variant, learning rate) several times with
different seeds. The models of one variant have the same shapes, so their
parameters can be stacked along a new first dimension
(``torch.func.stack_module_state``) and their K training steps run as one
under ``torch.func.vmap``: every operation of a step is issued once for
all K models instead of K times. Adam is elementwise, so one Adam over the
stacked parameters is K independent Adams.

A *training step* here is what the sweep repeats: the forward pass of
:func:`lstmlib.experiments.ptb.architecture_model` over one window (the post's
protocol: 30 steps, batch 30, state and embedding 250), the cross-entropy,
the backward pass and an Adam step. *Sequential* runs the K models one
after another; *stacked* runs them at once. Before timing, the script
checks that both compute the same losses and gradients. Both are timed
interleaved, medians of repetitions; ``speed-up = sequential / stacked``.

Results go to a JSON file (``--out``) with the machine, date, threads,
load average and the command, and a readable table beside it (``.md``).
"""
from __future__ import annotations

import argparse
import copy
import datetime
import statistics
import sys
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recurrent import (load_average, machine, provenance_lines, time_runs,
                       write_result)

from lstmlib.experiments.ptb import (POST_PROTOCOL, POST_STATE_SIZE,
                                 architecture_model)


def make_models(k: int, variant: int, vocab: int, state: int,
                device: torch.device) -> list[nn.Module]:
    """K models of ``variant``, seeded 0..K-1 as the sweep seeds trials."""
    models = []
    for seed in range(k):
        torch.manual_seed(seed)
        models.append(architecture_model(vocab, variant, state).to(device))
    return models


class Stacked:
    """K models of one architecture as one: parameters stacked along a new
    first dimension, the forward pass of all K under ``vmap``."""

    def __init__(self, models: list[nn.Module]):
        self.params, self.buffers = stack_module_state(models)
        self.base = copy.deepcopy(models[0]).to("meta")

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def losses(self, inputs: torch.Tensor, targets: torch.Tensor
               ) -> torch.Tensor:
        """The K mean cross-entropies on one window: ``(K,)``."""
        def one(params, buffers):
            logits, _ = functional_call(self.base, (params, buffers),
                                        (inputs,))
            return nn.functional.cross_entropy(logits.flatten(0, 1),
                                               targets.flatten())
        return vmap(one)(self.params, self.buffers)


def sequential_losses(models, inputs, targets) -> torch.Tensor:
    losses = []
    for model in models:
        logits, _ = model(inputs)
        losses.append(nn.functional.cross_entropy(logits.flatten(0, 1),
                                                  targets.flatten()))
    return torch.stack(losses)


def check_same(models, stacked, inputs, targets) -> dict:
    """Largest differences between the two ways' losses and gradients,
    and the largest gradient entry, for scale."""
    for p in [*stacked.parameters(), *(q for m in models
                                       for q in m.parameters())]:
        p.grad = None
    seq = sequential_losses(models, inputs, targets)
    seq.sum().backward()
    st = stacked.losses(inputs, targets)
    st.sum().backward()
    grad_diff, grad_max = 0.0, 0.0
    for name, stacked_param in stacked.params.items():
        for k, model in enumerate(models):
            g = model.get_parameter(name).grad
            grad_diff = max(grad_diff,
                            (stacked_param.grad[k] - g).abs().max().item())
            grad_max = max(grad_max, g.abs().max().item())
    return {"loss_diff": (seq - st).abs().max().item(),
            "grad_diff": grad_diff, "grad_max": grad_max}


def time_steps(models, stacked, inputs, targets, *, lr: float,
               min_reps: int, max_reps: int, budget_s: float,
               device) -> dict:
    """Seconds per training step of all K models, each way, interleaved."""
    seq_opts = [torch.optim.Adam(m.parameters(), lr=lr) for m in models]
    stacked_opt = torch.optim.Adam(stacked.parameters(), lr=lr)

    def sequential() -> None:
        for model, opt in zip(models, seq_opts):
            opt.zero_grad()
            logits, _ = model(inputs)
            nn.functional.cross_entropy(logits.flatten(0, 1),
                                        targets.flatten()).backward()
            opt.step()

    def together() -> None:
        stacked_opt.zero_grad()
        stacked.losses(inputs, targets).sum().backward()
        stacked_opt.step()

    times = time_runs([(sequential, None), (together, None)],
                      min_reps=min_reps, max_reps=max_reps,
                      budget_s=budget_s, device=device)
    return dict(zip(["sequential", "stacked"], times))


def summary(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# Several seeds at once (stacked, vmap) against one by one",
        "",
        *provenance_lines(meta),
        f"- model: variant {meta['variant']}, vocabulary {meta['vocab']}, "
        f"state {meta['state']}, window {meta['bptt']} × batch "
        f"{meta['batch']}, Adam; medians of repetitions",
        f"- command: `{meta['command']}`",
        "",
        "| seeds K | sequential ms | stacked ms | speed-up | reps "
        "| max loss diff | max grad diff |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['seeds']} | {r['sequential_ms']:.1f} | "
            f"{r['stacked_ms']:.1f} | {r['speedup']:.2f} | {r['reps']} | "
            f"{r['loss_diff']:.1e} | {r['grad_diff']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seeds", default=[2, 5],
                   type=lambda s: [int(v) for v in s.split(",")],
                   help="numbers of seeds K, e.g. 2,5,10")
    p.add_argument("--variant", type=int, default=8,
                   help="the post's architecture, 1..8 (8: basic LSTM)")
    p.add_argument("--vocab", type=int, default=10_000)
    p.add_argument("--state", type=int, default=POST_STATE_SIZE)
    p.add_argument("--batch", type=int, default=POST_PROTOCOL.batch_size)
    p.add_argument("--bptt", type=int, default=POST_PROTOCOL.bptt)
    p.add_argument("--min-reps", type=int, default=5)
    p.add_argument("--max-reps", type=int, default=41)
    p.add_argument("--budget", type=float, default=10.0,
                   help="seconds of repetitions per K, at least")
    p.add_argument("--clock", choices=["cpu", "wall"], default=None)
    p.add_argument("--out", default="lstmlib/results/benchmarks/seeds_cpu.json")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    if any(k < 1 for k in args.seeds):
        p.error(f"--seeds: expected positive numbers, got {args.seeds}")
    clock = args.clock or ("wall" if device.type == "cuda" else "cpu")
    torch.set_num_threads(args.threads)
    command = "python " + " ".join(
        [sys.argv[0] if argv is None else "benchmarks/seeds.py",
         *(sys.argv[1:] if argv is None else argv)])
    meta = {"date": datetime.datetime.now().astimezone().isoformat(
                timespec="seconds"),
            "machine": machine(device), "device": str(device),
            "threads": torch.get_num_threads(), "clock": clock,
            "variant": args.variant, "vocab": args.vocab,
            "state": args.state, "batch": args.batch, "bptt": args.bptt,
            "command": command, "load_before": load_average()}
    torch.manual_seed(0)
    window = torch.randint(args.vocab, (args.bptt + 1, args.batch),
                           device=device)
    inputs, targets = window[:-1], window[1:]
    rows = []
    for k in args.seeds:
        models = make_models(k, args.variant, args.vocab, args.state, device)
        stacked = Stacked(models)
        same = check_same(models, stacked, inputs, targets)
        times = time_steps(models, stacked, inputs, targets,
                           lr=POST_PROTOCOL.lr, min_reps=args.min_reps,
                           max_reps=args.max_reps, budget_s=args.budget,
                           device=device)
        med = {name: statistics.median(t[clock]) for name, t in times.items()}
        rows.append({"seeds": k,
                     "sequential_ms": round(1e3 * med["sequential"], 3),
                     "stacked_ms": round(1e3 * med["stacked"], 3),
                     "speedup": round(med["sequential"] / med["stacked"], 3),
                     "reps": len(times["stacked"][clock]), **same})
        print(f"K={k}: sequential {rows[-1]['sequential_ms']:.1f} ms, "
              f"stacked {rows[-1]['stacked_ms']:.1f} ms, speed-up "
              f"{rows[-1]['speedup']:.2f} (max grad diff "
              f"{same['grad_diff']:.1e})", flush=True)
    return write_result({"meta": meta, "rows": rows}, args.out, summary)


if __name__ == "__main__":
    main()
