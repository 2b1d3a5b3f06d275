"""Checked argument types for the command lines.

Each is an argparse ``type=``: it turns the text of one option into its
value or raises :class:`argparse.ArgumentTypeError`, which argparse prints
as one line naming the option, what was expected and what was given, and
ends the command with exit status 2, before anything runs:

>>> import argparse
>>> parser = argparse.ArgumentParser(prog="demo", exit_on_error=False)
>>> _ = parser.add_argument("--epochs", type=positive_int)
>>> parser.parse_args(["--epochs", "3"]).epochs
3
>>> parser.parse_args(["--epochs", "0"])
Traceback (most recent call last):
    ...
argparse.ArgumentError: argument --epochs: expected a positive integer, got '0'
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

__all__ = ["positive_int", "non_negative_int", "int_at_least",
           "positive_float", "existing_folder", "device"]


def _number(text: str, kind: type, expected: str):
    """``text`` as a ``kind`` (int or float), finite, or the error."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {expected}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer ≥ 1 (a number of epochs, steps, units, threads...)."""
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer ≥ 0 (a seed)."""
    value = _number(text, int, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 0, got {text!r}")
    return value


def int_at_least(smallest: int):
    """The type of an integer ≥ ``smallest``."""
    def check(text: str) -> int:
        value = _number(text, int, f"an integer >= {smallest}")
        if value < smallest:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {smallest}, got {text!r}")
        return value
    check.__name__ = f"int_at_least_{smallest}"
    return check


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate)."""
    value = _number(text, float, "a number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a number > 0, got {text!r}")
    return value


def existing_folder(text: str) -> str:
    """The name of a folder that exists."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(
            f"expected an existing folder, got {text!r}")
    return text


def device(text: str) -> str:
    """A torch device this machine has: ``cpu``, or ``cuda`` / ``cuda:N``
    where CUDA is available and has a device ``N``."""
    try:
        found = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"expected a torch device such as 'cpu' or 'cuda', got "
            f"{text!r}") from None
    if found.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(
                f"expected a device this machine has, got {text!r}: CUDA is "
                "not available here (torch.cuda.is_available() is False); "
                "use --device cpu")
        if found.index is not None and \
                found.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"expected a CUDA device index below "
                f"{torch.cuda.device_count()}, got {text!r}")
    return text
