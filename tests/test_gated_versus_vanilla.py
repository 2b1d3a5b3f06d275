"""The command of Part II's closing test (lstmlib.commands.gated_versus_vanilla)
and the records it committed."""
import json

import pytest

import lstmlib
from lstmlib.commands.gated_versus_vanilla import contestant, main
from tests.command_line import refusal


def test_a_contestant_is_a_cell_with_an_optional_size():
    assert contestant("vanilla RNN:33", 16) == ("vanilla RNN", 33)
    assert contestant("basic LSTM", 16) == ("basic LSTM", 16)
    with pytest.raises(ValueError, match="expected a cell"):
        contestant("LSTM:16", 16)
    with pytest.raises(ValueError, match="positive state size"):
        contestant("GRU:0", 16)


def test_the_command_writes_every_run_with_its_provenance(tmp_path):
    out = tmp_path / "grid.json"
    main(["--contestants", "vanilla RNN:3", "GRU", "--lags", "4", "--runs",
          "2", "--steps", "2", "--state-size", "2", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert {"command", "date", "machine", "versions", "seeds"} <= set(saved)
    assert saved["command"].startswith(
        "python -m lstmlib.commands.gated_versus_vanilla ")
    assert saved["seeds"] == lstmlib.seeds(2, offset=1000)
    cells = [(r["cell"], r["state_size"], r["parameters"])
             for r in saved["records"]]
    # vanilla: n(n + m + 1) + n + 1 with m = 2; GRU: three such blocks
    assert cells == [("vanilla RNN", 3, 22)] * 2 + [("GRU", 2, 33)] * 2
    assert [r["seed"] for r in saved["records"]] == saved["seeds"] * 2


def test_a_bad_contestant_stops_the_command_with_one_line(capsys):
    assert "positive state size" in refusal(
        main, ["--contestants", "vanilla RNN:x", "--out", "never.json"], capsys)


@pytest.mark.parametrize("name", ["adding_cpu.json",
                                  "temporal_order_cpu.json"])
def test_the_committed_grids_are_complete_and_consistent(name):
    grid = lstmlib.load_result(f"gated_versus_vanilla/{name}")
    records = grid["records"]
    cells = {(r["cell"], r["state_size"]) for r in records}
    lags = {r["T"] for r in records}
    assert len(records) == len(cells) * len(lags) * len(grid["seeds"])
    for r in records:
        assert r["solved"] == (r["final_loss"] < r["threshold"])
        assert r["steps"] <= r["max_steps"] == 600
        assert r["seed"] in grid["seeds"]
