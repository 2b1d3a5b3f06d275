"""lstmlib.experiments.streams: the marked-recall stream and truncated BPTT
with the state carried across windows."""
import copy

import pytest
import torch
from torch.nn import functional as F

from lstmlib.cells.gru import GRUCell
from lstmlib.cells.lstm import BasicLSTMCell
from lstmlib.cells.prototype import PrototypeLSTMCell
from lstmlib.cells.recurrent import state_parts
from lstmlib.experiments.streams import (MARKED_RECALL_BASELINE_MSE,
                                         MarkedRecallStream,
                                         StreamRegressor, train_on_stream)

pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def stream(seed, batch_size=4, size=2, p=0.2):
    return MarkedRecallStream(batch_size, size, marker_probability=p,
                              generator=torch.Generator().manual_seed(seed))


# -- MarkedRecallStream ------------------------------------------------------
def test_the_target_is_the_last_marked_value_across_windows():
    s = stream(1)
    x = torch.cat([s.window(7)[0], s.window(5)[0]])
    s_again = stream(1)
    targets = torch.cat([s_again.window(7)[1], s_again.window(5)[1]])
    held = torch.zeros(4, 2)
    for x_t, y_t in zip(x, targets):
        marked = x_t[:, 0] == 1
        held[marked] = x_t[marked, 1:]
        assert torch.equal(y_t, held)
    assert set(x[..., 0].unique().tolist()) <= {0.0, 1.0}
    assert (x[..., 1:].abs() < 1).all()


def test_marking_every_step_asks_for_the_current_value():
    x, y = MarkedRecallStream(3, 2, marker_probability=1.0).window(6)
    assert torch.equal(y, x[..., 1:]) and (x[..., 0] == 1).all()


def test_the_baseline_is_the_variance_of_the_values():
    x, y = stream(2, batch_size=2000, p=1.0).window(1)
    assert abs(y.square().mean() - MARKED_RECALL_BASELINE_MSE) < 0.01


@pytest.mark.parametrize("kwargs, error", [
    (dict(batch_size=0, size=2), ValueError),
    (dict(batch_size=2, size=0), ValueError),
    (dict(batch_size=2, size=2, marker_probability=0.0), ValueError),
    (dict(batch_size=2, size=2, marker_probability=1.5), ValueError),
])
def test_stream_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        MarkedRecallStream(**kwargs)


# -- StreamRegressor ---------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: PrototypeLSTMCell(3, 5),
                                  lambda: BasicLSTMCell(3, 5)])
def test_two_windows_equal_one_run(make):
    model = StreamRegressor(make(), 2)
    x = torch.randn(9, 4, 3)
    whole, end = model(x)
    first, state = model(x[:4])
    second, end_again = model(x[4:], state)
    assert torch.allclose(torch.cat([first, second]), whole, atol=1e-12)
    for a, b in zip(state_parts(end), state_parts(end_again)):
        assert torch.allclose(a, b, atol=1e-12)


# -- train_on_stream ---------------------------------------------------------
def train_one(model, data, windows, length, lr, carry):
    """The reference: one model, one stream, a plain loop."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    state, losses = None, []
    for _ in range(windows):
        x, target = data.window(length)
        y, end = model(x, state if carry else None)
        loss = F.mse_loss(y, target)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        state = tuple(s.detach() for s in end) if isinstance(end, tuple) \
            else end.detach()
        losses.append(loss.item())
    return torch.tensor(losses), state


@pytest.mark.parametrize("make", [lambda: PrototypeLSTMCell(3, 4),
                                  lambda: GRUCell(3, 4),
                                  lambda: BasicLSTMCell(3, 4)])
@pytest.mark.parametrize("carry", [True, False])
def test_each_member_is_trained_as_it_would_be_alone(make, carry):
    models = [StreamRegressor(make(), 2) for _ in range(3)]
    alone = [copy.deepcopy(m) for m in models]
    run = train_on_stream(models, [stream(k) for k in range(3)], windows=6,
                          window_length=5, lr=3e-2, carry_state=carry)
    assert run.losses.shape == run.state_norm.shape == (6, 3)
    for k, model in enumerate(alone):
        losses, state = train_one(model, stream(k), 6, 5, 3e-2, carry)
        assert torch.allclose(run.losses[:, k], losses, rtol=1e-9, atol=0)
        for a, b in zip(model.parameters(), models[k].parameters()):
            assert torch.allclose(a, b, rtol=1e-8, atol=1e-10)
        final = tuple(p[k] for p in state_parts(run.final_states))
        for a, b in zip(state_parts(state), final):
            assert torch.allclose(a, b, rtol=1e-8, atol=1e-10)
        whole = torch.cat(state_parts(state), dim=-1)
        assert torch.isclose(run.state_norm[-1, k], whole.norm(dim=-1).max())


def test_train_on_stream_rejects_mismatches():
    models = [StreamRegressor(GRUCell(3, 4), 2) for _ in range(2)]
    with pytest.raises(ValueError, match="one stream per model"):
        train_on_stream(models, [stream(0)], windows=1, window_length=3)
    mixed = [models[0], StreamRegressor(PrototypeLSTMCell(3, 4), 2)]
    with pytest.raises(TypeError, match="one cell type"):
        train_on_stream(mixed, [stream(0), stream(1)], windows=1,
                        window_length=3)
    with pytest.raises(ValueError, match="one batch size"):
        train_on_stream(models, [stream(0), stream(1, batch_size=5)],
                        windows=1, window_length=3)
    with pytest.raises(ValueError):
        train_on_stream(models, [stream(0), stream(1)], windows=0,
                        window_length=3)
