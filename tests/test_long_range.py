"""lstmlib.experiments.long_range: the cells are initialised as the chapter says, a run
is reproducible from its seed and gives a JSON-able record whose verdict
follows the stated rule, and bad names are refused."""
import json

import pytest
import torch

from lstmlib import Cell
from lstmlib.commands.long_range import main
from lstmlib.experiments.long_range import (LAG_CELLS, LAG_TASKS, lag_model, lag_sweep,
                                solve_lag_task, solve_lag_task_seeds)
from lstmlib.seeds import seeds as book_seeds
from lstmlib.experiments.tasks import ADDING_BASELINE_MSE, copy_memory_baseline
from tests.command_line import exits, option_entries, refusal


@pytest.mark.parametrize("name", list(LAG_CELLS))
def test_cells_start_as_the_chapter_says(name):
    cell = LAG_CELLS[name](3, 5)
    assert isinstance(cell, Cell)
    assert (cell.input_size, cell.state_size) == (3, 5)
    if name == "vanilla RNN":                      # orthogonal W
        assert torch.allclose(cell.W.T @ cell.W, torch.eye(5), atol=1e-6)
    else:             # the keep gate's bias block (rows n..2n) starts at 1
        assert torch.equal(cell.b[5:10], torch.ones(5))


def test_lag_model_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = lag_model("GRU", "temporal order", state_size=4, seed=3)
    assert torch.equal(torch.rand(1), before)
    b = lag_model("GRU", "temporal order", state_size=4, seed=3)
    c = lag_model("GRU", "temporal order", state_size=4, seed=4)
    for (_, p), (_, q), (_, r) in zip(a.named_parameters(),
                                      b.named_parameters(),
                                      c.named_parameters()):
        assert torch.equal(p, q)
    assert not torch.equal(a.readout.weight, c.readout.weight)
    assert a.readout.out_features == 4 and a.recurrent.cell.input_size == 8


@pytest.mark.parametrize("task, T", [("adding", 5), ("copy", 2),
                                     ("temporal order", 20)])
def test_a_run_gives_a_reproducible_json_record(task, T):
    options = dict(state_size=4, batch_size=8, steps=3, eval_size=16)
    record, model = solve_lag_task("basic LSTM", task, T, **options)
    again, _ = solve_lag_task("basic LSTM", task, T, **options)
    record.pop("seconds")
    again.pop("seconds")
    assert record == again
    assert json.loads(json.dumps(record)) == record
    assert record["steps"] == 3 and record["T"] == T
    assert record["threshold"] == pytest.approx(0.1 * record["baseline"])
    assert record["solved"] == (record["final_loss"] < record["threshold"])
    assert isinstance(model, torch.nn.Module)
    baseline = {"adding": ADDING_BASELINE_MSE,
                "copy": copy_memory_baseline(T)}.get(task)
    if baseline is not None:
        assert record["baseline"] == pytest.approx(baseline)


def test_an_easy_instance_is_solved_and_stops_early():
    record, _ = solve_lag_task("GRU", "adding", 2, state_size=8,
                               steps=400, lr=3e-2, eval_size=200)
    assert record["solved"] and record["steps"] < 400


@pytest.mark.parametrize("cell, task, T", [("vanilla RNN", "adding", 5),
                                           ("GRU", "temporal order", 20),
                                           ("basic LSTM", "copy", 2)])
def test_seeds_at_once_equal_separate_runs(cell, task, T):
    options = dict(state_size=4, batch_size=8, steps=12, eval_size=16)
    seeds = book_seeds(3, 5)
    records, models = solve_lag_task_seeds(cell, task, T, seeds, **options)
    assert len(records) == len(models) == 3
    for seed, record, model in zip(seeds, records, models):
        alone, alone_model = solve_lag_task(cell, task, T, seed=seed,
                                            **options)
        for key in ("final_loss", "train_loss"):          # float32
            assert record.pop(key) == pytest.approx(alone.pop(key),
                                                    rel=1e-4)
        assert record.pop("seconds") >= 0 and alone.pop("seconds") >= 0
        assert record == alone
        for p, q in zip(model.parameters(), alone_model.parameters()):
            assert torch.allclose(p, q, rtol=1e-4, atol=1e-6)


def test_seeds_at_once_stop_early_one_by_one():
    records, _ = solve_lag_task_seeds("GRU", "adding", 4, book_seeds(4, 9),
                                      state_size=8, steps=300)
    for record in records:
        alone, _ = solve_lag_task("GRU", "adding", 4, seed=record["seed"],
                                  state_size=8, steps=300)
        assert record["steps"] == alone["steps"]

def test_sweep_order_and_the_command(tmp_path):
    records = lag_sweep(["vanilla RNN", "GRU"], ["adding"], [3, 4],
                        state_size=2, batch_size=4, steps=2, eval_size=8)
    assert [(r["T"], r["cell"]) for r in records] == [
        (3, "vanilla RNN"), (3, "GRU"), (4, "vanilla RNN"), (4, "GRU")]
    out = tmp_path / "sweep.json"
    main(["--cells", "GRU", "--tasks", "adding", "--lags", "3",
          "--steps", "2", "--state-size", "2", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert {"command", "date", "machine", "versions"} <= set(saved)
    assert [r["cell"] for r in saved["records"]] == ["GRU"]


@pytest.mark.parametrize("call, words", [
    (lambda: lag_model("LSTM", "adding"), "cell"),
    (lambda: lag_model("GRU", "addition"), "task"),
    (lambda: solve_lag_task("GRU", "adding", 0), "T"),
    (lambda: solve_lag_task("GRU", "adding", 5, solved_fraction=1.5),
     "solved_fraction"),
    (lambda: lag_sweep(["GRU"], ["sorting"], [5]), "task"),
])
def test_bad_names_and_values_are_refused(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def test_every_task_has_a_positive_baseline():
    for name, task in LAG_TASKS.items():
        assert task.baseline(20) > 0, name


def test_the_committed_sweeps_are_complete_and_consistent():
    from lstmlib.experiments.long_range import load_lag_results
    sweeps = load_lag_results()
    assert sweeps
    for sweep in sweeps:
        assert sweep["command"].startswith("python -m lstmlib.commands.long_range")
        records = sweep["records"]
        grid = {(r["task"], r["T"], r["cell"]) for r in records}
        lags = {(r["task"], r["T"]) for r in records}
        assert len(grid) == len(records) == 7 * len(lags)   # full grids
        for r in records:
            assert r["solved"] == (r["final_loss"] < r["threshold"])
            assert r["steps"] <= r["max_steps"]


# -- the command line guides -----------------------------------------------
def test_every_option_says_what_it_is_and_its_default(capsys):
    help_text, _ = exits(main, ["--help"], capsys, 0)
    entries = option_entries(help_text)
    assert len(entries) == 11
    for entry in entries:
        assert "(default: " in entry or "(required" in entry, entry


@pytest.mark.parametrize("argv, expected", [
    (["--lags", "0"], "argument --lags: expected a positive integer, got '0'"),
    (["--lags", "10", "x"],
     "argument --lags: expected a positive integer, got 'x'"),
    (["--seeds", "-1"], "argument --seeds: expected an integer >= 0, got '-1'"),
    (["--state-size", "-4"],
     "argument --state-size: expected a positive integer, got '-4'"),
    (["--steps", "0"], "argument --steps: expected a positive integer, got '0'"),
    (["--batch-size", "0"],
     "argument --batch-size: expected a positive integer, got '0'"),
    (["--lr", "-1"], "argument --lr: expected a number > 0, got '-1'"),
    (["--lr", "inf"], "argument --lr: expected a number > 0, got 'inf'"),
    (["--threads", "0"],
     "argument --threads: expected a positive integer, got '0'"),
    (["--cells", "LSTM"], "argument --cells: invalid choice: 'LSTM'"),
    (["--tasks", "sorting"], "argument --tasks: invalid choice: 'sorting'"),
])
def test_bad_values_are_one_line_errors_at_parse_time(argv, expected, capsys,
                                                      tmp_path):
    out = tmp_path / "sweep.json"
    assert f"error: {expected}" in refusal(main, argv + ["--out", str(out)],
                                           capsys)
    assert not out.exists()                              # nothing ran


def test_cuda_without_cuda_is_said_plainly(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    last = refusal(main, ["--device", "cuda",
                          "--out", str(tmp_path / "sweep.json")], capsys)
    assert "argument --device: expected a device this machine has, got " \
           "'cuda': CUDA is not available here" in last


def test_the_command_prints_one_json_line_per_run(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    main(["--cells", "GRU", "vanilla RNN", "--tasks", "adding", "--lags",
          "3", "--steps", "2", "--state-size", "2", "--out", str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["cell"] for line in lines] == [
        "GRU", "vanilla RNN"]
