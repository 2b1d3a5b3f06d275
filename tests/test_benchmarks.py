"""The benchmark commands (benchmarks/recurrent.py, benchmarks/seeds.py,
benchmarks/ptb_window.py) at smoke-test sizes."""
import importlib.util
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """benchmarks/<name>.py as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"{name}_benchmark", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recurrent_benchmark():
    return load_script("recurrent")


@pytest.mark.filterwarnings("ignore:TF32 acceleration")
def test_without_onednn_is_the_same_function(recurrent_benchmark):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(5, 7)
    x = torch.randn(4, 3, 5)
    out, (h, c) = lstm(x)
    out2, (h2, c2) = recurrent_benchmark.WithoutOneDNN(lstm)(x)
    for a, b in ((out, out2), (h, h2), (c, c2)):
        assert torch.allclose(a, b, atol=1e-6)


def test_quick_run_writes_json_and_table(recurrent_benchmark, tmp_path):
    out = tmp_path / "quick.json"
    result = recurrent_benchmark.main(
        ["--quick", "--modes", "infer", "--min-reps", "2", "--budget", "0",
         "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    rows = saved["builtin"]
    assert {r["pair"] for r in rows} == {"lstm", "gru", "rnn"}
    for r in rows:
        assert r["fused_ms"] > 0 and r["builtin_ms"] > 0
        assert r["fused_ratio"] == pytest.approx(
            r["fused_ms"] / r["builtin_ms"], rel=0.01)
    lstm = next(r for r in rows if r["pair"] == "lstm")
    has_onednn = torch.backends.mkldnn.is_available()
    assert ("native_ratio" in lstm) == has_onednn
    assert all("native_ratio" not in r for r in rows if r["pair"] != "lstm")
    table = out.with_suffix(".md").read_text()
    assert saved["meta"]["command"] in table
    assert table.count("\n| lstm |") == 1
    if has_onednn:
        assert "oneDNN-off ratio" in table


@pytest.fixture(scope="module")
def seeds_benchmark():
    return load_script("seeds")


@pytest.mark.parametrize("variant", [1, 8])
def test_stacked_seeds_compute_what_sequential_runs_compute(seeds_benchmark,
                                                             variant):
    models = seeds_benchmark.make_models(3, variant, vocab=30, state=6,
                                         device=torch.device("cpu"))
    for model in models:
        model.double()
    stacked = seeds_benchmark.Stacked(models)
    assert stacked.params["readout.weight"].shape == (3, 30, 6)
    window = torch.randint(30, (6, 4))
    same = seeds_benchmark.check_same(models, stacked, window[:-1],
                                      window[1:])
    assert same["grad_max"] > 1e-3                  # the gradients are not 0
    assert same["loss_diff"] < 1e-12 and same["grad_diff"] < 1e-12
    # the seeds differ, so the stacked models are not one model three times
    W = stacked.params["layers.0.cell.W"]
    assert (W[0] - W[1]).abs().max() > 1e-3


def test_seeds_benchmark_writes_json_and_table(seeds_benchmark, tmp_path):
    out = tmp_path / "seeds.json"
    result = seeds_benchmark.main(
        ["--seeds", "1,2", "--vocab", "40", "--state", "8", "--batch", "3",
         "--bptt", "5", "--min-reps", "2", "--budget", "0", "--out",
         str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    assert [r["seeds"] for r in saved["rows"]] == [1, 2]
    for r in saved["rows"]:
        assert r["speedup"] == pytest.approx(
            r["sequential_ms"] / r["stacked_ms"], rel=0.01)
        assert r["grad_diff"] < 1e-4 * max(1.0, r["grad_max"])
    table = out.with_suffix(".md").read_text()
    assert saved["meta"]["command"] in table
    assert table.count("\n| 2 |") == 1


def test_seeds_benchmark_rejects_a_bad_number_of_seeds(seeds_benchmark,
                                                        tmp_path):
    with pytest.raises(SystemExit):
        seeds_benchmark.main(["--seeds", "0", "--out",
                              str(tmp_path / "x.json")])


@pytest.mark.compiled             # its own target: make test-compiled (about 30 s)
@pytest.mark.skipif(shutil.which("c++") is None or shutil.which("ninja") is None,
                    reason="needs a C++ compiler and ninja to build the step")
def test_compiled_step_matches_the_fast_path(tmp_path):
    compiled_step = load_script("compiled_step")
    out = tmp_path / "compiled.json"
    result = compiled_step.main(["--sizes", "8/16", "--lengths", "5",
                                 "--reps", "1", "--out", str(out)])
    (row,) = result["rows"]
    assert row["max_difference"] < 1e-5           # the same function
    assert row["compiled_ratio"] == pytest.approx(
        row["compiled_ms"] / row["builtin_ms"], rel=0.01)
    assert json.loads(out.read_text())["meta"]["compile_s"] >= 0
    assert "| 8/16 | 5 |" in out.with_suffix(".md").read_text()


def test_ptb_window_benchmark_writes_json_and_table(tmp_path):
    """One window of the full-scale model both ways, and the read-out's
    floor: the file's minutes are its milliseconds times the windows of an
    epoch, and the two precisions start from the same loss, near ln V."""
    bench = load_script("ptb_window")
    out = tmp_path / "window.json"
    result = bench.main(["--quick", "--variants", "8", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    [row] = saved["rows"]
    assert row["float32_min_per_epoch"] == pytest.approx(
        row["float32_ms"] * bench.WINDOWS_PER_EPOCH / 60e3, abs=0.01)
    first = row["first_loss"]
    assert first["float32"] == pytest.approx(math.log(bench.VOCAB), rel=0.02)
    assert first["bfloat16"] == pytest.approx(first["float32"], rel=0.01)
    assert bench.WINDOWS_PER_EPOCH == 1033      # 929,589 tokens, 30 x 30
    assert saved["meta"]["command"] in out.with_suffix(".md").read_text()
