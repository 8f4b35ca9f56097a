"""Fixtures and reporting for the pytest-benchmark suite.

The inputs are built outside the timed code and shared by all libraries of a
case; all libraries run with fastbmm's thread count (see
`fastbmm.bench.matched_threads`). After the run, a table of GFLOP/s per case
and library is printed.
"""

import functools

import pytest
from shapes import CASES

from fastbmm import bench

GFLOPS_KEY = pytest.StashKey[dict]()


def pytest_configure(config):
    config.stash[GFLOPS_KEY] = {}


def pytest_report_header(config):
    bench.warn_about_benchmark_conditions()
    with bench.matched_threads():
        return ["fastbmm benchmarks (threads matched to fastbmm's):"] + [
            f"  {line}" for line in bench.environment_report()
        ]


@pytest.fixture(scope="session", autouse=True)
def matched_threads():
    """Run every library with fastbmm's thread count for the whole session."""
    with bench.matched_threads() as num_threads:
        yield num_threads


@functools.lru_cache(maxsize=1)
def _operands(label):
    # One case at a time: the tests of a case run consecutively, and the
    # largest cases' inputs take hundreds of MB.
    return bench.make_operands(CASES[label])


@pytest.fixture
def operands(shape):
    """The ``(input, mat2)`` arrays of case `shape`, the same for every library."""
    return _operands(shape)


@pytest.fixture
def record_gflops(request, shape, lib):
    """Store a GFLOP/s figure of this test for the summary table."""

    def record(gflops):
        request.config.stash[GFLOPS_KEY].setdefault(shape, {})[lib] = gflops

    return record


def pytest_terminal_summary(terminalreporter, config):
    gflops = config.stash[GFLOPS_KEY]
    if not gflops:
        return
    libraries = [
        library
        for library in ("fastbmm", "numpy", "torch", "einsum")
        if any(library in row for row in gflops.values())
    ]
    rows = [
        [label] + [f"{row[library]:.3g}" if library in row else "-" for library in libraries]
        for label, row in gflops.items()
    ]
    terminalreporter.write_sep("-", "GFLOP/s (2*b*n*m*p / median time per call)")
    terminalreporter.write_line(bench.render_table(["case"] + libraries, rows))
