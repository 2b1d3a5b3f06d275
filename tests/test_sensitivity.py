"""lstmlib.sensitivity: exact Jacobians and their norms along a trajectory."""
import pytest
import torch
from torch import nn

from lstmlib import Cell, VanillaRNNCell
from lstmlib.sensitivity import (jacobian_norms, state_from_vector,
                                 state_vector, step_jacobians)


@pytest.fixture(autouse=True)
def float64_and_seeded():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


def test_vanilla_step_jacobian_is_diag_phi_prime_times_W():
    cell = VanillaRNNCell(3, 5)
    x = torch.randn(12, 3)
    J, states = step_jacobians(cell, x)
    assert J.shape == (12, 5, 5) and states.shape == (13, 5)
    for t in range(12):
        expected = torch.diag(1 - states[t + 1] ** 2) @ cell.W
        assert torch.allclose(J[t], expected, atol=1e-12)


def test_norms_are_spectral_norms_of_jacobian_products():
    cell = VanillaRNNCell(2, 4)
    x, s0 = torch.randn(9, 1, 2), torch.randn(1, 4)
    J, _ = step_jacobians(cell, x, s0)
    norms = jacobian_norms(cell, x, s0, start=2)
    assert norms.shape == (7,)
    product = torch.eye(4)
    for k, J_t in enumerate(J[2:]):
        product = J_t @ product
        expected = torch.linalg.svdvals(product)[0]
        assert torch.allclose(norms[k], expected, atol=1e-12)


def test_norms_match_autograd_jacobian_of_the_unrolled_map():
    cell = VanillaRNNCell(3, 4)
    x, s0 = torch.randn(6, 3), torch.randn(1, 4)

    def unrolled(s):
        state = s[None]
        for x_t in x:
            _, state = cell(x_t[None], state)
        return state[0]

    full = torch.autograd.functional.jacobian(unrolled, s0[0])
    last = jacobian_norms(cell, x, s0)[-1]
    assert torch.allclose(last, torch.linalg.matrix_norm(full, ord=2),
                          atol=1e-12)


def test_finite_differences_agree_with_the_derivative():
    cell = VanillaRNNCell(3, 6)
    x, s0 = torch.randn(5, 3), torch.randn(1, 6)
    J, _ = step_jacobians(cell, x, s0)
    product = torch.linalg.multi_dot(list(J.flip(0)))
    direction = torch.randn(1, 6)
    eps = 1e-6

    def final_state(s):
        for x_t in x:
            _, s = cell(x_t[None], s)
        return s

    with torch.no_grad():
        moved = (final_state(s0 + eps * direction) - final_state(s0)) / eps
    assert torch.allclose(moved[0], product @ direction[0], atol=1e-5)


class TwoPartCell(Cell):
    """A cell with a (h, c) state: c_t = a ⊙ c_{t-1} + x, h_t = tanh(c_t)."""
    state_names = ("h", "c")

    def __init__(self):
        super().__init__(2, 2)
        self.a = nn.Parameter(torch.tensor([0.5, 2.0]))

    def step(self, x, state):
        h, c = state
        c = self.a * c + x
        h = torch.tanh(c)
        return h, (h, c)


def test_tuple_states_are_concatenated():
    cell = TwoPartCell()
    state = (torch.randn(1, 2), torch.randn(1, 2))
    vector = state_vector(state)
    assert vector.shape == (4,)
    back = state_from_vector(cell, vector)
    assert all(torch.equal(a, b) for a, b in zip(back, state))
    J, _ = step_jacobians(cell, torch.randn(3, 2), state)
    assert J.shape == (3, 4, 4)
    assert not J[:, :, :2].any()                 # nothing reads h_{t-1}
    assert torch.allclose(J[0, 2:, 2:], torch.diag(cell.a))


def test_bad_arguments_are_named():
    cell = VanillaRNNCell(3, 4)
    with pytest.raises(ValueError, match=r"shape \(T, 3\).*got \(5, 2, 3\)"):
        jacobian_norms(cell, torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match=r"start to be an int in \[0, 4\]"):
        jacobian_norms(cell, torch.randn(5, 3), start=5)
    with pytest.raises(ValueError, match=r"state 's' of shape \(1, 4\)"):
        jacobian_norms(cell, torch.randn(5, 3), torch.zeros(2, 4))
