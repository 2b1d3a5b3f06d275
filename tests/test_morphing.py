"""lstmlib.analysis.morphing: refitted and fixed affine read-outs of a
fixed-weight cell, on constructions whose answer is known exactly."""
import pytest
import torch

from lstmlib import DELAYED_RECALL_BASELINE_MSE, VanillaRNNCell
from lstmlib.analysis.morphing import (apply_affine_readout,
                                       fit_affine_readout,
                                       recall_readout_errors)

pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def relu_holder(m, W=None):
    """2m ReLU units holding v as (relu(v), relu(-v)); W = I unless given."""
    cell = VanillaRNNCell(m, 2 * m, nonlinearity="relu")
    with torch.no_grad():
        cell.W.copy_(torch.eye(2 * m) if W is None else W)
        cell.U.copy_(torch.cat([torch.eye(m), -torch.eye(m)]))
        cell.b.zero_()
    return cell


def test_the_least_squares_readout_recovers_an_affine_map():
    s = torch.randn(200, 5)
    R = torch.randn(6, 3)
    v = apply_affine_readout(R, s)
    assert torch.allclose(fit_affine_readout(s, v), R, atol=1e-10)


def test_a_state_that_stays_put_is_read_by_both_readouts():
    found = recall_readout_errors(relu_holder(3), [1, 7, 40],
                                  train_size=256, test_size=128)
    assert found.delays == (1, 7, 40)
    assert max(found.refitted) < 1e-20 and max(found.fixed) < 1e-20
    assert min(found.input_dependence) > 0.5


def test_a_moved_state_is_morphed_not_vanished():
    """W swaps the two halves: the state holds -v's code at even delays.
    The refitted read-out still recovers v exactly; the fixed one reads -v,
    an error of E[(2v)^2] = 4/3."""
    m = 2
    swap = torch.roll(torch.eye(2 * m), m, dims=0)
    found = recall_readout_errors(relu_holder(m, swap), [1, 2, 3],
                                  train_size=4096, test_size=4096)
    assert max(found.refitted) < 1e-20
    assert found.fixed[0] < 1e-20 and found.fixed[2] < 1e-20   # odd steps
    assert found.fixed[1] == pytest.approx(4 * DELAYED_RECALL_BASELINE_MSE,
                                           rel=0.05)


def test_a_cell_that_forgets_is_at_chance():
    """W = 0: after step 2 the state is tanh(b) whatever v was."""
    cell = VanillaRNNCell(3, 6)
    with torch.no_grad():
        cell.W.zero_()
    found = recall_readout_errors(cell, [1, 2, 5], train_size=2048,
                                  test_size=2048)
    assert found.refitted[0] < 0.05 * DELAYED_RECALL_BASELINE_MSE
    for k in (1, 2):
        assert found.input_dependence[k] < 1e-12        # rounding only
        assert found.refitted[k] == pytest.approx(
            DELAYED_RECALL_BASELINE_MSE, rel=0.05)


def test_the_cell_is_left_as_it_was_and_errors_name_the_problem():
    cell = VanillaRNNCell(2, 4)
    before = [p.detach().clone() for p in cell.parameters()]
    recall_readout_errors(cell, [1, 3], train_size=64, test_size=32)
    assert all(torch.equal(a, b) for a, b in zip(before, cell.parameters()))
    with pytest.raises(ValueError, match="at least one delay"):
        recall_readout_errors(cell, [])
    with pytest.raises(ValueError, match="each delay"):
        recall_readout_errors(cell, [1, 0])
    with pytest.raises(ValueError, match="same B"):
        fit_affine_readout(torch.zeros(4, 2), torch.zeros(3, 1))
