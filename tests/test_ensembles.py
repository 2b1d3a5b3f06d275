"""lstmlib.experiments.ensembles: K stacked models train as K separate runs would.

Every comparison is in float64 against the same K models trained one by
one with train_model, to 1e-10. Seeds come from lstmlib.seeds, so the
tests run on whatever stream LSTMLIB_SEED selects."""
import importlib.util
import json
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lstmlib.experiments import ensembles
from lstmlib.experiments.ensembles import Ensemble, ensemble_fast_path, train_ensemble
from lstmlib.cells.gru import GRUCell
from lstmlib.cells.lstm import BasicLSTMCell
from lstmlib.cells.registry import REGISTERED_CELLS
from lstmlib.seeds import seeds as book_seeds
from lstmlib.experiments.training import (FinalStateClassifier, FinalStateRegressor,
                              PerStepClassifier, per_step_cross_entropy,
                              train_model)
from lstmlib.cells.vanilla import VanillaRNNCell

ROOT = Path(__file__).resolve().parents[1]
M, N, T, B, C = 3, 4, 5, 3, 3          # input, state, steps, batch, outputs
TOL = 1e-10

#: Every cell of the registry with its defaults, and the settings whose
#: fast path differs from the defaults': the GRU with the reset after W
#: (the default, before, has none) and the vanilla RNN with ReLU.
CELLS = {cell.name: partial(cell.build, M, N) for cell in REGISTERED_CELLS}
CELLS["GRU, reset after"] = lambda: GRUCell(M, N, reset="after")
CELLS["vanilla RNN, relu"] = lambda: VanillaRNNCell(M, N,
                                                    nonlinearity="relu")
#: The cells with the stacked fast path; the ensemble runs the step of
#: every other cell under vmap.
FAST = ("vanilla RNN", "vanilla RNN, relu", "GRU, reset after", "basic LSTM")


def regression_batch(g):
    return (torch.randn(T, B, M, generator=g, dtype=torch.float64),
            torch.randn(B, C, generator=g, dtype=torch.float64))


def class_batch(g):
    return (torch.randint(M, (T, B), generator=g),
            torch.randint(C, (B,), generator=g))


def per_step_batch(g):
    return (torch.randint(M, (T, B), generator=g),
            torch.randint(C, (T, B), generator=g))


KINDS = {
    "regressor": (FinalStateRegressor, regression_batch, F.mse_loss),
    "classifier": (FinalStateClassifier, class_batch, F.cross_entropy),
    "per-step": (PerStepClassifier, per_step_batch, per_step_cross_entropy),
}


def builder(cell: str, kind: str):
    make_cell = CELLS[cell]
    model_class = KINDS[kind][0]
    return lambda: model_class(make_cell(), C).double()


def separate(build, seeds):
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(build())
    return models


def max_parameter_difference(ensemble, models) -> float:
    return max((ensemble.stacked(name)[k] - model.get_parameter(name))
               .abs().max().item()
               for k, model in enumerate(models) for name in ensemble.names)


def test_members_are_initialised_as_separately_seeded_models():
    seeds = book_seeds(3, offset=100)
    build = builder("GRU, reset after", "regressor")
    ensemble = Ensemble.from_seeds(build, seeds)
    assert ensemble.size == 3 and ensemble.seeds == seeds
    assert max_parameter_difference(ensemble, separate(build, seeds)) == 0
    member = ensemble.member(1)
    assert type(member) is FinalStateRegressor
    assert all(torch.equal(p, ensemble.stacked(name)[1])
               for name, p in member.named_parameters())


@pytest.mark.parametrize("chunk", ["whole", "2 steps"])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("cell", FAST)
def test_outputs_losses_and_gradients_equal_separate_models(cell, kind, chunk,
                                                            monkeypatch):
    assert ensemble_fast_path(builder(cell, kind)())
    if chunk == "2 steps":      # the backward factors, 2 steps at a time
        monkeypatch.setattr(ensembles, "_CHUNK_ELEMENTS", 2 * 3 * B * N)
    _, make_batch, loss = KINDS[kind]
    seeds = book_seeds(3, offset=200)
    ensemble = Ensemble.from_seeds(builder(cell, kind), seeds)
    models = separate(builder(cell, kind), seeds)
    batches = [make_batch(torch.Generator().manual_seed(s)) for s in seeds]
    x = torch.stack([b[0] for b in batches])
    target = torch.stack([b[1] for b in batches])
    out = ensemble(x)
    for k, model in enumerate(models):
        assert (out[k] - model(x[k])).abs().max() < TOL
    values = ensemble.losses(loss, x, target)
    values.sum().backward()
    norms = ensemble.clip_grad_norm_(0.05)
    for k, model in enumerate(models):
        value = loss(model(x[k]), target[k])
        assert abs(values[k].item() - value.item()) < TOL
        value.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), 0.05)
        assert abs(norms[k] - norm) < TOL and norm > 0
        for name, p in model.named_parameters():
            assert (ensemble.stacked(name).grad[k] - p.grad).abs().max() \
                < TOL, name


def every_cell_and_kind():
    """Each fast cell with every model kind, each other cell with one,
    the kinds taken in turn."""
    others = [c for c in CELLS if c not in FAST]
    return [*((c, k) for c in FAST for k in KINDS),
            *((c, list(KINDS)[i % len(KINDS)]) for i, c in enumerate(others))]


@pytest.mark.parametrize("cell, kind", every_cell_and_kind())
def test_training_equals_separate_train_model_runs(cell, kind):
    _, make_batch, loss = KINDS[kind]
    seeds = book_seeds(3, offset=300)
    build = builder(cell, kind)
    ensemble = Ensemble.from_seeds(build, seeds)
    assert ensemble.fast == (cell in FAST)
    models = separate(build, seeds)
    options = dict(steps=4, lr=0.05, clip_norm=0.1)
    expected = [train_model(model, make_batch, loss, seed=s, **options)
                for model, s in zip(models, seeds)]
    losses = train_ensemble(ensemble, make_batch, loss, **options)
    assert torch.tensor(losses).shape == (3, 4)
    assert (torch.tensor(losses) - torch.tensor(expected)).abs().max() < TOL
    assert max_parameter_difference(ensemble, models) < TOL


def test_a_list_of_models_is_trained_in_place():
    seeds = book_seeds(2, offset=400)
    build = builder("vanilla RNN", "regressor")
    models, expected = separate(build, seeds), separate(build, seeds)
    options = dict(steps=3, clip_norm=None)
    losses = train_ensemble(models, regression_batch, F.mse_loss,
                            seeds=seeds, **options)
    for model, s, got in zip(expected, seeds, losses):
        want = train_model(model, regression_batch, F.mse_loss, seed=s,
                           **options)
        assert max(abs(a - b) for a, b in zip(want, got)) < TOL
    for model, reference in zip(models, expected):
        for p, q in zip(model.parameters(), reference.parameters()):
            assert (p - q).abs().max() < TOL


def stop_steps(losses, threshold):
    """How many steps train_model takes with stop_below=threshold, read
    off the losses of a run without it."""
    for i in range(10, len(losses) + 1):
        if sum(losses[i - 10:i]) / 10 < threshold:
            return i
    return len(losses)


def test_members_stop_early_on_their_own():
    seeds = book_seeds(3, offset=500)
    build = builder("basic LSTM", "regressor")
    options = dict(steps=20, lr=0.05)
    runs = [train_model(model, regression_batch, F.mse_loss, seed=s,
                        **options)
            for model, s in zip(separate(build, seeds), seeds)]
    # a threshold halfway between two 10-step means at which at least one
    # member stops early and at least one runs all 20 steps
    means = sorted(sum(r[i - 10:i]) / 10 for r in runs for i in range(10, 21))
    threshold = next(t for t in ((a + b) / 2 for a, b in zip(means,
                                                              means[1:]))
                     if min(stop_steps(r, t) for r in runs) < 20
                     == max(stop_steps(r, t) for r in runs))
    models = separate(build, seeds)
    expected = [train_model(model, regression_batch, F.mse_loss, seed=s,
                            stop_below=threshold, **options)
                for model, s in zip(models, seeds)]
    assert [len(e) for e in expected] == [stop_steps(r, threshold)
                                          for r in runs]
    ensemble = Ensemble.from_seeds(build, seeds)
    calls = []
    losses = train_ensemble(ensemble, regression_batch, F.mse_loss,
                            stop_below=threshold, before_step=calls.append,
                            **options)
    assert list(map(len, losses)) == list(map(len, expected))
    for got, want in zip(losses, expected):
        assert max(abs(a - b) for a, b in zip(got, want)) < TOL
    assert max_parameter_difference(ensemble, models) < TOL
    assert calls == [*range(20), 20]


def test_one_input_for_all_members():
    seeds = book_seeds(3, offset=600)
    build = builder("GRU, reset after", "classifier")
    ensemble = Ensemble.from_seeds(build, seeds)
    x, target = class_batch(torch.Generator().manual_seed(seeds[0]))
    out = ensemble(x)                                   # ids (T, B)
    assert out.shape == (3, B, C)
    values = ensemble.losses(F.cross_entropy, x, target)
    for k, model in enumerate(separate(build, seeds)):
        assert (out[k] - model(x)).abs().max() < TOL
        assert abs(values[k] - F.cross_entropy(model(x), target)) < TOL


def test_buffers_are_reused_and_a_graph_is_differentiated_once():
    build = builder("basic LSTM", "per-step")
    ensemble = Ensemble.from_seeds(build, book_seeds(2, offset=700))
    x, target = per_step_batch(torch.Generator().manual_seed(1))
    with torch.no_grad():
        first = ensemble(x)
    values = ensemble.losses(per_step_cross_entropy, x, target)
    values.sum().backward(retain_graph=True)
    grads = [p.grad.clone() for p in ensemble.parameters()]
    with pytest.raises(RuntimeError, match="differentiated once"):
        values.sum().backward()
    ensemble.zero_grad()
    again = ensemble.losses(per_step_cross_entropy, x, target)
    other = ensemble.losses(per_step_cross_entropy, x.flip(0), target)
    again.sum().backward()                  # two graphs, buffers apart
    assert torch.equal(ensemble(x).detach(), first)
    assert torch.equal(again, values)
    for p, g in zip(ensemble.parameters(), grads):
        assert torch.equal(p.grad, g)
    del other


def test_clear_errors():
    build = builder("basic LSTM", "regressor")
    with pytest.raises(ValueError, match="K >= 1"):
        Ensemble([])
    with pytest.raises(ValueError, match="K >= 1"):
        Ensemble.from_seeds(build, [])
    with pytest.raises(ValueError, match="distinct seeds"):
        Ensemble.from_seeds(build, [1, 1])
    with pytest.raises(TypeError, match="int seeds"):
        Ensemble.from_seeds(build, [1.5])
    ensemble = Ensemble.from_seeds(build, [1, 2])
    with pytest.raises(ValueError, match="expected 2 seeds"):
        train_ensemble(ensemble, regression_batch, F.mse_loss, steps=1,
                       seeds=[1, 2, 3])
    with pytest.raises(ValueError, match="records no seeds"):
        train_ensemble(Ensemble([build(), build()]), regression_batch,
                       F.mse_loss, steps=1)
    with pytest.raises(ValueError, match="positive int"):
        train_ensemble(ensemble, regression_batch, F.mse_loss, steps=0)
    with pytest.raises(TypeError, match="FinalStateRegressor, "
                       "FinalStateClassifier, PerStepClassifier"):
        Ensemble([nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="one kind"):
        Ensemble([build(), FinalStateRegressor(BasicLSTMCell(M, N + 1), C)])
    with pytest.raises(ValueError, match=r"\(K=2, T, B, 3\)"):
        ensemble(torch.zeros(3, T, B, M, dtype=torch.float64))
    with pytest.raises(TypeError, match="dtype torch.float64"):
        ensemble(torch.zeros(T, B, M))
    with pytest.raises(TypeError, match="float inputs"):
        ensemble(torch.zeros(T, B, dtype=torch.long))
    with pytest.raises(ValueError, match="ids in"):
        Ensemble.from_seeds(builder("basic LSTM", "classifier"), [1])(
            torch.full((T, B), M))

    def ragged(g):
        x, y = regression_batch(g)
        return x[:int(torch.randint(1, T, (1,), generator=g))], y
    with pytest.raises(ValueError, match="different shapes"):
        train_ensemble(Ensemble.from_seeds(build, [4, 5, 6, 7]), ragged,
                       F.mse_loss, steps=3)


def test_benchmark_smoke_run(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "ensembles_benchmark", ROOT / "benchmarks" / "ensembles.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "quick.json"
    result = bench.main(["--quick", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    for r in saved["rows"]:
        assert r["loss_diff"] < 1e-4
        assert r["ratio_to_one"] == pytest.approx(
            r["stacked_ms"] / r["one_ms"], rel=0.01)
        assert r["products_ms"] > 0 and r["products_to_one"] == pytest.approx(
            r["products_ms"] / r["one_ms"], rel=0.01)
    assert saved["meta"]["command"] in out.with_suffix(".md").read_text()
    assert "| products / one |" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_benchmark_floor_is_the_stacked_steps_products(cell):
    """The benchmark's "products" contestant runs the recurrent products
    of a stacked step, no more and no fewer: counted by torch's FLOP
    counter's ``bmm`` (the in-place ``baddbmm_`` of both is not counted),
    the stacked step's products are the floor's plus the read-out's two
    backward ones, to its weight and to its input (its forward product,
    with the bias, is a ``baddbmm``)."""
    from torch.utils.flop_counter import FlopCounterMode
    spec = importlib.util.spec_from_file_location(
        "ensembles_benchmark", ROOT / "benchmarks" / "ensembles.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    K, n, B, T = 3, 8, 4, 10
    ensemble = Ensemble.from_seeds(lambda: bench.build(cell, n, "cpu"),
                                   list(range(K)))
    optimiser = torch.optim.Adam(ensemble.parameters())
    batches = [bench.adding_problem(B, T, generator=torch.Generator()
                                    .manual_seed(s)) for s in range(K)]
    x = torch.stack([b[0] for b in batches])
    y = torch.stack([b[1] for b in batches])

    def bmm_flops(run):
        with FlopCounterMode(display=False) as counter:
            run()
        return {str(op): v for op, v in
                counter.get_flop_counts()["Global"].items()}["aten.bmm"]

    step = bmm_flops(lambda: bench.stacked_step(ensemble, optimiser, x, y))
    floor = bmm_flops(bench.products(cell, n, B, T, K, "cpu"))
    readout = 2 * K * B * n * bench.OUTPUT
    assert step == floor + 2 * readout
