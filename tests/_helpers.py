"""The test suite's shared helpers: its one home for them.

* where things are (``TESTS``, ``REPO``), the kernel variants to run
  (``KERNELS``), and the suite's own modules wherever they lie (``suite_module``);
* independent reference results, tolerances (``assert_close``) and
  array-layout builders: no expected value calls fastbmm, each is computed
  by NumPy in a wider type (floats) or with modular arithmetic (integers);
* torch as a second oracle (``check_torch``) and its error texts (``torch_error``);
* long inner sums whose exact value is known (``absorbing_operands``).

Fixtures are in conftest.py.
"""

import contextlib
import importlib
import math
import os
import sys

import numpy as np

import fastbmm._runtime as _runtime

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)

#: The kernel variants this CPU runs (the ``kernel`` fixture runs each in turn).
KERNELS = list(_runtime.available_kernels())


def variants_and_nests(nests):
    """(kernel variant, nest) for every nest ``nests()`` (e.g. ``_runtime.int_kernels``)
    lists in each runnable variant: the params of a fixture that forces both."""
    previous = _runtime.get_kernel()
    pairs = []
    try:
        for variant in KERNELS:
            _runtime.set_kernel(variant)
            pairs += [(variant, nest) for nest in nests()]
    finally:
        _runtime.set_kernel(previous)
    return pairs


@contextlib.contextmanager
def forced_variant_and_nest(variant, nest, set_nest, get_nest):
    """Run the block with kernel `variant` and, in it, `nest` forced through
    ``set_nest`` (``_runtime.set_int_kernel``, ...); both restored after it."""
    previous = _runtime.get_kernel()
    _runtime.set_kernel(variant)
    try:
        set_nest(nest)
        assert get_nest() == nest
        yield
    finally:
        set_nest(None)
        _runtime.set_kernel(previous)


def suite_module(name):
    """The test module ``name`` (e.g. "test_values"), wherever under tests/ it lies.

    pytest imports each test file under its own name (no folder has an
    __init__.py): the module it made, if it has, is this one too.
    """
    if name not in sys.modules:
        for folder, _, files in os.walk(TESTS):
            if name + ".py" in files:
                sys.path.insert(0, folder)
                break
    return importlib.import_module(name)

FLOAT_DTYPES = [np.dtype(t) for t in (np.float16, np.float32, np.float64)]
COMPLEX_DTYPES = [np.dtype(t) for t in (np.complex64, np.complex128)]
INT_DTYPES = [np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.int32, np.int64)]
SUPPORTED_DTYPES = FLOAT_DTYPES + COMPLEX_DTYPES + INT_DTYPES
REFUSED_DTYPES = [np.dtype(t) for t in (np.bool_, np.uint16, np.uint32, np.uint64)]

TORCH_SCALAR_NAMES = {
    "float16": "Half", "float32": "Float", "float64": "Double",
    "complex64": "ComplexFloat", "complex128": "ComplexDouble",
    "int8": "Char", "uint8": "Byte", "int16": "Short", "int32": "Int", "int64": "Long",
    "bool": "Bool", "uint16": "UInt16", "uint32": "UInt32", "uint64": "UInt64",
}
TORCH_CPP_NAMES = {
    "float16": "c10::Half", "float32": "float", "float64": "double",
    "complex64": "c10::complex<float>", "complex128": "c10::complex<double>",
    "int8": "signed char", "uint8": "unsigned char", "int16": "short int",
    "int32": "int", "int64": "long int",
}

# Unit roundoff of each float type.
_U16, _U32, _U64 = 2.0 ** -11, 2.0 ** -24, 2.0 ** -53


def native(dtype):
    dtype = np.dtype(dtype)
    return dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype


def _as_native(x):
    return np.asarray(x).astype(native(x.dtype), copy=True)


def reference_bmm(a, b, out_dtype=None):
    """Expected value of bmm(a, b) (any layout, any byte order) as a native ``out_dtype`` array."""
    a, b = _as_native(a), _as_native(b)
    dt = native(out_dtype if out_dtype is not None else a.dtype)
    shape = (a.shape[0], a.shape[1], b.shape[2])
    if dt.kind in "iu":
        # Exact modulo 2**64 (unsigned arithmetic is defined to wrap), then the cast
        # to the narrower type wraps modulo 2**bits: two's-complement semantics.
        r = np.matmul(a.astype(np.uint64), b.astype(np.uint64))
        return r.reshape(shape).astype(dt)
    if dt == np.float16:
        # float16 inputs are exact in float64; round the (essentially exact) sum once.
        r = np.matmul(a.astype(np.float64), b.astype(np.float64))
        return r.reshape(shape).astype(np.float16)
    if dt == np.float32:
        return np.matmul(a.astype(np.float64), b.astype(np.float64)).reshape(shape)
    if dt == np.float64:
        return np.matmul(a.astype(np.longdouble), b.astype(np.longdouble)).reshape(shape)
    if dt.kind == "c":
        return np.matmul(a.astype(np.clongdouble), b.astype(np.clongdouble)).reshape(shape)
    raise TypeError(f"no reference for {dt}")


def abs_bound(a, b):
    """|a| @ |b| in float64: the scale against which summation error is measured.

    Measuring error against this (not against |a @ b|) means cancellation in the
    exact result cannot produce false failures.
    """
    a, b = _as_native(a), _as_native(b)
    return np.matmul(np.abs(a).astype(np.float64), np.abs(b).astype(np.float64))


def tolerance(dtype, a, b, ref):
    """Elementwise absolute tolerance for bmm(a, b) of ``dtype`` against ``ref``.

    Rigorous worst-case bounds for any summation order (with or without FMA),
    times a safety factor of 2: error <= m*u*(|a|@|b|) for the sum, plus the
    final rounding to ``dtype``. Integers are exact (tolerance 0).
    """
    dt = native(dtype)
    m = a.shape[2]
    if dt.kind in "iu":
        return np.zeros(ref.shape)
    s = abs_bound(a, b)
    mag = np.abs(ref.astype(np.complex128 if dt.kind == "c" else np.float64))
    if dt == np.float16:
        # float32 accumulation (products of halves are exact in float32), then one
        # rounding to half: sum error + up to one half-ulp step each side.
        return 2 * (m + 1) * _U32 * s + 4 * _U16 * mag + 2.0 ** -24
    if dt == np.float32:
        return 2 * (m + 1) * _U32 * s + 2 * _U32 * mag + 1e-37
    if dt == np.float64:
        return 2 * (m + 1) * _U64 * s + 2 * _U64 * mag + 1e-300
    if dt == np.complex64:
        return 4 * (m + 2) * _U32 * s + 4 * _U32 * mag + 1e-37
    if dt == np.complex128:
        return 4 * (m + 2) * _U64 * s + 4 * _U64 * mag + 1e-300
    raise TypeError(dt)


def assert_bmm_close(got, a, b, ref=None, dtype=None, factor=1.0, what="fastbmm"):
    """Assert ``got`` equals the reference bmm(a, b) within the dtype's tolerance."""
    dt = native(dtype if dtype is not None else a.dtype)
    if ref is None:
        ref = reference_bmm(a, b, dt)
    got = _as_native(got)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    if dt.kind in "iu":
        if not np.array_equal(got, ref.astype(dt)):
            bad = np.argwhere(got != ref.astype(dt))
            i = tuple(bad[0])
            raise AssertionError(
                f"{what}: {len(bad)} of {got.size} {dt} elements differ; first at {i}: "
                f"got {got[i]!r}, expected {ref[i]!r}"
            )
        return
    if got.size == 0:
        return
    tol = tolerance(dt, a, b, ref) * factor
    ref_c = ref.astype(np.complex128) if dt.kind == "c" else ref.astype(np.float64)
    got_c = got.astype(np.complex128) if dt.kind == "c" else got.astype(np.float64)
    err = np.abs(got_c - ref_c)
    # Non-finite values must match exactly (NaN where NaN, same-signed Inf).
    finite = np.isfinite(ref_c)
    same_nonfinite = (np.isnan(got_c) & np.isnan(ref_c)) | (got_c == ref_c)
    ok = np.where(finite, err <= tol, same_nonfinite)
    if not ok.all():
        bad = np.argwhere(~ok)
        i = tuple(bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} of {got.size} {dt} elements out of tolerance; first at {i}: "
            f"got {got_c[i]!r}, expected {ref_c[i]!r}, |err| {err[i]:.3g} > tol {tol[i]:.3g}"
        )


def torch_bmm(a, b):
    """torch.bmm on contiguous native copies of a and b, as a NumPy array."""
    import torch

    ta = torch.from_numpy(np.ascontiguousarray(_as_native(a)))
    tb = torch.from_numpy(np.ascontiguousarray(_as_native(b)))
    return torch.bmm(ta, tb).numpy()


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------
# Random data and memory layouts.
# ----------------------------------------------------------------------------


def random_values(rng, shape, dtype):
    """Random values of ``dtype`` (native order) spanning the type's interesting range."""
    dt = native(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        # Full range: products overflow and wrap, which the reference models exactly.
        return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    if dt.kind == "c":
        re = rng.uniform(-1, 1, size=shape)
        im = rng.uniform(-1, 1, size=shape)
        return (re + 1j * im).astype(dt)
    return rng.uniform(-1, 1, size=shape).astype(dt)


def _c(rng, shape, dtype, gen=random_values):
    x = gen(rng, shape, dtype)
    return x, x


def _transposed(rng, shape, dtype, gen=random_values):
    # The attention case: k.transpose(0, 2, 1) of a contiguous (b, c, r) array.
    b, r, c = shape
    base = gen(rng, (b, c, r), dtype)
    return base.transpose(0, 2, 1), base


def _fortran(rng, shape, dtype, gen=random_values):
    base = np.asfortranarray(gen(rng, shape, dtype))
    return base, base


def _negative(rng, shape, dtype, gen=random_values):
    base = gen(rng, shape, dtype)
    return base[::-1, ::-1, ::-1], base


def _broadcast_batch(rng, shape, dtype, gen=random_values):
    base = gen(rng, (1,) + tuple(shape[1:]), dtype)
    return np.broadcast_to(base, shape), base


def _broadcast_col(rng, shape, dtype, gen=random_values):
    base = gen(rng, tuple(shape[:2]) + (1,), dtype)
    return np.broadcast_to(base, shape), base


def _every_other(rng, shape, dtype, gen=random_values):
    b, r, c = shape
    base = gen(rng, (2 * b, 2 * r + 1, 2 * c), dtype)
    return base[1::2, 1::2, ::2], base


def _misaligned(rng, shape, dtype, gen=random_values):
    dt = native(dtype)
    buf = np.zeros(int(np.prod(shape)) * dt.itemsize + 1, dtype=np.uint8)
    x = np.ndarray(shape, dtype=dt, buffer=buf, offset=1)
    x[...] = gen(rng, shape, dt)
    return x, buf


def _readonly(rng, shape, dtype, gen=random_values):
    x = gen(rng, shape, dtype)
    x.flags.writeable = False
    return x, x


def _byteswapped(rng, shape, dtype, gen=random_values):
    x = gen(rng, shape, dtype).astype(native(dtype).newbyteorder())
    return x, x


def _byteswapped_transposed(rng, shape, dtype, gen=random_values):
    x, base = _transposed(rng, shape, dtype, gen)
    base = base.astype(native(dtype).newbyteorder())
    return base.transpose(0, 2, 1), base


INPUT_LAYOUTS = {
    "C": _c,
    "transposed": _transposed,
    "fortran": _fortran,
    "negative": _negative,
    "broadcast_batch": _broadcast_batch,
    "broadcast_col": _broadcast_col,
    "every_other": _every_other,
    "misaligned": _misaligned,
    "readonly": _readonly,
    "byteswapped": _byteswapped,
    "byteswapped_transposed": _byteswapped_transposed,
}


def make_input(layout, rng, shape, dtype, gen=None):
    """Return (array, owner): an array of ``shape`` in ``layout`` and the buffer that holds it.

    ``gen(rng, shape, dtype)`` makes the values (default: random_values)."""
    return INPUT_LAYOUTS[layout](rng, tuple(shape), dtype, gen or random_values)


# out= layouts: every one writable and not self-overlapping. Each builder returns
# (view, parent, mask) where parent holds view's memory filled with a sentinel, and
# mask marks parent's elements that belong to the view (None: all of them).


def sentinel(dtype):
    dt = native(dtype)
    if dt.kind in "iu":
        return np.array(0x5A5A5A5A5A5A5A5A, dtype=np.uint64).astype(dt)
    if dt.kind == "c":
        return dt.type(-12345.5 + 777.25j)
    return dt.type(-12345.5) if dt != np.float16 else dt.type(-1234.5)


def _out_c(shape, dtype):
    parent = np.full(shape, sentinel(dtype), dtype=native(dtype))
    return parent, parent, None


def _out_transposed(shape, dtype):
    b, r, c = shape
    parent = np.full((b, c, r), sentinel(dtype), dtype=native(dtype))
    return parent.transpose(0, 2, 1), parent, None


def _out_fortran(shape, dtype):
    parent = np.asfortranarray(np.full(shape, sentinel(dtype), dtype=native(dtype)))
    return parent, parent, None


def _out_negative(shape, dtype):
    parent = np.full(shape, sentinel(dtype), dtype=native(dtype))
    return parent[::-1, :, ::-1], parent, None


def _out_every_other(shape, dtype):
    b, r, c = shape
    parent = np.full((b + 1, 2 * r + 1, 3 * c + 2), sentinel(dtype), dtype=native(dtype))
    sl = (slice(1, None), slice(1, None, 2), slice(2, None, 3))
    mask = np.zeros(parent.shape, dtype=bool)
    mask[sl] = True
    view = parent[sl]
    assert view.shape == tuple(shape)
    return view, parent, mask


def _out_misaligned(shape, dtype):
    dt = native(dtype)
    buf = np.full(int(np.prod(shape)) * dt.itemsize + 2, 0xA5, dtype=np.uint8)
    view = np.ndarray(shape, dtype=dt, buffer=buf, offset=1)
    view[...] = sentinel(dt)
    mask = np.zeros(buf.shape, dtype=bool)
    mask[1:-1] = True
    return view, buf, mask


def _out_byteswapped(shape, dtype):
    parent = np.full(shape, sentinel(dtype), dtype=native(dtype).newbyteorder())
    return parent, parent, None


OUT_LAYOUTS = {
    "C": _out_c,
    "transposed": _out_transposed,
    "fortran": _out_fortran,
    "negative": _out_negative,
    "every_other": _out_every_other,
    "misaligned": _out_misaligned,
    "byteswapped": _out_byteswapped,
}


def make_out(layout, shape, dtype):
    return OUT_LAYOUTS[layout](tuple(shape), dtype)


def snapshot(*arrays):
    return [np.array(x, copy=True).tobytes() for x in arrays]


def sentinel_out(shape, dtype):
    """An out= filled with ``sentinel(dtype)``: a failing call must leave it so."""
    return np.full(shape, sentinel(dtype), dtype=native(dtype))


def assert_close(got, expected, tol, dtype, what="fastbmm"):
    """``got`` within ``tol`` (elementwise) of ``expected``; equal where ``tol`` is
    None (integers), and where ``expected`` is not finite (NaN matching NaN)."""
    dtype = native(dtype)
    got = native_copy(got)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    if tol is None:
        if not np.array_equal(got, expected):
            bad = np.argwhere(got != expected)
            i = tuple(bad[0]) if bad.ndim and bad.shape[1] else ()
            raise AssertionError(f"{what}: {len(bad)} of {got.size} {dtype} elements differ; "
                                 f"first at {i}: got {got[i]!r}, expected {expected[i]!r}")
        return
    if got.size == 0:
        return
    wide = np.complex128 if dtype.kind == "c" else np.float64
    g, e = got.astype(wide), expected.astype(wide)
    with np.errstate(invalid="ignore"):
        err = np.abs(g - e)
        ok = np.where(np.isfinite(e), err <= tol, (np.isnan(g) & np.isnan(e)) | (g == e))
    if not ok.all():
        bad = np.argwhere(~ok)
        i = tuple(bad[0]) if bad.ndim and bad.shape[1] else ()
        raise AssertionError(f"{what}: {len(bad)} of {got.size} {dtype} elements out of tolerance; "
                             f"first at {i}: got {g[i]!r}, expected {e[i]!r}, tol {np.asarray(tol)[i]:.3g}")


def stream_cols(dtype, rows):
    """Columns of one column block of the few-rows (stream) path for `rows` rows
    of C (1..4): its accumulator bytes shared by 1, 2 or 4 rows."""
    share = {1: 1, 2: 2, 3: 4, 4: 4}[rows]
    return _runtime.block_sizes()["stream_acc_bytes"] // (share * np.dtype(dtype).itemsize)


def block_key(dtype):
    """Which fastbmm.block_sizes() entry a dtype's kernel uses (best guess by element width)."""
    dt = native(dtype)
    if dt in (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.complex64)):
        return "f32"
    if dt in (np.dtype(np.float64), np.dtype(np.complex128)):
        return "f64"
    if dt == np.int64:
        return "u64"
    return "u32"


def small_max(bs, dtype):
    """The largest n, m, p of a dtype's unpacked small path (complex: its own limit)."""
    return bs["small_max_complex"] if native(dtype).kind == "c" else bs["small_max"]


def small_int_values(rng, shape, dtype):
    """Small integers stored in ``dtype``: float sums of them are exact, so any
    correct float kernel must match the reference bit for bit."""
    dt = native(dtype)
    lo = 0 if dt.kind == "u" else -4
    x = rng.integers(lo, 5, size=shape)
    if dt.kind == "c":
        x = x + 1j * rng.integers(lo, 5, size=shape)
    return x.astype(dt)


# ---------------------------------------------------------------------------
# Shared by the baddbmm / matmul / out_dtype / interop tests

#: unit roundoff per dtype character (half, float, double, and their complex)
UNIT_ROUNDOFF = {"e": 2.0 ** -11, "f": 2.0 ** -24, "d": 2.0 ** -53, "F": 2.0 ** -24, "D": 2.0 ** -53}


def dtype_ids(dts):
    """pytest ids: the dtypes' names."""
    return [np.dtype(d).name for d in dts]


def seeded_rng(*key):
    """A generator seeded from `key`, the same in every run and process."""
    import zlib

    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def native_copy(x):
    """A native-byte-order copy of x."""
    x = np.asarray(x)
    return x.astype(native(x.dtype), copy=True)


def to_torch(x):
    """A torch tensor holding a native, C-ordered copy of x (torch reads no byte-swapped data)."""
    import torch

    # np.array(order="C"), not np.ascontiguousarray: the latter turns 0-D into 1-D.
    return torch.from_numpy(np.array(native_copy(x), order="C", copy=True))


def torch_error(torch_fn, *args, **kwargs):
    """The exception ``torch_fn`` raises for these (NumPy) arguments, or None.

    ndarray arguments become tensors; an ndarray out= becomes an empty tensor
    of its shape and dtype.
    """
    import warnings

    import torch

    conv = [(to_torch(x) if isinstance(x, np.ndarray) else x) for x in args]
    if isinstance(kwargs.get("out"), np.ndarray):
        o = kwargs["out"]
        kwargs["out"] = torch.empty(o.shape, dtype=to_torch(np.zeros(0, native(o.dtype))).dtype)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch_fn(*conv, **kwargs)
    except Exception as e:  # noqa: BLE001
        return e
    return None


# ----------------------------------------------------------------------------
# torch as the second oracle.
# ----------------------------------------------------------------------------
#
# torch is checked against the same exact reference as fastbmm, but it is not
# ground truth: torch 2.13's own float16 baddbmm(beta=0, alpha=0) returns
# uninitialised memory on CPUs with AVX512-FP16 (README, "Differences from
# torch.bmm"), and such a defect must not fail fastbmm's suite on the CPUs
# where torch shows it. So every comparison of torch's VALUES goes through
# check_torch: a disagreement with the exact reference is recorded (a
# TorchDisagreesWarning, and a list printed at the end of the run), never
# raised. fastbmm's own result is always compared with the exact reference,
# fatally, before this is called: a torch defect can never hide a fastbmm bug.
# Error-TEXT parity with torch is not a value and is compared directly.


class TorchDisagreesWarning(UserWarning):
    """torch's result differs from the exact reference (torch's defect, not fastbmm's)."""


TORCH_DISAGREEMENTS = []    # (what, message) of every disagreement in this run


def check_torch(assertion, torch_result, *args, what="torch", **kwargs):
    """Compare torch's result with the exact reference; report, never fail, on a mismatch.

    Parameters
    ----------
    assertion : callable
        ``assertion(torch_result, *args, **kwargs)`` raises AssertionError when
        its first argument is not the exact reference within tolerance (for
        example :func:`assert_bmm_close`).
    torch_result : ndarray or callable
        torch's result, or a function computing it (so that an exception torch
        raises while computing is reported the same way).

    Returns
    -------
    bool
        True when torch agreed with the reference.
    """
    import inspect
    import warnings

    # The assertion's own label for the value it checks (assert_bmm_close's
    # defaults to "fastbmm") would name fastbmm in a report about torch's value.
    try:
        if "what" in inspect.signature(assertion).parameters:
            kwargs["what"] = "torch"
    except (TypeError, ValueError):     # a builtin without a signature
        pass
    try:
        value = torch_result() if callable(torch_result) else torch_result
        assertion(value, *args, **kwargs)
    except AssertionError as e:
        TORCH_DISAGREEMENTS.append((what, str(e)))
        warnings.warn(TorchDisagreesWarning(f"{what} disagrees with the exact reference: {e}"),
                      stacklevel=2)
        return False
    return True


def assert_equal_values(got, expected, what="torch"):
    """Exact equality, NaN equal to NaN (for results that are exact by construction)."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    same = got == expected
    if got.dtype.kind in "fc":
        same |= np.isnan(got) & np.isnan(expected)
    if not np.all(same):
        i = tuple(np.argwhere(~same)[0])
        raise AssertionError(f"{what}: {np.count_nonzero(~same)} of {got.size} elements differ; "
                             f"first at {i}: got {got[i]!r}, expected {expected[i]!r}")


# ----------------------------------------------------------------------------
# Long inner sums
# ----------------------------------------------------------------------------
#
# Long inner sums: operands whose exact product is known, and the error bound
# of a sum cut into KC-deep panels.
#
# Every engine path adds KC-deep partial sums into the result (the packed nest
# by construction, the few-rows stream path since it was fixed). For unit
# roundoff u this bounds the error of each element by
#
#     (min(K, KC) + ceil(K / KC) + 2) * u * (|A| @ |B|)
#
# (KC products summed, then ceil(K / KC) partials added, then slack), where
# one accumulator over K only guarantees K * u * (|A| @ |B|).


def kc_blocked_bound(u, K, kc, scale):
    """The bound above, elementwise over ``scale`` (|A| @ |B|)."""
    return (min(K, kc) + math.ceil(K / kc) + 2) * u * scale


def absorbing_operands(dtype, batch, n, K, p, acc_bits):
    """(a, b, exact): a (batch, n, K) and b (batch, K, p) of ``dtype``, and their
    exact product as int64.

    A[:, r, 0] * B[:, 0, j] = 2**acc_bits (acc_bits: the accumulator's mantissa
    bits + 1, 24 for float32) and every other product is 1 (even columns) or 2
    (odd columns). At 2**acc_bits the accumulator's spacing is 2: each +1 is a
    tie rounded to even and lost, so one accumulator over K loses about K per
    even column, a KC-blocked sum at most KC.
    """
    ha, hb = 2 ** (acc_bits // 2), 2 ** (acc_bits - acc_bits // 2)
    a = np.ones((batch, n, K), np.int64)
    b = np.ones((batch, K, p), np.int64)
    a[:, :, 0] = ha
    b[:, 0, :] = hb
    b[:, 1:, 1::2] = 2
    return a.astype(dtype), b.astype(dtype), np.matmul(a, b)
