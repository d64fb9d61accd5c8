"""Suite-wide settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """The suite's models are tiny: one intra-op thread is as fast as two on an idle machine and many
    times faster when anything else competes for the two cores (timings stay stable)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
