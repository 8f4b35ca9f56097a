"""fastbmm.matmul(a, b, *, out=None, out_dtype=None) against numpy.matmul and torch.matmul.

Values: an independent NumPy reference in a wider type (floats) or modulo 2**64
(integers), and torch.matmul on the same inputs. Errors: torch.matmul's exact text
for each rank combination (torch takes a different code path -- dot, mv, mm,
folded mm, bmm -- per combination, and each has its own messages), re-checked
against the installed torch; nothing is written to out= on an error.
"""

import itertools
import tracemalloc
import warnings

import numpy as np
import pytest

import fastbmm

from _helpers import (
    REFUSED_DTYPES,
    SUPPORTED_DTYPES,
    TORCH_SCALAR_NAMES,
    UNIT_ROUNDOFF,
    assert_close,
    assert_equal_values,
    check_torch,
    dtype_ids,
    native,
    native_copy,
    random_values,
    seeded_rng,
    sentinel,
    snapshot,
    to_torch,
    torch_error,
)

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not importable")


def result_shape(sa, sb):
    """torch.matmul's result shape (assumes valid operands)."""
    a1, b1 = len(sa) == 1, len(sb) == 1
    sa2 = (1,) + tuple(sa) if a1 else tuple(sa)
    sb2 = tuple(sb) + (1,) if b1 else tuple(sb)
    batch = np.broadcast_shapes(sa2[:-2], sb2[:-2])
    shape = tuple(batch) + (sa2[-2], sb2[-1])
    if a1:
        shape = shape[:-2] + shape[-1:]
    if b1:
        shape = shape[:-1]
    return shape


def reference_matmul(a, b):
    """(expected, tol): exact-ish matmul (float64/complex128, or exact ints) and tolerance."""
    a, b = native_copy(a), native_copy(b)
    dt = native(a.dtype)
    if dt.kind in "iu":
        r = np.asarray(np.matmul(a.astype(np.uint64), b.astype(np.uint64)))
        return r.astype(dt), None
    if dt.kind == "c":
        wide, out_t = np.clongdouble, np.complex128
    elif dt == np.float64:
        wide, out_t = np.longdouble, np.float64
    else:
        wide, out_t = np.float64, np.float64
    ref = np.asarray(np.matmul(a.astype(wide), b.astype(wide))).astype(out_t)
    s = np.asarray(np.matmul(np.abs(a).astype(np.float64), np.abs(b).astype(np.float64)))
    m = a.shape[-1]
    u = UNIT_ROUNDOFF[dt.char]
    mag = np.abs(ref)
    if dt == np.float16:
        tol = 2 * (m + 1) * 2.0 ** -24 * s + 4 * u * mag + 2.0 ** -24
    elif dt.kind == "c":
        tol = 4 * (m + 2) * u * s + 4 * u * mag + 1e-300
    else:
        tol = 2 * (m + 1) * u * s + 2 * u * mag + 1e-300
    return ref, tol


def check_matmul(a, b, with_torch=True, **kw):
    before = snapshot(a, b)
    got = fastbmm.matmul(a, b, **kw)
    assert snapshot(a, b) == before, "an operand was modified"
    assert isinstance(got, np.ndarray), f"matmul returned {type(got).__name__}, not ndarray"
    dt = native(a.dtype)
    assert got.dtype == dt
    assert got.shape == result_shape(a.shape, b.shape)
    expected, tol = reference_matmul(a, b)
    assert_close(got, expected, tol, dt)
    if with_torch and torch is not None:
        check_torch(assert_close, lambda: torch.matmul(to_torch(a), to_torch(b)).numpy(),
                    expected, tol, dt, what="torch.matmul")
    # numpy.matmul agrees on the shape (and, in the same dtype, on the values).
    assert np.matmul(native_copy(a), native_copy(b)).shape == got.shape
    return got


# ----------------------------------------------------------------------------
# Layouts for N-D operands
# ----------------------------------------------------------------------------


def nd_operand(rng, shape, dtype, layout="C"):
    shape = tuple(shape)
    nd = len(shape)
    if layout == "C" or nd == 0:
        return np.asarray(random_values(rng, shape, dtype))
    if layout == "transposed":
        if nd < 2:
            return random_values(rng, shape, dtype)
        base = random_values(rng, shape[:-2] + (shape[-1], shape[-2]), dtype)
        return np.swapaxes(base, -1, -2)
    if layout == "fortran":
        return np.asfortranarray(random_values(rng, shape, dtype))
    if layout == "negative":
        return random_values(rng, shape, dtype)[(slice(None, None, -1),) * nd]
    if layout == "every_other":
        base = random_values(rng, tuple(2 * s + 1 for s in shape), dtype)
        return base[(slice(1, None, 2),) * nd]
    if layout == "broadcast_first":
        base = random_values(rng, (1,) + shape[1:], dtype)
        return np.broadcast_to(base, shape)
    if layout == "broadcast_last":
        base = random_values(rng, shape[:-1] + (1,), dtype)
        return np.broadcast_to(base, shape)
    if layout == "byteswapped":
        return random_values(rng, shape, dtype).astype(native(dtype).newbyteorder())
    if layout == "readonly":
        x = random_values(rng, shape, dtype)
        x.flags.writeable = False
        return x
    raise ValueError(layout)


ND_LAYOUTS = ["C", "transposed", "fortran", "negative", "every_other", "broadcast_first",
              "broadcast_last", "byteswapped", "readonly"]

# (shape_a, shape_b): every rank combination, batch broadcasting, size-1 dims.
RANK_CASES = [
    ((5,), (5,)),
    ((5,), (5, 3)),
    ((4, 5), (5,)),
    ((4, 5), (5, 3)),
    ((2, 4, 5), (5,)),
    ((5,), (2, 5, 3)),
    ((2, 4, 5), (5, 3)),
    ((4, 5), (2, 5, 3)),
    ((2, 4, 5), (2, 5, 3)),
    ((1, 4, 5), (3, 5, 2)),
    ((3, 4, 5), (1, 5, 2)),
    ((2, 1, 3, 4, 5), (1, 7, 1, 5, 6)),
    ((4, 2, 3), (2, 1, 3, 4)),
    ((3, 2, 5, 2, 3), (2, 5, 3, 4)),
    ((5,), (2, 3, 5, 4)),
    ((2, 3, 4, 5), (5,)),
    ((2, 3, 1, 4, 5), (5, 3)),
    ((1, 1, 4, 5), (5, 3)),
    ((1, 1), (1, 1)),
    ((1,), (1,)),
    ((6, 1), (1, 7)),
    ((3, 6, 1), (1,)),
]


@pytest.mark.parametrize("sa,sb", RANK_CASES, ids=[f"{a}@{b}" for a, b in RANK_CASES])
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=dtype_ids(SUPPORTED_DTYPES))
def test_rank_combinations(dtype, sa, sb):
    rng = seeded_rng("rank", dtype.name, sa, sb)
    a = nd_operand(rng, sa, dtype)
    b = nd_operand(rng, sb, dtype)
    check_matmul(a, b)


def test_vector_dot_returns_zero_d_array():
    a = np.arange(1.0, 4.0)
    b = np.arange(4.0, 7.0)
    got = fastbmm.matmul(a, b)
    # torch returns a 0-D tensor; the NumPy analogue is a 0-D ndarray.
    assert isinstance(got, np.ndarray) and got.shape == () and got.dtype == np.float64
    assert got == 32.0
    if torch is not None:
        check_torch(assert_equal_values, lambda: torch.matmul(to_torch(a), to_torch(b)).numpy(),
                    np.array(32.0), what="torch.matmul")


LARGER_CASES = [
    ((70, 300), (300, 50)),           # packed path, m > KC
    ((3, 33, 17), (17, 45)),          # folded batch
    ((3, 40), (2, 40, 130)),          # few rows, broadcast A
    ((300,), (300, 70)),              # vector-matrix
    ((70, 300), (300,)),              # matrix-vector
    ((2, 1, 33, 20), (1, 3, 20, 45)),  # batch broadcast both sides
    ((1000,), (1000,)),
]


@pytest.mark.parametrize("sa,sb", LARGER_CASES, ids=[f"{a}@{b}" for a, b in LARGER_CASES])
@pytest.mark.parametrize("dtype", [np.dtype(t) for t in (np.float16, np.float32, np.float64, np.complex64, np.int8, np.int64)],
                         ids=["float16", "float32", "float64", "complex64", "int8", "int64"])
def test_larger_sizes(dtype, sa, sb):
    rng = seeded_rng("larger", dtype.name, sa, sb)
    check_matmul(nd_operand(rng, sa, dtype), nd_operand(rng, sb, dtype))


@pytest.mark.parametrize("sa,sb", [((2, 1, 33, 20), (1, 3, 20, 45)), ((70, 300), (300, 50)), ((5, 3, 40), (40, 130))])
def test_thread_counts(threads, sa, sb):
    rng = seeded_rng("thr", sa, sb, threads)
    a = nd_operand(rng, sa, np.float32)
    b = nd_operand(rng, sb, np.float32)
    got = check_matmul(a, b, with_torch=False)
    np.testing.assert_array_equal(got, fastbmm.matmul(a, b))


LAYOUT_CASES = [((4, 5), (5, 3)), ((2, 4, 5), (2, 5, 3)), ((3, 2, 33, 17), (2, 17, 45)), ((7,), (2, 7, 3)), ((3, 4, 7), (7,))]


def _layout_cases():
    for sa, sb in LAYOUT_CASES:
        for la in ND_LAYOUTS:
            for lb in ["C", "transposed", "negative", "broadcast_first"]:
                # a broadcast layout needs >= 2 dims
                if (la.startswith("broadcast") and len(sa) < 2) or (lb.startswith("broadcast") and len(sb) < 2):
                    continue
                yield pytest.param(la, lb, sa, sb, id=f"{la}{sa}@{lb}{sb}")


@pytest.mark.parametrize("la,lb,sa,sb", list(_layout_cases()))
def test_strided_layouts(la, lb, sa, sb):
    for dtype in (np.float64, np.complex64):
        rng = seeded_rng("layout", la, lb, sa, sb, np.dtype(dtype).name)
        check_matmul(nd_operand(rng, sa, dtype, la), nd_operand(rng, sb, dtype, lb))


def test_transposed_key_attention_pattern():
    # q @ k.swapaxes(-1, -2) for (batch, heads, seq, dim)
    rng = seeded_rng("attn")
    q = random_values(rng, (2, 3, 9, 16), np.float32)
    k = random_values(rng, (2, 3, 11, 16), np.float32)
    check_matmul(q, np.swapaxes(k, -1, -2))


ZERO_CASES = [
    ((0, 2, 3), (1, 3, 4)),
    ((2, 0, 3), (3, 4)),
    ((2, 3, 0), (0, 4)),
    ((2, 3), (3, 0)),
    ((0,), (0,)),
    ((0,), (0, 4)),
    ((3, 0), (0,)),
    ((0, 1, 2, 3), (5, 3, 4)),
    ((2, 1, 0, 3), (1, 4, 3, 2)),
    ((4, 0), (0, 5)),
    ((2, 0, 4, 3), (3, 2)),
]


@pytest.mark.parametrize("sa,sb", ZERO_CASES, ids=[f"{a}@{b}" for a, b in ZERO_CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.complex128])
def test_zero_size_dims(sa, sb, dtype):
    a = np.ones(sa, dtype=dtype)
    b = np.ones(sb, dtype=dtype)
    got = check_matmul(a, b)
    if a.shape[-1] == 0 and got.size:
        assert (got == 0).all()
    if torch is not None:
        assert got.shape == tuple(torch.matmul(to_torch(a), to_torch(b)).shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_inner_dim_overwrites_dirty_out(dtype):
    a = np.ones((2, 3, 0), dtype)
    b = np.ones((0, 4), dtype)
    out = np.full((2, 3, 4), np.nan, dtype)
    r = fastbmm.matmul(a, b, out=out)
    assert r is out and (out == 0).all()


@pytest.mark.parametrize("n", [200, 64])
def test_large_broadcast_runs_without_materialising_copies(n):
    # (n,1,8,8) @ (1,n,8,8) -> (n,n,8,8). Broadcasting copies of both operands would
    # allocate as much again as the result; NumPy allocations show up in tracemalloc.
    rng = seeded_rng("bcast", n)
    a = random_values(rng, (n, 1, 8, 8), np.float32)
    b = random_values(rng, (1, n, 8, 8), np.float32)
    result_bytes = n * n * 64 * 4
    fastbmm.matmul(a[:2], b[:, :2])  # warm up anything lazily allocated
    tracemalloc.start()
    try:
        got = fastbmm.matmul(a, b)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.shape == (n, n, 8, 8)
    assert peak < 1.4 * result_bytes + (1 << 20), (
        f"peak traced allocation {peak} bytes for a {result_bytes}-byte result: "
        "a broadcast operand seems to have been materialised")
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    s = np.matmul(np.abs(a).astype(np.float64), np.abs(b).astype(np.float64))
    tol = 2 * 9 * 2.0 ** -24 * s + 2 * 2.0 ** -24 * np.abs(expected) + 1e-37
    assert_close(got, expected, tol, np.float32)
    if torch is not None and n <= 64:
        check_torch(assert_close, lambda: torch.matmul(to_torch(a), to_torch(b)).numpy(),
                    expected, tol, np.float32, what="torch.matmul")


def test_broadcast_zero_stride_operands():
    rng = seeded_rng("zstride")
    a = np.broadcast_to(random_values(rng, (1, 1, 6, 5), np.float64), (3, 4, 6, 5))
    b = np.broadcast_to(random_values(rng, (5, 1), np.float64), (3, 1, 5, 7))
    check_matmul(a, b)


# ----------------------------------------------------------------------------
# out=
# ----------------------------------------------------------------------------

OUT_CASES = [((5,), (5,)), ((4, 5), (5,)), ((5,), (5, 3)), ((4, 5), (5, 3)), ((2, 4, 5), (5,)),
             ((2, 1, 4, 5), (3, 5, 6)), ((70, 300), (300, 50))]


@pytest.mark.parametrize("sa,sb", OUT_CASES, ids=[f"{a}@{b}" for a, b in OUT_CASES])
@pytest.mark.parametrize("olayout", ["C", "negative", "every_other", "byteswapped"])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128, np.int32])
def test_out(sa, sb, olayout, dtype):
    dt = np.dtype(dtype)
    rng = seeded_rng("out", sa, sb, olayout, dt.name)
    a, b = nd_operand(rng, sa, dt), nd_operand(rng, sb, dt)
    shape = result_shape(sa, sb)
    nd = len(shape)
    if olayout == "C":
        parent = np.full(shape, sentinel(dt), dt)
        out = parent
    elif olayout == "negative":
        parent = np.full(shape, sentinel(dt), dt)
        out = parent[(slice(None, None, -1),) * nd] if nd else parent[...]
    elif olayout == "every_other":
        parent = np.full(tuple(2 * s + 1 for s in shape), sentinel(dt), dt)
        out = parent[(slice(1, None, 2),) * nd] if nd else parent[...]
    else:
        parent = np.full(shape, sentinel(dt), dt.newbyteorder())
        out = parent
    before = parent.copy()
    r = fastbmm.matmul(a, b, out=out)
    assert r is out
    expected, tol = reference_matmul(a, b)
    assert_close(out, expected, tol, dt)
    if olayout == "every_other" and nd:
        mask = np.ones(parent.shape, bool)
        mask[(slice(1, None, 2),) * nd] = False
        assert parent[mask].tobytes() == before[mask].tobytes(), "memory outside out= was touched"


@pytest.mark.parametrize("which", ["a", "b"])
@pytest.mark.parametrize("shape", [(6, 6), (3, 6, 6), (40, 40)])
def test_out_aliases_an_operand(which, shape):
    rng = seeded_rng("alias", which, shape)
    a = random_values(rng, shape, np.float64)
    b = random_values(rng, shape, np.float64)
    expected, tol = reference_matmul(a, b)
    target = a if which == "a" else b
    r = fastbmm.matmul(a, b, out=target)
    assert r is target
    assert_close(target, expected, tol, np.float64)


def test_out_wrong_shape_raises_and_writes_nothing():
    a, b = np.ones((2, 3, 4), np.float32), np.ones((4, 5), np.float32)
    for oshape in [(2, 3, 4), (3, 5), (2, 3, 5, 1), (6, 5)]:
        out = np.full(oshape, sentinel(np.float32), np.float32)
        with pytest.raises(ValueError) as info:
            fastbmm.matmul(a, b, out=out)
        assert isinstance(info.value, RuntimeError)
        assert str(oshape) in str(info.value) and "(2, 3, 5)" in str(info.value), str(info.value)
        assert (out == sentinel(np.float32)).all()


def test_out_dot_needs_zero_d_out():
    a, b = np.ones(3), np.ones(3)
    out = np.full((), 7.0)
    r = fastbmm.matmul(a, b, out=out)
    assert r is out and out == 3.0
    bad = np.full((1,), 7.0)
    with pytest.raises(ValueError):
        fastbmm.matmul(a, b, out=bad)
    assert bad[0] == 7.0


def test_out_read_only():
    out = np.zeros((3, 5), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError):
        fastbmm.matmul(np.ones((3, 4), np.float32), np.ones((4, 5), np.float32), out=out)
    assert (out == 0).all()


def _torch_error(*args, **kwargs):
    """The exception torch.matmul raises for these (NumPy) arguments, or None."""
    return torch_error(torch.matmul, *args, **kwargs)


# ----------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------


def _arr(shape, dtype=np.float32):
    dt = np.dtype(dtype)
    if dt.kind in "fciu":
        return np.asarray(random_values(seeded_rng("err", shape, dt.name), shape, dt))
    return np.ones(shape, dt)


def check_error(a, b, exc_type, message, torch_parity=True, out=None):
    if torch_parity and torch is not None:
        te = _torch_error(a, b, **({"out": out} if out is not None else {}))
        assert te is not None and str(te) == message, f"torch says {te!r}, test expects {message!r}"
        assert isinstance(te, exc_type)
    arrays = [x for x in (a, b, out) if isinstance(x, np.ndarray)]
    before = snapshot(*arrays)
    with pytest.raises(exc_type) as info:
        if out is None:
            fastbmm.matmul(a, b)
        else:
            fastbmm.matmul(a, b, out=out)
    assert snapshot(*arrays) == before, "an operand or out= was modified by a failing call"
    assert str(info.value) == message
    return info.value


F32, F64 = np.float32, np.float64

# (shape_a, dtype_a, shape_b, dtype_b, exception, torch 2.13's text)
SHAPE_ERRORS = [
    ((), F32, (3,), F32, "both arguments to matmul need to be at least 1D, but they are 0D and 1D"),
    ((3,), F32, (), F32, "both arguments to matmul need to be at least 1D, but they are 1D and 0D"),
    ((), F32, (), F32, "both arguments to matmul need to be at least 1D, but they are 0D and 0D"),
    ((2, 3), F32, (), F32, "both arguments to matmul need to be at least 1D, but they are 2D and 0D"),
    ((), F32, (2, 3, 4), F32, "both arguments to matmul need to be at least 1D, but they are 0D and 3D"),
    ((3,), F32, (4,), F32, "inconsistent tensor size, expected tensor [3] and src [4] to have the same "
                           "number of elements, but got 3 and 4 elements respectively"),
    ((3,), F32, (4, 5), F32, "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x5)"),
    ((2, 3), F32, (4, 5), F32, "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
    ((2, 3), F32, (4,), F32, "size mismatch, got input (2), mat (2x3), vec (4)"),
    ((5, 2, 3), F32, (6, 3, 4), F32, "The size of tensor a (5) must match the size of tensor b (6) at non-singleton dimension 0"),
    ((2, 5, 2, 3), F32, (3, 5, 3, 4), F32, "The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0"),
    ((4, 2, 3), F32, (2, 3, 3, 4), F32, "The size of tensor a (4) must match the size of tensor b (3) at non-singleton dimension 1"),
    ((7, 2, 5, 2, 3), F32, (6, 2, 5, 3, 4), F32, "The size of tensor a (7) must match the size of tensor b (6) at non-singleton dimension 0"),
    ((0, 2, 3), F32, (3, 3, 4), F32, "The size of tensor a (0) must match the size of tensor b (3) at non-singleton dimension 0"),
    ((5, 2, 3), F32, (5, 4, 4), F32, "Expected size for first two dimensions of batch2 tensor to be: [5, 3] but got: [5, 4]."),
]

# Texts where torch's message shows its internal reshaping (batch dims folded into rows,
# or into one batch dim) -- kept separate so a deliberate divergence is easy to see.
FOLDED_SHAPE_ERRORS = [
    ((5, 2, 3), F32, (4,), F32, "size mismatch, got input (10), mat (10x3), vec (4)"),
    ((3,), F32, (5, 4, 4), F32, "Expected size for first two dimensions of batch2 tensor to be: [5, 3] but got: [5, 4]."),
    ((5, 2, 3), F32, (4, 4), F32, "mat1 and mat2 shapes cannot be multiplied (10x3 and 4x4)"),
    ((2, 3), F32, (5, 4, 4), F32, "Expected size for first two dimensions of batch2 tensor to be: [5, 3] but got: [5, 4]."),
    ((2, 5, 2, 3), F32, (2, 5, 4, 4), F32, "Expected size for first two dimensions of batch2 tensor to be: [10, 3] but got: [10, 4]."),
]

DTYPE_ERRORS = [
    ((3,), F32, (3,), F64, "dot : expected both vectors to have same dtype, but found Float and Double"),
    ((3,), F64, (3,), F32, "dot : expected both vectors to have same dtype, but found Double and Float"),
    ((3,), F32, (3, 4), F64, "expected m1 and m2 to have the same dtype, but got: float != double"),
    ((3,), F64, (3, 4), F32, "expected m1 and m2 to have the same dtype, but got: double != float"),
    ((2, 3), F32, (3,), F64, "addmv input tensors must have the same dtype, but got Double, Float, and Double"),
    ((2, 3), F64, (3,), F32, "addmv input tensors must have the same dtype, but got Float, Double, and Float"),
    ((2, 3), F32, (3, 4), F64, "expected m1 and m2 to have the same dtype, but got: float != double"),
    ((2, 3), F64, (3, 4), F32, "expected m1 and m2 to have the same dtype, but got: double != float"),
    ((5, 2, 3), F32, (3,), F64, "addmv input tensors must have the same dtype, but got Double, Float, and Double"),
    ((3,), F32, (5, 3, 4), F64, "expected scalar type Float but found Double"),
    ((5, 2, 3), F32, (3, 4), F64, "expected m1 and m2 to have the same dtype, but got: float != double"),
    ((2, 3), F32, (5, 3, 4), F64, "expected scalar type Float but found Double"),
    ((5, 2, 3), F32, (5, 3, 4), F64, "expected scalar type Float but found Double"),
    ((5, 2, 3), F64, (5, 3, 4), F32, "expected scalar type Double but found Float"),
    ((2, 5, 2, 3), F32, (2, 5, 3, 4), F64, "expected scalar type Float but found Double"),
    ((2, 3), np.int32, (3, 4), np.int64, "expected m1 and m2 to have the same dtype, but got: int != long int"),
    ((2, 2, 3), np.float16, (2, 3, 4), np.complex64, "expected scalar type Half but found ComplexFloat"),
]


def _err_ids(cases):
    return [f"{np.dtype(c[1]).name}{c[0]}@{np.dtype(c[3]).name}{c[2]}" for c in cases]


@pytest.mark.parametrize("sa,da,sb,db,msg", SHAPE_ERRORS, ids=_err_ids(SHAPE_ERRORS))
def test_shape_errors(sa, da, sb, db, msg):
    e = check_error(_arr(sa, da), _arr(sb, db), RuntimeError, msg)
    assert isinstance(e, ValueError), "shape errors must also be ValueErrors (fastbmm.ShapeError)"


@pytest.mark.parametrize("sa,da,sb,db,msg", FOLDED_SHAPE_ERRORS, ids=_err_ids(FOLDED_SHAPE_ERRORS))
def test_shape_errors_torch_folded_text(sa, da, sb, db, msg):
    e = check_error(_arr(sa, da), _arr(sb, db), RuntimeError, msg)
    assert isinstance(e, ValueError)


@pytest.mark.parametrize("sa,da,sb,db,msg", DTYPE_ERRORS, ids=_err_ids(DTYPE_ERRORS))
def test_dtype_errors(sa, da, sb, db, msg):
    e = check_error(_arr(sa, da), _arr(sb, db), RuntimeError, msg)
    assert isinstance(e, TypeError), "dtype errors must also be TypeErrors (fastbmm.DtypeError)"


def test_spec_dtype_example():
    check_error(_arr((2, 3), F32), _arr((3, 4), F64), RuntimeError,
                "expected m1 and m2 to have the same dtype, but got: float != double")


# torch's kernel name per rank combination in "... not implemented for 'Bool'"
REFUSED_KERNEL = [
    ((3,), (3,), "dot"), ((2, 3), (3,), "addmv_impl_cpu"), ((3,), (3, 2), "addmm_impl_cpu_"),
    ((2, 3), (3, 2), "addmm_impl_cpu_"), ((2, 2, 3), (2, 3, 2), "bmm"), ((2, 2, 3), (3, 2), "addmm_impl_cpu_"),
    ((2, 3), (2, 3, 2), "bmm"), ((2, 2, 3), (3,), "addmv_impl_cpu"), ((3,), (2, 3, 2), "bmm"),
]


@pytest.mark.parametrize("sa,sb,kernel_name", REFUSED_KERNEL, ids=[f"{a}@{b}" for a, b, _ in REFUSED_KERNEL])
@pytest.mark.parametrize("dtype", REFUSED_DTYPES, ids=dtype_ids(REFUSED_DTYPES))
def test_refused_dtypes(dtype, sa, sb, kernel_name):
    msg = f"\"{kernel_name}\" not implemented for '{TORCH_SCALAR_NAMES[dtype.name]}'"
    e = check_error(np.ones(sa, dtype), np.ones(sb, dtype), NotImplementedError, msg)
    assert isinstance(e, TypeError)


@pytest.mark.parametrize("dtype", [np.longdouble, object, "U3", "M8[s]"], ids=["longdouble", "object", "str", "datetime"])
def test_numpy_only_dtypes_refused(dtype):
    a = np.zeros((2, 3), dtype=dtype)
    b = np.zeros((3, 2), dtype=dtype)
    with pytest.raises((NotImplementedError, TypeError)) as info:
        fastbmm.matmul(a, b)
    assert np.dtype(dtype).name in str(info.value) or str(np.dtype(dtype)) in str(info.value)


# out= dtype errors: each torch path words it differently.
OUT_DTYPE_ERRORS = [
    ((3,), (3,), (), F64, "result dtype Double does not match input dtype Float"),
    ((2, 3), (3,), (2,), F64, "addmv input tensors must have the same dtype, but got Double, Float, and Float"),
    ((5, 2, 3), (3,), (5, 2), np.int32, "addmv input tensors must have the same dtype, but got Int, Float, and Float"),
    ((3,), (3, 4), (4,), F64, "Expected out tensor to have dtype float, but got double instead"),
    ((2, 3), (3, 4), (2, 4), F64, "Expected out tensor to have dtype float, but got double instead"),
    ((5, 2, 3), (5, 3, 4), (5, 2, 4), np.int32, "Expected out tensor to have dtype float, but got int instead"),
    ((2, 1, 2, 3), (1, 4, 3, 4), (2, 4, 2, 4), F64, "Expected out tensor to have dtype float, but got double instead"),
]


@pytest.mark.parametrize("sa,sb,so,do,msg", OUT_DTYPE_ERRORS, ids=[f"{a}@{b}" for a, b, *_ in OUT_DTYPE_ERRORS])
def test_out_dtype_errors(sa, sb, so, do, msg):
    out = np.full(so, sentinel(do), do)
    e = check_error(_arr(sa), _arr(sb), RuntimeError, msg, out=out)
    assert isinstance(e, TypeError)


def test_shape_error_before_out_dtype_error():
    out = np.full((2, 5), sentinel(F64), F64)
    check_error(_arr((2, 3)), _arr((4, 5)), RuntimeError, "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", out=out)


@pytest.mark.parametrize(
    "pos,obj,argname",
    [(0, [1.0], "input"), (0, (1.0,), "input"), (0, 2.0, "input"), (1, [1.0], "other"), (1, 3, "other")],
)
def test_not_arrays(pos, obj, argname):
    args = [_arr((1,)), _arr((1,))]
    args[pos] = obj
    msg = f"matmul(): argument '{argname}' (position {pos + 1}) must be ndarray, not {type(obj).__name__}"
    if torch is not None:
        assert str(_torch_error(*args)) == msg.replace("ndarray", "Tensor")
    with pytest.raises(TypeError) as info:
        fastbmm.matmul(*args)
    assert str(info.value) == msg


def test_out_not_array():
    msg = "matmul(): argument 'out' must be ndarray, not list"
    if torch is not None:
        assert str(_torch_error(_arr((2,)), _arr((2,)), out=[1])) == msg.replace("ndarray", "Tensor")
    with pytest.raises(TypeError) as info:
        fastbmm.matmul(_arr((2,)), _arr((2,)), out=[1])
    assert str(info.value) == msg


def test_masked_array_refused():
    with pytest.raises(TypeError):
        fastbmm.matmul(np.ma.ones((2, 3)), np.ones((3, 2)))


PRECEDENCE_CASES = [
    # operand dtype mismatch and a wrong out= dtype together: which one does torch report?
    ((2, 3), F32, (3, 4), F64, (2, 4), F64),
    ((5, 2, 3), F32, (5, 3, 4), F64, (5, 2, 4), F64),
    ((2, 3), F32, (3,), F64, (2,), F64),
    ((3,), F32, (3,), F64, (), F64),
    ((5, 2, 3), F32, (3, 4), F64, (5, 2, 4), F64),
]


@needs_torch
@pytest.mark.parametrize("sa,da,sb,db,so,do", PRECEDENCE_CASES, ids=[f"{c[0]}@{c[2]}" for c in PRECEDENCE_CASES])
def test_error_precedence_matches_torch(sa, da, sb, db, so, do):
    out = np.full(so, sentinel(do), do)
    te = _torch_error(_arr(sa, da), _arr(sb, db), out=out)
    assert te is not None
    check_error(_arr(sa, da), _arr(sb, db), RuntimeError, str(te), out=out)


@pytest.mark.parametrize("case", ["a_batched_b_broadcast", "a_broadcast_b_batched", "vector_out_is_a"])
def test_out_aliases_an_operand_with_broadcasting(case):
    rng = seeded_rng("alias_bc", case)
    if case == "a_batched_b_broadcast":
        a = random_values(rng, (3, 6, 6), np.float64)
        b = random_values(rng, (6, 6), np.float64)
        target = a
    elif case == "a_broadcast_b_batched":
        a = random_values(rng, (6, 6), np.float64)
        b = random_values(rng, (3, 6, 6), np.float64)
        target = b
    else:  # (n,) @ (n, n) -> (n,), written over the vector itself
        a = random_values(rng, (6,), np.float64)
        b = random_values(rng, (6, 6), np.float64)
        target = a
    expected, tol = reference_matmul(a, b)
    r = fastbmm.matmul(a, b, out=target)
    assert r is target
    assert_close(target, expected, tol, np.float64)


# ----------------------------------------------------------------------------
# torch's error texts follow the operands' layout, not only their ranks
# ----------------------------------------------------------------------------
# torch.matmul folds an N-D operand against one of rank <= 2 into the rows of a
# single matrix (mm / mv on a view) only when its batch dims flatten without a
# copy; otherwise it expands the batches and runs bmm. A 1-D input against an
# N-D other folds other's transpose into mv. Each route words its errors its own
# way, so the same shapes give different texts per layout (issue 9, item 9).
# Every layout here is one torch can share (torch.from_numpy keeps the strides).


def _sweep_layouts(shape, dtype):
    shape = tuple(shape)
    nd = len(shape)
    yield "C", np.zeros(shape, dtype)
    yield "every_other", np.zeros(tuple(2 * s for s in shape), dtype)[(slice(None, None, 2),) * nd]
    if nd >= 2:
        yield "transposed", np.swapaxes(np.zeros(shape[:-2] + (shape[-1], shape[-2]), dtype), -1, -2)
    if nd >= 3:
        yield "batch_transposed", np.swapaxes(np.zeros((shape[1], shape[0]) + shape[2:], dtype), 0, 1)
        yield "fortran", np.asfortranarray(np.zeros(shape, dtype))
        yield "broadcast", np.broadcast_to(np.zeros((1,) + shape[1:], dtype), shape)
        yield "sliced_batch", np.zeros((2 * shape[0],) + shape[1:], dtype)[::2]
        yield "sliced_rows", np.zeros(shape[:-2] + (2 * shape[-2], shape[-1]), dtype)[..., ::2, :]


# Sizes that meet (2,3 @ 3,4) and that do not (2,3 @ 4,5), empty and size-1 batches.
_SWEEP_SHAPES = {
    1: [(3,), (4,)],
    2: [(2, 3), (3, 4), (4, 5)],
    3: [(2, 2, 3), (2, 3, 4), (2, 4, 5), (0, 2, 3), (1, 2, 3)],
    4: [(2, 2, 2, 3), (2, 2, 3, 4), (1, 2, 4, 5)],
}
# same dtype; mixed; refused by every torch kernel; refused on one side only
_SWEEP_DTYPES = [(np.float32, np.float32), (np.float32, np.float64), (np.uint16, np.uint16),
                 (np.bool_, np.float32)]


def _raised(fn, *args, **kwargs):
    """The exception fn raises, or None (torch.from_numpy shares the layout: torch_error
    would pass contiguous copies)."""
    try:
        fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        return e
    return None


def _would_be_shape(sa, sb):
    """The result's shape were the inner sizes equal (torch resizes out= to it first)."""
    fixed = tuple(sb[:-2]) + (sa[-1],) + tuple(sb[-1:]) if len(sb) >= 2 else tuple(sa[-1:])
    try:
        return result_shape(sa, fixed)
    except ValueError:                  # batch sizes that do not broadcast
        return (1,)


@needs_torch
@pytest.mark.parametrize("ra,rb", [(ra, rb) for ra in range(1, 5) for rb in range(1, 5)],
                         ids=[f"{ra}D@{rb}D" for ra in range(1, 5) for rb in range(1, 5)])
@pytest.mark.parametrize("with_out", [False, True], ids=["no_out", "out"])
def test_error_text_follows_layout_like_torch(ra, rb, with_out):
    compared, mismatches = 0, []
    for sa, sb in itertools.product(_SWEEP_SHAPES[ra], _SWEEP_SHAPES[rb]):
        for (da, db), do in itertools.product(_SWEEP_DTYPES, [np.float64] if with_out else [None]):
            for (la, a), (lb, b) in itertools.product(list(_sweep_layouts(sa, da)),
                                                      list(_sweep_layouts(sb, db))):
                kw, tkw = {}, {}
                if with_out:
                    shape = _would_be_shape(sa, sb)
                    kw["out"] = np.zeros(shape, do)
                    tkw["out"] = torch.zeros(shape, dtype=to_torch(kw["out"]).dtype)
                with warnings.catch_warnings():     # torch resizes out= (deprecated)
                    warnings.simplefilter("ignore")
                    te = _raised(torch.matmul, torch.from_numpy(a), torch.from_numpy(b), **tkw)
                if te is None:
                    continue                    # valid: the value tests cover it
                compared += 1
                fe = _raised(fastbmm.matmul, a, b, **kw)
                if not (isinstance(fe, type(te)) and str(fe) == str(te)):
                    mismatches.append(f"{la}{sa} {np.dtype(da).name} @ {lb}{sb} {np.dtype(db).name}: "
                                      f"torch {type(te).__name__}({te}), fastbmm {fe!r}")
    assert compared > 0
    assert not mismatches, f"{len(mismatches)} of {compared} differ, e.g.\n" + "\n".join(mismatches[:10])
