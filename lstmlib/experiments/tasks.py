"""Synthetic sequence tasks, generated in code and seeded.

Each task returns time-major tensors ``(T, B, ·)`` like :class:`~lstmlib.Recurrent`
expects (symbol tasks: ``(T, B)`` long tensors of ids, to be embedded or
one-hot encoded), and states its chance-level baseline so that a chapter can
say how far a trained model is from guessing. Pass a seeded
``torch.Generator`` for reproducible batches.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor

from .._checks import check_one_of, check_positive_int

__all__ = ["delayed_recall", "DELAYED_RECALL_BASELINE_MSE", "adding_problem",
           "ADDING_BASELINE_MSE", "ADDING_HOCHREITER_TOLERANCE",
           "adding_hochreiter_baseline_mse",
           "adding_hochreiter_baseline_accuracy", "copy_memory",
           "copy_memory_baseline", "COPY_BLANK", "COPY_DELIMITER",
           "COPY_DATA_SYMBOLS", "COPY_LENGTH", "temporal_order",
           "TEMPORAL_ORDER_SYMBOLS", "TEMPORAL_ORDER_CLASSES",
           "TEMPORAL_ORDER_BASELINE_ACCURACY",
           "TEMPORAL_ORDER_BASELINE_CROSS_ENTROPY"]

#: Mean squared error of always answering 0 (the mean) on :func:`delayed_recall`:
#: the variance of U(-1, 1), 1/3.
DELAYED_RECALL_BASELINE_MSE = 1.0 / 3.0


def delayed_recall(
    batch_size: int,
    delay: int,
    size: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tuple[Tensor, Tensor]:
    """Show a vector once, then ask for it back ``delay`` steps later.

    The first input is ``v ~ U(-1, 1)^size``; the following ``delay - 1``
    inputs are zero. The target is ``v`` itself, to be read off the state
    after the last step. A model that carries its state unchanged solves it
    exactly for every delay; one that morphs its state loses part of ``v``
    at every step.

    Returns:
        x: ``(delay, batch_size, size)``.
        target: ``(batch_size, size)``.
    """
    for name, value in (("batch_size", batch_size), ("delay", delay),
                        ("size", size)):
        check_positive_int("delayed_recall", name, value)
    v = torch.rand(batch_size, size, generator=generator, dtype=dtype) * 2 - 1
    x = torch.zeros(delay, batch_size, size, dtype=dtype)
    x[0] = v
    return x, v


#: MSE of always answering 1 (the mean) on :func:`adding_problem` with
#: ``variant="le"``: ``Var(X1 + X2) = 2 Var(U(0, 1)) = 2/12 = 1/6``.
ADDING_BASELINE_MSE = 1.0 / 6.0

#: A ``variant="hochreiter"`` answer is correct when its absolute error is
#: below this (Hochreiter & Schmidhuber 1997, experiment 4).
ADDING_HOCHREITER_TOLERANCE = 0.04

def _zeroed_probability(length: int) -> float:
    """Probability that a ``"hochreiter"`` sequence marks its first pair,
    whose value is then 0: the first mark is uniform on the first 10 pairs
    (1/10); otherwise the second is uniform on ``m = length//2 - 1``
    unmarked pairs that include the first (``(9/10)/m``)."""
    return 0.1 + 0.9 / (length // 2 - 1)


def adding_hochreiter_baseline_mse(length: int) -> float:
    """MSE of always answering 0.5 (the mean) on :func:`adding_problem`
    with ``variant="hochreiter"`` and minimal length ``length``.

    The target's variance ``Var((X1 + X2)/4) = (E X1^2 + E X2^2)/16``, with
    ``E X^2 = 1/3`` for ``U(-1, 1)`` except that one of the two values is
    0 with probability ``q`` (the first pair marked):
    ``(2 - q)/48``, between 0.0375 and 2/48.
    """
    check_positive_int("adding_hochreiter_baseline_mse", "length", length)
    return (2 - _zeroed_probability(length)) / 48


def adding_hochreiter_baseline_accuracy(length: int) -> float:
    """Fraction of ``variant="hochreiter"`` sequences that always
    answering 0.5 gets right: ``P(|X1 + X2| < a)`` with
    ``a = 4 * 0.04 = 0.16``. The sum of two ``U(-1, 1)`` has the triangular
    density ``(2 - |s|)/4``, so ``P = a - a^2/4``; when one value is zeroed
    (probability ``q``), ``P = a``. Together ``a - (1 - q) a^2 / 4``,
    about 0.154.
    """
    check_positive_int("adding_hochreiter_baseline_accuracy", "length",
                       length)
    a = 4 * ADDING_HOCHREITER_TOLERANCE
    return a - (1 - _zeroed_probability(length)) * a ** 2 / 4


def adding_problem(
    batch_size: int,
    length: int,
    *,
    generator: torch.Generator | None = None,
    variant: str = "le",
    dtype: torch.dtype = torch.float32,
) -> Tuple[Tensor, Tensor]:
    """Add the two marked numbers of a long sequence.

    Every step carries two channels, ``x[t, b] = (value, marker)``; the
    target, read off the state after the last step, is computed from the
    two values whose marker is 1.

    ``variant="le"`` (Le et al. 2015; Arjovsky et al. 2016): ``T = length``
    steps, values ``U(0, 1)``, markers 0 except exactly two ones, one at a
    uniform step of the first half ``[0, T//2)`` and one of the second
    half ``[T//2, T)``; target ``X1 + X2``. Always answering 1 scores
    :data:`ADDING_BASELINE_MSE` = 1/6.

    ``variant="hochreiter"`` (Hochreiter & Schmidhuber 1997, exp. 4):
    values ``U(-1, 1)``; each sequence has its own length, uniform in
    ``[T, T + T//10]``; one pair among its first 10 is marked 1 (value
    X1), then one among its first ``T//2 - 1`` still unmarked pairs
    (value X2); the other markers are 0 except those of the first and last
    pair, which are -1 unless marked. A marked first pair has its value set
    to 0. Target ``0.5 + (X1 + X2)/4``; correct when the absolute error is
    below :data:`ADDING_HOCHREITER_TOLERANCE`; always answering 0.5 scores
    :func:`adding_hochreiter_baseline_mse` and
    :func:`adding_hochreiter_baseline_accuracy`. Requires ``length >= 11``.
    Shorter sequences are padded with zeros (value 0, marker 0) at the
    *front*, so all end at the last step; a sequence starts at its first
    nonzero marker.

    Returns:
        x: ``(T_max, batch_size, 2)``, channel 0 the values, channel 1 the
        markers (``T_max = length`` for ``"le"``).
        target: ``(batch_size, 1)``.
    """
    check_positive_int("adding_problem", "batch_size", batch_size)
    check_positive_int("adding_problem", "length", length)
    check_one_of("adding_problem", "variant", variant, ("le", "hochreiter"))
    if variant == "le":
        if length < 2:
            raise ValueError("adding_problem: expected length >= 2 for "
                             f"variant='le', got {length}")
        return _adding_le(batch_size, length, generator, dtype)
    if length < 11:  # a mark among the first 10 is then never last
        raise ValueError("adding_problem: expected length >= 11 for "
                         f"variant='hochreiter', got {length}")
    return _adding_hochreiter(batch_size, length, generator, dtype)


def _adding_le(batch_size, length, generator, dtype):
    half = length // 2
    values = torch.rand(length, batch_size, generator=generator,
                        dtype=dtype)
    first = torch.randint(0, half, (batch_size,), generator=generator)
    second = torch.randint(half, length, (batch_size,), generator=generator)
    markers = torch.zeros(length, batch_size, dtype=dtype)
    columns = torch.arange(batch_size)
    markers[first, columns] = 1
    markers[second, columns] = 1
    target = values[first, columns] + values[second, columns]
    return torch.stack([values, markers], dim=-1), target.unsqueeze(1)


def _adding_hochreiter(batch_size, length, generator, dtype):
    longest = length + length // 10
    lengths = torch.randint(length, longest + 1, (batch_size,),
                            generator=generator)
    first = torch.randint(0, 10, (batch_size,), generator=generator)
    # the pick-th of the first length//2 - 1 pairs other than the first mark
    pick = torch.randint(0, length // 2 - 1, (batch_size,),
                         generator=generator)
    second = pick + (pick >= first).long()
    values = torch.rand(longest, batch_size, generator=generator,
                        dtype=dtype) * 2 - 1
    start = longest - lengths  # front padding
    columns = torch.arange(batch_size)
    values[torch.arange(longest).unsqueeze(1) < start] = 0
    markers = torch.zeros(longest, batch_size, dtype=dtype)
    markers[start, columns] = -1
    markers[-1] = -1
    markers[start + first, columns] = 1
    markers[start + second, columns] = 1
    values[start, columns] *= (markers[start, columns] != 1).to(dtype)
    target = 0.5 + (values[start + first, columns]
                    + values[start + second, columns]) / 4
    return torch.stack([values, markers], dim=-1), target.unsqueeze(1)


#: Copy-memory symbols: 0 is the blank, 1-8 are data, 9 the delimiter.
COPY_BLANK, COPY_DELIMITER = 0, 9
COPY_DATA_SYMBOLS = tuple(range(1, 9))
#: Number of data symbols to remember and reproduce.
COPY_LENGTH = 10


def copy_memory_baseline(delay: int) -> float:
    """Cross-entropy per step (nats) of the best memoryless answer on
    :func:`copy_memory`: blank with certainty for the first ``delay + 10``
    steps (loss 0), then uniform over the 8 data symbols for the last 10
    (loss ``ln 8`` each), averaged over all ``delay + 20`` steps:
    ``10 ln 8 / (delay + 20)``."""
    check_positive_int("copy_memory_baseline", "delay", delay)
    return (COPY_LENGTH * math.log(len(COPY_DATA_SYMBOLS))
            / (delay + 2 * COPY_LENGTH))


def copy_memory(
    batch_size: int,
    delay: int,
    *,
    generator: torch.Generator | None = None,
) -> Tuple[Tensor, Tensor]:
    """Reproduce 10 symbols after a delay (Arjovsky et al. 2016).

    Input, ``delay + 20`` steps: 10 data symbols uniform in 1-8, then
    ``delay - 1`` blanks (0), the delimiter (9) at step ``delay + 9``, and
    10 blanks. Target: ``delay + 10`` blanks, then the 10 data symbols. A
    model answers at every step; chance level is
    :func:`copy_memory_baseline`.

    Returns:
        x: ``(delay + 20, batch_size)``, ``torch.long`` symbols.
        target: ``(delay + 20, batch_size)``, ``torch.long`` symbols.
    """
    check_positive_int("copy_memory", "batch_size", batch_size)
    check_positive_int("copy_memory", "delay", delay)
    steps = delay + 2 * COPY_LENGTH
    data = torch.randint(COPY_DATA_SYMBOLS[0], COPY_DATA_SYMBOLS[-1] + 1,
                         (COPY_LENGTH, batch_size), generator=generator)
    x = torch.full((steps, batch_size), COPY_BLANK, dtype=torch.long)
    x[:COPY_LENGTH] = data
    x[delay + COPY_LENGTH - 1] = COPY_DELIMITER
    target = torch.full((steps, batch_size), COPY_BLANK, dtype=torch.long)
    target[delay + COPY_LENGTH:] = data
    return x, target


#: Temporal-order symbols in the order of their one-hot channels: the start
#: marker E, the trigger B, the two relevant symbols X and Y, distractors.
TEMPORAL_ORDER_SYMBOLS = ("E", "B", "X", "Y", "a", "b", "c", "d")
#: The four classes by id: the relevant symbols in the order they appear.
TEMPORAL_ORDER_CLASSES = ("XX", "XY", "YX", "YY")
#: Guessing (any fixed answer, or uniform probabilities) on the four
#: equally likely classes: accuracy 1/4, cross-entropy ln 4 nats.
TEMPORAL_ORDER_BASELINE_ACCURACY = 0.25
TEMPORAL_ORDER_BASELINE_CROSS_ENTROPY = math.log(4)


def temporal_order(
    batch_size: int,
    length: int = 100,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tuple[Tensor, Tensor]:
    """Classify a sequence by the order of two far-apart symbols
    (Hochreiter & Schmidhuber 1997, experiment 6a).

    Positions are counted from 1, as in the paper. A sequence has its own
    length ``L``, uniform in ``[length, length + length//10]``; position 1
    holds E, position ``L`` the trigger B, and two positions ``t1``,
    uniform in ``[length//10, length//5]``, and ``t2``, uniform in
    ``[length//2, length//2 + length//10]``, hold X or Y (each with
    probability 1/2); all other positions hold one of a, b, c, d, uniformly.
    With the default ``length=100`` this is the paper's setting: L in
    [100, 110], t1 in [10, 20], t2 in [50, 60]; other lengths scale all
    three ranges. The class is the pair (symbol at t1, symbol at t2):
    XX, XY, YX, YY are classes 0-3 (:data:`TEMPORAL_ORDER_CLASSES`), to be
    read off the state after the trigger. Guessing scores
    :data:`TEMPORAL_ORDER_BASELINE_ACCURACY` = 1/4 and
    :data:`TEMPORAL_ORDER_BASELINE_CROSS_ENTROPY` = ln 4.

    Symbols are one-hot over :data:`TEMPORAL_ORDER_SYMBOLS`. Shorter
    sequences are padded with zero vectors at the *front*, so that all end
    with B at the last step; a sequence starts at its E. Requires
    ``length >= 20``, so that ``t1 >= 2`` never overwrites E.

    Returns:
        x: ``(length + length//10, batch_size, 8)``, one-hot (zeros where
        padded).
        target: ``(batch_size,)``, ``torch.long`` class ids in 0-3.
    """
    check_positive_int("temporal_order", "batch_size", batch_size)
    check_positive_int("temporal_order", "length", length)
    if length < 20:
        raise ValueError("temporal_order: expected length >= 20, so that "
                         f"t1 >= 2 comes after E, got {length}")
    longest = length + length // 10
    lengths = torch.randint(length, longest + 1, (batch_size,),
                            generator=generator)
    t1 = torch.randint(length // 10, length // 5 + 1, (batch_size,),
                       generator=generator)
    t2 = torch.randint(length // 2, length // 2 + length // 10 + 1,
                       (batch_size,), generator=generator)
    is_y = torch.randint(0, 2, (2, batch_size), generator=generator)
    # symbol ids: distractors a-d (4-7) everywhere, then E, B, X/Y
    ids = torch.randint(4, 8, (longest, batch_size), generator=generator)
    start = longest - lengths                 # index of position 1 (E)
    columns = torch.arange(batch_size)
    ids[start, columns] = 0                                   # E
    ids[-1] = 1                                               # B
    ids[start + t1 - 1, columns] = 2 + is_y[0]                # X or Y
    ids[start + t2 - 1, columns] = 2 + is_y[1]
    x = torch.nn.functional.one_hot(ids, len(TEMPORAL_ORDER_SYMBOLS))
    x = x.to(dtype)
    x[torch.arange(longest).unsqueeze(1) < start] = 0         # padding
    return x, 2 * is_y[0] + is_y[1]
