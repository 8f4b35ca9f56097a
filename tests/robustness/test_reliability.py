"""Reliability of fastbmm.bmm beyond single correct calls.

(a) Sizes that overflow or cannot be allocated end in MemoryError/ValueError
    (never a wrap-around or a crash); byte offsets beyond 4 GiB and 2**31-1
    are computed in 64 bits; a very deep (m ~ 6.7e7) product sums exactly;
    a zero-stride operand is never materialised at its logical size.
(b) Concurrency: many Python threads calling bmm at once (with and without
    out=, mixed dtypes, sizes and paths) while other threads change the thread
    count and the kernel, all results exact; the GIL is released while a
    large product runs.
(c) fork and thread creation: a process that ran parallel bmm forks, or
    forks after another OpenMP library ran and imports fastbmm only in the
    child; the child computes correctly, in parallel, and does not hang. A
    team that cannot be created is a RuntimeError, not an exit. A core taken
    by another process does not make the default thread count slow.
(d) Leaks: tens of thousands of successful and failing calls leave RSS,
    tracemalloc's traced memory and the arguments' reference counts flat.
"""

import gc
import mmap
import os
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import fastbmm
import fastbmm._runtime as _runtime
from fastbmm import DtypeError, ShapeError, UnsupportedDtypeError

from _helpers import KERNELS, REPO


@pytest.fixture
def restore_state():
    threads, kernel = fastbmm.get_num_threads(), _runtime.get_kernel()
    yield
    fastbmm.set_num_threads(threads)
    _runtime.set_kernel(kernel)


def zero_strided(shape, dtype=np.float32, value=0):
    """A read-only operand of any (huge) shape backed by one element."""
    return as_strided(np.full(1, value, dtype), shape=shape, strides=(0,) * len(shape),
                      writeable=False)


def exact_bmm(a, b):
    """Exact product modulo 2**64, wrapped to a's dtype (integers), or float64 (small ints)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "iu":
        return np.matmul(a.astype(np.uint64), b.astype(np.uint64)).astype(a.dtype)
    wide = np.complex128 if a.dtype.kind == "c" else np.float64
    return np.matmul(a.astype(wide), b.astype(wide)).astype(a.dtype)


# ----------------------------------------------------------------------------
# (a) sizes
# ----------------------------------------------------------------------------

TOO_BIG = [
    # (input shape, mat2 shape, dtype): each output has too many elements or bytes
    ((2 ** 20, 2 ** 20, 2 ** 20), (2 ** 20, 2 ** 20, 2 ** 20), np.float32),    # 2**60 elements
    ((2 ** 31, 2 ** 31, 1), (2 ** 31, 1, 2 ** 31), np.int8),                   # 2**93: overflows
    ((1, 2 ** 62, 1), (1, 1, 2 ** 62), np.int8),                               # 2**124 elements
    ((1, 2 ** 60, 1), (1, 1, 16), np.int8),                                    # 2**64 elements
    ((1, 2 ** 30, 1), (1, 1, 2 ** 30), np.complex128),                         # 2**64 bytes
    ((2 ** 40, 1, 1), (2 ** 40, 1, 1), np.float32),                            # 4 TiB
    ((2 ** 20, 2 ** 10, 1), (2 ** 20, 1, 2 ** 10), np.complex128),             # 16 TiB
    ((1, 2 ** 40, 0), (1, 0, 2 ** 40), np.float64),                            # m = 0, huge out
    ((1, 2 ** 31 + 5, 1), (1, 1, 2 ** 31 + 5), np.int32),                     # > 2**62 elements
]


@pytest.mark.parametrize("sa, sb, dtype", TOO_BIG, ids=[f"{sa}@{sb}" for sa, sb, _ in TOO_BIG])
def test_unallocatable_output_raises(sa, sb, dtype):
    a, b = zero_strided(sa, dtype), zero_strided(sb, dtype)
    t0 = time.perf_counter()
    with pytest.raises((MemoryError, ValueError)):
        fastbmm.bmm(a, b)
    assert time.perf_counter() - t0 < 5, "a refused size should be refused up front"


@pytest.mark.parametrize("sa, sb", [
    ((1, 1, 2 ** 60), (1, 2 ** 60, 0)),          # p = 0: empty, whatever m
    ((0, 2 ** 30, 2 ** 30), (0, 2 ** 30, 3)),    # b = 0
    ((2 ** 20, 0, 2 ** 20), (2 ** 20, 2 ** 20, 2 ** 20)),  # n = 0
])
def test_empty_output_of_huge_operands_is_immediate(sa, sb):
    a, b = zero_strided(sa), zero_strided(sb)
    t0 = time.perf_counter()
    r = fastbmm.bmm(a, b)
    assert time.perf_counter() - t0 < 1
    assert r.shape == (sa[0], sa[1], sb[2]) and r.size == 0 and r.dtype == np.float32


def test_huge_shape_errors_keep_torch_messages():
    a = zero_strided((2 ** 40, 2 ** 10, 2 ** 10), np.int8)
    b = zero_strided((2 ** 40 + 1, 2 ** 10, 3), np.int8)
    with pytest.raises(ShapeError, match=r"to be: \[1099511627776, 1024\] but got: "
                                         r"\[1099511627777, 1024\]\."):
        fastbmm.bmm(a, b)


@pytest.mark.parametrize("dtype, va, vb, m", [
    (np.float64, 1.0, 1.0, 2 ** 26 + 3),     # exact in float64
    (np.int32, 7, 11, 2 ** 26 + 3),          # 77 * m = 5167382759 wraps mod 2**32
    (np.int64, -3, 5, 2 ** 24 + 5),          # 64-bit lanes (emulated on AVX2: slower)
    (np.complex128, 1 + 1j, 1 - 2j, 2 ** 24 + 1),
])
def test_very_deep_product_is_exact(dtype, va, vb, m):
    """(1,1,m) @ (1,m,1) of constants, faked with zero strides: one long K loop
    over ~2**18 KC panels; the 64-bit loop counters and panel bookkeeping must
    add every term exactly once."""
    a = zero_strided((1, 1, m), dtype, va)
    b = zero_strided((1, m, 1), dtype, vb)
    r = fastbmm.bmm(a, b)
    if np.dtype(dtype).kind in "iu":
        want = np.array((int(va) * int(vb) * m) % 2 ** 64, np.uint64).astype(dtype)
    else:
        want = np.asarray(va * vb * m, dtype)
    assert r.shape == (1, 1, 1)
    assert r[0, 0, 0] == want, (r[0, 0, 0], want)


BYTESWAP_BROADCAST_SCRIPT = r"""
import resource, sys
import numpy as np, fastbmm
m = 2 ** 24
kind = sys.argv[1]
one = np.ones(1, ">f8" if kind == "swapped" else "=f8")
a = np.broadcast_to(one, (1, 1, m))        # 128 MiB of logical data, 8 bytes stored
b = np.broadcast_to(one, (1, m, 1))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = fastbmm.bmm(a, b)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before   # KiB
assert r[0, 0, 0] == m, r
print(grown)
"""


@pytest.mark.parametrize("kind", ["native", "swapped"])
def test_broadcast_operand_is_not_materialised(kind):
    """A zero-stride operand costs no memory of its logical size, whatever its byte order."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", BYTESWAP_BROADCAST_SCRIPT, kind], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    grown_kib = int(proc.stdout.split()[-1])
    assert grown_kib < 32 * 1024, f"peak RSS grew by {grown_kib / 1024:.0f} MiB"


def _noreserve_buffer(nbytes):
    """A lazily-backed anonymous mapping (only touched pages use memory)."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0x4000)
    try:
        mm = mmap.mmap(-1, nbytes, flags=flags)
    except (OSError, OverflowError, ValueError) as e:  # pragma: no cover - environment
        pytest.skip(f"cannot map {nbytes} bytes of address space: {e}")
    return np.frombuffer(mm, np.uint8)


def _far_view(shape, strides, dtype):
    """A writable view whose elements lie up to ~8.6 GB apart (strides may be negative)."""
    dtype = np.dtype(dtype)
    lo = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    hi = sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    buf = _noreserve_buffer(hi - lo + dtype.itemsize)
    first = buf[-lo:-lo + dtype.itemsize].view(dtype)  # element [0, 0, 0]
    return as_strided(first, shape=shape, strides=strides, writeable=True)


G = 2 ** 30
FAR_CASES = [
    # name, shape (b, r, c), byte strides, dtype: offsets far beyond 2**31 and 2**32
    ("batch stride 4GiB+", (2, 3, 4), (4 * G + 64, 32, 8), np.float64),
    ("row stride 2GiB+", (2, 3, 4), (64, 2 * G + 8, 8), np.float64),
    ("column stride 2GiB+", (2, 3, 4), (4, 12, 2 * G + 4), np.float32),
    ("negative 4GiB+ strides", (2, 3, 4), (-(4 * G + 8), -96, 8), np.float64),
    ("packed path, row stride 512MiB+", (1, 13, 20), (0, G // 2 + 8, 4), np.float32),
    ("packed int64, batch 2GiB+", (2, 9, 10), (2 * G + 8, 80, 8), np.int64),
    ("complex, column stride 1GiB+", (1, 9, 3), (0, 48, G + 16), np.complex128),
]


@pytest.mark.parametrize("which", ["input", "mat2", "out"])
@pytest.mark.parametrize("name, shape, strides, dtype", FAR_CASES, ids=[c[0] for c in FAR_CASES])
def test_byte_offsets_beyond_4GiB(name, shape, strides, dtype, which):
    """Element offsets computed in 64 bits: an int32 product anywhere wraps to
    the wrong address (a wrong value or a segfault)."""
    rng = np.random.default_rng(len(name))
    b_, r_, c_ = shape
    far = _far_view(shape, strides, dtype)
    vals = rng.integers(-50, 50, size=shape).astype(dtype)
    far[...] = vals
    if which == "input":      # far (b, r, c) @ (b, c, 5)
        a, b = far, rng.integers(-50, 50, size=(b_, c_, 5)).astype(dtype)
        got = fastbmm.bmm(a, b)
        want = exact_bmm(vals, b)
    elif which == "mat2":     # (b, 5, r) @ far (b, r, c)
        a, b = rng.integers(-50, 50, size=(b_, 5, r_)).astype(dtype), far
        got = fastbmm.bmm(a, b)
        want = exact_bmm(a, vals)
    else:                     # (b, r, 7) @ (b, 7, c) -> far out
        a = rng.integers(-50, 50, size=(b_, r_, 7)).astype(dtype)
        b = rng.integers(-50, 50, size=(b_, 7, c_)).astype(dtype)
        got = fastbmm.bmm(a, b, out=far)
        assert got is far
        want = exact_bmm(a, b)
    np.testing.assert_array_equal(np.array(got), want)


# ----------------------------------------------------------------------------
# (b) concurrency
# ----------------------------------------------------------------------------

CONCURRENT_CASES = [
    # dtype, (b, n, m, p): small path, packed, packed split across threads, 1m complex
    (np.int32, (16, 5, 7, 3)),
    (np.int64, (3, 40, 30, 20)),
    (np.int8, (1, 130, 260, 300)),
    (np.int16, (5, 17, 9, 33)),
    (np.float32, (2, 61, 33, 70)),        # small integers: exact in floats
    (np.float64, (1, 200, 40, 530)),
    (np.complex64, (4, 9, 20, 9)),
    (np.float16, (2, 30, 30, 30)),
    (np.uint8, (7, 8, 8, 8)),
]


def _case_arrays(i, dtype, shape):
    rng = np.random.default_rng(i)
    b, n, m, p = shape
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=(b, n, m), dtype=dtype, endpoint=True)
        c = rng.integers(info.min, info.max, size=(b, m, p), dtype=dtype, endpoint=True)
    else:
        lim = 2 if dtype == np.float16 else 4
        a = rng.integers(-lim, lim + 1, size=(b, n, m)).astype(dtype)
        c = rng.integers(-lim, lim + 1, size=(b, m, p)).astype(dtype)
        if dtype.kind == "c":
            a = a + 1j * rng.integers(-3, 4, size=(b, n, m)).astype(dtype)
    # one operand transposed, to mix layouts
    c = np.ascontiguousarray(c.transpose(0, 2, 1)).transpose(0, 2, 1)
    return a, c, exact_bmm(a, c)


def test_many_threads_at_once_with_changing_settings(restore_state):
    cases = [_case_arrays(i, dt, s) for i, (dt, s) in enumerate(CONCURRENT_CASES)]
    stop = threading.Event()
    errors = []
    calls = [0] * 8

    def worker(w):
        try:
            k = w
            while not stop.is_set() and calls[w] < 400:
                a, b, want = cases[k % len(cases)]
                if k % 2:
                    out = np.full(want.shape, 3, want.dtype)
                    got = fastbmm.bmm(a, b, out=out)
                    assert got is out
                else:
                    got = fastbmm.bmm(a, b)
                if not np.array_equal(got, want):
                    raise AssertionError(f"worker {w}: case {k % len(cases)} "
                                         f"({want.dtype}, {a.shape}) wrong")
                k += 3
                calls[w] += 1
        except BaseException as e:  # reported by the main thread
            errors.append(e)
            stop.set()

    def fiddler():
        i = 0
        while not stop.is_set():
            fastbmm.set_num_threads(1 + i % 4)
            if i % 7 == 0:
                _runtime.set_kernel(KERNELS[(i // 7) % len(KERNELS)])
            i += 1
            time.sleep(0.0005)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    fid = threading.Thread(target=fiddler)
    fid.start()
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    stop.set()
    fid.join(10)
    assert not any(t.is_alive() for t in threads), "a bmm call hung"
    if errors:
        raise errors[0]
    assert sum(calls) >= 8 * 50, calls


def test_concurrent_errors_and_successes_do_not_interfere():
    """Failing calls in some threads never disturb other threads' results."""
    a, b, want = _case_arrays(1, np.int32, (3, 20, 30, 40))
    bad = [
        (lambda: fastbmm.bmm(a, b.astype(np.int64)), DtypeError),
        (lambda: fastbmm.bmm(a, b[:2]), ShapeError),
        (lambda: fastbmm.bmm(a.astype(np.uint32), b.astype(np.uint32)), UnsupportedDtypeError),
        (lambda: fastbmm.bmm(a, b, out=np.zeros((3, 20, 41), np.int32)), ShapeError),
        (lambda: fastbmm.bmm(a.tolist(), b), TypeError),
    ]
    errors = []

    def good():
        try:
            for _ in range(300):
                assert np.array_equal(fastbmm.bmm(a, b), want)
        except BaseException as e:
            errors.append(e)

    def failing():
        try:
            for i in range(1500):
                call, exc = bad[i % len(bad)]
                try:
                    call()
                except exc:
                    pass
                else:
                    raise AssertionError("no exception")
        except BaseException as e:
            errors.append(e)

    ts = [threading.Thread(target=f) for f in (good, failing, good, failing)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not any(t.is_alive() for t in ts)
    if errors:
        raise errors[0]


@pytest.mark.parametrize("nthreads", [1, 2])
def test_gil_released_during_a_large_product(restore_state, nthreads):
    """Another Python thread keeps running while one big bmm computes.

    The main thread counts and records the longest pause between two of its
    loop iterations while a worker thread runs a ~0.3-1 s product. Were the
    GIL held for the call, that pause would last about the whole call."""
    fastbmm.set_num_threads(nthreads)
    n = 1200
    rng = np.random.default_rng(0)
    a1 = rng.standard_normal((1, n, n))
    b1 = rng.standard_normal((1, n, n))
    # calibrate: enough batch entries for a call of >= ~0.3 s on this machine
    t0 = time.perf_counter()
    fastbmm.bmm(a1, b1)
    batch = int(min(16, max(1, np.ceil(0.3 / (time.perf_counter() - t0)))))
    a = np.broadcast_to(a1, (batch, n, n))
    b = np.broadcast_to(b1, (batch, n, n))
    state = {"in_call": False, "done": False}
    result = {}

    def compute():
        state["in_call"] = True
        t0 = time.perf_counter()
        result["r"] = fastbmm.bmm(a, b)
        result["t"] = time.perf_counter() - t0
        state["done"] = True

    worker = threading.Thread(target=compute)
    count, gap = 0, 0.0
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        worker.start()
        while not state["in_call"]:
            time.sleep(0)
        t0 = last = time.perf_counter()
        while not state["done"]:
            count += 1
            now = time.perf_counter()
            gap = max(gap, now - last)
            last = now
        t_count = time.perf_counter() - t0
        worker.join(120)
    finally:
        sys.setswitchinterval(old)
    assert not worker.is_alive()
    want = np.matmul(a1[0], b1[0])
    for r in result["r"]:
        np.testing.assert_allclose(r, want, rtol=1e-9, atol=1e-9 * n)
    assert result["t"] > 0.1, f"the product ({result['t']:.3f} s) was too quick to tell anything"
    assert count > 1000 and gap < 0.5 * result["t"], (
        f"{count} increments in {t_count:.3f} s, longest pause {gap:.3f} s, while bmm ran "
        f"{result['t']:.3f} s: the GIL seems to be held during the computation")


# ----------------------------------------------------------------------------
# (c) fork
# ----------------------------------------------------------------------------

FORK_SCRIPT = r"""
import multiprocessing as mp, os, sys, threading
import numpy as np
import fastbmm

def os_threads():
    with open("/proc/self/status") as f:
        return int([l for l in f if l.startswith("Threads:")][0].split()[1])

rng = np.random.default_rng(0)
a = rng.integers(-100, 100, size=(4, 150, 170)).astype(np.int32)
b = rng.integers(-100, 100, size=(4, 170, 160)).astype(np.int32)
want = np.matmul(a.astype(np.int64), b.astype(np.int64)).astype(np.int32)

fastbmm.set_num_threads(2)
fastbmm._runtime._team_follows_load(False)   # a team of 2 even on a loaded machine
for _ in range(5):  # the OpenMP pool of 2 threads is up
    assert np.array_equal(fastbmm.bmm(a, b), want)
assert fastbmm.get_num_threads() == 2

def child(q):
    try:
        n0 = fastbmm.get_num_threads()       # the parent's setting holds ...
        r = fastbmm.bmm(a, b)
        fastbmm.set_num_threads(3)           # ... and a new one is honoured
        n1 = fastbmm.get_num_threads()
        r2 = fastbmm.bmm(a, b, out=np.empty_like(want))
        # the initial thread's regions ran on a helper thread, with a team
        helper = fastbmm.show_config(mode="dicts")["threads"]["regions_from_helper_thread"]
        q.put((n0, n1, helper, os_threads() >= 3,
               bool(np.array_equal(r, want) and np.array_equal(r2, want))))
    except BaseException as e:
        q.put(repr(e))

ctx = mp.get_context("fork")
MODE = sys.argv[1]
stop = threading.Event()
if MODE == "busy":
    # another thread keeps the parent's OpenMP pool busy while we fork
    def spin():
        while not stop.is_set():
            fastbmm.bmm(a, b)
    t = threading.Thread(target=spin); t.start()
for _ in range(3):
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(q,))
    p.start()
    res = q.get(timeout=40)
    p.join(20)
    assert p.exitcode == 0, p.exitcode
    assert res == (2, 3, True, True, True), res
stop.set()
# the parent is unaffected
assert fastbmm.get_num_threads() == 2
assert np.array_equal(fastbmm.bmm(a, b), want)
if MODE == "os.fork":
    pid = os.fork()
    if pid == 0:
        ok = fastbmm.get_num_threads() == 2 and np.array_equal(fastbmm.bmm(a, b), want)
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
print("FORK-OK")
"""


def run_script(script, *args, timeout=60, env=None):
    """Run a script in a fresh interpreter; fail on a hang (timeout) or a non-zero exit."""
    full_env = dict(os.environ)
    full_env.pop("OMP_NUM_THREADS", None)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
    try:
        proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=REPO,
                              env=full_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"hung (timeout {timeout} s): {e.stdout!r} {e.stderr!r}")
    assert proc.returncode == 0, (
        f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.parametrize("mode", ["idle", "busy", "os.fork"])
def test_fork_after_parallel_use(mode):
    assert "FORK-OK" in run_script(FORK_SCRIPT, mode)


OTHER_OPENMP_LIBRARY = r"""
#include <omp.h>
int team_size(void) { int n = 0;
#pragma omp parallel reduction(+:n)
  n += 1;
  return n; }
"""

IMPORT_IN_FORK_CHILD_SCRIPT = r"""
import ctypes, os, sys
import numpy as np
lib = ctypes.CDLL(sys.argv[1])
assert lib.team_size() >= 2          # its libgomp pool is up in the parent
pid = os.fork()
if pid == 0:
    try:
        import fastbmm
        fastbmm._runtime._team_follows_load(False)
        fastbmm.set_num_threads(2)
        a = (np.arange(8 * 200 * 200) % 13).astype(np.float32).reshape(8, 200, 200)
        r = fastbmm.bmm(a, a)
        ok = np.array_equal(r, np.matmul(a.astype(np.float64), a).astype(np.float32))
        ok = ok and fastbmm.get_num_threads() == 2
        ok = ok and fastbmm.show_config(mode="dicts")["threads"]["regions_from_helper_thread"]
        os._exit(0 if ok else 3)
    except BaseException:
        os._exit(4)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
print("CHILD-OK")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_fork_child_importing_fastbmm_after_another_openmp_library(tmp_path):
    """Issue 9 item 2: another library's OpenMP region in the parent, fork, then
    the first import of fastbmm in the child: the child's initial thread holds
    the parent's libgomp pool, whose threads do not exist; it must not hang."""
    import shutil
    if not fastbmm.show_config(mode="dicts")["openmp"]:
        pytest.skip("built without OpenMP")
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler to build the other OpenMP library")
    src = tmp_path / "other.c"
    src.write_text(OTHER_OPENMP_LIBRARY)
    lib = tmp_path / "libother.so"
    build = subprocess.run([cc, "-fopenmp", "-shared", "-fPIC", str(src), "-o", str(lib)],
                           capture_output=True, text=True)
    if build.returncode != 0:
        pytest.skip(f"cannot build an OpenMP library: {build.stderr}")
    assert "CHILD-OK" in run_script(IMPORT_IN_FORK_CHILD_SCRIPT, lib, timeout=60)


FORK_UNUSED_SCRIPT = r"""
import os
import numpy as np
import fastbmm
fastbmm._runtime._team_follows_load(False)
a = (np.arange(8 * 150 * 150) % 11).astype(np.float64).reshape(8, 150, 150)
pid = os.fork()                      # the parent never ran a parallel region
if pid == 0:
    fastbmm.set_num_threads(2)
    with open("/proc/self/status") as f:
        before = int([l for l in f if l.startswith("Threads:")][0].split()[1])
    ok = np.array_equal(fastbmm.bmm(a, a), np.matmul(a, a))
    with open("/proc/self/status") as f:
        after = int([l for l in f if l.startswith("Threads:")][0].split()[1])
    state = fastbmm.show_config(mode="dicts")["threads"]
    ok = ok and fastbmm.get_num_threads() == 2 and after == before + 1   # one OpenMP worker
    ok = ok and not state["regions_from_helper_thread"]                  # run from this thread
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
print("CHILD-OK")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_fork_child_of_a_parent_without_threads_runs_parallel():
    """Issue 9 item 4: a child whose parent had no other thread at fork() (so no
    OpenMP pool) is not made serial, and set_num_threads(2) in it takes effect.
    (NumPy's OpenBLAS would start threads of its own: one, so none.)"""
    assert "CHILD-OK" in run_script(FORK_UNUSED_SCRIPT, env={"OPENBLAS_NUM_THREADS": "1"})


THREAD_LIMIT_SCRIPT = r"""
import resource, sys
import numpy as np, fastbmm
fastbmm._runtime._team_follows_load(False)
a = (np.arange(64 * 200 * 200) % 5).astype(np.float32).reshape(64, 200, 200)
want = np.matmul(a.astype(np.float64), a).astype(np.float32)
assert np.array_equal(fastbmm.bmm(a, a), want)
with open("/proc/self/statm") as f:
    vm = int(f.read().split()[0]) * resource.getpagesize()
limit = vm + 300 * 2 ** 20                                   # ~300 MiB of headroom
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
fastbmm.set_num_threads(int(sys.argv[1]))
try:
    ok = np.array_equal(fastbmm.bmm(a, a), want)
    print("RAN", fastbmm.show_config(mode="dicts")["threads"]["max_per_call"], ok)
except RuntimeError as e:
    assert "cannot start" in str(e) and "set_num_threads" in str(e), e
    print("REFUSED")
fastbmm.set_num_threads(1)                                   # and it still works
assert np.array_equal(fastbmm.bmm(a, a), want)
print("ALIVE")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc")
def test_thread_count_beyond_memory_is_capped_not_fatal():
    """Issue 9 item 3, as reported: 64 threads under ~300 MiB of address space.
    libgomp called exit(1); now a call starts at most 4 threads per CPU (>= 8)."""
    out = run_script(THREAD_LIMIT_SCRIPT, 64).split()
    assert out[-1] == "ALIVE", out
    if out[0] == "RAN":
        assert out[2] == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc")
def test_thread_creation_failure_is_an_exception():
    """Thread stacks that do not fit (OMP_STACKSIZE=100M, 5 workers, 300 MiB):
    a RuntimeError naming a count that works, and the process carries on."""
    if not fastbmm.show_config(mode="dicts")["openmp"]:
        pytest.skip("built without OpenMP")
    out = run_script(THREAD_LIMIT_SCRIPT, 6, env={"OMP_STACKSIZE": "100M"}).split()
    assert out == ["REFUSED", "ALIVE"], out


BUSY_CORE_SCRIPT = r"""
import statistics, subprocess, sys, threading, time
import numpy as np, fastbmm

DEFAULT = fastbmm.get_num_threads()      # OMP_NUM_THREADS unset: the CPUs


class BusyThread:
    # A thread of this process that keeps a core busy with the GIL released
    # (a ufunc over 8 MiB), as OpenBLAS's workers spin after numpy.matmul.
    def __init__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        x = np.ones(1 << 20)
        while not self.stop.is_set():
            np.sqrt(x, out=x)

    def kill(self):
        self.stop.set()

    def wait(self):
        self.thread.join()


if sys.argv[1] == "process":
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
else:
    busy = BusyThread()
try:
    time.sleep(0.3)
    rng = np.random.default_rng(0)
    for b, n, m, p in [(1024, 32, 32, 32), (4096, 8, 8, 8), (64, 128, 128, 64)]:
        a = rng.standard_normal((b, n, m)).astype(np.float32)
        c = rng.standard_normal((b, m, p)).astype(np.float32)
        med = {}
        for threads in [1, DEFAULT] * 5:             # interleaved rounds
            fastbmm.set_num_threads(threads)
            times = []
            for _ in range(11):
                t0 = time.perf_counter()
                fastbmm.bmm(a, c)
                times.append(time.perf_counter() - t0)
            med.setdefault(threads, []).append(statistics.median(times))
        print(f"{b}x{n}x{m}x{p}", statistics.median(med[1]), statistics.median(med[DEFAULT]))
finally:
    busy.kill()
    busy.wait()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("competitor", ["process", "thread"])
def test_busy_core_does_not_slow_the_default_thread_count(competitor):
    """Issue 9 item 16: with one core taken by a CPU-bound process, the default
    thread count was ~15x slower than one thread (1024x32^3 float32): its
    second thread shared the busy core and the first waited for it. The bound
    is generous for a shared CI machine, 3x (the goal, on a quiet machine, is
    1.2x), and one of three attempts must meet it: other processes coming and
    going can slow any one measurement, the defect slowed every one.

    "thread": the busy core is taken by another thread of this process, as
    OpenBLAS's workers take one for 0.1 s after each numpy.matmul. fastbmm
    once counted every thread of its own process as its own: 64x128x128x64
    ran 3.0x slower than one thread there (1.05x since), so the bound is 2x."""
    bound = {"process": 3, "thread": 2}[competitor]
    if len(os.sched_getaffinity(0)) > 8:
        pytest.skip("one busy core hardly matters on this many CPUs")
    failures = []
    for attempt in range(3):
        slow = []
        for line in run_script(BUSY_CORE_SCRIPT, competitor, timeout=300).splitlines():
            shape, one, default = line.split()
            if float(default) > bound * float(one):
                slow.append(f"{shape}: default threads {float(default) * 1e3:.2f} ms, "
                            f"one thread {float(one) * 1e3:.2f} ms")
        if not slow:
            return
        failures.append("; ".join(slow))
    pytest.fail(f"slower than {bound}x one thread in every attempt: " + " | ".join(failures))


COMPETITOR_SCRIPT = r"""
import sys, threading, time
import numpy as np, fastbmm
from fastbmm import _runtime, bench

# idle threads (asleep on an event): past 64, the reading opens each thread's
# file instead of keeping them open
idle = threading.Event()
sleepers = [threading.Thread(target=idle.wait, daemon=True) for _ in range(int(sys.argv[1]))]
for t in sleepers:
    t.start()
fastbmm.set_num_threads(2)
_runtime._team_follows_load(False)       # a worker, whatever the load
a = np.ones((64, 48, 48))
# Right after a call its worker spins in GNU OpenMP's pool (8 ms on a Zen 3):
# runnable, and fastbmm's own, so no competitor. The spin can end before the
# second reading gets to the worker (80 threads' files, read slowly under
# ASan on a loaded VM: 0 of 40 once): up to 200 calls, until it is seen 3 times.
seen_worker = 0
for _ in range(200):
    bench.settle()
    fastbmm.bmm(a, a)
    competing = _runtime._competing_threads_of_process()
    runnable = bench._other_runnable_threads()
    assert competing == 0, (competing, runnable)
    seen_worker += runnable > 0
    if seen_worker >= 3:
        break
print("own worker seen runnable", seen_worker)
assert seen_worker > 0

# A thread of this process that computes with the GIL released competes. Its
# ufunc runs 10 ms and more: the reading holds the GIL, and a thread that waits
# for the GIL sleeps (opening 80 threads' files, the reading outlasted a shorter one).
stop = threading.Event()
def spin():
    x = np.ones(1 << 22)
    while not stop.is_set():
        np.sqrt(x, out=x)
busy = threading.Thread(target=spin)
busy.start()
try:
    counts = []
    for _ in range(40):
        time.sleep(0.002)
        counts.append(_runtime._competing_threads_of_process())
finally:
    stop.set()
    busy.join()
print("competing with a busy thread", max(counts))
assert max(counts) >= 1, counts
idle.set()
for t in sleepers:
    t.join()
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads /proc/self/task")
@pytest.mark.parametrize("idle_threads", [0, 80])
def test_own_workers_are_no_competitors_other_threads_are(idle_threads):
    """The team size counts this process's runnable threads as competitors
    but the caller and fastbmm's own workers (which spin a while after each
    call): a worker taken for a competitor made the default team one thread on
    a quiet machine, and OpenBLAS's spinning workers, not counted, made a
    2-thread call after numpy.matmul 3-6x slower."""
    # GNU OpenMP's default spin (it wins over OMP_WAIT_POLICY, should that be set)
    out = run_script(COMPETITOR_SCRIPT, idle_threads, env={"GOMP_SPINCOUNT": "300000"})
    assert "own worker seen runnable" in out and "competing with a busy thread" in out


KEPT_FILES_SCRIPT = r"""
import os, time
import numpy as np, fastbmm
from fastbmm import _runtime

fastbmm.set_num_threads(2)
a = np.ones((64, 48, 48))
want = a @ a
fastbmm.bmm(a, a)
_runtime._competing_threads_of_process()          # the /proc files are open now
def kept():
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("/proc/"):
                fds.append(int(fd))
        except OSError:
            pass
    return sorted(fds)
ours = kept()
assert ours, "no /proc file kept open"
# The process closes descriptors it does not own, and reuses their numbers.
for fd in ours:
    os.close(fd)
users = [os.open(os.devnull, os.O_RDONLY) for _ in ours]
assert sorted(users) == ours, (users, ours)
time.sleep(0.02)                                  # past the reading interval
for _ in range(20):
    assert np.array_equal(fastbmm.bmm(a, a), want)
    assert _runtime._competing_threads_of_process() >= 0
    time.sleep(0.002)
for fd in users:                                  # still the user's, still open
    os.fstat(fd)
    assert os.readlink(f"/proc/self/fd/{fd}") == os.devnull
print("KEPT-OK", len(ours), len(kept()))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd")
def test_kept_proc_files_survive_a_process_closing_them():
    """The load reading keeps /proc files open; a process that closes
    descriptors it does not own and reuses the numbers must lose nothing: the
    reused ones are never read as /proc files nor closed, and fastbmm reopens
    its own."""
    out = run_script(KEPT_FILES_SCRIPT).split()
    assert out[0] == "KEPT-OK", out
    assert int(out[2]) >= 1, out                 # reopened


# ----------------------------------------------------------------------------
# (d) leaks
# ----------------------------------------------------------------------------

def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _call_mix(arrs, n):
    """n rounds of successful and failing calls of every kind."""
    a, b, o, a64, big_a, big_b, big_o, cplx, bswap = arrs
    masked = np.ma.masked_array(a)
    ro = np.zeros_like(o)
    ro.flags.writeable = False
    overlap = as_strided(np.zeros(o.shape[2], o.dtype), shape=o.shape,
                         strides=(0, 0, o.itemsize), writeable=True)
    failing = [
        (lambda: fastbmm.bmm([1], b), TypeError),
        (lambda: fastbmm.bmm(a, None), TypeError),
        (lambda: fastbmm.bmm(a, b, out=[0]), TypeError),
        (lambda: fastbmm.bmm(a[0], b), ShapeError),
        (lambda: fastbmm.bmm(a, b[0]), ShapeError),
        (lambda: fastbmm.bmm(a, b[:1]), ShapeError),
        (lambda: fastbmm.bmm(a, a), ShapeError),
        (lambda: fastbmm.bmm(a, b, out=o[:, :1]), ShapeError),
        (lambda: fastbmm.bmm(a, b.astype(np.float64)), DtypeError),
        (lambda: fastbmm.bmm(a, b, out=a64), DtypeError),
        (lambda: fastbmm.bmm(a.astype(bool), b.astype(bool)), UnsupportedDtypeError),
        (lambda: fastbmm.bmm(a.astype(object), b.astype(object)), UnsupportedDtypeError),
        (lambda: fastbmm.bmm(masked, b), TypeError),
        (lambda: fastbmm.bmm(a, b, out=ro), ValueError),
        (lambda: fastbmm.bmm(a, b, out=overlap), ValueError),
        (lambda: fastbmm.bmm(a, b, ot=o), TypeError),
        (lambda: fastbmm.set_num_threads(0), ValueError),
        (lambda: fastbmm.set_num_threads("x"), TypeError),
    ]
    for i in range(n):
        fastbmm.bmm(a, b)
        fastbmm.bmm(a, b, out=o)
        fastbmm.bmm(cplx, cplx)
        fastbmm.bmm(bswap, bswap, out=bswap)   # aliased + byte-swapped: scratch + copy
        if i % 8 == 0:
            # packed path with its scratch allocation; now and then on 2 threads
            # (only now and then: OpenMP regions are slow on a loaded 2-core CI box)
            threaded = i % 256 == 0
            if threaded:
                fastbmm.set_num_threads(2)
            fastbmm.bmm(big_a, big_b, out=big_o)
            fastbmm.bmm(big_a, big_b)
            if threaded:
                fastbmm.set_num_threads(1)
        call, exc = failing[i % len(failing)]
        try:
            call()
        except exc:
            pass
        else:
            raise AssertionError("expected an exception")


def _leak_arrays():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 6, 5)).astype(np.float32)
    b = rng.standard_normal((4, 5, 7)).astype(np.float32)
    o = np.empty((4, 6, 7), np.float32)
    a64 = np.empty((4, 6, 7), np.float64)
    big_a = rng.standard_normal((2, 40, 50))
    big_b = rng.standard_normal((2, 50, 30))
    big_o = np.empty((2, 40, 30))
    cplx = (rng.standard_normal((3, 4, 4)) + 0j).astype(np.complex64)
    bswap = np.eye(3, dtype=">f8")[None].repeat(2, 0)
    return a, b, o, a64, big_a, big_b, big_o, cplx, bswap


def test_no_leaks_refcounts(restore_state):
    """No call, successful or failing, keeps a reference to an argument."""
    fastbmm.set_num_threads(1)
    arrs = _leak_arrays()
    _call_mix(arrs, 200)
    gc.collect()
    refs = [sys.getrefcount(x) for x in arrs]
    _call_mix(arrs, 2000)
    gc.collect()
    assert [sys.getrefcount(x) for x in arrs] == refs, "a call leaked a reference to an argument"


def test_no_leaks_rss(restore_state):
    fastbmm.set_num_threads(1)
    arrs = _leak_arrays()
    _call_mix(arrs, 2000)  # warm up: caches, arenas, OpenMP pool
    gc.collect()
    rss0 = _rss_bytes()
    _call_mix(arrs, 8000)  # about 40000 calls
    gc.collect()
    grown = _rss_bytes() - rss0
    # one leaked 128-byte block per round would be 1 MiB (a scratch block: far more)
    assert grown < 0.75 * 2 ** 20, f"RSS grew by {grown / 2 ** 20:.2f} MiB over 8000 rounds"


def test_no_leaks_tracemalloc(restore_state):
    fastbmm.set_num_threads(1)
    arrs = _leak_arrays()
    _call_mix(arrs, 500)
    gc.collect()
    tracemalloc.start()
    try:
        _call_mix(arrs, 500)
        gc.collect()
        base, _ = tracemalloc.get_traced_memory()
        _call_mix(arrs, 2500)
        gc.collect()
        now, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 2500 rounds: one leaked small object per round would add >= 80 kB
    assert now - base < 25_000, f"traced memory grew by {now - base} bytes"
