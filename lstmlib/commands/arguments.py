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
           "positive_float", "existing_folder", "device",
           "add_machine_options", "add_budget_options", "add_patience_option"]


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


def int_at_least(smallest: int, expected: str | None = None):
    """The type of an integer ≥ ``smallest``; ``expected`` says what it
    is in the error (default "an integer >= smallest")."""
    expected = expected or f"an integer >= {smallest}"

    def check(text: str) -> int:
        value = _number(text, int, expected)
        if value < smallest:
            raise argparse.ArgumentTypeError(
                f"expected {expected}, got {text!r}")
        return value
    check.__name__ = f"int_at_least_{smallest}"
    return check


#: An integer ≥ 1 (a number of epochs, steps, units, threads...).
positive_int = int_at_least(1, "a positive integer")
#: An integer ≥ 0 (a seed).
non_negative_int = int_at_least(0)


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


def add_machine_options(parser: argparse.ArgumentParser, *,
                        device_option: bool = True) -> None:
    """``--threads`` (torch's CPU threads) and, unless ``device_option`` is
    False, ``--device``: where a command runs, the same in every command."""
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch CPU threads (default: %(default)s)")
    if device_option:
        parser.add_argument("--device", type=device, default="cpu",
                            help="torch device: cpu, cuda or cuda:N "
                                 "(default: %(default)s)")


def add_budget_options(parser: argparse.ArgumentParser, *, steps: int,
                       state_help: str) -> None:
    """The training budget of a run on a synthetic task: ``--state-size``,
    ``--batch-size``, ``--steps`` (the most, with an early stop once the
    task counts as solved) and Adam's ``--lr``."""
    parser.add_argument("--state-size", type=positive_int, default=16,
                        help=f"{state_help} (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=64,
                        help="sequences per training step "
                             "(default: %(default)s)")
    parser.add_argument("--steps", type=positive_int, default=steps,
                        help="most training steps per run; a run stops "
                             "early once its training loss is below the "
                             "solved threshold (default: %(default)s)")
    parser.add_argument("--lr", type=positive_float, default=1e-2,
                        help="Adam learning rate (default: %(default)s)")


def add_patience_option(parser: argparse.ArgumentParser,
                        default: int) -> None:
    """``--patience``: the early stop of a language-model run."""
    parser.add_argument("--patience", type=positive_int, default=default,
                        help="stop a run after this many epochs without a "
                             "better validation loss (default: %(default)s)")
