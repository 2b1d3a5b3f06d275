"""VanillaRNNCell and Recurrent (Chapters 1 and 2): what is particular
to them. The Cell contract that every cell keeps (sizes, the initial
state, Recurrent against the loop, gradients, errors on bad input, the
round trip through PyTorch) is checked for the vanilla RNN with every
other cell in tests/test_cell_contract.py."""
import pytest
import torch
from torch import nn

import lstmlib
from lstmlib import Recurrent, VanillaRNNCell


pytestmark = pytest.mark.usefixtures("float64_and_seeded")


# -- the package and the vanilla cell -------------------------------------------
def test_everything_is_importable_from_the_package():
    for name in lstmlib.__all__:
        assert hasattr(lstmlib, name), name
    assert isinstance(lstmlib.__version__, str) and lstmlib.__version__.count(".") == 2


def test_vanilla_cell_computes_its_equation():
    cell = VanillaRNNCell(3, 4)
    x, s = torch.randn(2, 3), torch.randn(2, 4)
    expected = torch.tanh(s @ cell.W.T + x @ cell.U.T + cell.b)
    out, new = cell(x, s)
    assert torch.allclose(new, expected, atol=1e-12)
    assert torch.equal(out, new)        # the vanilla cell's output is its state


def test_parameter_count_is_n_squared_plus_nm_plus_n():
    n, m = 7, 3
    cell = VanillaRNNCell(m, n)
    assert sum(p.numel() for p in cell.parameters()) == n * n + n * m + n


# -- PyTorch interoperability -----------------------------------------------------------
def test_to_torch_refuses_sigmoid():
    with pytest.raises(ValueError, match="sigmoid"):
        VanillaRNNCell(2, 3, nonlinearity="sigmoid").to_torch()


# -- bad input -----------------------------------------------------------------------------
def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="nonlinearity.*'softsign'"):
        VanillaRNNCell(2, 3, nonlinearity="softsign")
    with pytest.raises(TypeError, match="expected an lstmlib Cell, got RNNCell"):
        Recurrent(nn.RNNCell(2, 3))


# -- unroll, the plain loop -----------------------------------------------------------
def test_unroll_is_the_loop_over_step():
    cell = lstmlib.BasicLSTMCell(3, 4)
    x = torch.randn(6, 2, 3)
    state = (torch.randn(2, 4), torch.randn(2, 4))
    expected, s = [], state
    for x_t in x:
        o, s = cell(x_t, s)
        expected.append(o)
    outputs, final, states = lstmlib.unroll(cell, x, state, keep_states=True)
    assert torch.allclose(outputs, torch.stack(expected), atol=1e-12)
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(final, s))
    assert states[0].shape == states[1].shape == (6, 2, 4)
    assert torch.equal(states[0], outputs)           # h_t is the output
    assert torch.equal(states[1][-1], final[1])
    assert torch.equal(Recurrent(cell, fused=False)(x, state)[0], outputs)


def test_unroll_feeds_one_sequence_to_every_row_of_the_batch():
    cell = VanillaRNNCell(3, 4)
    x, s0 = torch.randn(5, 3), torch.randn(7, 4)
    outputs, s_T = lstmlib.unroll(cell, x, s0)       # x_t to all 7 rows
    batched, s_T_batched = lstmlib.unroll(cell, x[:, None].expand(5, 7, 3), s0)
    assert outputs.shape == (5, 7, 4)
    assert torch.allclose(outputs, batched, atol=1e-12)
    assert torch.allclose(s_T, s_T_batched, atol=1e-12)
    _, _, states = lstmlib.unroll(cell, x, keep_states=True)   # zeros, B = 1
    assert states.shape == (5, 1, 4)


def test_unroll_rejects_what_it_cannot_run():
    cell = VanillaRNNCell(3, 4)
    with pytest.raises(TypeError, match="expected an lstmlib Cell"):
        lstmlib.unroll(nn.RNNCell(3, 4), torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match=r"\(T, B, 3\) or \(T, 3\).*\(5, 2, 2\)"):
        lstmlib.unroll(cell, torch.randn(5, 2, 2))
    with pytest.raises(ValueError, match="at least one step"):
        lstmlib.unroll(cell, torch.randn(0, 2, 3))
    with pytest.raises(ValueError, match=r"\(2, 4\), got \(3, 4\)"):
        lstmlib.unroll(cell, torch.randn(5, 2, 3), torch.zeros(3, 4))


# -- show_source and versions ------------------------------------------------------------
def test_show_source_returns_the_library_code():
    src = lstmlib.show_source(VanillaRNNCell.step)
    assert src.text.startswith("def step(self")
    assert "self.phi(F.linear(s, self.W) + ux)" in src.text
    assert "```python" in src._repr_markdown_() and "lstmlib.cells.vanilla" in src.origin


def test_show_source_excerpt():
    whole = lstmlib.show_source(lstmlib.unroll)
    part = lstmlib.show_source(lstmlib.unroll,
                               lines=("for x_t in x_proj", "outputs.append"))
    assert part.text.splitlines()[0].startswith("for x_t in x_proj:")
    assert part.text.splitlines()[-1].strip() == "outputs.append(out)"
    assert len(part.text.splitlines()) == 3
    first = int(whole.origin.rsplit(" ", 1)[1])
    offset = next(k for k, row in enumerate(whole.text.splitlines())
                  if "for x_t in x_proj" in row)
    assert part.origin.endswith(f"line {first + offset}")
    with pytest.raises(ValueError, match="containing 'nowhere'"):
        lstmlib.show_source(lstmlib.unroll, lines=("nowhere", "x"))
    with pytest.raises(ValueError, match="after 'outputs.append'"):
        lstmlib.show_source(lstmlib.unroll,
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
