"""Fixtures shared by lstmlib's unit tests."""
import pytest
import torch


@pytest.fixture
def float64_and_seeded():
    """Run a test in float64 (the library's contracts are stated there) with
    torch's global generator seeded; restore the default dtype afterwards.
    Test modules opt in with ``pytestmark = pytest.mark.usefixtures(...)``."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The tests' tensors are small: on a 2-core machine shared with other
    work, torch's default of one thread per core made them up to 10x slower
    (measured), so every test runs with one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
