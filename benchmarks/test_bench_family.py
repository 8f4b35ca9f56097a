"""baddbmm and broadcasting matmul against their NumPy and torch counterparts.

Each group also times ``fastbmm.bmm`` on the same product (for matmul: on
the broadcast operands materialised as 3-D stacks), the "same engine at
bmm's speed" reference. Run with the bmm suite::

    pytest benchmarks/ --benchmark-only --benchmark-group-by=group
"""

import numpy as np
import pytest

import fastbmm
from fastbmm import bench

torch = bench._optional_import("torch")

# (b, n, m, p) of baddbmm's product; the bias is an (n, p) mask, as in attention
BADDBMM_SHAPES = [(1024, 32, 32, 32), (64, 128, 128, 64)]
# matmul: (B1, 1, n, m) @ (1, B2, m, p), broadcast to (B1, B2, n, p)
MATMUL_SHAPES = [(32, 32, 16, 16, 16), (8, 8, 64, 64, 64)]


def _rng():
    return np.random.default_rng(0)


def _baddbmm_calls(shape):
    b, n, m, p = shape
    rng = _rng()
    bias = rng.standard_normal((n, p), dtype=np.float32)
    x = rng.standard_normal((b, n, m), dtype=np.float32)
    y = rng.standard_normal((b, m, p), dtype=np.float32)
    calls = {
        "fastbmm.baddbmm": lambda: fastbmm.baddbmm(bias, x, y, beta=0.5, alpha=2.0),
        "fastbmm.bmm": lambda: fastbmm.bmm(x, y),
        "numpy": lambda: 0.5 * bias + 2.0 * np.matmul(x, y),
    }
    if torch is not None:
        tb, tx, ty = (torch.from_numpy(v) for v in (bias, x, y))
        calls["torch.baddbmm"] = lambda: torch.baddbmm(tb, tx, ty, beta=0.5, alpha=2.0)
    return calls, 2 * b * n * m * p


def _matmul_calls(shape):
    b1, b2, n, m, p = shape
    rng = _rng()
    x = rng.standard_normal((b1, 1, n, m), dtype=np.float32)
    y = rng.standard_normal((1, b2, m, p), dtype=np.float32)
    x3 = np.ascontiguousarray(np.broadcast_to(x, (b1, b2, n, m))).reshape(-1, n, m)
    y3 = np.ascontiguousarray(np.broadcast_to(y, (b1, b2, m, p))).reshape(-1, m, p)
    calls = {
        "fastbmm.matmul": lambda: fastbmm.matmul(x, y),
        "fastbmm.bmm (materialised)": lambda: fastbmm.bmm(x3, y3),
        "numpy": lambda: np.matmul(x, y),
    }
    if torch is not None:
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        calls["torch.matmul"] = lambda: torch.matmul(tx, ty)
    return calls, 2 * b1 * b2 * n * m * p


def _params(make, shapes, prefix):
    return [
        pytest.param(make, shape, name, id=f"{prefix}{'x'.join(map(str, shape))}-{name}")
        for shape in shapes
        for name in make(shape)[0]
    ]


@pytest.mark.parametrize(
    ("make", "shape", "name"),
    _params(_baddbmm_calls, BADDBMM_SHAPES, "baddbmm-") + _params(_matmul_calls, MATMUL_SHAPES, "matmul-"),
)
def test_family(benchmark, make, shape, name):
    calls, flops = make(shape)
    call = calls[name]
    call()  # warm-up, untimed
    benchmark.group = f"{make.__name__.strip('_').split('_')[0]}-{'x'.join(map(str, shape))}"
    benchmark(call)
    if benchmark.stats is not None:
        benchmark.extra_info.update(flops=flops, gflops=flops / benchmark.stats.stats.median / 1e9)
