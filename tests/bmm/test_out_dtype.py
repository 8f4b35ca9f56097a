"""out_dtype= for fastbmm.bmm and fastbmm.matmul.

float16 operands with out_dtype=float32 give a float32 result accumulated in
float32 and never rounded to float16. torch 2.13's CPU build has no kernel for
bmm(..., out_dtype) (aten::bmm.dtype raises NotImplementedError), so the oracle is
NumPy: the float32 casts of the operands multiplied in float64.
"""

import numpy as np
import pytest

import fastbmm

from _helpers import (
    SUPPORTED_DTYPES,
    make_input,
    random_values,
    seeded_rng,
    sentinel,
    snapshot,
)

F16, F32 = np.dtype(np.float16), np.dtype(np.float32)


def _ref32(a, b):
    """float64 product of the float32 casts (any rank) and its float32 tolerance."""
    a32 = np.asarray(a).astype(np.float32)
    b32 = np.asarray(b).astype(np.float32)
    ref = np.asarray(np.matmul(a32.astype(np.float64), b32.astype(np.float64)))
    s = np.asarray(np.matmul(np.abs(a32).astype(np.float64), np.abs(b32).astype(np.float64)))
    m = a32.shape[-1]
    tol = 2 * (m + 1) * 2.0 ** -24 * s + 2 * 2.0 ** -24 * np.abs(ref) + 1e-37
    return ref, tol


def _assert_f32_result(got, a, b):
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.float32, f"result dtype {got.dtype}, expected float32"
    ref, tol = _ref32(a, b)
    assert got.shape == ref.shape
    err = np.abs(got.astype(np.float64) - ref)
    assert (err <= tol).all(), f"max error {err.max():.3g} exceeds float32 tolerance (max tol {tol.max():.3g})"


BMM_SIZES = [(3, 4, 5, 6), (2, 3, 40, 130), (1, 70, 300, 50), (3, 33, 17, 45), (2, 7, 600, 9)]


@pytest.mark.parametrize("size", BMM_SIZES, ids=[str(s) for s in BMM_SIZES])
@pytest.mark.parametrize("form", ["type", "dtype"])
def test_bmm_float16_to_float32(threads, size, form):
    bsz, n, m, p = size
    rng = seeded_rng("bmm", size, threads)
    a = random_values(rng, (bsz, n, m), F16)
    b = random_values(rng, (bsz, m, p), F16)
    before = snapshot(a, b)
    got = fastbmm.bmm(a, b, out_dtype=np.float32 if form == "type" else F32)
    assert snapshot(a, b) == before
    _assert_f32_result(got, a, b)
    # The same values as the float32 product of the casts (same tolerance).
    ref32 = fastbmm.bmm(a.astype(np.float32), b.astype(np.float32))
    assert np.abs(got.astype(np.float64) - ref32).max() <= 2 * _ref32(a, b)[1].max()


@pytest.mark.parametrize("layout", ["transposed", "fortran", "negative", "broadcast_batch", "every_other",
                                    "misaligned", "byteswapped", "byteswapped_transposed"])
def test_bmm_float16_to_float32_any_layout(layout):
    rng = seeded_rng("layout", layout)
    a, _ = make_input(layout, rng, (3, 33, 17), F16)
    b, _ = make_input(layout, rng, (3, 17, 45), F16)
    _assert_f32_result(fastbmm.bmm(a, b, out_dtype=np.float32), a, b)


def test_every_kernel_variant(kernel):
    rng = seeded_rng("kernel", kernel)
    a = random_values(rng, (2, 70, 300), F16)
    b = random_values(rng, (2, 300, 50), F16)
    _assert_f32_result(fastbmm.bmm(a, b, out_dtype=np.float32), a, b)


def test_float32_accumulation_is_not_rounded_to_float16():
    # float16(1.001) = 1.0009765625 = 1025/1024; every partial sum k * 1025/1024
    # (k <= 5000) is exact in float32, so the float32 result is exactly 5004.8828125,
    # while any result rounded to float16 (spacing 4 at this magnitude) is 5004.
    a = np.full((2, 1, 5000), 1.001, dtype=np.float16)
    b = np.ones((2, 5000, 3), dtype=np.float16)
    assert float(a[0, 0, 0]) == 1.0009765625
    exact = 5000 * 1.0009765625
    assert exact == 5004.8828125
    wide = fastbmm.bmm(a, b, out_dtype=np.float32)
    assert wide.dtype == np.float32
    assert (wide == np.float32(exact)).all(), wide
    narrow = fastbmm.bmm(a, b)
    assert narrow.dtype == np.float16
    assert (narrow == np.float16(5004.0)).all(), narrow
    assert (wide != narrow.astype(np.float32)).all()
    # matmul, every rank combination.
    v = a[0, 0]
    ones = np.ones(5000, np.float16)
    assert fastbmm.matmul(v, ones, out_dtype=np.float32) == np.float32(exact)
    assert fastbmm.matmul(v, ones) == np.float16(5004.0)
    r = fastbmm.matmul(a[0], b[0], out_dtype=np.float32)
    assert r.dtype == np.float32 and (r == np.float32(exact)).all()
    r = fastbmm.matmul(v, b[0], out_dtype=np.float32)
    assert r.shape == (3,) and (r == np.float32(exact)).all()
    r = fastbmm.matmul(b[0].T, v, out_dtype=np.float32)
    assert r.shape == (3,) and (r == np.float32(exact)).all()


def test_float32_result_beyond_float16_range():
    # 1000 * 1000 * 100 = 1e8 overflows float16 (max 65504) but not float32.
    a = np.full((1, 2, 100), 1000, dtype=np.float16)
    b = np.full((1, 100, 2), 1000, dtype=np.float16)
    got = fastbmm.bmm(a, b, out_dtype=np.float32)
    assert got.dtype == np.float32 and (got == np.float32(1e8)).all()
    assert np.isinf(fastbmm.bmm(a, b)).all()
    got = fastbmm.matmul(a[0], b[0], out_dtype=np.float32)
    assert (got == np.float32(1e8)).all()


MATMUL_CASES = [((300,), (300,)), ((7, 300), (300,)), ((300,), (300, 9)), ((70, 300), (300, 50)),
                ((2, 1, 33, 17), (1, 3, 17, 45)), ((3, 33, 17), (17, 45)), ((5,), (2, 5, 3))]


@pytest.mark.parametrize("sa,sb", MATMUL_CASES, ids=[f"{a}@{b}" for a, b in MATMUL_CASES])
def test_matmul_float16_to_float32(sa, sb):
    rng = seeded_rng("mm", sa, sb)
    a = random_values(rng, sa, F16)
    b = random_values(rng, sb, F16)
    got = fastbmm.matmul(a, b, out_dtype=np.float32)
    _assert_f32_result(got, a, b)
    assert got.shape == np.matmul(a, b).shape


def test_out_dtype_with_matching_out():
    rng = seeded_rng("out")
    a = random_values(rng, (2, 9, 20), F16)
    b = random_values(rng, (2, 20, 11), F16)
    out = np.full((2, 9, 11), sentinel(F32), F32)
    r = fastbmm.bmm(a, b, out=out, out_dtype=np.float32)
    assert r is out
    _assert_f32_result(out, a, b)
    # A strided float32 out= view.
    parent = np.full((2, 20, 11), sentinel(F32), F32)
    view = parent[:, 1:19:2]
    assert view.shape == (2, 9, 11)
    fastbmm.bmm(a, b, out=view, out_dtype=np.float32)
    _assert_f32_result(view, a, b)
    assert (parent[:, 0::2] == sentinel(F32)).all() and (parent[:, 19] == sentinel(F32)).all()
    out2 = np.full((9, 11), sentinel(F32), F32)
    assert fastbmm.matmul(a[0], b[0], out=out2, out_dtype=np.float32) is out2
    _assert_f32_result(out2, a[0], b[0])


@pytest.mark.parametrize("fn", ["bmm", "matmul"])
def test_out_dtype_with_mismatched_out_raises(fn):
    a = np.ones((2, 3, 4), F16)
    b = np.ones((2, 4, 5), F16)
    for out_dtype, out_arr_dtype in [(np.float32, np.float16), (np.float32, np.float64), (None, np.float32)]:
        out = np.full((2, 3, 5), sentinel(out_arr_dtype), out_arr_dtype)
        before = snapshot(out)
        with pytest.raises((TypeError, ValueError)) as info:
            getattr(fastbmm, fn)(a, b, out=out, out_dtype=out_dtype)
        assert isinstance(info.value, (TypeError, RuntimeError))
        assert snapshot(out) == before, "out= was written by a failing call"


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=[d.name for d in SUPPORTED_DTYPES])
@pytest.mark.parametrize("fn", ["bmm", "matmul"])
def test_out_dtype_equal_to_operand_dtype_is_none(dtype, fn):
    rng = seeded_rng("same", dtype.name, fn)
    a = random_values(rng, (2, 9, 20), dtype)
    b = random_values(rng, (2, 20, 11), dtype)
    f = getattr(fastbmm, fn)
    base = f(a, b)
    for form in (dtype.type, dtype):
        got = f(a, b, out_dtype=form)
        assert got.dtype == dtype
        assert got.tobytes() == base.tobytes()
    got = f(a, b, out_dtype=None)
    assert got.tobytes() == base.tobytes()


BAD_COMBOS = [
    (np.float32, np.float16), (np.float32, np.float64), (np.float16, np.float64), (np.float16, np.complex64),
    (np.float64, np.float32), (np.complex64, np.complex128), (np.int8, np.int32), (np.int32, np.int64),
    (np.int16, np.float32), (np.float16, np.int32), (np.uint8, np.int16), (np.float16, np.bool_),
]


@pytest.mark.parametrize("operand,requested", BAD_COMBOS,
                         ids=[f"{np.dtype(a).name}->{np.dtype(b).name}" for a, b in BAD_COMBOS])
@pytest.mark.parametrize("fn", ["bmm", "matmul"])
def test_other_combinations_raise(fn, operand, requested):
    a = np.ones((2, 3, 4), operand)
    b = np.ones((2, 4, 5), operand)
    out = np.full((2, 3, 5), sentinel(requested) if np.dtype(requested).kind != "b" else True, requested)
    for kw in ({}, {"out": out}):
        before = snapshot(out)
        with pytest.raises((ValueError, TypeError)) as info:
            getattr(fastbmm, fn)(a, b, out_dtype=requested, **kw)
        msg = str(info.value)
        # Names the allowed combination.
        assert "float16" in msg and "float32" in msg, msg
        assert snapshot(out) == before


@pytest.mark.parametrize("bad", ["not-a-dtype", 3.5, object()], ids=["str", "float", "object"])
def test_unintelligible_out_dtype(bad):
    a = np.ones((1, 2, 2), np.float16)
    with pytest.raises((TypeError, ValueError)):
        fastbmm.bmm(a, a, out_dtype=bad)


@pytest.mark.parametrize("shapes,expected", [(((2, 3, 0), (2, 0, 4)), (2, 3, 4)), (((0, 3, 5), (0, 5, 4)), (0, 3, 4)),
                                             (((2, 3, 5), (2, 5, 0)), (2, 3, 0))])
def test_zero_sizes(shapes, expected):
    a, b = np.ones(shapes[0], F16), np.ones(shapes[1], F16)
    got = fastbmm.bmm(a, b, out_dtype=np.float32)
    assert got.dtype == np.float32 and got.shape == expected and (got == 0).all()
    dirty = np.full(expected, np.nan, np.float32)
    fastbmm.bmm(a, b, out=dirty, out_dtype=np.float32)
    assert (dirty == 0).all()


def test_shape_errors_still_reported_with_out_dtype():
    with pytest.raises(ValueError) as info:
        fastbmm.bmm(np.ones((2, 3, 4), F16), np.ones((2, 5, 4), F16), out_dtype=np.float32)
    assert str(info.value) == "Expected size for first two dimensions of batch2 tensor to be: [2, 4] but got: [2, 5]."
    with pytest.raises(TypeError) as info:
        fastbmm.bmm(np.ones((2, 3, 4), F16), np.ones((2, 4, 5), F32), out_dtype=np.float32)
    assert str(info.value) == "expected scalar type Half but found Float"
