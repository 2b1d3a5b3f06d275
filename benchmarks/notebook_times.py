"""How long each chapter of the book takes to execute, at default scale.

    python benchmarks/notebook_times.py            # every notebook in book/
    python benchmarks/notebook_times.py bptt gates # some of them

Each notebook runs top to bottom in a fresh kernel (``nbclient``, cells
tagged ``skip-execution`` skipped, as in the site build), from the
``book`` folder; its time is the wall-clock time of the whole execution,
kernel start included; the kernel's CPU time is recorded too (on a
machine shared with other work it is the steadier number, since the wall
clock also counts the time the kernel waited for a core). The script prints one line per notebook and the
total, and writes them (``--out``, JSON) with the date, the machine, the
load average before and after, and the command. The budgets: at most
60 s a notebook and 10 minutes for the whole book on a 2-core CPU.

The status page of the book (``book/execution_status.ipynb``) shows the
committed file.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recurrent import load_average, machine

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_BUDGET_S = 60
BOOK_BUDGET_S = 600


def book_notebooks() -> list[Path]:
    """The notebooks of the book: those in ``_toc.yml`` in its order, then
    any other ``book/*.ipynb``."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part.get("chapters", [])]
    listed = [ROOT / f"{f}.ipynb" for f in files
              if (ROOT / f"{f}.ipynb").exists()]
    others = sorted(set((ROOT / "book").glob("*.ipynb")) - set(listed))
    return listed + others


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def execute(path: Path, timeout: int) -> dict:
    """Execute ``path`` in a fresh kernel: the wall-clock seconds (kernel
    start included), the kernel's CPU seconds where /proc tells them (on a
    shared machine the steadier measure), and the error as one line."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start, cpu, error = time.perf_counter(), None, None
    try:
        with client.setup_kernel():
            pid = getattr(getattr(client.km, "provisioner", None),
                          "pid", None)
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            try:
                cpu = _cpu_seconds(pid) if pid else None
            except OSError:
                cpu = None
    except Exception as exc:  # noqa: BLE001 (report it, go on)
        lines = str(exc).strip().splitlines() or [""]
        error = f"{type(exc).__name__}: {lines[-1]}"
    return {"seconds": round(time.perf_counter() - start, 1),
            "cpu_seconds": None if cpu is None else round(cpu, 1),
            "ok": error is None, "error": error}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*",
                   help="notebook names without .ipynb (default: all)")
    p.add_argument("--timeout", type=int, default=600,
                   help="seconds a cell may run (default 600)")
    p.add_argument("--out", default="lstmlib/results/benchmarks/notebook_times.json")
    args = p.parse_args(argv)
    notebooks = book_notebooks()
    if args.names:
        known = {nb.stem: nb for nb in notebooks}
        missing = [n for n in args.names if n not in known]
        if missing:
            p.error(f"no notebook named {missing}; known: {sorted(known)}")
        notebooks = [known[n] for n in args.names]
    import torch

    meta = {"date": datetime.datetime.now().astimezone().isoformat(
                timespec="seconds"),
            "machine": machine(torch.device("cpu")),
            "command": "python benchmarks/notebook_times.py "
                       + " ".join(sys.argv[1:] if argv is None else argv),
            "load_before": load_average(),
            "LSTMLIB_DATA": os.environ.get("LSTMLIB_DATA"),
            "notebook_budget_s": NOTEBOOK_BUDGET_S,
            "book_budget_s": BOOK_BUDGET_S}
    rows = []
    for path in notebooks:
        row = {"notebook": path.stem, **execute(path, args.timeout)}
        rows.append(row)
        cpu = ("" if row["cpu_seconds"] is None
               else f"  (kernel CPU {row['cpu_seconds']:.1f} s)")
        flag = "" if row["seconds"] <= NOTEBOOK_BUDGET_S else "  OVER BUDGET"
        print(f"{path.stem:28} {row['seconds']:7.1f} s{cpu}"
              + ("" if row["ok"] else f"  FAILED: {row['error']}") + flag,
              flush=True)
    total = round(sum(r["seconds"] for r in rows), 1)
    cpu_values = [r["cpu_seconds"] for r in rows]
    total_cpu = (None if None in cpu_values
                 else round(sum(cpu_values), 1))
    meta["load_after"] = load_average()
    print(f"{'total':28} {total:7.1f} s  (budget {BOOK_BUDGET_S} s; load "
          f"before {meta['load_before']}, after {meta['load_after']})")
    result = {"meta": meta, "notebooks": rows, "total_s": total,
              "total_cpu_s": total_cpu}
    out = ROOT / args.out if not Path(args.out).is_absolute() \
        else Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
