"""The fused whole-sequence passes compute the plain loop's function.

In float64, to 1e-10: outputs, final states, and the gradients with
respect to the input, the initial state and every parameter, for both
layouts of :class:`Recurrent`, with and without an initial state, for
every cell the fused path covers; the plain loop for everything else; and
``torch.autograd.gradcheck`` of each Function.
"""
from functools import partial

import pytest
import torch

from lstmlib.cells.kernels import FusedGRU, FusedLSTM, FusedVanillaRNN
from lstmlib.cells.gru import GRUCell
from lstmlib.cells.lstm import BasicLSTMCell, LSTMVariantCell, PeepholeLSTMCell
from lstmlib.cells.prototype import PrototypeLSTMCell
from lstmlib.cells.recurrent import Cell, Recurrent
from lstmlib.cells.registry import REGISTERED_CELLS
from lstmlib.cells.vanilla import VanillaRNNCell

from tests.random_weights import randomize_uniform_

pytestmark = pytest.mark.usefixtures("float64_and_seeded")

TOL = 1e-10

def _offers_fast_path(make) -> bool:
    cell = make()
    x = torch.zeros(2, 1, cell.input_size)
    return cell.forward_sequence(x, cell.initial_state(1)) is not None


#: Every registered cell that offers a fast path, with its defaults, and
#: the settings beside the defaults that keep it.
FUSED_CELLS = {
    **{entry.name: partial(entry.build, 3, 4) for entry in REGISTERED_CELLS
       if _offers_fast_path(partial(entry.build, 3, 4))},
    "GRU, reset after": lambda: GRUCell(3, 4, reset="after"),
    "vanilla RNN, relu": lambda: VanillaRNNCell(3, 4, nonlinearity="relu"),
    "vanilla RNN, sigmoid": lambda: VanillaRNNCell(3, 4,
                                                   nonlinearity="sigmoid"),
}


def test_the_three_cells_with_a_kernel_offer_their_fast_path():
    assert {name for name in FUSED_CELLS if "," not in name} == {
        "vanilla RNN", "basic LSTM"}        # the GRU's default: reset before


def _randomized(cell):
    """Every parameter from U(-1, 1), so that no bias is zero and no
    gradient vanishes by construction (larger than randomize_'s normal
    draws: the kernels must hold where the gates saturate too)."""
    return randomize_uniform_(cell, 1.0)


def _parts(state):
    return state if isinstance(state, tuple) else (state,)


def _random_state(cell, B):
    state = tuple(torch.randn(B, cell.state_size, requires_grad=True)
                  for _ in cell.state_names)
    return state if len(state) > 1 else state[0]


def _run_and_differentiate(recurrent, x, state):
    """Outputs, final state and the gradients of a random linear function
    of both with respect to x, the initial state and the parameters."""
    out, final = recurrent(x, state)
    generator = torch.Generator().manual_seed(1)
    loss = (out * torch.randn(out.shape, generator=generator)).sum()
    for part in _parts(final):
        loss = loss + (part * torch.randn(part.shape,
                                          generator=generator)).sum()
    wrt = [x, *(_parts(state) if state is not None else ()),
           *recurrent.cell.parameters()]
    return [out, *_parts(final), *torch.autograd.grad(loss, wrt)]


@pytest.mark.parametrize("name", FUSED_CELLS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("T", [1, 6])
def test_fused_equals_the_plain_loop(name, batch_first, with_state, T):
    cell = _randomized(FUSED_CELLS[name]())
    B = 3
    shape = (B, T, 3) if batch_first else (T, B, 3)
    x = torch.randn(*shape, requires_grad=True)
    state = _random_state(cell, B) if with_state else None
    fused = Recurrent(cell, batch_first=batch_first, fused=True)
    plain = Recurrent(cell, batch_first=batch_first, fused=False)
    got = _run_and_differentiate(fused, x, state)
    expected = _run_and_differentiate(plain, x, state)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        assert torch.allclose(g, e, rtol=0, atol=TOL), (g - e).abs().max()


@pytest.mark.parametrize("name", FUSED_CELLS)
def test_fused_inference_equals_the_plain_loop(name):
    cell = _randomized(FUSED_CELLS[name]())
    x, state = torch.randn(7, 2, 3), _random_state(cell, 2)
    with torch.no_grad():
        out, final = Recurrent(cell, fused=True)(x, state)
        out_plain, final_plain = Recurrent(cell, fused=False)(x, state)
    assert not out.requires_grad
    assert torch.allclose(out, out_plain, rtol=0, atol=TOL)
    for g, e in zip(_parts(final), _parts(final_plain)):
        assert torch.allclose(g, e, rtol=0, atol=TOL)


@pytest.mark.parametrize("name", FUSED_CELLS)
def test_the_kernels_run_outside_autocast(name):
    """Under bfloat16 autocast a kernel computes in its weights' dtype:
    outputs and gradients are those computed without autocast, exactly."""
    cell = _randomized(FUSED_CELLS[name]()).float()
    x = torch.randn(7, 2, 3, dtype=torch.float32, requires_grad=True)
    results = []
    for enabled in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            out, _ = Recurrent(cell, fused=True)(x)
        assert out.dtype == torch.float32
        results.append([out.detach(), *torch.autograd.grad(
            out.sum(), [x, *cell.parameters()])])
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_the_fused_path_is_taken_and_the_plain_one_on_request():
    cell = BasicLSTMCell(3, 4)
    x = torch.randn(5, 2, 3)
    out, _ = Recurrent(cell, fused=True)(x)
    assert type(out.grad_fn).__name__ == "FusedLSTMBackward"
    out, _ = Recurrent(cell, fused=False)(x)
    assert type(out.grad_fn).__name__ != "FusedLSTMBackward"


def test_frozen_parameters_and_an_input_that_needs_a_gradient():
    cell = _randomized(BasicLSTMCell(3, 4))
    cell.requires_grad_(False)
    x = torch.randn(5, 2, 3, requires_grad=True)
    (g,) = torch.autograd.grad(Recurrent(cell, fused=True)(x)[0].sum(), x)
    (e,) = torch.autograd.grad(Recurrent(cell, fused=False)(x)[0].sum(), x)
    assert torch.allclose(g, e, rtol=0, atol=TOL)


class _LoggingLSTMCell(BasicLSTMCell):
    """A subclass may change the step; the fused path must not guess."""

    def step(self, x_proj, state):
        self.calls = getattr(self, "calls", 0) + 1
        return super().step(x_proj, state)


@pytest.mark.parametrize("make", [
    lambda: GRUCell(3, 4, reset="before"),
    lambda: PrototypeLSTMCell(3, 4),
    lambda: LSTMVariantCell(3, 4, diff1=True),
    lambda: PeepholeLSTMCell(3, 4),
    lambda: _LoggingLSTMCell(3, 4),
])
def test_unsupported_cells_run_the_plain_loop(make):
    cell = _randomized(make())
    x = torch.randn(5, 2, 3)
    assert cell.forward_sequence(x, cell.initial_state(2)) is None
    got = Recurrent(cell, fused=True)(x)[0]
    expected = Recurrent(cell, fused=False)(x)[0]
    assert torch.equal(got, expected)
    if isinstance(cell, _LoggingLSTMCell):
        assert cell.calls == 10                 # 5 steps, twice


def test_a_step_set_on_the_instance_runs_the_plain_loop():
    cell = BasicLSTMCell(3, 4)
    calls = []

    def step(x_proj, state):
        calls.append(1)
        return BasicLSTMCell.step(cell, x_proj, state)

    cell.step = step
    assert cell.forward_sequence(torch.randn(4, 2, 3),
                                 cell.initial_state(2)) is None
    Recurrent(cell, fused=True)(torch.randn(4, 2, 3))
    assert len(calls) == 4


class _NamedLSTMCell(BasicLSTMCell):
    """A subclass that keeps the step keeps the fast path."""
    label = "named"


def test_a_subclass_that_keeps_the_step_keeps_the_fast_path():
    cell = _NamedLSTMCell(3, 4)
    out, _ = Recurrent(cell)(torch.randn(5, 2, 3))
    assert type(out.grad_fn).__name__ == "FusedLSTMBackward"


class _DoublingCell(Cell):
    """A new cell with its own fast path: s_t = 2 s_{t-1} + x_t, and a
    whole-sequence pass (a cumulative sum) in forward_sequence."""

    def step(self, x_proj, s):
        s = 2 * s + x_proj
        return s, s

    def forward_sequence(self, x, s):
        self.fast_calls = getattr(self, "fast_calls", 0) + 1
        T = x.shape[0]
        powers = 2.0 ** torch.arange(T, dtype=x.dtype)          # 2^t
        weights = torch.tril(powers[:, None] / powers[None, :])  # 2^(t-k)
        out = torch.einsum("tk,kbn->tbn", weights, x) \
            + (2 * powers)[:, None, None] * s
        return out, out[-1]


def test_recurrent_runs_a_cells_own_fast_path_and_it_equals_the_loop():
    cell = _DoublingCell(3, 3)
    x, s0 = torch.randn(6, 2, 3), torch.randn(2, 3)
    fast, fast_final = Recurrent(cell)(x, s0)
    assert cell.fast_calls == 1
    loop, loop_final = Recurrent(cell, fused=False)(x, s0)
    assert cell.fast_calls == 1
    assert torch.allclose(fast, loop, rtol=0, atol=TOL)
    assert torch.allclose(fast_final, loop_final, rtol=0, atol=TOL)


def test_forward_mode_and_torch_func_use_the_plain_loop():
    cell = _randomized(VanillaRNNCell(3, 4))
    x, s0 = torch.randn(5, 2, 3), torch.randn(2, 4)
    direction = torch.randn(2, 4)

    def final(s):
        return Recurrent(cell, fused=True)(x, s)[1]

    def final_plain(s):
        return Recurrent(cell, fused=False)(x, s)[1]

    _, got = torch.func.jvp(final, (s0,), (direction,))
    _, expected = torch.func.jvp(final_plain, (s0,), (direction,))
    assert torch.allclose(got, expected, rtol=0, atol=TOL)
    jac = torch.func.jacrev(final)(s0)
    jac_plain = torch.func.jacrev(final_plain)(s0)
    assert torch.allclose(jac, jac_plain, rtol=0, atol=TOL)


def test_recurrent_refuses_a_fused_flag_that_is_not_a_bool():
    with pytest.raises(TypeError, match="fused"):
        Recurrent(BasicLSTMCell(3, 4), fused="yes")


def _leaf(*shape):
    return (torch.rand(*shape) * 2 - 1).requires_grad_()


def test_gradcheck_fused_lstm():
    T, B, m, n = 4, 2, 3, 2
    inputs = (_leaf(T, B, m), _leaf(B, n), _leaf(B, n), _leaf(4 * n, n),
              _leaf(4 * n, m), _leaf(4 * n))
    assert torch.autograd.gradcheck(FusedLSTM.apply, inputs)


def test_gradcheck_fused_gru():
    T, B, m, n = 4, 2, 3, 2
    inputs = (_leaf(T, B, m), _leaf(B, n), _leaf(2 * n, n), _leaf(n, n),
              _leaf(3 * n, m), _leaf(3 * n), _leaf(n))
    assert torch.autograd.gradcheck(FusedGRU.apply, inputs)


@pytest.mark.parametrize("nonlinearity", ["tanh", "sigmoid", "relu"])
def test_gradcheck_fused_vanilla(nonlinearity):
    T, B, m, n = 4, 2, 3, 2
    inputs = (_leaf(T, B, m), _leaf(B, n), _leaf(n, n), _leaf(n, m),
              _leaf(n))

    def f(*args):
        return FusedVanillaRNN.apply(*args, nonlinearity)

    assert torch.autograd.gradcheck(f, inputs)


def test_a_state_given_as_a_list():
    cell = _randomized(BasicLSTMCell(3, 4))
    x, h0, c0 = torch.randn(5, 2, 3), torch.randn(2, 4), torch.randn(2, 4)
    out, (h, c) = Recurrent(cell, fused=True)(x, [h0, c0])
    expected, (h_e, c_e) = Recurrent(cell, fused=False)(x, (h0, c0))
    for got, want in ((out, expected), (h, h_e), (c, c_e)):
        assert torch.allclose(got, want, rtol=0, atol=TOL)


def test_the_gru_state_stays_strictly_inside_the_open_cube():
    """The GRU chapter's bound, searched by hypothesis as in test_gru.py,
    holds on the fast path too: it keeps the cell's convex update
    z s + (1 - z) s̃, whose rounding cannot reach ±1."""
    from hypothesis import given

    from tests.test_gru import (
        BOUND_SETTINGS,
        adversarial_gru,
        candidate_within,
        gru_with,
    )

    @BOUND_SETTINGS
    @given(adversarial_gru(torch.float64))
    def check(example):
        params, x, s0 = example
        params = candidate_within(params, x, limit=18.0)
        cell = gru_with("after", params, torch.float64)
        out, _ = Recurrent(cell, fused=True)(x, s0)
        assert out.abs().max() < 1

    check()
