# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The runtime: which kernel variant runs, on how many threads, and the run itself.

Three things live here, and nothing else:

* the kernel variant (``compiled_kernels``, ``available_kernels``,
  ``get_kernel``, ``set_kernel``, ``cpu_features``, ``block_sizes``): the
  best one this CPU runs is chosen at import;
* the thread count and fork handling (``set_num_threads``, ``threads``,
  ``thread_state``, ...): the mechanics are in src/threads.c, this is their
  Python face;
* ``run_problem``: an engine problem (``_problem``) planned by the variant in
  use, its scratch allocated with the GIL held, then its tasks run with the
  GIL released on an OpenMP team (src/threads.c); and ``peak_fma``, the
  variant's multiply-add loop run on such a team, for the benchmark's peak.

This module links the C engine: it is the only one that calls into it.
"""

from libc.stdint cimport int64_t, uintptr_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from ._engine cimport (FBMM_ALIGN, FBMM_OK, fbmm_cpu_features, fbmm_engine, fbmm_engine_at,
                       fbmm_engine_supported, fbmm_num_engines, fbmm_problem)
from ._openmp_helpers cimport (FASTBMM_OPENMP, fbmm_available_cpus,
                               fbmm_competing_threads_of_process, fbmm_delegates_regions,
                               fbmm_fork_state, fbmm_probe_threads, fbmm_run_tasks,
                               fbmm_threads_applied, fbmm_threads_cap, fbmm_threads_current,
                               fbmm_threads_follow_load, fbmm_threads_free_cpus,
                               fbmm_threads_default, fbmm_threads_init, fbmm_threads_restore,
                               fbmm_threads_set, fbmm_threads_setting)

import operator
import os

from ._dtypes import code_of

import numpy as np

# --------------------------------------------------------------------------
# Kernel variant

cdef const fbmm_engine *_engine = NULL


def compiled_kernels():
    """Names of the engine variants built into this module, best first."""
    return [fbmm_engine_at(i).name.decode() for i in range(fbmm_num_engines())]


def available_kernels():
    """Names of the compiled variants this CPU can run, best first."""
    return [fbmm_engine_at(i).name.decode() for i in range(fbmm_num_engines())
            if fbmm_engine_supported(fbmm_engine_at(i))]


def get_kernel():
    """Name of the variant in use."""
    return _engine.name.decode()


def set_kernel(name):
    """Force a variant (for tests and comparisons); it must run on this CPU."""
    global _engine
    cdef int i
    for i in range(fbmm_num_engines()):
        if fbmm_engine_at(i).name.decode() == name:
            if not fbmm_engine_supported(fbmm_engine_at(i)):
                raise RuntimeError(
                    f"fastbmm: kernel {name!r} was compiled in but this CPU cannot run it "
                    f"(CPU features: {cpu_features()})")
            _engine = fbmm_engine_at(i)
            return
    raise ValueError(f"fastbmm: unknown kernel {name!r}; compiled: {compiled_kernels()}")


def cpu_features():
    return fbmm_cpu_features().decode()


cdef extern from "src/block_sizes.h":
    enum:
        FBMM_STREAM_ACC_BYTES


def block_sizes():
    """Register and cache block sizes of the variant in use (see src/block_sizes.h);
    "stream_acc_bytes": the few-rows path's accumulator block, shared by its 1, 2
    or 4 rows (3 take 4's share)."""
    def b(x):
        return {"MR": x["mr"], "NR": x["nr"], "KC": x["kc"], "MC": x["mc"], "NC": x["nc"]}
    return {"small_max": _engine.small_max, "small_max_complex": _engine.small_max_complex,
            "f32": b(_engine.f32), "f64": b(_engine.f64),
            "u32": b(_engine.u32), "u64": b(_engine.u64),
            "stream_acc_bytes": FBMM_STREAM_ACC_BYTES}


def _nest_code(what, table, name):
    """The engine's code of nest `name` in `table` (-1 for None: the best one)."""
    if name is None:
        return -1
    if name not in table:
        raise ValueError(f"fastbmm: unknown {what} kernel {name!r}; known: {list(table)}")
    return table[name]


def _cannot_run(what, name, runnable):
    raise RuntimeError(f"fastbmm: {what} kernel {name!r} cannot run with kernel "
                       f"{get_kernel()!r} on this CPU (it runs {runnable})")


#: bfloat16's packed nests by name (enum fbmm_bf16_nest's codes), best first
#: (the pair-dot nest last: slower than widening where it was timed)
BF16_KERNELS = {"amx": 2, "widen": 0, "vdpbf16ps": 1}


def bf16_kernels():
    """The bfloat16 nests the variant in use can run on this CPU, best first:
    "amx" (AMX-BF16 tiles), "widen" (widened to float32), "vdpbf16ps"
    (AVX512-BF16 pair dot products; only when forced). The avx512_emulated
    variant runs software models of "amx" and "vdpbf16ps"."""
    return [name for name, code in BF16_KERNELS.items() if _engine.bf16_runnable(code)]


def get_bf16_kernel():
    """The bfloat16 nest in use (a name of `bf16_kernels`)."""
    cdef int code = _engine.bf16_nest()
    return next(name for name, c in BF16_KERNELS.items() if c == code)


def set_bf16_kernel(name):
    """Force a bfloat16 nest of the variant in use (for tests and comparisons);
    None: the best one again."""
    if not _engine.set_bf16_nest(_nest_code("bfloat16", BF16_KERNELS, name)):
        _cannot_run("bfloat16", name, bf16_kernels())


#: the int8, uint8 and int16 packed nests by name (enum fbmm_int_nest's codes), best first
INT_KERNELS = {"vpdpwssd": 1, "widen": 0}


def int_kernels():
    """The nests for int8, uint8 and int16 products the variant in use can run
    on this CPU, best first: "vpdpwssd" (pairs of 16-bit products per 32-bit
    lane: AVX512-VNNI in the avx512 variant, AVX-VNNI in the avx2 one), "widen"
    (32-bit lanes). Both give the same bits. The
    avx512_emulated variant runs a software model of "vpdpwssd"."""
    return [name for name, code in INT_KERNELS.items() if _engine.int_runnable(code)]


def get_int_kernel():
    """The int8/uint8/int16 nest in use (a name of `int_kernels`)."""
    cdef int code = _engine.int_nest()
    return next(name for name, c in INT_KERNELS.items() if c == code)


def set_int_kernel(name):
    """Force an int8/uint8/int16 nest of the variant in use (for tests and
    comparisons); None: the best one again."""
    if not _engine.set_int_nest(_nest_code("integer", INT_KERNELS, name)):
        _cannot_run("integer", name, int_kernels())


def _select_best_kernel():
    global _engine
    cdef int i
    for i in range(fbmm_num_engines()):
        if fbmm_engine_supported(fbmm_engine_at(i)):
            _engine = fbmm_engine_at(i)
            return
    # The baseline variant runs on any CPU the module was built for.
    raise ImportError("fastbmm: no compiled kernel variant runs on this CPU")


_select_best_kernel()

# --------------------------------------------------------------------------
# Threads (the mechanics are in src/threads.c)


def openmp_enabled():
    return bool(FASTBMM_OPENMP)


def _init_threads(runtime_preloaded):
    """Called once by fastbmm/__init__.py right after this module is loaded."""
    fbmm_threads_init(1 if (runtime_preloaded and FASTBMM_OPENMP) else 0)


cdef int _checked_count(n) except -1:
    if isinstance(n, (bool, np.bool_)) or not hasattr(type(n), "__index__"):
        raise TypeError(f"set_num_threads(): n must be a positive int or None, "
                        f"not {type(n).__name__}")
    n = operator.index(n)     # accepts NumPy integers too
    if n < 1:
        raise ValueError(f"set_num_threads(): n must be a positive int, got {n}")
    if n > 4096:
        raise ValueError(f"set_num_threads(): n={n} is beyond any sensible thread count (max 4096)")
    return n


def set_num_threads(n):
    """Use ``n`` threads for later calls, from every Python thread.

    This is OpenMP's own setting (``omp_set_num_threads``), applied to each
    Python thread at its next call: ``threadpoolctl.threadpool_info()``
    reports it, and ``threadpool_limits(..., user_api="openmp")`` overrides
    it inside its block.

    Parameters
    ----------
    n : int or None
        A positive number of threads (at most 4096), or None for the default
        (``OMP_NUM_THREADS``, else the number of CPUs). A call starts at most
        4 threads per available CPU (and at least 8) whatever ``n`` is, and
        fewer while other runnable threads (of other processes, or of this
        one but fastbmm's own) take CPUs.

    Raises
    ------
    TypeError
        ``n`` is not an integer (bool included) or None.
    ValueError
        ``n`` is below 1 or above 4096.
    """
    fbmm_threads_set(0 if n is None else _checked_count(n))


def get_num_threads():
    """Number of threads the next call from this Python thread may use.

    OpenMP's setting for this thread: what ``set_num_threads`` set, or
    ``OMP_NUM_THREADS`` / the CPUs by default, or a ``threadpool_limits``
    in force here.
    """
    return fbmm_threads_current()


class threads:
    """Context manager: ``n`` threads inside the block, the previous setting after.

    Parameters
    ----------
    n : int or None
        As for `set_num_threads` (None: the default).

    Examples
    --------
    >>> import numpy as np, fastbmm
    >>> a = np.ones((4, 64, 64), np.float32)
    >>> with fastbmm.threads(1):
    ...     r = fastbmm.bmm(a, a)
    >>> float(r[0, 0, 0])
    64.0
    """

    def __init__(self, n):
        self._n = None if n is None else _checked_count(n)
        self._saved = None

    def __enter__(self):
        if self._saved is not None:
            raise RuntimeError("fastbmm.threads(): this context manager is already in use")
        self._saved = (fbmm_threads_setting(), fbmm_threads_current(), fbmm_threads_applied())
        fbmm_threads_set(0 if self._n is None else self._n)
        return self

    def __exit__(self, *exc):
        setting, icv, applied = self._saved
        self._saved = None
        fbmm_threads_restore(setting, icv, applied)
        return False


def thread_state():
    """How threads are started here, for show_config()."""
    fork_state = fbmm_fork_state()
    delegated = bool(fbmm_delegates_regions())
    if fork_state == 1:
        why = "this process was forked from one with several threads"
    elif fork_state == 2:
        why = "the OpenMP runtime was loaded before fastbmm (maybe in a parent process)"
    else:
        why = ""
    setting = fbmm_threads_setting()
    return {
        "setting": setting if setting > 0 else None,
        "default": fbmm_threads_default(),
        "max_per_call": fbmm_threads_cap(),
        "available_cpus": fbmm_available_cpus(),
        "regions_from_helper_thread": delegated,
        "helper_thread_reason": why if delegated else "",
    }


def _team_follows_load(on):
    """For tests: False starts the full team even when other threads take CPUs."""
    fbmm_threads_follow_load(1 if on else 0)


def _competing_threads_of_process():
    """For tests: the threads of this process that are runnable now and count
    as competitors for CPUs (neither the caller nor a thread fastbmm's
    parallel calls run on); -1 where /proc/self/task cannot be read."""
    return fbmm_competing_threads_of_process()


cdef inline int _threads_for_call() noexcept:
    cdef int n = fbmm_threads_current()
    cdef int cap = fbmm_threads_cap()
    return n if n < cap else cap


cdef int _check_thread_start(int err, int nthreads, int created) except -1:
    if err:
        raise RuntimeError(
            f"fastbmm: cannot start {nthreads} threads: only {created} could run at once "
            f"({os.strerror(err)}); call fastbmm.set_num_threads({max(1, created)}) or fewer, "
            f"or raise the process's memory or thread limits")
    return 0


# --------------------------------------------------------------------------
# The run


cdef int run_problem(fbmm_problem *P) except -1:
    """Plan the tasks of P and run them, on one thread or a team (src/threads.c)."""
    cdef const fbmm_engine *eng = _engine
    if eng.plan(P, _threads_for_call()) != FBMM_OK:
        # the engine has no kernel for this dtype code: a caller's bug, never
        # garbage in the result
        raise RuntimeError(f"fastbmm: the {eng.name.decode()} engine has no kernel for "
                           f"dtype code {P.dtype}")
    # The plan (its tiling) depends on the setting only; the team on the load:
    # tasks are claimed one by one, so any team size runs any plan.
    cdef int nthreads = fbmm_threads_free_cpus(P.threads)
    cdef size_t per_thread = P.scratch_bytes
    cdef char *raw = NULL
    cdef char *base = NULL
    cdef int err = 0, created = 0
    if nthreads > 1:
        # libgomp exits the process when it cannot create a thread: try first
        err = fbmm_probe_threads(nthreads, &created)
        _check_thread_start(err, nthreads, created)
    if per_thread:
        # One allocation per call, with the GIL held; each thread takes its slice.
        raw = <char *>malloc(per_thread * nthreads + FBMM_ALIGN)
        if raw == NULL:
            raise MemoryError(f"fastbmm: cannot allocate {per_thread * nthreads} bytes of scratch")
        base = <char *>((<uintptr_t>raw + FBMM_ALIGN - 1) // FBMM_ALIGN * FBMM_ALIGN)
    try:
        with nogil:
            err = fbmm_run_tasks(eng, P, nthreads, base, per_thread)
        _check_thread_start(err, nthreads, 1)
    finally:
        free(raw)
    return 0


# --------------------------------------------------------------------------
# Peak: the variant's register-only multiply-add loop (src/peak.h), timed by
# fastbmm/bench.py for its "% of peak"


cdef struct _PeakJob:
    double (*loop)(int64_t iters, int64_t *flops) noexcept nogil
    int64_t iters
    double *values              # one per task
    int64_t *flops              # one per task


cdef void _peak_task(const fbmm_problem *P, int64_t t, void *scratch) noexcept nogil:
    # Task t of fbmm_run_tasks: one run of the loop. The job travels in the
    # problem's A pointer; no operand is read, and nothing else of P is used.
    cdef _PeakJob *job = <_PeakJob *>P.a.data
    job.values[t] = job.loop(job.iters, &job.flops[t])


cdef int64_t _peak_count(name, value, int64_t low, int64_t high) except -1:
    if isinstance(value, (bool, np.bool_)) or not hasattr(type(value), "__index__"):
        raise TypeError(f"peak_fma(): {name} must be an int, not {type(value).__name__}")
    value = operator.index(value)
    if not low <= value <= high:
        raise ValueError(f"peak_fma(): {name} must be in [{low}, {high}], got {value}")
    return value


def peak_fma(family, iters, threads=1, tasks=None):
    """Run the kernel variant's register-only multiply-add loop (src/peak.h).

    The loop touches no memory: ``FBMM_PEAK_CHAINS`` independent vector
    accumulators (12 of the variant's vector width, 16 on AVX-512), each
    stepped ``iters`` times by ``acc = acc * 0.5 + 1`` (one FMA where the
    variant has FMA), lane ``l`` of chain ``c`` starting at ``c * lanes + l``.
    In 32-bit integer lanes the step is ``acc = acc * 3 + 1`` modulo
    ``2**32`` (a vector multiply and a vector add, the integer microkernel's
    instructions).
    Timed from Python, it gives the arithmetic peak of the variant in use
    (``python -m fastbmm.bench``); nothing is timed here.

    Parameters
    ----------
    family : dtype-like
        ``float32``, ``float64`` or ``int32``: the accumulators' type
        (float16 and complex64 products run in the float32 family, complex128
        in float64; int32 in 32-bit integer lanes).
    iters : int
        Steps of each run of the loop, ``0 <= iters < 2**40``.
    threads : int, optional
        Threads that share the runs (an OpenMP team started as for a product:
        fork-safe, thread creation probed first; not reduced for load). Without
        OpenMP, every run is on the calling thread.
    tasks : int, optional
        Runs of the loop, claimed one at a time by the threads (default:
        `threads`). Several per thread bound the imbalance when a thread
        starts late.

    Returns
    -------
    flops : int
        Operations done by all runs: ``2 * lanes * chains * iters * tasks``
        (a multiply-add counts as 2).
    value : float
        The sum over the runs of every accumulator lane at the end (the runs
        are identical, so ``tasks`` times one run's sum); returned so that the
        loop cannot be compiled away, and for the tests.

    Raises
    ------
    TypeError
        A count is not an int (bool included), or `family` is not a dtype.
    ValueError
        `family` is not float32, float64 or int32, or a count is out of range
        (`threads` beyond the per-call cap, ``show_config()``'s
        ``max_per_call``; `tasks` above ``2**20``).
    RuntimeError
        The threads could not be started (nothing has run then).

    Examples
    --------
    >>> from fastbmm import _runtime
    >>> flops, value = _runtime.peak_fma("float64", 1000)
    >>> flops % 2000
    0
    """
    dtype = np.dtype(family)
    cdef _PeakJob job
    if dtype == np.float32:
        job.loop = _engine.peak_f32
    elif dtype == np.float64:
        job.loop = _engine.peak_f64
    elif dtype == np.int32:
        job.loop = _engine.peak_u32
    else:
        raise ValueError(f"peak_fma(): family must be float32, float64 or int32, got {dtype}")
    job.iters = _peak_count("iters", iters, 0, (<int64_t>1) << 40)
    cdef int nthreads = <int>_peak_count("threads", threads, 1, fbmm_threads_cap())
    cdef int64_t ntasks = nthreads if tasks is None else _peak_count("tasks", tasks, 1, 1 << 20)
    if not FASTBMM_OPENMP:
        nthreads = 1
    cdef fbmm_problem P
    memset(&P, 0, sizeof(P))
    P.dtype = code_of(dtype)    # (never read: no kernel runs)
    P.ntasks = ntasks
    P.threads = nthreads
    P.a.data = <char *>&job
    # fbmm_run_tasks calls run_task only: a stand-in engine whose task is the loop
    cdef fbmm_engine runner
    memset(&runner, 0, sizeof(runner))
    runner.name = _engine.name
    runner.run_task = _peak_task
    cdef int err = 0, created = 0
    cdef int64_t t
    if nthreads > 1:
        # libgomp exits the process when it cannot create a thread: try first
        err = fbmm_probe_threads(nthreads, &created)
        _check_thread_start(err, nthreads, created)
    job.values = <double *>malloc(ntasks * sizeof(double))
    job.flops = <int64_t *>malloc(ntasks * sizeof(int64_t))
    try:
        if job.values == NULL or job.flops == NULL:
            raise MemoryError("peak_fma(): cannot allocate the per-task results")
        with nogil:
            err = fbmm_run_tasks(&runner, &P, nthreads, NULL, 0)
        _check_thread_start(err, nthreads, 1)
        total_flops = 0
        total_value = 0.0
        for t in range(ntasks):
            total_flops += job.flops[t]
            total_value += job.values[t]
    finally:
        free(job.values)
        free(job.flops)
    return total_flops, total_value
