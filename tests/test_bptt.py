"""lstmlib.analysis.bptt: hand-written BPTT, truncated BPTT and RTRL for the vanilla
RNN, checked against autograd."""
import copy
import itertools
import math

import pytest
import torch

from lstmlib import Recurrent, VanillaRNNCell
from lstmlib.analysis.bptt import (VanillaGradients, activation_derivative,
                          autograd_graph_size, online_bptt_gradient_errors,
                          truncated_bptt, vanilla_bptt, vanilla_rtrl,
                          vanilla_states)

NONLINEARITIES = ["tanh", "sigmoid", "relu"]


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def problem(nonlinearity, T=7, B=3, m=2, n=4):
    cell = VanillaRNNCell(m, n, nonlinearity=nonlinearity)
    x, s0, y = torch.randn(T, B, m), torch.randn(B, n), torch.randn(T, B, n)
    return cell, x, s0, y


def autograd_reference(cell, x, s0, y):
    """Gradients of L = ½ Σ_t ‖s_t − y_t‖² by autograd, with the total
    derivative ∂L/∂s_t of every state."""
    s0 = s0.clone().requires_grad_()
    s, states = s0, []
    for x_t in x:
        _, s = cell(x_t, s)
        s.retain_grad()
        states.append(s)
    loss = 0.5 * sum(((s_t - y_t) ** 2).sum()
                     for s_t, y_t in zip(states, y))
    loss.backward()
    grads = VanillaGradients(cell.W.grad, cell.U.grad, cell.b.grad, s0.grad,
                             torch.stack([s_t.grad for s_t in states]))
    direct = torch.stack([s_t.detach() for s_t in states]) - y
    cell.zero_grad()
    return grads, direct


def assert_close(a, b, tol=1e-10):
    assert a.shape == b.shape
    assert torch.allclose(a, b, rtol=0, atol=tol), (a - b).abs().max()


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_bptt_equals_autograd(nonlinearity):
    cell, x, s0, y = problem(nonlinearity)
    expected, direct = autograd_reference(cell, x, s0, y)
    got = vanilla_bptt(cell, x, s0, direct)
    for name in ("W", "U", "b", "s0", "states"):
        assert_close(getattr(got, name), getattr(expected, name))


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_rtrl_equals_autograd_and_bptt(nonlinearity):
    cell, x, s0, y = problem(nonlinearity, T=6, B=2, m=3, n=5)
    expected, direct = autograd_reference(cell, x, s0, y)
    rtrl = vanilla_rtrl(cell, x, s0, direct)
    bptt = vanilla_bptt(cell, x, s0, direct)
    for name in ("W", "U", "b", "s0"):
        assert_close(getattr(rtrl, name), getattr(expected, name))
        assert_close(getattr(rtrl, name), getattr(bptt, name))
    assert rtrl.states is None


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_activation_derivative_from_state(nonlinearity):
    a = torch.randn(50, requires_grad=True)
    phi = VanillaRNNCell(1, 1, nonlinearity=nonlinearity).phi
    s = phi(a)
    (expected,) = torch.autograd.grad(s.sum(), a)
    assert_close(activation_derivative(nonlinearity, s.detach()), expected,
                 1e-14)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="'softplus'"):
        activation_derivative("softplus", torch.zeros(3))


def test_states_are_the_recurrent_forward_pass():
    cell, x, s0, _ = problem("tanh")
    states = vanilla_states(cell, x, s0)
    out, _ = Recurrent(cell)(x, s0)
    assert states.shape == (8, 3, 4) and not states.requires_grad
    assert torch.equal(states[0], s0)
    assert_close(states[1:], out.detach(), 0)


def test_full_truncation_is_full_bptt():
    cell, x, s0, y = problem("tanh", T=9)
    _, direct = autograd_reference(cell, x, s0, y)
    full = vanilla_bptt(cell, x, s0, direct)
    (only,) = truncated_bptt(cell, x, s0, direct, k1=9, k2=9)
    for name in ("W", "U", "b", "s0"):
        assert_close(getattr(only, name), getattr(full, name))


def test_windowed_truncation_is_detaching_between_windows():
    cell, x, s0, y = problem("sigmoid", T=12)
    direct = vanilla_states(cell, x, s0)[1:] - y
    updates = truncated_bptt(cell, x, s0, direct, k1=4, k2=4)
    assert len(updates) == 3
    state = s0
    for (lo, hi), update in zip([(0, 4), (4, 8), (8, 12)], updates):
        out, state = Recurrent(cell)(x[lo:hi], state.detach())
        loss = 0.5 * ((out - y[lo:hi]) ** 2).sum()
        grads = torch.autograd.grad(loss, [cell.W, cell.U, cell.b])
        for got, expected in zip((update.W, update.U, update.b), grads):
            assert_close(got, expected)


def test_overlapping_truncation_matches_autograd_per_update():
    cell, x, s0, y = problem("relu", T=11)
    direct = vanilla_states(cell, x, s0)[1:] - y
    states = vanilla_states(cell, x, s0)
    k1, k2 = 3, 5
    updates = truncated_bptt(cell, x, s0, direct, k1=k1, k2=k2)
    ends = [3, 6, 9, 11]                  # the last window is short
    assert len(updates) == len(ends)
    for previous, t, update in zip([0] + ends, ends, updates):
        start = max(t - k2, 0)
        s_start = states[start].clone().requires_grad_()
        out, _ = Recurrent(cell)(x[start:t], s_start)
        first = previous - start              # errors since the last update
        loss = 0.5 * ((out[first:] - y[start + first:t]) ** 2).sum()
        grads = torch.autograd.grad(loss, [cell.W, cell.U, cell.b, s_start])
        for got, expected in zip((update.W, update.U, update.b, update.s0),
                                 grads):
            assert_close(got, expected)


def test_truncation_arguments_are_checked():
    cell, x, s0, y = problem("tanh")
    with pytest.raises(ValueError, match="k2 >= k1"):
        truncated_bptt(cell, x, s0, y, k1=4, k2=2)
    with pytest.raises(ValueError, match="k1"):
        truncated_bptt(cell, x, s0, y, k1=0, k2=2)


def test_inputs_are_checked():
    cell, x, s0, y = problem("tanh")
    with pytest.raises(TypeError, match="VanillaRNNCell"):
        vanilla_bptt(torch.nn.RNNCell(2, 4), x, s0, y)
    with pytest.raises(ValueError, match=r"\(7, 3, 4\)"):
        vanilla_bptt(cell, x, s0, y[:-1])
    with pytest.raises(ValueError, match="input"):
        vanilla_rtrl(cell, x[0], s0, y)


def test_gradients_add_and_flatten():
    cell, x, s0, y = problem("tanh")
    g = vanilla_bptt(cell, x, s0, y)
    total = g + g
    assert total.states is None
    assert_close(total.W, 2 * g.W, 0)
    flat = g.parameters()
    assert flat.shape == (4 * 4 + 4 * 2 + 4,)
    assert_close(flat[:16], g.W.reshape(-1), 0)


def test_online_errors_vanish_without_staleness():
    cell, x, _, y = problem("tanh", T=12, B=1)
    frozen = online_bptt_gradient_errors(copy.deepcopy(cell), x, y, k2=5,
                                         lr=0.0)
    one_step = online_bptt_gradient_errors(copy.deepcopy(cell), x, y,
                                           k2=1, lr=0.1)
    stale = online_bptt_gradient_errors(copy.deepcopy(cell), x, y, k2=5,
                                        lr=0.1)
    assert frozen.shape == (12,) and frozen.abs().max() < 1e-12
    assert one_step.abs().max() < 1e-12
    assert stale[0] < 1e-12 and (stale[1:] > 1e-6).all()


def test_online_update_is_gradient_descent_on_the_step_loss():
    cell, x, _, y = problem("tanh", T=1, B=1)
    learner = copy.deepcopy(cell)
    online_bptt_gradient_errors(learner, x, y, k2=3, lr=0.5)
    out, _ = Recurrent(cell)(x)
    loss = 0.5 * ((out - y) ** 2).sum()
    grads = torch.autograd.grad(loss, [cell.W, cell.U, cell.b])
    for p, p0, g in zip((learner.W, learner.U, learner.b),
                        (cell.W, cell.U, cell.b), grads):
        assert_close(p, p0 - 0.5 * g)


def test_graph_size_grows_linearly_with_steps():
    cell = VanillaRNNCell(2, 3)
    sizes = []
    for T in (1, 2, 3, 4):
        out, _ = Recurrent(cell, fused=False)(torch.randn(T, 1, 2))
        sizes.append(autograd_graph_size(out.sum()))
    steps = [b - a for a, b in itertools.pairwise(sizes)]
    assert steps[0] > 0 and len(set(steps)) == 1
    assert autograd_graph_size(torch.ones(3)) == 0
    with pytest.raises(TypeError):
        autograd_graph_size([1.0])


def test_rtrl_cost_per_step_is_quartic_in_state_size():
    from torch.utils.flop_counter import FlopCounterMode
    counts = {}
    for n in (16, 32):
        cell = VanillaRNNCell(1, n)
        x, s0 = torch.randn(2, 1, 1), torch.zeros(1, n)
        with FlopCounterMode(display=False) as counter:
            vanilla_rtrl(cell, x, s0, torch.randn(2, 1, n))
        counts[n] = counter.get_total_flops()
    assert 3.8 < math.log2(counts[32] / counts[16]) < 4.0
