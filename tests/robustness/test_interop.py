"""Zero-copy input from other array libraries: DLPack (a CPU torch tensor, or any object
with __dlpack__/__dlpack_device__) and the NumPy array interface.

Zero-copy is checked with tracemalloc: NumPy reports its data allocations to it, so
a copy of a large operand shows up as a traced allocation of its size (calibrated in
each test: the same measurement around an explicit np.array copy must see it).
"""

import tracemalloc

import numpy as np
import pytest

import fastbmm

from _helpers import assert_bmm_close, check_torch, random_values, seeded_rng, sentinel, snapshot

torch = pytest.importorskip("torch")


class ArrayInterfaceOnly:
    """Exposes only __array_interface__ (no __array__, no buffer protocol, no __dlpack__)."""

    def __init__(self, arr):
        self._arr = arr

    @property
    def __array_interface__(self):
        return self._arr.__array_interface__


class ArrayStructOnly:
    def __init__(self, arr):
        self._arr = arr

    @property
    def __array_struct__(self):
        return self._arr.__array_struct__


class DLPackOnly:
    """Exposes only __dlpack__ / __dlpack_device__ (a CPU array)."""

    def __init__(self, arr):
        self._arr = arr
        self.calls = 0

    def __dlpack__(self, *args, **kwargs):
        self.calls += 1
        return self._arr.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._arr.__dlpack_device__()


class FakeCudaTensor:
    """A DLPack producer that claims to live on a CUDA device (kDLCUDA == 2)."""

    def __init__(self, device_id=0):
        self.device_id = device_id
        self.exported = False

    def __dlpack_device__(self):
        return (2, self.device_id)

    def __dlpack__(self, *args, **kwargs):
        self.exported = True
        raise BufferError("export refused")  # nothing CPU-readable behind it


def _pair(seed, shape_a=(3, 5, 7), shape_b=(3, 7, 4), dtype=np.float32):
    rng = seeded_rng(seed)
    return random_values(rng, shape_a, dtype), random_values(rng, shape_b, dtype)


# ----------------------------------------------------------------------------
# Values through every kind of producer
# ----------------------------------------------------------------------------

WRAPPERS = {
    "torch": lambda x: torch.from_numpy(x),
    "array_interface": ArrayInterfaceOnly,
    "array_struct": ArrayStructOnly,
    "dlpack": DLPackOnly,
}


@pytest.mark.parametrize("wrap", list(WRAPPERS))
@pytest.mark.parametrize("which", ["a", "b", "both"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64, np.int8, np.int64])
def test_bmm_accepts_foreign_arrays(wrap, which, dtype):
    a, b = _pair(("bmm", wrap, which, np.dtype(dtype).name), dtype=dtype)
    w = WRAPPERS[wrap]
    wa = w(a) if which in ("a", "both") else a
    wb = w(b) if which in ("b", "both") else b
    got = fastbmm.bmm(wa, wb)
    assert type(got) is np.ndarray
    assert_bmm_close(got, a, b)


@pytest.mark.parametrize("wrap", list(WRAPPERS))
def test_matmul_and_baddbmm_accept_foreign_arrays(wrap):
    w = WRAPPERS[wrap]
    rng = seeded_rng("mm", wrap)
    a = random_values(rng, (2, 1, 6, 5), np.float64)
    b = random_values(rng, (3, 5, 4), np.float64)
    got = fastbmm.matmul(w(a), w(b))
    assert type(got) is np.ndarray
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-13, atol=1e-13)
    v = random_values(rng, (5,), np.float64)
    np.testing.assert_allclose(fastbmm.matmul(w(v), w(b)), np.matmul(v, b), rtol=1e-13, atol=1e-13)
    inp = random_values(rng, (4,), np.float64)
    a3, b3 = random_values(rng, (3, 6, 5), np.float64), b
    got = fastbmm.baddbmm(w(inp), w(a3), w(b3), beta=0.5, alpha=-2)
    assert type(got) is np.ndarray
    np.testing.assert_allclose(got, 0.5 * inp - 2 * np.matmul(a3, b3), rtol=1e-13, atol=1e-13)


def test_strided_torch_tensors():
    rng = seeded_rng("strided")
    base_a = torch.from_numpy(random_values(rng, (3, 7, 5), np.float32))
    base_b = torch.from_numpy(random_values(rng, (6, 9, 8), np.float32))
    ta = base_a.transpose(1, 2)          # (3, 5, 7), transposed
    tb = base_b[::2, 1:8, ::2]           # (3, 7, 4), stepped, with a storage offset
    assert not ta.is_contiguous() and not tb.is_contiguous()
    got = fastbmm.bmm(ta, tb)
    assert_bmm_close(got, ta.numpy(), tb.numpy(), factor=1.0)
    check_torch(assert_bmm_close, lambda: torch.bmm(ta, tb).numpy(), ta.numpy(), tb.numpy(),
                what="torch.bmm")
    # An expanded (zero-stride) tensor.
    te = torch.from_numpy(random_values(rng, (1, 5, 7), np.float32)).expand(3, 5, 7)
    assert_bmm_close(fastbmm.bmm(te, tb), te.numpy(), tb.numpy())


def test_torch_results_match_torch():
    rng = seeded_rng("tm")
    ta = torch.from_numpy(random_values(rng, (2, 1, 9, 16), np.float64))
    tb = torch.from_numpy(random_values(rng, (3, 16, 11), np.float64))
    close = dict(rtol=1e-12, atol=1e-12)
    wide = np.longdouble
    expected = np.matmul(ta.numpy().astype(wide), tb.numpy().astype(wide)).astype(np.float64)
    np.testing.assert_allclose(fastbmm.matmul(ta, tb), expected, **close)
    check_torch(np.testing.assert_allclose, lambda: torch.matmul(ta, tb).numpy(), expected,
                what="torch.matmul", **close)
    ti = torch.from_numpy(random_values(rng, (11,), np.float64))
    a3 = torch.from_numpy(random_values(rng, (3, 9, 16), np.float64))
    expected = (2 * ti.numpy().astype(wide)
                + 0.5 * np.matmul(a3.numpy().astype(wide), tb.numpy().astype(wide))).astype(np.float64)
    np.testing.assert_allclose(fastbmm.baddbmm(ti, a3, tb, beta=2, alpha=0.5), expected, **close)
    check_torch(np.testing.assert_allclose, lambda: torch.baddbmm(ti, a3, tb, beta=2, alpha=0.5).numpy(),
                expected, what="torch.baddbmm", **close)


def test_out_may_alias_a_torch_input():
    # out= is the torch tensor's own memory: the right values, as for ndarrays.
    rng = seeded_rng("alias")
    x = random_values(rng, (2, 6, 6), np.float64)
    b = random_values(rng, (2, 6, 6), np.float64)
    expected = np.matmul(x, b)
    t = torch.from_numpy(x.copy())
    out = t.numpy()
    r = fastbmm.bmm(t, b, out=out)
    assert r is out
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-13, atol=1e-13)


def test_dlpack_only_object_is_used_through_dlpack():
    a, b = _pair("dlcalls")
    wa = DLPackOnly(a)
    assert_bmm_close(fastbmm.bmm(wa, b), a, b)
    assert wa.calls >= 1


# ----------------------------------------------------------------------------
# Zero-copy
# ----------------------------------------------------------------------------

M = 1 << 21  # 2**21 float32 = 8 MiB per operand


def _peak(fn):
    tracemalloc.start()
    try:
        r = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return r, peak


@pytest.mark.parametrize("wrap", list(WRAPPERS))
def test_large_input_not_copied(wrap):
    rng = seeded_rng("zc", wrap)
    a = rng.standard_normal((1, 1, M), dtype=np.float32)
    b = rng.standard_normal((1, M, 1), dtype=np.float32)
    nbytes = a.nbytes
    w = WRAPPERS[wrap]
    wa, wb = w(a), w(b)
    fastbmm.bmm(a[:, :, :8], b[:, :8])  # warm up
    # Calibration: a copy of one operand is visible to this measurement.
    _, peak_copy = _peak(lambda: np.array(a, copy=True))
    assert peak_copy >= nbytes
    got, peak = _peak(lambda: fastbmm.bmm(wa, wb))
    assert peak < nbytes // 4, f"{peak} bytes allocated while multiplying two {nbytes}-byte {wrap} operands: a copy?"
    expected = float(np.dot(a.ravel().astype(np.float64), b.ravel().astype(np.float64)))
    assert abs(float(got[0, 0, 0]) - expected) <= 2 * M * 2.0 ** -24 * float(
        np.dot(np.abs(a.ravel()).astype(np.float64), np.abs(b.ravel()).astype(np.float64))) + 1e-6


def test_mutation_is_seen_through_an_array_interface_view():
    # No snapshot is cached between calls: the producer's memory is read each time.
    a, b = _pair("mut", (1, 2, 3), (1, 3, 2), np.float64)
    wa = ArrayInterfaceOnly(a)
    t = torch.from_numpy(b)
    first = fastbmm.bmm(wa, t)
    a *= 2
    t.mul_(3)
    second = fastbmm.bmm(wa, t)
    np.testing.assert_allclose(second, 6 * first, rtol=1e-14)


# ----------------------------------------------------------------------------
# Things that must be refused
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 1])
@pytest.mark.parametrize("fn", ["bmm", "matmul", "baddbmm"])
def test_gpu_dlpack_object_gives_clear_error(fn, position):
    a, b = _pair("gpu")
    fake = FakeCudaTensor(device_id=1)
    args = [a, b] if fn != "baddbmm" else [np.zeros((4,), np.float32), a, b]
    args[position] = fake
    out = np.full((3, 5, 4), sentinel(np.float32), np.float32)
    before = snapshot(out, a, b)
    with pytest.raises((BufferError, TypeError, ValueError, RuntimeError)) as info:
        getattr(fastbmm, fn)(*args, out=out)
    msg = str(info.value).lower()
    assert "device" in msg or "cuda" in msg or "gpu" in msg, str(info.value)
    assert "export refused" not in str(info.value), "the error should say why (the device), not relay the producer's"
    assert snapshot(out, a, b) == before


@pytest.mark.parametrize("fn,names", [("bmm", ["input", "mat2"]), ("matmul", ["input", "other"]),
                                      ("baddbmm", ["input", "batch1", "batch2"])])
@pytest.mark.parametrize("obj", [[[[1.0]]], ((1.0,),), 1.0, 3, None, "abc"], ids=["list", "tuple", "float", "int", "None", "str"])
def test_non_arrays_still_refused(fn, names, obj):
    a, b = _pair("lists", (1, 1, 1), (1, 1, 1))
    base = [a, b] if fn != "baddbmm" else [np.zeros((1,), np.float32), a, b]
    for pos, name in enumerate(names):
        args = list(base)
        args[pos] = obj
        msg = f"{fn}(): argument '{name}' (position {pos + 1}) must be ndarray, not {type(obj).__name__}"
        with pytest.raises(TypeError) as info:
            getattr(fastbmm, fn)(*args)
        assert str(info.value) == msg
        # torch says the same with "Tensor".
        targs = [torch.from_numpy(x) if isinstance(x, np.ndarray) else x for x in args]
        with pytest.raises(TypeError) as tinfo:
            getattr(torch, fn)(*targs)
        assert str(tinfo.value) == msg.replace("ndarray", "Tensor")


@pytest.mark.parametrize("dtype,name", [(torch.bool, "Bool"), (torch.uint16, "UInt16")])
def test_torch_tensor_of_refused_dtype(dtype, name):
    t = torch.ones((1, 2, 2), dtype=dtype)
    with pytest.raises(NotImplementedError) as info:
        fastbmm.bmm(t, t)
    assert str(info.value) == f"\"bmm\" not implemented for '{name}'"


def _torch_scalar_name(dtype):
    """torch's own name for a dtype, read from the message of torch's expand()."""
    import re

    try:
        _empty_tensor(dtype).expand(2)
    except RuntimeError as e:
        m = re.match(r"expand\((?:torch\.(\w+)Tensor|(?:Quantized)?CPU(\w+)Type)\{", str(e))
        assert m, str(e)
        return m.group(1) or m.group(2)
    raise AssertionError("expand() did not fail")


def _empty_tensor(dtype):
    import warnings

    with warnings.catch_warnings():     # complex32 is "experimental", quantized "deprecated"
        warnings.simplefilter("ignore")
        return torch.empty((1, 2, 2), dtype=dtype)


def _torch_dtypes_numpy_lacks():
    """Every torch dtype np.from_dlpack cannot read (bfloat16, complex32, float8, ...)."""
    found = []
    for dtype in sorted({v for v in vars(torch).values() if isinstance(v, torch.dtype)}, key=str):
        try:
            t = _empty_tensor(dtype)
        except Exception:  # noqa: BLE001 - a dtype torch cannot make a tensor of here
            continue
        try:
            np.from_dlpack(t)
        except Exception:  # noqa: BLE001 - NumPy raises RuntimeError, BufferError, ...
            found.append(dtype)
    return found


TORCH_DTYPES_NUMPY_LACKS = _torch_dtypes_numpy_lacks()
# ... less those fastbmm computes through ml_dtypes (bfloat16; tests/bmm/test_bfloat16.py,
# which also checks the refusal, naming the extra, where ml_dtypes is missing)
try:
    import ml_dtypes  # noqa: F401
    REFUSED_TORCH_DTYPES = [d for d in TORCH_DTYPES_NUMPY_LACKS if d != torch.bfloat16]
except ImportError:
    REFUSED_TORCH_DTYPES = TORCH_DTYPES_NUMPY_LACKS


def test_torch_dtypes_numpy_lacks_include_the_known_ones():
    assert {torch.bfloat16, torch.complex32, torch.float8_e4m3fn} <= set(TORCH_DTYPES_NUMPY_LACKS)


@pytest.mark.parametrize("fn", ["bmm", "matmul", "baddbmm"])
@pytest.mark.parametrize("dtype", REFUSED_TORCH_DTYPES, ids=[str(d)[6:] for d in REFUSED_TORCH_DTYPES])
def test_torch_dtype_numpy_lacks_gives_unsupported_dtype_error(fn, dtype):
    # NumPy's raw "RuntimeError: Unsupported dtype in DLTensor." (or BufferError)
    # leaked before (issue 9, item 14): fastbmm's UnsupportedDtypeError, naming the
    # dtype as torch does ('BFloat16', 'ComplexHalf', 'Float8_e4m3fn', ...).
    t = _empty_tensor(dtype)
    ok = np.zeros((1, 2, 2), np.float32)
    args = {"bmm": (t, ok), "matmul": (ok, t), "baddbmm": (ok, t, ok)}[fn]
    with pytest.raises(fastbmm.UnsupportedDtypeError) as info:
        getattr(fastbmm, fn)(*args)
    assert isinstance(info.value, TypeError) and isinstance(info.value, NotImplementedError)
    name = _torch_scalar_name(dtype)
    position_name = {"bmm": "input", "matmul": "other", "baddbmm": "batch1"}[fn]
    assert f"argument '{position_name}' has torch dtype {name} ({dtype})" in str(info.value)


@pytest.mark.parametrize("fn", ["bmm", "matmul", "baddbmm"])
def test_meta_tensor_gives_clear_error(fn):
    # a meta tensor has no data; DLPack has no device type for it (raw ValueError before)
    t = torch.ones((1, 2, 2), device="meta")
    ok = np.zeros((1, 2, 2), np.float32)
    args = {"bmm": (t, ok), "matmul": (t, ok), "baddbmm": (t, ok, ok)}[fn]
    with pytest.raises(TypeError, match=r"^" + fn + r"\(\): argument 'input' lives on the meta device"):
        getattr(fastbmm, fn)(*args)


def test_object_whose_dlpack_device_fails_gives_clear_error():
    class BadDevice(DLPackOnly):
        def __dlpack_device__(self):
            raise ValueError("no such device")

    with pytest.raises(TypeError, match=r"^bmm\(\): argument 'mat2' lives on a device DLPack cannot "
                                        r"name \(no such device\)"):
        fastbmm.bmm(np.ones((1, 2, 2)), BadDevice(np.ones((1, 2, 2))))


@pytest.mark.parametrize("fn", ["bmm", "matmul", "baddbmm"])
def test_dask_array_points_to_fastbmm_dask(fn):
    da = pytest.importorskip("dask.array")
    x = da.ones((1, 2, 2), chunks=1)
    ok = np.ones((1, 2, 2))
    with pytest.raises(TypeError) as info:
        getattr(fastbmm, fn)(ok, x) if fn != "baddbmm" else fastbmm.baddbmm(ok, ok, x)
    where = "fastbmm.dask multiplies chunked arrays" if fn == "baddbmm" else f"fastbmm.dask.{fn}(...)"
    pos = {"bmm": "mat2' (position 2)", "matmul": "other' (position 2)", "baddbmm": "batch2' (position 3)"}[fn]
    assert str(info.value).startswith(f"{fn}(): argument '{pos} is a dask.array.core.Array")
    assert where in str(info.value)


def test_torch_dtype_mismatch_uses_torch_text():
    ta = torch.ones((2, 1, 10), dtype=torch.float32)
    tb = torch.ones((2, 10, 4), dtype=torch.float64)
    with pytest.raises(RuntimeError) as info:
        fastbmm.bmm(ta, tb)
    assert str(info.value) == "expected scalar type Float but found Double"


def _lazy_bit_cases():
    """(tensor with torch's lazy conj or neg bit, the values it stands for)."""
    rng = seeded_rng("lazy_bits")
    c = torch.from_numpy(random_values(rng, (2, 3, 4), np.complex128))
    tc, tn = c.conj(), c.conj().imag
    assert tc.is_conj() and tn.is_neg()
    return {"conj": (tc, np.conj(c.numpy())), "neg": (tn, -c.numpy().imag)}


@pytest.mark.parametrize("bit", ["conj", "neg"])
@pytest.mark.parametrize("fn", ["bmm", "matmul", "baddbmm"])
def test_torch_lazy_bits_resolved_in_every_entry_point(fn, bit):
    # DLPack cannot carry torch's lazy conjugation/negation: exported as is, the
    # values would come out unconjugated / with flipped signs. Every entry point
    # reads them through one intake that resolves them (fastbmm.dask's: test_dask).
    t, values = _lazy_bit_cases()[bit]
    b = random_values(seeded_rng("lazy_b", bit), (2, 4, 5), values.dtype)
    expected = np.matmul(values, b)
    if fn == "baddbmm":
        got = fastbmm.baddbmm(np.zeros((5,), values.dtype), t, b)
    else:
        got = getattr(fastbmm, fn)(t, b)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    # torch's own product of the same tensors, for the record
    check_torch(lambda r, e: np.testing.assert_allclose(r, e, rtol=1e-13, atol=1e-13),
                lambda: torch.bmm(t, torch.from_numpy(b)).numpy(), expected, what="torch.bmm")


@pytest.mark.parametrize("fn", ["bmm", "matmul", "baddbmm"])
def test_torch_tensor_requiring_grad_refused_by_name(fn):
    # torch refuses to export it (a raw BufferError); fastbmm's results are outside
    # autograd, so it refuses too, saying why and what to do.
    t = torch.full((1, 2, 2), 3.0, requires_grad=True)
    ok = np.ones((1, 2, 2), np.float32)
    args = (t, ok, ok) if fn == "baddbmm" else (t, ok)
    with pytest.raises(TypeError, match=r"^" + fn + r"\(\): argument 'input' requires grad; .*"
                                        r"tensor\.detach\(\)"):
        getattr(fastbmm, fn)(*args)
    np.testing.assert_array_equal(fastbmm.bmm(t.detach(), ok), np.full((1, 2, 2), 6.0, np.float32))


def test_masked_array_still_refused():
    with pytest.raises(TypeError):
        fastbmm.bmm(np.ma.ones((1, 2, 2)), np.ones((1, 2, 2)))
