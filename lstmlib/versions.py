"""Report the versions the book and its results were produced with."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

__all__ = ["versions", "show_versions"]

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
