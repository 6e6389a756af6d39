"""OT tests run single-threaded: the problems are small and the shared CI box has 2 cores."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    # per test and restored afterwards: torch's thread count is process-wide and other suites share it
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
