"""lstmlib installs as a package: from the source tree (``pip install .``)
and from a git URL (what the Colab cell does), and a built wheel carries
every committed result that :func:`lstmlib.result_names` lists."""
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import lstmlib
from lstmlib.records import IN_PROGRESS

ROOT = Path(__file__).resolve().parent.parent


def pip_install(spec: str, target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    "--no-deps", "--no-build-isolation", "--target",
                    str(target), spec], check=True, cwd=ROOT)


def installed_version(target: Path) -> str:
    code = ("import lstmlib, sys; assert lstmlib.__file__.startswith("
            f"{str(target)!r}), lstmlib.__file__; print(lstmlib.__version__)")
    done = subprocess.run([sys.executable, "-c", code], check=True,
                          capture_output=True, text=True, cwd=target,
                          env={"PYTHONPATH": str(target)})
    return done.stdout.strip()


def test_pip_install_from_the_source_tree(tmp_path):
    pip_install(str(ROOT), tmp_path)
    assert installed_version(tmp_path) == lstmlib.__version__
    modules = {str(p.relative_to(tmp_path / "lstmlib"))
               for p in (tmp_path / "lstmlib").rglob("*.py")}
    assert {"__init__.py", "cells/recurrent.py", "cells/vanilla.py",
            "commands/ptb.py", "experiments/long_range.py"} <= modules
    assert not (tmp_path / "tests").exists()      # only the library
    code = ("import lstmlib; print(len(lstmlib.result_names("
            "'long_range_grid/*/*.json')))")
    done = subprocess.run([sys.executable, "-c", code], check=True,
                          capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(tmp_path)})
    assert int(done.stdout) >= 1          # found inside the installed package


def test_the_wheel_carries_every_committed_result(tmp_path):
    """Built from a copy of the sources (no stale build folder), the wheel
    holds every file the loader lists, byte for byte."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "lstmlib", source / "lstmlib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    in_progress = [f"lstmlib/results/eight_architectures/run{ending}"
                   for ending in IN_PROGRESS]
    for name in in_progress:                  # a run still going on here
        (source / name).write_text("{}")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet",
                    "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "wheel"), str(source)], check=True)
    [wheel] = (tmp_path / "wheel").glob("lstmlib-*.whl")
    names = lstmlib.result_names()
    assert {"post_eight_architectures.csv",
            "zaremba_small/lstmlib.json",
            "benchmarks/cpu.json"} <= set(names)
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
        missing = [n for n in names if f"lstmlib/results/{n}" not in shipped]
        assert missing == []
        assert not shipped & set(in_progress)
        for name in names:
            assert (archive.read(f"lstmlib/results/{name}")
                    == lstmlib.result_path(name).read_bytes()), name


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_pip_install_from_a_git_url(tmp_path):
    pip_install(f"lstmlib @ git+file://localhost{ROOT}", tmp_path)
    assert installed_version(tmp_path) == lstmlib.__version__


def test_the_loader_reads_each_kind_of_committed_result():
    from lstmlib.experiments.long_range_grid import GRID_FOLDER, load_grid
    from lstmlib.records import RESULTS_FOLDER
    assert GRID_FOLDER == RESULTS_FOLDER / "long_range_grid"
    [first] = lstmlib.result_names("long_range_grid/select/*.json")[:1]
    assert lstmlib.load_result(first)["point"]["phase"] == "select"
    assert len(load_grid()) == len(lstmlib.result_names(
        "long_range_grid/*/*.json"))
    rows = lstmlib.load_result("post_eight_architectures.csv")
    assert len(rows) == 4 * 8                         # comments skipped
    assert set(rows[0]) == {"lr", "variant", "mean", "ci95"}
    assert lstmlib.load_result("benchmarks/cpu.md").startswith("#")
    names = lstmlib.result_names("benchmarks/*.json")
    assert "benchmarks/cpu.json" in names
    assert all(n.startswith("benchmarks/") and n.endswith(".json")
               for n in names)


def test_a_missing_result_names_what_there_is(tmp_path, monkeypatch):
    from lstmlib import records
    monkeypatch.setattr(records, "RESULTS_FOLDER", tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "a.json").write_text('{"x": 1}')
    (tmp_path / "runs" / "b.json.part").write_text("{")   # being written
    assert records.result_names() == ["runs/a.json"]
    assert records.load_result("runs/a.json") == {"x": 1}
    with pytest.raises(FileNotFoundError) as error:
        records.result_path("runs/c.json")
    message = str(error.value)
    assert "expected the name of a committed result" in message
    assert "got 'runs/c.json'" in message and "runs/a.json" in message


def test_chapters_outside_runs_a_chapter_alone_and_catches_repository_paths(tmp_path):
    """tests/chapters_outside.py, the way make test runs every chapter:
    a notebook that reads a file of the repository fails there, one that
    only uses the installed lstmlib passes."""
    from tests import chapters_outside

    def notebook(name, code):
        cell = {"cell_type": "code", "execution_count": None, "id": "c1",
                "metadata": {}, "outputs": [], "source": code}
        path = tmp_path / f"{name}.ipynb"
        path.write_text(json.dumps({
            "nbformat": 4, "nbformat_minor": 5, "cells": [cell],
            "metadata": {"kernelspec": {"name": "python3",
                                        "display_name": "Python 3",
                                        "language": "python"}}}))
        return str(path)

    good = notebook("good", "import lstmlib\n"
                            "assert 'lstmlib-outside-' in lstmlib.__file__\n"
                            "assert lstmlib.load_result('post_eight_architectures.csv')")
    bad = notebook("bad", "open('README.md').read()")
    assert chapters_outside.main([good]) == 0
    assert chapters_outside.main([bad]) != 0
