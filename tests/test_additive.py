"""AdditiveCell: the write-it-down cell of "Written memories". The Cell
contract (Recurrent against the loop, gradcheck, errors on bad input) is
checked with and without the recurrent write in
tests/test_cell_contract.py."""
import pytest
import torch

from lstmlib import AdditiveCell
from lstmlib.analysis.sensitivity import jacobian_norms, step_jacobians


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


@pytest.mark.parametrize("recurrent_write", [True, False])
def test_equation(recurrent_write):
    cell = AdditiveCell(3, 4, recurrent_write=recurrent_write)
    x, s = torch.randn(2, 3), torch.randn(2, 4)
    pre = x @ cell.U.T + cell.b
    if recurrent_write:
        pre = pre + s @ cell.W.T
    out, new = cell(x, s)
    assert torch.allclose(new, s + torch.tanh(pre), atol=1e-14)
    assert torch.equal(out, new)                  # the output is the state


def test_without_recurrent_write_the_jacobian_is_the_identity():
    cell = AdditiveCell(3, 5, recurrent_write=False)
    assert "W" not in dict(cell.named_parameters())
    x = 3 * torch.randn(40, 3)
    J, _ = step_jacobians(cell, x)
    assert torch.equal(J, torch.eye(5).expand(40, 5, 5))
    assert torch.allclose(jacobian_norms(cell, x), torch.ones(40),
                          atol=1e-14)


def test_recurrent_write_jacobian_is_identity_plus_interference():
    cell = AdditiveCell(2, 4)
    x = torch.randn(6, 2)
    J, states = step_jacobians(cell, x)
    for t in range(6):
        a = states[t] @ cell.W.T + x[t] @ cell.U.T + cell.b
        expected = torch.eye(4) + torch.diag(1 - torch.tanh(a) ** 2) @ cell.W
        assert torch.allclose(J[t], expected, atol=1e-12)


def test_bad_nonlinearity():
    with pytest.raises(ValueError, match="nonlinearity.*'softsign'"):
        AdditiveCell(2, 3, nonlinearity="softsign")
