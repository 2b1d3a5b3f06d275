"""Records of results: writing them safely, saying how they were made and
reading the committed ones back.

Every result the book commits as data (a language-model run, a long-range
sweep, a benchmark) is JSON written by :func:`write_json_atomically`, with
its provenance from :func:`versions`: Python, platform, processor, GPU,
the version of each package the book uses, and the git commit of the
lstmlib source with whether its tree held uncommitted changes. :func:`show_versions` prints
the same table in a chapter.

The committed results live inside the package, in :data:`RESULTS_FOLDER`
(``lstmlib/results/``), and ship with it as package data, so a chapter
finds them wherever it runs (in the repository, on Colab, from an
installed wheel). A chapter names a result by its path in that folder and
reads it with :func:`load_result` or :func:`result_path`, never by a path
relative to the working folder:

>>> "post_eight_architectures.csv" in result_names()
True
>>> sorted(load_result("benchmarks/cpu.json"))
['builtin', 'meta', 'others']
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

__all__ = ["versions", "source_state", "show_versions", "write_atomically",
           "write_json_atomically", "RESULTS_FOLDER", "IN_PROGRESS",
           "result_names", "result_path", "load_result"]

#: The committed results, shipped inside the package:
#:
#: ``char_lm/``
#:     the full-scale character-level LSTM on Tiny Shakespeare
#:     (``python -m lstmlib.commands.char_lm``)
#: ``long_range_grid/``
#:     the long-range grid, one file per point
#:     (``python -m lstmlib.commands.long_range_grid``)
#: ``post_eight_architectures.csv``
#:     the source post's table of the eight architectures
#: ``zaremba_small/``
#:     Penn Treebank runs (``python -m lstmlib.commands.ptb zaremba-small``)
#: ``eight_architectures/``
#:     the architecture sweep (``python -m lstmlib.commands.ptb
#:     architectures``), one file per finished run (runs in progress leave
#:     ``*.partial.json`` and ``*.checkpoint.pt`` beside them, which are
#:     not committed)
#: ``benchmarks/``
#:     timings from ``benchmarks/*.py`` (``.json``) and their tables (``.md``)
RESULTS_FOLDER = Path(__file__).resolve().parent / "results"

#: How the files of a run in progress end: its record so far and its
#: checkpoint (left out of the wheel by ``pyproject.toml``, of git by
#: ``.gitignore``).
IN_PROGRESS = (".partial.json", ".checkpoint.pt")

_PACKAGES = (
    "lstmlib",
    "torch",
    "numpy",
    "sympy",
    "matplotlib",
    "jupyter-book",
    "myst-nb",
    "sphinx",
    "nbval",
)


def versions() -> dict:
    """Python, platform, the processor (its model, cores, vector
    instructions and whether it has bfloat16 arithmetic), CUDA availability
    and the version of each package the book uses (``None`` for one that is
    not installed)."""
    import torch

    found = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        # the widest vector instructions torch's CPU kernels use ("AVX2",
        # "AVX512", ...) and whether the processor has bfloat16 arithmetic:
        # model names such as "AMD EPYC" cover generations with and without
        # it, and bfloat16 autocast is ten times slower without it
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bfloat16": _cpu_has_bfloat16(),
        "cuda_available": torch.cuda.is_available(),
        "gpu": (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                else None),
    }
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    found.update(source_state())
    return found


def source_state() -> dict:
    """The git commit of the lstmlib source that runs and whether its
    working tree holds uncommitted changes (``git_commit``,
    ``git_dirty``); both ``None`` where lstmlib does not run from a git
    checkout (an installed wheel, Colab)."""
    unknown = {"git_commit": None, "git_dirty": None}
    package = Path(__file__).resolve().parent

    def git(*arguments: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(package), *arguments],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    # Only a checkout of this repository counts: the package must be its
    # top-level lstmlib folder, not a copy inside another project's tree.
    if top is None or Path(top).resolve() / "lstmlib" != package:
        return unknown
    commit = git("rev-parse", "HEAD")
    changes = git("status", "--porcelain", "--untracked-files=no")
    if commit is None or changes is None:
        return unknown
    return {"git_commit": commit, "git_dirty": changes != ""}


def _cpuinfo_field(name: str) -> str | None:
    """The value of the first ``name`` line of Linux's ``/proc/cpuinfo``;
    ``None`` where there is no such file or line."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    """The processor's model name (Linux), else what ``platform`` says."""
    return (_cpuinfo_field("model name") or platform.processor()
            or platform.machine())


#: The instruction-set flags (Linux ``/proc/cpuinfo``) of bfloat16
#: arithmetic: AVX-512 BF16 (AMD Zen 4, Intel Cooper Lake and later) and
#: AMX (Intel Sapphire Rapids and later).
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpu_has_bfloat16() -> bool | None:
    """Whether the processor has bfloat16 instructions (one of
    :data:`BFLOAT16_FLAGS`); ``None`` where its flags cannot be read."""
    flags = _cpuinfo_field("flags")
    if flags is None:
        return None
    return any(flag in flags.split() for flag in BFLOAT16_FLAGS)


def show_versions() -> None:
    """Print :func:`versions` as an aligned table."""
    found = versions()
    width = max(map(len, found))
    for name, value in found.items():
        print(
            f"{name:<{width}}  {'not installed' if value is None else value}"
        )


def write_atomically(path: str | os.PathLike,
                     write: Callable[[IO], None], *,
                     binary: bool = False) -> Path:
    """Call ``write(file)`` on a temporary file in ``path``'s folder, then
    rename it to ``path`` (creating the folder if needed): an interrupted
    write leaves the previous file, never half of a new one. ``binary``
    opens the file in binary mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(handle, "wb" if binary else "w") as f:
            write(f)
        umask = os.umask(0)                 # read the umask (and restore
        os.umask(umask)                     # it): mkstemp made the file 0600
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json_atomically(data: Any, path: str | os.PathLike) -> Path:
    """Write ``data`` as JSON to ``path`` with :func:`write_atomically`."""
    def dump(f):
        json.dump(data, f, indent=1)
        f.write("\n")
    return write_atomically(path, dump)


def result_names(pattern: str = "**/*") -> list[str]:
    """The names of the committed results that match ``pattern`` (a glob
    relative to :data:`RESULTS_FOLDER`, e.g. ``"benchmarks/*.json"``),
    sorted; a name is the file's path in that folder with ``/`` between
    parts. Files still being written (``*.part``) and those of runs in
    progress (:data:`IN_PROGRESS`, never committed nor shipped) are left
    out."""
    return sorted(path.relative_to(RESULTS_FOLDER).as_posix()
                  for path in RESULTS_FOLDER.glob(pattern)
                  if path.is_file() and path.suffix != ".part"
                  and not path.name.endswith(IN_PROGRESS))


def result_path(name: str) -> Path:
    """The path of the committed result ``name`` (e.g.
    ``"zaremba_small/lstmlib.json"``); ``FileNotFoundError`` listing the
    results there are if there is none of that name."""
    path = RESULTS_FOLDER / name
    if not path.is_file():
        raise FileNotFoundError(
            f"result_path: expected the name of a committed result in "
            f"{RESULTS_FOLDER}, got {name!r}; the results are: "
            f"{', '.join(result_names())}")
    return path


def load_result(name: str) -> Any:
    """The committed result ``name`` (see :func:`result_path`), read by its
    kind: a ``.json`` file as what it holds, a ``.csv`` file as a list of
    rows (dicts from the header to strings; lines starting with ``#`` are
    comments), any other file as its text."""
    path = result_path(name)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix == ".csv":
        with open(path, newline="") as file:
            return list(csv.DictReader(
                line for line in file if not line.startswith("#")))
    return path.read_text()
