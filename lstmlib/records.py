"""Records of results: writing them safely and saying how they were made.

Every result the book commits as data (a language-model run, a long-range
sweep, a benchmark) is JSON written by :func:`write_json_atomically`, with
its provenance from :func:`versions`: Python, platform, processor, GPU and
the version of each package the book uses. :func:`show_versions` prints
the same table in a chapter.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["versions", "show_versions", "write_json_atomically"]

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
    """Python, platform, CUDA availability and the version of each package the
    book uses (``None`` for one that is not installed)."""
    import torch

    found = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cuda_available": torch.cuda.is_available(),
        "gpu": (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                else None),
    }
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def _cpu_model() -> str:
    """The processor's model name (Linux), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def show_versions() -> None:
    """Print :func:`versions` as an aligned table."""
    found = versions()
    width = max(map(len, found))
    for name, value in found.items():
        print(
            f"{name:<{width}}  {'not installed' if value is None else value}"
        )


def write_json_atomically(data: Any, path: str | os.PathLike) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (a temporary file in
    the same folder, then a rename), creating the folder if needed: an
    interrupted write leaves the previous file, never half of a new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(handle, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        umask = os.umask(0)                 # read the umask (and restore
        os.umask(umask)                     # it): mkstemp made the file 0600
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
