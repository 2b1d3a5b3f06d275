"""lstmlib.analysis.sensitivity: exact Jacobians and their norms along a trajectory,
the bounds of the vanishing-sensitivity theorem, and finite changes."""
import pytest
import torch
from torch import nn

from lstmlib import Cell, VanillaRNNCell
from lstmlib.analysis.sensitivity import (MAX_SLOPE, activation_slope,
                                 directional_derivative_norms,
                                 finite_change_bound, finite_change_norms,
                                 jacobian_norms, largest_slope_between,
                                 sensitivity_bounds, state_from_vector,
                                 state_vector, step_jacobians,
                                 vanilla_preactivations)


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


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


# -- bounds and finite changes ---------------------------------------------
@pytest.mark.parametrize("phi", ["tanh", "sigmoid", "relu"])
def test_activation_slope_is_the_autograd_derivative(phi):
    z = torch.randn(200) * 4
    z = z[z.abs() > 1e-9].requires_grad_()
    f = {"tanh": torch.tanh, "sigmoid": torch.sigmoid,
         "relu": torch.relu}[phi]
    (grad,) = torch.autograd.grad(f(z).sum(), z)
    assert torch.allclose(activation_slope(phi, z.detach()), grad,
                          atol=1e-14)
    assert activation_slope(phi, z.detach()).max() <= MAX_SLOPE[phi]


@pytest.mark.parametrize("phi", ["tanh", "sigmoid", "relu"])
def test_largest_slope_between_is_the_sup_on_the_segment(phi):
    a, b = 3 * torch.randn(50), 3 * torch.randn(50)
    fractions = torch.linspace(0, 1, 20001)[:, None]
    dense = activation_slope(phi, a + fractions * (b - a))   # (20001, 50)
    sup = largest_slope_between(phi, a, b)
    assert torch.allclose(sup, largest_slope_between(phi, b, a))
    assert (dense <= sup + 1e-12).all()               # an upper bound ...
    assert torch.allclose(dense.max(0).values, sup, atol=1e-6)  # ... tight
    assert torch.allclose(largest_slope_between(phi, a, a),   # σ(1 - σ)
                          activation_slope(phi, a), rtol=1e-10, atol=0)


def test_preactivations_are_what_phi_is_applied_to():
    cell = VanillaRNNCell(3, 5, nonlinearity="sigmoid")
    x = torch.randn(7, 3)
    _, states = step_jacobians(cell, x, torch.randn(1, 5))
    z = vanilla_preactivations(cell, x, states)
    assert z.shape == (7, 5)
    assert torch.allclose(torch.sigmoid(z), states[1:], atol=1e-15)
    assert torch.equal(vanilla_preactivations(cell, x, states[:-1]), z)


@pytest.mark.parametrize("phi", ["tanh", "sigmoid", "relu"])
def test_sensitivity_bounds_by_hand_and_above_the_measurement(phi):
    cell = VanillaRNNCell(2, 6, nonlinearity=phi)
    with torch.no_grad():
        cell.W.mul_(3)
    x, s0 = torch.randn(9, 2), torch.randn(1, 6)
    bounds = sensitivity_bounds(cell, x, s0, start=2)
    _, states = step_jacobians(cell, x, s0)
    z = vanilla_preactivations(cell, x, states)[2:]
    gains = activation_slope(phi, z).max(dim=1).values
    w = torch.linalg.matrix_norm(cell.W.detach(), ord=2)
    expected = torch.ones(())
    for k in range(1, 8):
        expected = expected * gains[k - 1] * w
        assert torch.isclose(bounds.stepwise[k - 1], expected)
        assert torch.isclose(bounds.visited[k - 1],
                             (gains[:k].max() * w) ** k)
        assert torch.isclose(bounds.worst_case[k - 1],
                             (MAX_SLOPE[phi] * w) ** k)
    measured = jacobian_norms(cell, x, s0, start=2).detach()
    tol = 1 + 1e-12
    assert (measured <= bounds.stepwise * tol).all()
    assert (bounds.stepwise <= bounds.visited * tol).all()
    assert (bounds.visited <= bounds.worst_case * tol).all()


def test_finite_changes_are_differences_of_two_runs():
    cell = VanillaRNNCell(3, 4)
    x, s0, delta = torch.randn(6, 3), torch.randn(1, 4), torch.randn(4)
    moved = finite_change_norms(cell, x, delta, s0, start=2)
    _, states = step_jacobians(cell, x, s0)
    s = states[2][None] + delta
    for k, x_t in enumerate(x[2:]):
        _, s = cell(x_t[None], s)
        expected = (s[0] - states[3 + k]).norm()
        assert torch.isclose(moved[k], expected, rtol=1e-12)


@pytest.mark.parametrize("phi", ["tanh", "sigmoid", "relu"])
def test_mean_value_bound_holds_for_large_changes(phi):
    for seed in range(20):
        torch.manual_seed(seed)
        cell = VanillaRNNCell(2, 5, nonlinearity=phi)
        with torch.no_grad():
            cell.W.mul_(4 * torch.rand(()))
        x, s0 = 3 * torch.randn(8, 2), torch.randn(1, 5)
        delta = 5 * torch.randn(5)
        moved = finite_change_norms(cell, x, delta, s0)
        bound = finite_change_bound(cell, x, delta, s0)
        worst = sensitivity_bounds(cell, x, s0).worst_case * delta.norm()
        assert (moved <= bound * (1 + 1e-12)).all()
        assert (bound <= worst * (1 + 1e-12)).all()


def test_mean_value_bound_is_tight_for_a_linear_regime():
    # relu with every unit active is linear: δs_k = W^k δs_0, and for
    # W = a·I the bound (a‖δs‖ per step) is attained exactly
    cell = VanillaRNNCell(1, 3, nonlinearity="relu")
    with torch.no_grad():
        cell.W.copy_(0.8 * torch.eye(3))
        cell.U.fill_(1.0)
        cell.b.fill_(1.0)
    x, s0, delta = torch.rand(5, 1), torch.ones(1, 3), 0.1 * torch.ones(3)
    moved = finite_change_norms(cell, x, delta, s0)
    expected = 0.8 ** torch.arange(1, 6) * delta.norm()
    assert torch.allclose(moved, expected, rtol=1e-12)
    assert torch.allclose(finite_change_bound(cell, x, delta, s0), expected,
                          rtol=1e-12)


def test_directional_derivative_matches_the_jacobian_product():
    cell = VanillaRNNCell(3, 5)
    x, s0, u = torch.randn(7, 3), torch.randn(1, 5), torch.randn(5)
    J, _ = step_jacobians(cell, x, s0)
    pushed = directional_derivative_norms(cell, x, u, s0, start=1)
    v = u
    for k, J_t in enumerate(J[1:]):
        v = J_t @ v
        assert torch.isclose(pushed[k], v.norm(), rtol=1e-12)
    eps = 1e-6
    moved = finite_change_norms(cell, x, eps * u, s0, start=1) / eps
    assert torch.allclose(moved, pushed, rtol=1e-4)


def test_directional_derivative_of_a_tuple_state_cell():
    cell = TwoPartCell()
    state = (torch.randn(1, 2), torch.randn(1, 2))
    u = torch.tensor([0.0, 0.0, 1.0, 0.0])        # move c_1 only
    x = torch.zeros(3, 2)
    pushed = directional_derivative_norms(cell, x, u, state)
    # with x = 0: δc_k = 0.5^k δc_0 and δh_k = tanh'(c_k) δc_k
    c = state[1][0, 0] * 0.5 ** torch.arange(1, 4)
    dc = 0.5 ** torch.arange(1, 4)
    dh = (1 - torch.tanh(c) ** 2) * dc
    assert torch.allclose(pushed, torch.sqrt(dc**2 + dh**2), rtol=1e-12)


def test_bound_functions_refuse_what_they_cannot_bound():
    cell = VanillaRNNCell(3, 4)
    x = torch.randn(5, 3)
    with pytest.raises(TypeError, match="expected a VanillaRNNCell.*"
                                        "TwoPartCell"):
        sensitivity_bounds(TwoPartCell(), torch.randn(5, 2))
    with pytest.raises(TypeError, match="VanillaRNNCell"):
        finite_change_bound(TwoPartCell(), torch.randn(5, 2),
                            torch.zeros(4))
    with pytest.raises(ValueError, match=r"delta of shape \(4,\).*\(3,\)"):
        finite_change_norms(cell, x, torch.zeros(3))
    with pytest.raises(ValueError, match=r"start to be an int in \[0, 4\]"):
        sensitivity_bounds(cell, x, start=-1)
    with pytest.raises(ValueError, match="nonlinearity.*'softplus'"):
        activation_slope("softplus", torch.zeros(2))
    with pytest.raises(ValueError, match=r"states of shape \(6, 4\)"):
        vanilla_preactivations(cell, x, torch.zeros(3, 4))
