"""lstmlib.analysis.initialization: recurrent-weight initializers."""
import math

import pytest
import torch
from torch import nn

from lstmlib import Cell, VanillaRNNCell
from lstmlib.analysis.initialization import (initialize_recurrent_, orthogonal_,
                                    unit_column_normal_,
                                    unit_column_normal_std,
                                    unit_column_uniform_,
                                    unit_column_uniform_bound,
                                    xavier_uniform_, xavier_uniform_bound)


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("gamma", [1.0, 0.25, 2.0])
def test_unit_column_uniform_bound_and_variance(gamma):
    n = 400
    r = math.sqrt(3) / (gamma * math.sqrt(n))
    assert unit_column_uniform_bound(n, gamma) == pytest.approx(r, 1e-15)
    w = unit_column_uniform_(torch.empty(n, n), gamma=gamma,
                             generator=generator())
    assert w.abs().max() <= r and w.abs().max() > 0.99 * r
    # n E[w²] = 1/γ²: every column of γW has unit expected squared norm
    assert (gamma * w).square().sum(0).mean() == pytest.approx(1, abs=0.01)
    assert w.mean().abs() < 0.01 * r


def test_unit_column_uniform_uses_rows_as_n():
    w = unit_column_uniform_(torch.empty(900, 10), generator=generator())
    assert w.abs().max() <= math.sqrt(3 / 900)
    assert w.square().sum(0).mean() == pytest.approx(1, abs=0.05)


@pytest.mark.parametrize("gamma", [1.0, 0.25])
def test_unit_column_normal_std_and_variance(gamma):
    n = 400
    std = 1 / (gamma * math.sqrt(n))
    assert unit_column_normal_std(n, gamma) == pytest.approx(std, 1e-15)
    w = unit_column_normal_(torch.empty(n, n), gamma=gamma,
                            generator=generator(1))
    assert w.std().item() == pytest.approx(std, rel=0.01)
    assert (gamma * w).square().sum(0).mean() == pytest.approx(1, abs=0.01)


def test_xavier_uniform_is_torch_xavier_uniform():
    for shape in [(30, 70), (64, 64), (100, 3)]:
        ours = xavier_uniform_(torch.empty(shape), gain=1.5,
                               generator=generator(2))
        theirs = nn.init.xavier_uniform_(torch.empty(shape), gain=1.5,
                                         generator=generator(2))
        assert torch.allclose(ours, theirs, rtol=0, atol=1e-15)
        fan_out, fan_in = shape
        a = 1.5 * math.sqrt(6 / (fan_in + fan_out))
        assert xavier_uniform_bound(fan_in, fan_out, 1.5) == \
            pytest.approx(a, 1e-15)
        assert ours.abs().max() <= a


def test_xavier_is_unit_column_uniform_for_square_weights():
    n = 50
    assert xavier_uniform_bound(n, n) == \
        pytest.approx(unit_column_uniform_bound(n), 1e-15)
    a = xavier_uniform_(torch.empty(n, n), generator=generator(3))
    b = unit_column_uniform_(torch.empty(n, n), generator=generator(3))
    assert torch.allclose(a, b, rtol=0, atol=1e-15)


@pytest.mark.parametrize("shape", [(64, 64), (80, 20), (20, 80)])
@pytest.mark.parametrize("gamma", [1.0, 0.25])
def test_orthogonal_has_equal_singular_values(shape, gamma):
    w = orthogonal_(torch.empty(shape), gamma=gamma, generator=generator())
    q = gamma * w
    k = min(shape)
    gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
    assert torch.allclose(gram, torch.eye(k), rtol=0, atol=1e-12)
    assert torch.allclose(torch.linalg.svdvals(w),
                          torch.full((k,), 1 / gamma), rtol=0, atol=1e-12)
    theirs = nn.init.orthogonal_(torch.empty(shape), gain=1 / gamma)
    assert torch.allclose(torch.linalg.svdvals(theirs),
                          torch.linalg.svdvals(w), rtol=0, atol=1e-12)


def test_orthogonal_is_sign_symmetric():
    """Haar measure is invariant under Q -> -Q; without the sign correction
    LAPACK's QR always returns a negative Q[0, 0]."""
    g = generator(4)
    corners = torch.stack([orthogonal_(torch.empty(3, 3), generator=g)[0, 0]
                           for _ in range(500)])
    assert abs(corners.mean()) < 0.1                  # std 1/√3/√500
    assert (corners > 0).float().mean() == pytest.approx(0.5, abs=0.1)
    raw = torch.linalg.qr(torch.randn(500, 3, 3)).Q[:, 0, 0]
    assert (raw < 0).all()                            # the bias removed


def test_orthogonal_is_reproducible_and_keeps_dtype():
    a = orthogonal_(torch.empty(8, 8, dtype=torch.float32),
                    generator=generator(5))
    b = orthogonal_(torch.empty(8, 8, dtype=torch.float32),
                    generator=generator(5))
    assert a.dtype == torch.float32 and torch.equal(a, b)


@pytest.mark.parametrize("initializer", [unit_column_uniform_,
                                         unit_column_normal_, orthogonal_])
def test_bad_input_is_named(initializer):
    with pytest.raises(TypeError, match="expected a torch.Tensor, got list"):
        initializer([[1.0]])
    with pytest.raises(ValueError, match=r"2-D .* got shape \(3, 4, 5\)"):
        initializer(torch.empty(3, 4, 5))
    with pytest.raises(ValueError, match=r"got shape \(0, 4\)"):
        initializer(torch.empty(0, 4))
    for gamma in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="gamma > 0 and finite"):
            initializer(torch.empty(3, 3), gamma=gamma)
    with pytest.raises(TypeError, match="gamma to be a real number"):
        initializer(torch.empty(3, 3), gamma="1")


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="n to be a positive int, got 0"):
        unit_column_uniform_bound(0)
    with pytest.raises(ValueError, match="fan_in to be a positive int"):
        xavier_uniform_bound(0, 3)
    with pytest.raises(ValueError, match="gain > 0"):
        xavier_uniform_(torch.empty(3, 3), gain=-1.0)
    with pytest.raises(ValueError, match="2-D"):
        xavier_uniform_(torch.empty(3))


def test_initialize_recurrent_touches_only_W():
    cell = VanillaRNNCell(3, 16)
    U, b = cell.U.detach().clone(), cell.b.detach().clone()
    out = initialize_recurrent_(cell, orthogonal_, gamma=0.5,
                                generator=generator())
    assert out is cell and cell.W.requires_grad
    assert torch.allclose(torch.linalg.svdvals(cell.W.detach()),
                          torch.full((16,), 2.0), atol=1e-12)
    assert torch.equal(cell.U, U) and torch.equal(cell.b, b)


class StackedCell(Cell):
    """Two gates' recurrent weights stacked by rows, like PyTorch's."""

    def __init__(self, n):
        super().__init__(2, n)
        self.W_gates = nn.Parameter(torch.zeros(2 * n, n))
        self.Wrong = nn.Parameter(torch.zeros(n, n))    # not W or W_*


def test_initialize_recurrent_works_block_by_block():
    cell = initialize_recurrent_(StackedCell(6), orthogonal_,
                                 generator=generator())
    for block in cell.W_gates.detach().split(6):
        assert torch.allclose(block.T @ block, torch.eye(6), atol=1e-12)
    assert not cell.Wrong.any()


def test_initialize_recurrent_bad_input():
    with pytest.raises(TypeError, match="expected an lstmlib Cell"):
        initialize_recurrent_(nn.Linear(3, 3), orthogonal_)
    with pytest.raises(TypeError, match="initializer to be callable"):
        initialize_recurrent_(VanillaRNNCell(2, 3), "orthogonal")
    cell = StackedCell(4)
    cell.W_bad = nn.Parameter(torch.zeros(5, 4))
    with pytest.raises(ValueError, match=r"W_bad of shape \(k·4, 4\), got"):
        initialize_recurrent_(cell, orthogonal_)

    class NoRecurrentWeight(Cell):
        def __init__(self):
            super().__init__(2, 2)
            self.U = nn.Parameter(torch.zeros(2, 2))

    with pytest.raises(ValueError, match="named W or W_\\*, found none"):
        initialize_recurrent_(NoRecurrentWeight(), orthogonal_)
