"""The Cell contract, checked once for every cell of the registry
(lstmlib.cells.registry): sizes and the initial state, what a step
returns, Recurrent against the step-by-step loop, gradients, the errors on
bad input, and the round trip through PyTorch for the cells that have
one. Beside each registered cell with its defaults, the settings that
change its step are checked too, and so are the eight LSTM variants
between the pseudo and the basic LSTM.

What belongs to one cell (its equations, parameter layout, initialisation
and own arguments) is tested in that cell's module."""
import importlib
import pkgutil
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.func import functional_call

import lstmlib
from lstmlib import Cell, Recurrent
from lstmlib.cells.lstm import LSTM_VARIANTS, LSTMVariantCell
from lstmlib.cells.registry import (REGISTERED_CELLS, RegisteredCell,
                                    registered_cell)
from tests.random_weights import randomize_

ROOT = Path(__file__).resolve().parents[1]
M, N, T, B = 3, 4, 6, 2            # input size, state size, steps, batch
TOL = 1e-12

pytestmark = pytest.mark.usefixtures("float64_and_seeded")

#: Settings beside a registered cell's defaults that change its step.
OTHER_SETTINGS = {
    "vanilla RNN": [{"nonlinearity": "relu"}, {"nonlinearity": "sigmoid"}],
    "additive cell": [{"recurrent_write": False}],
    "GRU": [{"reset": "after"}],
    "peephole LSTM": [{"peephole": "diagonal"}],
}


def contract_cases() -> dict:
    """``build(input_size, state_size)`` by name: every registered cell,
    its other settings, and the LSTM variants 1 to 8."""
    cases = {cell.name: cell.build for cell in REGISTERED_CELLS}
    for name, settings in OTHER_SETTINGS.items():
        for keywords in settings:
            shown = ", ".join(f"{k}={v!r}" for k, v in keywords.items())
            cases[f"{name}, {shown}"] = partial(registered_cell(name).build,
                                                **keywords)
    for number, keywords in LSTM_VARIANTS.items():
        cases[f"LSTM variant {number}"] = partial(LSTMVariantCell,
                                                  **keywords)
    return cases


CASES = contract_cases()


def parts(state):
    """A state as a tuple of its parts, in the order of state_names."""
    return state if isinstance(state, tuple) else (state,)


def random_state(cell, batch_size):
    state = tuple(torch.randn(batch_size, cell.state_size)
                  for _ in cell.state_names)
    return state[0] if len(state) == 1 else state


def step_by_step(cell, x, state):
    """The reference semantics of Recurrent: call the cell once a step."""
    outputs = []
    for x_t in x:
        out, state = cell(x_t, state)
        outputs.append(out)
    return torch.stack(outputs), state


def assert_same_run(got, expected, tol=TOL):
    (out, final), (out_expected, final_expected) = got, expected
    assert out.shape == out_expected.shape
    assert torch.allclose(out, out_expected, rtol=0, atol=tol)
    assert len(parts(final)) == len(parts(final_expected))
    for part, part_expected in zip(parts(final), parts(final_expected)):
        assert torch.allclose(part, part_expected, rtol=0, atol=tol)


# -- the registry -------------------------------------------------------------
def test_the_registry_lists_each_cell_once_with_its_chapter():
    names = [cell.name for cell in REGISTERED_CELLS]
    classes = [cell.cell_class for cell in REGISTERED_CELLS]
    assert len(set(names)) == len(names) == len(set(classes))
    assert names[0] == "vanilla RNN" and names[-1] == "peephole LSTM"
    for cell in REGISTERED_CELLS:
        assert isinstance(cell, RegisteredCell)
        assert issubclass(cell.cell_class, Cell)
        assert getattr(lstmlib, cell.cell_class.__name__) is cell.cell_class
        assert (ROOT / "book" / f"{cell.chapter}.ipynb").is_file(), cell
        assert registered_cell(cell.name) is cell


def test_every_cell_class_of_lstmlib_cells_is_registered():
    """A new cell class fails here until it has its registry entry (the
    LSTM variants, a family between two registered cells, aside; base
    classes that leave the step to their subclasses are no cells)."""
    defined = set()
    for module in pkgutil.iter_modules(lstmlib.cells.__path__):
        name = f"lstmlib.cells.{module.name}"
        for obj in vars(importlib.import_module(name)).values():
            if (isinstance(obj, type) and issubclass(obj, Cell)
                    and obj.step is not Cell.step
                    and obj.__module__ == name
                    and not obj.__name__.startswith("_")):
                defined.add(obj)
    registered = {cell.cell_class for cell in REGISTERED_CELLS}
    assert defined == registered | {LSTMVariantCell}


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"expected one of \['vanilla RNN', "
                                         r"'additive cell'.*got 'LSTM'"):
        registered_cell("LSTM")


def test_build_passes_keywords_to_the_class():
    gru = registered_cell("GRU").build(2, 3, reset="after")
    assert (gru.input_size, gru.state_size, gru.reset) == (2, 3, "after")


# -- sizes, the initial state and one step ------------------------------------
@pytest.mark.parametrize("name", CASES)
def test_sizes_and_the_zero_initial_state(name):
    cell = CASES[name](M, N)
    assert isinstance(cell, Cell)
    assert (cell.input_size, cell.state_size, cell.output_size) == (M, N, N)
    k = len(cell.state_names)
    assert k >= 1 and len(set(cell.state_names)) == k
    state = cell.initial_state(5)
    assert isinstance(state, torch.Tensor if k == 1 else tuple)
    assert len(parts(state)) == k
    for part in parts(state):
        assert part.shape == (5, N) and part.dtype == torch.float64
        assert not part.any()
    for part in parts(cell.initial_state(2, dtype=torch.float32,
                                         device="cpu")):
        assert part.dtype == torch.float32 and part.device.type == "cpu"


@pytest.mark.parametrize("name", CASES)
def test_a_step_is_the_step_of_the_projected_input(name):
    cell = randomize_(CASES[name](M, N))
    x, state = torch.randn(B, M), random_state(cell, B)
    out, new = cell(x, state)
    assert out.shape == (B, cell.output_size)
    assert isinstance(new, type(state)) and len(parts(new)) == len(
        parts(state))
    assert all(part.shape == (B, N) for part in parts(new))
    assert_same_run((out, new), cell.step(cell.project_input(x), state), 0)


# -- Recurrent ----------------------------------------------------------------
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("name", CASES)
def test_recurrent_equals_the_step_by_step_loop(name, batch_first):
    cell = randomize_(CASES[name](M, N))
    x, state = torch.randn(T, B, M), random_state(cell, B)
    given = x.transpose(0, 1) if batch_first else x
    out, final = Recurrent(cell, batch_first=batch_first)(given, state)
    if batch_first:
        assert out.shape == (B, T, N)
        out = out.transpose(0, 1)
    assert_same_run((out, final), step_by_step(cell, x, state))


@pytest.mark.parametrize("name", CASES)
def test_recurrent_starts_from_zeros_by_default(name):
    cell = randomize_(CASES[name](M, N))
    x = torch.randn(T, B, M)
    assert_same_run(Recurrent(cell)(x),
                    Recurrent(cell)(x, cell.initial_state(B)), 0)


@pytest.mark.parametrize("name", CASES)
def test_recurrent_projects_the_inputs_once(name):
    """All T input projections come from one call, not T calls."""
    cell = CASES[name](M, N)
    calls = []
    original = cell.project_input
    cell.project_input = lambda x: calls.append(tuple(x.shape)) or original(x)
    Recurrent(cell)(torch.randn(9, B, M))
    assert calls == [(9, B, M)]


@pytest.mark.parametrize("name", CASES)
def test_recurrent_gradients_equal_those_of_the_loop(name):
    cell = randomize_(CASES[name](M, N))
    x, state = torch.randn(T, B, M), random_state(cell, B)

    def gradients(out, final):
        loss = out.square().sum() + sum(p.square().sum()
                                        for p in parts(final))
        return torch.autograd.grad(loss, list(cell.parameters()))

    got = gradients(*Recurrent(cell)(x, state))
    expected = gradients(*step_by_step(cell, x, state))
    for g, g_expected in zip(got, expected):
        assert torch.allclose(g, g_expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("name", CASES)
def test_gradcheck_through_three_steps(name):
    """Outputs and final state against finite differences, with respect
    to the input, every part of the initial state and every parameter."""
    rnn = Recurrent(randomize_(CASES[name](2, 3)))
    k = len(rnn.cell.state_names)
    names = [key for key, _ in rnn.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in rnn.parameters()]

    def unrolled(x, *rest):
        state, values = rest[:k], rest[k:]
        out, final = functional_call(rnn, dict(zip(names, values)),
                                     (x, state[0] if k == 1 else state))
        return (out, *parts(final))

    x = torch.randn(3, 2, 2, requires_grad=True)
    state = [torch.randn(2, 3, requires_grad=True) for _ in range(k)]
    assert torch.autograd.gradcheck(unrolled, (x, *state, *params))


# -- bad input ----------------------------------------------------------------
@pytest.mark.parametrize("name", CASES)
def test_bad_sizes_are_refused(name):
    build = CASES[name]
    with pytest.raises(ValueError, match="input_size to be a positive int, "
                                         "got 0"):
        build(0, 3)
    with pytest.raises(ValueError, match="state_size to be a positive int, "
                                         "got 2.5"):
        build(2, 2.5)
    with pytest.raises(ValueError, match="batch_size to be a positive int, "
                                         "got 0"):
        build(2, 3).initial_state(0)


@pytest.mark.parametrize("name", CASES)
def test_a_bad_input_is_refused_naming_what_was_expected(name):
    cell = CASES[name](2, 3)
    state = cell.initial_state(4)
    owner = type(cell).__name__
    for x, error, message in [
        ([[1.0, 2.0]], TypeError, r"torch.Tensor \(B, input_size\), got list"),
        (torch.randn(4, 3), ValueError, r"shape \(B, 2\), got shape \(4, 3\)"),
        (torch.randn(4), ValueError, r"shape \(B, 2\), got shape \(4,\)"),
        (torch.randn(4, 2, dtype=torch.float32), TypeError,
         r"dtype torch.float64.*got torch.float32"),
    ]:
        with pytest.raises(error, match=f"{owner}: expected the input x.*"
                                        f"{message}"):
            cell(x, state)


@pytest.mark.parametrize("name", CASES)
def test_a_bad_state_is_refused_naming_what_was_expected(name):
    cell = CASES[name](2, 3)
    x, names = torch.zeros(4, 2), cell.state_names
    k, last = len(names), names[-1]
    if k == 1:
        structure = r"a Tensor \(4, 3\)"
        wrong_structure, given = (torch.zeros(4, 3),) * 2, "tuple of 2"
    else:
        structure = (rf"a tuple \({', '.join(names)}\) of {k} Tensors "
                     r"\(4, 3\)")
        wrong_structure, given = torch.zeros(4, 3), "Tensor"

    def with_last(part):
        return part if k == 1 else (*cell.initial_state(4)[:-1], part)

    for state, error, message in [
        (with_last(torch.zeros(5, 3)), ValueError,
         rf"state '{last}' of shape \(4, 3\), got \(5, 3\)"),
        (with_last(torch.zeros(4, 2)), ValueError,
         rf"state '{last}' of shape \(4, 3\), got \(4, 2\)"),
        (wrong_structure, TypeError, f"{structure}, got {given}"),
        (None, TypeError, f"{structure}, got NoneType"),
        (with_last(torch.zeros(4, 3, dtype=torch.float32)), TypeError,
         "dtype torch.float64.*got dtype torch.float32"),
    ]:
        with pytest.raises(error, match=message):
            cell(x, state)


@pytest.mark.parametrize("name", CASES)
def test_recurrent_refuses_a_bad_sequence_or_state(name):
    cell = CASES[name](2, 3)
    rnn = Recurrent(cell, batch_first=True)
    with pytest.raises(ValueError, match=r"\(B, T, 2\), got shape \(4, 2\)"):
        rnn(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"\(B, T, 2\), got shape "
                                         r"\(4, 5, 3\)"):
        rnn(torch.zeros(4, 5, 3))
    with pytest.raises(ValueError, match="at least one step"):
        Recurrent(cell)(torch.zeros(0, 4, 2))
    layered = tuple(torch.zeros(1, 4, 3) for _ in cell.state_names)
    with pytest.raises(ValueError, match=r"of shape \(4, 3\), got "
                                         r"\(1, 4, 3\)"):     # nn.RNN's
        rnn(torch.zeros(4, 5, 2),                             # layout
            layered[0] if len(layered) == 1 else layered)


@pytest.mark.parametrize("name", CASES)
def test_an_input_on_another_device_is_refused_naming_both(name):
    cell = CASES[name](2, 3)
    state = cell.initial_state(1)
    cell.to("meta")
    with pytest.raises(ValueError, match="on device meta.*got cpu"):
        cell(torch.zeros(1, 2), state)


# -- PyTorch interoperability -------------------------------------------------
def torch_class(name):
    """The PyTorch module class (nn.RNN, nn.GRU, nn.LSTM) whose function
    the case's cell computes, or None where it has none. The refusals of
    the settings PyTorch lacks (a sigmoid RNN, the reset before W) are
    tested in the cells' modules."""
    cell = CASES[name](1, 1)
    if not hasattr(cell, "to_torch"):
        return None
    try:
        return type(cell.to_torch())
    except ValueError:
        return None


TORCH_CASES = [name for name in CASES if torch_class(name) is not None]


def run_torch(module, x, state):
    """A PyTorch module over ``x`` ``(T, B, m)`` (``(B, T, m)`` for a
    batch-first one) from ``state`` in lstmlib's layout: outputs and the
    final state in lstmlib's layout."""
    if isinstance(module, nn.RNNBase):
        layered = tuple(part[None] for part in parts(state))
        out, final = module(x, layered[0] if len(layered) == 1 else layered)
        final = tuple(part[0] for part in parts(final))
        return out, final[0] if len(final) == 1 else final
    outputs = []
    for x_t in x:
        state = module(x_t, state)
        outputs.append(parts(state)[0])
    return torch.stack(outputs), state


def test_the_cells_with_a_pytorch_counterpart():
    assert {name: torch_class(name) for name in TORCH_CASES} == {
        "vanilla RNN": nn.RNN, "vanilla RNN, nonlinearity='relu'": nn.RNN,
        "GRU, reset='after'": nn.GRU, "basic LSTM": nn.LSTM}


@pytest.mark.parametrize("single", [False, True], ids=["layered", "single"])
@pytest.mark.parametrize("name", TORCH_CASES)
def test_to_torch_computes_the_same_function_and_converts_back(name, single):
    cell = randomize_(CASES[name](M, N))
    kind = torch_class(name).__name__ + ("Cell" if single else "")
    module = cell.to_torch(kind)
    assert type(module) is getattr(nn, kind)
    assert all(p.dtype == torch.float64 for p in module.parameters())
    assert single or not module.batch_first           # time-major
    x, state = torch.randn(T, B, M), random_state(cell, B)
    expected = Recurrent(cell)(x, state)
    assert_same_run(run_torch(module, x, state), expected)
    back = type(cell).from_torch(module)
    for key, p in cell.state_dict().items():
        assert torch.allclose(back.state_dict()[key], p, rtol=0,
                              atol=1e-15), key
    assert_same_run(Recurrent(back)(x, state), expected)


@pytest.mark.parametrize("single", [False, True], ids=["layered", "single"])
@pytest.mark.parametrize("name", TORCH_CASES)
def test_from_torch_computes_the_modules_function(name, single):
    """From a PyTorch module with random weights, both of its biases
    included (lstmlib keeps their sum)."""
    cell = CASES[name](M, N)
    kind = torch_class(name).__name__ + ("Cell" if single else "")
    module = randomize_(cell.to_torch(kind))
    converted = type(cell).from_torch(module)
    x, state = torch.randn(T, B, M), random_state(cell, B)
    assert_same_run(Recurrent(converted)(x, state),
                    run_torch(module, x, state))
    if not single:
        module.batch_first = True
        assert_same_run(
            Recurrent(type(cell).from_torch(module), batch_first=True)(
                x.transpose(0, 1), state),
            run_torch(module, x.transpose(0, 1), state))


@pytest.mark.parametrize("name", TORCH_CASES)
def test_from_torch_without_biases_has_zero_biases(name):
    layered = torch_class(name)
    module = layered(M, N, bias=False, dtype=torch.float64)
    cell = type(CASES[name](M, N)).from_torch(module)
    biases = [p for key, p in cell.named_parameters() if key.startswith("b")]
    assert biases and not any(p.any() for p in biases)
    x, state = torch.randn(T, B, M), random_state(cell, B)
    assert_same_run(Recurrent(cell)(x, state), run_torch(module, x, state))


@pytest.mark.parametrize("name", TORCH_CASES)
def test_what_one_cell_cannot_be_is_refused(name):
    cls, layered = type(CASES[name](M, N)), torch_class(name)
    for keywords, shown in [({"num_layers": 2}, "num_layers=2"),
                            ({"bidirectional": True}, "bidirectional=True")]:
        with pytest.raises(ValueError, match=f"1-layer, unidirectional.*"
                                             f"{shown}"):
            cls.from_torch(layered(M, N, **keywords))
    other = nn.GRU if layered is not nn.GRU else nn.LSTM
    with pytest.raises(TypeError, match=f"nn.{layered.__name__} or "
                                        f"nn.{layered.__name__}Cell, got "
                                        f"{other.__name__}"):
        cls.from_torch(other(M, N))
    with pytest.raises(ValueError, match=f"kind '{layered.__name__}' or "
                                         f"'{layered.__name__}Cell', got "
                                         f"'{other.__name__}'"):
        CASES[name](M, N).to_torch(other.__name__)
