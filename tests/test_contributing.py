"""CONTRIBUTING.md's worked example (a cell with a fast path) runs and
does what the text says: Recurrent takes the cell's own fast path, which
equals the loop of its step in float64, gradients included; its registry
line builds it; its docstring's example runs."""
import doctest
import re
from pathlib import Path

import pytest
import torch

from lstmlib.cells.registry import RegisteredCell
from tests.random_weights import randomize_

ROOT = Path(__file__).resolve().parent.parent


def example_blocks() -> list:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text.split("### Adding a cell with a fast path", 1)[1]
    section = section.split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def example():
    cell_code, registry_line = example_blocks()
    namespace = {}
    exec(compile(cell_code, "CONTRIBUTING.md", "exec"), namespace)
    namespace["RegisteredCell"] = RegisteredCell
    namespace["entry"] = eval(registry_line.strip().rstrip(","), namespace)
    return namespace


def test_the_section_has_the_cell_and_its_registry_line():
    assert len(example_blocks()) == 2


def test_the_registry_line_builds_the_cell(example):
    entry = example["entry"]
    assert entry.name == "leaky units"
    assert type(entry.build(3, 4)) is example["LeakyUnitCell"]
    assert (ROOT / "book" / f"{entry.chapter}.ipynb").exists()


def test_recurrent_takes_the_fast_path_and_it_equals_the_loop(example):
    torch.manual_seed(0)
    cell = randomize_(example["LeakyUnitCell"](3, 4, keep=0.8)).double()
    calls = []
    fast_path = cell.forward_sequence
    cell.forward_sequence = lambda *a: calls.append(1) or fast_path(*a)
    Recurrent = example["Recurrent"]
    x = torch.randn(9, 2, 3, dtype=torch.float64, requires_grad=True)
    s0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    results = []
    for fused in (True, False):
        out, final = Recurrent(cell, fused=fused)(x, s0)
        loss = (out * out.detach().cos()).sum() + final.sum()
        results.append([out, final, *torch.autograd.grad(
            loss, [x, s0, cell.U, cell.b])])
    assert calls == [1]                         # the fast path ran once
    for fast, loop in zip(*results):
        assert torch.allclose(fast, loop, rtol=0, atol=1e-10)


def test_a_changed_step_falls_back_to_the_loop(example):
    class Louder(example["LeakyUnitCell"]):
        def step(self, u, s):
            return super().step(2 * u, s)

    cell = Louder(3, 4)
    x = torch.randn(5, 2, 3)
    assert cell.forward_sequence(x, cell.initial_state(2)) is None


def test_the_docstring_example_runs(example):
    cls = example["LeakyUnitCell"]
    test = doctest.DocTestParser().get_doctest(
        cls.__doc__, dict(example, torch=torch), "LeakyUnitCell", None, 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert runner.summarize(verbose=False).attempted == 2
