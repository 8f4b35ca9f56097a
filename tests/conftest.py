"""The suite's fixtures (kernel variants, thread counts, torch, rng) and Hypothesis profiles.

Shared helpers that are not fixtures live in _helpers.py.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fastbmm
import fastbmm._runtime as _runtime
from _helpers import KERNELS

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("FASTBMM_HYPOTHESIS_PROFILE", "ci"))

THREAD_COUNTS = [1, 2, 8]


def pytest_configure(config):
    config.addinivalue_line("markers", "torch: compares against torch.bmm (skipped without torch)")


def pytest_terminal_summary(terminalreporter):
    """List where torch itself disagreed with the exact reference (see _helpers.check_torch)."""
    from _helpers import TORCH_DISAGREEMENTS

    if not TORCH_DISAGREEMENTS:
        return
    tr = terminalreporter
    tr.section("torch disagreed with the exact reference (torch's defect; not a failure)")
    for what, message in TORCH_DISAGREEMENTS[:20]:
        tr.write_line(f"{what}: {message[:300]}")
    if len(TORCH_DISAGREEMENTS) > 20:
        tr.write_line(f"... and {len(TORCH_DISAGREEMENTS) - 20} more")


@pytest.fixture(params=KERNELS)
def kernel(request):
    """Force each runnable kernel variant in turn; restore the previous one afterwards."""
    previous = _runtime.get_kernel()
    _runtime.set_kernel(request.param)
    assert _runtime.get_kernel() == request.param
    try:
        yield request.param
    finally:
        _runtime.set_kernel(previous)


def _with_threads(n):
    """Set fastbmm's thread count to n for one test; restore it afterwards."""
    previous = fastbmm.get_num_threads()
    fastbmm.set_num_threads(n)
    try:
        yield n
    finally:
        fastbmm.set_num_threads(previous)


@pytest.fixture(params=THREAD_COUNTS)
def nthreads(request):
    """Run with 1, 2 and 8 threads."""
    yield from _with_threads(request.param)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """Run with 1 and 2 threads."""
    yield from _with_threads(request.param)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def rng(request):
    # Deterministic per test id, so failures reproduce.
    import zlib

    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
