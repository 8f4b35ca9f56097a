"""The engine reads its inputs within their bounds.

Each operand here ends exactly at a page followed by an inaccessible one, so
a load past its last element faults (in a subprocess: the failure is reported,
not the test run killed). A B read in place whose last tile is a whole vector
narrower than NR, against a packed A, was once loaded as a full NR-wide tile:
one vector past B's end (found by tools/sanitize.sh; harmless to the values,
so no value test saw it).
"""

import os
import subprocess
import sys

import pytest

from _helpers import REPO

GUARDED_SCRIPT = r"""
import ctypes, mmap, sys
import numpy as np
import fastbmm, fastbmm._runtime as _runtime

PAGE = mmap.PAGESIZE
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
keep = []

def guarded(x, skew=0):
    # a copy of x ending `skew` bytes before a PROT_NONE page (skew 1:
    # misaligned, and a read of 2+ bytes past the end still faults)
    nbytes = x.nbytes
    pages = (nbytes + skew + PAGE - 1) // PAGE + 1
    mm = mmap.mmap(-1, pages * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    if libc.mprotect(base + (pages - 1) * PAGE, PAGE, 0) != 0:
        raise OSError(ctypes.get_errno(), "mprotect")
    keep.append(mm)
    buf = np.frombuffer(mm, np.uint8, count=nbytes, offset=(pages - 1) * PAGE - nbytes - skew)
    y = buf.view(x.dtype).reshape(x.shape)
    y[...] = x
    return y

rng = np.random.default_rng(0)
cases = 0
for kernel in _runtime.available_kernels():
    _runtime.set_kernel(kernel)
    bs = _runtime.block_sizes()
    for dt in (np.float32, np.float64, np.int32, np.int64):
        vl = bs["f64" if dt == np.float64 else "u64" if dt == np.int64 else "f32"]["NR"] // 2
        for p in sorted({vl, 2 * vl + vl, 3 * vl, vl + 1, 9}):
            for n, m in ((13, 20), (2, 300), (9, 9)):
                a = rng.integers(-3, 4, (2, n, m)).astype(dt)
                b = rng.integers(-3, 4, (2, m, p)).astype(dt)
                want = np.matmul(a.astype(np.int64), b.astype(np.int64)).astype(dt)
                for skew_a in (0, 1):       # 1: A misaligned, hence packed
                    ga, gb = guarded(a, skew_a), guarded(b)
                    got = fastbmm.bmm(ga, gb)
                    assert np.array_equal(got, want), (kernel, dt, n, m, p)
                    got = fastbmm.bmm(guarded(a.transpose(0, 2, 1).copy()).transpose(0, 2, 1), gb)
                    assert np.array_equal(got, want), (kernel, dt, n, m, p, "A^T")
                    cases += 2
print(cases)
"""


def test_inputs_read_within_their_bounds():
    pytest.importorskip("ctypes")
    if not sys.platform.startswith("linux"):
        pytest.skip("mprotect through ctypes: Linux only")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", GUARDED_SCRIPT], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (
        f"exit {proc.returncode} (-11: a read past an operand's end hit the guard page)\n"
        f"{proc.stderr[-3000:]}")
    assert int(proc.stdout.split()[-1]) > 0
