"""Self-check and quick comparison: ``python -m fastbmm [--help] [--version]``.

Runs torch.bmm's documentation example and the seed example, checks both
against ``numpy.matmul``, prints ``fastbmm.show_config()`` and a short timing
table of fastbmm against numpy.matmul and torch.bmm (when installed). Exits
with status 1 when a result does not match NumPy's. Takes a few seconds; use
``python -m fastbmm.bench`` for the full benchmark.
"""

import argparse
import sys

import numpy as np

import fastbmm
from fastbmm import bench

#: (description, input shape, mat2 shape, expected result shape)
EXAMPLES = (
    ("torch.bmm docs example", (10, 3, 4), (10, 4, 5), (10, 3, 5)),
    ("seed example", (2, 1, 10), (2, 10, 4), (2, 1, 4)),
)

#: Shapes of the timing table, in float32.
TIMING_SHAPES = (
    bench.BenchShape(2, 1, 10, 4),
    bench.BenchShape(10000, 4, 4, 4),
    bench.BenchShape(1024, 32, 32, 32),
    bench.BenchShape(64, 128, 128, 64),
)


def check_examples():
    """Run `EXAMPLES` through ``fastbmm.bmm`` and compare with ``numpy.matmul``.

    Prints one line per example, ending in ``OK`` or ``MISMATCH``.

    Returns
    -------
    bool
        Whether every example matched.
    """
    rng = np.random.default_rng(0)
    all_ok = True
    for description, input_shape, mat2_shape, expected_shape in EXAMPLES:
        input = rng.standard_normal(input_shape, dtype=np.float32)
        mat2 = rng.standard_normal(mat2_shape, dtype=np.float32)
        result = fastbmm.bmm(input, mat2)
        ok = result.shape == expected_shape and np.allclose(result, np.matmul(input, mat2))
        all_ok = all_ok and ok
        print(
            f"{description}: input {input_shape} @ mat2 {mat2_shape} -> {result.shape}  "
            f"{'OK' if ok else 'MISMATCH'}"
        )
    return all_ok


def _format_time(seconds):
    """A time per call in microseconds, or milliseconds from 1 ms up."""
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def timing_table():
    """Time `TIMING_SHAPES` in float32 and render the table.

    Progress goes to stderr, one line per shape.

    Returns
    -------
    str
    """
    libraries = bench.available_libraries()
    others = libraries[1:]
    header = ["shape (b, n, m, p)"] + libraries + [f"vs {library}" for library in others]
    rows = []
    for index, shape in enumerate(TIMING_SHAPES, 1):
        progress = f"[{index}/{len(TIMING_SHAPES)}] timing {shape.dims} ..."
        print(progress, file=sys.stderr, flush=True)
        input, mat2 = bench.make_operands(bench.BenchCase(shape, "f32"))
        calls = {library: bench.library_call(library, input, mat2) for library in libraries}
        seconds = bench.time_interleaved(calls, rounds=3, min_time=0.05)
        rows.append(
            [str(shape.dims)]
            + [_format_time(seconds[library]) for library in libraries]
            + [f"{seconds[library] / seconds['fastbmm']:.2f}x" for library in others]
        )
    return bench.render_table(header, rows)


def parse_args(argv=None):
    """Parse ``python -m fastbmm``'s options (``--help`` and ``--version`` exit here).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
    """
    parser = argparse.ArgumentParser(
        prog="python -m fastbmm",
        description="Self-check and quick comparison: runs torch.bmm's documentation example "
        "and the seed example (2, 1, 10) @ (2, 10, 4), checks them against numpy.matmul, "
        "prints the configuration (fastbmm.show_config()) and a short float32 timing table "
        "against numpy.matmul and torch.bmm (when installed).",
        epilog="Exit status: 0 when every example matches NumPy, 1 when one does not. "
        "The full benchmark: python -m fastbmm.bench --help.",
    )
    parser.add_argument(
        "--version", action="version", version=f"fastbmm {fastbmm.__version__}"
    )
    return parser.parse_args(argv)


def main(argv=None):
    """Entry point of ``python -m fastbmm``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every example matched NumPy, else 1.
    """
    parse_args(argv)
    bench.warn_about_benchmark_conditions()
    all_ok = check_examples()
    print()
    fastbmm.show_config()
    print()
    with bench.matched_threads() as num_threads:
        print(
            f"time per call, float32, median of 3 interleaved rounds, {num_threads} threads each; "
            "vs X: X's time / fastbmm's (> 1: fastbmm faster)"
        )
        print(timing_table())
    if not all_ok:
        print("MISMATCH: fastbmm.bmm disagrees with numpy.matmul", file=sys.stderr)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
