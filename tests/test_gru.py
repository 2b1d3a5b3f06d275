"""lstmlib.cells.gru: the GRU with the reset gate before or after W, PyTorch
equivalence, and the bound |s_t| < 1 that the coupling of z and 1 - z
guarantees. The Cell contract (Recurrent against the loop, gradcheck,
errors on bad input, the round trip through PyTorch) is checked for both
reset placements in tests/test_cell_contract.py."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tests.random_weights import randomize_
from lstmlib import Recurrent
from lstmlib.cells.gru import RESET_PLACEMENTS, GRUCell
from lstmlib.analysis.initialization import initialize_recurrent_, orthogonal_


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def gru_by_hand(cell, x, s):
    """The GRU's equations, block by block, rows r | z | s̃."""
    n = cell.state_size
    W_g, U, b = cell.W_gates, cell.U, cell.b
    r = torch.sigmoid(s @ W_g[:n].T + x @ U[:n].T + b[:n])
    z = torch.sigmoid(s @ W_g[n:].T + x @ U[n:2 * n].T + b[n:2 * n])
    if cell.reset == "before":
        reset_s = (r * s) @ cell.W.T
    else:
        reset_s = r * (s @ cell.W.T + cell.b_W)
    s_tilde = torch.tanh(reset_s + x @ U[2 * n:].T + b[2 * n:])
    return z * s + (1 - z) * s_tilde


# -- the layout ---------------------------------------------------------------
@pytest.mark.parametrize("reset", RESET_PLACEMENTS)
def test_parameter_layout(reset):
    n, m = 5, 3
    cell = GRUCell(m, n, reset=reset)
    assert cell.state_names == ("s",)
    shapes = {k: tuple(v.shape) for k, v in cell.named_parameters()}
    expected = {"W_gates": (2 * n, n), "W": (n, n), "U": (3 * n, m),
                "b": (3 * n,)}
    if reset == "after":
        expected["b_W"] = (n,)
    else:
        assert cell.b_W is None
    assert shapes == expected
    count = 3 * n * n + 3 * n * m + 3 * n + (n if reset == "after" else 0)
    assert sum(p.numel() for p in cell.parameters()) == count
    assert f"reset={reset!r}" in repr(cell)


@pytest.mark.parametrize("reset", RESET_PLACEMENTS)
def test_initialization_biases_zero_except_update(reset):
    n = 6
    cell = GRUCell(2, n, reset=reset, update_bias=2.5)
    b_r, b_z, b_s = cell.b.detach().split(n)
    assert not b_r.any() and not b_s.any() and torch.all(b_z == 2.5)
    if reset == "after":
        assert not cell.b_W.any()
    bound = 1 / math.sqrt(n)
    for w in (cell.W_gates, cell.W, cell.U):
        assert w.abs().max() <= bound and w.std() > bound / 4


def test_recurrent_weights_are_found_by_initialize_recurrent():
    cell = GRUCell(2, 4, reset="after")
    initialize_recurrent_(cell, orthogonal_)
    for block in (*cell.W_gates.detach().split(4), cell.W.detach()):
        assert torch.allclose(block @ block.T, torch.eye(4), atol=1e-12)
    assert not cell.b_W.any()                 # a bias, left alone


# -- the equations ------------------------------------------------------------
@pytest.mark.parametrize("reset", RESET_PLACEMENTS)
def test_gru_equals_its_equations(reset):
    cell = randomize_(GRUCell(3, 4, reset=reset))
    x, s = torch.randn(5, 3), torch.randn(5, 4)
    out, new = cell(x, s)
    assert torch.allclose(new, gru_by_hand(cell, x, s), atol=1e-12)
    assert torch.equal(out, new)              # the output is the state


def same_weights_after(before):
    """A reset="after" cell with the weights of ``before`` and b_W = 0."""
    after = GRUCell(before.input_size, before.state_size, reset="after")
    missing = after.load_state_dict(before.state_dict(), strict=False)
    assert missing.missing_keys == ["b_W"]
    return after


def test_reset_placements_differ_on_the_same_weights():
    before = randomize_(GRUCell(3, 4, reset="before"))
    after = same_weights_after(before)
    x, s = torch.randn(5, 3), torch.randn(5, 4)
    difference = (before(x, s)[1] - after(x, s)[1]).abs().max()
    assert difference > 1e-3


def test_reset_placements_agree_when_the_reset_gate_is_one():
    before = randomize_(GRUCell(3, 4, reset="before"))
    with torch.no_grad():                     # r = σ(40) = 1 in float64
        before.W_gates[:4] = 0
        before.U[:4] = 0
        before.b[:4] = 40.0
    after = same_weights_after(before)
    x, s = torch.randn(5, 3), torch.randn(5, 4)
    # equal up to rounding: "after" sums its products in one fused matmul
    assert torch.allclose(before(x, s)[1], after(x, s)[1], rtol=0,
                          atol=1e-14)


def test_update_gate_one_keeps_the_state_and_zero_overwrites_it():
    """z weighs the old state: z = 1 keeps s_{t-1}, z = 0 writes s̃_t."""
    cell = randomize_(GRUCell(3, 4))
    x, s = torch.randn(5, 3), torch.randn(5, 4).clamp(-0.9, 0.9)
    with torch.no_grad():
        cell.W_gates[4:] = 0
        cell.U[4:8] = 0
        cell.b[4:8] = 40.0                    # z = σ(40) = 1 exactly
    assert torch.equal(cell(x, s)[1], s)
    with torch.no_grad():
        cell.b[4:8] = -800.0                  # z = σ(-800) = 0 exactly
        cell.b[8:] = 25.0                     # s̃ = tanh(≥ 19.1) = 1 exactly
        cell.U[8:] = 0
        cell.W.zero_()
    # the float caveat of the bound below: here s_1 = 1.0 exactly
    assert torch.equal(cell(x, s)[1], torch.ones(5, 4))


# -- PyTorch ------------------------------------------------------------------
@pytest.mark.parametrize("kind", [nn.GRU, nn.GRUCell],
                         ids=lambda kind: kind.__name__)
def test_from_torch_gives_the_reset_after_the_product(kind):
    assert GRUCell.from_torch(kind(3, 4)).reset == "after"


# -- the bound ‖s_t‖_∞ < 1 ----------------------------------------------------
# In exact arithmetic s_t = z ⊙ s_{t-1} + (1 - z) ⊙ s̃_t is, coordinate by
# coordinate, a convex combination with weights z, 1 - z ∈ (0, 1) of
# s_{t-1} and s̃_t = tanh(·) ∈ (-1, 1), so ‖s_0‖_∞ < 1 gives ‖s_t‖_∞ < 1
# for every t, whatever the weights and inputs. In floating point, tanh(a)
# rounds to exactly ±1 for |a| ≥ 19.07 (float64; 9.02 in float32), σ to
# exactly 1 for a ≥ 36.74 (16.64) and to 0 for a ≤ -709.8 (-88.7), and
# then s_t = ±1.0 exactly is possible (see
# test_update_gate_one_keeps_the_state_and_zero_overwrites_it). So:
# * test_gru_state_never_leaves_the_closed_cube asserts max|s_t| ≤ 1 at
#   every step for fully adversarial weights and inputs, float32 and
#   float64. It holds in IEEE arithmetic with round-to-nearest, given that
#   torch's σ and tanh return values in [0, 1] and [-1, 1]: with unit
#   roundoff u (2^-53 in float64, 2^-24 in float32), |s|, |s̃| ≤ 1 and
#   z ∈ [0, 1] give |fl(z s)| ≤ z and |fl(fl(1 - z) s̃)| ≤ fl(1 - z) ≤
#   1 - z + u/2, so the sum is at most 1 + u/2, which rounds to 1 (the
#   next float is 1 + 2u). The computation must stay in this form: the
#   algebraically equal s̃ + z (s - s̃) has no such guarantee.
# * test_gru_state_stays_strictly_inside_the_open_cube asserts the strict
#   max|s_t| < 1 in float64 when the candidate's pre-activations satisfy
#   |a| ≤ 18 (then tanh(a) ≤ 1 - 4.4e-16 < 1 in float64); the gates stay
#   fully adversarial, saturating to exactly 0 or 1.
BOUND_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                          database=None)
SIGNS = ("mixed", "positive", "negative")
scaled = st.tuples(st.floats(-3.0, 3.0), st.sampled_from(SIGNS))
NAMES = ("W_gates", "W", "U", "b", "b_W", "x")


@st.composite
def adversarial_gru(draw, dtype):
    """Weights, inputs and s_0 for a stress test: every tensor gets its own
    scale 10^k, k ∈ [-3, 3], and sign pattern; s_0 sits near ±1."""
    n, m = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    T, seed = draw(st.integers(1, 60)), draw(st.integers(0, 2 ** 31))
    scales = dict(zip(NAMES, draw(st.tuples(*[scaled] * len(NAMES)))))
    g = torch.Generator().manual_seed(seed)

    def tensor(shape, name):
        log10, sign = scales[name]
        v = torch.randn(shape, generator=g, dtype=dtype) * 10.0 ** log10
        return {"mixed": v, "positive": v.abs(), "negative": -v.abs()}[sign]

    params = {"W_gates": tensor((2 * n, n), "W_gates"),
              "W": tensor((n, n), "W"), "U": tensor((3 * n, m), "U"),
              "b": tensor((3 * n,), "b"), "b_W": tensor((n,), "b_W")}
    x = tensor((T, 3, m), "x")
    # s_0 = ±(1 - 10^-d), d ∈ [0.3, 17], kept below 1 in dtype
    d = draw(st.floats(0.3, 17.0))
    below_one = torch.nextafter(torch.ones((), dtype=dtype),
                                torch.zeros((), dtype=dtype))
    magnitude = torch.minimum(torch.tensor(1 - 10.0 ** -d, dtype=dtype),
                              below_one)
    signs = torch.randint(0, 2, (3, n), generator=g).to(dtype) * 2 - 1
    return params, x, signs * magnitude


def gru_with(reset, params, dtype):
    n, m = params["U"].shape[0] // 3, params["U"].shape[1]
    cell = GRUCell(m, n, reset=reset).to(dtype)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            p.copy_(params[name])
    return cell


@pytest.mark.parametrize("reset", RESET_PLACEMENTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gru_state_never_leaves_the_closed_cube(reset, dtype):
    @BOUND_SETTINGS
    @given(adversarial_gru(dtype))
    def check(example):
        params, x, s0 = example
        assert s0.abs().max() < 1
        out, _ = Recurrent(gru_with(reset, params, dtype))(x, s0)
        assert torch.isfinite(out).all()
        assert out.abs().max() <= 1               # every step, every unit

    check()


def candidate_within(params, x, limit):
    """Rescale the candidate's rows (W, U_s̃, b_s̃, b_W together) so that
    |a| ≤ limit for its pre-activation a whenever ‖s_{t-1}‖_∞ ≤ 1: since
    r ∈ [0, 1], |a_j| ≤ Σ_k |W_jk| + |b_W,j| + |U_s̃ x|_j + |b_s̃,j|."""
    n = params["W"].shape[0]
    U_c, b_c = params["U"][2 * n:], params["b"][2 * n:]
    input_part = (x.abs() @ U_c.abs().T).amax(dim=(0, 1))      # (n,)
    worst = (params["W"].abs().sum(dim=1) + params["b_W"].abs()
             + input_part + b_c.abs())
    factor = (limit / worst).clamp(max=1.0)                    # (n,)
    params = dict(params)
    params["W"] = params["W"] * factor[:, None]
    params["b_W"] = params["b_W"] * factor
    params["U"] = torch.cat([params["U"][:2 * n], U_c * factor[:, None]])
    params["b"] = torch.cat([params["b"][:2 * n], b_c * factor])
    return params


@pytest.mark.parametrize("reset", RESET_PLACEMENTS)
def test_gru_state_stays_strictly_inside_the_open_cube(reset):
    assert torch.tanh(torch.tensor(18.0)) < 1       # float64, margin 4 ulp

    @BOUND_SETTINGS
    @given(adversarial_gru(torch.float64))
    def check(example):
        params, x, s0 = example
        params = candidate_within(params, x, limit=18.0)
        out, _ = Recurrent(gru_with(reset, params, torch.float64))(x, s0)
        assert out.abs().max() < 1                # every step, strictly

    check()


# -- bad input ----------------------------------------------------------------
def test_bad_input_raises():
    with pytest.raises(ValueError, match=r"reset.*\['before', 'after'\].*"
                                         r"'middle'"):
        GRUCell(2, 3, reset="middle")
    with pytest.raises(TypeError, match="update_bias.*real number.*str"):
        GRUCell(2, 3, update_bias="1")
    with pytest.raises(ValueError, match="update_bias.*finite.*inf"):
        GRUCell(2, 3, update_bias=float("inf"))
    with pytest.raises(ValueError, match="reset='before'.*reset='after'"):
        GRUCell(2, 3, reset="before").to_torch()
