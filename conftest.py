"""pytest configuration shared by the unit tests and the notebooks (nbval).

Cells tagged ``gpu`` need CUDA. Each skips itself on a kernel without it:
its body is ``if torch.cuda.is_available(): ... else: print("skipped: no
CUDA here; ...")`` (checked by ``tests/notebooks.py``), so "Run all"
completes in Jupyter and on Colab. Under pytest (nbval) without CUDA the
hook below marks such cells skipped as well, with the reason stated, so the
report shows what did not run. The book's conventions make them leaves, so
skipping one never breaks a later cell.
"""
import pytest

GPU_TAG = "gpu"
GPU_SKIP_REASON = "cell tagged 'gpu' needs CUDA; torch.cuda.is_available() is False here"


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def cell_tags(item) -> list:
    """The tags of the notebook cell an nbval item runs (empty for other items)."""
    cell = getattr(item, "cell", None)
    if cell is None:
        return []
    return list(cell.get("metadata", {}).get("tags", []))


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip_gpu = pytest.mark.skip(reason=GPU_SKIP_REASON)
    for item in items:
        if GPU_TAG in cell_tags(item):
            item.add_marker(skip_gpu)


pytest_plugins = ["pytester"]
