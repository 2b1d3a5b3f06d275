"""Provenance of the committed records: lstmlib.records."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

from lstmlib import records

ROOT = Path(__file__).resolve().parents[1]


def test_versions_name_the_commit_and_whether_the_tree_was_dirty():
    found = records.versions()
    inside_git = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
        text=True)
    if inside_git.returncode != 0:          # e.g. a source archive
        assert found["git_commit"] is None and found["git_dirty"] is None
        return
    assert found["git_commit"] == inside_git.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", found["git_commit"])
    porcelain = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain",
         "--untracked-files=no"], capture_output=True, text=True).stdout
    assert found["git_dirty"] is (porcelain.strip() != "")


def test_a_copy_outside_a_checkout_has_no_commit(tmp_path):
    # A copy of the package inside another git repository is not a
    # checkout of this one: neither its commit nor its state is reported.
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    shutil.copytree(ROOT / "lstmlib", tmp_path / "vendor" / "lstmlib",
                    ignore=shutil.ignore_patterns("__pycache__", "results"))
    shown = subprocess.run(
        [sys.executable, "-c",
         "import lstmlib.records as r, json; "
         "print(json.dumps(r.source_state())); print(r.__file__)"],
        cwd=tmp_path / "vendor", capture_output=True, text=True, check=True)
    state, where = shown.stdout.splitlines()
    assert where.startswith(str(tmp_path))      # the copy, not the checkout
    assert state == '{"git_commit": null, "git_dirty": null}'


def test_versions_say_whether_the_cpu_has_bfloat16_arithmetic():
    import torch
    found = records.versions()
    assert found["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text()
                     .splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        assert found["cpu_bfloat16"] is None
        return
    assert found["cpu_bfloat16"] is (
        "avx512_bf16" in flags or "amx_bf16" in flags)
