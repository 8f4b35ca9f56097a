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

from _reference import assert_bmm_close, check_torch, random_values, seeded_rng, sentinel, snapshot

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


def test_torch_bfloat16_refused_cleanly():
    t = torch.ones((1, 2, 2), dtype=torch.bfloat16)
    with pytest.raises((TypeError, NotImplementedError, ValueError, BufferError, RuntimeError)) as info:
        fastbmm.bmm(t, t)
    assert "bfloat16" in str(info.value).lower() or "dtype" in str(info.value).lower(), str(info.value)


def test_torch_dtype_mismatch_uses_torch_text():
    ta = torch.ones((2, 1, 10), dtype=torch.float32)
    tb = torch.ones((2, 10, 4), dtype=torch.float64)
    with pytest.raises(RuntimeError) as info:
        fastbmm.bmm(ta, tb)
    assert str(info.value) == "expected scalar type Float but found Double"


def test_torch_conjugate_view_never_gives_wrong_values():
    # A lazily conjugated tensor: torch refuses to export it; fastbmm must either
    # refuse too or use the conjugated values -- never the unconjugated memory.
    rng = seeded_rng("conj")
    t = torch.from_numpy(random_values(rng, (1, 3, 4), np.complex128))
    b = random_values(rng, (1, 4, 2), np.complex128)
    tc = t.conj()
    assert tc.is_conj()
    try:
        got = fastbmm.bmm(tc, b)
    except (BufferError, TypeError, ValueError, RuntimeError):
        return
    np.testing.assert_allclose(got, np.matmul(np.conj(t.numpy()), b), rtol=1e-13, atol=1e-13)


def test_torch_negative_view_never_gives_wrong_values():
    # c.conj().imag is a public way to get a tensor with torch's negative bit set.
    # torch's DLPack export ignores that bit (np.from_dlpack returns the un-negated
    # memory), while torch's own numpy() refuses it. fastbmm must refuse or negate.
    rng = seeded_rng("neg")
    c = torch.from_numpy(random_values(rng, (1, 3, 4), np.complex128))
    tn = c.conj().imag
    assert tn.is_neg()
    b = random_values(rng, (1, 4, 2), np.float64)
    expected = np.matmul(-c.numpy().imag, b)
    check_torch(np.testing.assert_allclose, lambda: torch.bmm(tn, torch.from_numpy(b)).numpy(), expected,
                what="torch.bmm", rtol=1e-13, atol=1e-13)
    try:
        got = fastbmm.bmm(tn, b)
    except (BufferError, TypeError, ValueError, RuntimeError):
        return
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


def test_torch_tensor_requiring_grad():
    # torch refuses to export it (BufferError): fastbmm may refuse it too (an ordinary
    # exception, no crash) or read its values; never wrong values.
    t = torch.full((1, 2, 2), 3.0, requires_grad=True)
    try:
        got = fastbmm.bmm(t, np.ones((1, 2, 2), np.float32))
    except (BufferError, TypeError, ValueError, RuntimeError):
        return
    np.testing.assert_array_equal(got, np.full((1, 2, 2), 6.0, np.float32))


def test_masked_array_still_refused():
    with pytest.raises(TypeError):
        fastbmm.bmm(np.ma.ones((1, 2, 2)), np.ones((1, 2, 2)))
