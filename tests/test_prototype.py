"""lstmlib.cells.prototype: the prototype LSTM and the normalized prototype.
The Cell contract (Recurrent against the loop, gradcheck, errors on bad
input) is checked for both in tests/test_cell_contract.py."""
import math

import pytest
import torch

from tests.random_weights import randomize_
from lstmlib import Recurrent
from lstmlib.analysis.initialization import initialize_recurrent_, orthogonal_
from lstmlib.cells.prototype import NormalizedPrototypeLSTMCell, PrototypeLSTMCell

CELLS = [PrototypeLSTMCell, NormalizedPrototypeLSTMCell]


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def prototype_by_hand(cell, x, s):
    """The prototype's equations, block by block, rows i | f | o | s̃."""
    n = cell.state_size
    W_g, U, b = cell.W_gates, cell.U, cell.b
    i = torch.sigmoid(s @ W_g[:n].T + x @ U[:n].T + b[:n])
    f = torch.sigmoid(s @ W_g[n:2 * n].T + x @ U[n:2 * n].T + b[n:2 * n])
    o = torch.sigmoid(s @ W_g[2 * n:].T + x @ U[2 * n:3 * n].T
                      + b[2 * n:3 * n])
    s_tilde = torch.tanh((o * s) @ cell.W.T + x @ U[3 * n:].T + b[3 * n:])
    return f * s + i * s_tilde


def population_variance(s):
    """(1/n) Σ_j (s_j - mean)², written out: (B, 1)."""
    n = s.shape[-1]
    mean = s.sum(dim=-1, keepdim=True) / n
    return ((s - mean) ** 2).sum(dim=-1, keepdim=True) / n


# -- the layout ---------------------------------------------------------------
@pytest.mark.parametrize("cls", CELLS)
def test_parameter_layout(cls):
    n, m = 5, 3
    cell = cls(m, n)
    assert cell.state_names == ("s",)
    shapes = {k: tuple(v.shape) for k, v in cell.named_parameters()}
    assert shapes == {"W_gates": (3 * n, n), "W": (n, n),
                      "U": (4 * n, m), "b": (4 * n,)}
    assert sum(p.numel() for p in cell.parameters()) \
        == 4 * n * n + 4 * n * m + 4 * n


@pytest.mark.parametrize("forget_bias", [1.0, -2, 0.0])
def test_initialization_biases_zero_except_forget(forget_bias):
    n = 6
    cell = PrototypeLSTMCell(2, n, forget_bias=forget_bias)
    b_i, b_f, b_o, b_s = cell.b.detach().split(n)
    assert not b_i.any() and not b_o.any() and not b_s.any()
    assert torch.all(b_f == forget_bias)
    bound = 1 / math.sqrt(n)
    for w in (cell.W_gates, cell.W, cell.U):
        assert w.abs().max() <= bound and w.std() > bound / 4


def test_recurrent_weights_are_found_by_initialize_recurrent():
    cell = PrototypeLSTMCell(2, 4)
    initialize_recurrent_(cell, orthogonal_)
    for block in (*cell.W_gates.detach().split(4), cell.W.detach()):
        assert torch.allclose(block @ block.T, torch.eye(4), atol=1e-12)


# -- the equations ------------------------------------------------------------
def test_prototype_equals_its_equations():
    cell = randomize_(PrototypeLSTMCell(3, 4))
    x, s = torch.randn(5, 3), torch.randn(5, 4)
    out, new = cell(x, s)
    assert torch.allclose(new, prototype_by_hand(cell, x, s), atol=1e-12)
    assert torch.equal(out, new)                  # the output is the state


def test_normalized_prototype_divides_by_root_of_variance_plus_one():
    cell = randomize_(NormalizedPrototypeLSTMCell(3, 4), scale=2.0)
    x, s = torch.randn(5, 3), 3 * torch.randn(5, 4)
    out, new = cell(x, s)
    assert torch.equal(out, new)                  # the output is the state
    s_prime = prototype_by_hand(cell, x, s)        # the prototype's s'_t
    v = population_variance(s_prime)               # divisor n, per row
    assert v.min() > 0.1                           # the division matters
    assert torch.allclose(new, s_prime / torch.sqrt(v + 1), atol=1e-12)
    # not the unbiased (n - 1) variance: that would give another state
    v_unbiased = s_prime.var(dim=-1, keepdim=True)
    assert not torch.allclose(new, s_prime / torch.sqrt(v_unbiased + 1))
    # afterwards var(s_t) = v / (v + 1) < 1, row by row
    assert torch.allclose(population_variance(new), v / (v + 1),
                          atol=1e-12)


def test_normalized_spread_stays_below_one_but_mean_is_not_bounded():
    cell = randomize_(NormalizedPrototypeLSTMCell(2, 6), scale=5.0)
    x = 10 * torch.randn(40, 3, 2)
    out, _ = Recurrent(cell)(x, 5 * torch.randn(3, 6))
    assert population_variance(out).max() < 1
    # equal units: v = 0, nothing is divided, and the state drifts as the
    # prototype's does (see test_prototype_state_drifts_without_bound)
    drifting = constant_writer(NormalizedPrototypeLSTMCell(1, 3), 40.0)
    out, _ = Recurrent(drifting)(torch.zeros(25, 1, 1))
    assert torch.equal(out[:, 0, 0], torch.arange(1.0, 26.0))


# -- internal state drift -----------------------------------------------------
def constant_writer(cell, bias):
    """i = f = 1 and s̃ = tanh(bias) at every step: only the biases are
    nonzero, σ(40) = 1 exactly in float64, tanh(40) = 1 exactly."""
    n = cell.state_size
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()
        cell.b[:2 * n] = 40.0                       # b_i, b_f: i = f = 1
        cell.b[3 * n:] = bias                       # b_s̃
    return cell


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_prototype_state_drifts_without_bound(sign):
    cell = constant_writer(PrototypeLSTMCell(1, 3), sign * 40.0)
    out, _ = Recurrent(cell)(torch.zeros(100, 2, 1))
    # s_t = s_{t-1} + 1 · 1 exactly: the state is t after t steps
    steps = torch.arange(1.0, 101.0)[:, None, None]
    assert torch.equal(out, sign * steps.expand(100, 2, 3))
    # with a non-saturated write the drift is tanh(2) ≈ 0.96 per step
    cell = constant_writer(PrototypeLSTMCell(1, 3), sign * 2.0)
    out, _ = Recurrent(cell)(torch.zeros(100, 2, 1))
    assert torch.allclose(out, sign * steps * math.tanh(2.0), atol=1e-12)


# -- bad input ----------------------------------------------------------------
@pytest.mark.parametrize("cls", CELLS)
def test_bad_forget_bias_raises(cls):
    with pytest.raises(TypeError, match="forget_bias.*real number.*str"):
        cls(2, 3, forget_bias="1")
    with pytest.raises(TypeError, match="forget_bias"):
        cls(2, 3, forget_bias=True)
    with pytest.raises(ValueError, match="forget_bias.*finite.*nan"):
        cls(2, 3, forget_bias=float("nan"))
