"""lstmlib installs as a package: from the source tree (``pip install .``)
and from a git URL (what the Colab cell does)."""
import subprocess
import sys
from pathlib import Path

import pytest

import lstmlib

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
    assert (tmp_path / "lstmlib/experiments/long_range_cpu.json").is_file()
    assert not (tmp_path / "tests").exists()      # only the library


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_pip_install_from_a_git_url(tmp_path):
    pip_install(f"lstmlib @ git+file://localhost{ROOT}", tmp_path)
    assert installed_version(tmp_path) == lstmlib.__version__
