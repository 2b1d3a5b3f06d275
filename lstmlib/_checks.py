"""The checks lstmlib runs on what it is given, in one place.

Each raises a ``TypeError`` or ``ValueError`` that names the function or
class that was called (``owner``), the argument, what was expected and what
was given. The module is private: chapters and users meet these checks only
through the errors of the public functions.

A check is a function ``check(owner, name, value)``. A configuration class
lists its checks as data, one ``(field name, check)`` pair per field, and
applies them in ``__post_init__`` with :func:`check_fields`;
:func:`optional` and :func:`one_of` make the checks that take more than a
value:

>>> from dataclasses import dataclass
>>> @dataclass
... class Schedule:
...     steps: int = 10                   # number of updates
...     rate: float = 0.1                 # step size, > 0
...     kind: str = "sgd"                 # "sgd" or "adam"
...     patience: int | None = None       # None: never stop early
...     CHECKS = (("steps", check_positive_int),
...               ("rate", check_positive_real),
...               ("kind", one_of("sgd", "adam")),
...               ("patience", optional(check_positive_int)))
...     def __post_init__(self):
...         check_fields("Schedule", self, self.CHECKS)
>>> Schedule(kind="rmsprop")
Traceback (most recent call last):
    ...
ValueError: Schedule: expected kind to be 'sgd' or 'adam', got 'rmsprop'
>>> Schedule(patience=0)
Traceback (most recent call last):
    ...
ValueError: Schedule: expected patience to be a positive int or None, got 0
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Callable, Iterable, Sequence

from torch import Tensor

__all__ = ["describe", "check_positive_int", "check_finite_real",
           "check_callable", "check_cell_and_sequence", "check_steps",
           "check_non_negative_int", "check_int", "check_bool",
           "check_positive_real", "check_one_of", "one_of", "optional",
           "check_fields", "Check"]


def describe(value) -> str:
    """A short description of a value for error messages."""
    if isinstance(value, Tensor):
        return (
            f"Tensor of shape {tuple(value.shape)}, dtype {value.dtype}, "
            f"device {value.device}"
        )
    if isinstance(value, tuple):
        return (
            "tuple of "
            + str(len(value))
            + " ("
            + "; ".join(describe(v) for v in value)
            + ")"
        )
    return type(value).__name__


def check_positive_int(owner: str, name: str, value) -> None:
    """Raise ``ValueError`` naming ``owner``, ``name`` and ``value`` unless
    ``value`` is a positive ``int`` (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: expected {name} to be a positive int, "
                         f"got {value!r}")


def check_finite_real(owner: str, name: str, value) -> float:
    """``value`` as a float; ``TypeError``/``ValueError`` naming ``owner``
    and ``name`` unless it is a finite real number (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: expected {name} to be a real number, "
                        f"got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: expected {name} to be finite, "
                         f"got {value!r}")
    return float(value)


#: A check: ``check(owner, name, value)`` raises naming all three, or
#: returns (possibly the value converted, which :func:`check_fields` drops).
Check = Callable[[str, str, object], object]


def check_callable(owner: str, name: str, value, example: str) -> None:
    """``TypeError`` naming ``owner``, ``name`` and an ``example`` of what
    fits unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(f"{owner}: expected {name} to be callable, such as "
                        f"{example}, got {type(value).__name__}")


def check_steps(owner: str, x: Tensor) -> None:
    """``ValueError`` naming ``owner`` unless the sequence ``x`` (time
    first) has at least one step."""
    if x.shape[0] == 0:
        raise ValueError(f"{owner}: expected a sequence of at least one "
                         f"step, got shape {tuple(x.shape)}")


def check_cell_and_sequence(cell, kind: type, x, state) -> None:
    """``TypeError`` unless ``cell`` is a ``kind``; then the cell's own
    checks of a time-major sequence ``x`` ``(T, B, input_size)`` with
    T ≥ 1 and of its initial ``state`` for that batch (the by-hand passes
    of :mod:`lstmlib.analysis` start with this)."""
    if not isinstance(cell, kind):
        raise TypeError(f"expected a {kind.__name__}, got "
                        f"{type(cell).__name__}")
    cell.check_input(x, expected_dims=3, layout="(T, B, input_size)")
    check_steps(f"{type(cell).__name__} sequence", x)
    cell.check_state(state, batch_size=x.shape[1], like=x)


def check_non_negative_int(owner: str, name: str, value) -> None:
    """Raise ``ValueError`` unless ``value`` is an ``int`` >= 0 (``bool``
    is refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{owner}: expected {name} to be a non-negative "
                         f"int, got {value!r}")


def check_int(owner: str, name: str, value) -> None:
    """Raise ``TypeError`` unless ``value`` is an ``int`` of any sign
    (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: expected {name} to be an int, "
                        f"got {value!r}")


def check_bool(owner: str, name: str, value) -> None:
    """Raise ``TypeError`` unless ``value`` is ``True`` or ``False`` (``1``
    and ``0`` are refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: expected {name} to be True or False, "
                        f"got {value!r}")


def check_positive_real(owner: str, name: str, value) -> float:
    """``value`` as a float; raise as :func:`check_finite_real` does, or
    ``ValueError`` unless it is > 0."""
    value = check_finite_real(owner, name, value)
    if value <= 0:
        raise ValueError(f"{owner}: expected {name} > 0, got {value!r}")
    return value


def check_one_of(owner: str, name: str, value, choices: Sequence) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``; the
    message lists them, e.g. ``expected kind to be 'a', 'b' or 'c'``."""
    if value not in choices:
        listed = [repr(choice) for choice in choices]
        expected = listed[-1] if len(listed) == 1 else \
            f"{', '.join(listed[:-1])} or {listed[-1]}"
        raise ValueError(f"{owner}: expected {name} to be {expected}, "
                         f"got {value!r}")


def one_of(*choices) -> Check:
    """The check :func:`check_one_of` with these ``choices``, for a table
    of :func:`check_fields`."""
    def check(owner: str, name: str, value) -> None:
        check_one_of(owner, name, value, choices)
    return check


def optional(check: Check) -> Check:
    """``check`` that also accepts ``None``. Its messages, all of the form
    ``owner: expected ..., got ...``, say ``expected ... or None, got ...``."""
    def check_or_none(owner: str, name: str, value):
        if value is None:
            return None
        try:
            return check(owner, name, value)
        except (TypeError, ValueError) as error:
            message = str(error).replace(", got ", " or None, got ", 1)
            raise type(error)(message) from None
    return check_or_none


def check_fields(owner: str, obj,
                 table: Iterable[tuple[str, Check]]) -> None:
    """Apply a table of ``(field name, check)`` pairs to ``obj``:
    ``check(owner, name, getattr(obj, name))`` for each, in order; the first
    failing check raises. What a check returns is dropped: the fields keep
    the values they were given."""
    for name, check in table:
        check(owner, name, getattr(obj, name))
