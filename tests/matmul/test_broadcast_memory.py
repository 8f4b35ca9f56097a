"""matmul's broadcast batch dimensions: values against numpy.matmul, and memory.

The engine reads a broadcast batch from its shape and each operand's byte
strides (zero where broadcast), computing each entry's offset as it goes. It
once built an int64 offset table per operand and entry with NumPy: an int8
``(4096, 1, 1, 1) @ (1, 4096, 1, 1)`` grew the peak RSS by 272 MiB for a 16 MiB
result. numpy.matmul grows it by the result alone, and so must fastbmm.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastbmm

from _helpers import REPO, native, seeded_rng, small_int_values

# ---------------------------------------------------------------------------
# Memory

RSS_SCRIPT = r"""
import resource, sys
import numpy as np, fastbmm
dtype, count = np.dtype(sys.argv[1]), int(sys.argv[2])
a = np.ones((count, 1, 1, 1), dtype)
b = np.ones((1, count, 1, 1), dtype)
fastbmm.matmul(a[:2], b[:, :2])                 # first call's one-off costs
scale = 1 if sys.platform.startswith("linux") else 1 / 1024   # ru_maxrss: KiB on Linux
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
r = fastbmm.matmul(a, b)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale - before
assert r.shape == (count, count, 1, 1) and np.all(r == 1), r
print(int(grown), r.nbytes // 1024)
"""


@pytest.mark.parametrize("dtype, count", [("int8", 4096), ("float32", 2048)])
def test_broadcast_batch_costs_no_per_entry_memory(dtype, count):
    """Peak RSS grows by the result (16 MiB here) plus a little, not by 8 bytes per
    batch entry and operand (the old offset tables: 272 MiB for the int8 case)."""
    resource = pytest.importorskip("resource")  # noqa: F841 - POSIX only, like the script
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", RSS_SCRIPT, dtype, str(count)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    grown_kib, result_kib = map(int, proc.stdout.split()[-2:])
    assert result_kib == 16 * 1024
    assert grown_kib < result_kib + 8 * 1024, (
        f"peak RSS grew by {grown_kib / 1024:.0f} MiB for a {result_kib / 1024:.0f} MiB result")


# ---------------------------------------------------------------------------
# Values


def _reference(a, b):
    """numpy.matmul in a type where small-integer sums are exact, then cast back."""
    dt = native(a.dtype)
    wide = np.uint64 if dt.kind in "iu" else np.complex128 if dt.kind == "c" else np.float64
    return np.matmul(a.astype(wide), b.astype(wide)).astype(dt)


def _layout(x, how):
    """x (C-ordered) re-laid out in memory with the same values: `how` in
    "C", "reversed" (negative strides on every batch axis), "batch-F" (batch
    axes in reverse memory order), "strided" (every other element of a
    bigger buffer)."""
    if how == "C" or x.ndim < 3:
        return x
    nb = x.ndim - 2
    if how == "reversed":
        flip = (slice(None, None, -1),) * nb
        return np.ascontiguousarray(x[flip])[flip]
    if how == "batch-F":
        perm = tuple(reversed(range(nb))) + (nb, nb + 1)
        return np.ascontiguousarray(x.transpose(perm)).transpose(perm)
    if how == "strided":
        big = np.zeros(tuple(2 * s for s in x.shape), x.dtype)
        view = big[(slice(None, None, 2),) * x.ndim]
        view[...] = x
        return view
    raise ValueError(how)


BROADCAST_CASES = [
    # shape of input, shape of other (several ranks; sizes 1 broadcast)
    ((3, 1, 4, 5), (1, 2, 5, 6)),
    ((2, 1, 3, 1, 4, 5), (3, 1, 2, 5, 2)),
    ((5,), (2, 3, 5, 4)),                       # 1-D input
    ((2, 3, 4, 5), (5,)),                       # 1-D other
    ((4, 1, 2, 3), (3, 2)),                     # other broadcast whole
    ((1, 1, 3, 3), (2, 2, 3, 3)),               # input broadcast whole
    ((2, 1, 2, 1, 2, 3, 4), (1, 2, 1, 2, 1, 4, 2)),
    ((3, 1, 20, 30), (1, 2, 30, 17)),           # packed path: one offset per task
    ((3, 1, 2, 300), (1, 2, 300, 20)),          # few rows, long rows of B: stream path
    ((6, 1, 1, 1), (1, 7, 1, 1)),               # 1x1 matrices: the shape, small
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "int64", "complex64"])
@pytest.mark.parametrize("shapes", BROADCAST_CASES, ids=[f"{a}@{b}" for a, b in BROADCAST_CASES])
@pytest.mark.parametrize("how", ["C", "reversed", "batch-F", "strided"])
def test_broadcast_values_match_numpy(kernel, threads, shapes, dtype, how):
    sa, sb = shapes
    rng = seeded_rng("broadcast", sa, sb, dtype, how)
    a = small_int_values(rng, sa, dtype)
    b = small_int_values(rng, sb, dtype)
    la, lb = _layout(a, how), _layout(b, how)
    got = fastbmm.matmul(la, lb)
    want = _reference(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shapes", BROADCAST_CASES[:3] + BROADCAST_CASES[6:],
                         ids=[f"{a}@{b}" for a, b in BROADCAST_CASES[:3] + BROADCAST_CASES[6:]])
@pytest.mark.parametrize("how", ["reversed", "batch-F", "strided"])
def test_broadcast_into_out_of_any_layout(kernel, threads, shapes, how):
    """out= whose batch axes do not merge (reversed, permuted, gapped): every
    entry lands where out's own strides put it, nothing else is written."""
    sa, sb = shapes
    rng = seeded_rng("broadcast-out", sa, sb, how)
    a = small_int_values(rng, sa, np.float32)
    b = small_int_values(rng, sb, np.float32)
    want = _reference(a, b)
    if how == "strided":
        parent = np.full(tuple(2 * s for s in want.shape), -7.0, np.float32)
        out = parent[(slice(None, None, 2),) * want.ndim]
    else:
        out = _layout(np.full(want.shape, np.nan, np.float32), how)
    got = fastbmm.matmul(a, b, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)
    if how == "strided":          # the gaps between out's elements stay untouched
        gaps = np.ones(parent.shape, bool)
        gaps[(slice(None, None, 2),) * want.ndim] = False
        assert np.all(parent[gaps] == -7.0)
