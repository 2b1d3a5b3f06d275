"""The project's conventions: notebooks stripped and well-formed, dependency
lists in sync, and the GPU-skip hook of conftest.py."""
import json
import shutil
import tomllib
from pathlib import Path

import pytest
import torch
import yaml
from packaging.requirements import Requirement

from tests import notebooks

ROOT = Path(__file__).resolve().parent.parent


# -- notebooks ------------------------------------------------------------------
def test_the_book_has_notebooks():
    assert len(notebooks.notebooks()) >= 3


@pytest.mark.parametrize("path", notebooks.notebooks(), ids=lambda p: p.name)
def test_notebook_follows_conventions(path):
    nb = json.loads(path.read_text())
    assert notebooks.problems(nb, notebooks.repository_url()) == []


def test_convention_checker_catches_violations():
    url = "https://example.org/repo"
    nb = {"cells": [
        {"cell_type": "code", "source": "print(1)", "metadata": {}, "outputs": [{"x": 1}],
         "execution_count": 3},
        {"cell_type": "code", "source": "x = 1", "metadata": {"tags": ["gpu"]},
         "outputs": [], "execution_count": None},
    ]}
    found = " | ".join(notebooks.problems(nb, url))
    for expected in ["with outputs", "execution count", "not 'skip-execution'",
                     "is not one 'if torch.cuda.is_available(): ... else: ...' statement",
                     "not the Colab install cell", "an id of its own"]:
        assert expected in found
    fixed = notebooks.fix(nb, url)
    assert [p for p in notebooks.problems(fixed, url) if "gpu" not in p] == []
    for seeded in ["torch.manual_seed(4)", "train(model, seed=9)",
                   "np.random.default_rng(0)"]:
        nb = notebooks.fix({"cells": [{"cell_type": "code", "source": seeded,
                                       "metadata": {}}]}, url)
        assert any("a fixed seed" in p for p in notebooks.problems(nb, url))
    for moving in ["lstmlib.manual_seed(4)", "train(model, seed=s)",
                   "torch.manual_seed(s)", "lstmlib.seed(3)"]:
        nb = notebooks.fix({"cells": [{"cell_type": "code", "source": moving,
                                       "metadata": {}}]}, url)
        assert notebooks.problems(nb, url) == []
    assert "git+https://example.org/repo" in notebooks.source(fixed["cells"][0])


SKIPPING_GPU_CELL = """\
if torch.cuda.is_available():
    model = train(steps=20_000, device="cuda")
else:
    print("skipped: no CUDA here; on a GPU this cell trains a model "
          "(about 5 minutes)")"""


def test_a_gpu_cell_must_skip_itself_without_cuda():
    assert notebooks.gpu_cell_problems(SKIPPING_GPU_CELL) == []
    refused = [
        ("raises", 'assert torch.cuda.is_available(), "needs a GPU"\ntrain()'),
        ("raises", "if not torch.cuda.is_available():\n"
                   "    raise RuntimeError('needs a GPU')\ntrain()"),
        ("is not one", "x = 1\n" + SKIPPING_GPU_CELL),
        ("is not one", "if torch.cuda.device_count():\n    train()\n"
                       "else:\n    print('skipped: no CUDA here')"),
        ("its else does not print", "if torch.cuda.is_available():\n"
                                    "    train()"),
        ("its else does not print", SKIPPING_GPU_CELL.replace(
            "skipped: no CUDA here", "no GPU")),
        ("its else does not print", SKIPPING_GPU_CELL.replace(
            "skipped: no CUDA here;", "skipped: no CUDA here;\\n")),
        ("does not parse", "if torch.cuda.is_available(:"),
    ]
    for expected, code in refused:
        found = notebooks.gpu_cell_problems(code)
        assert len(found) == 1 and found[0].startswith(expected), \
            (code, found)
    url = "https://example.org/repo"
    nb = notebooks.fix({"cells": [{"cell_type": "code", "source": SKIPPING_GPU_CELL,
                                   "metadata": {"tags": ["gpu", "skip-execution"]}}]}, url)
    assert notebooks.problems(nb, url) == []


@pytest.mark.parametrize("code", [
    'folder = Path("data/zaremba_small")', 'open("data/post.csv")',
    'data = Path("book/data")', 'Path.cwd() / "benchmarks" / "results"',
    'json.loads(Path("../benchmarks/results/cpu.json").read_text())',
    'load_record("lstmlib/results/zaremba_small/torch.json")'])
def test_chapters_read_committed_results_only_through_the_loader(code):
    url = "https://example.org/repo"
    nb = notebooks.fix({"cells": [{"cell_type": "code", "source": code,
                                   "metadata": {}}]}, url)
    assert any("reads a committed result by a path" in p
               for p in notebooks.problems(nb, url))
    nb["cells"][1]["source"] = ('lstmlib.load_result("benchmarks/cpu.json")\n'
                                'ax.set_title("data")')
    assert notebooks.problems(nb, url) == []


def test_colab_cell_uses_the_configured_repository():
    url = notebooks.repository_url()
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert url == config["repository"]["url"].rstrip("/")
    assert f"git+{url}" in notebooks.colab_cell_source(url)


def test_repository_url_lives_in_one_place():
    """The URL appears in _config.yml and nowhere else that is hand-edited
    (the Colab cells are generated from it and checked above)."""
    url = notebooks.repository_url()
    holders = []
    for path in ROOT.rglob("*"):
        if any(part in {".venv", "_build", "node_modules", "_extra", ".git"} for part in path.parts):
            continue
        if path.is_file() and path.suffix in {".py", ".yml", ".yaml", ".toml", ".md", ".cfg"}:
            if url in path.read_text(errors="ignore"):
                holders.append(path.relative_to(ROOT).as_posix())
    assert sorted(holders) == ["README.md", "_config.yml"]


def test_the_readme_shows_the_real_url_not_placeholders():
    """The README links the configured repository (the test above fails
    if _config.yml names another) and holds no placeholder for it."""
    text = (ROOT / "README.md").read_text()
    assert notebooks.repository_url() in text
    assert "<owner>" not in text and "<repository URL>" not in text


# -- dependencies -----------------------------------------------------------------
def pyproject_requirements() -> set:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in ("book", "test"):
        reqs += project["optional-dependencies"][extra]
    return {str(Requirement(r)) for r in reqs}


def environment_requirements() -> set:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return {str(Requirement(r)) for r in pip if not r.startswith("-")}


def test_environment_yml_matches_pyproject():
    assert environment_requirements() == pyproject_requirements()


def makefile_torch_pin() -> str:
    """The torch version the Makefile installs: its one ``TORCH := torch==X``."""
    pins = [line.split("==", 1)[1].strip() for line in (ROOT / "Makefile").read_text().splitlines()
            if line.replace(" ", "").startswith("TORCH:=torch==")]
    assert len(pins) == 1, pins
    return pins[0]


def test_torch_is_a_range_that_holds_the_makefiles_pin():
    torch_req = next(Requirement(r) for r in pyproject_requirements() if r.startswith("torch"))
    assert "==" not in str(torch_req.specifier)
    assert torch_req.specifier.contains(makefile_torch_pin())


def test_the_torch_pin_is_written_once():
    """The pinned version appears in the Makefile and nowhere else among the
    files people edit (results record the version they ran with; those do
    not count)."""
    pin = makefile_torch_pin()
    edited = [ROOT / name for name in ("README.md", "CONTRIBUTING.md", "environment.yml",
                                       "pyproject.toml", "postBuild", ".ci/run")]
    edited += list((ROOT / "book").glob("*.md")) + list((ROOT / "book").glob("*.ipynb"))
    found = [p.name for p in edited if p.exists() and f"torch=={pin}" in p.read_text()]
    assert found == []


# -- the GPU-skip hook ------------------------------------------------------------------
def make_notebook(path: Path) -> None:
    def code(src, tags=()):
        return {"cell_type": "code", "execution_count": None, "metadata": {"tags": list(tags)},
                "outputs": [], "source": src}
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}},
          "cells": [code("x = 1"),
                    code("raise RuntimeError('this cell needs a GPU')", ["gpu", "skip-execution"]),
                    code("assert x == 1")]}
    path.write_text(json.dumps(nb))


def test_gpu_cells_are_skipped_without_cuda(pytester):
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    make_notebook(pytester.path / "gpu_demo.ipynb")
    result = pytester.runpytest_subprocess("--nbval-lax", "--nbval-current-env", "-rs",
                                           "-p", "no:cacheprovider", "gpu_demo.ipynb")
    if torch.cuda.is_available():
        result.assert_outcomes(passed=2, failed=1)       # the GPU cell runs (and raises)
    else:
        result.assert_outcomes(passed=2, skipped=1)
        result.stdout.fnmatch_lines(["*cell tagged 'gpu' needs CUDA*"])
