"""Side-by-side timing of ``fastbmm.bmm``, ``numpy.matmul`` and ``torch.bmm``.

Run as::

    python -m fastbmm.bench [--quick] [--threads N] [--dtypes f32,f64,...]
                            [--plot FILE] [--markdown]

For every benchmark case (a shape and a dtype) the libraries are timed in one
process on the same input arrays, interleaved: after a warm-up call and a
calibration of the number of calls per measurement (so that one measurement
lasts at least ``--min-time`` seconds, as ``timeit`` auto-ranging does),
several rounds measure each library in turn, and the median per-call time
over the rounds is reported as GFLOP/s (``2*b*n*m*p / time``; a complex
multiply-add counts as 2 operations, like a real one, so complex figures are
comparable between libraries, not with real dtypes).

This module also holds the canonical list of benchmark shapes (`SHAPES`) and
the helpers shared with the pytest-benchmark suite in ``benchmarks/`` and with
``python -m fastbmm``.
"""

import argparse
import contextlib
import datetime
import functools
import importlib
import math
import os
import platform
import statistics
import sys
import timeit
from typing import NamedTuple

import numpy as np

import fastbmm

__all__ = [
    "BenchShape",
    "BenchCase",
    "SHAPES",
    "EXTRA_DTYPE_SHAPES",
    "DTYPES",
    "CORE_DTYPES",
    "DEFAULT_DTYPES",
    "benchmark_cases",
    "make_operands",
    "available_libraries",
    "library_call",
    "calibrate",
    "time_interleaved",
    "matched_threads",
    "environment_report",
    "warn_about_benchmark_conditions",
    "render_table",
    "run_benchmarks",
    "results_table",
    "save_plot",
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


#: The canonical benchmark shapes, smallest first.
SHAPES = (
    BenchShape(2, 1, 10, 4),  # the seed example: (2, 1, 10) @ (2, 10, 4)
    BenchShape(10000, 4, 4, 4),
    BenchShape(4096, 8, 8, 8),
    BenchShape(1024, 32, 32, 32),
    BenchShape(64, 128, 64, 128, mat2_transposed=True),  # attention: q @ k.transpose(0, 2, 1)
    BenchShape(64, 128, 128, 64),
    BenchShape(256, 1, 512, 512, quick=False),
    BenchShape(32, 256, 256, 256, quick=False),
    BenchShape(4, 1024, 1024, 1024, quick=False),
    BenchShape(1, 2048, 2048, 2048, quick=False),
)

#: The ``(b, n, m, p)`` of the shapes on which non-core dtypes are benchmarked.
EXTRA_DTYPE_SHAPES = ((1024, 32, 32, 32), (64, 128, 128, 64))

#: Short dtype names accepted by ``--dtypes``.
DTYPES = {
    "f16": np.dtype(np.float16),
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
    "c64": np.dtype(np.complex64),
    "c128": np.dtype(np.complex128),
    "i8": np.dtype(np.int8),
    "u8": np.dtype(np.uint8),
    "i16": np.dtype(np.int16),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
}

#: Dtypes benchmarked on every shape; any other dtype only on `EXTRA_DTYPE_SHAPES`.
CORE_DTYPES = ("f32", "f64")

#: Dtypes benchmarked when none are requested.
DEFAULT_DTYPES = ("f32", "f64", "i32", "f16", "c64")

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


def benchmark_cases(quick=False, dtypes=DEFAULT_DTYPES):
    """List the benchmark cases, grouped by shape in `SHAPES` order.

    Parameters
    ----------
    quick : bool, optional
        Only the small/medium shapes (``BenchShape.quick``).
    dtypes : sequence of str, optional
        Keys of `DTYPES`. `CORE_DTYPES` run on every shape, the others only
        on `EXTRA_DTYPE_SHAPES`.

    Returns
    -------
    list of BenchCase
    """
    return [
        BenchCase(shape, dtype)
        for shape in SHAPES
        if shape.quick or not quick
        for dtype in dtypes
        if dtype in CORE_DTYPES or shape.dims in EXTRA_DTYPE_SHAPES
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

        return functools.partial(torch.bmm, torch.from_numpy(input), torch.from_numpy(mat2))
    if library == "einsum":
        return functools.partial(np.einsum, "bnm,bmp->bnp", input, mat2, optimize=False)
    raise ValueError(f"unknown library {library!r}")


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


def time_interleaved(calls, rounds=5, min_time=0.1):
    """Median time per call of several callables, measured in interleaved rounds.

    Each callable is called once to warm up (page faults, thread pools),
    calibrated with `calibrate`, then measured once per round; the order of
    the callables rotates from round to round, so that none always follows
    the same neighbour (whose thread pool may still be spinning).

    Parameters
    ----------
    calls : dict of str to callable
        Zero-argument callables, e.g. from `library_call`.
    rounds : int, optional
        Number of measurements per callable.
    min_time : float, optional
        Minimum duration of one measurement, in seconds.

    Returns
    -------
    dict of str to float
        Median seconds per call, keyed like `calls`.
    """
    timers = {name: timeit.Timer(call) for name, call in calls.items()}
    for call in calls.values():
        call()
    numbers = {name: calibrate(timer, min_time) for name, timer in timers.items()}
    samples = {name: [] for name in calls}
    names = list(calls)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(timers[name].timeit(numbers[name]) / numbers[name])
    return {name: statistics.median(times) for name, times in samples.items()}


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


def environment_report():
    """Describe the machine and the libraries' settings, one line per item.

    Call it inside `matched_threads` to report the counts the timings use.

    Returns
    -------
    list of str
    """
    config = fastbmm.show_config(mode="dicts")
    cpus = os.cpu_count()
    usable = _usable_cpus()
    cpu_count = f"{cpus} logical CPUs" + (f", {usable} usable" if usable != cpus else "")
    lines = [
        f"CPU: {_cpu_model()} ({cpu_count})",
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"fastbmm {config['version']}: kernel {config['kernel']}, "
        f"{fastbmm.get_num_threads()} threads"
        + ("" if config["openmp"] else " (built without OpenMP)"),
    ]
    blas = _numpy_blas_info()
    if blas is None:
        lines.append(f"numpy {np.__version__}: BLAS unknown (threadpoolctl not installed)")
    else:
        lines.extend(f"numpy {np.__version__}: BLAS {_describe_blas(info)}" for info in blas)
    torch = _optional_import("torch")
    if torch is None:
        lines.append("torch: not installed")
    else:
        lines.append(f"torch {torch.__version__}: {torch.get_num_threads()} threads")
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


def run_benchmarks(cases, libraries, rounds, min_time):
    """Time every library on every case, reporting progress on stderr.

    Parameters
    ----------
    cases : sequence of BenchCase
    libraries : sequence of str
        Names accepted by `library_call`.
    rounds, min_time
        As in `time_interleaved`.

    Returns
    -------
    list of dict of str to float
        GFLOP/s per library, one dict per case.
    """
    results = []
    for index, case in enumerate(cases, 1):
        print(f"[{index}/{len(cases)}] timing {case.label} ...", file=sys.stderr, flush=True)
        input, mat2 = make_operands(case)
        calls = {library: library_call(library, input, mat2) for library in libraries}
        seconds = time_interleaved(calls, rounds=rounds, min_time=min_time)
        results.append({name: case.shape.flops / seconds[name] / 1e9 for name in libraries})
    return results


def results_table(cases, results, libraries, markdown=False):
    """Render GFLOP/s and fastbmm's speed ratios, with their geometric means.

    Parameters
    ----------
    cases : sequence of BenchCase
    results : sequence of dict of str to float
        From `run_benchmarks`.
    libraries : sequence of str
        Starting with ``"fastbmm"``.
    markdown : bool, optional

    Returns
    -------
    str
    """
    others = [library for library in libraries if library != "fastbmm"]
    header = ["shape", "dtype"] + [f"{library} GFLOP/s" for library in libraries]
    header += [f"fastbmm/{library}" for library in others]
    rows = []
    ratios = {library: [] for library in others}
    for case, gflops in zip(cases, results):
        row = [case.shape.label, str(DTYPES[case.dtype])]
        row += [_format_number(gflops[library]) for library in libraries]
        for library in others:
            ratio = gflops["fastbmm"] / gflops[library]
            ratios[library].append(ratio)
            row.append(f"{ratio:.2f}")
        rows.append(row)
    if rows:
        rows.append(
            ["geometric mean", ""]
            + [""] * len(libraries)
            + [f"{statistics.geometric_mean(ratios[library]):.2f}" for library in others]
        )
    return render_table(header, rows, markdown=markdown)


def save_plot(path, cases, results, libraries, title):
    """Save a bar chart of GFLOP/s per case and library (needs matplotlib).

    Parameters
    ----------
    path : str
        Output file; the format follows its extension (PNG for ``.png``).
    cases, results, libraries
        As in `results_table`.
    title : str
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(8.0, 2.0 + 0.45 * len(cases)), 5.5))
    axes = figure.subplots()
    width = 0.8 / len(libraries)
    for offset, library in enumerate(libraries):
        shift = (offset - (len(libraries) - 1) / 2) * width
        positions = [index + shift for index in range(len(cases))]
        axes.bar(positions, [gflops[library] for gflops in results], width, label=library)
    axes.set_xticks(range(len(cases)), [case.label for case in cases], rotation=60, ha="right")
    axes.set_yscale("log")
    axes.set_ylabel("GFLOP/s (2*b*n*m*p / time; higher is better)")
    axes.set_title(title)
    axes.legend()
    axes.grid(axis="y", which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def _positive_int(text):
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


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
    parser.add_argument("--quick", action="store_true", help="only the small and medium shapes")
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
        + ", ".join("x".join(map(str, dims)) for dims in EXTRA_DTYPE_SHAPES),
    )
    parser.add_argument(
        "--plot", metavar="FILE", help="save a PNG bar chart of GFLOP/s (needs matplotlib)"
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
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
    args = parser.parse_args(argv)
    if args.plot and _optional_import("matplotlib") is None:
        parser.error("--plot needs matplotlib, which is not installed (pip install matplotlib)")
    warn_about_benchmark_conditions()

    cases = benchmark_cases(quick=args.quick, dtypes=args.dtypes)
    libraries = available_libraries()
    with matched_threads(args.threads):
        report = environment_report()
        results = run_benchmarks(cases, libraries, rounds=args.rounds, min_time=args.min_time)

    notes = [
        f"timing: median of {args.rounds} interleaved rounds, "
        f"each measurement >= {args.min_time} s",
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
    print(results_table(cases, results, libraries, markdown=args.markdown))
    if args.plot:
        title = f"fastbmm vs {', '.join(libraries[1:])}: {_cpu_model()}"
        save_plot(args.plot, cases, results, libraries, title=title)
        print(f"plot saved to {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
