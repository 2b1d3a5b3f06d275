"""The activation functions of the book, in one table.

A cell's squashing function φ (and the gates' σ) appears in several roles:
the cell applies it, a fast kernel applies it in place, the hand-written
backward passes need its derivative written through its *output*
(φ'(a_t) from s_t = φ(a_t), since s_t is what the forward pass keeps), the
sensitivity bounds need its derivative at an *input* z and its largest
slope over ℝ. Each row of :data:`ACTIVATIONS` holds all of them, so that
no module writes its own.

======== ================ ====================== ===============
name     φ'(z)            φ' from y = φ(z)       sup_ℝ |φ'|
======== ================ ====================== ===============
tanh     1 - tanh(z)²     1 - y²                 1 (at z = 0)
sigmoid  σ(z)(1 - σ(z))   y(1 - y)               1/4 (at z = 0)
relu     1[z > 0]         1[y > 0]               1
======== ================ ====================== ===============

relu is not differentiable at 0; like autograd, the table takes
relu'(0) = 0.

>>> import torch
>>> tanh = activation_named("example", "tanh")
>>> z = torch.tensor([-1.0, 0.0, 2.0])
>>> torch.allclose(tanh.slope(z), tanh.slope_from_output(tanh.function(z)))
True
>>> ACTIVATIONS["sigmoid"].max_slope
0.25
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict

import torch
from torch import Tensor

__all__ = ["Activation", "ACTIVATIONS", "activation_named"]


@dataclass(frozen=True)
class Activation:
    """One activation function φ and what the book needs of it.

    Attributes:
        name: ``"tanh"``, ``"sigmoid"`` or ``"relu"``.
        function: z ↦ φ(z), elementwise, any shape.
        in_place: φ applied to a tensor in place (the fast kernels).
        slope: z ↦ φ'(z), the derivative at the input z.
        slope_from_output: y ↦ φ'(z) where y = φ(z), the derivative
            written through the output (what a backward pass has kept).
        max_slope: sup over ℝ of |φ'(z)|.
    """
    name: str
    function: Callable[[Tensor], Tensor]
    in_place: Callable[[Tensor], Tensor]
    slope: Callable[[Tensor], Tensor]
    slope_from_output: Callable[[Tensor], Tensor]
    max_slope: float


def _sigmoid_slope(z: Tensor) -> Tensor:
    s = torch.sigmoid(z)
    return s * (1 - s)                                  # σ' = σ(1 - σ)


#: The activation functions, by name.
ACTIVATIONS: Dict[str, Activation] = {
    "tanh": Activation(
        "tanh", torch.tanh, torch.tanh_,
        slope=lambda z: 1 - torch.tanh(z) ** 2,         # tanh' = 1 - tanh²
        slope_from_output=lambda y: 1 - y * y,
        max_slope=1.0),
    "sigmoid": Activation(
        "sigmoid", torch.sigmoid, torch.sigmoid_,
        slope=_sigmoid_slope,
        slope_from_output=lambda y: y * (1 - y),
        max_slope=0.25),
    "relu": Activation(
        "relu", torch.relu, torch.relu_,
        slope=lambda z: (z > 0).to(z.dtype),            # relu' = 1[z > 0]
        slope_from_output=lambda y: (y > 0).to(y.dtype),
        max_slope=1.0),
}


def activation_named(owner: str, name) -> Activation:
    """The row of :data:`ACTIVATIONS` called ``name``; a ``ValueError``
    naming ``owner`` and the known names otherwise."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"{owner}: expected nonlinearity to be one of "
                         f"{sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]
