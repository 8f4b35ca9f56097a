# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The Cython driver: from validated NumPy arrays to the C engine's tasks.

bmm() validates (``_validation``), allocates the result, describes the three
operands to the engine as pointers plus byte strides, lets the engine plan its
tasks, then runs them with the GIL released (src/threads.c: an OpenMP team
claiming tasks one by one), each thread on its own slice of one scratch
allocation made beforehand.
"""

cimport numpy as cnp
from libc.stdint cimport int64_t, uintptr_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from ._engine cimport (FBMM_ALIGN, FBMM_OK, fbmm_cpu_features, fbmm_engine, fbmm_engine_at,
                       fbmm_engine_supported, fbmm_num_engines, fbmm_operand,
                       fbmm_problem)
from ._openmp_helpers cimport (FASTBMM_OPENMP, fbmm_available_cpus, fbmm_delegates_regions,
                               fbmm_fork_state, fbmm_probe_threads, fbmm_run_tasks,
                               fbmm_threads_applied, fbmm_threads_cap, fbmm_threads_current,
                               fbmm_threads_follow_load, fbmm_threads_free_cpus,
                               fbmm_threads_default, fbmm_threads_init, fbmm_threads_restore,
                               fbmm_threads_set, fbmm_threads_setting)
from ._validation cimport as_operand, as_out, check_bmm, check_bmm_out_dtype, overlaps

import operator
import os

from ._dtypes import ROWS, code_of

import numpy as np

cnp.import_array()

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


def block_sizes():
    """Register and cache block sizes of the variant in use (see src/block_sizes.h)."""
    def b(x):
        return {"MR": x["mr"], "NR": x["nr"], "KC": x["kc"], "MC": x["mc"], "NC": x["nc"]}
    return {"small_max": _engine.small_max, "f32": b(_engine.f32), "f64": b(_engine.f64),
            "u32": b(_engine.u32), "u64": b(_engine.u64)}


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
        fewer while other processes' runnable threads take CPUs.

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
    """For tests: False starts the full team even when other processes take CPUs."""
    fbmm_threads_follow_load(1 if on else 0)


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
# bmm


cdef void describe(fbmm_operand *op, cnp.ndarray x) noexcept:
    # a 3-D array's batch, row and column strides, in bytes
    cdef cnp.npy_intp *s = cnp.PyArray_STRIDES(x)
    op.data = <char *>cnp.PyArray_DATA(x)
    op.sb = s[0]
    op.sr = s[1]
    op.sc = s[2]


cdef cnp.ndarray native(cnp.ndarray x):
    # Byte-swapped data: a native copy of the elements actually stored, since
    # the kernels' loads assume native byte order (rare in practice; every
    # other layout is read in place). Zero-stride axes are cut to one element
    # before the copy and broadcast again after it: a broadcast operand must
    # not become a full-size copy.
    if not cnp.PyArray_ISBYTESWAPPED(x):
        return x
    xo = <object>x
    stored = xo[tuple(slice(0, 1) if s == 0 else slice(None) for s in xo.strides)]
    copy = np.ascontiguousarray(stored, dtype=xo.dtype.newbyteorder("="))
    return <cnp.ndarray>np.broadcast_to(copy, xo.shape)


cdef void init_problem(fbmm_problem *P, int code, int64_t batch, int64_t n, int64_t m,
                       int64_t p) noexcept:
    """A problem with no bias, alpha = 1, and plain batch strides."""
    memset(P, 0, sizeof(fbmm_problem))
    P.dtype = code
    P.batch = batch
    P.n = n
    P.m = m
    P.p = p
    P.ep.real_scalars = 1
    P.ep.alpha[0] = 1.0
    P.ep.ialpha = 1


cdef void init_bmm_problem(fbmm_problem *P, int code, cnp.ndarray a, cnp.ndarray b,
                           cnp.ndarray c) noexcept:
    """init_problem for 3-D operands C = A @ B, described by their own strides.

    A zero batch stride (np.broadcast_to over the batch) is fine for inputs:
    they are only read. For dims of size 1 the stride is never used.
    """
    init_problem(P, code, cnp.PyArray_DIM(a, 0), cnp.PyArray_DIM(a, 1),
                 cnp.PyArray_DIM(a, 2), cnp.PyArray_DIM(b, 2))
    describe(&P.a, a)
    describe(&P.b, b)
    describe(&P.c, c)


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


def bmm(input, mat2, *, out=None, out_dtype=None):
    """Batched matrix product, with torch.bmm's contract, on NumPy arrays.

    For every batch index ``i``,

    .. math:: \\mathrm{out}_i = \\mathrm{input}_i \\, \\mathrm{mat2}_i,
              \\qquad \\mathrm{out}_{i,r,c} = \\sum_{k=0}^{m-1}
              \\mathrm{input}_{i,r,k} \\, \\mathrm{mat2}_{i,k,c}

    Parameters
    ----------
    input : ndarray, shape (b, n, m)
    mat2 : ndarray, shape (b, m, p)
        Same dtype as ``input`` (no promotion): float16 (summed in float32 and
        rounded once), float32, float64, complex64, complex128, int8, uint8,
        int16, int32 or int64 (integer sums wrap around as in C). Any strides:
        transposed views, negative or zero strides, misaligned or byte-swapped
        data are all read correctly.
    out : ndarray, shape (b, n, p), optional
        Written in place, through its strides, and returned. It may alias
        ``input`` or ``mat2`` (the product is formed first, then copied in).
    out_dtype : dtype, optional
        ``numpy.float32`` for float16 operands: the float32 sums are returned
        as they are, never rounded to float16 (torch's ``bmm(..., out_dtype)``).
        The operands' own dtype is the same as None.

    Returns
    -------
    ndarray, shape (b, n, p)
        ``out``, or a new C-contiguous array of the result dtype.

    Raises
    ------
    TypeError
        An argument is not an ndarray (or is a masked array).
    ShapeError (RuntimeError, ValueError)
        torch.bmm's shape errors, with its messages; out= of the wrong shape.
    DtypeError (RuntimeError, TypeError)
        Operands (or out=) of different dtypes, with torch's messages.
    UnsupportedDtypeError (NotImplementedError, TypeError)
        bool, unsigned 16/32/64-bit, and dtypes torch has no tensor for.
    ValueError
        out= read-only, or with overlapping elements.

    See Also
    --------
    baddbmm : ``beta * input + alpha * (batch1 @ batch2)``.
    matmul : NumPy's broadcasting rules, any number of batch dimensions.

    Examples
    --------
    torch.bmm's documentation example, on NumPy arrays:

    >>> import numpy as np
    >>> import fastbmm
    >>> input = np.random.randn(10, 3, 4).astype(np.float32)
    >>> mat2 = np.random.randn(10, 4, 5).astype(np.float32)
    >>> fastbmm.bmm(input, mat2).shape
    (10, 3, 5)

    The values, written into ``out=``, which is returned:

    >>> a = np.arange(12, dtype=np.float64).reshape(2, 2, 3)
    >>> b = np.ones((2, 3, 1))
    >>> out = np.empty((2, 2, 1))
    >>> fastbmm.bmm(a, b, out=out) is out
    True
    >>> out[:, :, 0]
    array([[ 3., 12.],
           [21., 30.]])

    A transposed view is read where it lies (no copy), e.g. ``q @ k^T``:

    >>> q = np.ones((4, 8, 16), np.float32)
    >>> fastbmm.bmm(q, q.transpose(0, 2, 1))[0, 0, :3]
    array([16., 16., 16.], dtype=float32)

    float16 is summed in float32 and rounded once (3001 is not a float16), or
    not rounded at all with ``out_dtype=np.float32``:

    >>> h = np.ones((1, 1, 3001), np.float16)
    >>> r = fastbmm.bmm(h, h.transpose(0, 2, 1))
    >>> r.dtype, float(r[0, 0, 0])
    (dtype('float16'), 3000.0)
    >>> fastbmm.bmm(h, h.transpose(0, 2, 1), out_dtype=np.float32)
    array([[[3001.]]], dtype=float32)

    Errors carry torch's messages, and subclass NumPy's usual exceptions:

    >>> try:
    ...     fastbmm.bmm(a, b.astype(np.float32))
    ... except TypeError as error:
    ...     print(type(error).__name__, "-", error)
    DtypeError - expected scalar type Double but found Float
    >>> try:
    ...     fastbmm.bmm(a, np.ones((2, 4, 1)))
    ... except ValueError as error:
    ...     print(type(error).__name__, "-", error)
    ShapeError - Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [2, 4].
    """
    cdef cnp.ndarray a = as_operand(input, "input", 1, "bmm")
    cdef cnp.ndarray b = as_operand(mat2, "mat2", 2, "bmm")
    cdef cnp.ndarray o = None if out is None else as_out(out, "bmm")
    cdef int code
    cdef int result_type = cnp.PyArray_TYPE(b)
    if out_dtype is None:
        code = check_bmm(a, b, o)
    else:
        code = check_bmm_out_dtype(a, b, o, out_dtype)
        result_type = np.dtype(ROWS[code].numpy_out).num
    cdef cnp.npy_intp dims[3]
    dims[0] = cnp.PyArray_DIM(a, 0)
    dims[1] = cnp.PyArray_DIM(a, 1)
    dims[2] = cnp.PyArray_DIM(b, 2)
    cdef cnp.ndarray target
    if o is None:
        target = cnp.PyArray_EMPTY(3, dims, result_type, 0)
    elif (cnp.PyArray_ISBYTESWAPPED(o) or overlaps(o, a) or overlaps(o, b)):
        # out= aliases an input, or is byte-swapped: form the product apart,
        # then let NumPy copy it in through out's strides.
        target = cnp.PyArray_EMPTY(3, dims, result_type, 0)
    else:
        target = o
    if cnp.PyArray_SIZE(target) != 0:
        if cnp.PyArray_DIM(a, 2) == 0:
            target.fill(0)      # an empty sum: zeros, also over a dirty out=
        else:
            a = native(a)
            b = native(b)
            _compute(a, b, target, code)
    if o is None:
        return target
    if target is not o:
        o[...] = target
    return out


cdef int _compute(cnp.ndarray a, cnp.ndarray b, cnp.ndarray c, int code) except -1:
    cdef fbmm_problem P
    init_bmm_problem(&P, code, a, b, c)
    return run_problem(&P)


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
    Timed from Python, it gives the arithmetic peak of the variant in use
    (``python -m fastbmm.bench``); nothing is timed here.

    Parameters
    ----------
    family : dtype-like
        ``float32`` or ``float64``: the accumulators' type (float16 and
        complex64 products run in the float32 family, complex128 in float64).
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
        `family` is not float32 or float64, or a count is out of range
        (`threads` beyond the per-call cap, ``show_config()``'s
        ``max_per_call``; `tasks` above ``2**20``).
    RuntimeError
        The threads could not be started (nothing has run then).

    Examples
    --------
    >>> from fastbmm import _bmm
    >>> flops, value = _bmm.peak_fma("float64", 1000)
    >>> flops % 2000
    0
    """
    dtype = np.dtype(family)
    cdef _PeakJob job
    if dtype == np.float32:
        job.loop = _engine.peak_f32
    elif dtype == np.float64:
        job.loop = _engine.peak_f64
    else:
        raise ValueError(f"peak_fma(): family must be float32 or float64, got {dtype}")
    job.iters = _peak_count("iters", iters, 0, (<int64_t>1) << 40)
    cdef int nthreads = <int>_peak_count("threads", threads, 1, fbmm_threads_cap())
    cdef int64_t ntasks = nthreads if tasks is None else _peak_count("tasks", tasks, 1, 1 << 20)
    if not FASTBMM_OPENMP:
        nthreads = 1
    cdef fbmm_problem P
    init_problem(&P, code_of(dtype), 0, 0, 0, 0)   # (the dtype is never read: no kernel runs)
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
