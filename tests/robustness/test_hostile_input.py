"""Every kind of wrong argument to fastbmm.bmm / set_num_threads, and what it raises.

Each row of the tables names the call, the exception class and a substring of
the message. Beyond the exception, every case checks that nothing crashed and
nothing was written: out= (filled with a sentinel) and the inputs keep their
bytes, and the thread count is unchanged after a refused set_num_threads.
"""

import re

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import fastbmm
from fastbmm import DtypeError, ShapeError, UnsupportedDtypeError

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

SENTINEL = 7  # representable in every dtype used as out= below


def f32(*shape):
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape) % 5 - 2


def arrs(dtype_a=np.float32, dtype_b=None, sa=(2, 3, 4), sb=(2, 4, 5)):
    dtype_b = dtype_a if dtype_b is None else dtype_b
    return f32(*sa).astype(dtype_a), f32(*sb).astype(dtype_b)


def full(shape, dtype=np.float32):
    return np.full(shape, SENTINEL, dtype=dtype)


def readonly(x):
    x.flags.writeable = False
    return x


def self_overlapping_out():
    # writable, but its batch stride is 0: batch entries would clobber each other
    buf = full(15)
    return as_strided(buf, shape=(2, 3, 5), strides=(0, 20, 4), writeable=True)


def partially_overlapping_out():
    # writable, rows overlap (row stride one element): not the same as zero stride
    buf = full(40)
    return as_strided(buf, shape=(2, 3, 5), strides=(60, 4, 4), writeable=True)


def unsupported(dtype):
    def make():
        if np.dtype(dtype).kind in "US":
            return np.full((2, 3, 4), "7", dtype), np.full((2, 4, 5), "7", dtype)
        if np.dtype(dtype).kind == "V":
            return np.zeros((2, 3, 4), dtype), np.zeros((2, 4, 5), dtype)
        return np.ones((2, 3, 4)).astype(dtype), np.ones((2, 4, 5)).astype(dtype)
    return make


NOT_ARRAY = [
    ("list", lambda a, b: ([[[1.0]]], b), "argument 'input' (position 1) must be ndarray, not list"),
    ("tuple", lambda a, b: (((1.0,),), b), "argument 'input' (position 1) must be ndarray, not tuple"),
    ("int", lambda a, b: (3, b), "argument 'input' (position 1) must be ndarray, not int"),
    ("float", lambda a, b: (3.0, b), "argument 'input' (position 1) must be ndarray, not float"),
    ("numpy scalar", lambda a, b: (np.float32(3), b), "must be ndarray, not float32"),
    ("None", lambda a, b: (None, b), "argument 'input' (position 1) must be ndarray, not NoneType"),
    ("str", lambda a, b: ("abc", b), "argument 'input' (position 1) must be ndarray, not str"),
    ("bytes", lambda a, b: (b"abc", b), "must be ndarray, not bytes"),
    ("dict", lambda a, b: ({"a": a}, b), "argument 'input' (position 1) must be ndarray, not dict"),
    ("memoryview", lambda a, b: (memoryview(a), b), "must be ndarray, not memoryview"),
    ("__array__ object", lambda a, b: (type("Arr", (), {"__array__": lambda s, *k, **kw: a})(), b),
     "must be ndarray, not Arr"),
    ("mat2 list", lambda a, b: (a, b.tolist()), "argument 'mat2' (position 2) must be ndarray, not list"),
    ("mat2 None", lambda a, b: (a, None), "argument 'mat2' (position 2) must be ndarray, not NoneType"),
    ("mat2 str", lambda a, b: (a, "b"), "argument 'mat2' (position 2) must be ndarray, not str"),
    ("mat2 dict", lambda a, b: (a, {}), "argument 'mat2' (position 2) must be ndarray, not dict"),
]


@pytest.mark.parametrize("name, make, msg", NOT_ARRAY, ids=[c[0] for c in NOT_ARRAY])
def test_non_array_operands(name, make, msg):
    a, b = arrs()
    a0, b0 = a.copy(), b.copy()
    out = full((2, 3, 5))
    x, y = make(a, b)
    with pytest.raises(TypeError, match=re.escape(msg)) as ei:
        fastbmm.bmm(x, y, out=out)
    assert "bmm()" in str(ei.value)
    np.testing.assert_array_equal(out, SENTINEL)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


NOT_ARRAY_OUT = [
    ("list", lambda: [[[0.0] * 5] * 3] * 2, "not list"),
    ("tuple", lambda: (), "not tuple"),
    ("scalar", lambda: 0.0, "not float"),
    ("numpy scalar", lambda: np.float32(0), "not float32"),
    ("str", lambda: "out", "not str"),
    ("dict", lambda: {}, "not dict"),
    ("bytearray", lambda: bytearray(120), "not bytearray"),
]


@pytest.mark.parametrize("name, make, msg", NOT_ARRAY_OUT, ids=[c[0] for c in NOT_ARRAY_OUT])
def test_non_array_out(name, make, msg):
    a, b = arrs()
    out = make()
    with pytest.raises(TypeError, match=re.escape("argument 'out' must be ndarray, " + msg)):
        fastbmm.bmm(a, b, out=out)


# (id, maker -> (input, mat2, out or None), exception class, message substring)
# The out= given in a row (when not itself the subject) is a valid-looking
# sentinel-filled array, to prove a failing call writes nothing.
BAD_CALLS = [
    # ranks (torch's order: input's rank first)
    ("0-D input", lambda: (np.ones((), np.float32), arrs()[1], None), ShapeError,
     "batch1 must be a 3D tensor"),
    ("1-D input", lambda: (np.ones(4, np.float32), arrs()[1], None), ShapeError,
     "batch1 must be a 3D tensor"),
    ("2-D input", lambda: (np.ones((3, 4), np.float32), arrs()[1], full((2, 3, 5))), ShapeError,
     "batch1 must be a 3D tensor"),
    ("4-D input", lambda: (np.ones((1, 2, 3, 4), np.float32), arrs()[1], full((2, 3, 5))),
     ShapeError, "batch1 must be a 3D tensor"),
    ("2-D mat2", lambda: (arrs()[0], np.ones((4, 5), np.float32), full((2, 3, 5))), ShapeError,
     "batch2 must be a 3D tensor"),
    ("4-D mat2", lambda: (arrs()[0], np.ones((1, 2, 4, 5), np.float32), None), ShapeError,
     "batch2 must be a 3D tensor"),
    ("both 2-D", lambda: (np.ones((3, 4), np.float32), np.ones((4, 5), np.float32), None),
     ShapeError, "batch1 must be a 3D tensor"),
    ("np.matrix input", lambda: (np.matrix(np.ones((3, 4), np.float32)), arrs()[1], None),
     ShapeError, "batch1 must be a 3D tensor"),
    ("np.matrix mat2", lambda: (arrs()[0], np.matrix(np.ones((4, 5), np.float32)), None),
     ShapeError, "batch2 must be a 3D tensor"),
    # sizes
    ("batch mismatch", lambda: (*arrs(sa=(2, 1, 10), sb=(3, 10, 4)), full((2, 1, 4))), ShapeError,
     "Expected size for first two dimensions of batch2 tensor to be: [2, 10] but got: [3, 10]."),
    ("inner mismatch", lambda: (*arrs(sa=(2, 10, 1), sb=(2, 10, 4)), full((2, 10, 4))), ShapeError,
     "Expected size for first two dimensions of batch2 tensor to be: [2, 1] but got: [2, 10]."),
    ("zero vs nonzero batch", lambda: (*arrs(sa=(0, 1, 10), sb=(2, 10, 4)), None), ShapeError,
     "Expected size for first two dimensions of batch2 tensor to be: [0, 10] but got: [2, 10]."),
    ("no batch broadcasting", lambda: (*arrs(sa=(1, 3, 4), sb=(5, 4, 5)), None), ShapeError,
     "to be: [1, 4] but got: [5, 4]."),
    ("size error before dtype error", lambda: (*arrs(np.float32, np.float64, (2, 3, 4), (3, 4, 5)),
                                                None), ShapeError, "to be: [2, 4] but got: [3, 4]."),
    # dtypes torch has but bmm refuses
    ("bool", lambda: (*arrs(np.bool_), None), UnsupportedDtypeError,
     "\"bmm\" not implemented for 'Bool'"),
    ("uint16", lambda: (*arrs(np.uint16), full((2, 3, 5), np.uint16)), UnsupportedDtypeError,
     "\"bmm\" not implemented for 'UInt16'"),
    ("uint32", lambda: (*arrs(np.uint32), None), UnsupportedDtypeError,
     "\"bmm\" not implemented for 'UInt32'"),
    ("uint64", lambda: (*arrs(np.uint64), None), UnsupportedDtypeError,
     "\"bmm\" not implemented for 'UInt64'"),
    ("big-endian uint16", lambda: (*arrs(">u2"), None), UnsupportedDtypeError,
     "\"bmm\" not implemented for 'UInt16'"),
    # NumPy-only dtypes: the dtype is named
    ("object", lambda: (*unsupported(object)(), None), UnsupportedDtypeError, "dtype object"),
    ("str", lambda: (*unsupported("U1")(), None), UnsupportedDtypeError, "<U1"),
    ("bytes", lambda: (*unsupported("S1")(), None), UnsupportedDtypeError, "S1"),
    ("datetime64", lambda: (*unsupported("M8[s]")(), None), UnsupportedDtypeError,
     "datetime64[s]"),
    ("timedelta64", lambda: (*unsupported("m8[ms]")(), None), UnsupportedDtypeError,
     "timedelta64[ms]"),
    ("structured", lambda: (*unsupported([("x", "f4"), ("y", "i4")])(), None),
     UnsupportedDtypeError, "('x', '<f4')"),
    ("void", lambda: (*unsupported("V8")(), None), UnsupportedDtypeError, "V8"),
    ("longdouble", lambda: (*unsupported(np.longdouble)(), None), UnsupportedDtypeError,
     str(np.dtype(np.longdouble))),
    ("clongdouble", lambda: (*unsupported(np.clongdouble)(), None), UnsupportedDtypeError,
     str(np.dtype(np.clongdouble))),
    # dtype mismatches: input's type is "expected"
    ("float32 @ float64", lambda: (*arrs(np.float32, np.float64), full((2, 3, 5), np.float64)),
     DtypeError, "expected scalar type Float but found Double"),
    ("float64 @ float32", lambda: (*arrs(np.float64, np.float32), None), DtypeError,
     "expected scalar type Double but found Float"),
    ("int32 @ int64", lambda: (*arrs(np.int32, np.int64), None), DtypeError,
     "expected scalar type Int but found Long"),
    ("float16 @ complex64", lambda: (*arrs(np.float16, np.complex64), None), DtypeError,
     "expected scalar type Half but found ComplexFloat"),
    ("int8 @ uint8", lambda: (*arrs(np.int8, np.uint8), None), DtypeError,
     "expected scalar type Char but found Byte"),
    ("float32 @ bool", lambda: (*arrs(np.float32, np.bool_), None), DtypeError,
     "expected scalar type Float but found Bool"),
    ("float32 @ object", lambda: (arrs()[0], arrs()[1].astype(object), None), DtypeError,
     "expected scalar type Float but found object"),
    # out=
    ("out float64 for float32", lambda: (*arrs(), full((2, 3, 5), np.float64)), DtypeError,
     "Expected out tensor to have dtype float, but got double instead"),
    ("out int64 for int32", lambda: (*arrs(np.int32), full((2, 3, 5), np.int64)), DtypeError,
     "Expected out tensor to have dtype int, but got long int instead"),
    ("out complex64 for float16", lambda: (*arrs(np.float16), full((2, 3, 5), np.complex64)),
     DtypeError, "Expected out tensor to have dtype c10::Half, but got c10::complex<float> instead"),
    ("out bool", lambda: (*arrs(), full((2, 3, 5), np.bool_)), DtypeError,
     "Expected out tensor to have dtype float, but got bool instead"),
    ("out wrong shape", lambda: (*arrs(), full((2, 3, 4))), ShapeError, "(2, 3, 5)"),
    ("out wrong shape names both", lambda: (*arrs(), full((2, 5, 3))), ShapeError, "(2, 5, 3)"),
    ("out 2-D", lambda: (*arrs(), full((3, 5))), ShapeError, "(3, 5)"),
    ("out 4-D", lambda: (*arrs(), full((1, 2, 3, 5))), ShapeError, "(1, 2, 3, 5)"),
    ("out transposed shape", lambda: (*arrs(), full((2, 5, 3)).transpose(0, 2, 1)[:, :, :0]),
     ShapeError, "(2, 3, 0)"),
    ("out read-only", lambda: (*arrs(), readonly(full((2, 3, 5)))), ValueError, "read-only"),
    ("out broadcast_to", lambda: (*arrs(), np.broadcast_to(full((1, 3, 5)), (2, 3, 5))),
     ValueError, "read-only"),
    ("out zero stride, writable", lambda: (*arrs(), self_overlapping_out()), ValueError,
     "overlapping"),
    ("out overlapping rows, writable", lambda: (*arrs(), partially_overlapping_out()), ValueError,
     "overlapping"),
    # masked arrays are refused, not silently unmasked
    ("masked input", lambda: (np.ma.masked_less(arrs()[0], 0), arrs()[1], full((2, 3, 5))),
     TypeError, "masked array"),
    ("masked mat2", lambda: (arrs()[0], np.ma.masked_less(arrs()[1], 0), None), TypeError,
     "masked array"),
    ("masked out", lambda: (*arrs(), np.ma.masked_array(full((2, 3, 5)))), TypeError,
     "masked array"),
    ("masked without mask", lambda: (np.ma.asarray(arrs()[0]), arrs()[1], None), TypeError,
     "masked array"),
]


def _snapshot(x):
    if isinstance(x, np.ndarray):
        return np.array(x, copy=True, subok=False)
    return None


def _same(x, before):
    if before is None:
        return True
    now = np.asarray(x)
    if now.dtype.kind in "OUSV" or now.dtype.names:
        return now.tobytes() == before.tobytes()
    return np.array_equal(now, before, equal_nan=now.dtype.kind in "fc")


@pytest.mark.parametrize("name, make, exc, msg", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_call_raises_and_writes_nothing(name, make, exc, msg):
    x, y, out = make()
    snaps = [_snapshot(v) for v in (x, y, out)]
    kwargs = {} if out is None else {"out": out}
    with pytest.raises(exc, match=re.escape(msg)):
        fastbmm.bmm(x, y, **kwargs)
    for v, s in zip((x, y, out), snaps):
        assert _same(v, s), f"{name}: an argument was modified by a failing call"
    if isinstance(out, np.ndarray) and out.dtype.kind not in "b" and out.size:
        assert np.all(np.asarray(out) == SENTINEL)


@pytest.mark.parametrize("exc, parents", [
    (ShapeError, (RuntimeError, ValueError)),
    (DtypeError, (RuntimeError, TypeError)),
    (UnsupportedDtypeError, (NotImplementedError, TypeError)),
])
def test_error_classes_serve_both_habits(exc, parents):
    """torch callers catch RuntimeError, NumPy callers ValueError/TypeError: both work."""
    assert issubclass(exc, parents)
    cases = {ShapeError: arrs(sa=(2, 3, 4), sb=(2, 5, 5)),
             DtypeError: arrs(np.float32, np.float64),
             UnsupportedDtypeError: arrs(np.uint32)}
    for parent in parents:
        with pytest.raises(parent):
            fastbmm.bmm(*cases[exc])


def test_np_matrix_3d_is_impossible_but_2d_matrix_product_refused():
    # np.matrix is always 2-D; torch.bmm refuses 2-D: so does fastbmm, for both operands.
    m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ShapeError, match="batch1 must be a 3D tensor"):
        fastbmm.bmm(m, m)


def test_other_subclasses_are_read_as_arrays(tmp_path):
    """np.memmap inputs and out= work (as plain arrays); out= keeps its identity."""
    a, b = arrs()
    mm = np.memmap(tmp_path / "a.bin", dtype=np.float32, mode="w+", shape=a.shape)
    mm[...] = a
    out = np.memmap(tmp_path / "o.bin", dtype=np.float32, mode="w+", shape=(2, 3, 5))
    got = fastbmm.bmm(mm, b, out=out)
    assert got is out
    np.testing.assert_array_equal(np.asarray(out), np.matmul(a, b))


# ----------------------------------------------------------------------------
# Call syntax
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("call, msg", [
    (lambda a, b, o: fastbmm.bmm(a, b, ot=o), "ot"),
    (lambda a, b, o: fastbmm.bmm(a, b, output=o), "output"),
    (lambda a, b, o: fastbmm.bmm(a, b, o), "positional"),
    (lambda a, b, o: fastbmm.bmm(a, b, None), "positional"),
    (lambda a, b, o: fastbmm.bmm(a), "positional"),
    (lambda a, b, o: fastbmm.bmm(), "positional"),
    (lambda a, b, o: fastbmm.bmm(a, b, out=o, input=a), "input"),
    (lambda a, b, o: fastbmm.bmm(a, b, out_dtype=np.int64), "out_dtype"),
], ids=["typo ot", "typo output", "positional out", "positional None", "one arg", "no args",
        "input twice", "out_dtype"])
def test_call_syntax_errors(call, msg):
    a, b = arrs()
    out = full((2, 3, 5))
    with pytest.raises(TypeError, match=msg):
        call(a, b, out)
    np.testing.assert_array_equal(out, SENTINEL)


def test_keyword_operands_like_torch():
    a, b = arrs()
    np.testing.assert_array_equal(fastbmm.bmm(input=a, mat2=b), np.matmul(a, b))


# ----------------------------------------------------------------------------
# out= aliasing an input works (unlike torch, which silently returns garbage)
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128, np.int16, np.int64])
@pytest.mark.parametrize("n", [3, 40])
def test_out_aliasing_inputs_gives_right_values(dtype, n):
    rng = np.random.default_rng(n)
    dtype = np.dtype(dtype)

    def draw():
        v = rng.integers(-3, 4, size=(2, n, n))
        if dtype.kind == "c":
            v = v + 1j * rng.integers(-3, 4, size=(2, n, n))
        return v.astype(dtype)

    def exact(p, q):  # small integers: exact in int64 / complex128, then the cast wraps
        wide = np.complex128 if dtype.kind == "c" else np.int64
        return np.matmul(p.astype(wide), q.astype(wide)).astype(dtype)

    x, y = draw(), draw()
    want_xx, want_xy, want_xxt = exact(x, x), exact(x, y), exact(x, x.transpose(0, 2, 1))

    x1 = x.copy()
    assert fastbmm.bmm(x1, x1, out=x1) is x1
    np.testing.assert_array_equal(x1, want_xx)
    x2, y2 = x.copy(), y.copy()
    assert fastbmm.bmm(x2, y2, out=y2) is y2
    np.testing.assert_array_equal(y2, want_xy)
    np.testing.assert_array_equal(x2, x)
    x3 = x.copy()
    assert fastbmm.bmm(x3, x3.transpose(0, 2, 1), out=x3) is x3
    np.testing.assert_array_equal(x3, want_xxt)
    # out= a transposed view of the input: out^T = x @ x  ->  x = (x @ x)^T
    x4 = x.copy()
    fastbmm.bmm(x4, x4, out=x4.transpose(0, 2, 1))
    np.testing.assert_array_equal(x4, want_xx.transpose(0, 2, 1))


def test_failing_call_with_aliased_out_writes_nothing():
    a = full((2, 4, 4))
    with pytest.raises(DtypeError):
        fastbmm.bmm(a, a.astype(np.float64), out=a)
    np.testing.assert_array_equal(a, SENTINEL)


# ----------------------------------------------------------------------------
# Thread counts
# ----------------------------------------------------------------------------

BAD_THREADS = [
    (0, ValueError), (-1, ValueError), (-(2 ** 70), ValueError), (10 ** 6, ValueError),
    (2 ** 64, ValueError), (4097, ValueError),
    ("a string", TypeError), ("4", TypeError), (1.5, TypeError), (2.0, TypeError),
    (True, TypeError), (False, TypeError), ([2], TypeError),
    (complex(2, 0), TypeError),
]


@pytest.mark.parametrize("value, exc", BAD_THREADS, ids=[repr(v) for v, _ in BAD_THREADS])
def test_bad_thread_counts(value, exc):
    before = fastbmm.get_num_threads()
    with pytest.raises(exc, match="set_num_threads"):
        fastbmm.set_num_threads(value)
    assert fastbmm.get_num_threads() == before
    # and the library still works afterwards
    a, b = arrs(np.int32)
    np.testing.assert_array_equal(fastbmm.bmm(a, b), np.matmul(a, b))


@pytest.mark.parametrize("value", [np.int64(2), np.int32(2), np.uint8(2)],
                         ids=["int64", "int32", "uint8"])
def test_numpy_integer_thread_count_accepted_like_torch(value):
    """torch.set_num_threads takes any integer with __index__ (np.int64 from arithmetic)."""
    before = fastbmm.get_num_threads()
    try:
        fastbmm.set_num_threads(value)
        assert fastbmm.get_num_threads() == 2
    finally:
        fastbmm.set_num_threads(before)


@pytest.mark.parametrize("value, exc", [(np.bool_(True), TypeError), (np.int64(0), ValueError),
                                        (np.int64(-3), ValueError), (np.float64(2.0), TypeError)],
                         ids=["np.bool_", "np.int64(0)", "np.int64(-3)", "np.float64"])
def test_numpy_scalar_bad_thread_counts(value, exc):
    before = fastbmm.get_num_threads()
    with pytest.raises(exc, match="set_num_threads"):
        fastbmm.set_num_threads(value)
    assert fastbmm.get_num_threads() == before


@pytest.mark.parametrize("n", [1, 2, 3, 4096])
def test_good_thread_counts_take_effect(n):
    before = fastbmm.get_num_threads()
    try:
        fastbmm.set_num_threads(n)
        assert fastbmm.get_num_threads() == n
        a, b = arrs(np.int64, sa=(3, 50, 60), sb=(3, 60, 70))
        np.testing.assert_array_equal(fastbmm.bmm(a, b), np.matmul(a, b))
    finally:
        fastbmm.set_num_threads(before)
