"""Values of fastbmm.bmm against an independent reference (and torch.bmm when importable)
for every supported dtype, every kernel variant, several thread counts, sizes at every
blocking edge, and every input / out= memory layout."""

import zlib

import numpy as np
import pytest

import fastbmm
import fastbmm._runtime as _runtime

from _helpers import (
    INPUT_LAYOUTS,
    KERNELS,
    OUT_LAYOUTS,
    SUPPORTED_DTYPES,
    assert_bmm_close,
    block_key,
    check_torch,
    make_input,
    make_out,
    native,
    reference_bmm,
    sentinel,
    small_max,
    snapshot,
    torch_available,
    torch_bmm,
)

BIG_DTYPES = {np.dtype(np.float32), np.dtype(np.float64)}
HAVE_TORCH = torch_available()


def _block_sizes_of(kernel):
    previous = _runtime.get_kernel()
    _runtime.set_kernel(kernel)
    try:
        return _runtime.block_sizes()
    finally:
        _runtime.set_kernel(previous)


def edge_shapes(bs, key, big, S):
    """(b, n, m, p) just below / at / above every block size of one kernel
    family, and around S, the dtype's small-path limit."""
    k = bs[key]
    MR, NR, KC, MC, NC = k["MR"], k["NR"], k["KC"], k["MC"], k["NC"]
    shapes = [
        (1, 1, 1, 1), (2, 1, 1, 1), (1, 2, 3, 4), (3, 5, 1, 7), (2, 7, 5, 3),
        (0, 3, 4, 5), (2, 0, 4, 5), (2, 3, 0, 5), (2, 3, 4, 0),
        # the unpacked small path and its threshold
        (2, S, S, S), (3, S - 1, S, S - 1), (1, S, 1, S),
        (1, S + 1, 1, 1), (1, 1, S + 1, 1), (1, 1, 1, S + 1), (2, S + 1, S + 1, S + 1),
        (2, S, S, S + 1),
        # primes, many batches (batch chunking across threads)
        (2, 13, 17, 19), (1, 31, 37, 29), (37, 9, 7, 11), (64, 3, 4, 5),
        # enough work (> FBMM_SERIAL_WORK multiply-adds) to run in parallel:
        # small path chunked over the batch, packed path chunked over the batch,
        # and a batch smaller than the thread count (tiles of one matrix)
        (201, S, S, S), (41, 9, 9, 17), (2, 150, 20, 40),
    ]
    # MR x NR register tile edges on the packed path (m > small_max forces packing).
    for n in (MR - 1, MR, MR + 1, 2 * MR + 1):
        for p in (NR - 1, NR, NR + 1, 2 * NR + 1):
            shapes.append((2, n, S + 1, p))
    if big:
        shapes += [(1, MR + 1, m, NR + 1) for m in (KC - 1, KC, KC + 1, 2 * KC + 1)]
        shapes += [(1, n, S + 3, NR + 1) for n in (MC - 1, MC, MC + 1)]
        shapes += [(1, MR - 1, S + 1, p) for p in (NC - 1, NC + 1)]
        shapes += [
            (2, MC + 1, KC + 1, 2 * NR + 1),
            (1, 2 * 96 + 5, 40, 2 * 256 + 3),  # one matrix split into tiles across threads
            (3, 97, 33, 61),
        ]
    return sorted({s for s in shapes if min(s) >= 0})


def _size_cases():
    cases = []
    for kern in KERNELS:
        bs = _block_sizes_of(kern)
        for dt in SUPPORTED_DTYPES:
            key = block_key(dt)
            if key not in bs:
                key = "f32"
            for shape in edge_shapes(bs, key, big=dt in BIG_DTYPES, S=small_max(bs, dt)):
                cases.append(pytest.param(kern, dt, shape, id=f"{kern}-{dt}-{'x'.join(map(str, shape))}"))
    return cases


def check(a, b, out=None, owners=()):
    """bmm(a, b[, out]) equals the reference (and torch); inputs/owners unchanged."""
    owners = list(owners) or [a, b]
    before = snapshot(*owners)
    ref = reference_bmm(a, b)
    r = fastbmm.bmm(a, b, out=out) if out is not None else fastbmm.bmm(a, b)
    assert snapshot(*owners) == before, "an input was modified"
    if out is not None:
        assert r is out
    else:
        assert type(r) is np.ndarray and r.flags.c_contiguous and r.dtype.isnative
    assert native(r.dtype) == native(a.dtype)
    assert_bmm_close(r, a, b, ref=ref)
    if HAVE_TORCH:
        check_torch(assert_bmm_close, lambda: torch_bmm(a, b), a, b, ref=ref, what="torch.bmm")
    return r


@pytest.mark.parametrize("kernel,dtype,shape", _size_cases(), indirect=["kernel"])
def test_sizes(kernel, dtype, shape, nthreads):
    b, n, m, p = shape
    rng = np.random.default_rng(zlib.crc32(f"{dtype}{shape}".encode()))
    x, _ = make_input("C", rng, (b, n, m), dtype)
    y, _ = make_input("C", rng, (b, m, p), dtype)
    check(x, y)


LAYOUTS = list(INPUT_LAYOUTS)


@pytest.mark.parametrize("lb", LAYOUTS)
@pytest.mark.parametrize("la", LAYOUTS)
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=str)
def test_input_layouts_small(kernel, dtype, la, lb, rng):
    x, ox = make_input(la, rng, (3, 5, 7), dtype)
    y, oy = make_input(lb, rng, (3, 7, 6), dtype)
    check(x, y, owners=[ox, oy])


PACKED_LAYOUT_PAIRS = [("C", "C")] + [
    pair for lay in LAYOUTS if lay != "C" for pair in ((lay, "C"), ("C", lay), (lay, lay))
]


@pytest.mark.parametrize("la,lb", PACKED_LAYOUT_PAIRS)
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=str)
def test_input_layouts_packed(kernel, dtype, la, lb, rng):
    x, ox = make_input(la, rng, (2, 13, 11), dtype)
    y, oy = make_input(lb, rng, (2, 11, 19), dtype)
    check(x, y, owners=[ox, oy])


@pytest.mark.parametrize("dtype", [np.dtype(np.float32), np.dtype(np.float64)], ids=str)
def test_attention_pattern(kernel, nthreads, dtype, rng):
    """q @ k.transpose(0, 2, 1) and the packed path with a batch of heads."""
    q = rng.standard_normal((8, 70, 64)).astype(dtype)
    k = rng.standard_normal((8, 90, 64)).astype(dtype)
    check(q, k.transpose(0, 2, 1))


OUT_CASES = {"small": (3, 5, 7, 6), "packed": (2, 13, 11, 19), "split": (1, 200, 12, 270)}
# The "split" size (one matrix cut into tiles across threads) only for float32/float64.
OUT_LAYOUT_CASES = [
    pytest.param(dt, lo, size, id=f"{dt}-{lo}-{size}")
    for dt in SUPPORTED_DTYPES for lo in OUT_LAYOUTS for size in OUT_CASES
    if size != "split" or dt in BIG_DTYPES
]


@pytest.mark.parametrize("dtype,lo,size", OUT_LAYOUT_CASES)
def test_out_layouts(kernel, nthreads, dtype, lo, size, rng):
    b, n, m, p = OUT_CASES[size]
    x, ox = make_input("C", rng, (b, n, m), dtype)
    y, oy = make_input("transposed", rng, (b, m, p), dtype)
    view, parent, mask = make_out(lo, (b, n, p), dtype)
    if native(dtype).kind in "fc":
        view[...] = np.nan  # dirty: must not leak into the result
    parent_before = parent.copy()
    check(x, y, out=view, owners=[ox, oy])
    if mask is not None:
        assert np.array_equal(parent[~mask], parent_before[~mask]), (
            "an element outside the out= view was written")


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=str)
@pytest.mark.parametrize("la,lb", [("negative", "broadcast_batch"), ("misaligned", "byteswapped"),
                                   ("every_other", "readonly"), ("byteswapped_transposed", "fortran")])
def test_mixed_layouts_with_strided_out(kernel, dtype, la, lb, rng):
    x, ox = make_input(la, rng, (2, 10, 9), dtype)
    y, oy = make_input(lb, rng, (2, 9, 20), dtype)
    view, parent, mask = make_out("every_other", (2, 10, 20), dtype)
    parent_before = parent.copy()
    check(x, y, out=view, owners=[ox, oy])
    assert np.array_equal(parent[~mask], parent_before[~mask])


def test_layouts_are_what_they_claim():
    """Guard against the layout builders silently producing plain C arrays."""
    rng = np.random.default_rng(0)
    shape = (2, 3, 4)
    dt = np.dtype(np.float32)
    x, _ = make_input("transposed", rng, shape, dt)
    assert not x.flags.c_contiguous and x.strides[1] == dt.itemsize
    x, _ = make_input("negative", rng, shape, dt)
    assert all(s < 0 for s in x.strides)
    x, _ = make_input("broadcast_batch", rng, shape, dt)
    assert x.strides[0] == 0
    x, _ = make_input("broadcast_col", rng, shape, dt)
    assert x.strides[2] == 0
    x, _ = make_input("every_other", rng, shape, dt)
    assert x.strides[2] == 2 * dt.itemsize
    x, _ = make_input("misaligned", rng, shape, dt)
    assert not x.flags.aligned
    x, _ = make_input("readonly", rng, shape, dt)
    assert not x.flags.writeable
    x, _ = make_input("byteswapped", rng, shape, dt)
    assert not x.dtype.isnative
    v, _, _ = make_out("misaligned", shape, dt)
    assert not v.flags.aligned and v.flags.writeable
    v, _, _ = make_out("byteswapped", shape, dt)
    assert not v.dtype.isnative and v.flags.writeable
    v, _, _ = make_out("negative", shape, dt)
    assert v.strides[0] < 0 and v.strides[2] < 0
    # The "nothing written outside" checks rely on the sentinel not being zero.
    assert all(sentinel(d) != 0 for d in SUPPORTED_DTYPES)
