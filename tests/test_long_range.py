"""lstmlib.experiments.long_range: the cells are initialised as the chapter says, a run
is reproducible from its seed and gives a JSON-able record whose verdict
follows the stated rule, and bad names are refused.

The grid (lstmlib.experiments.long_range_grid and its command): the cell
variants start as their notes say, the success criteria judge hand-made
outputs as the papers would, the rate is chosen on the validation set
before any test point runs, a killed grid resumes, every record carries
its provenance, and the committed grid holds only what its commands
asked for."""
import json
import math
import shlex

import pytest
import torch

from lstmlib import Cell
from lstmlib.commands.long_range import main
from lstmlib.experiments.long_range import (LAG_CELLS, LAG_TASKS, lag_model, lag_sweep,
                                solve_lag_task, solve_lag_task_seeds)
from lstmlib.seeds import seeds as book_seeds
from lstmlib.experiments.tasks import ADDING_BASELINE_MSE, copy_memory_baseline
from lstmlib.commands import long_range_grid as grid_command
from lstmlib.experiments import long_range_grid as grid
from lstmlib.experiments.long_range_grid import (
    GRID_CELLS, GRID_FOLDER, GRID_TASKS, GridPoint, GridProtocol,
    SelectionIncomplete, choose_learning_rate, evaluate, evaluation_set,
    grid_model, grid_state_size, parameter_count, summarize_runs)
from lstmlib.experiments.seed_statistics import success_rate
from lstmlib.experiments.tasks import (ADDING_HOCHREITER_TOLERANCE,
                                       COPY_LENGTH, copy_memory)
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


# -- the grid (lstmlib.experiments.long_range_grid and its command) ---------

#: A grid small enough to run in a test: two cells, two tasks, two rates,
#: two seeds, a few steps of tiny models.
TINY = ["--cells", "lstm", "irnn", "--select", "adding_le=4", "copy=2",
        "--test", "adding_le=5", "copy=3", "--lrs", "0.01", "0.03",
        "--seeds", "2", "--select-seeds", "2", "--state-size", "3",
        "--task-state-size", "copy=4", "--batch-size", "4", "--steps", "2",
        "--task-steps", "copy=3", "--validation-size", "8",
        "--test-size", "8"]
#: Its points: 2 tasks x 2 cells x (2 rates + 1 test lag).
TINY_POINTS = 12


def tiny(folder) -> list:
    return TINY + ["--out", str(folder)]


def files(folder) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*.json"))}


@pytest.mark.parametrize("name", list(GRID_CELLS))
def test_grid_cells_start_as_their_notes_say(name):
    torch.manual_seed(0)
    cell = GRID_CELLS[name].build(3, 5, 40)
    n = 5
    if name.startswith("vanilla"):
        assert torch.allclose(cell.W.T @ cell.W, torch.eye(n), atol=1e-6)
        assert cell.nonlinearity == "tanh"
    elif name.startswith("irnn"):
        assert torch.equal(cell.W, torch.eye(n))
        assert torch.equal(cell.b, torch.zeros(n))
        assert cell.nonlinearity == "relu"
    elif name == "lstm_bf0":
        assert torch.equal(cell.b, torch.zeros(4 * n))
    elif name == "lstm_chrono":          # b_f = log U[1, 39], b_i = -b_f
        b_f = cell.b[n:2 * n]
        assert ((b_f >= 0) & (b_f <= math.log(39))).all()
        assert torch.equal(cell.b[:n], -b_f)
        assert torch.equal(cell.b[2 * n:], torch.zeros(2 * n))
    else:                                # the keep gate's bias starts at 1
        assert torch.equal(cell.b[n:2 * n], torch.ones(n))


@pytest.mark.parametrize("task", list(GRID_TASKS))
def test_matched_sizes_match_the_lstm_parameter_count(task):
    lstm = parameter_count(grid_model("lstm", task, 50, 8, seed=0))
    for name in ("vanilla_matched", "irnn_matched"):
        n = grid_state_size(name, task, 8)
        count = parameter_count(grid_model(name, task, 50, 8, seed=0))
        assert n > 8 and count == parameter_count(
            GRID_TASKS[task].spec.readout(GRID_CELLS[name].build(
                GRID_TASKS[task].spec.input_size, n, 50),
                GRID_TASKS[task].spec.num_outputs))
        neighbours = [parameter_count(GRID_TASKS[task].spec.readout(
            GRID_CELLS[name].build(GRID_TASKS[task].spec.input_size, m, 50),
            GRID_TASKS[task].spec.num_outputs)) for m in (n - 1, n + 1)]
        assert all(abs(count - lstm) <= abs(c - lstm) for c in neighbours)
    assert grid_state_size("gru", task, 8) == 8


def test_grid_models_are_seeded_and_leave_the_global_generator_alone():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = grid_model("lstm_chrono", "copy", 10, 4, seed=3)
    assert torch.equal(torch.rand(1), before)
    b = grid_model("lstm_chrono", "copy", 10, 4, seed=3)
    c = grid_model("lstm_chrono", "copy", 10, 4, seed=4)
    assert torch.equal(a.recurrent.cell.b, b.recurrent.cell.b)
    assert not torch.equal(a.recurrent.cell.b, c.recurrent.cell.b)


def test_validation_and_test_sets_are_fixed_and_distinct():
    x_val, y_val = evaluation_set("adding_le", 10, "validation", 50)
    x_test, y_test = evaluation_set("adding_le", 10, "test", 50)
    again, _ = evaluation_set("adding_le", 10, "validation", 50)
    assert torch.equal(x_val, again)
    assert not torch.equal(x_val, x_test)
    # neither is a training stream: training seeds are below SEED_LIMIT
    assert min(grid.VALIDATION_SEED, grid.TEST_SEED) >= grid.SEED_LIMIT
    with pytest.raises(ValueError, match="which"):
        evaluation_set("adding_le", 10, "train", 5)


class _Fixed(torch.nn.Module):
    """A 'model' that answers what it is given, whatever the input."""

    def __init__(self, output):
        super().__init__()
        self.output = output

    def forward(self, x):
        B = x.shape[1]
        start = getattr(self, "start", 0)
        self.start = start + B
        if self.output.dim() == 3:                  # per step: (T, B, C)
            return self.output[:, start:start + B]
        return self.output[start:start + B]


def _judge(task, T, output, target):
    """evaluate() on a model that answers ``output``, 7 sequences at a
    time (the batch is dimension 1 of the input)."""
    B = target.shape[1] if task == "copy" else target.shape[0]
    return evaluate(_Fixed(output), task, T, torch.zeros(1, B), target,
                    chunk=7)


def test_success_criteria_on_hand_made_outputs():
    B = 200
    target = torch.rand(B, 1) + torch.rand(B, 1)
    # adding (Le et al.): MSE below 1/60, not above it
    near = target + 0.1 * torch.tensor([1.0, -1.0]).repeat(B // 2)[:, None]
    assert _judge("adding_le", 50, near, target)["success"]   # MSE 0.01
    far = target + 0.15 * torch.tensor([1.0, -1.0]).repeat(B // 2)[:, None]
    assert not _judge("adding_le", 50, far, target)["success"]  # 0.0225
    assert not _judge("adding_le", 50, torch.ones(B, 1), target)["success"]
    # adding (H&S): correct within 0.04; at least 99% of the sequences
    target = 0.5 + torch.rand(B, 1) / 4
    errors = torch.full((B, 1), 0.039)
    errors[:2] = 0.041                                    # 2 of 200 wrong
    found = _judge("adding_hs", 100, target + errors, target)
    assert found["wrong"] == 2 and found["fraction_correct"] == 0.99
    assert found["success"]
    errors[2] = -0.041                                    # 3 of 200 wrong
    found = _judge("adding_hs", 100, target + errors, target)
    assert found["wrong"] == 3 and not found["success"]
    assert ADDING_HOCHREITER_TOLERANCE == 0.04
    # temporal order: right when p(right class) > 0.7, i.e. every output
    # within 0.3 of its one-hot target
    classes = torch.arange(B) % 4

    def logits_with(p):
        other = (1 - p) / 3
        z = torch.full((B, 4), math.log(other))
        z[torch.arange(B), classes] = math.log(p)
        return z
    assert _judge("temporal_order", 100, logits_with(0.71), classes)[
        "success"]
    found = _judge("temporal_order", 100, logits_with(0.69), classes)
    assert found["fraction_correct"] == 0 and found["accuracy"] == 1
    assert not found["success"]
    # copy: a tenth of the memoryless baseline
    T = 10
    _, copied = copy_memory(B, T, generator=torch.Generator().manual_seed(0))
    sure = torch.full((T + 20, B, 10), -30.0)
    sure.scatter_(2, copied.unsqueeze(2), 0.0)
    found = _judge("copy", T, sure, copied)
    assert found["success"] and found["fraction_all_recalled"] == 1
    memoryless = torch.full((T + 20, B, 10), -30.0)
    memoryless[:T + 10, :, 0] = 0
    memoryless[T + 10:, :, 1:9] = 0
    found = _judge("copy", T, memoryless, copied)
    assert found["loss"] == pytest.approx(copy_memory_baseline(T), rel=1e-4)
    assert not found["success"]
    assert COPY_LENGTH == 10


def test_a_point_summary_counts_successes_with_the_exact_interval():
    runs = [dict(success=s, loss=v) for s, v in
            [(True, 0.1), (False, 0.5), (True, 0.2), (False, float("nan")),
             (True, 0.3)]]
    s = summarize_runs(runs)
    rate = success_rate(3, 5)
    assert (s["successes"], s["trials"]) == (3, 5)
    assert (s["rate_low"], s["rate_high"]) == (rate.low, rate.high)
    assert s["loss_median"] == 0.3 and s["loss_min"] == 0.1
    assert s["loss_max"] == math.inf and s["diverged"] == 1


def _protocol(**changes) -> GridProtocol:
    options = dict(state_size=3, batch_size=4, steps=2, lrs=(0.01, 0.03),
                   select_seeds=(0, 1), test_seeds=(100, 101),
                   select_lags={"adding_le": 4}, test_plan=(("adding_le", 5),),
                   validation_size=8, test_size=8)
    options.update(changes)
    return GridProtocol(**options)


def _write_selection(folder, protocol, medians, cell="gru",
                     task="adding_le"):
    for lr, median in medians.items():
        point = GridPoint("select", cell, task, protocol.select_lags[task],
                          lr)
        path = grid.point_path(folder, point)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dict(
            point=point.__dict__, settings=protocol.settings(task),
            summary=dict(loss_median=median))))


def test_the_rate_is_the_best_median_validation_loss(tmp_path):
    protocol = _protocol(lrs=(0.003, 0.01, 0.03))
    with pytest.raises(SelectionIncomplete):
        choose_learning_rate(tmp_path, protocol, "gru", "adding_le")
    _write_selection(tmp_path, protocol, {0.003: 0.5, 0.01: 0.2})
    with pytest.raises(SelectionIncomplete, match="incomplete"):
        grid.points_to_test(tmp_path, protocol, ["gru"], "adding_le", 5)
    _write_selection(tmp_path, protocol, {0.03: math.inf})   # diverged
    lr, medians = choose_learning_rate(tmp_path, protocol, "gru",
                                       "adding_le")
    assert lr == 0.01 and medians == {"0.003": 0.5, "0.01": 0.2,
                                      "0.03": math.inf}
    _write_selection(tmp_path, protocol, {0.003: 0.2})        # a tie
    assert choose_learning_rate(tmp_path, protocol, "gru",
                                "adding_le")[0] == 0.003
    assert grid.points_to_test(tmp_path, protocol, ["gru"], "adding_le", 5) == [
        GridPoint("test", "gru", "adding_le", 5, 0.003)]
    other = _protocol(lrs=(0.003, 0.01, 0.03), steps=3)
    with pytest.raises(ValueError, match="other settings"):
        choose_learning_rate(tmp_path, other, "gru", "adding_le")


@pytest.mark.parametrize("changes, words", [
    (dict(select_seeds=(0, 0)), "select_seeds"),
    (dict(test_seeds=(1, 2), select_seeds=(2, 3)), "disjoint"),
    (dict(lrs=(0.01, 0.01)), "distinct"),
    (dict(select_lags={"temporal_order": 10}), "lag >= 20"),
    (dict(test_plan=(("copy", 5),)), "without a selection lag"),
])
def test_bad_protocols_are_refused(changes, words):
    with pytest.raises(ValueError, match=words):
        _protocol(**changes)


def test_the_grid_selects_before_it_tests_and_writes_full_records(
        tmp_path, capsys):
    paths = grid_command.main(tiny(tmp_path))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(paths) == len(lines) == TINY_POINTS
    assert all(line["status"] == "ran" for line in lines)
    order = [(line["task"], line["phase"]) for line in lines]
    assert order == [("adding_le", "select")] * 4 + [
        ("adding_le", "test")] * 2 + [("copy", "select")] * 4 + [
        ("copy", "test")] * 2
    record = json.loads(paths[-1].read_text())
    assert record["command"] == grid_command.PROGRAM + " " + shlex.join(
        tiny(tmp_path))
    assert {"date", "machine", "versions", "precision", "parameters",
            "lstm_parameters", "state_size", "settings", "runs", "summary",
            "selection", "criterion", "baseline", "evaluated_on"} <= set(
        record)
    assert {"cpu", "threads"} <= set(record["machine"])
    assert record["machine"]["threads"] == 1
    assert record["precision"] == "float32"
    assert {"git_commit", "git_dirty"} <= set(record["versions"])
    assert record["evaluated_on"]["set"] == "test"
    assert [r["seed"] for r in record["runs"]] == [100, 101]
    selection = json.loads(paths[0].read_text())
    assert selection["evaluated_on"]["set"] == "validation"
    assert [r["seed"] for r in selection["runs"]] == [0, 1]
    assert record["selection"]["lr"] == record["point"]["lr"]
    assert record["point"]["task"] == "copy"          # its own budget
    assert record["settings"]["steps"] == 3 == record["runs"][0]["steps"]
    assert record["state_size"] == 4 == record["settings"]["state_size"]
    assert grid_command.grid_coverage(tmp_path).complete


def test_a_killed_grid_resumes_where_it_stopped(tmp_path, monkeypatch,
                                                capsys):
    ran = []
    real = grid.run_point

    def dies_after_five(point, protocol):
        if len(ran) == 5:
            raise KeyboardInterrupt                   # killed mid-point
        ran.append(point)
        return real(point, protocol)
    monkeypatch.setattr(grid, "run_point", dies_after_five)
    with pytest.raises(KeyboardInterrupt):
        grid_command.main(tiny(tmp_path))
    before = files(tmp_path)
    assert len(before) == 5
    assert not list(tmp_path.rglob("*.part"))         # no half file
    ran.clear()
    monkeypatch.setattr(grid, "run_point",
                        lambda point, protocol: (ran.append(point),
                                                 real(point, protocol))[1])
    capsys.readouterr()
    grid_command.main(tiny(tmp_path))
    statuses = [json.loads(line)["status"]
                for line in capsys.readouterr().out.splitlines()]
    assert statuses.count("done before") == 5
    assert len(ran) == TINY_POINTS - 5                # only the rest ran
    after = files(tmp_path)
    assert len(after) == TINY_POINTS
    assert all(after[name] == data for name, data in before.items())
    assert grid_command.grid_coverage(tmp_path).complete


def test_a_folder_of_other_settings_is_refused(tmp_path, capsys):
    grid_command.main(tiny(tmp_path) + ["--phase", "select"])
    capsys.readouterr()
    _, err = exits(grid_command.main, tiny(tmp_path)[:-2] + [
        "--steps", "3", "--out", str(tmp_path)], capsys, 1)
    assert "other settings" in err and "use another folder" in err


def test_coverage_reports_missing_waiting_and_unexpected_points(tmp_path):
    grid_command.main(tiny(tmp_path) + ["--phase", "select"])
    coverage = grid_command.grid_coverage(tmp_path)
    assert coverage.records == 8 and not coverage.missing
    assert coverage.complete                 # it asked for selection only
    missing = tmp_path / "select" / "copy_T2_irnn_lr0.03.json"
    kept = missing.read_bytes()
    missing.unlink()
    coverage = grid_command.grid_coverage(tmp_path)
    assert coverage.missing == [GridPoint("select", "irnn", "copy", 2, 0.03)]
    missing.write_bytes(kept)
    # a full command on the same folder: tests wait for nothing now...
    grid_command.main(tiny(tmp_path))
    assert grid_command.grid_coverage(tmp_path).complete
    # ...and a record that its command did not ask for is reported
    stray = json.loads(kept)
    stray["point"]["lr"] = 0.1
    path = tmp_path / "select" / "copy_T2_irnn_lr0.1.json"
    path.write_text(json.dumps(stray))
    coverage = grid_command.grid_coverage(tmp_path)
    assert coverage.unexpected == [f"{path}: not asked for by its command"]
    path.unlink()
    # a selection still incomplete leaves its test points waiting
    (tmp_path / "select" / "adding_le_T4_lstm_lr0.01.json").unlink()
    coverage = grid_command.grid_coverage(tmp_path)
    assert (grid_command.PROGRAM + " " + shlex.join(tiny(tmp_path)),
            "lstm", "adding_le", 5) in coverage.waiting


def test_the_committed_grid_holds_only_what_its_commands_asked_for():
    coverage = grid_command.grid_coverage(GRID_FOLDER)
    assert coverage.unexpected == []
    for command in coverage.commands:
        assert command.startswith(grid_command.PROGRAM)
    for record in grid.load_grid(GRID_FOLDER):
        assert {"git_commit", "git_dirty"} <= set(record["versions"])
        assert record["precision"] and record["machine"]["threads"] >= 1
        s = record["summary"]
        assert s["successes"] == sum(r["success"] for r in record["runs"])
        assert s["trials"] == len(record["runs"]) >= (
            5 if record["point"]["phase"] == "test" else 3)


def test_the_grid_table_has_a_row_per_test_point(tmp_path):
    grid_command.main(tiny(tmp_path))
    rows = grid.grid_table(grid.load_grid(tmp_path))
    assert [(r["task"], r["cell"]) for r in rows] == [
        ("adding_le", "IRNN"), ("adding_le", "basic LSTM"),
        ("copy", "IRNN"), ("copy", "basic LSTM")]
    assert all(r["trials"] == 2 and r["published"] is None for r in rows)
    assert grid.PUBLISHED[("adding_hs", 100)]["training_sequences"] == 74_000


@pytest.mark.parametrize("argv, expected", [
    (["--select", "adding"], "argument --select: expected TASK=T"),
    (["--select", "adding_hs=10"],
     "argument --select: expected a lag T >= 11 for adding_hs"),
    (["--test", "copy=x"], "argument --test: expected a lag T >= 1"),
    (["--lrs", "0"], "argument --lrs: expected a number > 0, got '0'"),
    (["--seeds", "0"], "argument --seeds: expected a positive integer"),
    (["--cells", "LSTM"], "argument --cells: invalid choice: 'LSTM'"),
    (["--tasks", "copy", "--select", "adding_le=5"],
     "expected a selection lag (--select TASK=T) for every task, "
     "missing: copy"),
])
def test_bad_grid_arguments_are_one_line_errors(argv, expected, capsys,
                                               tmp_path):
    last = refusal(grid_command.main, argv + ["--out", str(tmp_path)],
                   capsys)
    assert expected in last
    assert not list(tmp_path.rglob("*.json"))


def test_every_grid_option_says_its_default(capsys):
    help_text, _ = exits(grid_command.main, ["--help"], capsys, 0)
    for entry in option_entries(help_text):
        assert "(default: " in entry, entry


def test_the_coverage_option_runs_nothing(tmp_path, capsys):
    grid_command.main(tiny(tmp_path) + ["--phase", "select"])
    capsys.readouterr()
    assert grid_command.main(["--coverage", "--out", str(tmp_path)]) == []
    found = json.loads(capsys.readouterr().out)
    assert found["records"] == 8 and found["missing"] == []
    assert found["unexpected"] == [] and len(found["commands"]) == 1
