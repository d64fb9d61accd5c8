"""Suite-wide settings."""

import random
import zlib

import numpy as np
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


@pytest.fixture(autouse=True)
def _seeded(request: pytest.FixtureRequest) -> None:
    """Seed torch, numpy and ``random`` from the test's own id before each test, so a test that draws
    from a global generator sees the same numbers whatever ran before it (alone, in another order,
    with other tests selected) and a failure reproduces with ``pytest <node id>``."""
    seed = zlib.crc32(request.node.nodeid.encode())
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
