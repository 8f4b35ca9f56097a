"""torch.bmm's contract, clause by clause: README.md's "Errors" and "Differences from
torch.bmm" tables, the out= semantics, and the values that define the dtypes.

Every error test also checks that nothing was written to a sentinel-filled out=
and that the inputs are unchanged; where torch is importable the exception family
and exact text are compared with torch.bmm on the same inputs.
"""

import itertools
import warnings

import numpy as np
import pytest

import fastbmm
from fastbmm import DtypeError, ShapeError, UnsupportedDtypeError

from _helpers import (
    REFUSED_DTYPES,
    SUPPORTED_DTYPES,
    TORCH_CPP_NAMES,
    TORCH_SCALAR_NAMES,
    assert_bmm_close,
    assert_equal_values,
    check_torch,
    random_values,
    reference_bmm,
    sentinel,
    sentinel_out,
    snapshot,
)

ALL_TORCH_DTYPES = SUPPORTED_DTYPES + REFUSED_DTYPES


def _arr(shape, dtype=np.float32, seed=0):
    dt = np.dtype(dtype)
    if dt.kind in "fciu":
        return random_values(np.random.default_rng(seed), shape, dt)
    return np.zeros(shape, dtype=dt)


def _torch_error(a, b, out=None):
    """Run torch.bmm on the same inputs; return the exception it raises (or None)."""
    torch = pytest.importorskip("torch")

    def conv(x):
        if isinstance(x, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(x))
        return x

    kwargs = {}
    if out is not None:
        if isinstance(out, np.ndarray):
            kwargs["out"] = torch.empty(out.shape, dtype=conv(np.zeros(0, out.dtype)).dtype)
        else:
            kwargs["out"] = out
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's "output was resized" deprecation
            torch.bmm(conv(a), conv(b), **kwargs)
    except Exception as e:  # noqa: BLE001 - we want whatever torch raises
        return e
    return None


def _fastbmm_error(a, b, out=None, **kw):
    """Call fastbmm.bmm expecting an error; check nothing was modified; return the error."""
    arrays = [x for x in (a, b, out) if isinstance(x, np.ndarray)]
    before = snapshot(*arrays)
    with pytest.raises(Exception) as info:
        fastbmm.bmm(a, b, out=out, **kw)
    assert snapshot(*arrays) == before, "an input or out= was modified by a failing call"
    return info.value


def check_error(a, b, exc_type, message, out_shape=None, out_dtype=None, torch_parity=True):
    """fastbmm.bmm(a, b) raises ``exc_type`` with exactly ``message`` (None: don't check),
    both without out= and with a sentinel-filled out= (nothing written); torch agrees.
    With ``out_dtype`` the error is about out= itself, so only the out= call is made."""
    outs = [None] if out_dtype is None else []
    if out_shape is not None:
        outs.append(sentinel_out(out_shape, out_dtype if out_dtype is not None else b.dtype))
    for out in outs:
        err = _fastbmm_error(a, b, out=out)
        assert isinstance(err, exc_type), f"raised {type(err).__name__}: {err}"
        if message is not None:
            assert str(err) == message
    if torch_parity:
        for out in outs:
            assert_same_error_as_torch(a, b, out)


def assert_same_error_as_torch(a, b, out=None):
    terr = _torch_error(a, b, out)
    assert terr is not None, "torch accepted these inputs"
    ferr = _fastbmm_error(a, b, out=out)
    assert isinstance(ferr, type(terr)), (
        f"torch raises {type(terr).__name__}, fastbmm {type(ferr).__name__} ({ferr})"
    )
    expected = str(terr).replace("must be Tensor", "must be ndarray")
    assert str(ferr) == expected


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------

NOT_3D = {"0d": (), "1d": (10,), "2d": (1, 10), "4d": (2, 1, 10, 1)}


@pytest.mark.parametrize("shape", list(NOT_3D.values()), ids=list(NOT_3D))
def test_input_not_3d(shape):
    check_error(_arr(shape), _arr((2, 10, 4)), ShapeError, "batch1 must be a 3D tensor",
                out_shape=(2, 1, 4))


@pytest.mark.parametrize("shape", list(NOT_3D.values()), ids=list(NOT_3D))
def test_mat2_not_3d(shape):
    check_error(_arr((2, 1, 10)), _arr(shape), ShapeError, "batch2 must be a 3D tensor",
                out_shape=(2, 1, 4))


def test_both_not_3d_reports_input_first():
    check_error(_arr((1, 10)), _arr((10, 4)), ShapeError, "batch1 must be a 3D tensor")


def test_batch_mismatch():
    check_error(
        _arr((2, 1, 10)), _arr((3, 10, 4)), ShapeError,
        "Expected size for first two dimensions of batch2 tensor to be: [2, 10] but got: [3, 10].",
        out_shape=(2, 1, 4),
    )


def test_inner_mismatch():
    check_error(
        _arr((2, 10, 1)), _arr((2, 10, 4)), ShapeError,
        "Expected size for first two dimensions of batch2 tensor to be: [2, 1] but got: [2, 10].",
        out_shape=(2, 10, 4),
    )


def test_zero_batch_mismatch():
    check_error(
        _arr((0, 1, 10)), _arr((2, 10, 4)), ShapeError,
        "Expected size for first two dimensions of batch2 tensor to be: [0, 10] but got: [2, 10].",
        out_shape=(0, 1, 4),
    )


@pytest.mark.parametrize("a_shape,b_shape", [((1, 3, 5), (5, 5, 2)), ((5, 3, 5), (1, 5, 2))])
def test_no_batch_broadcasting(a_shape, b_shape):
    msg = ("Expected size for first two dimensions of batch2 tensor to be: "
           f"[{a_shape[0]}, {a_shape[2]}] but got: [{b_shape[0]}, {b_shape[1]}].")
    check_error(_arr(a_shape), _arr(b_shape), ShapeError, msg, out_shape=(5, 3, 2))


@pytest.mark.parametrize("b,n,m,p", [(0, 3, 4, 5), (2, 0, 4, 5), (2, 3, 4, 0), (0, 0, 0, 0),
                                     (0, 3, 0, 5), (3, 0, 7, 0)])
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=str)
def test_empty_dims(b, n, m, p, dtype):
    a, bb = _arr((b, n, m), dtype), _arr((b, m, p), dtype, 1)
    r = fastbmm.bmm(a, bb)
    assert isinstance(r, np.ndarray) and type(r) is np.ndarray
    assert r.shape == (b, n, p) and r.dtype == dtype
    out = sentinel_out((b, n, p), dtype)
    assert fastbmm.bmm(a, bb, out=out) is out


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=str)
def test_inner_dim_zero_gives_zeros(dtype):
    a, b = _arr((3, 4, 0), dtype), _arr((3, 0, 5), dtype)
    r = fastbmm.bmm(a, b)
    assert r.shape == (3, 4, 5) and r.dtype == dtype
    assert np.array_equal(r, np.zeros((3, 4, 5), dtype))
    # A dirty out= (sentinel, NaN for floats) must be overwritten with zeros.
    out = sentinel_out((3, 4, 5), dtype)
    if dtype.kind in "fc":
        out[0] = np.nan
    assert fastbmm.bmm(a, b, out=out) is out
    assert np.array_equal(out, np.zeros((3, 4, 5), dtype))


def test_inner_dim_zero_strided_out_only_view_written():
    a, b = _arr((2, 3, 0)), _arr((2, 0, 4))
    parent = sentinel_out((2, 6, 9), np.float32)
    view = parent[:, ::2, 1::2]
    fastbmm.bmm(a, b, out=view)
    expected = sentinel_out((2, 6, 9), np.float32)
    expected[:, ::2, 1::2] = 0
    assert np.array_equal(parent, expected)


def test_inner_dim_zero_matches_torch(torch):
    a, b = _arr((3, 4, 0)), _arr((3, 0, 5))
    expected = np.zeros((3, 4, 5), a.dtype)     # an empty sum
    assert_equal_values(fastbmm.bmm(a, b), expected, what="fastbmm")
    check_torch(assert_equal_values, lambda: torch.bmm(torch.from_numpy(a), torch.from_numpy(b)).numpy(),
                expected, what="torch.bmm")


# ---------------------------------------------------------------------------
# Error classes: one class for two habits
# ---------------------------------------------------------------------------


def test_error_classes_are_exported():
    import fastbmm._errors as errors

    assert fastbmm.ShapeError is errors.ShapeError
    assert fastbmm.DtypeError is errors.DtypeError
    assert fastbmm.UnsupportedDtypeError is errors.UnsupportedDtypeError
    assert issubclass(ShapeError, RuntimeError) and issubclass(ShapeError, ValueError)
    assert issubclass(DtypeError, RuntimeError) and issubclass(DtypeError, TypeError)
    assert issubclass(UnsupportedDtypeError, NotImplementedError)
    assert issubclass(UnsupportedDtypeError, TypeError)


@pytest.mark.parametrize("catch", [RuntimeError, ValueError, ShapeError])
def test_shape_error_catchable_as(catch):
    with pytest.raises(catch):
        fastbmm.bmm(_arr((2, 1, 10)), _arr((3, 10, 4)))
    with pytest.raises(catch):
        fastbmm.bmm(_arr((2, 10)), _arr((2, 10, 4)))


@pytest.mark.parametrize("catch", [RuntimeError, TypeError, DtypeError])
def test_dtype_error_catchable_as(catch):
    with pytest.raises(catch):
        fastbmm.bmm(_arr((2, 1, 10), np.float32), _arr((2, 10, 4), np.float64))
    with pytest.raises(catch):
        fastbmm.bmm(_arr((2, 1, 10)), _arr((2, 10, 4)), out=np.zeros((2, 1, 4), np.float64))


@pytest.mark.parametrize("catch", [RuntimeError, NotImplementedError, TypeError])
def test_unsupported_dtype_error_catchable_as(catch):
    with pytest.raises(catch):
        fastbmm.bmm(np.zeros((1, 2, 3), bool), np.zeros((1, 3, 4), bool))


# ---------------------------------------------------------------------------
# Dtypes
# ---------------------------------------------------------------------------


def test_dtype_mismatch_float_double():
    check_error(_arr((2, 1, 10), np.float32), _arr((2, 10, 4), np.float64), DtypeError,
                "expected scalar type Float but found Double", out_shape=(2, 1, 4))


def test_dtype_mismatch_first_operand_is_expected():
    check_error(_arr((2, 1, 10), np.float64), _arr((2, 10, 4), np.float32), DtypeError,
                "expected scalar type Double but found Float", out_shape=(2, 1, 4))


@pytest.mark.parametrize(
    "d1,d2", [(x, y) for x, y in itertools.permutations(SUPPORTED_DTYPES, 2)], ids=str
)
def test_dtype_mismatch_names(d1, d2):
    check_error(
        _arr((2, 1, 3), d1), _arr((2, 3, 4), d2), DtypeError,
        f"expected scalar type {TORCH_SCALAR_NAMES[d1.name]} but found {TORCH_SCALAR_NAMES[d2.name]}",
        torch_parity=False,
    )


def test_dtype_pairs_match_torch():
    """Every pair of torch-representable dtypes: same error family and text as torch."""
    pytest.importorskip("torch")
    bad = []
    for d1, d2 in itertools.product(ALL_TORCH_DTYPES, repeat=2):
        a, b = _arr((2, 1, 3), d1), _arr((2, 3, 4), d2)
        terr = _torch_error(a, b)
        try:
            fastbmm.bmm(a, b)
            ferr = None
        except Exception as e:  # noqa: BLE001
            ferr = e
        if terr is None:
            if ferr is not None:
                bad.append(f"{d1}@{d2}: torch ok, fastbmm {type(ferr).__name__}: {ferr}")
        elif ferr is None or not isinstance(ferr, type(terr)) or str(ferr) != str(terr):
            bad.append(f"{d1}@{d2}: torch {type(terr).__name__}: {terr!s} | fastbmm "
                       f"{type(ferr).__name__ if ferr else None}: {ferr!s}")
    assert not bad, f"{len(bad)} mismatches:\n" + "\n".join(bad[:15])


PRECEDENCE_SHAPES = {
    "valid": ((2, 1, 3), (2, 3, 4)),
    "input_2d": ((1, 3), (2, 3, 4)),
    "mat2_2d": ((2, 1, 3), (3, 4)),
    "batch_mismatch": ((2, 1, 3), (3, 3, 4)),
    "inner_mismatch": ((2, 1, 2), (2, 3, 4)),
}


def test_error_precedence_matches_torch():
    """Shape problems x operand dtypes x out= dtype / shape: torch's check order and texts.

    (An out= of the wrong shape is only compared where torch raises for another
    reason; torch would resize it, fastbmm raises ShapeError - checked elsewhere.)"""
    pytest.importorskip("torch")
    dts = [np.dtype(t) for t in (np.float16, np.float32, np.float64, np.complex64,
                                 np.int8, np.int64, np.bool_, np.uint16)]
    bad = []
    n_compared = 0
    for case, (sa, sb) in PRECEDENCE_SHAPES.items():
        for d1, d2, d3 in itertools.product(dts, repeat=3):
            for out_kind in ("none", "right_shape", "wrong_shape"):
                if case != "valid" and out_kind == "right_shape":
                    continue
                if out_kind != "none" and case != "valid" and d3 not in (d1, d2, np.dtype(np.float64)):
                    continue  # keep the loop short; these add nothing new
                a, b = _arr(sa, d1), _arr(sb, d2)
                out = None
                if out_kind == "right_shape":
                    out = sentinel_out((2, 1, 4), d3)
                elif out_kind == "wrong_shape":
                    out = sentinel_out((2, 5, 5), d3)
                terr = _torch_error(a, b, out)
                before = None if out is None else out.tobytes()
                try:
                    fastbmm.bmm(a, b, out=out)
                    ferr = None
                except Exception as e:  # noqa: BLE001
                    ferr = e
                label = f"{case} {d1}@{d2} out={out_kind}:{d3}"
                if out is not None and ferr is not None and out.tobytes() != before:
                    bad.append(f"{label}: out modified on error")
                if terr is None:
                    if out_kind == "wrong_shape":
                        if not isinstance(ferr, ShapeError):
                            bad.append(f"{label}: expected ShapeError, got {ferr!r}")
                    elif ferr is not None:
                        bad.append(f"{label}: torch ok, fastbmm {type(ferr).__name__}: {ferr}")
                    continue
                n_compared += 1
                if ferr is None or not isinstance(ferr, type(terr)) or str(ferr) != str(terr):
                    bad.append(f"{label}: torch {type(terr).__name__}: {terr!s} | fastbmm "
                               f"{type(ferr).__name__ if ferr else None}: {ferr!s}")
    assert n_compared > 1000
    assert not bad, f"{len(bad)} mismatches:\n" + "\n".join(bad[:15])


@pytest.mark.parametrize("b_shape", [(3, 3, 4), (2, 2, 4)], ids=["batch", "inner"])
def test_size_mismatch_reported_before_out_dtype(b_shape):
    # torch validates the operands' sizes before looking at out='s dtype.
    a, b = _arr((2, 1, 3)), _arr(b_shape)
    msg = ("Expected size for first two dimensions of batch2 tensor to be: [2, 3] "
           f"but got: [{b_shape[0]}, {b_shape[1]}].")
    check_error(a, b, ShapeError, msg, out_shape=(2, 1, 4), out_dtype=np.float64)


def test_shape_error_precedes_dtype_error():
    # torch checks shapes before dtypes.
    check_error(_arr((2, 1, 10), np.float32), _arr((3, 10, 4), np.float64), ShapeError,
                "Expected size for first two dimensions of batch2 tensor to be: [2, 10] but got: [3, 10].")
    check_error(_arr((2, 10), np.bool_), _arr((2, 10, 4), np.bool_), ShapeError,
                "batch1 must be a 3D tensor")


@pytest.mark.parametrize("dtype", REFUSED_DTYPES, ids=str)
def test_refused_torch_dtypes(dtype):
    check_error(_arr((2, 1, 3), dtype), _arr((2, 3, 4), dtype), UnsupportedDtypeError,
                f'"bmm" not implemented for \'{TORCH_SCALAR_NAMES[dtype.name]}\'',
                out_shape=(2, 1, 4))


NUMPY_ONLY = {
    "object": np.dtype(object),
    "str": np.dtype("U3"),
    "bytes": np.dtype("S3"),
    "datetime64": np.dtype("datetime64[ns]"),
    "timedelta64": np.dtype("timedelta64[s]"),
    "structured": np.dtype([("x", np.float32), ("y", np.int32)]),
    "longdouble": np.dtype(np.longdouble),
    "clongdouble": np.dtype(np.clongdouble),
}


@pytest.mark.parametrize("dtype", list(NUMPY_ONLY.values()), ids=list(NUMPY_ONLY))
def test_numpy_only_dtypes(dtype):
    if dtype == np.float64 or dtype == np.complex128:
        pytest.skip("longdouble is double on this platform")
    a, b = np.zeros((2, 1, 3), dtype), np.zeros((2, 3, 4), dtype)
    for out in (None, np.zeros((2, 1, 4), dtype)):
        err = _fastbmm_error(a, b, out=out)
        assert isinstance(err, UnsupportedDtypeError), f"{type(err).__name__}: {err}"
        assert isinstance(err, (NotImplementedError, TypeError))
        assert str(dtype) in str(err), f"message does not name {dtype}: {err}"


def test_int8_wraps():
    a = np.array([[[100, 100]]], np.int8)
    b = np.array([[[3], [3]]], np.int8)
    r = fastbmm.bmm(a, b)
    assert r.dtype == np.int8
    assert r.tolist() == [[[88]]]  # 600 mod 256


def test_int8_wraps_matches_torch(torch):
    a = np.array([[[100, 100]]], np.int8)
    b = np.array([[[3], [3]]], np.int8)
    expected = np.array([[[88]]], np.int8)      # 600 mod 256, two's complement
    assert_equal_values(fastbmm.bmm(a, b), expected, what="fastbmm")
    check_torch(assert_equal_values, lambda: torch.bmm(torch.from_numpy(a), torch.from_numpy(b)).numpy(),
                expected, what="torch.bmm")


def test_int64_wraps():
    a = np.full((1, 1, 4), 2 ** 62, np.int64)
    b = np.ones((1, 4, 1), np.int64)
    r = fastbmm.bmm(a, b)
    assert r.dtype == np.int64 and r.tolist() == [[[0]]]  # 4 * 2**62 = 2**64 == 0
    a[0, 0, 3] = 2 ** 62 - 1
    assert fastbmm.bmm(a, b).tolist() == [[[-1]]]


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64"])
def test_integer_extremes_wrap(dtype):
    info = np.iinfo(dtype)
    vals = np.array([info.min, info.max, -1 if info.min else 1, info.max // 2 + 1], dtype)
    a = np.tile(vals, (2, 3, 2))  # (2, 3, 8)
    b = np.tile(vals[::-1].reshape(4, 1), (2, 2, 5))  # (2, 8, 5)
    assert_bmm_close(fastbmm.bmm(a, b), a, b)


def test_float16_accumulates_in_float32():
    a = np.ones((1, 1, 5000), np.float16)
    b = np.ones((1, 5000, 1), np.float16)
    r = fastbmm.bmm(a, b)
    assert r.dtype == np.float16
    assert r[0, 0, 0] == 5000.0  # float16 accumulation would stall at 2048


@pytest.mark.parametrize("ones,tail", [(2049, []), (2051, []), (2049, [0.25, 0.25, 0.5]), (3001, [0.5])])
def test_float16_sum_rounded_once(ones, tail):
    # The float32 sum is exact here; the result is that sum rounded once to float16
    # (2049 -> 2048 and 2051 -> 2052 by ties-to-even). Float16 accumulation would stall at 2048.
    col = np.array([1.0] * ones + tail, np.float16)
    a = np.ones((1, 1, col.size), np.float16)
    b = col.reshape(1, -1, 1)
    expected = np.float16(np.float32(ones + sum(tail)))
    assert fastbmm.bmm(a, b)[0, 0, 0] == expected


def test_float16_matches_torch(torch):
    rng = np.random.default_rng(5)
    a = rng.uniform(-1, 1, (2, 7, 300)).astype(np.float16)
    b = rng.uniform(-1, 1, (2, 300, 9)).astype(np.float16)
    assert_bmm_close(fastbmm.bmm(a, b), a, b)
    check_torch(assert_bmm_close, lambda: torch.bmm(torch.from_numpy(a), torch.from_numpy(b)).numpy(),
                a, b, what="torch.bmm")


FLOATS = [np.dtype(t) for t in (np.float16, np.float32, np.float64)]


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize(
    "row,col,expected",
    [
        ([np.inf, 1.0], [0.0, 1.0], np.nan),       # inf * 0
        ([0.0, 0.0], [np.nan, np.inf], np.nan),    # 0 * nan, 0 * inf: zeros must not be skipped
        ([np.nan, 1.0], [1.0, 1.0], np.nan),
        ([np.inf, -np.inf], [1.0, 1.0], np.nan),   # inf - inf
        ([np.inf, 1.0], [1.0, 1.0], np.inf),
        ([-np.inf, 1.0], [2.0, 5.0], -np.inf),
    ],
)
def test_nan_inf_propagation(dtype, row, col, expected):
    k = len(row)
    # Pad the inner dimension with zeros and repeat over rows/columns/batch so
    # both the small and the packed paths see the special values.
    for m_pad, n, p in [(0, 1, 1), (300, 40, 40)]:
        a = np.zeros((2, n, k + m_pad), dtype)
        b = np.zeros((2, k + m_pad, p), dtype)
        a[:, :, :k] = row
        b[:, :k, :] = np.array(col).reshape(k, 1)
        r = fastbmm.bmm(a, b)
        if np.isnan(expected):
            assert np.isnan(r).all(), r
        else:
            assert (r == expected).all(), r


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_nan_inf_matches_torch(torch, dtype):
    a = np.array([[[np.inf, 1.0, 0.0, np.nan, -np.inf],
                   [0.0, 0.0, 0.0, 0.0, 0.0],
                   [1.0, 2.0, 3.0, 4.0, 5.0]]], dtype)
    b = np.array([[[0.0, 1.0, 1.0, 0.0],
                   [1.0, 1.0, np.inf, 0.0],
                   [np.inf, 2.0, 1.0, 0.0],
                   [0.0, 0.0, 0.0, 0.0],
                   [1.0, 0.0, 0.0, 0.0]]], dtype)
    # IEEE, element by element (float64 holds every product of these exactly)
    with np.errstate(invalid="ignore"):
        expected = np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(dtype)
    assert_equal_values(fastbmm.bmm(a, b), expected, what="fastbmm")
    check_torch(assert_equal_values, lambda: torch.bmm(torch.from_numpy(a), torch.from_numpy(b)).numpy(),
                expected, what="torch.bmm")


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=str)
def test_complex_nan_propagates(dtype):
    a = np.zeros((1, 2, 3), dtype)
    b = np.ones((1, 3, 2), dtype)
    a[0, 0, 1] = complex(np.nan, 0)
    r = fastbmm.bmm(a, b)
    assert np.isnan(r[0, 0]).all()
    assert np.array_equal(r[0, 1], np.zeros(2, dtype))


# ---------------------------------------------------------------------------
# Arguments that are not arrays
# ---------------------------------------------------------------------------

NON_ARRAYS = {"list": [[[1.0]]], "tuple": ((1.0,),), "None": None, "float": 1.0, "str": "x"}


@pytest.mark.parametrize("obj", list(NON_ARRAYS.values()), ids=list(NON_ARRAYS))
def test_input_not_an_array(obj):
    b = _arr((1, 1, 1), np.float64)
    err = _fastbmm_error(obj, b)
    assert type(err) is TypeError or isinstance(err, TypeError)
    assert str(err) == f"bmm(): argument 'input' (position 1) must be ndarray, not {type(obj).__name__}"


@pytest.mark.parametrize("obj", list(NON_ARRAYS.values()), ids=list(NON_ARRAYS))
def test_mat2_not_an_array(obj):
    a = _arr((1, 1, 1), np.float64)
    err = _fastbmm_error(a, obj)
    assert isinstance(err, TypeError)
    assert str(err) == f"bmm(): argument 'mat2' (position 2) must be ndarray, not {type(obj).__name__}"


@pytest.mark.parametrize("obj", [NON_ARRAYS["list"], NON_ARRAYS["None"]], ids=["list", "None"])
def test_non_array_messages_match_torch(obj):
    a = _arr((1, 1, 1), np.float64)
    assert_same_error_as_torch(obj, a)
    assert_same_error_as_torch(a, obj)


def test_input_checked_before_mat2():
    err = _fastbmm_error([1], "x")
    assert str(err) == "bmm(): argument 'input' (position 1) must be ndarray, not list"


@pytest.mark.parametrize("obj", [[[[0.0]]], 1.0, "x"], ids=["list", "float", "str"])
def test_out_not_an_array(obj):
    a, b = _arr((1, 1, 1), np.float64), _arr((1, 1, 1), np.float64)
    err = _fastbmm_error(a, b, out=obj)
    assert isinstance(err, TypeError)
    msg = str(err)
    assert "'out'" in msg and "ndarray" in msg and type(obj).__name__ in msg, msg
    terr = _torch_error(a, b, out=obj)
    assert isinstance(terr, TypeError)


def test_masked_arrays_rejected():
    a = np.ma.masked_array(_arr((1, 2, 3)), mask=False)
    b = _arr((1, 3, 2))
    with pytest.raises(TypeError):
        fastbmm.bmm(a, b)
    with pytest.raises(TypeError):
        fastbmm.bmm(b.transpose(0, 2, 1).copy(), np.ma.masked_array(_arr((1, 2, 3))))
    out = np.ma.masked_array(np.zeros((1, 2, 2), np.float32))
    before = snapshot(out.data)
    with pytest.raises(TypeError):
        fastbmm.bmm(a.data, b, out=out)
    assert snapshot(out.data) == before


# ---------------------------------------------------------------------------
# out=
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=str)
def test_out_right_shape_and_dtype(dtype):
    a, b = _arr((3, 4, 5), dtype, 1), _arr((3, 5, 6), dtype, 2)
    out = sentinel_out((3, 4, 6), dtype)
    if dtype.kind in "fc":
        out[...] = np.nan  # dirty out: must not leak into the result (no beta * out)
    r = fastbmm.bmm(a, b, out=out)
    assert r is out
    assert_bmm_close(out, a, b)


def test_result_without_out_is_new_c_contiguous_native():
    a = _arr((3, 4, 5), np.float32).astype(">f4")
    b = np.asfortranarray(_arr((3, 5, 6), np.float32).astype(">f4"))
    r = fastbmm.bmm(a, b)
    assert type(r) is np.ndarray
    assert r.flags.c_contiguous and r.flags.writeable
    assert r.dtype == np.float32 and r.dtype.isnative
    assert not np.shares_memory(r, a) and not np.shares_memory(r, b)
    assert_bmm_close(r, a, b)


def test_out_matches_torch_out(torch):
    a, b = _arr((3, 4, 5), np.float64, 1), _arr((3, 5, 6), np.float64, 2)
    out = sentinel_out((3, 4, 6), np.float64)
    tout = torch.empty((3, 4, 6), dtype=torch.float64)
    ret = torch.bmm(torch.from_numpy(a), torch.from_numpy(b), out=tout)
    assert ret is tout  # the contract row: torch returns the same object
    assert fastbmm.bmm(a, b, out=out) is out
    assert_bmm_close(out, a, b)
    check_torch(assert_bmm_close, tout.numpy(), a, b, what="torch.bmm(out=)")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.complex64], ids=str)
def test_out_strided_view_written_through_strides(dtype):
    dtype = np.dtype(dtype)
    a, b = _arr((2, 5, 7), dtype, 3), _arr((2, 7, 3), dtype, 4)
    s = sentinel(dtype)
    parent = np.full((3, 11, 8), s, dtype)
    idx = (slice(2, 0, -1), slice(0, 10, 2), slice(1, 7, 2))
    view = parent[idx]
    assert view.shape == (2, 5, 3)
    assert fastbmm.bmm(a, b, out=view) is view
    assert_bmm_close(view, a, b)
    untouched = np.ones(parent.shape, bool)
    untouched[idx] = False
    assert (parent[untouched] == s).all(), "an element outside the out= view was written"


def test_out_wrong_dtype_message():
    check_error(_arr((2, 1, 10), np.float32), _arr((2, 10, 4), np.float32), DtypeError,
                "Expected out tensor to have dtype float, but got double instead",
                out_shape=(2, 1, 4), out_dtype=np.float64)


@pytest.mark.parametrize(
    "d_in,d_out", [(x, y) for x, y in itertools.permutations(SUPPORTED_DTYPES, 2)], ids=str
)
def test_out_wrong_dtype_names(d_in, d_out):
    a, b = _arr((2, 1, 3), d_in), _arr((2, 3, 4), d_in)
    out = sentinel_out((2, 1, 4), d_out)
    err = _fastbmm_error(a, b, out=out)
    assert isinstance(err, DtypeError)
    assert str(err) == (f"Expected out tensor to have dtype {TORCH_CPP_NAMES[d_in.name]}, "
                        f"but got {TORCH_CPP_NAMES[d_out.name]} instead")


def test_out_wrong_dtype_checked_before_shape():
    # torch reports the dtype of a wrong-dtype, wrong-shape out=.
    check_error(_arr((2, 1, 10), np.float32), _arr((2, 10, 4), np.float32), DtypeError,
                "Expected out tensor to have dtype float, but got double instead",
                out_shape=(5, 5), out_dtype=np.float64)


def test_out_byteswapped_is_same_dtype():
    a, b = _arr((2, 3, 4), np.float64), _arr((2, 4, 5), np.float64)
    out = np.full((2, 3, 5), 7.0, ">f8")
    assert fastbmm.bmm(a, b, out=out) is out
    assert_bmm_close(out, a, b)


def _names_shape(msg, shape):
    shape = tuple(shape)
    forms = [str(shape), str(list(shape)), "x".join(map(str, shape)), ", ".join(map(str, shape))]
    return any(f in msg for f in forms)


@pytest.mark.parametrize("out_shape", [(2, 1, 5), (3, 1, 4), (2, 4, 1), (2, 1, 4, 1), (1, 4), (8,), ()])
def test_out_wrong_shape(out_shape):
    a, b = _arr((2, 1, 10)), _arr((2, 10, 4))
    out = sentinel_out(out_shape, np.float32)
    err = _fastbmm_error(a, b, out=out)
    assert isinstance(err, ShapeError), f"{type(err).__name__}: {err}"
    assert isinstance(err, RuntimeError) and isinstance(err, ValueError)
    assert _names_shape(str(err), (2, 1, 4)), str(err)
    assert _names_shape(str(err), out_shape), str(err)


def test_out_read_only():
    a, b = _arr((2, 3, 4)), _arr((2, 4, 5))
    out = sentinel_out((2, 3, 5), np.float32)
    out.flags.writeable = False
    err = _fastbmm_error(a, b, out=out)
    assert isinstance(err, ValueError), f"{type(err).__name__}: {err}"
    assert (out == sentinel(np.float32)).all()


def test_out_read_only_broadcast():
    a, b = _arr((2, 3, 4)), _arr((2, 4, 5))
    base = sentinel_out((1, 3, 5), np.float32)
    err = _fastbmm_error(a, b, out=np.broadcast_to(base, (2, 3, 5)))
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.complex128], ids=str)
@pytest.mark.parametrize("size", [6, 70])
def test_out_aliases_both_inputs(dtype, size):
    x0 = _arr((3, size, size), dtype, 7)
    x = x0.copy()
    r = fastbmm.bmm(x, x, out=x)
    assert r is x
    assert_bmm_close(x, x0, x0)


def test_out_aliases_one_input_large():
    # Big enough for the packed path; out= is the first operand.
    a0, b0 = _arr((2, 70, 70), np.float64, 8), _arr((2, 70, 70), np.float64, 9)
    a, b = a0.copy(), b0.copy()
    fastbmm.bmm(a, b, out=a)
    assert_bmm_close(a, a0, b0)
    assert np.array_equal(b, b0)
    a, b = a0.copy(), b0.copy()
    fastbmm.bmm(a, b, out=b)
    assert_bmm_close(b, a0, b0)


def test_out_aliases_transposed_input():
    a0 = _arr((2, 9, 9), np.float32, 10)
    a = a0.copy()
    fastbmm.bmm(a, a.transpose(0, 2, 1), out=a)
    assert_bmm_close(a, a0, a0.transpose(0, 2, 1))


def test_out_partially_overlaps_input():
    buf0 = _arr((1, 10, 10), np.float64, 11)
    buf = buf0.copy()
    a, b, out = buf[:, :8, :8], buf[:, 1:9, 2:10], buf[:, 2:10, 1:9]
    a0, b0 = buf0[:, :8, :8].copy(), buf0[:, 1:9, 2:10].copy()
    fastbmm.bmm(a, b, out=out)
    assert_bmm_close(out, a0, b0)
    mask = np.ones(buf.shape, bool)
    mask[:, 2:10, 1:9] = False
    assert np.array_equal(buf[mask], buf0[mask])


def test_torch_aliasing_is_documented_wrong(torch):
    """The contract row's premise: torch gives wrong values for bmm(x, x, out=x)."""
    x = _arr((3, 6, 6), np.float64, 7)
    tx = torch.from_numpy(x.copy())
    torch.bmm(tx, tx, out=tx)
    expected = reference_bmm(x, x)
    if np.allclose(tx.numpy(), expected.astype(np.float64)):
        pytest.skip("this torch build happens to get aliasing right")
    r = fastbmm.bmm(x, x, out=x)
    assert np.allclose(r, expected.astype(np.float64))


@pytest.mark.parametrize("kind", ["zero_batch_stride", "zero_col_stride", "overlapping_rows"])
def test_out_self_overlapping(kind):
    a, b = _arr((2, 3, 4)), _arr((2, 4, 5))
    parent = sentinel_out((64,), np.float32)
    it = parent.itemsize
    strides = {
        "zero_batch_stride": (0, 5 * it, it),
        "zero_col_stride": (15 * it, 5 * it, 0),
        "overlapping_rows": (15 * it, 2 * it, it),
    }[kind]
    out = np.lib.stride_tricks.as_strided(parent, (2, 3, 5), strides, writeable=True)
    before = parent.tobytes()
    err = _fastbmm_error(a, b, out=out)
    assert isinstance(err, ValueError), f"{type(err).__name__}: {err}"
    assert parent.tobytes() == before
