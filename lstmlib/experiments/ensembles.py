"""K independently initialised copies of one small model, trained at once.

A claim about training ("the GRU solves the adding problem at T = 100")
is a claim about a distribution over seeds, and measuring it takes K
runs. For the small models of the book a run is mostly overhead: a
training step of a 16-unit cell makes a few hundred PyTorch calls on
tensors of a few thousand numbers each. :class:`Ensemble` stacks the
parameters of K models of one kind along a new first dimension, so that
every call of a step does the work of all K members at once: each step
is one ``torch.bmm`` of the K members' weights [W | U | b] with their
[h_{t-1} | x_t | 1], the read-out is one batched product, and the gate
arithmetic runs on ``(K, B, ·)`` tensors.

:func:`train_ensemble` is to K separate :func:`~lstmlib.experiments.training.train_model`
runs what one call is to one run::

    for k, model in enumerate(models):          # what it replaces
        losses[k] = train_model(model, make_batch, loss, steps=steps,
                                lr=lr, seed=seeds[k], clip_norm=clip_norm)

Member k draws its batches from its own generator, seeded with
``seeds[k]`` as ``train_model`` seeds its one; its gradient is clipped to
the norm of *its* gradient alone; and one Adam over the stacked parameters
is K Adams, exactly: Adam works entry by entry, its bias corrections
depend only on the step count, which all members share, and ε is added
entry by entry. ``tests/test_ensembles.py`` checks, in float64 to 1e-10,
that losses, gradients and the parameters after several steps equal
those of K separate runs, for every supported cell and model kind.

Supported models: :class:`~lstmlib.experiments.training.FinalStateRegressor`,
:class:`~lstmlib.experiments.training.FinalStateClassifier` and
:class:`~lstmlib.experiments.training.PerStepClassifier` (time-major). Around a
:class:`~lstmlib.cells.lstm.BasicLSTMCell`, a ``GRUCell(reset="after")`` or a
:class:`~lstmlib.cells.vanilla.VanillaRNNCell` (the cells of
:mod:`lstmlib.cells.kernels`) the members run a *stacked* fast path: the fused
recursions of :mod:`lstmlib.cells.kernels` with one more dimension, backward
passes derived by hand (:class:`StackedLSTM`, :class:`StackedGRU`,
:class:`StackedVanillaRNN`; how they are arranged, and why, is written
above them). Around any other cell they run the cell's own step under
:func:`torch.func.vmap`, with autograd's backward pass: the same
function, and still faster than one by one for small models (10
peephole LSTMs, pseudo LSTMs or GRUs with the reset before, n = 16,
B = 64, T = 40: 2.6 to 3.4 times, one measurement). Anything else raises
``TypeError``.

What it costs (``benchmarks/ensembles.py``, one thread of a 2-core CPU):
a training step of 10 stacked models with 16 units takes 2.7 to 4.2
times one model's, 2.2 to 3.6 times less than the ten one by one; with
64 units, where the arithmetic dominates, 4.5 to 6.1 times one model's
(``lstmlib/results/benchmarks/ensembles_cpu.md``).

Example: three GRUs on the adding problem, and the same run of member 1
on its own.

>>> import torch
>>> from torch.nn import functional as F
>>> from lstmlib.cells.gru import GRUCell
>>> from lstmlib.experiments.tasks import adding_problem
>>> from lstmlib.experiments.training import FinalStateRegressor, train_model
>>> def build():
...     return FinalStateRegressor(GRUCell(2, 8, reset="after"), 1)
>>> def batch(generator):
...     return adding_problem(16, 10, generator=generator)
>>> ensemble = Ensemble.from_seeds(build, [0, 1, 2])
>>> losses = train_ensemble(ensemble, batch, F.mse_loss, steps=5)
>>> len(losses), len(losses[0])
(3, 5)
>>> _ = torch.manual_seed(1)
>>> alone = train_model(build(), batch, F.mse_loss, steps=5, seed=1)
>>> max(abs(a - b) for a, b in zip(alone, losses[1])) < 1e-5
True
>>> ensemble(torch.zeros(10, 4, 2)).shape   # one input for all members
torch.Size([3, 4, 1])
>>> trained = ensemble.members()            # K ordinary models
>>> type(trained[0]).__name__
'FinalStateRegressor'
"""
from __future__ import annotations

import copy
from typing import Callable, List, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.func import functional_call, vmap
from torch.nn import functional as F

from ..cells.activations import ACTIVATIONS
from ..cells.gru import GRUCell
from ..cells.lstm import BasicLSTMCell
from ..cells.recurrent import Cell
from .._checks import (check_callable, check_finite_real,
                       check_positive_int)
from .training import (FinalStateClassifier, FinalStateRegressor,
                       PerStepClassifier)
from ..cells.vanilla import VanillaRNNCell

__all__ = ["Ensemble", "train_ensemble", "ensemble_fast_path",
           "StackedLSTM", "StackedGRU", "StackedVanillaRNN",
           "MODEL_KINDS", "clip_stacked_grad_norm_", "step_stacked_"]

#: The model classes an :class:`Ensemble` stacks (exactly these classes).
MODEL_KINDS = (FinalStateRegressor, FinalStateClassifier, PerStepClassifier)


# -- the stacked recursions ---------------------------------------------------
# Shapes: K members, T steps, batch B, state n, input m, G rows of the
# stacked weights (4n for the LSTM and the GRU, n for the vanilla RNN).
#
# A step is one product per member of the weights [W | U | b] with
# [h_{t-1} | x_t | 1], the previous output, the input and a 1 side by
# side: the buffer HX ``(T + 1, K, B, n + m + 1)`` holds those rows for
# every step (h_0 = 0), and each step writes its output into the next
# row. What a step reads and writes is then a contiguous ``(K, B, ·)``
# block, the input needs no separate projection, and the gradient of
# [W | U | b] is Σ_t [h_{t-1} | x_t | 1]ᵀ δ_t, accumulated by one
# ``baddbmm`` per step while δ_t is in cache (δ itself is kept for two
# steps only). The factors of the backward recursion that do not depend
# on it are finished a few steps at a time (:func:`_chunks`), on blocks
# that stay in cache, instead of over the whole sequence at once, which
# on a CPU costs a pass through memory per factor.
#
# tanh(a) is computed as 2 σ(2a) - 1: the rows of [W | U | b] that feed
# a tanh are doubled (exactly), so that the gates of a step are one
# sigmoid, and the LSTM's c_t is kept doubled for φ(c_t). On the CPU
# PyTorch's tanh costs about six times its sigmoid. The two agree to
# rounding (tests/test_ensembles.py holds the ensemble to 1e-10 against
# the cells in float64).
#
# The sequence-long buffers come from a :class:`_Workspace` that the
# ensemble keeps from one step to the next (see there).

#: elements of a (steps, K, B, n) block of backward factors, at most
_CHUNK_ELEMENTS = 1 << 15

#: φ(a) written into ``out``; tanh as its sigmoid (see above)
_INTO = {"tanh": torch.sigmoid, "sigmoid": torch.sigmoid,
         "relu": lambda a, out: torch.clamp(a, min=0, out=out)}


class _Workspace:
    """Sequence-long buffers kept from one training step to the next.

    A fresh tensor of several megabytes costs a page fault per 4 KiB the
    first time it is written: the C allocator hands large freed blocks
    back to the system, so every step would fault all of its buffers in
    again. On the 2-core development machine that was about 40 % of a
    stacked step (K = 10, n = 16, B = 32, T = 100: 33 ms, 20 ms with the
    allocator told to keep its memory). A Function takes its buffers
    here and its backward pass gives them back; buffers of a pass that
    is never differentiated are simply freed."""

    def __init__(self):
        self.free = {}

    def take(self, like: Tensor, *shape: int) -> Tensor:
        pool = self.free.get((shape, like.dtype, like.device))
        return pool.pop() if pool else like.new_empty(shape)

    def give(self, *tensors: Tensor) -> None:
        for t in tensors:
            key = (tuple(t.shape), t.dtype, t.device)
            self.free.setdefault(key, []).append(t)


def _begin_backward(ctx):
    """The saved tensors, once: a second backward pass through the same
    graph would read buffers that a later step may have reused."""
    if ctx.released:
        raise RuntimeError("lstmlib.experiments.ensembles: the stacked recursions can "
                           "be differentiated once per forward pass "
                           "(backward(retain_graph=True) twice is not "
                           "supported)")
    ctx.released = True
    return ctx.saved_tensors


def _chunks(T: int, K: int, B: int, n: int):
    """The steps ``[t0, t1)`` of the backward pass, last first, in blocks
    of about ``_CHUNK_ELEMENTS`` state-sized entries."""
    size = max(1, _CHUNK_ELEMENTS // (K * B * n))
    t1 = T
    while t1 > 0:
        t0 = max(0, t1 - size)
        yield t0, t1
        t1 = t0


def _hx_buffer(ws: _Workspace, x: Tensor, n: int) -> Tensor:
    """``(T + 1, K, B, n + m + 1)``: row t is [h_{t-1} | x_t | 1] with
    h_0 = 0, from the member-major inputs ``x`` ``(K, T, B, m)``; the h
    columns of rows 1..T are filled in by the loop."""
    K, T, B, m = x.shape
    hx = ws.take(x, T + 1, K, B, n + m + 1)
    hx[0, ..., :n].zero_()
    hx[:T, ..., n:n + m].copy_(x.transpose(0, 1))
    hx[T, ..., n:n + m].zero_()
    hx[..., -1].fill_(1.0)
    return hx


def _doubled(WUb: Tensor, rows: slice) -> Tensor:
    """A copy of the weights ``(K, G, n + m + 1)`` with ``rows`` doubled,
    transposed for the step's product ``(K, n + m + 1, G)``."""
    doubled = WUb.clone()
    doubled[:, rows].mul_(2)
    return doubled.transpose(1, 2)


def _begin_forward(ws: _Workspace, x: Tensor, WUb: Tensor,
                   doubled_blocks: Tuple[int, int]):
    """What a stacked pass of a cell with four n-row blocks of [W | U | b]
    starts from: ``K, T, B``, ``G = 4n``, ``n``, the [h | x | 1] buffer
    (:func:`_hx_buffer`) and the transposed weights with the blocks
    ``doubled_blocks`` (from, to) doubled (the blocks a tanh reads)."""
    K, T, B, _ = x.shape
    G = WUb.shape[1]
    n = G // 4
    rows = slice(doubled_blocks[0] * n, doubled_blocks[1] * n)
    return K, T, B, G, n, _hx_buffer(ws, x, n), _doubled(WUb, rows)


def _finish_forward(ctx, ws, tracked, all_steps, hx, n, *saved):
    """Save what the backward pass needs (or give the buffers back when
    there will be none) and return h_1..h_T member-major
    ``(K, T, B, n)`` (a read-out at every step), or h_T ``(K, B, n)``."""
    ctx.ws, ctx.all_steps, ctx.released = ws, all_steps, False
    out = (hx[1:, ..., :n].transpose(0, 1).contiguous() if all_steps
           else hx[-1, ..., :n].clone())
    if tracked:
        ctx.save_for_backward(*saved)
    else:
        ws.give(*saved[1:])                             # all but the weights
    return out


def _through_W(direct, delta_next: Tensor, W: Tensor, out: Tensor) -> None:
    """``out`` = ∂ℓ/∂s_t + Wᵀ δ_{t+1} for every member (``direct`` is
    ∂ℓ/∂s_t ``(K, B, n)``, or ``None`` where no loss reads s_t)."""
    if direct is None:
        torch.bmm(delta_next, W, out=out)
    else:
        torch.baddbmm(direct, delta_next, W, out=out)


def _direct_grads(ctx, d_out, T):
    """∂ℓ/∂h_t read directly, by step: a list for a read-out at every
    step, else the last step's alone (zero before it)."""
    if ctx.all_steps:
        return d_out.unbind(1)
    return [None] * (T - 1) + [d_out]


class StackedLSTM(torch.autograd.Function):
    """``(x, [W | U | b]) ↦ h`` of K basic LSTMs from zero states.

    ``x`` ``(K, T, B, m)``, ``WUb`` ``(K, 4n, n + m + 1)``; returns
    h_1..h_T ``(K, T, B, n)`` with ``all_steps``, else h_T ``(K, B, n)``.
    The recursion of :class:`lstmlib.cells.kernels.FusedLSTM` with a member
    dimension: a step is one ``bmm`` and eight elementwise calls
    forwards, one ``bmm``, six elementwise calls and the ``baddbmm`` of
    the weight gradient backwards. ``ws`` is the :class:`_Workspace`;
    ``tracked``, whether a backward pass will follow.
    """

    @staticmethod
    def forward(ctx, x, WUb, all_steps, ws, tracked):
        K, T, B, G, n, hx, WUt = _begin_forward(ws, x, WUb, (2, 3))  # c̃: tanh
        gates = ws.take(x, T, K, B, G)                  # i, f, c̃, o
        D = ws.take(x, T, K, B, G)                      # σ' of each block
        C2 = ws.take(x, T, K, B, n)                     # 2 c_t
        S = ws.take(x, T, K, B, n)                      # φ(c_t)
        minus_one = x.new_tensor(-1.0)
        a, i, f, c_tilde, o = (gates[..., cols].unbind(0) for cols in (
            slice(None), slice(0, n), slice(n, 2 * n), slice(2 * n, 3 * n),
            slice(3 * n, None)))
        hx_, C2_, S_, D_ = (v.unbind(0) for v in (hx, C2, S, D))
        h_ = hx[1:, ..., :n].unbind(0)                  # where h_t goes
        c2 = x.new_zeros(K, B, n)
        for t in range(T):
            torch.bmm(hx_[t], WUt, out=a[t])            # a_t, 2 a_c̃
            a[t].sigmoid_()                             # i, f, ·, o
            # σ'(a) for i, f, o; for c̃ = 2σ(2a) - 1: (1 - c̃²) / 4
            torch.addcmul(a[t], a[t], a[t], value=-1, out=D_[t])
            torch.add(minus_one, c_tilde[t], alpha=2, out=c_tilde[t])
            c2 = torch.mul(f[t], c2, out=C2_[t])        # 2 f c_{t-1}
            c2.addcmul_(i[t], c_tilde[t], value=2)      # 2 c_t
            torch.sigmoid(c2, out=S_[t])
            torch.add(minus_one, S_[t], alpha=2, out=S_[t])     # φ(c_t)
            torch.mul(o[t], S_[t], out=h_[t])           # h_t
        return _finish_forward(ctx, ws, tracked, all_steps, hx, n,
                               WUb, hx, gates, D, C2, S)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        WUb, hx, gates, D, C2, S = _begin_backward(ctx)
        T, K, B, G = gates.shape
        n = G // 4
        W = WUb[:, :, :n].contiguous()                  # (K, 4n, n)
        dWUb_t = WUb.new_zeros(K, WUb.shape[2], G)      # the gradient, ᵀ
        one, zero = S.new_tensor(1.0), S.new_tensor(0.0)
        # δ_t = (dc_t ⊙ to_i, dc_t ⊙ to_f, dc_t ⊙ to_c, dh_t ⊙ to_o),
        # dc_t = dh_t ⊙ from_h + dc_{t+1} ⊙ f_{t+1}, with the to_ factors
        # made from D in place, a block of steps at a time
        to_i, to_f, to_c, to_o = (D[..., j * n:(j + 1) * n]
                                  for j in range(4))
        to_i_, to_f_, to_c_, to_o_ = (v.unbind(0) for v in (to_i, to_f,
                                                            to_c, to_o))
        f_, hx_ = gates[..., n:2 * n].unbind(0), hx.unbind(0)
        deltas = [S.new_empty(K, B, G) for _ in range(2)]   # δ_t, δ_{t+1}
        blocks = [[d[..., j * n:(j + 1) * n] for j in range(4)]
                  for d in deltas]
        direct = _direct_grads(ctx, d_out, T)
        dh = S.new_empty(K, B, n)
        dc, dc_next = S.new_empty(K, B, n), S.new_empty(K, B, n)
        for t0, t1 in _chunks(T, K, B, n):
            i, f, c_tilde, o = gates[t0:t1].split(n, dim=-1)
            s = S[t0:t1]
            from_h = torch.addcmul(one, s, s, value=-1).mul_(o).unbind(0)
            to_i[t0:t1].mul_(c_tilde)                   # c̃ σ'_i
            if t0 == 0:
                to_f[0].zero_()                         # c_0 = 0
            lo = max(t0, 1)
            torch.addcmul(zero, to_f[lo:t1], C2[lo - 1:t1 - 1], value=0.5,
                          out=to_f[lo:t1])              # c_{t-1} σ'_f
            torch.addcmul(zero, to_c[t0:t1], i, value=4,
                          out=to_c[t0:t1])              # i (1 - c̃²)
            to_o[t0:t1].mul_(s)                         # φ(c_t) σ'_o
            for t in range(t1 - 1, t0 - 1, -1):
                delta, d_i, d_f, d_c, d_o = deltas[t % 2], *blocks[t % 2]
                if t == T - 1:                          # dh_t = ∂ℓ/∂h_t
                    dh.copy_(direct[t])                 #   + Wᵀ δ_{t+1}
                    torch.mul(dh, from_h[t - t0], out=dc)
                else:
                    _through_W(direct[t], deltas[(t + 1) % 2], W, dh)
                    torch.mul(dh, from_h[t - t0], out=dc)
                    dc.addcmul_(dc_next, f_[t + 1])     # + dc_{t+1} f_{t+1}
                for d, factor in ((d_i, to_i_), (d_f, to_f_), (d_c, to_c_)):
                    torch.mul(dc, factor[t], out=d)     # δ_{i,f,c̃} = dc ⊙ ·
                torch.mul(dh, to_o_[t], out=d_o)        # δ_o = dh ⊙ ·
                dWUb_t.baddbmm_(hx_[t].transpose(1, 2), delta)
                dc, dc_next = dc_next, dc
        ctx.ws.give(hx, gates, D, C2, S)
        return None, dWUb_t.transpose(1, 2), None, None, None


class StackedGRU(torch.autograd.Function):
    """``(x, WUb) ↦ s`` of K ``GRUCell(reset="after")`` from zero states.

    The rows of ``WUb`` ``(K, 4n, n + m + 1)`` are four blocks, each
    multiplying [s_{t-1} | x_t | 1]: [W_r | U_r | b_r] and
    [W_z | U_z | b_z] (the gates), [W | 0 | b_W] (q_t, inside the reset)
    and [0 | U_s̃ | b_s̃] (the candidate's input part):

        r, z = σ(rows 1, 2);  s̃ = φ(r ⊙ q_t + row 4);
        s_t = z ⊙ s_{t-1} + (1 - z) ⊙ s̃  (the cell's convex form).

    Returns s_1..s_T ``(K, T, B, n)`` with ``all_steps``, else s_T
    ``(K, B, n)``. With κ = (1 - z)(1 - s̃²), backwards:

        δ_t = ds_t ⊙ (κ q_t σ'_r, (s_{t-1} - s̃) σ'_z, κ r, κ)
        ds_{t-1} = ∂ℓ/∂s_{t-1} + ds_t ⊙ z_t + [W_r; W_z; W; 0]ᵀ δ_t
    """

    @staticmethod
    def forward(ctx, x, WUb, all_steps, ws, tracked):
        K, T, B, G, n, hx, WUt = _begin_forward(ws, x, WUb, (2, 4))  # tanh
        pre = ws.take(x, T, K, B, G)                    # r, z, 2q, s̃
        ones, write = x.new_ones(K, B, n), x.new_empty(K, B, n)
        minus_one = x.new_tensor(-1.0)
        a, rz, r, z, q2, s_tilde = (pre[..., cols].unbind(0) for cols in (
            slice(None), slice(0, 2 * n), slice(0, n), slice(n, 2 * n),
            slice(2 * n, 3 * n), slice(3 * n, None)))
        hx_, s_ = hx.unbind(0), hx[..., :n].unbind(0)  # s_t: s_[t + 1]
        for t in range(T):
            torch.bmm(hx_[t], WUt, out=a[t])
            rz[t].sigmoid_()                            # r_t, z_t
            s_tilde[t].addcmul_(r[t], q2[t]).sigmoid_()     # σ(2(r q + ·))
            torch.add(minus_one, s_tilde[t], alpha=2, out=s_tilde[t])
            s = torch.mul(z[t], s_[t], out=s_[t + 1])
            torch.sub(ones, z[t], out=write)            # 1 - z_t
            s.addcmul_(write, s_tilde[t])               # s_t
        return _finish_forward(ctx, ws, tracked, all_steps, hx, n,
                               WUb, hx, pre)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        WUb, hx, pre = _begin_backward(ctx)
        T, K, B, G = pre.shape
        n = G // 4
        W = WUb[:, :, :n].contiguous()                  # [W_r; W_z; W; 0]
        dWUb_t = WUb.new_zeros(K, WUb.shape[2], G)      # the gradient, ᵀ
        one, zero = pre.new_tensor(1.0), pre.new_tensor(0.0)
        z_, hx_ = pre[..., n:2 * n].unbind(0), hx.unbind(0)
        deltas = [pre.new_empty(K, B, G) for _ in range(2)]
        blocks = [[d[..., j * n:(j + 1) * n] for j in range(4)]
                  for d in deltas]
        direct = _direct_grads(ctx, d_out, T)
        ds, ds_next = pre.new_empty(K, B, n), pre.new_empty(K, B, n)
        for t0, t1 in _chunks(T, K, B, n):
            r, z, q2, s_tilde = pre[t0:t1].split(n, dim=-1)
            kappa = torch.addcmul(one, s_tilde, s_tilde, value=-1)
            kappa.addcmul_(kappa, z, value=-1)          # (1 - z)(1 - s̃²)
            f_r = torch.addcmul(r, r, r, value=-1).mul_(kappa)
            torch.addcmul(zero, f_r, q2, value=0.5, out=f_r)    # ⊙ q_t
            f_z = torch.sub(hx[t0:t1, ..., :n], s_tilde).mul_(
                torch.addcmul(z, z, z, value=-1))
            f_q = kappa * r
            f_r, f_z, f_q, kappa = (v.unbind(0) for v in (f_r, f_z, f_q,
                                                          kappa))
            for t in range(t1 - 1, t0 - 1, -1):
                k = t - t0
                delta, d_r, d_z, d_q, d_u = deltas[t % 2], *blocks[t % 2]
                if t == T - 1:                          # ∂ℓ/∂s_t
                    ds.copy_(direct[t])
                else:                                   # + Wᵀ δ_{t+1}
                    _through_W(direct[t], deltas[(t + 1) % 2], W, ds)
                    ds.addcmul_(ds_next, z_[t + 1])     # + ds_{t+1} z_{t+1}
                for d, factor in ((d_r, f_r), (d_z, f_z), (d_q, f_q),
                                  (d_u, kappa)):
                    torch.mul(ds, factor[k], out=d)     # ds_t ⊙ its factor
                dWUb_t.baddbmm_(hx_[t].transpose(1, 2), delta)
                ds, ds_next = ds_next, ds
        ctx.ws.give(hx, pre)
        return None, dWUb_t.transpose(1, 2), None, None, None


class StackedVanillaRNN(torch.autograd.Function):
    """``(x, [W | U | b]) ↦ s`` of K vanilla RNNs from zero states:
    s_t = φ([W | U | b] [s_{t-1} | x_t | 1]). ``x`` ``(K, T, B, m)``,
    ``WUb`` ``(K, n, n + m + 1)``; returns s_1..s_T ``(K, T, B, n)`` with
    ``all_steps``, else s_T ``(K, B, n)``. Backwards
    δ_t = φ'(a_t) ⊙ (∂ℓ/∂s_t + Wᵀ δ_{t+1}), as
    :class:`lstmlib.cells.kernels.FusedVanillaRNN`."""

    @staticmethod
    def forward(ctx, x, WUb, nonlinearity, all_steps, ws, tracked):
        K, T, B, m = x.shape
        n = WUb.shape[1]
        hx = _hx_buffer(ws, x, n)
        tanh = nonlinearity == "tanh"
        WUt = _doubled(WUb, slice(None) if tanh else slice(0))
        phi = _INTO[nonlinearity]
        minus_one = x.new_tensor(-1.0)
        a = x.new_empty(K, B, n)
        hx_, s_ = hx.unbind(0), hx[1:, ..., :n].unbind(0)
        for t in range(T):
            torch.bmm(hx_[t], WUt, out=a)
            s = phi(a, out=s_[t])
            if tanh:
                torch.add(minus_one, s, alpha=2, out=s)
        ctx.nonlinearity = nonlinearity
        return _finish_forward(ctx, ws, tracked, all_steps, hx, n, WUb, hx)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        WUb, hx = _begin_backward(ctx)
        T = hx.shape[0] - 1
        K, B, n = hx.shape[1], hx.shape[2], WUb.shape[1]
        W = WUb[:, :, :n].contiguous()
        dWUb_t = WUb.new_zeros(K, WUb.shape[2], n)      # the gradient, ᵀ
        hx_ = hx.unbind(0)
        deltas = [hx.new_empty(K, B, n) for _ in range(2)]
        direct = _direct_grads(ctx, d_out, T)
        for t0, t1 in _chunks(T, K, B, n):
            phi_prime = ACTIVATIONS[ctx.nonlinearity].slope_from_output(
                hx[t0 + 1:t1 + 1, ..., :n]).unbind(0)
            for t in range(t1 - 1, t0 - 1, -1):
                delta = deltas[t % 2]           # ∂ℓ/∂s_t + Wᵀ δ_{t+1}
                if t == T - 1:
                    delta.copy_(direct[t])
                else:
                    _through_W(direct[t], deltas[(t + 1) % 2], W, delta)
                delta.mul_(phi_prime[t - t0])           # ⊙ φ'(a_t)
                dWUb_t.baddbmm_(hx_[t].transpose(1, 2), delta)
        ctx.ws.give(hx)
        return None, dWUb_t.transpose(1, 2), None, None, None, None


# -- the ensemble -------------------------------------------------------------
def ensemble_fast_path(model: nn.Module) -> bool:
    """Whether an :class:`Ensemble` of ``model``'s kind runs the stacked
    fast path: exactly one of :data:`MODEL_KINDS`, time-major, around
    exactly a ``BasicLSTMCell``, a ``GRUCell(reset="after")`` or a
    ``VanillaRNNCell`` with its own step. Other cells in those models run
    their own step under :func:`torch.func.vmap` (slower than the fast
    path, faster than one by one)."""
    if type(model) not in MODEL_KINDS or "forward" in vars(model):
        return False
    cell = model.recurrent.cell
    kind = type(cell)
    if kind not in (BasicLSTMCell, GRUCell, VanillaRNNCell):
        return False
    if kind is GRUCell and cell.reset != "after":
        return False
    return cell.computes_step_of(kind)


def _tracked(t: Tensor) -> bool:
    """Whether autograd records an operation on ``t`` (a backward pass
    may follow)."""
    return torch.is_grad_enabled() and t.requires_grad


def _describe_kinds() -> str:
    return ", ".join(kind.__name__ for kind in MODEL_KINDS)


def _check_seeds(owner: str, seeds, count: int | None = None) -> List[int]:
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__"):
        raise TypeError(f"{owner}: expected a sequence of int seeds, got "
                        f"{type(seeds).__name__}")
    seeds = list(seeds)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int):
            raise TypeError(f"{owner}: expected int seeds, got {s!r}")
    if count is None and not seeds:
        raise ValueError(f"{owner}: expected at least one seed (K >= 1), "
                         f"got none")
    if count is not None and len(seeds) != count:
        raise ValueError(f"{owner}: expected {count} seeds, one per member, "
                         f"got {len(seeds)}")
    return seeds


def clip_stacked_grad_norm_(grads: Sequence[Tensor],
                            max_norm: float) -> Tensor:
    """Clip each of K stacked members' gradients to norm ``max_norm``, as
    ``nn.utils.clip_grad_norm_`` clips one model's: ``grads`` are the
    stacked parameters' gradients, member index first; with N_k the
    2-norm of member k's whole gradient, its entries are multiplied by
    ``min(1, max_norm / (N_k + 1e-6))``. Returns the K norms before
    clipping, ``(K,)``."""
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1)
                         for g in grads], dim=1)        # (K, parameters)
    total = torch.linalg.vector_norm(norms, dim=1)      # (K,)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *[1] * (g.dim() - 1)))
    return total



def step_stacked_(optimiser: torch.optim.Optimizer, losses: Tensor,
                  params: Sequence[Tensor], clip_norm: float | None) -> None:
    """One update of K stacked members from their losses ``(K,)``:
    backpropagate their sum (the members share no parameter, so each
    member's gradient is its own loss's), clip each member's gradient to
    ``clip_norm`` (:func:`clip_stacked_grad_norm_`; ``None``: no clipping)
    and step ``optimiser``."""
    optimiser.zero_grad()
    losses.sum().backward()
    if clip_norm is not None:
        clip_stacked_grad_norm_([p.grad for p in params
                                 if p.grad is not None], clip_norm)
    optimiser.step()

class Ensemble(nn.Module):
    """K models of one kind with their parameters stacked: member k's
    parameter ``name`` is ``ensemble.stacked(name)[k]``.

    Args:
        models: K >= 1 models of one of :data:`MODEL_KINDS`, all of the
            same class, cell and sizes (their ``repr`` must agree), with
            parameters of one dtype and device. Their parameters are
            copied; the models are not changed.
        seeds: the seeds the members were initialised from, if known
            (:meth:`from_seeds` records them); :func:`train_ensemble` uses
            them for the batches unless given others.

    Input of ``forward``: ``x`` ``(K, T, B, input_size)``, member k's
    sequence ``x[k]``; or ``(T, B, input_size)``, one sequence for all
    members. Classifiers also take symbol ids, ``(K, T, B)`` or
    ``(T, B)``, one-hot encoded as the single model encodes them.

    Output: member k's ``model(x[k])`` at ``[k]``: ``(K, B, outputs)``
    for the final-state models, ``(K, T, B, num_classes)`` for
    :class:`~lstmlib.experiments.training.PerStepClassifier`.

    Between training steps the ensemble keeps the sequence-long buffers
    of its fast path (one step's activations, a few times
    ``K × T × B × 4n`` numbers), which saves faulting them in afresh
    every step; a forward pass can be differentiated once.
    """

    def __init__(self, models: Sequence[nn.Module], *,
                 seeds: Sequence[int] | None = None):
        super().__init__()
        if isinstance(models, nn.Module) or not hasattr(models, "__len__"):
            raise TypeError(f"Ensemble: expected a sequence of models, got "
                            f"{type(models).__name__}")
        models = list(models)
        if not models:
            raise ValueError("Ensemble: expected at least one model "
                             "(K >= 1), got none")
        first = models[0]
        if type(first) not in MODEL_KINDS:
            raise TypeError(f"Ensemble: expected models of one of "
                            f"{_describe_kinds()} (exactly these classes), "
                            f"got {type(first).__name__}")
        rec = first.recurrent
        if rec.batch_first:
            raise ValueError("Ensemble: expected time-major models "
                             "(Recurrent(batch_first=False))")
        if not isinstance(rec.cell, Cell):
            raise TypeError(f"Ensemble: expected an lstmlib Cell, got "
                            f"{type(rec.cell).__name__}")
        if any(True for _ in first.buffers()):
            raise TypeError("Ensemble: models with buffers are not "
                            "supported (only parameters are stacked)")
        named = dict(first.named_parameters())
        for k, model in enumerate(models[1:], start=1):
            if type(model) is not type(first) or repr(model) != repr(first):
                raise ValueError(f"Ensemble: expected K models of one kind; "
                                 f"model {k} is {model!r}, model 0 is "
                                 f"{first!r}")
            other = dict(model.named_parameters())
            for name, p in named.items():
                q = other[name]
                if (q.shape, q.dtype, q.device) != (p.shape, p.dtype,
                                                     p.device):
                    raise ValueError(
                        f"Ensemble: parameter {name!r} of model {k} is "
                        f"{tuple(q.shape)} {q.dtype} on {q.device}; model 0"
                        f"'s is {tuple(p.shape)} {p.dtype} on {p.device}")
        self.size = len(models)
        self.seeds = (None if seeds is None
                      else _check_seeds("Ensemble", seeds, self.size))
        self.names = list(named)
        self.params = nn.ParameterDict({
            name.replace(".", "/"): nn.Parameter(torch.stack(
                [m.get_parameter(name).detach() for m in models]).clone())
            for name in self.names})
        self.fast = ensemble_fast_path(first)
        # a plain copy of member 0 (not a submodule: its parameters are
        # not the ensemble's): the structure members() and vmap fill in
        self.__dict__["_template"] = copy.deepcopy(first)
        self.__dict__["_workspace"] = _Workspace()

    @classmethod
    def from_seeds(cls, build: Callable[[], nn.Module],
                   seeds: Sequence[int]) -> "Ensemble":
        """K members, member k built by ``build()`` right after
        ``torch.manual_seed(seeds[k])``: each is initialised exactly as
        ``torch.manual_seed(seed); model = build()`` initialises one
        model. Like that loop, it leaves torch's global generator where the
        last ``build()`` left it. Seeds must be distinct (K equal members
        would be one model K times)."""
        seeds = _check_seeds("Ensemble.from_seeds", seeds)
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"Ensemble.from_seeds: expected distinct seeds, "
                             f"got {seeds}")
        check_callable("Ensemble.from_seeds", "build", build, "build()")
        models = []
        for s in seeds:
            torch.manual_seed(s)
            models.append(build())
        return cls(models, seeds=seeds)

    # -- parameters ------------------------------------------------------
    def stacked(self, name: str) -> nn.Parameter:
        """The ``(K, ...)`` stacked parameter of the members' ``name``
        (a name of the single model's ``named_parameters``)."""
        if name not in self.names:
            raise KeyError(f"Ensemble.stacked: no parameter {name!r}; the "
                           f"members have {self.names}")
        return self.params[name.replace(".", "/")]

    def stacked_state(self) -> dict:
        """``{name: (K, ...) tensor}`` for every parameter name of one
        member, detached."""
        return {name: self.stacked(name).detach() for name in self.names}

    def member(self, k: int) -> nn.Module:
        """A fresh model of the members' kind holding member ``k``'s
        current parameters (copied)."""
        if isinstance(k, bool) or not isinstance(k, int) \
                or not -self.size <= k < self.size:
            raise IndexError(f"Ensemble.member: expected a member index in "
                             f"[0, {self.size}), got {k!r}")
        ref = self.stacked(self.names[0])
        model = copy.deepcopy(self._template).to(device=ref.device,
                                                 dtype=ref.dtype)
        with torch.no_grad():
            for name in self.names:
                model.get_parameter(name).copy_(self.stacked(name)[k])
        return model

    def members(self) -> List[nn.Module]:
        """All K members as separate models (copies)."""
        return [self.member(k) for k in range(self.size)]

    def copy_to(self, models: Sequence[nn.Module]) -> None:
        """Write member k's parameters into ``models[k]``, in place."""
        models = list(models)
        if len(models) != self.size:
            raise ValueError(f"Ensemble.copy_to: expected {self.size} "
                             f"models, got {len(models)}")
        with torch.no_grad():
            for k, model in enumerate(models):
                for name in self.names:
                    model.get_parameter(name).copy_(self.stacked(name)[k])

    def clip_grad_norm_(self, max_norm: float) -> Tensor:
        """Clip each member's gradient to norm ``max_norm``, as
        ``nn.utils.clip_grad_norm_(member.parameters(), max_norm)`` would:
        with N_k the 2-norm of member k's whole gradient, multiply it by
        ``min(1, max_norm / (N_k + 1e-6))``. Returns the K norms before
        clipping."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if not grads:
            return torch.zeros(self.size)
        return clip_stacked_grad_norm_(grads, max_norm)

    # -- forward ---------------------------------------------------------
    def _inputs(self, x) -> Tensor:
        """``x`` as ``(K, T, B, input_size)`` floats of the parameters'
        dtype, validated."""
        cell = self._template.recurrent.cell
        m, K = cell.input_size, self.size
        ref = self.stacked(self.names[0])
        classifier = type(self._template) is not FinalStateRegressor
        if not isinstance(x, Tensor):
            raise TypeError(f"Ensemble: expected the input x to be a "
                            f"Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            if not classifier:
                raise TypeError(f"Ensemble: a FinalStateRegressor takes "
                                f"float inputs, got {x.dtype}")
            if x.dim() not in (2, 3) or (x.dim() == 3 and x.shape[0] != K):
                raise ValueError(f"Ensemble: expected symbol ids of shape "
                                 f"(K={K}, T, B) or (T, B), got "
                                 f"{tuple(x.shape)}")
            if x.numel() and (x.min() < 0 or x.max() >= m):
                raise ValueError(f"Ensemble: expected symbol ids in [0, {m}),"
                                 f" got values in [{int(x.min())}, "
                                 f"{int(x.max())}]")
            x = F.one_hot(x, m).to(ref.dtype)
        if x.dim() == 3:
            x = x.unsqueeze(0).expand(K, *x.shape)
        if x.dim() != 4 or x.shape[0] != K or x.shape[-1] != m:
            raise ValueError(f"Ensemble: expected the input of shape (K={K},"
                             f" T, B, {m}) or (T, B, {m}), got "
                             f"{tuple(x.shape)}")
        if x.shape[1] == 0 or x.shape[2] == 0:
            raise ValueError(f"Ensemble: expected at least one step and one "
                             f"sequence, got shape {tuple(x.shape)}")
        if x.dtype != ref.dtype or x.device != ref.device:
            raise TypeError(f"Ensemble: expected the input with dtype "
                            f"{ref.dtype} on {ref.device} (the parameters),"
                            f" got {x.dtype} on {x.device}")
        return x

    def forward(self, x: Tensor) -> Tensor:
        x = self._inputs(x)                             # (K, T, B, m)
        if not self.fast:
            return self._vmapped(x)
        K, T, B, m = x.shape
        cell = self._template.recurrent.cell
        p = self.stacked
        U, b = p("recurrent.cell.U"), p("recurrent.cell.b")
        per_step = type(self._template) is PerStepClassifier
        if type(cell) is GRUCell:                       # see StackedGRU
            n = cell.state_size
            W_gates, W = p("recurrent.cell.W_gates"), p("recurrent.cell.W")
            b_W = p("recurrent.cell.b_W")
            WUb = torch.cat([
                torch.cat([W_gates, U[:, :2 * n], b[:, :2 * n, None]], 2),
                torch.cat([W, W.new_zeros(K, n, m), b_W[:, :, None]], 2),
                torch.cat([W.new_zeros(K, n, n), U[:, 2 * n:],
                           b[:, 2 * n:, None]], 2)], dim=1)
            H = StackedGRU.apply(x, WUb, per_step, self._workspace,
                                 _tracked(WUb))
        else:
            WUb = torch.cat([p("recurrent.cell.W"), U, b[:, :, None]], 2)
            if type(cell) is BasicLSTMCell:
                H = StackedLSTM.apply(x, WUb, per_step, self._workspace,
                                      _tracked(WUb))
            else:
                H = StackedVanillaRNN.apply(x, WUb, cell.nonlinearity,
                                            per_step, self._workspace,
                                            _tracked(WUb))
        V, c = p("readout.weight"), p("readout.bias")   # (K, C, n), (K, C)
        if per_step:                                    # H: (K, T, B, n)
            return torch.baddbmm(c.unsqueeze(1), H.view(K, T * B, -1),
                                 V.transpose(1, 2)).view(K, T, B, -1)
        return torch.baddbmm(c.unsqueeze(1), H, V.transpose(1, 2))

    def _vmapped(self, x: Tensor) -> Tensor:
        """Any other cell: the single model's forward pass under
        ``vmap`` over the stacked parameters and inputs."""
        params = {name: self.stacked(name) for name in self.names}

        def one(member_params, member_x):
            return functional_call(self._template, member_params,
                                   (member_x,))
        return vmap(one)(params, x)

    def losses(self, loss: Callable[[Tensor, Tensor], Tensor], x: Tensor,
               target: Tensor) -> Tensor:
        """``(K,)``: member k's ``loss(model_k(x[k]), target[k])``.
        With one input ``x`` for all members (``(T, B, input_size)``, or
        ``(T, B)`` ids), ``target`` is one target for all of them too;
        otherwise it is ``(K, ...)``, member k's at ``[k]``."""
        shared = isinstance(x, Tensor) and x.dim() == (
            3 if x.is_floating_point() else 2)
        out = self(x)
        if not isinstance(target, Tensor):
            raise TypeError(f"Ensemble.losses: expected a Tensor target, "
                            f"got {type(target).__name__}")
        if shared:
            target = target.expand(self.size, *target.shape)
        if target.shape[0] != self.size:
            raise ValueError(f"Ensemble.losses: expected targets for "
                             f"{self.size} members, got shape "
                             f"{tuple(target.shape)}")
        values = [loss(o, t) for o, t in zip(out.unbind(0),
                                             target.unbind(0))]
        for v in values:
            if not isinstance(v, Tensor) or v.dim() != 0:
                raise ValueError("Ensemble.losses: expected loss(output, "
                                 "target) to return a scalar tensor")
        return torch.stack(values)

    def extra_repr(self) -> str:
        path = "stacked fast path" if self.fast else "vmap over the step"
        return f"K={self.size}, {path}, member={self._template!r}"


# -- training -----------------------------------------------------------------
def train_ensemble(
    ensemble: Ensemble | Sequence[nn.Module],
    make_batch: Callable[[torch.Generator], Tuple[Tensor, Tensor]],
    loss: Callable[[Tensor, Tensor], Tensor],
    *,
    steps: int,
    lr: float = 1e-2,
    seeds: Sequence[int] | None = None,
    clip_norm: float | None = 1.0,
    before_step: Callable[[int], None] | None = None,
    stop_below: float | None = None,
) -> List[List[float]]:
    """Fit every member of ``ensemble`` as :func:`~lstmlib.experiments.training.
    train_model` fits one model, all K at once.

    Member k gets what ``train_model(model_k, make_batch, loss,
    steps=steps, lr=lr, seed=seeds[k], clip_norm=clip_norm,
    stop_below=stop_below)`` would give it: batches ``make_batch(g_k)``
    from its own generator seeded with ``seeds[k]`` (default: the seeds
    the ensemble was built from), its gradient clipped to norm
    ``clip_norm`` by the norm of its own gradient, and Adam with
    learning rate ``lr``. With ``stop_below``, member k stops once the
    mean of its last 10 losses is below it; from then on its parameters
    (and Adam's moments) do not change and ``make_batch`` is no longer
    called for it. Training ends when every member has stopped or after
    ``steps`` steps.

    ``ensemble`` may also be a list of K models: they are stacked,
    trained, and their parameters overwritten with the trained ones, like
    K calls of ``train_model`` would leave them. ``before_step(k)``, if
    given, is called before step ``k`` of the ensemble and once more
    after the last with ``k`` the most steps any member took.

    Returns K lists of losses, one per member, every step it took
    (``torch.tensor(losses)`` is ``(K, steps)`` when none stopped early).
    """
    owner = "train_ensemble"
    models = None
    if not isinstance(ensemble, Ensemble):
        models = ensemble
        ensemble = Ensemble(models)
    check_positive_int(owner, "steps", steps)
    if not callable(loss):
        raise TypeError(f"{owner}: expected a callable loss(output, "
                        f"target), got {type(loss).__name__}")
    if not callable(make_batch):
        raise TypeError(f"{owner}: expected a callable make_batch("
                        f"generator), got {type(make_batch).__name__}")
    if stop_below is not None:
        check_finite_real(owner, "stop_below", stop_below)
    K = ensemble.size
    if seeds is None:
        if ensemble.seeds is None:
            raise ValueError(f"{owner}: the ensemble records no seeds; pass "
                             f"seeds=[...], one per member")
        seeds = ensemble.seeds
    seeds = _check_seeds(owner, seeds, K)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    optimiser = torch.optim.Adam(ensemble.parameters(), lr=lr)
    losses: List[List[float]] = [[] for _ in range(K)]
    active = [True] * K
    last: List[Tuple[Tensor, Tensor] | None] = [None] * K
    taken = 0
    for step in range(steps):
        if before_step is not None:
            before_step(step)
        for k in range(K):
            if active[k]:
                last[k] = make_batch(generators[k])
        xs, targets = zip(*last)
        try:
            x, target = torch.stack(xs), torch.stack(targets)
        except RuntimeError as error:
            raise ValueError(f"{owner}: make_batch gave the members batches "
                             f"of different shapes; an ensemble needs equal "
                             f"shapes ({error})") from None
        values = ensemble.losses(loss, x, target)
        optimiser.zero_grad()
        values.sum().backward()         # member k's gradient: of its loss
        if clip_norm is not None:
            ensemble.clip_grad_norm_(clip_norm)
        _adam_step(optimiser, [k for k in range(K) if not active[k]])
        taken = step + 1
        for k, value in enumerate(values.tolist()):
            if not active[k]:
                continue
            losses[k].append(value)
            if stop_below is not None and len(losses[k]) >= 10 \
                    and sum(losses[k][-10:]) / 10 < stop_below:
                active[k] = False
        if not any(active):
            break
    if before_step is not None:
        before_step(taken)
    if models is not None:
        ensemble.copy_to(models)
    return losses


def _adam_step(optimiser: torch.optim.Adam, frozen: List[int]) -> None:
    """One Adam step that leaves the members ``frozen`` (stopped early)
    as they were: their parameters and moments are restored after it."""
    if not frozen:
        optimiser.step()
        return
    rows = torch.tensor(frozen)
    kept = []
    for group in optimiser.param_groups:
        for p in group["params"]:
            state = optimiser.state.get(p, {})
            tensors = [p.data] + [state[key] for key in ("exp_avg",
                                                         "exp_avg_sq")
                                  if key in state]
            kept.append([(t, t[rows].clone()) for t in tensors])
    optimiser.step()
    with torch.no_grad():
        for pairs in kept:
            for t, saved in pairs:
                t[rows] = saved
