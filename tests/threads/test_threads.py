import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastbmm

from _helpers import REPO, assert_bmm_close, random_values


@pytest.fixture
def restore_threads():
    previous = fastbmm.get_num_threads()
    yield
    fastbmm.set_num_threads(previous)


def run_python(code, **env_overrides):
    """Run ``code`` in a fresh interpreter (clean OpenMP state); return its stdout."""
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.update({k: v for k, v in env_overrides.items() if v is not None})
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.strip()


@pytest.mark.parametrize("n", [1, 2, 3, 8, 64])
def test_set_get_round_trip(restore_threads, n):
    fastbmm.set_num_threads(n)
    assert fastbmm.get_num_threads() == n
    assert fastbmm.show_config(mode="dicts")["num_threads"] == n


@pytest.mark.parametrize(
    "value,exc",
    [(0, ValueError), (-1, ValueError), (-8, ValueError),
     (1.5, TypeError), (2.0, TypeError), ("2", TypeError), ([2], TypeError)],
    ids=["0", "-1", "-8", "1.5", "2.0", "str", "list"],
)
def test_set_num_threads_rejects(restore_threads, value, exc):
    fastbmm.set_num_threads(3)
    with pytest.raises(exc) as info:
        fastbmm.set_num_threads(value)
    msg = str(info.value)
    # A clear message names the offending value or what was expected.
    assert msg and (repr(value) in msg or str(value) in msg or type(value).__name__ in msg
                    or "positive" in msg or "int" in msg), msg
    assert fastbmm.get_num_threads() == 3, "a rejected value changed the thread count"


@pytest.mark.parametrize("value", [True, False])
def test_set_num_threads_rejects_bools(restore_threads, value):
    fastbmm.set_num_threads(3)
    with pytest.raises((TypeError, ValueError)):
        fastbmm.set_num_threads(value)
    assert fastbmm.get_num_threads() == 3


@pytest.mark.parametrize("omp", ["1", "3"])
def test_omp_num_threads_honoured(omp):
    out = run_python(
        """
        import fastbmm
        print(fastbmm.get_num_threads(), fastbmm.show_config(mode="dicts")["num_threads"])
        """,
        OMP_NUM_THREADS=omp,
    )
    assert out.split() == [omp, omp]


def test_default_is_openmp_max_threads():
    out = run_python(
        """
        import os, fastbmm
        print(fastbmm.get_num_threads(), len(os.sched_getaffinity(0)))
        """
    )
    got, cpus = out.split()
    assert got == cpus


def test_threadpoolctl_controls_fastbmm():
    pytest.importorskip("threadpoolctl")
    out = run_python(
        """
        import fastbmm
        from threadpoolctl import threadpool_info, threadpool_limits
        apis = [i["user_api"] for i in threadpool_info()]
        assert "openmp" in apis, apis
        default = fastbmm.get_num_threads()
        with threadpool_limits(1):
            inside = fastbmm.get_num_threads()
        with threadpool_limits(limits=2, user_api="openmp"):
            inside2 = fastbmm.get_num_threads()
        after = fastbmm.get_num_threads()
        print(default, inside, inside2, after)
        """,
        OMP_NUM_THREADS="4",
    )
    default, inside, inside2, after = map(int, out.split())
    assert default == 4
    assert inside == 1
    assert inside2 == 2
    assert after == 4


def test_threadpoolctl_sees_openmp_after_import():
    pytest.importorskip("threadpoolctl")
    out = run_python(
        """
        from threadpoolctl import threadpool_info
        before = [i for i in threadpool_info() if i["user_api"] == "openmp"]
        import fastbmm
        after = [i for i in threadpool_info() if i["user_api"] == "openmp"]
        print(len(before), len(after), after[0]["num_threads"] if after else -1)
        """,
        OMP_NUM_THREADS="3",
    )
    n_before, n_after, nthreads = map(int, out.split())
    assert n_after >= 1, "no OpenMP runtime visible to threadpoolctl after importing fastbmm"
    assert nthreads == 3


def test_set_num_threads_does_not_need_reimport():
    out = run_python(
        """
        import numpy as np, fastbmm
        fastbmm.set_num_threads(2)
        a = np.ones((4, 30, 40), np.float64)
        r = fastbmm.bmm(a, a.transpose(0, 2, 1))
        print(fastbmm.get_num_threads(), float(r[0, 0, 0]))
        """,
        OMP_NUM_THREADS="1",
    )
    assert out.split() == ["2", "40.0"]


INT_CASES = {
    "many_batches": (64, 20, 30, 25),
    "split_one_matrix": (1, 300, 40, 600),
    "few_batches_big": (3, 130, 17, 270),
}


@pytest.mark.parametrize("shape", list(INT_CASES.values()), ids=list(INT_CASES))
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
def test_integer_results_identical_across_thread_counts(restore_threads, dtype, shape):
    b, n, m, p = shape
    rng = np.random.default_rng(42)
    a = random_values(rng, (b, n, m), np.dtype(dtype))
    c = random_values(rng, (b, m, p), np.dtype(dtype))
    results = []
    for t in (1, 2, 8):
        fastbmm.set_num_threads(t)
        results.append(fastbmm.bmm(a, c))
    assert_bmm_close(results[0], a, c)
    for r in results[1:]:
        assert np.array_equal(r, results[0])


def test_calls_from_python_threads_are_independent(restore_threads):
    """Concurrent bmm calls (each using OpenMP inside) give the right answers."""
    from concurrent.futures import ThreadPoolExecutor

    fastbmm.set_num_threads(2)
    rng = np.random.default_rng(7)
    problems = [(random_values(rng, (4, 40, 50), np.dtype(np.int32)),
                 random_values(rng, (4, 50, 30), np.dtype(np.int32))) for _ in range(8)]
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda ab: fastbmm.bmm(*ab), problems * 3))
    for (a, c), r in zip(problems * 3, results):
        assert_bmm_close(r, a, c)


# ----------------------------------------------------------------------------
# threadpoolctl and fastbmm.threads() (issue 11): fastbmm's setting is OpenMP's
# own, per thread, so what threadpoolctl reports is what fastbmm uses, and its
# limits apply whether or not set_num_threads was called. Run in fresh
# interpreters: the OpenMP state is per process and per thread. The number of
# threads the process holds after a large call shows how many really ran
# (libgomp keeps its workers).

PROBE = """
import threading
import numpy as np, fastbmm
from threadpoolctl import threadpool_info, threadpool_limits
fastbmm._runtime._team_follows_load(False)     # the full team even on a loaded machine
A = np.arange(8 * 64 * 64, dtype=np.float64).reshape(8, 64, 64) % 7
WANT = np.matmul(A, A)



def os_threads():
    with open("/proc/self/status") as f:
        return int([l for l in f if l.startswith("Threads:")][0].split()[1])

BASE = os_threads()          # NumPy's BLAS may hold threads of its own


def ran():
    # run a call; return the threads fastbmm holds now, this one included
    assert np.array_equal(fastbmm.bmm(A, A), WANT)
    return os_threads() - BASE + 1

def reported():
    mine = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]
    assert len(mine) == 1, threadpool_info()
    return mine[0]
"""

needs_threadpoolctl = pytest.mark.skipif(
    not fastbmm.show_config(mode="dicts")["openmp"], reason="built without OpenMP")


def run_probe(body, omp="4"):
    pytest.importorskip("threadpoolctl")
    return run_python(PROBE + textwrap.dedent(body), OMP_NUM_THREADS=omp).split()


@needs_threadpoolctl
def test_threadpoolctl_limits_without_set_num_threads():
    out = run_probe("""
        with threadpool_limits(1, user_api="openmp"):
            inside = (fastbmm.get_num_threads(), reported(), ran())
        print(*inside, fastbmm.get_num_threads(), reported())
        """)
    # one thread in the process after the call: the limit held
    assert out == ["1", "1", "1", "4", "4"]


@needs_threadpoolctl
def test_threadpoolctl_sees_and_limits_set_num_threads():
    out = run_probe("""
        fastbmm.set_num_threads(3)
        before = (fastbmm.get_num_threads(), reported())
        with threadpool_limits(1, user_api="openmp"):
            inside = (fastbmm.get_num_threads(), reported(), ran())
        after = (fastbmm.get_num_threads(), reported(), ran())
        print(*before, *inside, *after)
        """)
    assert out[:5] == ["3", "3", "1", "1", "1"], out
    assert out[5:7] == ["3", "3"], out
    assert int(out[7]) >= 3, "after the limits, the call ran on fewer than 3 threads"


@needs_threadpoolctl
def test_set_num_threads_none_restores_default():
    out = run_probe("""
        fastbmm.set_num_threads(2)
        a = (fastbmm.get_num_threads(), reported())
        fastbmm.set_num_threads(None)
        print(*a, fastbmm.get_num_threads(), reported())
        """, omp="3")
    assert out == ["2", "2", "3", "3"]


@needs_threadpoolctl
def test_setting_reaches_other_python_threads_and_their_limits_win():
    out = run_probe("""
        fastbmm.set_num_threads(3)
        seen = []
        def worker():
            seen.append(fastbmm.get_num_threads())
            with threadpool_limits(1, user_api="openmp"):
                seen.append(fastbmm.get_num_threads())
            seen.append(fastbmm.get_num_threads())
        t = threading.Thread(target=worker); t.start(); t.join()
        print(*seen)
        """)
    assert out == ["3", "1", "3"]


@needs_threadpoolctl
def test_threads_context_manager():
    out = run_probe("""
        res = []
        with fastbmm.threads(1):
            res.append(fastbmm.get_num_threads())
            res.append(ran())
        res.append(fastbmm.get_num_threads())
        fastbmm.set_num_threads(2)
        try:
            with fastbmm.threads(3):
                res.append(fastbmm.get_num_threads())
                with fastbmm.threads(None):            # the default, nested
                    res.append(fastbmm.get_num_threads())
                res.append(fastbmm.get_num_threads())
                raise KeyError("boom")
        except KeyError:
            pass
        res.append(fastbmm.get_num_threads())         # restored on the exception
        with threadpool_limits(1, user_api="openmp"):
            with fastbmm.threads(2):
                res.append(fastbmm.get_num_threads())
            res.append(fastbmm.get_num_threads())     # the outer limit is back
        res.append(fastbmm.get_num_threads())
        print(*res)
        """)
    assert out == ["1", "1", "4", "3", "4", "3", "2", "2", "1", "2"], out


def test_threads_context_manager_rejects_bad_counts(restore_threads):
    fastbmm.set_num_threads(2)
    for bad, exc in [(0, ValueError), (1.5, TypeError), (True, TypeError)]:
        with pytest.raises(exc, match="set_num_threads"):
            fastbmm.threads(bad)
    assert fastbmm.get_num_threads() == 2
    assert "threads" in fastbmm.__all__ and fastbmm.threads is fastbmm._runtime.threads
