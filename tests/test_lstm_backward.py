"""lstmlib.analysis.lstm_backward: the basic LSTM's gradient derived by hand,
checked against autograd, and the memory cell's direct path."""
import pytest
import torch

from lstmlib import Recurrent, VanillaRNNCell
from lstmlib.cells.gru import GRUCell
from lstmlib.cells.lstm import BasicLSTMCell, LSTMVariantCell
from lstmlib.cells.registry import REGISTERED_CELLS
from lstmlib.analysis.lstm_backward import LSTMGradients, lstm_bptt, lstm_states
from lstmlib.analysis.sensitivity import step_jacobians
from tests.random_weights import randomize_


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def problem(T, B, m, n):
    cell = BasicLSTMCell(m, n)
    with torch.no_grad():                 # biases random too, not 0 and 1
        cell.b.normal_(0.0, 0.5)
    x, h0, c0 = torch.randn(T, B, m), torch.randn(B, n), torch.randn(B, n)
    return cell, x, h0, c0


def autograd_reference(cell, x, h0, c0, grad_h, grad_final_c):
    """Autograd's gradient of L = Σ_t <g_t, h_t> + <g_c, c_T>, whose
    direct gradients are g_t = ∂ℓ_t/∂h_t and g_c = ∂ℓ/∂c_T, written with
    the equations so that a_t, h_t and c_t can keep their gradients."""
    h0, c0 = h0.clone().requires_grad_(), c0.clone().requires_grad_()
    h, c, kept = h0, c0, []
    for x_t in x:
        a = h @ cell.W.T + x_t @ cell.U.T + cell.b
        a.retain_grad()
        a_i, a_f, a_c, a_o = a.chunk(4, dim=-1)
        c = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_c)
        h = torch.sigmoid(a_o) * torch.tanh(c)
        h.retain_grad()
        c.retain_grad()
        kept.append((a, h, c))
    loss = sum((g * h_t).sum() for g, (_, h_t, _) in zip(grad_h, kept))
    if grad_final_c is not None:
        loss = loss + (grad_final_c * c).sum()
    loss.backward()
    a, h, c = (torch.stack([v.grad for v in vs]) for vs in zip(*kept))
    grads = LSTMGradients(cell.W.grad.clone(), cell.U.grad.clone(),
                          cell.b.grad.clone(), h0.grad, c0.grad, h=h, c=c,
                          preactivations=a)
    cell.zero_grad()
    return grads


def assert_close(a, b, tol=1e-10):
    assert a.shape == b.shape
    assert torch.allclose(a, b, rtol=0, atol=tol), (a - b).abs().max()


FIELDS = ("W", "U", "b", "h0", "c0", "h", "c", "preactivations")


@pytest.mark.parametrize("sizes", [(1, 1, 1, 1), (5, 3, 2, 4),
                                   (9, 2, 5, 3), (12, 4, 3, 6)])
@pytest.mark.parametrize("with_final_c", [False, True])
def test_lstm_bptt_equals_autograd(sizes, with_final_c):
    T, B, m, n = sizes
    cell, x, h0, c0 = problem(T, B, m, n)
    grad_h = torch.randn(T, B, n)
    grad_final_c = torch.randn(B, n) if with_final_c else None
    expected = autograd_reference(cell, x, h0, c0, grad_h, grad_final_c)
    got = lstm_bptt(cell, x, (h0, c0), grad_h, grad_final_c=grad_final_c)
    for name in FIELDS:
        assert_close(getattr(got, name), getattr(expected, name))
    assert got.c0.abs().max() > 1e-3 and got.h0.abs().max() > 1e-3


def test_reference_is_the_cell():
    """The hand-written forward of the reference and of lstm_states both
    equal the cell run by Recurrent."""
    cell, x, h0, c0 = problem(7, 3, 2, 4)
    out, (h_T, c_T) = Recurrent(cell)(x, (h0, c0))
    states = lstm_states(cell, x, (h0, c0))
    assert_close(states.h[1:], out, 1e-14)
    assert_close(states.h[-1], h_T, 1e-14)
    assert_close(states.c[-1], c_T, 1e-14)
    assert torch.equal(states.h[0], h0) and torch.equal(states.c[0], c0)
    for gate in (states.i, states.f, states.o):
        assert gate.shape == (7, 3, 4) and 0 < gate.min() < gate.max() < 1
    expected = states.f * states.c[:-1] + states.i * states.c_tilde
    assert_close(states.c[1:], expected, 1e-14)


def test_stored_states_are_used():
    cell, x, h0, c0 = problem(6, 2, 3, 4)
    grad_h = torch.randn(6, 2, 4)
    states = lstm_states(cell, x, (h0, c0))
    same = lstm_bptt(cell, x, (h0, c0), grad_h, states=states)
    fresh = lstm_bptt(cell, x, (h0, c0), grad_h)
    assert_close(same.parameters(), fresh.parameters(), 0)
    assert same.parameters().shape == (16 * 4 + 16 * 3 + 16,)
    states.c = states.c * 1.1                       # other stored values
    other = lstm_bptt(cell, x, (h0, c0), grad_h, states=states)
    assert (other.W - fresh.W).abs().max() > 1e-6


# -- the memory cell's direct path --------------------------------------------
def test_one_step_memory_jacobian_is_the_forget_gate():
    """∂c_t/∂c_{t-1} = [f_t] exactly, whatever W: the gates read h_{t-1},
    so c_{t-1} reaches c_t only through f_t ⊙ c_{t-1}."""
    cell, x, h0, c0 = problem(8, 1, 3, 5)
    with torch.no_grad():
        cell.W.mul_(3.0)                            # a strong recurrence
    J, _ = step_jacobians(cell, x, (h0, c0))        # (T, 2n, 2n), (h, c)
    f = lstm_states(cell, x, (h0, c0)).f[:, 0]      # (T, n)
    n = 5
    for t in range(8):
        block = J[t, n:, n:]
        assert torch.equal(block, torch.diag(torch.diagonal(block)))
        assert_close(torch.diagonal(block), f[t], 1e-15)
        assert J[t, n:, :n].abs().max() > 1e-3      # c_t still sees h_{t-1}


def test_without_recurrence_the_memory_path_is_the_product_of_forgets():
    """With W = 0, ∂c_{t+k}/∂c_t = [f_{t+k} ⋯ f_{t+1}] exactly, and the
    hand-written backward pass carries ∂L/∂c_T back to c_0 as the same
    product: no weight matrix, no φ'."""
    T, n = 10, 4
    cell, x, h0, c0 = problem(T, 1, 3, n)
    with torch.no_grad():
        cell.W.zero_()
    J, _ = step_jacobians(cell, x, (h0, c0))
    f = lstm_states(cell, x, (h0, c0)).f[:, 0]
    product = torch.eye(2 * n)
    for t in range(T):
        product = J[t] @ product                    # ∂s_{t+1}/∂s_0
        assert_close(product[n:, n:], torch.diag(f[:t + 1].prod(0)), 1e-15)
        assert torch.equal(product[n:, :n], torch.zeros(n, n))
    grad_final_c = torch.randn(1, n)
    grads = lstm_bptt(cell, x, (h0, c0), torch.zeros(T, 1, n),
                      grad_final_c=grad_final_c)
    assert_close(grads.c0, grad_final_c * f.prod(0), 1e-15)
    assert torch.equal(grads.h0, torch.zeros(1, n))


# -- bad input ----------------------------------------------------------------
def test_bad_input():
    cell, x, h0, c0 = problem(4, 2, 3, 5)
    grad_h = torch.randn(4, 2, 5)
    for other in (VanillaRNNCell(3, 5), LSTMVariantCell(3, 5)):
        with pytest.raises(TypeError, match="expected a BasicLSTMCell"):
            lstm_bptt(other, x, (h0, c0), grad_h)
    with pytest.raises(ValueError, match=r"grad_h of shape \(4, 2, 5\)"):
        lstm_bptt(cell, x, (h0, c0), grad_h[:3])
    with pytest.raises(ValueError, match=r"grad_final_c of shape \(2, 5\)"):
        lstm_bptt(cell, x, (h0, c0), grad_h, grad_final_c=grad_h)
    with pytest.raises(TypeError, match=r"tuple \(h, c\)"):
        lstm_states(cell, x, c0)
    with pytest.raises(ValueError, match="at least one step"):
        lstm_bptt(cell, x[:0], (h0, c0), grad_h[:0])


# -- the Jacobians of a trajectory in one call --------------------------------
def every_cell(m, n):
    """Every registered cell and the GRU with the reset after W, with
    random weights (peepholes and biases too, so no term is zero)."""
    cells = [cell.build(m, n) for cell in REGISTERED_CELLS]
    cells.append(GRUCell(m, n, reset="after"))
    return [randomize_(cell) for cell in cells]


def test_trajectory_jacobians_equal_step_jacobians():
    """One batched reverse-mode call gives the Jacobians that
    step_jacobians computes one step at a time, for every cell, from
    zeros and from a given state, and their product norms equal
    jacobian_norms."""
    from lstmlib import jacobian_norms
    from lstmlib.analysis.sensitivity import product_norms, trajectory_jacobians
    x = torch.randn(15, 3)
    for cell in every_cell(3, 4):
        given = cell.initial_state(1)
        given = (torch.randn(1, 4) if isinstance(given, torch.Tensor)
                 else tuple(torch.randn(1, 4) for _ in given))
        for state in (None, given):
            expected, expected_states = step_jacobians(cell, x, state)
            got, states = trajectory_jacobians(cell, x[:, None], state)
            assert not got.requires_grad
            assert torch.equal(states, expected_states.detach())
            scale = expected.abs().max()
            assert_close(got / scale, expected.detach() / scale, 1e-13)
            norms = jacobian_norms(cell, x, state).detach()
            assert torch.allclose(product_norms(got), norms,
                                  rtol=1e-10, atol=0)


def test_trajectory_jacobians_bad_input():
    from lstmlib.analysis.sensitivity import product_norms, trajectory_jacobians
    cell = BasicLSTMCell(3, 4)
    with pytest.raises(ValueError, match="one sequence"):
        trajectory_jacobians(cell, torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match=r"\(T, N, N\)"):
        product_norms(torch.randn(5, 4, 3))
