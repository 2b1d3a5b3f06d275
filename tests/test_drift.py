"""lstmlib.analysis.drift: gate trajectories, saturation, and drift during
training."""
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lstmlib import Cell, FinalStateRegressor, Recurrent, VanillaRNNCell
from lstmlib.analysis.drift import (
    DriftLog,
    gate_trajectory,
    saturated_fraction,
    train_ensemble_logging_drift,
    train_regression_logging_drift,
)
from lstmlib.cells.gru import GRUCell
from lstmlib.cells.prototype import NormalizedPrototypeLSTMCell, PrototypeLSTMCell
from lstmlib.experiments.training import train_regression


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def prototype_gates_by_hand(cell, x_t, s):
    """i | f | o of the prototype, written out: (B, 3n)."""
    n = cell.state_size
    pre = s @ cell.W_gates.T + x_t @ cell.U[:3 * n].T + cell.b[:3 * n]
    return torch.sigmoid(pre)


class TwoStateGatedCell(Cell):
    """A toy cell with a tuple state (h, c) and one gate computed with
    F.sigmoid: c_t = g ⊙ c + x, h_t = c_t, g = σ(w c)."""

    state_names = ("h", "c")

    def __init__(self, n):
        super().__init__(n, n)
        self.w = nn.Parameter(torch.randn(n))

    def step(self, x, state):
        _, c = state
        g = F.sigmoid(self.w * c)
        c = g * c + x
        return c, (c, c)


# -- gate_trajectory ---------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: PrototypeLSTMCell(3, 5),
    lambda: NormalizedPrototypeLSTMCell(3, 5),
    lambda: GRUCell(3, 5),
    lambda: GRUCell(3, 5, reset="after"),
])
def test_states_are_those_of_recurrent(make):
    cell = make()
    x, s0 = torch.randn(9, 2, 3), torch.randn(2, 5)
    outputs, final = Recurrent(cell, fused=False)(x, s0)   # the loop, step by step
    states, gates = gate_trajectory(cell, x, s0)
    assert torch.equal(states, outputs)
    assert torch.equal(states[-1], final)
    k = 3 if isinstance(cell, PrototypeLSTMCell) else 2
    assert gates.shape == (9, 2, k * 5)
    assert ((gates > 0) & (gates < 1)).all()


def test_prototype_gates_are_its_equations():
    cell = PrototypeLSTMCell(3, 4)
    with torch.no_grad():
        cell.b.normal_()
    x, s0 = torch.randn(6, 2, 3), torch.randn(2, 4)
    states, gates = gate_trajectory(cell, x, s0)
    previous = torch.cat([s0[None], states[:-1]])
    for t in range(6):
        expected = prototype_gates_by_hand(cell, x[t], previous[t])
        assert torch.allclose(gates[t], expected, atol=1e-14)


def test_tuple_states_and_functional_sigmoid_are_recorded():
    cell = TwoStateGatedCell(3)
    x = torch.randn(4, 2, 3)
    (h, c), gates = gate_trajectory(cell, x)
    assert h.shape == c.shape == gates.shape == (4, 2, 3)
    assert torch.allclose(gates[0], torch.full((2, 3), 0.5))  # c_0 = 0


def test_a_cell_without_sigmoids_is_refused():
    with pytest.raises(ValueError, match="computes no sigmoid"):
        gate_trajectory(VanillaRNNCell(3, 4), torch.randn(5, 1, 3))


def test_bad_inputs_are_refused_by_the_cell():
    cell = PrototypeLSTMCell(3, 4)
    with pytest.raises(ValueError, match="shape"):
        gate_trajectory(cell, torch.randn(5, 3))
    with pytest.raises(ValueError, match="state 's'"):
        gate_trajectory(cell, torch.randn(5, 2, 3), torch.zeros(2, 5))


# -- saturated_fraction ------------------------------------------------------
def test_saturated_fraction_counts_flat_sigmoids():
    # sigma' = g (1 - g) < 0.01 holds for g < 0.010102 or g > 0.989898
    gates = torch.tensor([[0.005, 0.5, 0.995, 0.98],
                          [0.0100, 0.0102, 0.9900, 0.9898]])
    frac = saturated_fraction(gates)
    assert torch.equal(frac, torch.tensor([0.5, 0.5]))
    at_most_a_quarter = saturated_fraction(gates, max_slope=0.25)
    assert torch.equal(at_most_a_quarter, torch.tensor([0.75, 1.0]))
    edge = (1 - math.sqrt(1 - 4 * 0.01)) / 2        # g (1 - g) = 0.01
    assert 0.0101 < edge < 0.0102


def test_saturated_fraction_keeps_the_time_axis():
    gates = torch.full((7, 3, 4), 0.5)
    gates[3, 0, 0] = 1e-6
    frac = saturated_fraction(gates)
    assert frac.shape == (7,)
    assert frac[3] == 1 / 12 and frac.sum() == 1 / 12


def test_saturated_fraction_refuses_bad_arguments():
    with pytest.raises(TypeError, match="Tensor"):
        saturated_fraction([0.5, 0.5])
    with pytest.raises(ValueError, match="max_slope"):
        saturated_fraction(torch.rand(3), max_slope=0.3)
    with pytest.raises(ValueError, match="max_slope"):
        saturated_fraction(torch.rand(3), max_slope=0.0)


# -- train_regression_logging_drift ------------------------------------------
def make_batch(generator):
    x = torch.randn(6, 8, 2, generator=generator)
    return x, x.sum(dim=0)[:, :1]


@pytest.mark.parametrize("cls", [PrototypeLSTMCell, GRUCell])
def test_training_is_that_of_train_regression(cls):
    torch.manual_seed(1)
    a = FinalStateRegressor(cls(2, 4), 1)
    b = FinalStateRegressor(cls(2, 4), 1)
    b.load_state_dict(a.state_dict())
    probe = torch.randn(6, 3, 2)
    expected = train_regression(a, make_batch, steps=12, lr=1e-2, seed=3)
    losses, log = train_regression_logging_drift(
        b, make_batch, probe, steps=12, every=5, lr=1e-2, seed=3)
    assert losses == expected
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert isinstance(log, DriftLog)
    assert log.step.tolist() == [0, 5, 10, 12]
    # the last probe is the trained cell's
    states, gates = gate_trajectory(b.recurrent.cell, probe)
    assert math.isclose(log.state_norm[-1].item(),
                        states.norm(dim=-1).max().item(), rel_tol=1e-12)
    assert math.isclose(log.saturated[-1].item(),
                        saturated_fraction(gates).mean().item(),
                        rel_tol=1e-12)


def test_a_gru_state_stays_in_the_unit_cube_during_training():
    model = FinalStateRegressor(GRUCell(2, 4), 1)
    _, log = train_regression_logging_drift(
        model, make_batch, torch.randn(6, 3, 2), steps=10, every=3, lr=0.1)
    assert (log.state_norm < math.sqrt(4)).all()        # |s_j| < 1


def test_training_arguments_are_checked():
    model = FinalStateRegressor(PrototypeLSTMCell(2, 4), 1)
    with pytest.raises(ValueError, match="steps"):
        train_regression_logging_drift(model, make_batch,
                                       torch.randn(6, 3, 2), steps=0)
    with pytest.raises(ValueError, match="every"):
        train_regression_logging_drift(model, make_batch,
                                       torch.randn(6, 3, 2), steps=3,
                                       every=0)
    with pytest.raises(TypeError, match="model.recurrent.cell"):
        train_regression_logging_drift(nn.Linear(2, 1), make_batch,
                                       torch.randn(6, 3, 2), steps=3)


# -- train_ensemble_logging_drift --------------------------------------------
@pytest.mark.parametrize("cls", [PrototypeLSTMCell,
                                 NormalizedPrototypeLSTMCell, GRUCell])
def test_an_ensemble_trains_each_model_as_alone(cls):
    torch.manual_seed(2)
    alone = [FinalStateRegressor(cls(2, 4), 1) for _ in range(3)]
    together = [FinalStateRegressor(cls(2, 4), 1) for _ in range(3)]
    for a, b in zip(alone, together):
        b.load_state_dict(a.state_dict())
    probe = torch.randn(6, 3, 2)
    expected = [train_regression_logging_drift(
        model, make_batch, probe, steps=9, every=4, lr=0.05, seed=seed,
        clip_norm=0.1) for model, seed in zip(alone, (5, 6, 7))]
    losses, logs = train_ensemble_logging_drift(
        together, make_batch, probe, steps=9, every=4, lr=0.05,
        seeds=(5, 6, 7), clip_norm=0.1)
    assert losses.shape == (9, 3)
    for k, (want_losses, want_log) in enumerate(expected):
        assert torch.allclose(losses[:, k], torch.tensor(want_losses),
                              rtol=1e-10, atol=1e-12)
        assert logs[k].step.tolist() == want_log.step.tolist() == [0, 4, 8, 9]
        assert torch.allclose(logs[k].state_norm, want_log.state_norm,
                              rtol=1e-10, atol=0)
        assert torch.allclose(logs[k].saturated, want_log.saturated,
                              rtol=0, atol=1e-12)
        for p, q in zip(alone[k].parameters(), together[k].parameters()):
            assert torch.allclose(p, q, rtol=1e-10, atol=1e-12)


def test_an_ensemble_without_clipping_is_adam_on_each_model():
    torch.manual_seed(3)
    a, b = (FinalStateRegressor(GRUCell(2, 4), 1) for _ in range(2))
    b.load_state_dict(a.state_dict())
    probe = torch.randn(6, 3, 2)
    want, _ = train_regression_logging_drift(
        a, make_batch, probe, steps=5, lr=0.1, seed=1, clip_norm=None)
    losses, _ = train_ensemble_logging_drift(
        [b], make_batch, probe, steps=5, lr=0.1, seeds=[1], clip_norm=None)
    assert torch.allclose(losses[:, 0], torch.tensor(want), rtol=1e-10)


def test_ensemble_arguments_are_checked():
    models = [FinalStateRegressor(PrototypeLSTMCell(2, 4), 1)
              for _ in range(2)]
    probe = torch.randn(6, 3, 2)
    with pytest.raises(ValueError, match="steps"):
        train_ensemble_logging_drift(models, make_batch, probe, steps=0,
                                     seeds=[0, 1])
    with pytest.raises(ValueError, match="every"):
        train_ensemble_logging_drift(models, make_batch, probe, steps=2,
                                     seeds=[0, 1], every=0)
    with pytest.raises(ValueError, match="one seed per model"):
        train_ensemble_logging_drift(models, make_batch, probe, steps=2,
                                     seeds=[0])
    with pytest.raises(TypeError, match="one kind"):
        mixed = [models[0], FinalStateRegressor(GRUCell(2, 4), 1)]
        train_ensemble_logging_drift(mixed, make_batch, probe, steps=2,
                                     seeds=[0, 1])
    with pytest.raises(TypeError, match="model.recurrent.cell"):
        train_ensemble_logging_drift([nn.Linear(2, 1)], make_batch, probe,
                                     steps=2, seeds=[0])
