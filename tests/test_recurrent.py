"""The Cell contract, Recurrent and VanillaRNNCell (Chapters 1 and 2)."""
import pytest
import torch
from torch import nn

import lstmlib
from lstmlib import Cell, Recurrent, VanillaRNNCell

TOL = 1e-6


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def manual_loop(cell, x, state):
    """The reference semantics: call the cell once per step."""
    outputs = []
    for t in range(x.shape[0]):
        out, state = cell(x[t], state)
        outputs.append(out)
    return torch.stack(outputs), state


# -- the contract ---------------------------------------------------------------
def test_everything_is_importable_from_the_package():
    for name in lstmlib.__all__:
        assert hasattr(lstmlib, name), name
    assert isinstance(lstmlib.__version__, str) and lstmlib.__version__.count(".") == 2


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "sigmoid"])
def test_cell_contract(nonlinearity):
    cell = VanillaRNNCell(3, 5, nonlinearity=nonlinearity)
    assert isinstance(cell, Cell)
    assert (cell.input_size, cell.state_size, cell.output_size) == (3, 5, 5)
    s0 = cell.initial_state(4)
    assert s0.shape == (4, 5) and s0.dtype == cell.W.dtype and not s0.any()
    out, s1 = cell(torch.randn(4, 3), s0)
    assert out.shape == (4, 5) and s1.shape == (4, 5)
    assert torch.equal(out, s1)                 # the vanilla cell's output is its state


def test_initial_state_follows_requested_dtype_and_device():
    cell = VanillaRNNCell(2, 3)
    s = cell.initial_state(2, dtype=torch.float32, device="cpu")
    assert s.dtype == torch.float32 and s.device.type == "cpu"


def test_vanilla_cell_computes_its_equation():
    cell = VanillaRNNCell(3, 4)
    x, s = torch.randn(2, 3), torch.randn(2, 4)
    expected = torch.tanh(s @ cell.W.T + x @ cell.U.T + cell.b)
    out, new = cell(x, s)
    assert torch.allclose(new, expected, atol=1e-12)


def test_parameter_count_is_n_squared_plus_nm_plus_n():
    n, m = 7, 3
    cell = VanillaRNNCell(m, n)
    assert sum(p.numel() for p in cell.parameters()) == n * n + n * m + n


# -- Recurrent ----------------------------------------------------------------------
@pytest.mark.parametrize("batch_first", [False, True])
def test_recurrent_equals_manual_loop(batch_first):
    cell = VanillaRNNCell(3, 5)
    T, B = 7, 4
    x = torch.randn(T, B, 3)
    s0 = torch.randn(B, 5)
    expected_out, expected_state = manual_loop(cell, x, s0)
    rnn = Recurrent(cell, batch_first=batch_first)
    inp = x.transpose(0, 1) if batch_first else x
    out, state = rnn(inp, s0)
    if batch_first:
        assert out.shape == (B, T, 5)
        out = out.transpose(0, 1)
    assert out.shape == (T, B, 5)
    assert torch.allclose(out, expected_out, atol=1e-12)
    assert torch.allclose(state, expected_state, atol=1e-12)


def test_recurrent_default_state_is_zeros():
    cell = VanillaRNNCell(2, 3)
    x = torch.randn(4, 2, 2)
    out_none, s_none = Recurrent(cell)(x)
    out_zero, s_zero = Recurrent(cell)(x, torch.zeros(2, 3))
    assert torch.equal(out_none, out_zero) and torch.equal(s_none, s_zero)


def test_recurrent_gradients_equal_manual_loop():
    cell = VanillaRNNCell(3, 4)
    x = torch.randn(6, 2, 3)
    out, _ = Recurrent(cell)(x)
    grads = torch.autograd.grad(out.square().sum(), list(cell.parameters()))
    out2, _ = manual_loop(cell, x, cell.initial_state(2))
    grads2 = torch.autograd.grad(out2.square().sum(), list(cell.parameters()))
    for g, g2 in zip(grads, grads2):
        assert torch.allclose(g, g2, atol=1e-12)


def test_recurrent_projects_inputs_once():
    """All T input projections come from one call, not T calls."""
    cell = VanillaRNNCell(3, 4)
    calls = []
    original = cell.project_input
    cell.project_input = lambda x: calls.append(tuple(x.shape)) or original(x)
    Recurrent(cell)(torch.randn(9, 2, 3))
    assert calls == [(9, 2, 3)]


# -- PyTorch interoperability -----------------------------------------------------------
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_from_torch_rnn_matches(nonlinearity, batch_first):
    torch_rnn = nn.RNN(3, 5, nonlinearity=nonlinearity, batch_first=batch_first)
    cell = VanillaRNNCell.from_torch(torch_rnn)
    x = torch.randn(2, 8, 3) if batch_first else torch.randn(8, 2, 3)
    h0 = torch.randn(2, 5)
    expected, h_n = torch_rnn(x, h0.unsqueeze(0))
    out, s = Recurrent(cell, batch_first=batch_first)(x, h0)
    assert torch.allclose(out, expected, atol=TOL)
    assert torch.allclose(s, h_n[0], atol=TOL)


def test_from_torch_rnncell_matches():
    torch_cell = nn.RNNCell(3, 5)
    cell = VanillaRNNCell.from_torch(torch_cell)
    x, h = torch.randn(4, 3), torch.randn(4, 5)
    assert torch.allclose(cell(x, h)[1], torch_cell(x, h), atol=TOL)


def test_from_torch_without_bias():
    torch_rnn = nn.RNN(3, 5, bias=False)
    cell = VanillaRNNCell.from_torch(torch_rnn)
    assert not cell.b.any()
    x = torch.randn(5, 2, 3)
    assert torch.allclose(Recurrent(cell)(x)[0], torch_rnn(x)[0], atol=TOL)


@pytest.mark.parametrize("kind", ["RNN", "RNNCell"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_to_torch_matches(kind, nonlinearity):
    cell = VanillaRNNCell(3, 5, nonlinearity=nonlinearity)
    module = cell.to_torch(kind)
    assert module.weight_ih_l0.dtype == torch.float64 if kind == "RNN" else True
    x, s0 = torch.randn(6, 2, 3), torch.randn(2, 5)
    out, s = Recurrent(cell)(x, s0)
    if kind == "RNN":
        expected, h_n = module(x, s0.unsqueeze(0))
        assert torch.allclose(out, expected, atol=TOL)
        assert torch.allclose(s, h_n[0], atol=TOL)
    else:
        h = s0
        for t in range(6):
            h = module(x[t], h)
            assert torch.allclose(out[t], h, atol=TOL)


def test_round_trip_preserves_parameters():
    cell = VanillaRNNCell(3, 5)
    back = VanillaRNNCell.from_torch(cell.to_torch())
    for name, p in cell.named_parameters():
        assert torch.allclose(p, getattr(back, name), atol=1e-15)


def test_to_torch_refuses_sigmoid():
    with pytest.raises(ValueError, match="sigmoid"):
        VanillaRNNCell(2, 3, nonlinearity="sigmoid").to_torch()


def test_from_torch_refuses_what_it_cannot_represent():
    with pytest.raises(ValueError, match="num_layers=2"):
        VanillaRNNCell.from_torch(nn.RNN(3, 5, num_layers=2))
    with pytest.raises(ValueError, match="bidirectional=True"):
        VanillaRNNCell.from_torch(nn.RNN(3, 5, bidirectional=True))
    with pytest.raises(TypeError, match="nn.RNN or nn.RNNCell, got LSTM"):
        VanillaRNNCell.from_torch(nn.LSTM(3, 5))


# -- bad input -----------------------------------------------------------------------------
def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="nonlinearity.*'softsign'"):
        VanillaRNNCell(2, 3, nonlinearity="softsign")
    with pytest.raises(ValueError, match="state_size to be a positive int, got 0"):
        VanillaRNNCell(2, 0)
    with pytest.raises(ValueError, match="input_size to be a positive int, got 2.5"):
        VanillaRNNCell(2.5, 3)
    with pytest.raises(TypeError, match="expected an lstmlib Cell, got RNNCell"):
        Recurrent(nn.RNNCell(2, 3))
    with pytest.raises(ValueError, match="batch_size to be a positive int, got 0"):
        VanillaRNNCell(2, 3).initial_state(0)


@pytest.mark.parametrize("x, error, message", [
    ([[1.0, 2.0]], TypeError, r"torch.Tensor \(B, input_size\), got list"),
    (torch.randn(4, 3), ValueError, r"shape \(B, 2\), got shape \(4, 3\)"),
    (torch.randn(4), ValueError, r"shape \(B, 2\), got shape \(4,\)"),
    (torch.randn(4, 2, dtype=torch.float32), TypeError, r"dtype torch.float64.*got torch.float32"),
])
def test_cell_rejects_bad_input(x, error, message):
    cell = VanillaRNNCell(2, 3)
    with pytest.raises(error, match=message):
        cell(x, torch.zeros(4, 3))


@pytest.mark.parametrize("state, error, message", [
    (torch.zeros(5, 3), ValueError, r"state 's' of shape \(4, 3\), got \(5, 3\)"),
    (torch.zeros(4, 2), ValueError, r"state 's' of shape \(4, 3\), got \(4, 2\)"),
    ((torch.zeros(4, 3), torch.zeros(4, 3)), TypeError, r"a Tensor \(4, 3\), got tuple of 2"),
    (None, TypeError, r"a Tensor \(4, 3\), got NoneType"),
    (torch.zeros(4, 3, dtype=torch.float32), TypeError, r"dtype torch.float64.*got dtype torch.float32"),
])
def test_cell_rejects_bad_state(state, error, message):
    cell = VanillaRNNCell(2, 3)
    with pytest.raises(error, match=message):
        cell(torch.zeros(4, 2), state)


def test_recurrent_rejects_bad_input():
    rnn = Recurrent(VanillaRNNCell(2, 3), batch_first=True)
    with pytest.raises(ValueError, match=r"\(B, T, 2\), got shape \(4, 2\)"):
        rnn(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"\(B, T, 2\), got shape \(4, 5, 3\)"):
        rnn(torch.zeros(4, 5, 3))
    with pytest.raises(ValueError, match="at least one step"):
        Recurrent(VanillaRNNCell(2, 3))(torch.zeros(0, 4, 2))
    with pytest.raises(ValueError, match=r"of shape \(4, 3\), got \(1, 4, 3\)"):
        rnn(torch.zeros(4, 5, 2), torch.zeros(1, 4, 3))   # nn.RNN's (layers, B, n) layout


def test_tuple_state_structure_is_checked():
    class TwoPartCell(Cell):
        state_names = ("h", "c")

        def __init__(self):
            super().__init__(2, 3)
            self.w = nn.Parameter(torch.zeros(3, 2))

        def step(self, x, state):
            h, c = state
            return h, (h + x @ self.w.T, c)

    cell = TwoPartCell()
    h, c = cell.initial_state(4)
    assert h.shape == c.shape == (4, 3)
    with pytest.raises(TypeError, match=r"a tuple \(h, c\) of 2 Tensors \(4, 3\), got Tensor"):
        cell(torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"state 'c' of shape \(4, 3\), got \(4, 1\)"):
        cell(torch.zeros(4, 2), (torch.zeros(4, 3), torch.zeros(4, 1)))


def test_cell_on_meta_device_is_rejected_with_device_names():
    cell = VanillaRNNCell(2, 3).to("meta")
    with pytest.raises(ValueError, match="on device meta.*got cpu"):
        cell(torch.zeros(1, 2), torch.zeros(1, 3))


# -- show_source and versions ------------------------------------------------------------
def test_show_source_returns_the_library_code():
    src = lstmlib.show_source(VanillaRNNCell.step)
    assert src.text.startswith("def step(self")
    assert "self.phi(F.linear(s, self.W) + ux)" in src.text
    assert "```python" in src._repr_markdown_() and "lstmlib.cells.vanilla" in src.origin


def test_show_source_excerpt():
    whole = lstmlib.show_source(Recurrent.forward)
    part = lstmlib.show_source(Recurrent.forward,
                               lines=("for x_t in x_proj", "outputs.append"))
    assert part.text.splitlines()[0].startswith("for x_t in x_proj:")
    assert part.text.splitlines()[-1].strip() == "outputs.append(out)"
    assert len(part.text.splitlines()) == 3
    first = int(whole.origin.rsplit(" ", 1)[1])
    offset = next(k for k, row in enumerate(whole.text.splitlines())
                  if "for x_t in x_proj" in row)
    assert part.origin.endswith(f"line {first + offset}")
    with pytest.raises(ValueError, match="containing 'nowhere'"):
        lstmlib.show_source(Recurrent.forward, lines=("nowhere", "x"))
    with pytest.raises(ValueError, match="after 'outputs.append'"):
        lstmlib.show_source(Recurrent.forward,
                            lines=("outputs.append", "for x_t"))


def test_show_source_rejects_builtins():
    with pytest.raises(TypeError, match="defined in a Python file"):
        lstmlib.show_source(len)


def test_versions_lists_the_stack(capsys):
    found = lstmlib.versions()
    assert found["lstmlib"] == lstmlib.__version__
    assert found["torch"] == torch.__version__
    lstmlib.show_versions()
    assert "torch" in capsys.readouterr().out
