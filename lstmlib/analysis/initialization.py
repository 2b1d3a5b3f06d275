"""Initializers for the recurrent weights W (Part I, "Initializing the
recurrent weights").

The chapter starts from the bound ‖Δs_{t+k}‖ ≤ ‖γ̄W‖₂^k ‖Δs_t‖, where
γ̄ = sup|φ'| (1 for tanh, 1/4 for the logistic sigmoid) is the global
slope bound of Part I's "Vanishing and exploding sensitivity" (its γ and
γ' are slopes met along a trajectory, at most γ̄), and asks for a W that
brings the bound as close to equality as possible: every singular value
of γ̄W equal to 1. Two ways to approach that goal live here. The keyword
``gamma`` of the functions below is γ̄.

* On average: draw the n² entries of W ∈ ℝ^{n×n} independently with
  n E[w²] = 1/γ̄², so that every column γ̄W e_j has expected squared norm
  Σ_i γ̄² E[w_ij²] = 1 (the sum runs over the n rows of W).
  :func:`unit_column_uniform_` draws from the uniform distribution
  𝒰(−w_max, w_max) with w_max = √3 / (γ̄√n), :func:`unit_column_normal_`
  from N(0, 1/(γ̄²n)). For square W the first is :func:`xavier_uniform_`
  (Glorot and Bengio, 2010) with gain 1/γ̄.
* Exactly: :func:`orthogonal_` makes W = O/γ̄ with O orthogonal, so every
  singular value of γ̄W is 1.

Functions that fill a tensor in place end with ``_``, like
``torch.nn.init``; each returns the tensor it filled. Every one accepts a
``torch.Generator`` so that an initialization can be reproduced.
:func:`initialize_recurrent_` applies any of them to the recurrent weights
of a cell.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real

import torch
from torch import Tensor

from .._checks import check_callable

__all__ = ["initialize_recurrent_", "orthogonal_", "unit_column_normal_",
           "unit_column_normal_std", "unit_column_uniform_",
           "unit_column_uniform_bound", "xavier_uniform_",
           "xavier_uniform_bound"]


def _check_weight(weight, who: str) -> Tensor:
    if not isinstance(weight, Tensor):
        raise TypeError(f"{who}: expected a torch.Tensor, got "
                        f"{type(weight).__name__}")
    if weight.dim() != 2 or weight.numel() == 0:
        raise ValueError(f"{who}: expected a non-empty 2-D weight "
                         f"(rows, columns), got shape {tuple(weight.shape)}")
    return weight


def _check_positive(value, name: str, who: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{who}: expected {name} to be a real number, got "
                        f"{type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{who}: expected {name} > 0 and finite, got "
                         f"{value!r}")
    return float(value)


def _check_size(n, name: str, who: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{who}: expected {name} to be a positive int, "
                         f"got {n!r}")
    return n


def unit_column_uniform_bound(n: int, gamma: float = 1.0) -> float:
    """w_max = √3 / (γ̄√n), γ̄ = ``gamma``: 𝒰(−w_max, w_max) has variance
    w_max²/3 = 1/(γ̄²n)."""
    who = "unit_column_uniform_bound"
    n = _check_size(n, "n", who)
    gamma = _check_positive(gamma, "gamma", who)
    return math.sqrt(3.0) / (gamma * math.sqrt(n))


def unit_column_uniform_(weight: Tensor, *, gamma: float = 1.0,
                         generator: torch.Generator | None = None
                         ) -> Tensor:
    """Fill ``weight`` (n, ·) with draws from 𝒰(−w_max, w_max),
    w_max = √3/(γ̄√n), γ̄ = ``gamma``, n = rows.

    Each column γ̄W e_j sums n squared entries of variance
    γ̄² w_max²/3 = 1/n, so its expected squared norm is 1: the goal
    ‖γ̄W e_j‖ = 1, on average.
    """
    weight = _check_weight(weight, "unit_column_uniform_")
    w_max = unit_column_uniform_bound(weight.shape[0], gamma)
    with torch.no_grad():
        return weight.uniform_(-w_max, w_max, generator=generator)


def unit_column_normal_std(n: int, gamma: float = 1.0) -> float:
    """std = 1 / (γ̄√n), γ̄ = ``gamma``: N(0, std²) has
    E[w²] = 1/(γ̄²n)."""
    who = "unit_column_normal_std"
    n = _check_size(n, "n", who)
    gamma = _check_positive(gamma, "gamma", who)
    return 1.0 / (gamma * math.sqrt(n))


def unit_column_normal_(weight: Tensor, *, gamma: float = 1.0,
                        generator: torch.Generator | None = None
                        ) -> Tensor:
    """Fill ``weight`` (n, ·) with draws from N(0, 1/(γ̄²n)),
    γ̄ = ``gamma``, n = rows.

    The Gaussian twin of :func:`unit_column_uniform_`: the same
    E[w²] = 1/(γ̄²n), so columns of γ̄W again have unit expected squared
    norm.
    """
    weight = _check_weight(weight, "unit_column_normal_")
    std = unit_column_normal_std(weight.shape[0], gamma)
    with torch.no_grad():
        return weight.normal_(0.0, std, generator=generator)


def xavier_uniform_bound(fan_in: int, fan_out: int,
                         gain: float = 1.0) -> float:
    """w_max = gain · √6 / √(fan_in + fan_out) (Glorot and Bengio,
    2010)."""
    who = "xavier_uniform_bound"
    fan_in = _check_size(fan_in, "fan_in", who)
    fan_out = _check_size(fan_out, "fan_out", who)
    gain = _check_positive(gain, "gain", who)
    return gain * math.sqrt(6.0 / (fan_in + fan_out))


def xavier_uniform_(weight: Tensor, *, gain: float = 1.0,
                    generator: torch.Generator | None = None) -> Tensor:
    """Fill ``weight`` (fan_out, fan_in) with draws from
    𝒰(−w_max, w_max), w_max as in :func:`xavier_uniform_bound`; the same
    draw as ``torch.nn.init.xavier_uniform_``.

    Var = 2/(fan_in + fan_out) averages the forward and backward variance
    conditions; for square W (fan_in = fan_out = n) it is 1/n, the bound
    w_max = √3/√n of :func:`unit_column_uniform_` with γ̄ = 1.
    """
    weight = _check_weight(weight, "xavier_uniform_")
    fan_out, fan_in = weight.shape
    w_max = xavier_uniform_bound(fan_in, fan_out, gain)
    with torch.no_grad():
        return weight.uniform_(-w_max, w_max, generator=generator)


def orthogonal_(weight: Tensor, *, gamma: float = 1.0,
                generator: torch.Generator | None = None) -> Tensor:
    """Fill ``weight`` (rows, cols) with O/γ̄, γ̄ = ``gamma``, O orthogonal
    and Haar-distributed.

    Every singular value of γ̄W is then exactly 1, the goal itself rather
    than its average. O is the orthogonal factor of the QR factorization
    of a Gaussian matrix, with the signs of the triangular factor's
    diagonal moved into O so that O is uniform over the orthogonal group.
    For rows ≠ cols, O has orthonormal columns (rows > cols) or rows
    (rows < cols); the same as ``torch.nn.init.orthogonal_`` with gain
    1/γ̄.
    """
    weight = _check_weight(weight, "orthogonal_")
    gamma = _check_positive(gamma, "gamma", "orthogonal_")
    rows, cols = weight.shape
    tall = rows >= cols
    shape = (rows, cols) if tall else (cols, rows)
    gaussian = torch.randn(shape, generator=generator,
                           dtype=torch.float64, device=weight.device)
    # gaussian = O · (upper triangular), O of the shape of gaussian
    orthogonal, triangular = torch.linalg.qr(gaussian)
    signs = torch.sign(torch.diagonal(triangular))
    signs[signs == 0] = 1.0
    orthogonal = orthogonal * signs     # Haar: triangular's diagonal now > 0
    orthogonal = orthogonal if tall else orthogonal.T      # (rows, cols)
    with torch.no_grad():
        return weight.copy_(orthogonal / gamma)


def initialize_recurrent_(cell: torch.nn.Module,
                          initializer: Callable[..., Tensor],
                          **options) -> torch.nn.Module:
    """Apply ``initializer(block, **options)`` to every recurrent weight.

    The recurrent weights are the 2-D parameters named ``W`` or ``W_*``
    (the book's symbols). A weight of shape (k·n, n), k matrices stacked
    by rows as in PyTorch's gated cells, is initialized one (n, n) block
    at a time, so each block is, e.g., orthogonal on its own. Nothing
    else (U, b) is touched. Returns the cell.
    """
    who = "initialize_recurrent_"
    n = getattr(cell, "state_size", None)
    if not isinstance(cell, torch.nn.Module) or not isinstance(n, int):
        raise TypeError(f"{who}: expected an lstmlib Cell (a Module with a "
                        f"state_size), got {type(cell).__name__}")
    check_callable(who, "initializer", initializer, "orthogonal_")
    found = []
    for name, weight in cell.named_parameters(recurse=False):
        if name != "W" and not name.startswith("W_"):
            continue
        if weight.dim() != 2 or weight.shape[1] != n \
                or weight.shape[0] % n != 0:
            raise ValueError(f"{who}: expected {name} of shape (k·{n}, {n}),"
                             f" got {tuple(weight.shape)}")
        for block in weight.detach().split(n, dim=0):
            initializer(block, **options)          # views: fills weight
        found.append(name)
    if not found:
        raise ValueError(f"{who}: expected {type(cell).__name__} to have a "
                         f"recurrent weight named W or W_*, found none")
    return cell
