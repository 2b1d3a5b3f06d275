"""Whole-sequence passes of the basic LSTM, the GRU and the vanilla RNN,
with backward passes derived by hand: the fast path the three cells choose
in their ``forward_sequence``.

Tensors in, tensors out: this module imports no cell. A cell that owns
the equations decides when its kernel applies (its own step, the right
options) and calls :func:`lstm_sequence`, :func:`gru_sequence` or
:func:`vanilla_sequence` with its parameters, as nanoGPT's attention
calls ``scaled_dot_product_attention`` when it may, with the manual
version beside it.

The cells of the book (:class:`~lstmlib.cells.lstm.BasicLSTMCell`,
:class:`~lstmlib.cells.gru.GRUCell` with ``reset="after"``,
:class:`~lstmlib.cells.vanilla.VanillaRNNCell`) stay what the chapters show: one
step, written like its equations, differentiated by autograd. Unrolled
over T steps that costs, per step, a dozen small PyTorch calls forwards
and autograd's record of each of them backwards. This module computes the
*same function* over a whole sequence with fewer, larger operations:

* the input projections U x_t + b of all T steps in one matrix product,
  and every recurrent product of a step (all gates at once) in one
  ``addmm`` that adds into that projection in place;
* the elementwise tails in place, into buffers allocated once per
  sequence, not once per step;
* the backward pass by hand, as a :class:`torch.autograd.Function`: the
  recursion of Part I (:func:`lstmlib.analysis.bptt.vanilla_bptt`) and Part II
  (:func:`lstmlib.analysis.lstm_backward.lstm_bptt`). Every factor of it that does
  not depend on the recursion (σ', φ', the gates) is computed for all
  steps at once before the loop, so that the loop is only the recursion
  itself (two to five operations a step); the per-step pre-activation
  gradients δ_t are kept, and the weight gradients of all steps are then
  one large matrix product each:
  ∂L/∂W = Σ_t δ_t h_{t-1}ᵀ, ∂L/∂U = Σ_t δ_t x_tᵀ, ∂L/∂b = Σ_t δ_t.

``tests/test_kernels.py`` checks, in float64 to 1e-10, that outputs, final
states and the gradients with respect to the input, the initial state and
every parameter equal those of the plain loop over ``cell.step``, and
gradchecks each Function. A cell whose ``forward_sequence`` returns
``None`` (every other cell, and these three where a subclass or an option
changes the step) runs the plain loop in
:class:`~lstmlib.cells.recurrent.Recurrent`; ``Recurrent(cell,
fused=False)`` always does.

Under ``torch.autocast`` the kernels run outside it, in the dtype of
their weights (inputs and states are cast to it): the hand-derived
backward passes are written for one dtype throughout, and the recurrent
products are a small part of a language model's step next to its
read-out, which autocast still lowers.

Shapes: time-major ``x`` ``(T, B, m)``, states ``(B, n)``, outputs
``(T, B, n)``. The Functions can be differentiated once, not twice
(``once_differentiable``); nothing in the book differentiates a gradient.
"""
from __future__ import annotations

import contextlib
from typing import Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .activations import ACTIVATIONS

__all__ = ["FusedGRU", "FusedLSTM", "FusedVanillaRNN", "lstm_sequence",
           "gru_sequence", "vanilla_sequence", "plain_tensors",
           "project_inputs", "lstm_forward"]


def project_inputs(x: Tensor, U: Tensor, b: Tensor) -> Tensor:
    """U x_t + b for all T steps in one product: ``(T, B, rows of U)``."""
    T, B, m = x.shape
    return torch.addmm(b, x.reshape(T * B, m), U.t()).view(T, B, -1)


def _weight_grad(delta: Tensor, first: Tensor, rest: Tensor) -> Tensor:
    """Σ_t δ_t v_{t-1}ᵀ over all steps and the batch, with v_0 = ``first``
    ``(B, k)`` and v_1..v_{T-1} = ``rest[:-1]`` ``(T, B, k)``: two products
    instead of T."""
    T, _, rows = delta.shape
    grad = delta[0].t() @ first
    if T > 1:
        grad.addmm_(delta[1:].reshape(-1, rows).t(),
                    rest[:-1].reshape(-1, rest.shape[-1]))
    return grad


def _input_grads(ctx, delta: Tensor, x: Tensor, U: Tensor, x_index: int,
                 U_index: int, b_index: int):
    """∂L/∂x_t = Uᵀ δ_t, ∂L/∂U = Σ_t δ_t x_tᵀ, ∂L/∂b = Σ_t δ_t, each
    only where the Function's caller needs it."""
    T, B, rows = delta.shape
    flat = delta.reshape(T * B, rows)
    need = ctx.needs_input_grad
    dx = (flat @ U).view(T, B, -1) if need[x_index] else None
    dU = flat.t() @ x.reshape(T * B, -1) if need[U_index] else None
    db = flat.sum(0) if need[b_index] else None
    return dx, dU, db


# -- the basic LSTM -----------------------------------------------------------
def lstm_forward(x, h0, c0, W, U, b, *, keep: bool):
    """The forward pass of :class:`~lstmlib.cells.lstm.BasicLSTMCell`:
    a_t = W h_{t-1} + U x_t + b; i, f, o = σ(a_i, a_f, a_o), c̃ = φ(a_c̃);
    c_t = f ⊙ c_{t-1} + i ⊙ c̃; h_t = o ⊙ φ(c_t).

    Returns ``(H, C, gates, squashed)``: h_1..h_T and c_1..c_T
    ``(T, B, n)``, the activated gates i | f | c̃ | o ``(T, B, 4n)`` and
    φ(c_t) ``(T, B, n)``. With ``keep=False`` (inference) C and φ(c)
    are one step deep, since nothing reads them later. It writes into
    its buffers in place and records no graph of its own: call it under
    ``torch.no_grad()`` or through :class:`FusedLSTM`. With
    ``keep=True`` it is also the forward pass that
    :func:`lstmlib.analysis.lstm_backward.lstm_states` keeps."""
    T, B, _ = x.shape
    n = h0.shape[1]
    gates = project_inputs(x, U, b)                   # U x_t + b, then a_t, then
    H = x.new_empty(T, B, n)                    # the activated gates
    C = x.new_empty(T if keep else 1, B, n)
    squashed = x.new_empty(T if keep else 1, B, n)
    # per-step views, made once (indexing in the loop would cost a call)
    a, i, f, i_f, c_tilde, o = (gates[..., cols].unbind(0) for cols in (
        slice(None), slice(0, n), slice(n, 2 * n), slice(0, 2 * n),
        slice(2 * n, 3 * n), slice(3 * n, None)))
    Hs, Cs, Ss = H.unbind(0), C.unbind(0), squashed.unbind(0)
    Wt = W.t()
    h, c = h0, c0
    for t in range(T):
        k = t if keep else 0
        a[t].addmm_(h, Wt)                      # a_t: (B, 4n)
        i_f[t].sigmoid_()                       # i_t, f_t
        c_tilde[t].tanh_()                      # c̃_t
        o[t].sigmoid_()                         # o_t
        c = torch.mul(f[t], c, out=Cs[k])       # f_t ⊙ c_{t-1}
        c.addcmul_(i[t], c_tilde[t])            # + i_t ⊙ c̃_t
        torch.tanh(c, out=Ss[k])                # φ(c_t)
        h = torch.mul(o[t], Ss[k], out=Hs[t])   # h_t
    return H, C, gates, squashed


class FusedLSTM(torch.autograd.Function):
    """``(x, h_0, c_0, W, U, b) ↦ (h_1..h_T, h_T, c_T)`` for the basic LSTM,
    with the backward pass of :func:`lstmlib.analysis.lstm_backward.lstm_bptt`.

    Backwards, from t = T down to 1, with δ_{T+1} = 0:

        dh_t = ∂ℓ/∂h_t + Wᵀ δ_{t+1}
        dc_t = dh_t ⊙ o_t ⊙ (1 - φ(c_t)²) + dc_{t+1} ⊙ f_{t+1}
        δ_t  = (dc_t ⊙ c̃_t ⊙ σ'_i, dc_t ⊙ c_{t-1} ⊙ σ'_f,
                dc_t ⊙ i_t ⊙ (1 - c̃_t²), dh_t ⊙ φ(c_t) ⊙ σ'_o)

    where σ'_i = i_t (1 - i_t) and so on. The bracketed factors of dh_t and
    dc_t are computed for all t before the loop, so a step of the loop is
    one ``addmm`` and four elementwise products.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, W, U, b):
        H, C, gates, squashed = lstm_forward(x, h0, c0, W, U, b, keep=True)
        ctx.save_for_backward(x, h0, c0, W, U, H, C, gates, squashed)
        return H, H[-1].clone(), C[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hT, d_cT):
        x, h0, c0, W, U, H, C, gates, squashed = ctx.saved_tensors
        T, B, n = H.shape
        i, f, c_tilde, o = gates.split(n, dim=-1)
        c_prev = torch.cat([c0[None], C[:-1]])          # c_0..c_{T-1}
        # the factors of the recursion that do not depend on it
        from_h = o * (1 - squashed * squashed)          # ∂c-path of dh
        to_o = squashed * o * (1 - o)                   # δ_o = dh ⊙ to_o
        to_ifc = torch.cat([c_tilde * i * (1 - i),      # δ_i = dc ⊙ ...
                            c_prev * f * (1 - f),       # δ_f
                            i * (1 - c_tilde * c_tilde)],   # δ_c̃
                           dim=-1).view(T, B, 3, n)
        grad_h = d_out.clone()                          # ∂ℓ/∂h_t
        grad_h[-1] += d_hT
        delta = x.new_empty(T, B, 4 * n)                # δ_t
        dc = x.new_empty(T, B, n)
        # per-step views, made once
        dh_, dc_, f_, from_h_, to_o_, to_ifc_ = (
            v.unbind(0) for v in (grad_h, dc, f, from_h, to_o, to_ifc))
        delta_ = delta.unbind(0)
        d_ifc = delta[..., :3 * n].view(T, B, 3, n).unbind(0)
        d_o = delta[..., 3 * n:].unbind(0)
        torch.mul(dh_[-1], from_h_[-1], out=dc_[-1]).add_(d_cT)
        for t in range(T - 1, -1, -1):
            dh = dh_[t]
            if t < T - 1:
                dh.addmm_(delta_[t + 1], W)             # + Wᵀ δ_{t+1}
                torch.mul(dh, from_h_[t], out=dc_[t]).addcmul_(
                    dc_[t + 1], f_[t + 1])              # + dc_{t+1} f_{t+1}
            torch.mul(dc_[t].unsqueeze(1), to_ifc_[t], out=d_ifc[t])
            torch.mul(dh, to_o_[t], out=d_o[t])
        need = ctx.needs_input_grad
        dh0 = delta[0] @ W if need[1] else None         # Wᵀ δ_1
        dc0 = dc[0] * f[0] if need[2] else None         # dc_1 ⊙ f_1
        dW = _weight_grad(delta, h0, H) if need[3] else None
        dx, dU, db = _input_grads(ctx, delta, x, U, 0, 4, 5)
        return dx, dh0, dc0, dW, dU, db


# -- the GRU, reset after the product -----------------------------------------
def _gru_forward(x, s0, W_all, bias_h, U, b):
    """The forward pass of ``GRUCell(reset="after")`` with
    W_all = [W_r; W_z; W] and bias_h = [0; 0; b_W]:
    q_t = W_all s_{t-1} + bias_h; r, z = σ(q_{r,z} + U_{r,z} x_t + b_{r,z});
    s̃ = φ(r ⊙ q_s̃ + U_s̃ x_t + b_s̃); s_t = z ⊙ s_{t-1} + (1 - z) ⊙ s̃, in
    this form (a convex combination, rounded as the cell rounds it, so the
    state stays strictly inside (-1, 1)^n as the GRU chapter asserts).

    Returns ``(S, gates, q)``: s_1..s_T ``(T, B, n)``, the activated
    r | z | s̃ ``(T, B, 3n)`` and q_t ``(T, B, 3n)``."""
    T, B, _ = x.shape
    n = s0.shape[1]
    gates = project_inputs(x, U, b)
    q = x.new_empty(T, B, 3 * n)
    S = x.new_empty(T, B, n)
    rz, r, z, s_tilde = (gates[..., cols].unbind(0) for cols in (
        slice(0, 2 * n), slice(0, n), slice(n, 2 * n), slice(2 * n, None)))
    q_, q_rz, q_s = (v.unbind(0) for v in (q, q[..., :2 * n],
                                           q[..., 2 * n:]))
    S_ = S.unbind(0)
    Wt = W_all.t()
    ones, write = x.new_ones(B, n), x.new_empty(B, n)   # 1, and 1 - z_t
    s = s0
    for t in range(T):
        torch.addmm(bias_h, s, Wt, out=q_[t])   # W_all s_{t-1} + bias_h
        rz[t].add_(q_rz[t]).sigmoid_()          # r_t, z_t
        s_tilde[t].addcmul_(r[t], q_s[t]).tanh_()       # s̃_t
        kept = torch.mul(z[t], s, out=S_[t])    # z_t ⊙ s_{t-1}
        torch.sub(ones, z[t], out=write)        # 1 - z_t, no allocation
        s = kept.addcmul_(write, s_tilde[t])    # + (1 - z_t) ⊙ s̃_t
    return S, gates, q


class FusedGRU(torch.autograd.Function):
    """``(x, s_0, W_gates, W, U, b, b_W) ↦ (s_1..s_T, s_T)`` for
    ``GRUCell(reset="after")``, with its backward pass by hand.

    With ds_t = ∂L/∂s_t (total), q_s̃ = W s_{t-1} + b_W and
    κ = (1 - z_t)(1 - s̃_t²):

        δ_t (input side)   = ds_t ⊙ (κ ⊙ q_s̃ ⊙ σ'_r,
                                     (s_{t-1} - s̃_t) ⊙ σ'_z, κ)
        ε_t (recurrent)    = ds_t ⊙ (κ ⊙ q_s̃ ⊙ σ'_r,
                                     (s_{t-1} - s̃_t) ⊙ σ'_z, κ ⊙ r_t)
        ds_{t-1} = ∂ℓ/∂s_{t-1} + [W_r; W_z; W]ᵀ ε_t + ds_t ⊙ z_t

    The bracketed factors are computed for all t before the loop; a step
    of the loop is one ``addcmul``, one ``addmm`` and one product.
    ∂L/∂[W_r; W_z; W] = Σ_t ε_t s_{t-1}ᵀ, ∂L/∂b_W = Σ_t ε_{t,s̃},
    ∂L/∂U = Σ_t δ_t x_tᵀ, ∂L/∂b = Σ_t δ_t.
    """

    @staticmethod
    def forward(ctx, x, s0, W_gates, W, U, b, b_W):
        n = s0.shape[1]
        W_all = torch.cat([W_gates, W])
        bias_h = torch.cat([b_W.new_zeros(2 * n), b_W])
        S, gates, q = _gru_forward(x, s0, W_all, bias_h, U, b)
        ctx.save_for_backward(x, s0, W_all, U, S, gates, q)
        return S, S[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_sT):
        x, s0, W_all, U, S, gates, q = ctx.saved_tensors
        T, B, n = S.shape
        r, z, s_tilde = gates.split(n, dim=-1)
        s_prev = torch.cat([s0[None], S[:-1]])          # s_0..s_{T-1}
        kappa = (1 - z) * (1 - s_tilde * s_tilde)       # ∂s_t/∂a_s̃
        factors = torch.cat([kappa * q[..., 2 * n:] * r * (1 - r),
                             (s_prev - s_tilde) * z * (1 - z),
                             kappa * r], dim=-1).view(T, B, 3, n)
        ds = d_out.clone()                              # ∂ℓ/∂s_t
        ds[-1] += d_sT
        eps = x.new_empty(T, B, 3 * n)                  # ε_t
        ds_, z_, eps_, factors_ = (v.unbind(0) for v in (ds, z, eps,
                                                          factors))
        eps3 = eps.view(T, B, 3, n).unbind(0)
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                ds_[t].addcmul_(ds_[t + 1], z_[t + 1])  # + ds_{t+1} z_{t+1}
                ds_[t].addmm_(eps_[t + 1], W_all)       # + W_allᵀ ε_{t+1}
            torch.mul(ds_[t].unsqueeze(1), factors_[t], out=eps3[t])
        need = ctx.needs_input_grad
        ds0 = (torch.addmm(ds[0] * z[0], eps[0], W_all)
               if need[1] else None)
        dW_gates = dW = None
        if need[2] or need[3]:
            dW_gates, dW = _weight_grad(eps, s0, S).split([2 * n, n])
        db_W = eps[..., 2 * n:].sum((0, 1)) if need[6] else None
        delta = eps                                     # δ_t: ε_t with the
        delta[..., 2 * n:] = ds * kappa                 # s̃ block unscaled
        dx, dU, db = _input_grads(ctx, delta, x, U, 0, 4, 5)
        return dx, ds0, dW_gates, dW, dU, db, db_W


# -- the vanilla RNN ----------------------------------------------------------
def _vanilla_forward(x, s0, W, U, b, nonlinearity: str):
    """s_t = φ(W s_{t-1} + U x_t + b) for all t: ``(T, B, n)``."""
    S = project_inputs(x, U, b)                       # U x_t + b, then s_t
    phi_ = ACTIVATIONS[nonlinearity].in_place
    Wt = W.t()
    s = s0
    for S_t in S.unbind(0):
        s = phi_(S_t.addmm_(s, Wt))
    return S


class FusedVanillaRNN(torch.autograd.Function):
    """``(x, s_0, W, U, b) ↦ (s_1..s_T, s_T)`` for the vanilla RNN, with the
    backward pass of :func:`lstmlib.analysis.bptt.vanilla_bptt`:

        δ_t = φ'(a_t) ⊙ (∂ℓ/∂s_t + Wᵀ δ_{t+1}),

    φ'(a_t) read off s_t (:func:`lstmlib.analysis.bptt.activation_derivative`) for
    all t before the loop; a step of the loop is one ``addmm`` and one
    product.
    """

    @staticmethod
    def forward(ctx, x, s0, W, U, b, nonlinearity):
        S = _vanilla_forward(x, s0, W, U, b, nonlinearity)
        ctx.nonlinearity = nonlinearity
        ctx.save_for_backward(x, s0, W, U, S)
        return S, S[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_sT):
        x, s0, W, U, S = ctx.saved_tensors
        T = S.shape[0]
        phi_prime = ACTIVATIONS[ctx.nonlinearity].slope_from_output(S)
        delta = d_out.clone()                           # ∂ℓ/∂s_t, then δ_t
        delta[-1] += d_sT
        delta_, phi_prime_ = delta.unbind(0), phi_prime.unbind(0)
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                delta_[t].addmm_(delta_[t + 1], W)      # + Wᵀ δ_{t+1}
            delta_[t].mul_(phi_prime_[t])               # ⊙ φ'(a_t)
        need = ctx.needs_input_grad
        ds0 = delta[0] @ W if need[1] else None
        dW = _weight_grad(delta, s0, S) if need[2] else None
        dx, dU, db = _input_grads(ctx, delta, x, U, 0, 3, 4)
        return dx, ds0, dW, dU, db, None


# -- the sequence functions the cells call -----------------------------------
def plain_tensors(*tensors: Tensor) -> bool:
    """Whether the kernels may run on ``tensors``: no tensor subclasses
    (tracers such as :mod:`lstmlib.display.diagrams` must see every
    operation of the plain loop) and no ``torch.func`` transform or
    forward-mode derivative running (the Functions here define only the
    backward pass). :class:`~lstmlib.cells.recurrent.Recurrent` asks this
    before it offers a cell its fast path."""
    if torch._C._are_functorch_transforms_active():
        return False
    if torch.autograd.forward_ad._current_level >= 0:
        return False
    return all(type(t) is Tensor for t in tensors)


def _tracked(*tensors: Tensor) -> bool:
    """Whether autograd records a pass over ``tensors`` (a backward pass
    may follow), so that the Function, not the bare forward, must run."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _without_autocast(x: Tensor):
    """A context that switches ``torch.autocast`` off on ``x``'s device
    for a kernel (see the module docstring), or does nothing where it is
    off."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.autocast(x.device.type, enabled=False)
    return contextlib.nullcontext()


def lstm_sequence(x: Tensor, h0: Tensor, c0: Tensor, W: Tensor, U: Tensor,
                  b: Tensor) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
    """The basic LSTM over a whole sequence: equal to the loop ::

        for t in range(T):
            a = W h + U x[t] + b                  # (B, 4n): i | f | c̃ | o
            i, f, c̃, o = σ(a_i), σ(a_f), φ(a_c̃), σ(a_o)
            c = f ⊙ c + i ⊙ c̃;  h = o ⊙ φ(c);  H[t] = h

    Returns ``(H (T, B, n), (h_T, c_T))``; differentiable through
    :class:`FusedLSTM` when autograd records."""
    with _without_autocast(x):
        x, h0, c0 = (v.to(W.dtype) for v in (x, h0, c0))
        return _lstm_sequence(x, h0, c0, W, U, b)


def _lstm_sequence(x, h0, c0, W, U, b):
    if _tracked(x, h0, c0, W, U, b):
        H, h, c = FusedLSTM.apply(x, h0, c0, W, U, b)
        return H, (h, c)
    with torch.no_grad():
        H, C, _, _ = lstm_forward(x, h0, c0, W, U, b, keep=False)
    return H, (H[-1].clone(), C[-1])


def gru_sequence(x: Tensor, s0: Tensor, W_gates: Tensor, W: Tensor,
                 U: Tensor, b: Tensor, b_W: Tensor) -> Tuple[Tensor, Tensor]:
    """The GRU with the reset applied after the product, over a whole
    sequence: equal to the loop ::

        for t in range(T):
            r, z = σ(W_gates s + U_{r,z} x[t] + b_{r,z})
            s̃ = φ(r ⊙ (W s + b_W) + U_s̃ x[t] + b_s̃)
            s = z ⊙ s + (1 - z) ⊙ s̃;  S[t] = s

    Returns ``(S (T, B, n), s_T)``; differentiable through
    :class:`FusedGRU` when autograd records."""
    with _without_autocast(x):
        x, s0 = x.to(W.dtype), s0.to(W.dtype)
        return _gru_sequence(x, s0, W_gates, W, U, b, b_W)


def _gru_sequence(x, s0, W_gates, W, U, b, b_W):
    if _tracked(x, s0, W_gates, W, U, b, b_W):
        return FusedGRU.apply(x, s0, W_gates, W, U, b, b_W)
    n = s0.shape[1]
    with torch.no_grad():
        S, _, _ = _gru_forward(x, s0, torch.cat([W_gates, W]),
                               torch.cat([b_W.new_zeros(2 * n), b_W]), U, b)
    return S, S[-1].clone()


def vanilla_sequence(x: Tensor, s0: Tensor, W: Tensor, U: Tensor, b: Tensor,
                     nonlinearity: str) -> Tuple[Tensor, Tensor]:
    """The vanilla RNN over a whole sequence: equal to the loop ::

        for t in range(T):
            s = φ(W s + U x[t] + b);  S[t] = s

    Returns ``(S (T, B, n), s_T)``; differentiable through
    :class:`FusedVanillaRNN` when autograd records."""
    with _without_autocast(x):
        x, s0 = x.to(W.dtype), s0.to(W.dtype)
        return _vanilla_sequence(x, s0, W, U, b, nonlinearity)


def _vanilla_sequence(x, s0, W, U, b, nonlinearity):
    if _tracked(x, s0, W, U, b):
        return FusedVanillaRNN.apply(x, s0, W, U, b, nonlinearity)
    with torch.no_grad():
        S = _vanilla_forward(x, s0, W, U, b, nonlinearity)
    return S, S[-1].clone()
