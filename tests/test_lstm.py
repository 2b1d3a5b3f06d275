"""lstmlib.cells.lstm: the pseudo LSTM, the eight variants between it and the
basic LSTM, the basic LSTM (checked against PyTorch) and the LSTM with
peepholes, each checked against its equations written out by hand. The
Cell contract (Recurrent against the loop, gradcheck, errors on bad input,
the round trip through PyTorch) is checked for all of them in
tests/test_cell_contract.py."""
import itertools

import pytest
import torch
from torch import nn

from lstmlib import Recurrent
from lstmlib.analysis.initialization import initialize_recurrent_, orthogonal_
from lstmlib.cells.lstm import (
    LSTM_VARIANTS,
    PEEPHOLES,
    BasicLSTMCell,
    LSTMVariantCell,
    PeepholeLSTMCell,
    PseudoLSTMCell,
)
from lstmlib.cells.prototype import PrototypeLSTMCell
from tests.random_weights import randomize_

m, n, T, B = 3, 4, 6, 2
sig, phi = torch.sigmoid, torch.tanh


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def data(T=T, B=B):
    return torch.randn(T, B, m), torch.randn(B, n), torch.randn(B, n)


def blocks(p, k=4):
    return p.detach().split(n)[:k]


def all_cells():
    cells = {"pseudo": PseudoLSTMCell(m, n), "basic": BasicLSTMCell(m, n)}
    for number, keywords in LSTM_VARIANTS.items():
        cells[f"variant{number}"] = LSTMVariantCell(m, n, **keywords)
    for kind in PEEPHOLES:
        cells[f"peephole-{kind}"] = PeepholeLSTMCell(m, n, peephole=kind)
    return cells


# -- initialization and layout ----------------------------------------------
@pytest.mark.parametrize("name", list(all_cells()))
def test_initialization(name):
    cell = all_cells()[name]
    b = cell.b.detach()
    assert b.shape == (4 * n,) and cell.U.shape == (4 * n, m)
    assert torch.equal(b[n:2 * n], torch.ones(n))        # forget_bias = 1
    assert torch.equal(b[:n], torch.zeros(n))
    assert torch.equal(b[2 * n:], torch.zeros(2 * n))
    for pname, p in cell.named_parameters():
        if pname in ("Q", "Q_o"):
            assert torch.equal(p, torch.zeros_like(p))   # peepholes off
        elif pname != "b":
            assert p.abs().max() <= n ** -0.5 and p.std() > 0.1
    assert cell.state_names == (("s",) if name == "pseudo" else ("h", "c"))


def test_forget_bias_keyword_and_reset():
    cell = BasicLSTMCell(m, n, forget_bias=2.5)
    assert torch.equal(cell.b[n:2 * n].detach(), torch.full((n,), 2.5))
    with torch.no_grad():
        cell.b.fill_(7.0)
    cell.reset_parameters()
    assert cell.b.detach().abs().sum() == 2.5 * n


def test_parameter_layouts():
    pseudo, basic = PseudoLSTMCell(m, n), BasicLSTMCell(m, n)
    assert {k: tuple(v.shape) for k, v in pseudo.state_dict().items()} == {
        "W_gates": (3 * n, n), "W": (n, n), "U": (4 * n, m), "b": (4 * n,)}
    shapes = {"W": (4 * n, n), "U": (4 * n, m), "b": (4 * n,)}
    assert {k: tuple(v.shape) for k, v in basic.state_dict().items()} \
        == shapes
    for keywords in LSTM_VARIANTS.values():
        variant = LSTMVariantCell(m, n, **keywords)
        assert {k: tuple(v.shape) for k, v in variant.state_dict().items()} \
            == shapes
    full = PeepholeLSTMCell(m, n)
    diagonal = PeepholeLSTMCell(m, n, peephole="diagonal")
    assert full.Q.shape == (2 * n, n) and full.Q_o.shape == (n, n)
    assert diagonal.Q.shape == (2 * n,) and diagonal.Q_o.shape == (n,)


# -- each cell equals its equations written out by hand ---------------------
def test_pseudo_lstm_equals_its_equations():
    cell = randomize_(PseudoLSTMCell(m, n))
    W_i, W_f, W_o = blocks(cell.W_gates, 3)
    U_i, U_f, U_o, U_s = blocks(cell.U)
    b_i, b_f, b_o, b_s = blocks(cell.b)
    x, _, s = data()
    out, final = Recurrent(cell)(x, s)
    for t in range(T):
        p = phi(s)                                   # φ(s_{t-1})
        i = sig(p @ W_i.T + x[t] @ U_i.T + b_i)
        f = sig(p @ W_f.T + x[t] @ U_f.T + b_f)
        o = sig(p @ W_o.T + x[t] @ U_o.T + b_o)
        s_tilde = phi((o * p) @ cell.W.detach().T + x[t] @ U_s.T + b_s)
        s = f * s + i * s_tilde
        assert torch.allclose(out[t], phi(s), atol=1e-14)
    assert torch.allclose(final, s, atol=1e-14)


def test_basic_lstm_equals_its_equations():
    cell = randomize_(BasicLSTMCell(m, n))
    W_i, W_f, W_c, W_o = blocks(cell.W)
    U_i, U_f, U_c, U_o = blocks(cell.U)
    b_i, b_f, b_c, b_o = blocks(cell.b)
    x, h, c = data()
    out, (h_T, c_T) = Recurrent(cell)(x, (h, c))
    for t in range(T):
        i = sig(h @ W_i.T + x[t] @ U_i.T + b_i)
        f = sig(h @ W_f.T + x[t] @ U_f.T + b_f)
        c_tilde = phi(h @ W_c.T + x[t] @ U_c.T + b_c)
        o = sig(h @ W_o.T + x[t] @ U_o.T + b_o)
        c = f * c + i * c_tilde
        h = o * phi(c)
        assert torch.allclose(out[t], h, atol=1e-14)
    assert torch.allclose(h_T, h, atol=1e-14)
    assert torch.allclose(c_T, c, atol=1e-14)


# What each block reads in the post's eight architectures, written from
# the post's descriptions one by one (not from the three switches):
# "phi_c" = φ(c_{t-1}), "h" = h_{t-1} = o_{t-1} ⊙ φ(c_{t-1}),
# "o_phi_c" = o_t ⊙ φ(c_{t-1}); output "phi" = φ(c_t), "h" = o_t ⊙ φ(c_t).
ARCHITECTURES = {  # number: (o reads, i and f read, c̃ reads, output)
    1: ("phi_c", "phi_c", "o_phi_c", "phi"),   # pseudo LSTM
    2: ("phi_c", "phi_c", "h", "phi"),         # {1}
    3: ("h", "h", "h", "phi"),                 # {1, 2}
    4: ("phi_c", "phi_c", "h", "h"),           # {1, 3}
    5: ("phi_c", "o_phi_c", "o_phi_c", "phi"),  # {2}
    6: ("phi_c", "o_phi_c", "o_phi_c", "h"),   # {2, 3}
    7: ("phi_c", "phi_c", "o_phi_c", "h"),     # {3}
    8: ("h", "h", "h", "h"),                   # basic LSTM
}


def variant_by_hand(cell, number, x, h, c):
    o_reads, if_reads, c_reads, output = ARCHITECTURES[number]
    W_i, W_f, W_c, W_o = blocks(cell.W)
    U_i, U_f, U_c, U_o = blocks(cell.U)
    b_i, b_f, b_c, b_o = blocks(cell.b)
    outputs = []
    for x_t in x:
        seen = {"phi_c": phi(c), "h": h}
        o = sig(seen[o_reads] @ W_o.T + x_t @ U_o.T + b_o)
        seen["o_phi_c"] = o * phi(c)
        i = sig(seen[if_reads] @ W_i.T + x_t @ U_i.T + b_i)
        f = sig(seen[if_reads] @ W_f.T + x_t @ U_f.T + b_f)
        c_tilde = phi(seen[c_reads] @ W_c.T + x_t @ U_c.T + b_c)
        c = f * c + i * c_tilde
        h = o * phi(c)
        outputs.append(h if output == "h" else phi(c))
    return torch.stack(outputs), (h, c)


@pytest.mark.parametrize("number", list(LSTM_VARIANTS))
def test_each_variant_equals_the_posts_architecture(number):
    cell = randomize_(LSTMVariantCell(m, n, **LSTM_VARIANTS[number]))
    x, h0, c0 = data()
    out, (h, c) = Recurrent(cell)(x, (h0, c0))
    out_hand, (h_hand, c_hand) = variant_by_hand(cell, number, x, h0, c0)
    assert torch.allclose(out, out_hand, atol=1e-14)
    assert torch.allclose(h, h_hand, atol=1e-14)
    assert torch.allclose(c, c_hand, atol=1e-14)


def test_variant_table_and_differences():
    got = {k: LSTMVariantCell(m, n, **kw).differences
           for k, kw in LSTM_VARIANTS.items()}
    assert got == {1: (), 2: (1,), 3: (1, 2), 4: (1, 3), 5: (2,),
                   6: (2, 3), 7: (3,), 8: (1, 2, 3)}


# -- the corners: pseudo and basic, and moving parameters between them ------
def test_pseudo_lstm_has_the_prototypes_parameters():
    """The pseudo LSTM is the prototype with φ on every read of the state:
    the same parameters, so state dicts move between them."""
    prototype = PrototypeLSTMCell(m, n)
    pseudo = PseudoLSTMCell(m, n)
    pseudo.load_state_dict(prototype.state_dict())
    assert [(k, v.shape) for k, v in pseudo.state_dict().items()] == \
        [(k, v.shape) for k, v in prototype.state_dict().items()]


def test_variant_without_differences_is_the_pseudo_lstm():
    pseudo = randomize_(PseudoLSTMCell(m, n))
    variant = LSTMVariantCell.from_pseudo(pseudo)
    x, h0, c0 = data()
    out_p, s = Recurrent(pseudo)(x, c0)
    out_v, (_, c) = Recurrent(variant)(x, (h0, c0))
    assert torch.allclose(out_p, out_v, atol=1e-14)
    assert torch.allclose(s, c, atol=1e-14)
    back = variant.to_pseudo()                         # a round trip
    for name, p in pseudo.state_dict().items():
        assert torch.equal(back.state_dict()[name], p)
    # the candidate weights land in the c̃ rows, the read gate's in o's
    assert torch.equal(variant.W[2 * n:3 * n].detach(), pseudo.W.detach())
    assert torch.equal(variant.U[3 * n:].detach(), pseudo.U[2 * n:3 * n])


def test_variant_with_all_differences_is_the_basic_lstm():
    basic = randomize_(BasicLSTMCell(m, n))
    x, h0, c0 = data()
    out_b, (h_b, c_b) = Recurrent(basic)(x, (h0, c0))
    via_method = LSTMVariantCell.from_basic(basic)
    via_state_dict = LSTMVariantCell(m, n, diff1=True, diff2=True,
                                     diff3=True)
    via_state_dict.load_state_dict(basic.state_dict())
    for variant in (via_method, via_state_dict):
        out_v, (h_v, c_v) = Recurrent(variant)(x, (h0, c0))
        assert torch.allclose(out_b, out_v, atol=1e-14)
        assert torch.allclose(h_b, h_v, atol=1e-14)
        assert torch.allclose(c_b, c_v, atol=1e-14)
    back = via_method.to_basic()
    assert all(torch.equal(back.state_dict()[k], v)
               for k, v in basic.state_dict().items())


def test_every_difference_changes_the_outputs():
    x, h0, c0 = data()
    weights = randomize_(LSTMVariantCell(m, n)).state_dict()
    outputs = {}
    for number, keywords in LSTM_VARIANTS.items():
        cell = LSTMVariantCell(m, n, **keywords)
        cell.load_state_dict(weights)                 # the same weights
        outputs[number] = Recurrent(cell)(x, (h0, c0))[0]
    for a, b in itertools.combinations(outputs, 2):   # all 8 differ
        assert (outputs[a] - outputs[b]).abs().max() > 1e-3, (a, b)
    # each single difference, added to the pseudo LSTM, changes outputs
    for number in (2, 5, 7):
        assert (outputs[number] - outputs[1]).abs().max() > 1e-3


def test_h_is_read_only_with_difference_1():
    x, h0, c0 = data()
    for keywords in LSTM_VARIANTS.values():
        cell = randomize_(LSTMVariantCell(m, n, **keywords))
        out, _ = Recurrent(cell)(x, (h0, c0))
        out_other_h, _ = Recurrent(cell)(x, (h0 + 1.0, c0))
        changed = (out - out_other_h).abs().max() > 1e-6
        assert changed == keywords["diff1"]


# -- PyTorch interoperability -------------------------------------------------
def assert_close(a, b, tol=1e-6):
    assert a.shape == b.shape
    assert torch.allclose(a, b, rtol=0, atol=tol), (a - b).abs().max()


def test_parameter_gradients_match_pytorch():
    torch_lstm = nn.LSTM(m, n)
    cell = BasicLSTMCell.from_torch(torch_lstm)
    x, h0, c0 = data()
    target = torch.randn(T, B, n)
    ((torch_lstm(x, (h0[None], c0[None]))[0] - target) ** 2).sum() \
        .backward()
    ((Recurrent(cell)(x, (h0, c0))[0] - target) ** 2).sum().backward()
    assert_close(cell.W.grad, torch_lstm.weight_hh_l0.grad, 1e-12)
    assert_close(cell.U.grad, torch_lstm.weight_ih_l0.grad, 1e-12)
    assert_close(cell.b.grad, torch_lstm.bias_ih_l0.grad, 1e-12)


def test_from_torch_refuses_a_projection():
    with pytest.raises(ValueError, match="1-layer, unidirectional.*"
                                         "proj_size=2"):
        BasicLSTMCell.from_torch(nn.LSTM(m, n, proj_size=2))


# -- the LSTM with peepholes --------------------------------------------------
@pytest.mark.parametrize("kind", PEEPHOLES)
def test_peephole_lstm_equals_its_equations(kind):
    cell = randomize_(PeepholeLSTMCell(m, n, peephole=kind))
    W_i, W_f, W_c, W_o = blocks(cell.W)
    U_i, U_f, U_c, U_o = blocks(cell.U)
    b_i, b_f, b_c, b_o = blocks(cell.b)
    if kind == "full":
        Q_i, Q_f = blocks(cell.Q, 2)
        Q_o = cell.Q_o.detach()
    else:
        Q_i, Q_f = (torch.diag(p) for p in blocks(cell.Q, 2))
        Q_o = torch.diag(cell.Q_o.detach())
    x, h, c = data()
    out, (h_T, c_T) = Recurrent(cell)(x, (h, c))
    for t in range(T):
        i = sig(h @ W_i.T + x[t] @ U_i.T + c @ Q_i.T + b_i)
        f = sig(h @ W_f.T + x[t] @ U_f.T + c @ Q_f.T + b_f)
        c_tilde = phi(h @ W_c.T + x[t] @ U_c.T + b_c)
        c = f * c + i * c_tilde
        o = sig(h @ W_o.T + x[t] @ U_o.T + c @ Q_o.T + b_o)   # c_t
        h = o * phi(c)
        assert torch.allclose(out[t], h, atol=1e-14)
    assert torch.allclose(h_T, h, atol=1e-14)
    assert torch.allclose(c_T, c, atol=1e-14)


@pytest.mark.parametrize("kind", PEEPHOLES)
def test_zero_peepholes_give_the_basic_lstm(kind):
    basic = randomize_(BasicLSTMCell(m, n))
    peephole = PeepholeLSTMCell(m, n, peephole=kind)   # Q = Q_o = 0
    missing, unexpected = peephole.load_state_dict(basic.state_dict(),
                                                   strict=False)
    assert sorted(missing) == ["Q", "Q_o"] and unexpected == []
    x, h0, c0 = data()
    out_b, (h_b, c_b) = Recurrent(basic)(x, (h0, c0))
    out_p, (h_p, c_p) = Recurrent(peephole)(x, (h0, c0))
    assert torch.allclose(out_b, out_p, atol=1e-15)
    assert torch.allclose(h_b, h_p, atol=1e-15)
    assert torch.allclose(c_b, c_p, atol=1e-15)


def test_full_peepholes_with_diagonal_matrices_equal_diagonal_ones():
    diagonal = randomize_(PeepholeLSTMCell(m, n, peephole="diagonal"))
    full = PeepholeLSTMCell(m, n, peephole="full")
    with torch.no_grad():
        for name in ("W", "U", "b"):
            getattr(full, name).copy_(getattr(diagonal, name))
        full.Q.copy_(torch.cat([torch.diag(p)
                                for p in blocks(diagonal.Q, 2)]))
        full.Q_o.copy_(torch.diag(diagonal.Q_o))
    x, h0, c0 = data()
    out_d, (_, c_d) = Recurrent(diagonal)(x, (h0, c0))
    out_f, (_, c_f) = Recurrent(full)(x, (h0, c0))
    assert torch.allclose(out_d, out_f, atol=1e-14)
    assert torch.allclose(c_d, c_f, atol=1e-14)


def test_read_gate_peeks_at_the_new_memory_cell():
    """With everything zero but Q_o = I, o_t = σ(c_t) exactly; the read
    gate of the wrong order, σ(c_{t-1}), gives a different output."""
    cell = PeepholeLSTMCell(m, n)
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()
        cell.U[:3 * n].normal_()                    # a_o = 0: o_t = σ(c_t)
        cell.Q_o.copy_(torch.eye(n))
    x, h0, c0 = data(T=1)
    h, (_, c) = cell(x[0], (h0, c0))
    assert torch.allclose(h, sig(c) * phi(c), atol=1e-15)
    assert (h - sig(c0) * phi(c)).abs().max() > 1e-2


def test_recurrent_initializer_reaches_the_stacked_weights():
    cell = PeepholeLSTMCell(m, n)
    initialize_recurrent_(cell, orthogonal_)
    for block in cell.W.detach().split(n):
        assert torch.allclose(block @ block.T, torch.eye(n), atol=1e-12)
    assert torch.equal(cell.Q.detach(), torch.zeros(2 * n, n))
    pseudo = initialize_recurrent_(PseudoLSTMCell(m, n), orthogonal_)
    assert torch.allclose(pseudo.W @ pseudo.W.T, torch.eye(n), atol=1e-12)


# -- bad input ----------------------------------------------------------------
def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match=r"\['full', 'diagonal'\].*partial"):
        PeepholeLSTMCell(m, n, peephole="partial")
    with pytest.raises(TypeError, match="diff2 to be True or False"):
        LSTMVariantCell(m, n, diff2=1)
    with pytest.raises(TypeError, match="forget_bias"):
        BasicLSTMCell(m, n, forget_bias="1")
    with pytest.raises(ValueError, match="forget_bias to be finite"):
        PseudoLSTMCell(m, n, forget_bias=float("inf"))
    with pytest.raises(TypeError, match="expected a PseudoLSTMCell"):
        LSTMVariantCell.from_pseudo(BasicLSTMCell(m, n))
    with pytest.raises(TypeError, match="expected a BasicLSTMCell"):
        LSTMVariantCell.from_basic(PseudoLSTMCell(m, n))
