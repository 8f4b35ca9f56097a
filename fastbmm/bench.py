"""Side-by-side timing of ``fastbmm.bmm``, ``numpy.matmul`` and ``torch.bmm``.

Run as::

    python -m fastbmm.bench [--quick | --shapes 2x1x10x4,64x128x64x128T,...]
                            [--dtypes f32,f64,...] [--threads N] [--kernel NAME]
                            [--bf16-kernel amx|vdpbf16ps|widen]
                            [--timer wall|thread] [--json FILE] [--plot FILE] [--markdown]
                            [--no-peak]

For every benchmark case (a shape and a dtype) the libraries are timed in one
process on the same input arrays, interleaved: after a warm-up call and a
calibration of the number of calls per measurement (so that one measurement
lasts at least ``--min-time`` seconds, as ``timeit`` auto-ranging does),
several rounds measure each library in turn, and the median per-call time
over the rounds is reported as GFLOP/s (``2*b*n*m*p / time``; a complex
multiply-add counts as 2 operations, like a real one, so complex figures are
comparable between libraries, not with real dtypes). ``--json`` saves every
round's time with the machine, the kernel and the thread counts; ``--plot``
draws the medians with min-max whiskers.

Before the cases, the peak of the machine is measured per accumulator
family (float32, float64, int32; `measure_peaks`, skipped with ``--no-peak``): the
arithmetic peak of fastbmm's kernel variant in use, a multiply-add loop that
touches no memory (``fastbmm._runtime.peak_fma``, src/peak.h), on one thread and
on all threads; and the practical peak, the fastest library on a large
product (`PEAK_GEMM_SHAPE`) with the table's thread count (and one thread).
The table's ``% of peak`` column is fastbmm's GFLOP/s over that practical
peak (`percent_of_peak`).

This module also holds the canonical list of benchmark shapes (`SHAPES`) and
the helpers shared with the pytest-benchmark suite in ``benchmarks/`` and with
``python -m fastbmm``.
"""

import argparse
import contextlib
import datetime
import functools
import importlib
import json
import math
import os
import platform
import re
import statistics
import sys
import threading
import time
import timeit
from typing import NamedTuple

import numpy as np

import fastbmm
from fastbmm import _dtypes, _runtime

__all__ = [
    "BenchShape",
    "BenchCase",
    "SHAPES",
    "EXTRA_DTYPE_SHAPES",
    "ONLY_DTYPES",
    "DTYPES",
    "CORE_DTYPES",
    "DEFAULT_DTYPES",
    "benchmark_cases",
    "make_operands",
    "available_libraries",
    "library_call",
    "calibrate",
    "Timing",
    "measure_interleaved",
    "settle",
    "time_interleaved",
    "matched_threads",
    "environment_info",
    "environment_report",
    "warn_about_benchmark_conditions",
    "render_table",
    "PEAK_FAMILY",
    "REAL_OPS_PER_COUNTED_OP",
    "PEAK_GEMM_SHAPE",
    "measure_fma_peak",
    "measure_gemm_peak",
    "measure_peaks",
    "peak_report",
    "percent_of_peak",
    "run_benchmarks",
    "results_table",
    "results_json",
    "save_plot",
    "plot_title",
    "parse_shape",
    "main",
]


class BenchShape(NamedTuple):
    """One benchmark shape: ``(b, n, m) @ (b, m, p) -> (b, n, p)``.

    Attributes
    ----------
    b, n, m, p : int
        Batch size and matrix dimensions.
    mat2_transposed : bool
        If true, ``mat2`` is passed as a transposed view
        ``k.transpose(0, 2, 1)`` of a C-contiguous ``k`` of shape
        ``(b, p, m)``, as in attention scores ``q @ k^T``.
    quick : bool
        Whether the shape belongs to the small/medium subset run by
        ``--quick`` and ``FASTBMM_BENCH_QUICK=1``.
    """

    b: int
    n: int
    m: int
    p: int
    mat2_transposed: bool = False
    quick: bool = True

    @property
    def dims(self):
        """tuple of int: ``(b, n, m, p)``."""
        return (self.b, self.n, self.m, self.p)

    @property
    def flops(self):
        """int: ``2*b*n*m*p``, the operation count of one product."""
        return 2 * self.b * self.n * self.m * self.p

    @property
    def label(self):
        """str: ``"bxnxmxp"``, with a trailing ``"T"`` for a transposed ``mat2``."""
        return "x".join(map(str, self.dims)) + ("T" if self.mat2_transposed else "")


#: The canonical benchmark shapes, smallest matrices first.
SHAPES = (
    BenchShape(2, 1, 10, 4),  # the seed example: (2, 1, 10) @ (2, 10, 4)
    BenchShape(10000, 4, 4, 4),
    BenchShape(4096, 8, 8, 8),
    BenchShape(2048, 16, 16, 16),
    BenchShape(1024, 32, 32, 32),
    BenchShape(512, 24, 40, 56),  # sizes that are not powers of two (edge tiles along p)
    # a batched linear map: 24 rows (tokens) of 256 features into 64, one tile a matrix,
    # deeper than its few microkernel calls
    BenchShape(128, 24, 256, 64),
    # ViT attention scores (ViT-L/16 at 224 px): 16 heads, 197 tokens (196 patches + the
    # class token), head size 64
    BenchShape(16, 197, 64, 197, mat2_transposed=True),
    BenchShape(128, 64, 64, 1),  # a matrix-vector stack
    BenchShape(1024, 48, 48, 48),  # float16 only (ONLY_DTYPES)
    BenchShape(64, 128, 64, 128, mat2_transposed=True),  # attention: q @ k.transpose(0, 2, 1)
    BenchShape(64, 128, 128, 64),
    # float16 only (ONLY_DTYPES); not --quick: numpy's float16 loop takes ~1.7 s a call
    BenchShape(256, 96, 96, 96, quick=False),
    BenchShape(256, 1, 512, 512, quick=False),
    BenchShape(32, 256, 256, 256, quick=False),
    BenchShape(4, 1024, 1024, 1024, quick=False),
    BenchShape(1, 2048, 2048, 2048, quick=False),
)

#: The ``(b, n, m, p)`` of the shapes on which non-core dtypes are benchmarked.
EXTRA_DTYPE_SHAPES = ((1024, 32, 32, 32), (64, 128, 128, 64))

#: Shapes of `SHAPES` (by ``(b, n, m, p)``) that run only these dtypes, instead
#: of `CORE_DTYPES` (and, on `EXTRA_DTYPE_SHAPES`, the others): float16 and
#: bfloat16 at the sizes between 32 and 128, where their conversions weigh most.
ONLY_DTYPES = {
    (1024, 48, 48, 48): ("f16", "bf16"),
    (256, 96, 96, 96): ("f16", "bf16"),
}

#: Short dtype names accepted by ``--dtypes``.
#: The operand dtypes of the dtype registry (``src/dtypes.def``) by kind
#: name; bfloat16 (``bf16``) where ml_dtypes is installed.
DTYPES = {r.kind: d for r in _dtypes.OPERAND_ROWS
          for d in [_dtypes.numpy_dtype(r.numpy_in, load=True)] if d is not None}

#: Dtypes benchmarked on every shape; any other dtype only on `EXTRA_DTYPE_SHAPES`.
CORE_DTYPES = ("f32", "f64")

#: Dtypes benchmarked when none are requested.
DEFAULT_DTYPES = ("f32", "f64", "i32", "f16", "c64") + (("bf16",) if "bf16" in DTYPES else ())

#: ``--timer`` choices: wall-clock time, or the calling thread's CPU time
#: (``time.thread_time``: blind to other processes' load, but also to
#: fastbmm's, torch's and BLAS's worker threads, so only for one thread).
TIMERS = {"wall": timeit.default_timer, "thread": time.thread_time}

#: Environment variables that slow NumPy's OpenBLAS down when set.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


class BenchCase(NamedTuple):
    """A benchmark shape with a dtype.

    Attributes
    ----------
    shape : BenchShape
    dtype : str
        A key of `DTYPES`.
    """

    shape: BenchShape
    dtype: str

    @property
    def label(self):
        """str: e.g. ``"64x128x128x64-f32"``."""
        return f"{self.shape.label}-{self.dtype}"


_SHAPE_LABEL = re.compile(r"(\d+)x(\d+)x(\d+)x(\d+)(T?)")


def parse_shape(label):
    """The `BenchShape` of a label ``"bxnxmxp"``, ``"T"`` appended for a transposed ``mat2``.

    Parameters
    ----------
    label : str
        As `BenchShape.label` writes it, e.g. ``"64x128x64x128T"``; any sizes >= 1.

    Returns
    -------
    BenchShape

    Raises
    ------
    ValueError
        Not of that form, or a size of 0.

    Examples
    --------
    >>> from fastbmm.bench import parse_shape
    >>> parse_shape("64x128x64x128T")
    BenchShape(b=64, n=128, m=64, p=128, mat2_transposed=True, quick=True)
    """
    match = _SHAPE_LABEL.fullmatch(label.strip())
    if match is None:
        raise ValueError(f"shape {label!r} is not of the form BxNxMxP (T appended: mat2 transposed)")
    dims = tuple(int(size) for size in match.groups()[:4])
    if min(dims) < 1:
        raise ValueError(f"shape {label!r}: every size must be >= 1")
    return BenchShape(*dims, mat2_transposed=bool(match.group(5)))


def benchmark_cases(quick=False, dtypes=DEFAULT_DTYPES, shapes=None):
    """List the benchmark cases, grouped by shape in `SHAPES` order.

    Parameters
    ----------
    quick : bool, optional
        Only the small/medium shapes (``BenchShape.quick``).
    dtypes : sequence of str, optional
        Keys of `DTYPES`. `CORE_DTYPES` run on every shape, the others only
        on `EXTRA_DTYPE_SHAPES`; a shape of `ONLY_DTYPES` runs its own
        dtypes only (those of them in `dtypes`).
    shapes : sequence of BenchShape, optional
        These shapes instead of `SHAPES`, each with every dtype of `dtypes`
        (`quick` is then ignored).

    Returns
    -------
    list of BenchCase
    """
    if shapes is not None:
        return [BenchCase(shape, dtype) for shape in shapes for dtype in dtypes]
    return [
        BenchCase(shape, dtype)
        for shape in SHAPES
        if shape.quick or not quick
        for dtype in dtypes
        if (dtype in ONLY_DTYPES[shape.dims] if shape.dims in ONLY_DTYPES
            else dtype in CORE_DTYPES or shape.dims in EXTRA_DTYPE_SHAPES)
    ]


def make_operands(case, seed=0):
    """Build the random operands of a case.

    Parameters
    ----------
    case : BenchCase
    seed : int, optional
        Seed of the random generator.

    Returns
    -------
    input : numpy.ndarray
        C-contiguous, shape ``(b, n, m)``.
    mat2 : numpy.ndarray
        Shape ``(b, m, p)``; C-contiguous, or a transposed view when
        ``case.shape.mat2_transposed``.
    """
    rng = np.random.default_rng(seed)
    dtype = DTYPES[case.dtype]
    b, n, m, p = case.shape.dims

    def random_array(shape):
        if dtype.kind in "iu":
            # Small values: the products stay exact in every library.
            low = 0 if dtype.kind == "u" else -8
            return rng.integers(low, 8, size=shape, dtype=dtype)
        values = rng.standard_normal(shape)
        if dtype.kind == "c":
            values = values + 1j * rng.standard_normal(shape)
        return values.astype(dtype)

    input = random_array((b, n, m))
    if case.shape.mat2_transposed:
        mat2 = random_array((b, p, m)).transpose(0, 2, 1)
    else:
        mat2 = random_array((b, m, p))
    return input, mat2


def _optional_import(name):
    """Import and return module `name`, or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def available_libraries():
    """Names of the libraries to compare: fastbmm, numpy and, when importable, torch.

    Returns
    -------
    list of str
    """
    libraries = ["fastbmm", "numpy"]
    if _optional_import("torch") is not None:
        libraries.append("torch")
    return libraries


def library_call(library, input, mat2):
    """Bind a batched product of `input` and `mat2` to a zero-argument callable.

    Parameters
    ----------
    library : {"fastbmm", "numpy", "torch", "einsum"}
        ``fastbmm.bmm``, ``numpy.matmul``, ``torch.bmm`` on
        ``torch.from_numpy`` views of the same arrays (converted here, so
        not timed), or ``np.einsum("bnm,bmp->bnp", ..., optimize=False)``
        (NumPy's own loop; ``optimize=True`` cannot use BLAS for a batched
        contraction either).
    input, mat2 : numpy.ndarray

    Returns
    -------
    callable
    """
    if library == "fastbmm":
        return functools.partial(fastbmm.bmm, input, mat2)
    if library == "numpy":
        return functools.partial(np.matmul, input, mat2)
    if library == "torch":
        import torch

        return functools.partial(torch.bmm, _torch_view(torch, input), _torch_view(torch, mat2))
    if library == "einsum":
        return functools.partial(np.einsum, "bnm,bmp->bnp", input, mat2, optimize=False)
    raise ValueError(f"unknown library {library!r}")


def _torch_view(torch, x):
    """A torch tensor viewing x's memory (bfloat16: through its int16 bits, which
    torch.from_numpy takes; an ml_dtypes array it refuses)."""
    if x.dtype.name == "bfloat16":
        return torch.from_numpy(x.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(x)


def calibrate(timer, min_time):
    """Find how many calls make one measurement last at least `min_time`.

    Like ``timeit.Timer.autorange``, but with a configurable duration and
    growing the count from the measured time rather than in 1-2-5 steps.

    Parameters
    ----------
    timer : timeit.Timer
    min_time : float
        Seconds.

    Returns
    -------
    int
    """
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= min_time:
            return number
        # Aim 20% past min_time, but grow at most 100x per step.
        wanted = math.ceil(1.2 * number * min_time / max(elapsed, 1e-9))
        number = max(number + 1, min(100 * number, wanted))


class Timing(NamedTuple):
    """The measurements of one callable.

    Attributes
    ----------
    seconds : list of float
        Seconds per call, one value per round (each the mean over
        `calls_per_sample` calls).
    calls_per_sample : int
        Calls per measurement, from `calibrate`.
    """

    seconds: list
    calls_per_sample: int

    @property
    def median(self):
        """float: the median of `seconds`."""
        return statistics.median(self.seconds)


def _other_runnable_threads():
    """Threads of this process, but the calling one, that are runnable now
    (Linux: /proc/self/task/<tid>/stat); None where that cannot be read."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    me = str(threading.get_native_id())
    runnable = 0
    for tid in tids:
        if tid == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:                 # the thread ended meanwhile
            continue
        # the state follows the name, which may hold spaces and ')'
        if stat[stat.rfind(")") + 2:][:1] == "R":
            runnable += 1
    return runnable


def settle(timeout=0.25):
    """Wait until no other thread of this process is runnable, at most `timeout` s.

    Thread pools spin after a call before they sleep: OpenBLAS's workers for
    2^28 cycles (0.1 s) after each ``numpy.matmul``, GNU OpenMP's (torch's,
    fastbmm's) for 300,000 pauses (8 ms on a Zen 3). A library timed while
    another's workers still spin shares the cores with them: timed right after
    numpy's round on 2 CPUs, fastbmm's 64x128x128x64 float32 took 2.2 ms (it
    leaves a busy CPU alone and runs on one thread) against 1.05 ms, and numpy
    right after fastbmm's 5.4 ms against 1.5 ms. Each library is timed as it
    runs on its own, as a pytest-benchmark loop does.

    Parameters
    ----------
    timeout : float, optional
        The longest wait, in seconds (a thread of the user's that keeps
        running would otherwise hold the benchmark forever).

    Returns
    -------
    float
        Seconds waited (0.0 at once where /proc cannot be read).
    """
    start = time.perf_counter()
    while True:
        runnable = _other_runnable_threads()
        waited = time.perf_counter() - start
        if not runnable or waited >= timeout:
            return waited
        time.sleep(0.001)


def measure_interleaved(calls, rounds=5, min_time=0.1, timer="wall"):
    """Time several callables in interleaved rounds.

    Each callable is called once to warm up (page faults, thread pools),
    calibrated with `calibrate`, then measured once per round; the order of
    the callables rotates from round to round, so that none always follows
    the same neighbour. Before each measurement, `settle` waits for the
    thread pools of the one before to stop spinning.

    Parameters
    ----------
    calls : dict of str to callable
        Zero-argument callables, e.g. from `library_call`.
    rounds : int, optional
        Number of measurements per callable.
    min_time : float, optional
        Minimum duration of one measurement, in seconds.
    timer : {"wall", "thread"}, optional
        A key of `TIMERS`.

    Returns
    -------
    dict of str to Timing
        Keyed like `calls`.
    """
    timers = {name: timeit.Timer(call, timer=TIMERS[timer]) for name, call in calls.items()}
    for call in calls.values():
        call()
    numbers = {}
    for name, timer_ in timers.items():
        settle()
        numbers[name] = calibrate(timer_, min_time)
    samples = {name: [] for name in calls}
    names = list(calls)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            settle()
            samples[name].append(timers[name].timeit(numbers[name]) / numbers[name])
    return {name: Timing(samples[name], numbers[name]) for name in calls}


def time_interleaved(calls, rounds=5, min_time=0.1):
    """Median time per call of several callables, measured by `measure_interleaved`.

    Parameters
    ----------
    calls, rounds, min_time
        As in `measure_interleaved`.

    Returns
    -------
    dict of str to float
        Median seconds per call, keyed like `calls`.
    """
    timings = measure_interleaved(calls, rounds=rounds, min_time=min_time)
    return {name: timing.median for name, timing in timings.items()}


@contextlib.contextmanager
def matched_threads(num_threads=None):
    """Run fastbmm, torch and NumPy's BLAS with the same number of threads.

    Parameters
    ----------
    num_threads : int, optional
        Threads for all libraries; by default fastbmm's current count
        (``fastbmm.get_num_threads()``) is applied to the others.

    Yields
    ------
    int
        The thread count in use.

    Notes
    -----
    torch's count is restored on exit, and NumPy's BLAS limit is lifted
    (threadpoolctl, when importable; without it NumPy's BLAS keeps its own
    count). fastbmm keeps `num_threads` when it was given.
    """
    if num_threads is not None:
        fastbmm.set_num_threads(num_threads)
    num_threads = fastbmm.get_num_threads()
    torch = _optional_import("torch")
    threadpoolctl = _optional_import("threadpoolctl")
    with contextlib.ExitStack() as stack:
        if torch is not None:
            stack.callback(torch.set_num_threads, torch.get_num_threads())
            torch.set_num_threads(num_threads)
        if threadpoolctl is not None:
            stack.enter_context(threadpoolctl.threadpool_limits(num_threads, user_api="blas"))
        yield num_threads


def _usable_cpus():
    """Number of CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _numpy_blas_info():
    """threadpoolctl's records of NumPy's BLAS, or None without threadpoolctl.

    The BLAS libraries loaded from NumPy's installation (``numpy/`` or
    ``numpy.libs/``) are NumPy's; if none is (NumPy linked against a system
    BLAS), every loaded BLAS library is listed.
    """
    threadpoolctl = _optional_import("threadpoolctl")
    if threadpoolctl is None:
        return None
    blas = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    site = os.path.dirname(os.path.dirname(os.path.realpath(np.__file__)))
    numpy_dirs = tuple(os.path.join(site, name) + os.sep for name in ("numpy", "numpy.libs"))
    bundled = [info for info in blas if os.path.realpath(info["filepath"]).startswith(numpy_dirs)]
    return bundled or blas


def _describe_blas(info):
    """One line for one threadpoolctl BLAS record."""
    details = [info["prefix"]]
    if info.get("architecture"):
        details.append(f"architecture {info['architecture']}")
    if info.get("threading_layer"):
        details.append(f"threading {info['threading_layer']}")
    return (
        f"{info['internal_api']} {info['version'] or '(version unknown)'} "
        f"({', '.join(details)}), {info['num_threads']} threads"
    )


def environment_info():
    """The machine and the libraries' versions and settings, as a dict.

    Call it inside `matched_threads` to record the counts the timings use.

    Returns
    -------
    dict
        Keys ``date``, ``machine`` (``platform``, ``machine``, ``cpu_model``,
        ``logical_cpus``, ``usable_cpus``, ``isa_flags``: the CPU features
        fastbmm detected, ``load_average``), ``python``, ``fastbmm``
        (``version``, ``kernel``, ``available_kernels``, ``bf16_kernel``: the
        bfloat16 nest, ``int_kernel``: the int8/uint8/int16 nest, ``openmp``,
        ``num_threads``), ``numpy`` (``version``,
        ``blas``: threadpoolctl's records or None), ``torch`` (``version``, ``num_threads``; None when
        torch is not installed).
    """
    config = fastbmm.show_config(mode="dicts")
    torch = _optional_import("torch")
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_model": _cpu_model(),
            "logical_cpus": os.cpu_count(),
            "usable_cpus": _usable_cpus(),
            "isa_flags": config["cpu"]["features"],
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "python": platform.python_version(),
        "fastbmm": {
            "version": config["version"],
            "kernel": config["kernel"],
            "available_kernels": list(config["available_kernels"]),
            "bf16_kernel": config["bf16_kernel"],
            "int_kernel": config["int_kernel"],
            "openmp": config["openmp"],
            "num_threads": fastbmm.get_num_threads(),
        },
        "numpy": {"version": np.__version__, "blas": _numpy_blas_info()},
        "torch": None if torch is None else {
            "version": torch.__version__,
            "num_threads": torch.get_num_threads(),
        },
    }


def environment_report(info=None):
    """Describe the machine and the libraries' settings, one line per item.

    Parameters
    ----------
    info : dict, optional
        From `environment_info` (called here by default: then call this
        inside `matched_threads` to report the counts the timings use).

    Returns
    -------
    list of str
    """
    info = environment_info() if info is None else info
    machine, config = info["machine"], info["fastbmm"]
    cpus, usable = machine["logical_cpus"], machine["usable_cpus"]
    cpu_count = f"{cpus} logical CPUs" + (f", {usable} usable" if usable != cpus else "")
    lines = [
        f"CPU: {machine['cpu_model']} ({cpu_count}; {' '.join(machine['isa_flags'])})",
        f"date: {info['date']}",
        f"fastbmm {config['version']}: kernel {config['kernel']} "
        f"(bfloat16: {config.get('bf16_kernel', 'widen')}, "
        f"int8/uint8/int16: {config.get('int_kernel', 'widen')}), {config['num_threads']} threads"
        + ("" if config["openmp"] else " (built without OpenMP)"),
    ]
    numpy_info = info["numpy"]
    if numpy_info["blas"] is None:
        lines.append(f"numpy {numpy_info['version']}: BLAS unknown (threadpoolctl not installed)")
    else:
        lines.extend(
            f"numpy {numpy_info['version']}: BLAS {_describe_blas(blas)}"
            for blas in numpy_info["blas"]
        )
    torch = info["torch"]
    if torch is None:
        lines.append("torch: not installed")
    else:
        lines.append(f"torch {torch['version']}: {torch['num_threads']} threads")
    return lines


def warn_about_benchmark_conditions():
    """Warn on stderr about conditions that make the comparison unfair or noisy.

    These are OpenBLAS overrides in the environment (`OPENBLAS_OVERRIDES`),
    which slow NumPy's BLAS down, and other processes keeping the CPUs busy
    (a load average of 1 or more), which makes multithreaded timings erratic.
    """
    for name in OPENBLAS_OVERRIDES:
        if name in os.environ:
            print(
                f"warning: {name}={os.environ[name]} is set; it can make numpy's OpenBLAS "
                f"slower. For a fair comparison, unset it for the benchmark command "
                f"only, e.g. `env -u {name} python -m fastbmm.bench`.",
                file=sys.stderr,
            )
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        if load >= 1.0:
            print(
                f"warning: the load average is {load:.1f} on {_usable_cpus()} usable CPUs: "
                "other processes are running, so the timings (above all multithreaded "
                "ones) will be noisy.",
                file=sys.stderr,
            )


def render_table(header, rows, markdown=False):
    """Format a table with a left-aligned first column and right-aligned others.

    Parameters
    ----------
    header : sequence of str
    rows : sequence of sequence of str
    markdown : bool, optional
        A Markdown (GitHub) table instead of aligned plain text.

    Returns
    -------
    str
    """
    table = [list(header)] + [list(row) for row in rows]
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]

    def cells(row):
        return [
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths))
        ]

    if not markdown:
        return "\n".join("  ".join(cells(row)).rstrip() for row in table)
    rule = [":" + "-" * (widths[0] - 1)] + ["-" * (width - 1) + ":" for width in widths[1:]]
    lines = [cells(table[0]), rule] + [cells(row) for row in table[1:]]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _format_number(value):
    """Three significant digits without exponent notation (``"-"`` for None)."""
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3g}"


def run_benchmarks(cases, libraries, rounds, min_time, timer="wall"):
    """Time every library on every case, reporting progress on stderr.

    Parameters
    ----------
    cases : sequence of BenchCase
    libraries : sequence of str
        Names accepted by `library_call`.
    rounds, min_time, timer
        As in `measure_interleaved`.

    Returns
    -------
    list of dict of str to Timing
        One dict per case, keyed by library.
    """
    results = []
    for index, case in enumerate(cases, 1):
        print(f"[{index}/{len(cases)}] timing {case.label} ...", file=sys.stderr, flush=True)
        input, mat2 = make_operands(case)
        calls = {library: library_call(library, input, mat2) for library in libraries}
        results.append(measure_interleaved(calls, rounds=rounds, min_time=min_time, timer=timer))
    return results


def gflops(case, seconds):
    """GFLOP/s of one call of `case` that took `seconds`: ``2*b*n*m*p / seconds / 1e9``."""
    return case.shape.flops / seconds / 1e9


# --------------------------------------------------------------------------
# Peak

#: The accumulator family (a `measure_peaks` key) whose peak each dtype is
#: compared with: float16 and complex64 run in fastbmm's float32 kernels,
#: complex128 in its float64 ones, int32 in 32-bit integer lanes (a multiply
#: and an add, on other units than the float multiply-add). The other
#: integers and bfloat16 have none: their kernel depends on the CPU (AVX-512
#: VNNI's and BF16's two products per lane and instruction, AMX tiles), so no
#: one loop is their ceiling.
PEAK_FAMILY = {"f16": "float32", "f32": "float32", "c64": "float32",
               "f64": "float64", "c128": "float64", "i32": "int32"}

#: Real operations per operation the GFLOP/s column counts, where they differ:
#: a complex multiply-add is 4 real multiplies and 4 real adds, counted as 2.
REAL_OPS_PER_COUNTED_OP = {"c64": 4, "c128": 4}

#: The product whose fastest library gives the practical peak (2.1 GFLOP: tens
#: of milliseconds a call on one core, large enough for every library's best
#: blocking, small enough to be measured in a few seconds).
PEAK_GEMM_SHAPE = BenchShape(1, 1024, 1024, 1024, quick=False)

#: Family name -> the `DTYPES` key of its GEMM.
_FAMILY_DTYPE = {"float32": "f32", "float64": "f64", "int32": "i32"}

#: Libraries left out of a family's practical peak: NumPy's integer matmul
#: is no BLAS but a plain loop, 5.7 s a call at 1x1024^3 int32 on a Zen 3
#: (torch 0.2 s): it could never be the fastest, and timing it would add
#: half a minute to every run.
_PEAK_GEMM_SKIPS = {"int32": ("numpy",)}

#: Runs of the loop per thread in a measurement on several threads: a thread
#: that starts late (or is preempted) leaves the others at most one run to
#: finish after the rest, 1/8 of the time, instead of a whole share.
PEAK_TASKS_PER_THREAD = 8


def measure_fma_peak(family, threads=1, rounds=5, min_time=0.1, timer="wall"):
    """Time fastbmm's register-only multiply-add loop (``_runtime.peak_fma``).

    The loop of the kernel variant in use (``--kernel``), with its vector
    width and multiply-add instruction, touching no memory: the arithmetic
    peak of `threads` threads, which no product reaches (loads, packing and
    loop overheads come on top).

    Parameters
    ----------
    family : {"float32", "float64", "int32"}
    threads : int, optional
        Threads that run the loop at once (not reduced for load: on a busy
        machine the figure shows the load).
    rounds : int, optional
        Measurements; the best is the peak.
    min_time : float, optional
        Minimum seconds of one measurement (the iteration count is grown
        until one call lasts that long).
    timer : {"wall", "thread"}, optional
        A key of `TIMERS`; ``"thread"`` applies to one thread only, several
        are timed by the wall clock.

    Returns
    -------
    dict
        ``threads``, ``tasks`` (runs of the loop per measurement),
        ``iters`` (steps per run), ``flops`` (per measurement),
        ``flops_per_step`` (of one run: 2 x lanes x chains), ``timer``,
        ``gflops_rounds`` (every round) and ``gflops`` (the best round).
    """
    tasks = 1 if threads == 1 else PEAK_TASKS_PER_THREAD * threads
    timer = timer if threads == 1 else "wall"
    clock = TIMERS[timer]

    def run(iters):
        start = clock()
        flops, _ = _runtime.peak_fma(family, iters, threads, tasks)
        return clock() - start, flops

    iters = 1000
    run(iters)  # warm-up: thread start-up, frequency ramp
    while True:
        elapsed, _ = run(iters)
        if elapsed >= min_time or iters >= 2**36:
            break
        # aim 20% past min_time, growing at most 100x per step (as `calibrate`)
        wanted = math.ceil(1.2 * iters * min_time / max(elapsed, 1e-9))
        iters = min(2**36, max(2 * iters, min(100 * iters, wanted)))
    samples = []
    for _ in range(rounds):
        elapsed, flops = run(iters)
        samples.append(flops / max(elapsed, 1e-12) / 1e9)
    return {
        "threads": threads,
        "tasks": tasks,
        "iters": iters,
        "flops": flops,
        "flops_per_step": flops // (iters * tasks),
        "timer": timer,
        "gflops_rounds": samples,
        "gflops": max(samples),
    }


def measure_gemm_peak(family, libraries, threads=1, rounds=5, min_time=0.1, timer="wall"):
    """The fastest library on `PEAK_GEMM_SHAPE`: the practical peak of `threads` threads.

    Parameters
    ----------
    family : {"float32", "float64", "int32"}
    libraries : sequence of str
        Names accepted by `library_call`.
    threads : int, optional
        Threads for every library during the measurement (the previous
        counts are restored after it).
    rounds, min_time : optional
        As in `measure_interleaved`.
    timer : {"wall", "thread"}, optional
        ``"thread"`` applies to one thread only; several are timed by the
        wall clock.

    Returns
    -------
    dict
        ``threads``, ``shape`` (the label), ``timer``, ``median_gflops``
        (per library: the median over the rounds, as in the table),
        ``library`` (the fastest) and ``gflops`` (its median).
    """
    case = BenchCase(PEAK_GEMM_SHAPE, _FAMILY_DTYPE[family])
    input, mat2 = make_operands(case)
    calls = {library: library_call(library, input, mat2) for library in libraries}
    timer = timer if threads == 1 else "wall"
    with fastbmm.threads(threads), matched_threads() as num_threads:
        timings = measure_interleaved(calls, rounds=rounds, min_time=min_time, timer=timer)
    rates = {library: gflops(case, timing.median) for library, timing in timings.items()}
    best = max(rates, key=rates.get)
    return {
        "threads": num_threads,
        "shape": case.shape.label,
        "timer": timer,
        "median_gflops": rates,
        "library": best,
        "gflops": rates[best],
    }


def measure_peaks(dtypes, libraries, num_threads, rounds=5, min_time=0.1, timer="wall"):
    """Measure the peaks of the families of `dtypes`, for the report and ``% of peak``.

    Per family (`PEAK_FAMILY`): the multiply-add loop (`measure_fma_peak`) on
    one thread, on `num_threads` and on every usable CPU; the fastest large
    product (`measure_gemm_peak`, among `libraries` less the family's
    `_PEAK_GEMM_SKIPS`) on one thread and on `num_threads`.

    Parameters
    ----------
    dtypes : sequence of str
        Keys of `DTYPES`; the families they map to are measured.
    libraries : sequence of str
        The libraries of the run.
    num_threads : int
        The thread count of the run, whose practical peak ``% of peak`` uses.
    rounds, min_time, timer : optional
        As in `measure_interleaved`.

    Returns
    -------
    dict or None
        None when no dtype has a family. Else ``kernel`` (fastbmm's variant
        whose loop was timed), ``threads`` (`num_threads`), ``gemm_shape``,
        and ``families``: per family name, ``fma_loop`` and ``gemm`` (dicts
        keyed by the thread count as a string, values from
        `measure_fma_peak` / `measure_gemm_peak`) and ``practical_gflops``
        (``gemm[str(num_threads)]["gflops"]``: what ``% of peak`` divides by).
    """
    families = sorted({PEAK_FAMILY[dtype] for dtype in dtypes if dtype in PEAK_FAMILY})
    if not families:
        return None
    cap = _runtime.thread_state()["max_per_call"]
    loop_counts = {1}
    if _runtime.openmp_enabled():
        loop_counts |= {min(num_threads, cap), min(_usable_cpus(), cap)}
    gemm_counts = {1, num_threads}
    peaks = {"kernel": _runtime.get_kernel(), "threads": num_threads,
             "gemm_shape": PEAK_GEMM_SHAPE.label, "families": {}}
    for family in families:
        loops, gemms = {}, {}
        for count in sorted(loop_counts):
            print(f"peak: {family} multiply-add loop, {count} thread(s) ...",
                  file=sys.stderr, flush=True)
            loops[str(count)] = measure_fma_peak(family, count, rounds, min_time, timer)
        for count in sorted(gemm_counts):
            print(f"peak: {family} {PEAK_GEMM_SHAPE.label} product, {count} thread(s) ...",
                  file=sys.stderr, flush=True)
            gemm_libraries = [library for library in libraries
                              if library not in _PEAK_GEMM_SKIPS.get(family, ())]
            gemms[str(count)] = measure_gemm_peak(family, gemm_libraries, count, rounds, min_time,
                                                  timer)
        peaks["families"][family] = {
            "fma_loop": loops,
            "gemm": gemms,
            "practical_gflops": gemms[str(num_threads)]["gflops"],
        }
    return peaks


def _threads_text(count):
    return f"{count} thread{'s' if int(count) != 1 else ''}"


def _rate_unit(family):
    """GFLOP/s for a float family, GOP/s for an integer one."""
    return "GOP/s" if family.startswith("int") else "GFLOP/s"


def peak_report(peaks):
    """Describe the measured peaks, one line per item, for the report's header.

    Parameters
    ----------
    peaks : dict
        From `measure_peaks`.

    Returns
    -------
    list of str
    """
    lines = []
    for family, peak in peaks["families"].items():
        loops, gemms = peak["fma_loop"], peak["gemm"]
        step = next(iter(loops.values()))["flops_per_step"]
        unit = " " + _rate_unit(family)
        ops = "operations" if family.startswith("int") else "flops"
        lines.append(
            f"peak {family}, kernel {peaks['kernel']}'s multiply-add loop ({step} {ops} a step, "
            "in registers; best round): " + ", ".join(
                f"{_format_number(loop['gflops'])}{unit if index == 0 else ''} "
                f"on {_threads_text(count)}"
                for index, (count, loop) in enumerate(loops.items())))
        lines.append(
            f"peak {family}, practical (fastest {peaks['gemm_shape']} product; median): "
            + ", ".join(
                f"{_format_number(gemm['gflops'])}{unit if index == 0 else ''} "
                f"({gemm['library']}) on {_threads_text(count)}"
                for index, (count, gemm) in enumerate(gemms.items())))
    families = ", ".join(
        f"{_format_number(peak['practical_gflops'])} {_rate_unit(family)} {family}"
        for family, peak in peaks["families"].items())
    lines.append(
        f"% of peak: fastbmm's GFLOP/s over the practical peak on "
        f"{_threads_text(peaks['threads'])} ({families}); float16 and complex64 against "
        "float32's, complex128 against float64's, complex in real operations (4x the "
        "GFLOP/s column); int32 against int32's (integer operations); int8, uint8, int16, "
        "int64 and bfloat16: none")
    return lines


def percent_of_peak(case, seconds, peaks):
    """A call's speed as a percentage of the practical peak of its family.

    Parameters
    ----------
    case : BenchCase
    seconds : float
        Time of one call.
    peaks : dict or None
        From `measure_peaks`.

    Returns
    -------
    float or None
        ``100 * GFLOP/s * REAL_OPS_PER_COUNTED_OP / practical_gflops``; None
        for a dtype without a family in `PEAK_FAMILY`, or without `peaks`
        for its family.

    Examples
    --------
    >>> from fastbmm.bench import BenchCase, parse_shape, percent_of_peak
    >>> peaks = {"families": {"float32": {"practical_gflops": 80.0}}}
    >>> case = BenchCase(parse_shape("1x100x100x100"), "c64")   # 2e6 counted operations
    >>> round(percent_of_peak(case, 1e-4, peaks), 6)            # 20 GFLOP/s, 80 real
    100.0
    """
    family = PEAK_FAMILY.get(case.dtype)
    if peaks is None or family not in peaks["families"]:
        return None
    real_gflops = gflops(case, seconds) * REAL_OPS_PER_COUNTED_OP.get(case.dtype, 1)
    return 100.0 * real_gflops / peaks["families"][family]["practical_gflops"]


def _format_percent(value):
    """``"52%"``, ``"7.5%"`` (one decimal below 10), ``"-"`` for None."""
    if value is None:
        return "-"
    return f"{value:.0f}%" if value >= 9.95 else f"{value:.1f}%"


def results_table(cases, results, libraries, markdown=False, peaks=None):
    """Render GFLOP/s and fastbmm's speed ratios, with their geometric means.

    Parameters
    ----------
    cases : sequence of BenchCase
    results : sequence of dict of str to Timing
        From `run_benchmarks`; the medians are shown.
    libraries : sequence of str
        Starting with ``"fastbmm"``.
    markdown : bool, optional
    peaks : dict, optional
        From `measure_peaks`: adds a ``fastbmm % of peak`` column after
        fastbmm's GFLOP/s (`percent_of_peak`; ``-`` for a dtype without a
        family in `PEAK_FAMILY`).

    Returns
    -------
    str
    """
    others = [library for library in libraries if library != "fastbmm"]
    header = ["shape", "dtype"] + [f"{library} GFLOP/s" for library in libraries]
    if peaks is not None:
        header.insert(3, "fastbmm % of peak")
    header += [f"fastbmm/{library}" for library in others]
    rows = []
    ratios = {library: [] for library in others}
    for case, timings in zip(cases, results):
        rates = {library: gflops(case, timings[library].median) for library in libraries}
        row = [case.shape.label, str(DTYPES[case.dtype])]
        row += [_format_number(rates[library]) for library in libraries]
        if peaks is not None:
            row.insert(3, _format_percent(
                percent_of_peak(case, timings["fastbmm"].median, peaks)))
        for library in others:
            ratio = rates["fastbmm"] / rates[library]
            ratios[library].append(ratio)
            row.append(f"{ratio:.2f}")
        rows.append(row)
    if rows:
        rows.append(
            ["geometric mean", ""]
            + [""] * (len(libraries) + (peaks is not None))
            + [f"{statistics.geometric_mean(ratios[library]):.2f}" for library in others]
        )
    return render_table(header, rows, markdown=markdown)


def results_json(cases, results, libraries, info, settings, peaks=None):
    """Everything a run measured, as a JSON-serialisable dict.

    Parameters
    ----------
    cases, results, libraries
        As in `results_table`.
    info : dict
        From `environment_info`.
    settings : dict
        How the run was made (the command line, rounds, ``min_time``,
        threads); stored as ``"run"``.
    peaks : dict, optional
        From `measure_peaks`; stored as ``"peak"`` (None: not measured).

    Returns
    -------
    dict
        ``info``'s keys, ``"run"``, ``"peak"``, ``"libraries"`` and
        ``"results"``: one entry per case with its ``label``, ``shape``
        (``b``, ``n``, ``m``, ``p``, ``mat2_transposed``), ``dtype``,
        ``flops``, ``peak_family`` (a key of ``peak["families"]``, or None),
        ``real_ops_per_counted_op`` and, per library, ``seconds_per_call``
        (every round), ``calls_per_sample``, ``median_seconds``,
        ``median_gflops`` and ``percent_of_peak`` (`percent_of_peak` of the
        median; None without a peak).
    """
    entries = []
    for case, timings in zip(cases, results):
        shape = case.shape
        entries.append({
            "label": case.label,
            "shape": {"b": shape.b, "n": shape.n, "m": shape.m, "p": shape.p,
                      "mat2_transposed": shape.mat2_transposed},
            "dtype": str(DTYPES[case.dtype]),
            "flops": shape.flops,
            "peak_family": PEAK_FAMILY.get(case.dtype),
            "real_ops_per_counted_op": REAL_OPS_PER_COUNTED_OP.get(case.dtype, 1),
            "libraries": {
                library: {
                    "seconds_per_call": list(timings[library].seconds),
                    "calls_per_sample": timings[library].calls_per_sample,
                    "median_seconds": timings[library].median,
                    "median_gflops": gflops(case, timings[library].median),
                    "percent_of_peak": percent_of_peak(case, timings[library].median, peaks),
                }
                for library in libraries
            },
        })
    return {"format": "fastbmm.bench/1", **info, "run": settings, "peak": peaks,
            "libraries": list(libraries), "results": entries}


def save_plot(path, cases, results, libraries, title):
    """Save a bar chart of GFLOP/s per case and library, with their spread (needs matplotlib).

    Bars are the medians over the rounds; whiskers span the slowest to the
    fastest round.

    Parameters
    ----------
    path : str
        Output file; the format follows its extension (PNG for ``.png``).
    cases, results, libraries
        As in `results_table`.
    title : str
        E.g. from `plot_title`.

    Returns
    -------
    matplotlib.figure.Figure
        The saved figure.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(8.0, 2.0 + 0.45 * len(cases)), 5.5))
    axes = figure.subplots()
    width = 0.8 / len(libraries)
    for offset, library in enumerate(libraries):
        shift = (offset - (len(libraries) - 1) / 2) * width
        positions = [index + shift for index in range(len(cases))]
        medians, below, above = [], [], []
        for case, timings in zip(cases, results):
            timing = timings[library]
            median = gflops(case, timing.median)
            medians.append(median)
            below.append(median - gflops(case, max(timing.seconds)))
            above.append(gflops(case, min(timing.seconds)) - median)
        axes.bar(positions, medians, width, yerr=[below, above], capsize=2,
                 error_kw={"elinewidth": 0.8}, label=library)
    axes.set_xticks(range(len(cases)), [case.label for case in cases], rotation=60, ha="right")
    axes.set_yscale("log")
    axes.set_ylabel("GFLOP/s (2*b*n*m*p / time; higher is better)\n"
                    "bar: median over the rounds; whisker: slowest to fastest round")
    axes.set_title(title)
    axes.legend()
    axes.grid(axis="y", which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return figure


def plot_title(info, libraries, num_threads):
    """The plot's title: the libraries, the CPU, the thread count and fastbmm's kernel.

    Parameters
    ----------
    info : dict
        From `environment_info`.
    libraries : sequence of str
        Starting with ``"fastbmm"``.
    num_threads : int
        The threads every library ran with.

    Returns
    -------
    str
    """
    return (
        f"fastbmm vs {', '.join(libraries[1:])}: {info['machine']['cpu_model']} "
        f"({' '.join(info['machine']['isa_flags'])})\n"
        f"{num_threads} thread{'s' if num_threads != 1 else ''} each, "
        f"fastbmm kernel {info['fastbmm']['kernel']}"
    )


def _positive_int(text):
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _shape_list(text):
    """argparse type: comma-separated `BenchShape` labels (see `parse_shape`)."""
    try:
        shapes = [parse_shape(label) for label in text.split(",") if label.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not shapes:
        raise argparse.ArgumentTypeError("no shape given")
    return shapes


def _dtype_list(text):
    """argparse type: comma-separated keys of `DTYPES`."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DTYPES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown dtype(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(DTYPES)}"
        )
    return names


def main(argv=None):
    """Entry point of ``python -m fastbmm.bench``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m fastbmm.bench",
        description="Compare fastbmm.bmm with numpy.matmul and torch.bmm (when installed), "
        "in GFLOP/s, interleaving the libraries on the same inputs.",
    )
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument("--quick", action="store_true", help="only the small and medium shapes")
    selection.add_argument(
        "--shapes",
        type=_shape_list,
        metavar="LIST",
        help="comma-separated shapes BxNxMxP ((b, n, m) @ (b, m, p)), T appended for a "
        "transposed mat2, instead of the canonical list "
        f"({','.join(shape.label for shape in SHAPES)}); every --dtypes dtype runs on each",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help="threads for every library "
        "(default: fastbmm.get_num_threads(), applied to the others)",
    )
    parser.add_argument(
        "--dtypes",
        type=_dtype_list,
        default=list(DEFAULT_DTYPES),
        metavar="LIST",
        help=f"comma-separated, from {','.join(DTYPES)} (default: {','.join(DEFAULT_DTYPES)}); "
        f"{' and '.join(CORE_DTYPES)} run on every shape, the others on "
        + ", ".join("x".join(map(str, dims)) for dims in EXTRA_DTYPE_SHAPES)
        + "; except: "
        + ", ".join(f"{'x'.join(map(str, dims))} runs {','.join(only)} only"
                    for dims, only in ONLY_DTYPES.items()),
    )
    kernels = list(_runtime.available_kernels())
    parser.add_argument(
        "--kernel",
        choices=kernels,
        help=f"force fastbmm's kernel variant (default: {_runtime.get_kernel()}, "
        "the best this CPU runs)",
    )
    parser.add_argument(
        "--bf16-kernel",
        choices=list(_runtime.BF16_KERNELS),
        help="force fastbmm's bfloat16 nest (default: the best the kernel variant runs here, "
        f"of {','.join(_runtime.bf16_kernels())})",
    )
    parser.add_argument(
        "--int-kernel",
        choices=list(_runtime.INT_KERNELS),
        help="force fastbmm's int8/uint8/int16 nest (default: the best the kernel variant runs "
        f"here, of {','.join(_runtime.int_kernels())})",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="save the machine (CPU model, ISA flags), the versions, the kernel, the thread "
        "counts and every round's time per shape and library as JSON",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE",
        help="save a bar chart of GFLOP/s, medians with min-max whiskers (needs matplotlib)",
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--no-peak",
        action="store_true",
        help="skip the peak measurements (fastbmm's multiply-add loop on 1 and all threads, "
        f"the fastest {PEAK_GEMM_SHAPE.label} product; a few seconds per dtype family) and "
        "the %% of peak column",
    )
    parser.add_argument(
        "--rounds", type=_positive_int, default=5, help="interleaved rounds (default: 5)"
    )
    parser.add_argument(
        "--min-time",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="minimum duration of one measurement (default: 0.1)",
    )
    parser.add_argument(
        "--timer",
        choices=list(TIMERS),
        default="wall",
        help="wall: wall-clock time (default); thread: this thread's CPU time "
        "(time.thread_time), steadier on a busy machine, with --threads 1 only",
    )
    args = parser.parse_args(argv)
    if args.timer == "thread" and args.threads != 1:
        parser.error("--timer thread needs --threads 1: it does not count worker threads")
    if args.plot and _optional_import("matplotlib") is None:
        parser.error("--plot needs matplotlib, which is not installed (pip install matplotlib)")
    if args.kernel is not None:
        _runtime.set_kernel(args.kernel)
    if args.bf16_kernel is not None:
        if args.bf16_kernel not in _runtime.bf16_kernels():
            parser.error(f"--bf16-kernel {args.bf16_kernel}: kernel {_runtime.get_kernel()} "
                         f"runs {','.join(_runtime.bf16_kernels())} on this CPU")
        _runtime.set_bf16_kernel(args.bf16_kernel)
    if args.int_kernel is not None:
        if args.int_kernel not in _runtime.int_kernels():
            parser.error(f"--int-kernel {args.int_kernel}: kernel {_runtime.get_kernel()} "
                         f"runs {','.join(_runtime.int_kernels())} on this CPU")
        _runtime.set_int_kernel(args.int_kernel)
    warn_about_benchmark_conditions()

    cases = benchmark_cases(quick=args.quick, dtypes=args.dtypes, shapes=args.shapes)
    libraries = available_libraries()
    with matched_threads(args.threads) as num_threads:
        info = environment_info()
        peaks = None
        if not args.no_peak:
            peaks = measure_peaks(sorted({case.dtype for case in cases}), libraries, num_threads,
                                  rounds=args.rounds, min_time=args.min_time, timer=args.timer)
        results = run_benchmarks(cases, libraries, rounds=args.rounds, min_time=args.min_time,
                                 timer=args.timer)
    report = environment_report(info) + ([] if peaks is None else peak_report(peaks))

    notes = [
        f"timing: median of {args.rounds} interleaved rounds, "
        f"each measurement >= {args.min_time} s"
        + (" of this thread's CPU time (time.thread_time)" if args.timer == "thread" else ""),
        "GFLOP/s = `2*b*n*m*p` / time per call; "
        "fastbmm/X = fastbmm's GFLOP/s over X's (> 1: fastbmm faster)",
        "shape bxnxmxp: (b, n, m) @ (b, m, p); T: mat2 is a transposed view `k.transpose(0, 2, 1)`",
    ]
    if args.markdown:
        print("\n".join(f"- {line}" for line in report + notes))
        print()
    else:
        print("fastbmm benchmark")
        print("\n".join(report + notes))
        print()
    print(results_table(cases, results, libraries, markdown=args.markdown, peaks=peaks))
    if args.json:
        settings = {
            "argv": ["python", "-m", "fastbmm.bench"] + list(sys.argv[1:] if argv is None else argv),
            "rounds": args.rounds,
            "min_time": args.min_time,
            "threads": num_threads,
            "timer": args.timer,
            "peak": not args.no_peak,
        }
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results_json(cases, results, libraries, info, settings, peaks), file,
                      indent=1)
            file.write("\n")
        print(f"results saved to {args.json}", file=sys.stderr)
    if args.plot:
        save_plot(args.plot, cases, results, libraries,
                  title=plot_title(info, libraries, num_threads))
        print(f"plot saved to {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
