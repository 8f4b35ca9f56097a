"""fastbmm.bmm against numpy.matmul, torch.bmm and np.einsum (pytest-benchmark).

Run::

    pytest benchmarks/ --benchmark-only --benchmark-group-by=param:shape

The ``shape`` parameter names a case (shape and dtype, e.g.
``"64x128x128x64-f32"``; a trailing ``T`` on the shape marks a transposed
``mat2`` view), so grouping by it puts the libraries (the ``lib`` parameter)
side by side. torch.bmm runs when torch is installed, np.einsum on the cases
up to `shapes.EINSUM_MAX_FLOPS` operations. ``extra_info`` records GFLOP/s
(``2*b*n*m*p`` over the median time). ``FASTBMM_BENCH_QUICK=1`` keeps the
small and medium shapes only.
"""

import pytest
from shapes import CASES, EINSUM_MAX_FLOPS

from fastbmm import bench


def _params():
    """(shape label, library) pairs, the libraries of one case consecutive."""
    libraries = bench.available_libraries()
    return [
        pytest.param(label, library, id=f"{label}-{library}")
        for label, case in CASES.items()
        for library in libraries + (["einsum"] if case.shape.flops <= EINSUM_MAX_FLOPS else [])
    ]


@pytest.mark.parametrize(("shape", "lib"), _params())
def test_bmm(benchmark, shape, lib, operands, record_gflops):
    input, mat2 = operands
    call = bench.library_call(lib, input, mat2)
    call()  # warm-up, untimed: page faults, thread pool start-up
    benchmark.group = shape
    benchmark(call)
    if benchmark.stats is not None:  # None under --benchmark-disable
        flops = CASES[shape].shape.flops
        gflops = flops / benchmark.stats.stats.median / 1e9
        benchmark.extra_info.update(flops=flops, gflops=gflops)
        record_gflops(gflops)
