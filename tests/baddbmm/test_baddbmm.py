"""fastbmm.baddbmm(input, batch1, batch2, *, beta=1, alpha=1, out=None) against torch.baddbmm.

out = beta * input + alpha * (batch1 @ batch2), input broadcast to (b, n, p).
Values are checked against an independent NumPy reference computed in a wider
type (floats) or modulo 2**64 (integers), and against torch.baddbmm itself.
Error tests compare the exact text with torch (observed on torch 2.13 and
re-checked against the installed torch when it is importable), and check that
nothing was written to a sentinel-filled out= and that the operands are unchanged.
"""

import itertools
import warnings

import numpy as np
import pytest

import fastbmm

from _helpers import (
    INPUT_LAYOUTS,
    OUT_LAYOUTS,
    REFUSED_DTYPES,
    SUPPORTED_DTYPES,
    TORCH_CPP_NAMES,
    TORCH_SCALAR_NAMES,
    UNIT_ROUNDOFF,
    assert_close,
    assert_equal_values,
    check_torch,
    dtype_ids,
    make_input,
    make_out,
    native,
    native_copy,
    random_values,
    seeded_rng,
    sentinel,
    sentinel_out,
    snapshot,
    to_torch,
    tolerance,
    torch_error,
)

try:
    import torch
except ImportError:  # pragma: no cover - torch is installed in CI
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not importable")


# ----------------------------------------------------------------------------
# Reference
# ----------------------------------------------------------------------------


def _int_scalar(v):
    """torch converts a Python float alpha/beta for an integer tensor by truncation."""
    return int(v)


def reference_baddbmm(inp, a, b, beta, alpha):
    """(expected, tol): expected value of baddbmm as float64/complex128 (floats) or the
    exact dtype array (integers); tol the elementwise absolute tolerance (None for ints)."""
    inp, a, b = native_copy(inp), native_copy(a), native_copy(b)
    dt = native(a.dtype)
    shape = (a.shape[0], a.shape[1], b.shape[2])
    if dt.kind in "iu":
        u = np.uint64
        P = np.matmul(a.astype(u), b.astype(u))
        bi = np.array(_int_scalar(beta) % 2 ** 64, dtype=u)
        ai = np.array(_int_scalar(alpha) % 2 ** 64, dtype=u)
        r = bi * np.broadcast_to(inp.astype(u), shape) + ai * P
        return r.astype(dt), None
    if dt.kind == "c":
        wide, out_t = np.clongdouble, np.complex128
    elif dt == np.float64:
        wide, out_t = np.longdouble, np.float64
    else:  # float16/float32: products exact in float64, sums essentially exact
        wide, out_t = np.float64, np.float64
    P = np.matmul(a.astype(wide), b.astype(wide))
    if beta == 0:
        bi_term = np.zeros(shape, dtype=wide)  # torch ignores input entirely
    else:
        bi_term = np.broadcast_to(wide(beta) * inp.astype(wide), shape)
    ref = bi_term + wide(alpha) * P
    u = UNIT_ROUNDOFF[dt.char]
    tol = (
        abs(alpha) * tolerance(dt, a, b, P.astype(out_t))
        + 4 * u * np.abs(bi_term.astype(out_t))
        + 4 * u * np.abs(ref.astype(out_t))
        + (2.0 ** -24 if dt == np.float16 else 1e-37 if u == 2.0 ** -24 else 1e-300)
    )
    return ref.astype(out_t), tol


def torch_baddbmm(inp, a, b, beta=1, alpha=1):
    return torch.baddbmm(to_torch(inp), to_torch(a), to_torch(b), beta=beta, alpha=alpha).numpy()


def check_baddbmm(inp, a, b, beta=1, alpha=1, with_torch=True, **kw):
    """Run fastbmm.baddbmm and compare with the reference (and torch). Returns the result."""
    before = snapshot(inp, a, b)
    got = fastbmm.baddbmm(inp, a, b, beta=beta, alpha=alpha, **kw)
    assert snapshot(inp, a, b) == before, "an operand was modified"
    assert isinstance(got, np.ndarray)
    dt = native(a.dtype)
    assert got.dtype == dt, f"result dtype {got.dtype} != {dt}"
    expected, tol = reference_baddbmm(inp, a, b, beta, alpha)
    assert_close(got, expected, tol, dt)
    if with_torch and torch is not None:
        # torch against the same exact reference: a disagreement is torch's
        # defect (reported by check_torch, not a failure of this test).
        check_torch(assert_close, lambda: torch_baddbmm(inp, a, b, beta, alpha),
                    expected, tol, dt, what="torch.baddbmm")
    return got


def _input_shape(spec, b, n, p):
    return {
        "0d": (), "1": (1,), "p": (p,), "1p": (1, p), "n1": (n, 1), "np": (n, p),
        "11p": (1, 1, p), "b1p": (b, 1, p), "1n1": (1, n, 1), "b11": (b, 1, 1), "bnp": (b, n, p),
    }[spec]


INPUT_SPECS = ["0d", "1", "p", "1p", "n1", "np", "11p", "b1p", "1n1", "b11", "bnp"]
FEW_SPECS = ["0d", "p", "np", "b1p", "bnp"]

SIZES = {
    # (b, n, m, p)
    "small": (3, 4, 5, 6),          # n, m, p <= small_max: unpacked small path
    "fewrows": (2, 3, 40, 130),     # n <= 4, contiguous B rows, larger p: stream path
    "packed_deep": (1, 70, 300, 50),  # m > KC: two k blocks, edge tiles in n and p
    "packed_odd": (3, 33, 17, 45),
}


def _operands(rng, size, dtype, spec):
    bsz, n, m, p = SIZES[size] if isinstance(size, str) else size
    a = random_values(rng, (bsz, n, m), dtype)
    b = random_values(rng, (bsz, m, p), dtype)
    inp = np.asarray(random_values(rng, _input_shape(spec, bsz, n, p), dtype))  # 0-D array, not a scalar
    return inp, a, b


# ----------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", INPUT_SPECS)
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=dtype_ids(SUPPORTED_DTYPES))
def test_values_small_every_input_broadcast(dtype, spec):
    inp, a, b = _operands(seeded_rng("small", dtype.name, spec), "small", dtype, spec)
    beta, alpha = (0.5 - 1j, -2 + 0.25j) if dtype.kind == "c" else (-2, 3)
    got = check_baddbmm(inp, a, b, beta=beta, alpha=alpha)
    assert got.shape == (3, 4, 6)
    assert got.flags.c_contiguous


@pytest.mark.parametrize("size", ["fewrows", "packed_deep", "packed_odd"])
@pytest.mark.parametrize("spec", FEW_SPECS)
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=dtype_ids(SUPPORTED_DTYPES))
def test_values_larger_paths(dtype, spec, size):
    inp, a, b = _operands(seeded_rng(size, dtype.name, spec), size, dtype, spec)
    beta, alpha = (1j, 0.5 - 2j) if dtype.kind == "c" else (0.5, -2)
    check_baddbmm(inp, a, b, beta=beta, alpha=alpha)


REAL_COEFFS = [(1, 1), (0, 1), (1, 0), (0, 0), (-2, 0.5), (0.5, -2), (0.5, 0.5), (-2, -2)]
COMPLEX_COEFFS = [(1j, 1), (1, 1j), (0.5 + 0.5j, -1j), (0, 2 - 1j), (1 - 1j, 0)]


def _coeff_cases():
    for dt in SUPPORTED_DTYPES:
        for beta, alpha in REAL_COEFFS:
            yield pytest.param(dt, beta, alpha, id=f"{dt.name}-beta{beta}-alpha{alpha}")
        if dt.kind == "c":
            for beta, alpha in COMPLEX_COEFFS:
                yield pytest.param(dt, beta, alpha, id=f"{dt.name}-beta{beta}-alpha{alpha}")


@pytest.mark.parametrize("dtype,beta,alpha", list(_coeff_cases()))
@pytest.mark.parametrize("size", ["small", "fewrows"])
def test_alpha_beta_values(dtype, beta, alpha, size):
    inp, a, b = _operands(seeded_rng("coef", dtype.name, beta, alpha, size), size, dtype, "b1p")
    check_baddbmm(inp, a, b, beta=beta, alpha=alpha)


def test_defaults_are_beta1_alpha1():
    rng = seeded_rng("defaults")
    inp, a, b = _operands(rng, "small", np.dtype(np.float64), "bnp")
    got = fastbmm.baddbmm(inp, a, b)
    expected, tol = reference_baddbmm(inp, a, b, 1, 1)
    assert_close(got, expected, tol, np.float64)


@pytest.mark.parametrize("kind", ["numpy_float", "numpy_int", "float_for_int"])
def test_numpy_scalar_coefficients(kind):
    rng = seeded_rng("npscalar", kind)
    if kind == "float_for_int":
        inp, a, b = _operands(rng, "small", np.dtype(np.int32), "bnp")
        beta, alpha = np.float64(2.0), np.float32(-3.0)
    else:
        inp, a, b = _operands(rng, "small", np.dtype(np.float64), "bnp")
        beta, alpha = (np.float32(0.5), np.float64(-2)) if kind == "numpy_float" else (np.int64(3), np.int8(-2))
    check_baddbmm(inp, a, b, beta=beta, alpha=alpha)


@pytest.mark.parametrize(
    "alpha,beta,expected",
    # torch truncates a float alpha/beta toward zero for integer tensors
    # (10 + alpha * 9, observed on torch 2.13).
    [(1.5, 1, 19), (-1.5, 1, 1), (2.7, 1, 28), (-2.7, 1, -8), (0.999, 1, 10), (-0.999, 1, 10),
     (1, 1.5, 19), (1, 0.5, 9), (2.0, 3.0, 48), (1 + 0j, 2 + 0j, 29)],
)
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
def test_integer_dtype_float_coefficients_truncate_like_torch(dtype, alpha, beta, expected):
    x = np.full((1, 1, 1), 10, dtype=dtype)
    a = np.full((1, 1, 3), 3, dtype=dtype)
    b = np.ones((1, 3, 1), dtype=dtype)
    # expected: torch's observed truncation (the contract); torch re-checked, non-fatally
    if torch is not None:
        check_torch(assert_equal_values, lambda: torch_baddbmm(x, a, b, beta=beta, alpha=alpha),
                    np.full((1, 1, 1), expected, dtype), what="torch.baddbmm")
    got = fastbmm.baddbmm(x, a, b, beta=beta, alpha=alpha)
    assert got.dtype == np.dtype(dtype)
    assert got.item() == expected


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64])
def test_integer_results_wrap(dtype):
    dt = np.dtype(dtype)
    info = np.iinfo(dt)
    x = np.full((2, 3, 4), info.max, dtype=dt)
    a = np.full((2, 3, 5), info.max, dtype=dt)
    b = np.full((2, 5, 4), info.max if dt.kind == "u" else info.min, dtype=dt)
    check_baddbmm(x, a, b, beta=3, alpha=-1 if dt.kind == "i" else 7)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("beta", [0, 0.0, -0.0, 0j])
def test_beta_zero_ignores_nan_and_inf_input(dtype, beta, bad):
    if np.dtype(dtype).kind != "c" and isinstance(beta, complex):
        beta = 0.0
    rng = seeded_rng("beta0", np.dtype(dtype).name, bad)
    _, a, b = _operands(rng, "small", np.dtype(dtype), "bnp")
    inp = np.full((3, 4, 6), bad, dtype=dtype)
    inp[0, 0, 0] = 1.0
    got = check_baddbmm(inp, a, b, beta=beta, alpha=-2)
    assert np.isfinite(got).all()


def test_beta_zero_ignores_nan_input_on_packed_path():
    rng = seeded_rng("beta0packed")
    _, a, b = _operands(rng, "packed_deep", np.dtype(np.float32), "bnp")
    inp = np.full((50,), np.nan, dtype=np.float32)
    got = check_baddbmm(inp, a, b, beta=0, alpha=1)
    assert np.isfinite(got).all()


def test_alpha_zero_still_propagates_nan_from_batches_like_torch():
    # torch does not skip the product when alpha == 0: 0 * NaN = NaN (IEEE).
    x = np.ones((1, 2, 2), np.float32)
    a = np.ones((1, 2, 3), np.float32)
    a[0, 0, 1] = np.nan
    b = np.ones((1, 3, 2), np.float32)
    expected = np.array([[[np.nan, np.nan], [1, 1]]], np.float32)   # IEEE: 0 * NaN = NaN
    if torch is not None:
        check_torch(assert_equal_values, lambda: torch_baddbmm(x, a, b, beta=1, alpha=0), expected,
                    what="torch.baddbmm")
    got = fastbmm.baddbmm(x, a, b, beta=1, alpha=0)
    assert_equal_values(got, expected, what="fastbmm")


def test_alpha_zero_gives_beta_times_input():
    rng = seeded_rng("alpha0")
    inp, a, b = _operands(rng, "small", np.dtype(np.float64), "np")
    got = fastbmm.baddbmm(inp, a, b, beta=-2, alpha=0)
    np.testing.assert_array_equal(got, np.broadcast_to(-2 * inp, (3, 4, 6)))


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=dtype_ids(SUPPORTED_DTYPES))
def test_m_zero_gives_beta_times_input(dtype):
    inp = random_values(seeded_rng("m0", dtype.name), (4,), dtype)
    a = np.zeros((2, 3, 0), dtype)
    b = np.zeros((2, 0, 4), dtype)
    got = check_baddbmm(inp, a, b, beta=2, alpha=3)
    assert got.shape == (2, 3, 4)
    out = np.full((2, 3, 4), sentinel(dtype), dtype=dtype)
    r = fastbmm.baddbmm(inp, a, b, beta=2, alpha=3, out=out)
    assert r is out
    np.testing.assert_array_equal(out, got)


@pytest.mark.parametrize(
    "ishape,shapes,expected",
    [((4,), ((0, 3, 5), (0, 5, 4)), (0, 3, 4)),
     ((4,), ((2, 0, 5), (2, 5, 4)), (2, 0, 4)),
     ((1,), ((2, 3, 5), (2, 5, 0)), (2, 3, 0)),
     ((), ((0, 0, 0), (0, 0, 0)), (0, 0, 0))],
)
def test_empty_results(ishape, shapes, expected):
    inp = np.ones(ishape, np.float32)
    a, b = np.ones(shapes[0], np.float32), np.ones(shapes[1], np.float32)
    got = fastbmm.baddbmm(inp, a, b)
    assert got.shape == expected and got.dtype == np.float32
    if torch is not None:
        assert tuple(torch.baddbmm(to_torch(inp), to_torch(a), to_torch(b)).shape) == expected


# ----------------------------------------------------------------------------
# Layouts and threads
# ----------------------------------------------------------------------------

LAYOUT_DTYPES = [np.dtype(t) for t in (np.float16, np.float32, np.float64, np.complex64, np.int16, np.int64)]


@pytest.mark.parametrize("layout", list(INPUT_LAYOUTS))
@pytest.mark.parametrize("dtype", LAYOUT_DTYPES, ids=dtype_ids(LAYOUT_DTYPES))
@pytest.mark.parametrize("size", ["small", "packed_odd"])
def test_every_operand_in_every_layout(layout, dtype, size):
    bsz, n, m, p = SIZES[size]
    rng = seeded_rng("layout", layout, dtype.name, size)
    a, _ = make_input(layout, rng, (bsz, n, m), dtype)
    b, _ = make_input(layout, rng, (bsz, m, p), dtype)
    inp, _ = make_input(layout, rng, (bsz, n, p), dtype)
    check_baddbmm(inp, a, b, beta=-2, alpha=0.5 if dtype.kind in "fc" else 3)


@pytest.mark.parametrize(
    "la,lb,li",
    [("transposed", "C", "broadcast_col"), ("C", "transposed", "negative"),
     ("fortran", "every_other", "byteswapped"), ("misaligned", "byteswapped_transposed", "readonly"),
     ("broadcast_batch", "broadcast_col", "transposed"), ("negative", "readonly", "every_other")],
)
@pytest.mark.parametrize("dtype", [np.dtype(np.float32), np.dtype(np.complex128), np.dtype(np.int32)],
                         ids=["float32", "complex128", "int32"])
def test_mixed_layouts(la, lb, li, dtype):
    bsz, n, m, p = SIZES["packed_odd"]
    rng = seeded_rng("mixed", la, lb, li, dtype.name)
    a, _ = make_input(la, rng, (bsz, n, m), dtype)
    b, _ = make_input(lb, rng, (bsz, m, p), dtype)
    inp, _ = make_input(li, rng, (bsz, n, p), dtype)
    check_baddbmm(inp, a, b, beta=0.5, alpha=-2)


@pytest.mark.parametrize("spec", ["p", "np", "1n1"])
def test_input_broadcast_views(spec):
    # A low-rank input that is itself a strided view (negative, every other element).
    rng = seeded_rng("bview", spec)
    _, a, b = _operands(rng, "packed_odd", np.dtype(np.float64), "bnp")
    shape = _input_shape(spec, 3, 33, 45)
    base = random_values(rng, tuple(2 * s for s in shape), np.float64)
    inp = base[tuple(slice(None, None, -2) for _ in shape)]
    assert inp.shape == shape
    check_baddbmm(inp, a, b, beta=-0.5, alpha=2)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("dtype", [np.dtype(t) for t in (np.float16, np.float32, np.float64, np.complex64, np.int32)],
                         ids=["float16", "float32", "float64", "complex64", "int32"])
def test_thread_counts(threads, dtype, size):
    inp, a, b = _operands(seeded_rng("thr", dtype.name, size, threads), size, dtype, "b1p")
    got = check_baddbmm(inp, a, b, beta=-2, alpha=0.5 if dtype.kind != "i" else 5, with_torch=False)
    assert fastbmm.get_num_threads() == threads
    # Deterministic across calls.
    again = fastbmm.baddbmm(inp, a, b, beta=-2, alpha=0.5 if dtype.kind != "i" else 5)
    np.testing.assert_array_equal(got, again)


# ----------------------------------------------------------------------------
# out=
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("olayout", list(OUT_LAYOUTS))
@pytest.mark.parametrize("dtype", [np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.uint8, np.int64)],
                         ids=["float32", "float64", "complex64", "uint8", "int64"])
@pytest.mark.parametrize("size", ["small", "packed_odd"])
def test_out_layouts(olayout, dtype, size):
    bsz, n, m, p = SIZES[size]
    inp, a, b = _operands(seeded_rng("out", olayout, dtype.name, size), size, dtype, "np")
    view, parent, mask = make_out(olayout, (bsz, n, p), dtype)
    before = parent.copy()
    r = fastbmm.baddbmm(inp, a, b, beta=2, alpha=-1, out=view)
    assert r is view
    expected, tol = reference_baddbmm(inp, a, b, 2, -1)
    assert_close(view, expected, tol, dtype)
    if mask is not None:
        assert parent[~mask].tobytes() == before[~mask].tobytes(), "memory outside the out= view was touched"


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128, np.int32])
@pytest.mark.parametrize("size", ["small", "fewrows", "packed_odd"])
def test_out_is_input_full_shape(dtype, size):
    # torch computes this in place correctly; fastbmm must too.
    inp, a, b = _operands(seeded_rng("alias_in", size, np.dtype(dtype).name), size, np.dtype(dtype), "bnp")
    expected, tol = reference_baddbmm(inp, a, b, 0.5 if np.dtype(dtype).kind != "i" else 3, -2)
    x = inp.copy()
    beta = 0.5 if np.dtype(dtype).kind != "i" else 3
    r = fastbmm.baddbmm(x, a, b, beta=beta, alpha=-2, out=x)
    assert r is x
    assert_close(x, expected, tol, np.dtype(dtype))
    if torch is not None:
        tx = to_torch(inp)
        torch.baddbmm(tx, to_torch(a), to_torch(b), beta=beta, alpha=-2, out=tx)
        assert_close(tx.numpy(), expected, tol, np.dtype(dtype), what="torch")


@pytest.mark.parametrize("which", ["batch1", "batch2", "batch1_transposed_input"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_out_aliases_a_batch_operand(which, dtype):
    # torch gives silently wrong values here; fastbmm must give the right ones.
    dt = np.dtype(dtype)
    rng = seeded_rng("alias", which, dt.name)
    n = 12
    a = random_values(rng, (2, n, n), dt)
    b = random_values(rng, (2, n, n), dt)
    inp = random_values(rng, (n,), dt)
    beta, alpha = (3, -1) if dt.kind == "i" else (0.5, 2)
    if which == "batch1_transposed_input":
        x = random_values(rng, (2, n, n), dt)
        expected, tol = reference_baddbmm(x.transpose(0, 2, 1), x, b, beta, alpha)
        r = fastbmm.baddbmm(x.transpose(0, 2, 1), x, b, beta=beta, alpha=alpha, out=x)
        assert r is x
        assert_close(x, expected, tol, dt)
        return
    expected, tol = reference_baddbmm(inp, a, b, beta, alpha)
    target = a if which == "batch1" else b
    r = fastbmm.baddbmm(inp, a, b, beta=beta, alpha=alpha, out=target)
    assert r is target
    assert_close(target, expected, tol, dt)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_with_beta_zero_dirty_out_nan(dtype):
    inp, a, b = _operands(seeded_rng("dirty", np.dtype(dtype).name), "packed_odd", np.dtype(dtype), "bnp")
    inp[...] = np.nan
    out = np.full((3, 33, 45), np.nan, dtype=dtype)
    fastbmm.baddbmm(inp, a, b, beta=0, alpha=1, out=out)
    expected, tol = reference_baddbmm(inp, a, b, 0, 1)
    assert_close(out, expected, tol, np.dtype(dtype))


def _torch_error(*args, **kwargs):
    """The exception torch.baddbmm raises for these (NumPy) arguments, or None."""
    return torch_error(torch.baddbmm, *args, **kwargs)


# ----------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------


def check_error(inp, a, b, exc_type, message, out_shape=None, out_dtype=None, torch_parity=True,
                out_message=None, **kw):
    """fastbmm.baddbmm raises exc_type with exactly ``message`` (None: any text), without
    and with a sentinel-filled out= (then ``out_message``, default ``message``) that stays
    untouched; torch raises the same texts, out= included."""
    arrays = [x for x in (inp, a, b) if isinstance(x, np.ndarray)]
    outs = [None]
    if out_shape is not None:
        outs.append(sentinel_out(out_shape, out_dtype if out_dtype is not None else a.dtype))
    for out in outs:
        expected = message if out is None or out_message is None else out_message
        if torch_parity and torch is not None and expected is not None:
            te = _torch_error(inp, a, b, **kw, **({} if out is None else {"out": out}))
            assert te is not None and str(te) == expected, f"torch says {te!r}, test expects {expected!r}"
        before = snapshot(*arrays, *([out] if out is not None else []))
        with pytest.raises(exc_type) as info:
            if out is None:
                fastbmm.baddbmm(inp, a, b, **kw)
            else:
                fastbmm.baddbmm(inp, a, b, out=out, **kw)
        after = snapshot(*arrays, *([out] if out is not None else []))
        assert after == before, "an operand or out= was modified by a failing call"
        if expected is not None:
            assert str(info.value) == expected
    return info.value


def _f(shape, dtype=np.float32):
    return np.asarray(random_values(seeded_rng("err", shape, np.dtype(dtype).name), shape, dtype))


TORCH_TYPE_NAMES = dict(TORCH_CPP_NAMES)  # "Input dtypes must be the same" uses C++ names


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=dtype_ids(SUPPORTED_DTYPES))
def test_error_input_dtype_differs_from_batch1(dtype):
    other = np.dtype(np.float64) if dtype == np.float32 else np.dtype(np.float32)
    inp = _f((2, 3, 4), dtype)
    a = _f((2, 3, 5), other)
    b = _f((2, 5, 4), np.int32)
    msg = (f"Input dtypes must be the same, got: input {TORCH_TYPE_NAMES[dtype.name]}, "
           f"batch1: {TORCH_TYPE_NAMES[other.name]}, batch2: int")
    # (With an out= as well, torch still reports this first: see test_error_order_matches_torch.)
    e = check_error(inp, a, b, RuntimeError, msg)
    assert isinstance(e, TypeError), "dtype errors must also be TypeErrors (fastbmm.DtypeError)"


def test_error_input_dtype_spec_example():
    check_error(_f((2, 3, 4), np.float64), _f((2, 3, 5)), _f((2, 5, 4)), RuntimeError,
                "Input dtypes must be the same, got: input double, batch1: float, batch2: float",
                out_shape=(2, 3, 4), out_dtype=np.float64)


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=dtype_ids(SUPPORTED_DTYPES))
def test_error_batch2_dtype_differs_input_matches_batch1(dtype):
    # torch checks input vs batch1 in baddbmm itself and batch1 vs batch2 in the bmm kernel.
    other = np.dtype(np.float64) if dtype == np.float32 else np.dtype(np.float32)
    msg = f"expected scalar type {TORCH_SCALAR_NAMES[dtype.name]} but found {TORCH_SCALAR_NAMES[other.name]}"
    # with out= of input's dtype, torch checks out= against batch2's dtype first (issue 9, item 10)
    out_msg = (f"Expected out tensor to have dtype {TORCH_CPP_NAMES[other.name]}, "
               f"but got {TORCH_CPP_NAMES[dtype.name]} instead")
    e = check_error(_f((4,), dtype), _f((2, 3, 5), dtype), _f((2, 5, 4), other), RuntimeError, msg,
                    out_shape=(2, 3, 4), out_message=out_msg)
    assert isinstance(e, TypeError)


EXPAND_CASES = [
    ((3,), "The expanded size of the tensor (4) must match the existing size (3) at non-singleton "
           "dimension 2.  Target sizes: [2, 3, 4].  Tensor sizes: [3]"),
    ((2, 1, 3), "The expanded size of the tensor (4) must match the existing size (3) at non-singleton "
                "dimension 2.  Target sizes: [2, 3, 4].  Tensor sizes: [2, 1, 3]"),
    ((2, 2, 4), "The expanded size of the tensor (3) must match the existing size (2) at non-singleton "
                "dimension 1.  Target sizes: [2, 3, 4].  Tensor sizes: [2, 2, 4]"),
    ((4, 4), "The expanded size of the tensor (3) must match the existing size (4) at non-singleton "
             "dimension 1.  Target sizes: [2, 3, 4].  Tensor sizes: [4, 4]"),
    ((3, 1, 4), "The expanded size of the tensor (2) must match the existing size (3) at non-singleton "
                "dimension 0.  Target sizes: [2, 3, 4].  Tensor sizes: [3, 1, 4]"),
    ((3, 3, 3), "The expanded size of the tensor (4) must match the existing size (3) at non-singleton "
                "dimension 2.  Target sizes: [2, 3, 4].  Tensor sizes: [3, 3, 3]"),
    ((0,), "The expanded size of the tensor (4) must match the existing size (0) at non-singleton "
           "dimension 2.  Target sizes: [2, 3, 4].  Tensor sizes: [0]"),
]


@pytest.mark.parametrize("ishape,msg", EXPAND_CASES, ids=[str(c[0]) for c in EXPAND_CASES])
@pytest.mark.parametrize("beta", [1, 0])
def test_error_input_not_broadcastable(ishape, msg, beta):
    # beta == 0 ignores input's values but torch still checks its shape.
    e = check_error(_f(ishape), _f((2, 3, 5)), _f((2, 5, 4)), RuntimeError, msg, out_shape=(2, 3, 4), beta=beta)
    assert isinstance(e, ValueError), "shape errors must also be ValueErrors (fastbmm.ShapeError)"


def test_error_input_not_broadcastable_to_empty_batch():
    check_error(_f((2, 1, 4)), _f((0, 3, 5)), _f((0, 5, 4)), RuntimeError,
                "The expanded size of the tensor (0) must match the existing size (2) at non-singleton "
                "dimension 0.  Target sizes: [0, 3, 4].  Tensor sizes: [2, 1, 4]")


@pytest.mark.parametrize("ishape", [(5, 2, 3, 4), (1, 2, 3, 4)])
def test_error_input_rank_above_three(ishape):
    msg = (f"expand(torch.FloatTensor{{{list(ishape)}}}, size=[2, 3, 4]): the number of sizes provided (3) "
           "must be greater or equal to the number of dimensions in the tensor (4)")
    e = check_error(_f(ishape), _f((2, 3, 5)), _f((2, 5, 4)), RuntimeError, msg, out_shape=(2, 3, 4))
    assert isinstance(e, ValueError)


@pytest.mark.parametrize(
    "ashape,bshape,msg",
    [((3, 5), (2, 5, 4), "batch1 must be a 3D tensor"),
     ((1, 2, 3, 5), (2, 5, 4), "batch1 must be a 3D tensor"),
     ((2, 3, 5), (1, 2, 5, 4), "batch2 must be a 3D tensor"),
     ((2, 3, 5), (3, 5, 4), "Expected size for first two dimensions of batch2 tensor to be: [2, 5] but got: [3, 5]."),
     ((2, 3, 5), (2, 6, 4), "Expected size for first two dimensions of batch2 tensor to be: [2, 5] but got: [2, 6]."),
     ((0, 1, 10), (2, 10, 4), "Expected size for first two dimensions of batch2 tensor to be: [0, 10] but got: [2, 10].")],
)
def test_error_batch_shapes_with_scalar_input(ashape, bshape, msg):
    # With a 0-D input torch reports bmm's own rank/size messages.
    e = check_error(_f(()), _f(ashape), _f(bshape), RuntimeError, msg)
    assert isinstance(e, ValueError)


@pytest.mark.parametrize(
    "ishape,ashape,bshape,msg",
    # torch reports an expand error (for batch1) or an IndexError (batch2) here: artefacts of
    # computing the result shape before checking ranks. fastbmm reports the rank itself.
    [((2, 3, 4), (3, 5), (2, 5, 4), "batch1 must be a 3D tensor"),
     ((2, 3, 4), (2, 3, 5), (5, 4), "batch2 must be a 3D tensor"),
     ((), (2, 3, 5), (), "batch2 must be a 3D tensor"),
     ((), (), (2, 5, 4), "batch1 must be a 3D tensor"),
     ((), (5,), (2, 5, 4), "batch1 must be a 3D tensor")],
)
def test_error_batch_rank_reported_as_rank(ishape, ashape, bshape, msg):
    e = check_error(_f(ishape), _f(ashape), _f(bshape), RuntimeError, msg, torch_parity=False)
    assert isinstance(e, ValueError)
    if torch is not None:
        assert _torch_error(_f(ishape), _f(ashape), _f(bshape)) is not None


@pytest.mark.parametrize("dtype", REFUSED_DTYPES, ids=dtype_ids(REFUSED_DTYPES))
def test_error_refused_dtypes(dtype):
    ones = lambda s: np.ones(s, dtype=dtype)  # noqa: E731
    msg = f"\"baddbmm\" not implemented for '{TORCH_SCALAR_NAMES[dtype.name]}'"
    check_error(ones((4,)), ones((2, 3, 5)), ones((2, 5, 4)), NotImplementedError, msg, out_shape=(2, 3, 4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_error_out_dtype(dtype):
    other = np.float64 if dtype == np.float32 else np.int32
    msg = (f"Expected out tensor to have dtype {TORCH_CPP_NAMES[np.dtype(dtype).name]}, "
           f"but got {TORCH_CPP_NAMES[np.dtype(other).name]} instead")
    out = sentinel_out((2, 3, 4), other)
    if torch is not None:
        assert str(_torch_error(_f((4,), dtype), _f((2, 3, 5), dtype), _f((2, 5, 4), dtype), out=out)) == msg
    before = snapshot(out)
    with pytest.raises(RuntimeError) as info:
        fastbmm.baddbmm(_f((4,), dtype), _f((2, 3, 5), dtype), _f((2, 5, 4), dtype), out=out)
    assert str(info.value) == msg and isinstance(info.value, TypeError)
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "case",
    ["size_before_out_dtype", "input_dtype_before_out_dtype", "batch2_dtype_before_out_dtype",
     "expand_before_input_dtype", "input_dtype_before_batch_size"],
)
def test_error_order_matches_torch(case):
    f64 = np.float64
    args = {
        "size_before_out_dtype": ((_f((2, 3, 4)), _f((2, 3, 5)), _f((2, 6, 4))), f64),
        "input_dtype_before_out_dtype": ((_f((2, 3, 4), f64), _f((2, 3, 5)), _f((2, 5, 4))), np.int32),
        "batch2_dtype_before_out_dtype": ((_f((2, 3, 4)), _f((2, 3, 5)), _f((2, 5, 4), f64)), f64),
        "expand_before_input_dtype": ((_f((7,), f64), _f((2, 3, 5)), _f((2, 5, 4))), None),
        "input_dtype_before_batch_size": ((_f((), f64), _f((2, 3, 5)), _f((2, 6, 4))), None),
    }[case]
    (inp, a, b), odt = args
    kw = {}
    if odt is not None:
        kw["out"] = sentinel_out((2, 3, 4), odt)
    if torch is None:
        pytest.skip("needs torch as the oracle")
    te = _torch_error(inp, a, b, **kw)
    assert te is not None
    before = snapshot(inp, a, b, *kw.values())
    with pytest.raises(RuntimeError) as info:
        fastbmm.baddbmm(inp, a, b, **kw)
    assert str(info.value) == str(te)
    assert snapshot(inp, a, b, *kw.values()) == before


REAL_DTYPES = [d for d in SUPPORTED_DTYPES if d.kind != "c"]
# torch's name in "value cannot be converted to type X without overflow"
# (float16 uses its float32 compute type).
TORCH_CONVERT_NAMES = {"float16": "float", "float32": "float", "float64": "double", "int8": "int8_t",
                       "uint8": "uint8_t", "int16": "int16_t", "int32": "int", "int64": "int64_t"}


@pytest.mark.parametrize("which", ["alpha", "beta"])
@pytest.mark.parametrize("dtype", REAL_DTYPES, ids=dtype_ids(REAL_DTYPES))
def test_error_complex_coefficient_with_real_dtype(dtype, which):
    msg = f"value cannot be converted to type {TORCH_CONVERT_NAMES[dtype.name]} without overflow"
    kw = {which: 2 - 1j}
    check_error(_f((4,), dtype), _f((2, 3, 5), dtype), _f((2, 5, 4), dtype), RuntimeError, msg,
                out_shape=(2, 3, 4), **kw)


@pytest.mark.parametrize("dtype", REAL_DTYPES, ids=dtype_ids(REAL_DTYPES))
def test_complex_coefficient_with_zero_imaginary_part_is_accepted(dtype):
    # torch accepts 2+0j for a real tensor (as 2).
    inp, a, b = _operands(seeded_rng("cz", dtype.name), "small", dtype, "bnp")
    got = fastbmm.baddbmm(inp, a, b, beta=-1 + 0j, alpha=2 + 0j)
    expected, tol = reference_baddbmm(inp, a, b, -1, 2)
    assert_close(got, expected, tol, dtype)


@pytest.mark.parametrize(
    "dtype,alpha",
    [(np.int8, 128), (np.int8, -129), (np.int8, 1000), (np.uint8, 256), (np.int16, 2 ** 15),
     (np.int32, 2 ** 31), (np.int32, 1e10), (np.int32, float("nan")), (np.int32, float("inf")),
     (np.int64, 2 ** 63), (np.float32, 1e39), (np.float16, 1e39)],
)
def test_error_coefficient_out_of_range(dtype, alpha):
    dt = np.dtype(dtype)
    msg = f"value cannot be converted to type {TORCH_CONVERT_NAMES[dt.name]} without overflow"
    check_error(_f((4,), dt), _f((2, 3, 5), dt), _f((2, 5, 4), dt), RuntimeError, msg,
                out_shape=(2, 3, 4), alpha=alpha)


@pytest.mark.parametrize("value", ["2", None, [2], np.ones(2)], ids=["str", "None", "list", "array2"])
@pytest.mark.parametrize("which", ["alpha", "beta"])
def test_error_coefficient_not_a_number(which, value):
    with pytest.raises(TypeError):
        fastbmm.baddbmm(_f((4,)), _f((2, 3, 5)), _f((2, 5, 4)), **{which: value})
    if torch is not None:
        assert isinstance(_torch_error(_f((4,)), _f((2, 3, 5)), _f((2, 5, 4)), **{which: value}), TypeError)


@pytest.mark.parametrize(
    "pos,obj,argname",
    [(0, [1.0], "input"), (0, 1.0, "input"), (0, (1.0,), "input"),
     (1, [[[1.0]]], "batch1"), (2, [[[1.0]]], "batch2")],
)
def test_error_not_arrays(pos, obj, argname):
    args = [_f((4,)), _f((2, 3, 5)), _f((2, 5, 4))]
    args[pos] = obj
    msg = (f"baddbmm(): argument '{argname}' (position {pos + 1}) must be ndarray, "
           f"not {type(obj).__name__}")
    if torch is not None:
        assert str(_torch_error(*args)) == msg.replace("ndarray", "Tensor")
    with pytest.raises(TypeError) as info:
        fastbmm.baddbmm(*args)
    assert str(info.value) == msg


def test_error_out_not_array():
    with pytest.raises(TypeError):
        fastbmm.baddbmm(_f((4,)), _f((2, 3, 5)), _f((2, 5, 4)), out=[0.0] * 24)


def test_error_out_wrong_shape():
    out = sentinel_out((2, 3, 5), np.float32)
    before = snapshot(out)
    with pytest.raises(ValueError) as info:
        fastbmm.baddbmm(_f((4,)), _f((2, 3, 5)), _f((2, 5, 4)), out=out)
    assert isinstance(info.value, RuntimeError)
    assert "(2, 3, 4)" in str(info.value) and "(2, 3, 5)" in str(info.value)
    assert snapshot(out) == before


def test_error_out_read_only():
    out = sentinel_out((2, 3, 4), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError):
        fastbmm.baddbmm(_f((4,)), _f((2, 3, 5)), _f((2, 5, 4)), out=out)
    assert (out == sentinel(np.float32)).all()


def test_error_out_self_overlapping():
    parent = sentinel_out((3, 4), np.float32)
    out = np.lib.stride_tricks.as_strided(parent, (2, 3, 4), (0,) + parent.strides, writeable=True)
    with pytest.raises(ValueError):
        fastbmm.baddbmm(_f((4,)), _f((2, 3, 5)), _f((2, 5, 4)), out=out)
    assert (parent == sentinel(np.float32)).all()


def test_error_keyword_only_coefficients():
    # torch's beta/alpha/out are keyword-only.
    with pytest.raises(TypeError):
        fastbmm.baddbmm(_f((4,)), _f((2, 3, 5)), _f((2, 5, 4)), 2, 3)


@pytest.mark.parametrize("dtype", [np.dtype(t) for t in (np.float16, np.float32, np.float64, np.complex64, np.int64)],
                         ids=["float16", "float32", "float64", "complex64", "int64"])
def test_every_kernel_variant(kernel, dtype):
    # ``kernel`` (conftest) forces each runnable kernel variant in turn.
    for size in ("small", "fewrows", "packed_deep"):
        inp, a, b = _operands(seeded_rng("kern", kernel, dtype.name, size), size, dtype, "1p")
        check_baddbmm(inp, a, b, beta=-2, alpha=0.5 if dtype.kind != "i" else 3, with_torch=False)


def test_no_spurious_warnings_for_real_coefficients():
    # Real alpha/beta with a real dtype must not trigger NumPy's ComplexWarning (or any
    # other warning) on any path, including the m == 0 one.
    cases = [
        (np.ones(4, np.float32), np.ones((2, 3, 0), np.float32), np.ones((2, 0, 4), np.float32)),
        (np.ones(4, np.float64), np.ones((2, 3, 5), np.float64), np.ones((2, 5, 4), np.float64)),
        (np.ones(4, np.float16), np.ones((2, 3, 5), np.float16), np.ones((2, 5, 4), np.float16)),
        (np.ones(4, np.int32), np.ones((2, 3, 0), np.int32), np.ones((2, 0, 4), np.int32)),
    ]
    for inp, a, b in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = fastbmm.baddbmm(inp, a, b, beta=2, alpha=3)
            out = np.empty(got.shape, got.dtype)
            fastbmm.baddbmm(inp, a, b, beta=2, alpha=3, out=out)
        np.testing.assert_array_equal(got, 2 * inp + 3 * np.matmul(a, b))


def test_float16_coefficients_are_applied_in_float32():
    # torch applies alpha/beta in float16's float32 compute type: alpha = 1e5 is not
    # rounded to float16 (it would overflow to inf there); 1e5 * 1 - 99999 * 1 = 1.
    x = np.ones((1, 1, 1), np.float16)
    if torch is not None:
        check_torch(assert_equal_values, lambda: torch_baddbmm(x, x, x, beta=-99999, alpha=1e5),
                    np.ones((1, 1, 1), np.float16), what="torch.baddbmm")
    got = fastbmm.baddbmm(x, x, x, beta=-99999, alpha=1e5)
    assert got.dtype == np.float16 and got.item() == 1.0


# ----------------------------------------------------------------------------
# Issue 9: alpha/beta conversions, out= dtype order, expand's type names
# ----------------------------------------------------------------------------


def _wrapped(v, dtype):
    """v modulo 2**bits, as a value of the integer dtype (two's complement)."""
    bits = 8 * np.dtype(dtype).itemsize
    v %= 2 ** bits
    if np.dtype(dtype).kind == "i" and v >= 2 ** (bits - 1):
        v -= 2 ** bits
    return v


BIG_INT64 = [2 ** 53 + 1, 2 ** 62 + 3, 2 ** 63 - 1, -2 ** 63, -(2 ** 53) - 1]


@pytest.mark.parametrize("m", [3, 0], ids=["m3", "m0"])
@pytest.mark.parametrize("coeff", BIG_INT64)
@pytest.mark.parametrize("which", ["alpha", "beta"])
def test_int64_coefficients_exact_beyond_float(which, coeff, m):
    # alpha/beta went through a float: 2**53 + 1 lost its low bit, 2**63 - 1
    # became -2**63 (issue 9, item 6). Expected: exact Python ints, wrapped.
    x = np.array([[[5, -7]]], np.int64)
    a = np.full((1, 1, m), 2, np.int64)
    b = np.ones((1, m, 2), np.int64)
    alpha, beta = (coeff, 1) if which == "alpha" else (1, coeff)
    expected = np.array([[[_wrapped(beta * int(v) + alpha * 2 * m, np.int64) for v in x[0, 0]]]],
                        np.int64)
    got = fastbmm.baddbmm(x, a, b, alpha=alpha, beta=beta)
    assert_equal_values(got, expected, what="fastbmm")
    if torch is not None:
        check_torch(assert_equal_values, lambda: torch_baddbmm(x, a, b, beta=beta, alpha=alpha),
                    expected, what="torch.baddbmm")


def test_int64_max_coefficients_both():
    # (2**63 - 1) * 1 + (2**63 - 1) * 1 = 2**64 - 2, which wraps to -2 (torch: -2)
    one = np.ones((1, 1, 1), np.int64)
    got = fastbmm.baddbmm(one, one, one, alpha=2 ** 63 - 1, beta=2 ** 63 - 1)
    assert got.item() == -2


@pytest.mark.parametrize("m", [3, 0], ids=["m3", "m0"])
@pytest.mark.parametrize("dtype,beta", [(np.uint8, -1), (np.uint8, -3), (np.uint8, -255),
                                        (np.int8, -1), (np.int8, -3), (np.int16, -255)])
def test_small_integer_negative_beta_wraps(dtype, beta, m):
    # uint8 with a negative beta wraps (7 * -1 -> 249); at m == 0 NumPy 2's scalar
    # rules raised OverflowError instead (issue 9, item 12).
    dt = np.dtype(dtype)
    x = np.array([[[7, 100]]], dt)
    a = np.full((1, 1, m), 2, dt)
    b = np.ones((1, m, 2), dt)
    expected = np.array([[[_wrapped(beta * int(v) + 2 * m, dt) for v in x[0, 0]]]], dt)
    got = fastbmm.baddbmm(x, a, b, beta=beta)
    assert_equal_values(got, expected, what="fastbmm")
    if torch is not None:
        check_torch(assert_equal_values, lambda: torch_baddbmm(x, a, b, beta=beta), expected,
                    what="torch.baddbmm")


@pytest.mark.parametrize("m", [3, 0], ids=["m3", "m0"])
@pytest.mark.parametrize("dtype,beta", [(np.float32, 1e-50), (np.float16, 1e-50), (np.complex64, 1e-50),
                                        (np.complex64, 1e-50j), (np.float64, 1e-330)])
def test_beta_zero_in_the_dtype_ignores_input(dtype, beta, m):
    # beta != 0 as a Python number but 0 in the kernel's type: input's NaN must not
    # leak (issue 9, item 7). The kernel's type is float32 for float16 (torch's opmath).
    x = np.full((1, 2, 2), np.nan, dtype)
    a = np.ones((1, 2, m), dtype)
    b = np.ones((1, m, 2), dtype)
    got = fastbmm.baddbmm(x, a, b, beta=beta, alpha=2)
    assert_equal_values(got, np.full((1, 2, 2), 2 * m, dtype), what="fastbmm")
    if torch is not None and m:
        # torch agrees for m > 0; at m == 0 it multiplies input by beta (NaN * 0).
        check_torch(assert_equal_values, lambda: torch_baddbmm(x, a, b, beta=beta, alpha=2),
                    np.full((1, 2, 2), 2 * m, dtype), what="torch.baddbmm")


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_beta_tiny_but_nonzero_in_the_dtype_uses_input(dtype):
    # 1e-40 is a float32 subnormal, not 0: input is used (float16 holds beta as float32)
    x = np.full((1, 1, 2), np.nan, dtype)
    one = np.ones((1, 1, 1), dtype)
    got = fastbmm.baddbmm(x, one, np.ones((1, 1, 2), dtype), beta=1e-40)
    assert np.isnan(got).all()


def test_m_zero_float16_scales_in_float32():
    # at m == 0 the result is input * beta formed in float32 (torch's opmath) and
    # rounded once: 5 * (1/3) is 1.667 in float16 so, 1.666 were beta rounded to float16 first
    x = np.full((1, 1, 1), 5, np.float16)
    e1, e2 = np.ones((1, 1, 0), np.float16), np.ones((1, 0, 1), np.float16)
    expected = np.full((1, 1, 1), np.float16(np.float32(5) * np.float32(1 / 3)))
    assert expected.item() != np.float16(np.float16(5) * np.float16(1 / 3))
    got = fastbmm.baddbmm(x, e1, e2, beta=1 / 3)
    assert_equal_values(got, expected, what="fastbmm")
    if torch is not None:
        check_torch(assert_equal_values, lambda: torch_baddbmm(x, e1, e2, beta=1 / 3), expected,
                    what="torch.baddbmm")


_ORDER_DTYPES = [np.float32, np.float64, np.bool_, np.uint16, np.int64]


def _raised(fn, *args, **kwargs):
    """The exception fn raises, or None."""
    try:
        fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        return e
    return None


@needs_torch
@pytest.mark.parametrize("d_input", _ORDER_DTYPES, ids=dtype_ids(_ORDER_DTYPES))
def test_dtype_error_order_matches_torch(d_input):
    # every combination of batch1/batch2/out= dtypes and of matching or mismatching
    # sizes and input shapes: the first error fastbmm reports is torch's, in torch's
    # words (issue 9, item 10: out= is checked against batch2's dtype, before the
    # operands are compared).
    mismatches, compared = [], 0
    for d1, d2, do in itertools.product(_ORDER_DTYPES, _ORDER_DTYPES, [None] + _ORDER_DTYPES):
        for shape2, shape_in in itertools.product([(2, 3, 4), (2, 5, 4)], [(2, 2, 4), (3, 4), (2, 2, 2, 4)]):
            args = [np.zeros(shape_in, d_input), np.zeros((2, 2, 3), d1), np.zeros(shape2, d2)]
            kw = {} if do is None else {"out": np.zeros((2, 2, 4), do)}
            te = torch_error(torch.baddbmm, *args, **kw)
            if te is None:
                continue
            compared += 1
            fe = _raised(fastbmm.baddbmm, *args, **kw)
            if not (isinstance(fe, type(te)) and str(fe) == str(te)):
                mismatches.append(f"{[np.dtype(x).name if x else None for x in (d1, d2, do)]} "
                                  f"{shape_in} {shape2}: torch {te}, fastbmm {fe!r}")
    assert compared > 0
    assert not mismatches, f"{len(mismatches)} of {compared} differ:\n" + "\n".join(mismatches[:10])


# torch 2.13's names of a CPU tensor type in expand()'s message: the legacy
# types keep torch.<Name>Tensor, every other dtype is CPU<Name>Type (issue 9, item 11).
EXPAND_TYPE_NAMES = {
    "float16": "torch.HalfTensor", "float32": "torch.FloatTensor", "float64": "torch.DoubleTensor",
    "complex64": "CPUComplexFloatType", "complex128": "CPUComplexDoubleType",
    "int8": "torch.CharTensor", "uint8": "torch.ByteTensor", "int16": "torch.ShortTensor",
    "int32": "torch.IntTensor", "int64": "torch.LongTensor", "bool": "CPUBoolType",
    "uint16": "CPUUInt16Type", "uint32": "CPUUInt32Type", "uint64": "CPUUInt64Type",
}


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES + REFUSED_DTYPES, ids=dtype_ids(SUPPORTED_DTYPES + REFUSED_DTYPES))
def test_expand_error_names_the_type_as_torch(dtype):
    msg = (f"expand({EXPAND_TYPE_NAMES[dtype.name]}{{[1, 2, 3, 4]}}, size=[2, 3, 4]): the number of "
           "sizes provided (3) must be greater or equal to the number of dimensions in the tensor (4)")
    z = lambda s: np.zeros(s, dtype)  # noqa: E731
    e = check_error(z((1, 2, 3, 4)), z((2, 3, 5)), z((2, 5, 4)), RuntimeError, msg)
    assert isinstance(e, ValueError)
