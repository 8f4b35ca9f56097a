import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastbmm

from _reference import assert_bmm_close, random_values

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
     (1.5, TypeError), (2.0, TypeError), ("2", TypeError), (None, TypeError), ([2], TypeError)],
    ids=["0", "-1", "-8", "1.5", "2.0", "str", "None", "list"],
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
