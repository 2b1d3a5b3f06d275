"""Deep feed-forward networks that write to their representation
(Part IV of the book, "Highway and residual networks").

A feed-forward network of depth d computes representations
x_0, x_1, ..., x_d of its input, one layer after another. A *plain* layer
replaces the representation, x_l = φ(W x_{l-1} + b), as the vanilla RNN
replaces its state; composing d of them brings back the vanilla RNN's two
faults over depth instead of time. The two blocks below carry x_{l-1}
through the identity and write to it instead:

* :class:`HighwayLayer` (Srivastava et al. 2015): a gated write,
  x_l = H(x_{l-1}) ⊙ g(x_{l-1}) + x_{l-1} ⊙ C(x_{l-1}), with the carry gate
  C coupled to the transform gate g, C = 1 - g (the GRU's coupling), or
  free.
* :class:`ResidualBlock` (He et al. 2015): an ungated write computed by a
  small network, x_l = x_{l-1} + F(x_{l-1}).

:func:`deep_network` stacks d layers of one kind between an input map and
a read-out; :func:`depth_jacobians`, :func:`depth_sensitivity` and
:func:`layer_gradient_norms` measure what reaches the bottom of the stack;
:func:`train_regression_ensemble` trains K networks of one architecture at
once (a seed ensemble).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..experiments.ensembles import clip_stacked_grad_norm_
from .._checks import (check_bool, check_finite_real, check_one_of,
                       check_positive_int)
from ..cells.activations import activation_named

__all__ = ["PlainLayer", "HighwayLayer", "ResidualBlock", "DeepNetwork",
           "LAYER_KINDS", "deep_network", "depth_jacobians",
           "depth_sensitivity", "layer_gradient_norms",
           "train_regression_ensemble"]


def _check_input(owner: str, x, width: int) -> None:
    """TypeError/ValueError naming ``owner`` unless ``x`` is a floating
    Tensor of shape ``(..., width)``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: expected x to be a Tensor of shape "
                        f"(B, {width}), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{owner}: expected a floating-point x, "
                        f"got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != width:
        raise ValueError(f"{owner}: expected x of shape (B, {width}), "
                         f"got {tuple(x.shape)}")


def _uniform_(owner: nn.Module, fan_in: int) -> None:
    """Every parameter of ``owner`` drawn from the uniform distribution
    𝒰(−1/√fan_in, 1/√fan_in), PyTorch's default for ``nn.Linear``."""
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        for p in owner.parameters():
            nn.init.uniform_(p, -bound, bound)


class PlainLayer(nn.Module):
    r"""One plain layer: the representation is replaced.

    .. math::

        x_l = \phi(W x_{l-1} + b)

    Args:
        width: n, the size of ``x_{l-1}`` and ``x_l``.
        nonlinearity: φ, ``"tanh"`` (default), ``"relu"`` or ``"sigmoid"``.

    Parameters: ``W`` ``(n, n)``, ``b`` ``(n,)``, both drawn from
    𝒰(−1/√n, 1/√n) (PyTorch's default for ``nn.Linear``).

    Input: ``x`` ``(B, n)``. Output: ``(B, n)``.
    """

    def __init__(self, width: int, nonlinearity: str = "tanh"):
        super().__init__()
        check_positive_int("PlainLayer", "width", width)
        self.width = width
        self.nonlinearity = nonlinearity
        self.phi = activation_named("PlainLayer", nonlinearity).function
        self.W = nn.Parameter(torch.empty(width, width))
        self.b = nn.Parameter(torch.empty(width))
        _uniform_(self, width)

    def forward(self, x: Tensor) -> Tensor:
        _check_input("PlainLayer", x, self.width)
        return self.phi(F.linear(x, self.W, self.b))  # (B, n)


class HighwayLayer(nn.Module):
    r"""One highway layer (Srivastava et al. 2015): a gated write.

    .. math::

        H &= \phi(W_H x_{l-1} + b_H)
            && \text{the candidate, a plain layer} \\
        g &= \sigma(W_g x_{l-1} + b_g)
            && \text{the transform (write) gate} \\
        C &= 1 - g \quad\text{(coupled)} \quad\text{or}\quad
             \sigma(W_C x_{l-1} + b_C) \quad\text{(uncoupled)}
            && \text{the carry (keep) gate} \\
        x_l &= H \odot g + x_{l-1} \odot C

    All vectors are ``(B, n)``. The coupled form is the GRU's step with
    depth in place of time: every unit of ``x_l`` is a convex combination
    of its old value and the candidate. It is computed as the gated delta
    ``x_l = x_{l-1} + g ⊙ (H - x_{l-1})``, the same function with one
    product fewer. (Srivastava et al. write the transform gate T; the
    book keeps T for a number of time steps.)

    Args:
        width: n, the size of ``x_{l-1}`` and ``x_l``.
        nonlinearity: φ of the candidate, ``"tanh"`` (default), ``"relu"``
            or ``"sigmoid"``.
        coupled: ``True`` (default) for C = 1 - g, ``False`` for a carry
            gate with its own parameters.
        gate_bias: the initial value of every entry of ``b_g`` (default
            -2). A negative bias starts the layer carrying,
            g ≈ σ(gate_bias), as Srivastava et al. recommend. In the
            uncoupled form ``b_C`` starts at ``-gate_bias``, so that both
            forms start with the same mean gates.

    Parameters (rows stacked in the order H | g, then C if uncoupled, as
    ``gate_names`` lists them):
        W: ``(2n, n)`` ``[W_H; W_g]`` coupled, ``(3n, n)``
            ``[W_H; W_g; W_C]`` uncoupled, drawn from 𝒰(−1/√n, 1/√n).
        b: ``(2n,)`` or ``(3n,)``, ``[b_H; b_g; b_C]``: ``b_H`` drawn from
            𝒰(−1/√n, 1/√n), ``b_g = gate_bias``, ``b_C = -gate_bias``.

    Input: ``x`` ``(B, n)``. Output: ``(B, n)``.
    """

    def __init__(self, width: int, nonlinearity: str = "tanh", *,
                 coupled: bool = True, gate_bias: float = -2.0):
        super().__init__()
        check_positive_int("HighwayLayer", "width", width)
        check_bool("HighwayLayer", "coupled", coupled)
        self.width = width
        self.nonlinearity = nonlinearity
        self.phi = activation_named("HighwayLayer", nonlinearity).function
        self.coupled = coupled
        self.gate_bias = check_finite_real("HighwayLayer", "gate_bias",
                                           gate_bias)
        self.gate_names = ("H", "g") if coupled else ("H", "g", "C")
        blocks = len(self.gate_names)
        self.W = nn.Parameter(torch.empty(blocks * width, width))
        self.b = nn.Parameter(torch.empty(blocks * width))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_(self, self.width)
        n = self.width
        with torch.no_grad():
            self.b[n:2 * n] = self.gate_bias            # b_g
            self.b[2 * n:] = -self.gate_bias            # b_C (uncoupled)

    def gates(self, x: Tensor):
        """``(g, C)``, each ``(B, n)``: the transform and carry gates."""
        n = self.width
        gates = torch.sigmoid(F.linear(x, self.W[n:], self.b[n:]))
        if self.coupled:
            return gates, 1 - gates
        return gates[..., :n], gates[..., n:]

    def forward(self, x: Tensor) -> Tensor:
        _check_input("HighwayLayer", x, self.width)
        a = F.linear(x, self.W, self.b).chunk(len(self.gate_names), -1)
        H = self.phi(a[0])                       # the candidate: (B, n)
        g = torch.sigmoid(a[1])                  # transform gate: (B, n)
        if self.coupled:
            return x + g * (H - x)               # = H⊙g + x⊙(1 - g)
        C = torch.sigmoid(a[2])                  # carry gate: (B, n)
        return H * g + x * C                     # (B, n)


class ResidualBlock(nn.Module):
    r"""One residual block (He et al. 2015): an ungated write whose delta
    is computed by a two-layer network.

    .. math::

        F(x_{l-1}) &= W_2\, \phi(W_1 x_{l-1} + b_1) + b_2 \\
        x_l &= x_{l-1} + F(x_{l-1})

    with ``x_{l-1}``, ``x_l`` ``(B, n)`` and the hidden layer
    ``(B, hidden_size)``. The Jacobian is ``I + ∂F/∂x_{l-1}``. He et al.
    apply a ReLU after the sum as well; without it, as here, the carried
    path is the exact identity.

    Args:
        width: n, the size of ``x_{l-1}`` and ``x_l``.
        hidden_size: the width of F's hidden layer (default n).
        nonlinearity: φ, ``"tanh"`` (default), ``"relu"`` or ``"sigmoid"``.

    Parameters: ``W_1`` ``(hidden_size, n)``, ``b_1`` ``(hidden_size,)``,
    ``W_2`` ``(n, hidden_size)``, ``b_2`` ``(n,)``, each drawn from
    𝒰(−1/√fan_in, 1/√fan_in) with fan_in its layer's input size, n or
    ``hidden_size`` (PyTorch's ``nn.Linear`` ranges).

    Input: ``x`` ``(B, n)``. Output: ``(B, n)``.
    """

    def __init__(self, width: int, hidden_size: int | None = None,
                 nonlinearity: str = "tanh"):
        super().__init__()
        check_positive_int("ResidualBlock", "width", width)
        hidden_size = width if hidden_size is None else hidden_size
        check_positive_int("ResidualBlock", "hidden_size", hidden_size)
        self.width, self.hidden_size = width, hidden_size
        self.nonlinearity = nonlinearity
        self.phi = activation_named("ResidualBlock", nonlinearity).function
        self.W_1 = nn.Parameter(torch.empty(hidden_size, width))
        self.b_1 = nn.Parameter(torch.empty(hidden_size))
        self.W_2 = nn.Parameter(torch.empty(width, hidden_size))
        self.b_2 = nn.Parameter(torch.empty(width))
        bounds = {"W_1": width, "b_1": width,
                  "W_2": hidden_size, "b_2": hidden_size}
        with torch.no_grad():
            for name, fan_in in bounds.items():
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(getattr(self, name), -bound, bound)

    def delta(self, x: Tensor) -> Tensor:
        """F(x), the write: ``(B, n)``."""
        hidden = self.phi(F.linear(x, self.W_1, self.b_1))   # (B, hidden)
        return F.linear(hidden, self.W_2, self.b_2)          # (B, n)

    def forward(self, x: Tensor) -> Tensor:
        _check_input("ResidualBlock", x, self.width)
        return x + self.delta(x)                             # (B, n)


#: The layers :func:`deep_network` can stack, by name.
LAYER_KINDS = {"plain": PlainLayer, "highway": HighwayLayer,
               "residual": ResidualBlock}


class DeepNetwork(nn.Module):
    r"""An input map, d layers of one kind, and a linear read-out.

    .. math::

        x_0 = A x_{\text{in}} + b_A, \qquad x_l = \mathrm{layer}_l(x_{l-1})
        \;\; (l = 1, \dots, d), \qquad y = R x_d + b_R

    Args:
        layers: the d layers, each mapping ``(B, n)`` to ``(B, n)``.
        input_size: m, the size of the input x_in (``u``).
        output_size: n_o, the size of the output ``y``.

    Parameters: ``input_map`` (A ``(n, m)``, b_A ``(n,)``) and
    ``readout`` (R ``(n_o, n)``, b_R ``(n_o,)``) are ``nn.Linear`` with
    PyTorch's default initialization; ``layers`` is an ``nn.ModuleList``.

    Input: ``u`` ``(B, m)``. Output: ``y`` ``(B, n_o)``.
    """

    def __init__(self, layers: list[nn.Module], input_size: int,
                 output_size: int):
        super().__init__()
        check_positive_int("DeepNetwork", "input_size", input_size)
        check_positive_int("DeepNetwork", "output_size", output_size)
        widths = {getattr(layer, "width", None) for layer in layers}
        if len(layers) == 0 or len(widths) != 1 or None in widths:
            raise ValueError("DeepNetwork: expected at least one layer, all "
                             "with the same width attribute, got widths "
                             f"{sorted(widths, key=str)}")
        self.width = widths.pop()
        self.input_size, self.output_size = input_size, output_size
        self.input_map = nn.Linear(input_size, self.width)
        self.layers = nn.ModuleList(layers)
        self.readout = nn.Linear(self.width, output_size)

    @property
    def depth(self) -> int:
        """d, the number of layers between the input map and read-out."""
        return len(self.layers)

    def representations(self, u: Tensor) -> list[Tensor]:
        """``[x_0, x_1, ..., x_d]``, each ``(B, n)``."""
        _check_input("DeepNetwork", u, self.input_size)
        xs = [self.input_map(u)]                   # x_0: (B, n)
        for layer in self.layers:
            xs.append(layer(xs[-1]))               # x_l: (B, n)
        return xs

    def forward(self, u: Tensor) -> Tensor:
        return self.readout(self.representations(u)[-1])   # (B, k)


def deep_network(kind: str, input_size: int, width: int, output_size: int,
                 depth: int, **layer_options) -> DeepNetwork:
    """A :class:`DeepNetwork` of ``depth`` layers of one ``kind``:
    ``"plain"``, ``"highway"`` or ``"residual"``.

    ``layer_options`` go to every layer's constructor, e.g.
    ``nonlinearity="relu"``, ``gate_bias=-3.0`` or ``coupled=False`` for
    highway layers, ``hidden_size=64`` for residual blocks.
    """
    check_one_of("deep_network", "kind", kind, sorted(LAYER_KINDS))
    check_positive_int("deep_network", "depth", depth)
    check_positive_int("deep_network", "width", width)
    layer = LAYER_KINDS[kind]
    return DeepNetwork([layer(width, **layer_options) for _ in range(depth)],
                       input_size, output_size)


def _rows_of_jacobians(y: Tensor, xs: list[Tensor]) -> list[Tensor]:
    """``∂y/∂x`` for each ``x`` in ``xs``, every example: ``(B, n, m)``
    each, for ``y`` ``(B, n)`` whose row b depends on row b of each x
    only. Row i is one backward pass of e_i; ``is_grads_batched``
    vectorizes the n passes."""
    B, n = y.shape
    rows = torch.eye(n, dtype=y.dtype, device=y.device)
    rows = rows[:, None, :].expand(n, B, n)     # e_i for every b
    grads = torch.autograd.grad(y, xs, rows, is_grads_batched=True)
    return [g.transpose(0, 1) for g in grads]   # (n, B, m) to (B, n, m)


def depth_jacobians(network: DeepNetwork, u: Tensor) -> Tensor:
    """``∂x_l/∂x_{l-1}`` for every layer l = 1..d and every example:
    ``(d, B, n, n)``, computed by autograd at the representations that
    ``u`` ``(B, m)`` produces."""
    if not isinstance(network, DeepNetwork):
        raise TypeError(f"depth_jacobians: expected a DeepNetwork, "
                        f"got {type(network).__name__}")
    jacobians = []
    with torch.enable_grad():
        xs = network.representations(u)
        for layer, x in zip(network.layers, xs[:-1]):
            x = x.detach().requires_grad_()
            jacobians += _rows_of_jacobians(layer(x), [x])
    return torch.stack(jacobians)


def depth_sensitivity(network: DeepNetwork, u: Tensor) -> Tensor:
    """``‖∂x_d/∂x_l‖₂`` for l = 0, ..., d and every example: ``(B, d+1)``.

    Entry ``l`` says how much a change to the representation after layer
    l (a change to x_0 for l = 0) can move the last one; entry d is 1. One
    batched backward pass per output unit of x_d (vectorized by
    ``is_grads_batched``) gives row i of every ∂x_d/∂x_l at once."""
    if not isinstance(network, DeepNetwork):
        raise TypeError(f"depth_sensitivity: expected a DeepNetwork, "
                        f"got {type(network).__name__}")
    with torch.enable_grad():
        xs = network.representations(u)
        jac = torch.stack(_rows_of_jacobians(xs[-1], xs), dim=1)
    # jac[b, l] = ∂x_d/∂x_l for example b: (B, d+1, n, n)
    return torch.linalg.matrix_norm(jac, ord=2)        # (B, L+1)


def layer_gradient_norms(network: DeepNetwork, u: Tensor,
                         target: Tensor) -> Tensor:
    """``‖∂L/∂θ_l‖₂`` for every layer l = 1..d: ``(d,)``, where θ_l are
    all of layer l's parameters and L the mean squared error of
    ``network(u)`` against ``target``. Gradients already stored in the
    network are left untouched."""
    if not isinstance(network, DeepNetwork):
        raise TypeError(f"layer_gradient_norms: expected a DeepNetwork, "
                        f"got {type(network).__name__}")
    loss = F.mse_loss(network(u), target)
    per_layer = [list(layer.parameters()) for layer in network.layers]
    grads = torch.autograd.grad(loss, [p for ps in per_layer for p in ps])
    norms, start = [], 0
    for ps in per_layer:
        mine = grads[start:start + len(ps)]
        start += len(ps)
        norms.append(torch.sqrt(sum((g ** 2).sum() for g in mine)))
    return torch.stack(norms)


# -- K networks trained at once -----------------------------------------------
def _stacked_affine(x: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """``x W_kᵀ + b_k`` for every member k: ``x`` ``(K, B, i)``, ``W``
    ``(K, o, i)``, ``b`` ``(K, o)``; returns ``(K, B, o)``."""
    return torch.baddbmm(b.unsqueeze(1), x, W.transpose(1, 2))


def _stacked_layer(layer: nn.Module, p: dict, x: Tensor) -> Tensor:
    """``layer``'s function for K members at once, their parameters ``p``
    (name to ``(K, ...)``) and representations ``x`` ``(K, B, n)``: the
    forward passes of :class:`PlainLayer`, :class:`HighwayLayer` and
    :class:`ResidualBlock` with one more dimension."""
    if isinstance(layer, PlainLayer):
        return layer.phi(_stacked_affine(x, p["W"], p["b"]))
    if isinstance(layer, ResidualBlock):
        hidden = layer.phi(_stacked_affine(x, p["W_1"], p["b_1"]))
        return x + _stacked_affine(hidden, p["W_2"], p["b_2"])
    a = _stacked_affine(x, p["W"], p["b"]).chunk(len(layer.gate_names), -1)
    H, g = layer.phi(a[0]), torch.sigmoid(a[1])
    if layer.coupled:
        return x + g * (H - x)
    return H * g + x * torch.sigmoid(a[2])


def _layer_signature(layer: nn.Module) -> tuple:
    return (type(layer), layer.width, layer.nonlinearity,
            getattr(layer, "coupled", None),
            getattr(layer, "hidden_size", None))


def train_regression_ensemble(
    networks: list[DeepNetwork],
    make_batch,
    *,
    steps: int,
    seeds: list[int],
    lr: float = 1e-2,
    clip_norm: float | None = 1.0,
) -> Tensor:
    """Train K networks of one architecture at once, network k as
    ``train_regression(networks[k], make_batch, steps=steps, lr=lr,
    seed=seeds[k], clip_norm=clip_norm)`` would train it alone.

    The K networks' parameters are stacked along a new first dimension
    (the layers' along a second, so that Adam and the clipping touch a
    few tensors), and each step runs every layer once, as batched
    products over ``(K, B, n)`` representations. Network k draws its
    batches ``make_batch(g_k)`` from its own generator seeded with
    ``seeds[k]``; its gradient is clipped by the norm of its own
    gradient; one Adam over the stacked parameters is K Adams, since Adam
    works entry by entry. The results equal K separate runs up to
    rounding (``tests/test_depth.py`` checks 1e-10 in float64).

    ``networks`` are :class:`DeepNetwork` s with the same depth, layer
    kind and sizes (their initial parameters may differ); their
    parameters are overwritten with the trained ones. Returns the
    training losses, ``(K, steps)``.
    """
    owner = "train_regression_ensemble"
    networks = list(networks)
    if not networks or not all(isinstance(net, DeepNetwork)
                               for net in networks):
        raise TypeError(f"{owner}: expected a non-empty list of "
                        f"DeepNetworks")
    shape = [(net.input_size, net.output_size,
              [_layer_signature(layer) for layer in net.layers])
             for net in networks]
    if any(s != shape[0] for s in shape):
        raise ValueError(f"{owner}: expected networks of one architecture "
                         f"(same depth, layer kind and sizes)")
    seeds = list(seeds)
    if len(seeds) != len(networks) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"{owner}: expected one int seed per network, "
                         f"got {seeds!r} for {len(networks)} networks")
    check_positive_int(owner, "steps", steps)
    template = networks[0]
    outer = {name: torch.stack([net.get_parameter(name).detach()
                                for net in networks])
             for name in ("input_map.weight", "input_map.bias",
                          "readout.weight", "readout.bias")}
    inner = {name: torch.stack([torch.stack([getattr(layer, name).detach()
                                             for layer in net.layers])
                                for net in networks])       # (K, L, ...)
             for name, _ in template.layers[0].named_parameters()}
    stacked = [p.requires_grad_() for p in [*outer.values(),
                                            *inner.values()]]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    optimiser = torch.optim.Adam(stacked, lr=lr)
    losses = []
    for _ in range(steps):
        batches = [make_batch(g) for g in generators]
        u = torch.stack([b[0] for b in batches])             # (K, B, m)
        target = torch.stack([b[1] for b in batches])        # (K, B, k)
        x = _stacked_affine(u, outer["input_map.weight"],
                            outer["input_map.bias"])
        per_layer = {name: p.unbind(1) for name, p in inner.items()}
        for l, layer in enumerate(template.layers):
            x = _stacked_layer(layer, {name: p[l] for name, p in
                                       per_layer.items()}, x)
        y = _stacked_affine(x, outer["readout.weight"],
                            outer["readout.bias"])
        loss = ((y - target) ** 2).flatten(1).mean(1)        # (K,)
        optimiser.zero_grad()
        loss.sum().backward()           # member k's gradient: of its loss
        if clip_norm is not None:
            clip_stacked_grad_norm_([p.grad for p in stacked], clip_norm)
        optimiser.step()
        losses.append(loss.detach())
    with torch.no_grad():
        for k, net in enumerate(networks):
            for name, p in outer.items():
                net.get_parameter(name).copy_(p[k])
            for l, layer in enumerate(net.layers):
                for name, p in inner.items():
                    getattr(layer, name).copy_(p[k, l])
    return torch.stack(losses, dim=1)
