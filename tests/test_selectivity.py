"""lstmlib.analysis.selectivity: the prototype's step with its gates as inputs."""
import pytest
import torch

from lstmlib.cells.prototype import NormalizedPrototypeLSTMCell, PrototypeLSTMCell
from lstmlib.analysis.selectivity import (GateValues, gate_jacobians, prototype_gates,
                                 prototype_update)
from tests.random_weights import randomize_


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def randomized(m=3, n=5):
    """A prototype with nonzero values everywhere, biases included."""
    return randomize_(PrototypeLSTMCell(m, n), scale=0.7)


def test_gates_by_blocks_and_update_equal_the_cells_step():
    cell = randomized()
    n = cell.state_size
    x, s = torch.randn(4, 3), torch.randn(4, 5)
    i, f, o = prototype_gates(cell, x, s)
    W_g, U, b = cell.W_gates, cell.U, cell.b
    for k, gate in enumerate((i, f, o)):                # rows i | f | o
        rows = slice(k * n, (k + 1) * n)
        by_hand = torch.sigmoid(s @ W_g[rows].T + x @ U[rows].T + b[rows])
        torch.testing.assert_close(gate, by_hand, rtol=0, atol=1e-14)
    _, expected = cell(x, s)
    got = prototype_update(cell, x, s, GateValues(i, f, o))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-14)


def test_update_uses_the_given_gates():
    cell = randomized()
    x, s = torch.randn(2, 3), torch.randn(2, 5)
    ones, zeros = torch.ones(2, 5), torch.zeros(2, 5)
    kept = prototype_update(cell, x, s, GateValues(zeros, ones, ones))
    assert torch.equal(kept, s)                       # f = 1, i = 0
    cleared = prototype_update(cell, x, s, GateValues(zeros, zeros, ones))
    assert torch.equal(cleared, zeros)                # f = 0, i = 0
    blind = prototype_update(cell, x, s, GateValues(ones, zeros, zeros))
    n = cell.state_size
    candidate = torch.tanh(x @ cell.U[3 * n:].T + cell.b[3 * n:])
    torch.testing.assert_close(blind, candidate, rtol=0, atol=1e-14)


def test_gate_jacobians_match_their_formulas():
    cell = randomized()
    n = cell.state_size
    x, s = torch.randn(1, 3), torch.randn(1, 5)
    i, _, o = (g[0] for g in prototype_gates(cell, x, s))
    a = (o * s[0]) @ cell.W.T + x[0] @ cell.U[3 * n:].T + cell.b[3 * n:]
    s_tilde = torch.tanh(a)
    J = gate_jacobians(cell, x, s)
    torch.testing.assert_close(J.i, torch.diag(s_tilde), rtol=0, atol=1e-13)
    torch.testing.assert_close(J.f, torch.diag(s[0]), rtol=0, atol=1e-13)
    read = torch.diag(i * (1 - s_tilde ** 2)) @ cell.W @ torch.diag(s[0])
    torch.testing.assert_close(J.o, read, rtol=0, atol=1e-13)
    assert (J.o != 0).all()                           # dense


def test_gate_jacobians_agree_with_finite_differences():
    cell = randomized()
    x, s = torch.randn(1, 3), torch.randn(1, 5)
    gates = prototype_gates(cell, x, s)
    J = gate_jacobians(cell, x, s)
    eps = 1e-6
    for k, name in enumerate("ifo"):
        for j in range(5):
            up = [g.clone() for g in gates]
            up[k][0, j] += eps
            down = [g.clone() for g in gates]
            down[k][0, j] -= eps
            diff = (prototype_update(cell, x, s, GateValues(*up))
                    - prototype_update(cell, x, s, GateValues(*down)))
            torch.testing.assert_close(diff[0] / (2 * eps),
                                       getattr(J, name)[:, j],
                                       rtol=0, atol=1e-8)


def test_bad_input_is_refused():
    cell = randomized()
    x, s = torch.randn(2, 3), torch.randn(2, 5)
    with pytest.raises(TypeError, match="PrototypeLSTMCell"):
        prototype_gates(NormalizedPrototypeLSTMCell(3, 5), x, s)
    with pytest.raises(ValueError, match="input x"):
        prototype_gates(cell, torch.randn(2, 4), s)
    with pytest.raises(ValueError, match="state"):
        prototype_gates(cell, x, torch.randn(3, 5))
    gates = prototype_gates(cell, x, s)
    with pytest.raises(ValueError, match="gate o of shape"):
        prototype_update(cell, x, s, GateValues(gates.i, gates.f,
                                                torch.ones(2, 4)))
    with pytest.raises(ValueError, match="one example"):
        gate_jacobians(cell, x, s)
