"""Report the versions the book and its results were produced with."""

from __future__ import annotations

import importlib.metadata
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
        "cuda_available": torch.cuda.is_available(),
    }
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def show_versions() -> None:
    """Print :func:`versions` as an aligned table."""
    found = versions()
    width = max(map(len, found))
    for name, value in found.items():
        print(
            f"{name:<{width}}  {'not installed' if value is None else value}"
        )
