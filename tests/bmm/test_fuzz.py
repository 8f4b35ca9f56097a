"""Differential fuzzing of fastbmm.bmm with Hypothesis.

Every example draws a dtype (all ten supported), a shape whose sizes sit at
0, 1, primes and just below / at / above the block sizes of the kernel under
test (MR, NR, small_max, and -- for a single matrix only -- KC, MC and NC),
a memory layout for each input and for out= (composed from: any axis
permutation, negative and every-other-element steps, zero strides from
np.broadcast_to (inputs only), a 1-byte misaligned buffer, non-native byte
order), a thread count and a value distribution. The result is compared with

* an independent reference: NumPy in a wider type (float64/complex128 with a
  rigorous |a|@|b| error bound; float16 accumulated exactly and rounded once)
  or exact modular integer arithmetic (uint64 products, then a wrapping cast);
* torch.bmm, when torch is importable.

It also checks that nothing outside out='s elements is written, that the
inputs are left unchanged, and that out= aliasing an input gives the right
values. Each runnable kernel variant is fuzzed in turn.

Profiles (environment variable FASTBMM_FUZZ_PROFILE):
  ci   (default) deterministic (derandomize=True), 150 examples per test
  long random, 5000 examples per test
  asan deterministic, 100 examples per test (tools/sanitize.sh)
"""

import contextlib
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import fastbmm
import fastbmm._runtime as _runtime
from _helpers import KERNELS, check_torch, small_max

try:  # an optional second oracle
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

# ----------------------------------------------------------------------------
# Hypothesis profiles (own names, so conftest's global profile is untouched).
# ----------------------------------------------------------------------------

_COMMON = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
settings.register_profile("fastbmm-fuzz-ci", derandomize=True, max_examples=150,
                          database=None, **_COMMON)
settings.register_profile("fastbmm-fuzz-long", max_examples=5000, **_COMMON)
settings.register_profile("fastbmm-fuzz-asan", derandomize=True, max_examples=100,
                          database=None, **_COMMON)
PROFILE = os.environ.get("FASTBMM_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "long", "asan"):
    raise RuntimeError(f"FASTBMM_FUZZ_PROFILE must be ci, long or asan, not {PROFILE!r}")
FUZZ = settings(settings.get_profile(f"fastbmm-fuzz-{PROFILE}"))
# The aliasing test is narrower: a third of the examples.
FUZZ_ALIAS = settings(FUZZ, max_examples=max(10, FUZZ.max_examples // 3))

DTYPES = [np.dtype(t) for t in (np.float16, np.float32, np.float64, np.complex64,
                                np.complex128, np.int8, np.uint8, np.int16, np.int32,
                                np.int64)]
FAMILY = {"e": "f32", "f": "f32", "d": "f64", "F": "f32", "D": "f64",
          "b": "u32", "B": "u32", "h": "u32", "i": "u32", "l": "u64", "q": "u64"}

# Keep one example's work (and the reference's) small: integer matmul in NumPy
# is not BLAS, and the fuzz runs on a 2-core CI machine.
MAX_WORK = 3_000_000
U = {"e": 2.0 ** -11, "f": 2.0 ** -24, "d": 2.0 ** -53}


@contextlib.contextmanager
def kernel_and_threads(kernel):
    """Force ``kernel``; restore the kernel and thread count in force before."""
    prev_kernel, prev_threads = _runtime.get_kernel(), fastbmm.get_num_threads()
    _runtime.set_kernel(kernel)
    try:
        yield
    finally:
        _runtime.set_kernel(prev_kernel)
        fastbmm.set_num_threads(prev_threads)


def _family(dtype):
    return FAMILY[dtype.char]


# ----------------------------------------------------------------------------
# Sizes
# ----------------------------------------------------------------------------

def _around(*xs):
    out = set()
    for x in xs:
        out.update((x - 1, x, x + 1))
    return sorted(v for v in out if v >= 0)


def size_pools(bs, dtype):
    """(cheap, deep, tall, wide): sizes for any dim; for m (KC); for n (MC); for p (NC)."""
    k = bs[_family(dtype)]
    cplx = dtype.kind == "c"
    mr, nr = k["MR"], k["NR"]
    cheap = {0, 1, 2, 3, 5, 7, 11, 13, 17, 31}
    cheap.update(_around(mr, nr, small_max(bs, dtype), 2 * mr, 2 * nr))
    if cplx:  # 1m complex: the kernel sees 2*m and 2*p
        cheap.update(_around(nr // 2, nr // 2 * 3))
    deep = _around(k["KC"]) + ([k["KC"] // 2 - 1, k["KC"] // 2, k["KC"] // 2 + 1] if cplx else [])
    tall = _around(k["MC"]) + [97, 193]              # also the threads' row tiles (96)
    wide = _around(k["NC"]) + [257, 521]             # and column tiles (256)
    wide += _around(512) + [1025]                    # few-row streaming: 512-column blocks
    if cplx:
        wide += [k["NC"] // 2 - 1, k["NC"] // 2 + 1]
    return sorted(cheap), sorted(deep), sorted(tall), sorted(wide)


@st.composite
def shapes(draw, bs, dtype):
    cheap, deep, tall, wide = size_pools(bs, dtype)
    big = draw(st.sampled_from(["tiny", "tiny", "stream", "stream", "none", "none", "none",
                                "n", "m", "p", "np", "nm"]))
    if big == "tiny":  # the unpacked small-matrix path and its edge
        b = draw(st.sampled_from([1, 2, 3, 5, 7, 17]))
        dims = [draw(st.integers(1, small_max(bs, dtype) + 1)) for _ in range(3)]
    elif big == "stream":  # few rows (batched vector-matrix products), long rows of B
        b = draw(st.sampled_from([1, 2, 3]))
        dims = [draw(st.integers(1, 5)), draw(st.sampled_from(cheap + deep)),
                draw(st.sampled_from(cheap + wide))]
        while dims[0] * dims[1] * dims[2] * b > MAX_WORK:
            dims[1] = max(1, dims[1] // 2)
    elif big == "none":
        b = draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3, 5, 7]))
        dims = [draw(st.sampled_from(cheap)) for _ in range(3)]
    else:
        b = 1  # KC, MC and NC sizes only for a single matrix
        dims = [draw(st.sampled_from(cheap)) for _ in range(3)]
        if "n" in big:
            dims[0] = draw(st.sampled_from(tall))
        if "m" in big:
            dims[1] = draw(st.sampled_from(deep))
        if "p" in big:
            dims[2] = draw(st.sampled_from(wide))
        # Stay within the work budget by shrinking the cheap dims.
        free = [i for i in range(3) if "nmp"[i] not in big]
        while dims[0] * dims[1] * dims[2] > MAX_WORK and free:
            i = max(free, key=lambda i: dims[i])
            dims[i] = max(1, dims[i] // 2)
    return (b, *dims)


# ----------------------------------------------------------------------------
# Layouts: a recipe applied to a byte buffer, so the same view can be rebuilt
# over a snapshot of that buffer (to prove nothing outside out= was written).
# ----------------------------------------------------------------------------

@st.composite
def layouts(draw, allow_broadcast):
    return dict(
        perm=draw(st.permutations([0, 1, 2])),
        step=[draw(st.sampled_from([1, 1, 1, -1, 2, -2])) for _ in range(3)],
        broadcast=[draw(st.booleans()) and draw(st.booleans()) if allow_broadcast else False
                   for _ in range(3)],
        misaligned=draw(st.booleans()) and draw(st.booleans()),
        byteswap=draw(st.booleans()) and draw(st.booleans()),
    )


def _storage(shape, dtype, lay):
    """Byte buffer and the recipe's bookkeeping for a view of logical ``shape``."""
    dt = dtype.newbyteorder(">" if np.little_endian else "<") if lay["byteswap"] else dtype
    src = [1 if lay["broadcast"][i] else shape[i] for i in range(3)]
    stored = [src[lay["perm"][i]] * abs(lay["step"][lay["perm"][i]]) for i in range(3)]
    off = 1 if lay["misaligned"] else 0
    nbytes = int(np.prod(stored)) * dt.itemsize + off
    return dt, src, stored, off, nbytes


def view_of(buf, shape, dtype, lay):
    """The recipe's view (before broadcasting) over the uint8 buffer ``buf``."""
    dt, src, stored, off, nbytes = _storage(shape, dtype, lay)
    flat = buf[off:nbytes].view(dt)
    x = flat.reshape(stored)
    # slice per stored axis (stored axis i holds logical axis perm[i])
    sl = []
    for i in range(3):
        s = lay["step"][lay["perm"][i]]
        sl.append(slice(None, None, s))
    x = x[tuple(sl)]
    inv = np.argsort(lay["perm"])
    x = x.transpose(inv)
    assert x.shape == tuple(src), (x.shape, src)
    return x


def make_operand(rng, shape, dtype, lay, gen):
    """An operand of logical ``shape`` laid out per ``lay``, with values from ``gen``."""
    dt, src, stored, off, nbytes = _storage(shape, dtype, lay)
    buf = np.frombuffer(rng.bytes(nbytes), np.uint8).copy()  # gaps hold garbage
    x = view_of(buf, shape, dtype, lay)
    x[...] = gen(rng, x.shape, dtype)
    if any(lay["broadcast"]):
        x = np.broadcast_to(x, shape)
    return x, buf


# ----------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------

def values(mode):
    def gen(rng, shape, dtype):
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if mode == "small":
                return rng.integers(-3 if info.min < 0 else 0, 4, size=shape).astype(dtype)
            return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
        real = {"F": np.float32, "D": np.float64}.get(dtype.char, dtype.type)

        def one():
            if mode == "small":   # small integers: every product and sum is exact
                return rng.integers(-3, 4, size=shape).astype(real)
            x = rng.uniform(-4, 4, size=shape)
            if mode == "special":
                pick = rng.random(size=shape)
                x = np.where(pick < 0.1, 0.0, x)
                x = np.where((pick >= 0.1) & (pick < 0.15), 1e-6 * x, x)
                if dtype.kind != "c":   # IEEE non-finite propagation (real dtypes)
                    x = np.where((pick >= 0.15) & (pick < 0.17), np.inf, x)
                    x = np.where((pick >= 0.17) & (pick < 0.19), -np.inf, x)
                    x = np.where((pick >= 0.19) & (pick < 0.21), np.nan, x)
            return x.astype(real)
        if dtype.kind == "c":
            return (one() + 1j * one()).astype(dtype)
        return one()
    return gen


# ----------------------------------------------------------------------------
# References
# ----------------------------------------------------------------------------

def _native(x):
    x = np.asarray(x)
    return x.astype(x.dtype.newbyteorder("="), copy=True)


def reference(a, b):
    """(exact-or-wide result, error bound or None) for bmm(a, b)."""
    a, b = _native(a), _native(b)
    dt = a.dtype
    shape = (a.shape[0], a.shape[1], b.shape[2])
    if dt.kind in "iu":
        r = np.matmul(a.astype(np.uint64), b.astype(np.uint64)).reshape(shape)
        return r.astype(dt), None
    wide = np.complex128 if dt.kind == "c" else np.float64
    a64, b64 = a.astype(wide), b.astype(wide)
    with np.errstate(invalid="ignore", over="ignore"):
        r = np.matmul(a64, b64).reshape(shape)
        scale = np.matmul(np.abs(a64), np.abs(b64)).reshape(shape)
    m = a.shape[2]
    u = U[{"F": "f", "D": "d"}.get(dt.char, dt.char)]
    if dt == np.float16:
        # float32 accumulation (products of halves are exact in float32), one rounding.
        bound = (m + 2) * U["f"] * scale + U["e"] * np.abs(r) + 2.0 ** -24
        return r, bound
    if dt.kind == "c":
        # 1m complex: each component is a real sum of 2m products, |ar br|+|ai bi| <= |a||b|.
        bound = 2 * (2 * m + 2) * u * scale + 2 * u * np.abs(r)
    else:
        bound = (m + 2) * u * scale + 2 * u * np.abs(r)
    if dt.char in "dD":  # the float64 reference itself carries an error of the same size
        bound = 2 * bound
    tiny = {"e": 2.0 ** -24, "f": 1e-37, "d": 1e-300, "F": 1e-37, "D": 1e-300}[dt.char]
    return r, bound + tiny


def assert_matches(got, a, b, exact, what):
    ref, bound = reference(a, b)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    got = _native(got)
    if bound is None or exact:
        if got.dtype.kind in "iu":
            expected = ref
        else:
            expected = ref.astype(got.dtype)
        ok = (got == expected) | (np.isnan(got) & np.isnan(expected)) \
            if got.dtype.kind == "f" else (got == expected)
        if not np.all(ok):
            i = tuple(np.argwhere(~ok)[0])
            raise AssertionError(f"{what}: {np.count_nonzero(~ok)} of {got.size} differ; "
                                 f"first at {i}: got {got[i]!r}, expected {expected[i]!r}")
        return
    wide = got.astype(ref.dtype)
    with np.errstate(invalid="ignore"):
        err = np.abs(wide - ref)
    finite = np.isfinite(ref)
    nonfinite_ok = (np.isnan(wide) & np.isnan(ref)) | (wide == ref)
    if got.dtype.kind == "f" and got.dtype != np.float64:
        # A finite wide sum whose rounding to the dtype overflows is inf in both.
        nonfinite_ok |= finite & ~np.isfinite(ref.astype(got.dtype)) & (wide == ref.astype(got.dtype))
    with np.errstate(invalid="ignore"):
        ok = np.where(finite, err <= bound, nonfinite_ok)
    if not np.all(ok):
        i = tuple(np.argwhere(~ok)[0])
        raise AssertionError(f"{what}: {np.count_nonzero(~ok)} of {got.size} out of bound; "
                             f"first at {i}: got {wide[i]!r}, expected {ref[i]!r}, "
                             f"err {err[i]!r} > bound {bound[i]!r}")


def torch_result(a, b):
    ta = torch.from_numpy(np.ascontiguousarray(_native(a)))
    tb = torch.from_numpy(np.ascontiguousarray(_native(b)))
    return torch.bmm(ta, tb).numpy()


def check_torch_matches_reference(a, b, exact, what):
    """torch.bmm against the same exact reference and bound as fastbmm (non-fatal:
    a disagreement is torch's defect, reported by check_torch)."""
    what = f"torch.bmm {what}"
    check_torch(lambda t: assert_matches(t, a, b, exact, what), lambda: torch_result(a, b), what=what)


# ----------------------------------------------------------------------------
# The fuzz tests
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", KERNELS)
@FUZZ
@given(data=st.data())
def test_fuzz_against_reference(kernel, data):
    with kernel_and_threads(kernel):
        _fuzz_against_reference(kernel, data)


def _fuzz_against_reference(kernel, data):
    bs = _runtime.block_sizes()
    dtype = data.draw(st.sampled_from(DTYPES), "dtype")
    b, n, m, p = data.draw(shapes(bs, dtype), "b, n, m, p")
    lay_a = data.draw(layouts(True), "layout a")
    lay_b = data.draw(layouts(True), "layout b")
    lay_o = data.draw(layouts(False), "layout out") if data.draw(st.booleans(), "out=") else None
    mode = data.draw(st.sampled_from(["small", "full", "full", "special"]), "values")
    nthreads = data.draw(st.sampled_from([1, 2, 3]), "threads")
    seed = data.draw(st.integers(0, 2 ** 32 - 1), "seed")
    rng = np.random.default_rng(seed)
    gen = values(mode)
    a, _ = make_operand(rng, (b, n, m), dtype, lay_a, gen)
    bb, _ = make_operand(rng, (b, m, p), dtype, lay_b, gen)
    a_before, b_before = np.array(a), np.array(bb)
    small = max(n, m, p) <= small_max(bs, dtype)
    path = ("empty" if 0 in (b, n, p) else "zero-depth" if m == 0 else "small" if small
            else "few rows" if n <= 4 else "packed")
    event(f"path: {path}")
    event(f"threads {nthreads}, out= {'given' if lay_o is not None else 'none'}")
    for name, lay in (("a", lay_a), ("b", lay_b), ("out", lay_o)):
        if lay is not None:
            for feat in ("misaligned", "byteswap"):
                if lay[feat]:
                    event(f"{name} {feat}")
            if any(lay["broadcast"]):
                event(f"{name} zero stride")
            if any(s < 0 for s in lay["step"]):
                event(f"{name} negative stride")
    note(f"a strides {a.strides} dtype {a.dtype}; b strides {bb.strides} dtype {bb.dtype}")

    out = obuf = None
    if lay_o is not None:
        _, _, _, _, nbytes = _storage((b, n, p), dtype, lay_o)
        obuf = np.frombuffer(rng.bytes(nbytes), np.uint8).copy()
        snap = obuf.copy()
        out = view_of(obuf, (b, n, p), dtype, lay_o)
        note(f"out strides {out.strides} dtype {out.dtype}")

    fastbmm.set_num_threads(nthreads)
    got = fastbmm.bmm(a, bb) if out is None else fastbmm.bmm(a, bb, out=out)

    exact = mode == "small"  # small integers: exact in every float type too
    if out is None:
        assert got.dtype == dtype and got.flags.c_contiguous and got.dtype.isnative
    else:
        assert got is out
        got = np.array(out)  # the values, before out's elements are reset below
        # nothing outside out's elements was written
        view_of(obuf, (b, n, p), dtype, lay_o)[...] = view_of(snap, (b, n, p), dtype, lay_o)
        assert np.array_equal(obuf, snap), "bmm wrote outside out='s elements"
    assert_matches(got, a, bb, exact, f"{kernel} {dtype} {(b, n, m, p)}")
    # inputs untouched
    assert np.array_equal(np.array(a), a_before, equal_nan=dtype.kind in "fc")
    assert np.array_equal(np.array(bb), b_before, equal_nan=dtype.kind in "fc")
    if torch is not None:
        check_torch_matches_reference(a, bb, exact, f"{dtype} {(b, n, m, p)}")


@pytest.mark.parametrize("kernel", KERNELS)
@FUZZ_ALIAS
@given(data=st.data())
def test_fuzz_out_aliasing_inputs(kernel, data):
    """out= sharing memory with an input (bmm(x, x, out=x), a transposed alias, a
    shifted window of the same buffer) still gives the product of the inputs'
    values as they were before the call."""
    with kernel_and_threads(kernel):
        _fuzz_out_aliasing_inputs(kernel, data)


def _fuzz_out_aliasing_inputs(kernel, data):
    bs = _runtime.block_sizes()
    dtype = data.draw(st.sampled_from(DTYPES), "dtype")
    cheap, deep, tall, _ = size_pools(bs, dtype)
    b = data.draw(st.sampled_from([1, 2, 3]), "b")
    n = data.draw(st.sampled_from([s for s in cheap if s > 0] + ([deep[0], tall[-1]] if b == 1 else [])), "n")
    kind = data.draw(st.sampled_from(["x@x->x", "x@xT->x", "a@b->a", "a@b->b", "window"]), "alias")
    nthreads = data.draw(st.sampled_from([1, 2]), "threads")
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), "seed"))
    gen = values(data.draw(st.sampled_from(["small", "full"]), "values"))
    exact = False

    if kind == "window":
        # a and out are overlapping windows (shifted by one row) of one buffer
        base = gen(rng, (b, n + 1, n), dtype)
        a = base[:, :n, :]
        out = base[:, 1:, :]
        bb = gen(rng, (b, n, n), dtype)
    else:
        x = gen(rng, (b, n, n), dtype)
        if data.draw(st.booleans(), "transposed storage"):
            x = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)
        y = gen(rng, (b, n, n), dtype)
        a, bb, out = {
            "x@x->x": (x, x, x),
            "x@xT->x": (x, x.transpose(0, 2, 1), x),
            "a@b->a": (x, y, x),
            "a@b->b": (x, y, y),
        }[kind]
    a_before, b_before = a.copy(), bb.copy()
    fastbmm.set_num_threads(nthreads)
    got = fastbmm.bmm(a, bb, out=out)
    assert got is out
    assert_matches(got, a_before, b_before, exact, f"{kernel} alias {kind} {dtype} n={n}")


@pytest.mark.skipif(torch is None, reason="needs torch")
@pytest.mark.parametrize("kernel", KERNELS)
@settings(FUZZ, max_examples=max(10, FUZZ.max_examples // 3))
@given(dtype=st.sampled_from(DTYPES), b=st.integers(0, 4), n=st.integers(0, 20),
       m=st.integers(0, 20), p=st.integers(0, 20), seed=st.integers(0, 2 ** 32 - 1))
def test_fuzz_against_torch_plain(kernel, dtype, b, n, m, p, seed):
    """Plain contiguous operands of every small shape: fastbmm and torch.bmm, each
    against the exact reference (torch's disagreements reported, not failed)."""
    rng = np.random.default_rng(seed)
    gen = values("full")
    a, bb = gen(rng, (b, n, m), dtype), gen(rng, (b, m, p), dtype)
    with kernel_and_threads(kernel):
        fastbmm.set_num_threads(2)
        got = fastbmm.bmm(a, bb)
    assert_matches(got, a, bb, False, f"{kernel} {dtype}")
    check_torch_matches_reference(a, bb, False, f"{dtype} {(b, n, m, p)}")


# ----------------------------------------------------------------------------
# Long inner dimensions on every path, against the error bounds
# ----------------------------------------------------------------------------

from _helpers import absorbing_operands, kc_blocked_bound  # noqa: E402
from _helpers import assert_bmm_close  # noqa: E402

LONG_DTYPES = [np.dtype(t) for t in (np.float16, np.float32, np.float64, np.complex64,
                                     np.complex128, np.int32, np.int64)]
LONG_WORK = 1_500_000


@st.composite
def long_sums(draw, bs):
    """dtype, (n, K, p), B transposed or not, values: K long (beyond KC, many
    panels, not their multiple) on the stream path (n <= 4, contiguous rows of B),
    the packed nest (more rows, or B transposed) and the small path (K at its
    limit, small_max)."""
    dtype = draw(st.sampled_from(LONG_DTYPES), "dtype")
    kc = bs[_family(dtype)]["KC"]
    path = draw(st.sampled_from(["stream", "stream", "packed", "small"]), "path")
    if path == "small":
        S = small_max(bs, dtype)
        n, K, p = draw(st.integers(1, S)), S, draw(st.integers(1, S))
    else:
        n = draw(st.integers(1, 4) if path == "stream" else st.integers(5, 13), "n")
        K = draw(st.sampled_from([kc + 1, 2 * kc - 1, 3 * kc + 7, 4099, 20011, 65537]), "K")
        p = draw(st.sampled_from([1, 7, 17, 64, 513]), "p")
        while n * K * p > LONG_WORK:    # n * K alone stays below it
            p //= 2
    transposed_b = path == "packed" and draw(st.booleans(), "B transposed")
    # integers are exact: "absorbing" means nothing for them
    mode = "uniform" if dtype.kind in "iu" else draw(st.sampled_from(["uniform", "absorbing"]),
                                                     "values")
    return dtype, (n, K, p), transposed_b, mode


def _as_layout(x, transposed):
    return np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1) if transposed else x


@pytest.mark.parametrize("kernel", KERNELS)
@settings(FUZZ, max_examples=max(10, FUZZ.max_examples // 3))
@given(data=st.data())
def test_fuzz_long_inner_dimension(kernel, data):
    """Uniform values: within tests/_helpers.py's bound. Values that absorb
    every +1 of a single accumulator (_helpers.absorbing_operands): within the bound of
    KC-deep panels, which a path summing all of K in one accumulator breaks."""
    with kernel_and_threads(kernel):
        bs = _runtime.block_sizes()
        dtype, (n, K, p), transposed_b, mode = data.draw(long_sums(bs), "case")
        fastbmm.set_num_threads(data.draw(st.sampled_from([1, 2]), "threads"))
        rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), "seed"))
        event(f"{mode}, {dtype}, n={n}")
        if mode == "uniform":
            gen = values("full")
            a = gen(rng, (1, n, K), dtype)
            b = _as_layout(gen(rng, (1, K, p), dtype), transposed_b)
            assert_bmm_close(fastbmm.bmm(a, b), a, b)
            return
        # float16 is absorbed in its float32 accumulator: read that, unrounded
        acc = np.dtype(np.float64 if dtype.char in "dD" else np.float32)
        out_dtype = np.float32 if dtype == np.float16 else None
        a, b, exact = absorbing_operands(dtype, 1, n, K, p, np.finfo(acc).nmant + 1)
        got = fastbmm.bmm(a, _as_layout(b, transposed_b), out_dtype=out_dtype)
        if dtype.kind == "c":
            assert np.all(got.imag == 0)
            got = got.real
        err = np.abs(got.astype(np.int64) - exact).astype(np.float64)
        # 1m complex: the kernels sum 2K real products (every other one 0)
        depth = 2 * K if dtype.kind == "c" else K
        bound = kc_blocked_bound(float(np.finfo(acc).eps) / 2, depth, bs[_family(dtype)]["KC"],
                                 exact.astype(np.float64))
        assert np.all(err <= bound), (f"{kernel} {dtype} n={n} K={K} p={p}: error "
                                      f"{err.max():.0f} > KC-blocked bound {bound.min():.0f}")


# ----------------------------------------------------------------------------
# matmul with up to 64 dimensions (NumPy 2's NPY_MAXDIMS), broadcast batches
# ----------------------------------------------------------------------------

MATMUL_DTYPES = [np.dtype(t) for t in (np.float16, np.float32, np.float64, np.complex64,
                                       np.int8, np.int64)]


@st.composite
def many_dim_operand(draw, batch, rows, cols, name):
    """An operand for the broadcast ``batch``: a suffix of it, each dimension
    either the batch's size or 1, C-ordered, then with some axes reversed, its
    matrix stored transposed, or a size-1 dimension stretched by zero strides."""
    rank = draw(st.integers(0, len(batch)), f"{name} batch rank")
    shape = [s if draw(st.booleans()) else 1 for s in batch[len(batch) - rank:]] + [rows, cols]
    return dict(shape=shape,
                flip=[draw(st.booleans()) and draw(st.booleans()) for _ in shape],
                transposed=draw(st.booleans()),
                stretch=draw(st.booleans()) and draw(st.booleans()))


def _build_operand(rng, dtype, recipe, batch):
    shape, ndim = recipe["shape"], len(recipe["shape"])
    x = values("small")(rng, tuple(shape), dtype)
    if recipe["transposed"]:
        x = np.ascontiguousarray(np.swapaxes(x, -1, -2)).swapaxes(-1, -2)
    flip = tuple(slice(None, None, -1) if f else slice(None) for f in recipe["flip"])
    x = np.ascontiguousarray(x[flip])[flip]       # the same values, negative strides
    if recipe["stretch"]:                          # size-1 batch dims -> zero strides
        full = list(batch[len(batch) - (ndim - 2):]) + shape[-2:]
        x = np.broadcast_to(x, tuple(full))
    return x


@pytest.mark.parametrize("kernel", KERNELS)
@FUZZ
@given(data=st.data())
def test_fuzz_matmul_many_dimensions(kernel, data):
    """matmul with operands and out= of up to 64 dimensions, broadcast along
    any subset of them, against numpy.matmul (exact: small integers). An
    out= of 33+ dimensions once overran a 32-entry stack array (SIGSEGV); a
    self-overlapping out= of any rank must raise with nothing written."""
    with kernel_and_threads(kernel):
        _fuzz_matmul_many_dimensions(data)


def _overlapping_out(shape, dtype):
    """(out, store): a writable view of ``shape`` whose elements all share one
    location of ``store``, as in the issue's reproducer."""
    store = np.full(4, 7, dtype)
    return np.lib.stride_tricks.as_strided(store, shape, (0,) * len(shape), writeable=True), store


def _fuzz_matmul_many_dimensions(data):
    ndim = data.draw(st.integers(3, 64), "result rank (with a matrix)")
    dtype = data.draw(st.sampled_from(MATMUL_DTYPES), "dtype")
    if data.draw(st.integers(0, 3), "huge logical batch") == 0:
        # Up to 50 batch dimensions of size 2 (2**50 entries, zero strides
        # everywhere; NumPy refuses sizes past 2**63 bytes), into a
        # self-overlapping out=: must raise, with nothing written.
        sizes = [data.draw(st.sampled_from([1, 2, 2, 2])) for _ in range(ndim - 2)]
        batch = tuple(s if np.prod(sizes[:i + 1]) <= 2 ** 50 else 1 for i, s in enumerate(sizes))
        a = np.broadcast_to(np.ones((2, 3), dtype), batch + (2, 3))
        out, store = _overlapping_out(batch + (2, 4), dtype)
        event(f"huge batch, {sum(s > 1 for s in batch)} dims > 1")
        with pytest.raises(ValueError, match="overlapping"):
            fastbmm.matmul(a, np.ones((3, 4), dtype), out=out)
        assert np.all(store == 7), "written before raising"
        return
    batch = [1] * (ndim - 2)
    for i in data.draw(st.lists(st.integers(0, ndim - 3), max_size=4, unique=True), "big dims"):
        batch[i] = data.draw(st.sampled_from([2, 3]))
    n, m, p = (data.draw(st.sampled_from([1, 2, 3, 5, 9, 13])) for _ in range(3))
    ra = many_dim_operand(batch, n, m, "input")
    rb = many_dim_operand(batch, m, p, "other")
    rec_a, rec_b = data.draw(ra), data.draw(rb)
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), "seed"))
    a = _build_operand(rng, dtype, rec_a, batch)
    b = _build_operand(rng, dtype, rec_b, batch)
    if data.draw(st.booleans(), "1-D input"):
        a = a.reshape(a.shape[:-2] + (-1,))[(0,) * (a.ndim - 2)][: a.shape[-1]]
    elif data.draw(st.booleans(), "1-D other"):
        b = np.ascontiguousarray(b[(0,) * (b.ndim - 2)][:, 0])
    wide = {"i": np.int64, "f": np.float64, "c": np.complex128}[dtype.kind]
    want = np.matmul(a.astype(wide), b.astype(wide)).astype(dtype)
    fastbmm.set_num_threads(data.draw(st.sampled_from([1, 2, 3]), "threads"))
    out_kind = data.draw(st.sampled_from(["none", "C", "reversed", "permuted", "overlapping"]),
                         "out=")
    event(f"out= {out_kind}; rank {max(a.ndim, b.ndim)}")
    note(f"a {a.shape} {a.strides}; b {b.shape} {b.strides}")
    if out_kind == "none":
        got = fastbmm.matmul(a, b)
        assert got.dtype == dtype and got.shape == want.shape
        assert np.array_equal(got, want)
        return
    shape = want.shape
    if out_kind == "overlapping" and want.size > 1:
        out, store = _overlapping_out(shape, dtype)
        with pytest.raises(ValueError, match="overlapping"):
            fastbmm.matmul(a, b, out=out)
        assert np.all(store == 7), "written before raising"
        return
    if out_kind == "reversed":
        flip = (slice(None, None, -1),) * len(shape)
        out = np.zeros(shape, dtype)[flip]
    elif out_kind == "permuted" and len(shape) > 1:
        perm = data.draw(st.permutations(range(len(shape))), "out axes in memory")
        inv = tuple(np.argsort(perm))
        out = np.zeros(tuple(shape[i] for i in perm), dtype).transpose(inv)
    else:
        out = np.zeros(shape, dtype)
    got = fastbmm.matmul(a, b, out=out)
    assert got is out and np.array_equal(out, want)
