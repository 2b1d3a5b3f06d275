"""One seed knob for the whole book.

Every random draw in the chapters and in lstmlib's defaults starts from a
*seed base*, read from the environment variable ``LSTMLIB_SEED`` (0 when
it is unset). A chapter never writes a bare seed: it asks for the seed at
an offset from the base, and ensembles take consecutive seeds from it.

    LSTMLIB_SEED=1000 jupyter execute book/gates.ipynb

runs the same chapter on other random streams; its checks must still
pass, because they state claims that hold for every draw (or for the
distribution over seeds), not the numbers of one stream. ``make test``
builds the site at the default base and runs the notebooks under nbval at
another.

>>> import os
>>> os.environ.pop(SEED_VARIABLE, None) and None
>>> seed_base()
0
>>> seeds(3, offset=10)
[10, 11, 12]
"""
from __future__ import annotations

import os

import torch

__all__ = ["SEED_VARIABLE", "seed_base", "seed", "seeds", "manual_seed",
           "generator", "seed_or_base"]

SEED_VARIABLE = "LSTMLIB_SEED"


def seed_base() -> int:
    """The seed base: the integer in ``$LSTMLIB_SEED``, or 0 when unset."""
    text = os.environ.get(SEED_VARIABLE, "").strip()
    if not text:
        return 0
    try:
        base = int(text)
    except ValueError:
        raise ValueError(f"{SEED_VARIABLE}: expected a non-negative integer, "
                         f"got {text!r}") from None
    if base < 0:
        raise ValueError(f"{SEED_VARIABLE}: expected a non-negative integer, "
                         f"got {base}")
    return base


def _check_offset(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{owner}: expected a non-negative int {name}, "
                         f"got {value!r}")


def seed(offset: int = 0) -> int:
    """The seed ``offset`` places after the base: ``seed_base() + offset``.

    Chapters use distinct offsets for independent draws (the data, one
    model, another model), so that moving the base moves all of them."""
    _check_offset("seed", "offset", offset)
    return seed_base() + offset


def seeds(count: int, offset: int = 0) -> list[int]:
    """``count`` consecutive seeds from ``seed(offset)``: the seeds of an
    ensemble. None is chosen; all move with the base."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"seeds: expected a positive int count, got "
                         f"{count!r}")
    start = seed(offset)
    return list(range(start, start + count))


def manual_seed(offset: int = 0) -> int:
    """Seed torch's global generator with ``seed(offset)``; return that
    seed (so a chapter can print which stream it is on)."""
    value = seed(offset)
    torch.manual_seed(value)
    return value


def generator(offset: int = 0) -> torch.Generator:
    """A fresh CPU generator seeded with ``seed(offset)``."""
    return torch.Generator().manual_seed(seed(offset))


def seed_or_base(value: int | None, owner: str = "seed") -> int:
    """``value`` if given, else the base seed: the default of every seeded
    function in lstmlib, so that ``LSTMLIB_SEED`` moves it too."""
    if value is None:
        return seed_base()
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: expected an int seed or None, got "
                        f"{value!r}")
    return value
