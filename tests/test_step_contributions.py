"""lstmlib.analysis.step_contributions: the gradient of the shared input
weights, one term per step."""
import pytest
import torch

from lstmlib import Recurrent, VanillaRNNCell
from lstmlib.analysis.step_contributions import input_gradient_by_step
from lstmlib.cells.gru import GRUCell
from lstmlib.cells.lstm import BasicLSTMCell, PseudoLSTMCell
from lstmlib.cells.prototype import PrototypeLSTMCell

pytestmark = pytest.mark.usefixtures("float64_and_seeded")

CELLS = [lambda: VanillaRNNCell(3, 5), lambda: PrototypeLSTMCell(3, 5),
         lambda: GRUCell(3, 5), lambda: GRUCell(3, 5, reset="after"),
         lambda: PseudoLSTMCell(3, 5), lambda: BasicLSTMCell(3, 5)]


def loss_of(outputs):
    return (outputs[-1] * torch.arange(1.0, 6.0)).sum() + outputs.square().sum()


@pytest.mark.parametrize("make", CELLS)
def test_the_terms_sum_to_the_gradient_of_U(make):
    cell = make()
    x = torch.randn(8, 4, 3)
    G = input_gradient_by_step(cell, x, loss_of)
    assert G.shape == (8, *cell.U.shape)
    outputs, _ = Recurrent(cell)(x)
    loss_of(outputs).backward()
    assert torch.allclose(G.sum(dim=0), cell.U.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", CELLS)
def test_a_step_after_the_loss_contributes_nothing(make):
    cell = make()
    G = input_gradient_by_step(cell, torch.randn(7, 2, 3),
                               lambda out: out[3].sum())
    assert torch.equal(G[4:], torch.zeros_like(G[4:]))
    assert G[3].abs().max() > 0


def test_each_term_is_its_step_error_times_its_input():
    cell = VanillaRNNCell(2, 3)
    x = torch.randn(5, 4, 2)
    G = input_gradient_by_step(cell, x, lambda out: out[-1].sum())
    with torch.no_grad():
        s_prev = Recurrent(cell)(x[:-1])[1]                 # s_{T-1}
        a = s_prev @ cell.W.T + x[-1] @ cell.U.T + cell.b   # a_T
    g_last = 1 - torch.tanh(a).square()              # ∂(Σ_j s_T,j)/∂a_T
    assert torch.allclose(G[-1], g_last.T @ x[-1], atol=1e-12)


def test_rejects_what_it_cannot_split():
    with pytest.raises(TypeError, match="input weights U"):
        input_gradient_by_step(torch.nn.Linear(2, 2), torch.randn(3, 1, 2),
                               lambda out: out.sum())
    with pytest.raises(ValueError, match=r"\(T, B, 3\)"):
        input_gradient_by_step(VanillaRNNCell(3, 4), torch.randn(3, 2),
                               lambda out: out.sum())
