"""The benchmark's peak figures and shape set (``python -m fastbmm.bench``).

What is checked here is arithmetic, never speed: that the multiply-add loop
behind the peak (``fastbmm._runtime.peak_fma``, src/peak.h) computes what its
recurrence computes and counts its operations right, on every kernel variant
this CPU runs; that the report and ``--json`` carry the peaks; and that
``% of peak`` is the division it claims to be, redone from the JSON's own
numbers. Speed is shown by the benchmark, never asserted in tests.
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastbmm
from fastbmm import _runtime, bench

IMPORT_ROOT = str(Path(fastbmm.__file__).parent.parent)

#: Accumulator chains of each variant's loop (src/peak.h): 16 on AVX-512's
#: 32 registers, 12 on the 16 of SSE2/AVX2 (and NEON's baseline).
CHAINS = {"avx512": 16, "avx512_emulated": 16}

FAMILIES = {"float32": "f32", "float64": "f64", "int32": "i32"}
FLOAT_FAMILIES = ("float32", "float64")


@pytest.fixture(params=_runtime.available_kernels())
def kernel(request):
    previous = _runtime.get_kernel()
    _runtime.set_kernel(request.param)
    yield request.param
    _runtime.set_kernel(previous)


def _lanes_times_chains(kernel, family):
    # NR is FBMM_NV = 2 vectors of the variant's width (block_sizes.h); the
    # int32 loop runs in the 32-bit integer family's lanes (u32)
    key = "u32" if family == "int32" else FAMILIES[family]
    lanes = _runtime.block_sizes()[key]["NR"] // 2
    return lanes * CHAINS.get(kernel, 12)


def _loop_reference(values, iters, family="float64"):
    """The loop's result in exact arithmetic: lanes start at 0, 1, ..., values - 1
    (lane l of chain c at c * lanes + l), each stepped acc = acc * 0.5 + 1 in
    float, acc = (acc * 3 + 1) mod 2**32 in the int32 family's unsigned lanes."""
    total = 0
    for start in range(values):
        acc = start if family == "int32" else float(start)
        for _ in range(iters):
            acc = (acc * 3 + 1) % 2**32 if family == "int32" else acc * 0.5 + 1.0
        total += acc
    return float(total)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("iters", [0, 1, 2, 5, 12])
def test_peak_loop_computes_its_recurrence_and_counts_its_flops(kernel, family, iters):
    values = _lanes_times_chains(kernel, family)
    flops, value = _runtime.peak_fma(family, iters)
    assert flops == 2 * values * iters
    # exact: float starts below 2**8 halved at most 12 times fit float32's
    # 24 bits; int32's lanes below 3**12 * 2**8, and their sum, fit double
    assert value == _loop_reference(values, iters, family)


@pytest.mark.parametrize("iters", [21, 40])
def test_peak_loop_int32_lanes_wrap_modulo_2_to_32(kernel, iters):
    # 3**21 > 2**32: every lane has wrapped (unsigned lanes: defined, and
    # as fast as any other value); a sum of at most 256 lanes below 2**32 is
    # exact in double
    values = _lanes_times_chains(kernel, "int32")
    flops, value = _runtime.peak_fma("int32", iters)
    assert flops == 2 * values * iters
    assert value == _loop_reference(values, iters, "int32")


@pytest.mark.parametrize("family", FLOAT_FAMILIES)
def test_peak_loop_long_run_settles_on_the_fixed_point(kernel, family):
    # acc * 0.5 + 1 converges to 2 and then stays there exactly (no overflow,
    # no subnormals however long the timed run)
    values = _lanes_times_chains(kernel, family)
    flops, value = _runtime.peak_fma(family, 1000)
    assert flops == 2 * values * 1000
    assert value == 2.0 * values


@pytest.mark.parametrize("threads, tasks", [(1, 3), (2, 2), (2, 7), (3, None)])
def test_peak_loop_on_threads_sums_every_task(threads, tasks):
    kernel = _runtime.get_kernel()
    values = _lanes_times_chains(kernel, "float64")
    runs = threads if tasks is None else tasks
    flops, value = _runtime.peak_fma(np.float64, 5, threads=threads, tasks=tasks)
    assert flops == runs * 2 * values * 5
    assert value == runs * _loop_reference(values, 5)


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        (("int64", 1), {}, ValueError, "family must be float32, float64 or int32, got int64"),
        (("float16", 1), {}, ValueError, "family must be float32, float64 or int32"),
        (("no such dtype", 1), {}, TypeError, ""),
        (("float32", -1), {}, ValueError, "iters must be in [0, "),
        (("float32", True), {}, TypeError, "iters must be an int, not bool"),
        (("float32", 1.5), {}, TypeError, "iters must be an int, not float"),
        (("float32", 1), {"threads": 0}, ValueError, "threads must be in [1, "),
        (("float32", 1), {"threads": 10**6}, ValueError, "threads must be in [1, "),
        (("float32", 1), {"tasks": 0}, ValueError, "tasks must be in [1, 1048576]"),
    ],
)
def test_peak_loop_refuses_bad_arguments(args, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message) if message else None):
        _runtime.peak_fma(*args, **kwargs)


# --------------------------------------------------------------------------
# % of peak, and the report


def _fake_peaks():
    return {
        "kernel": "avx2", "threads": 2, "gemm_shape": "1x1024x1024x1024",
        "families": {
            "float32": {"practical_gflops": 100.0,
                        "fma_loop": {"1": {"flops_per_step": 192, "gflops": 90.0},
                                     "2": {"flops_per_step": 192, "gflops": 170.0}},
                        "gemm": {"1": {"gflops": 70.0, "library": "numpy"},
                                 "2": {"gflops": 100.0, "library": "fastbmm"}}},
            "float64": {"practical_gflops": 40.0,
                        "fma_loop": {"1": {"flops_per_step": 96, "gflops": 45.0}},
                        "gemm": {"2": {"gflops": 40.0, "library": "torch"}}},
            "int32": {"practical_gflops": 50.0,
                      "fma_loop": {"1": {"flops_per_step": 192, "gflops": 60.0}},
                      "gemm": {"2": {"gflops": 50.0, "library": "fastbmm"}}},
        },
    }


@pytest.mark.parametrize(
    "dtype, expected",
    # 2x10x10x10: 4000 counted operations; at 1e-7 s a call, 40 GFLOP/s
    [("f32", 40.0), ("f16", 40.0), ("c64", 160.0), ("f64", 100.0), ("c128", 400.0),
     ("i32", 80.0), ("i8", None), ("i16", None), ("bf16", None)],
)
def test_percent_of_peak_is_the_family_practical_peak_fraction(dtype, expected):
    case = bench.BenchCase(bench.parse_shape("2x10x10x10"), dtype)
    got = bench.percent_of_peak(case, 1e-7, _fake_peaks())
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)
    assert bench.percent_of_peak(case, 1e-7, None) is None


def test_table_has_a_percent_column_after_fastbmm_and_the_report_names_the_peaks():
    shape = bench.parse_shape("2x10x10x10")
    cases = [bench.BenchCase(shape, "f32"), bench.BenchCase(shape, "i32")]
    results = [
        {"fastbmm": bench.Timing([1e-7] * 3, 1), "numpy": bench.Timing([2e-7] * 3, 1)},
        {"fastbmm": bench.Timing([1e-7] * 3, 1), "numpy": bench.Timing([4e-7] * 3, 1)},
    ]
    table = bench.results_table(cases, results, ["fastbmm", "numpy"], peaks=_fake_peaks())
    lines = table.splitlines()
    assert "dtype  fastbmm GFLOP/s  fastbmm % of peak  numpy GFLOP/s  fastbmm/numpy" in lines[0]
    assert lines[1].split()[2:5] == ["40.0", "40%", "20.0"]
    assert lines[2].split()[2:5] == ["40.0", "80%", "10.0"]
    assert lines[3].split() == ["geometric", "mean", f"{math.sqrt(2 * 4):.2f}"]
    assert "% of peak" not in bench.results_table(cases, results, ["fastbmm", "numpy"])

    report = "\n".join(bench.peak_report(_fake_peaks()))
    assert "peak float32, kernel avx2's multiply-add loop (192 flops a step" in report
    assert "90.0 GFLOP/s on 1 thread, 170 on 2 threads" in report
    assert "practical (fastest 1x1024x1024x1024 product; median): 70.0 GFLOP/s (numpy) " \
        "on 1 thread, 100 (fastbmm) on 2 threads" in report
    assert "over the practical peak on 2 threads (100 GFLOP/s float32, 40.0 GFLOP/s float64, " \
        "50.0 GOP/s int32)" in report
    assert "peak int32, kernel avx2's multiply-add loop (192 operations a step" in report
    assert "60.0 GOP/s on 1 thread" in report
    assert "int32 against int32's" in report


# --------------------------------------------------------------------------
# The command line, end to end (tiny workloads, two short rounds)


def _run_bench(*args):
    env = dict(os.environ, PYTHONPATH=IMPORT_ROOT)
    return subprocess.run([sys.executable, "-m", "fastbmm.bench", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_bench_json_carries_the_peaks_and_percent_of_peak_follows_from_them(tmp_path):
    path = tmp_path / "bench.json"
    result = _run_bench("--shapes", "2x3x5x4T,4x16x16x16", "--dtypes", "f32,f64,c64,i32",
                        "--threads", "1", "--rounds", "2", "--min-time", "0.001",
                        "--json", str(path))
    assert result.returncode == 0, result.stderr
    data = json.loads(path.read_text())
    peak = data["peak"]
    kernel = data["fastbmm"]["kernel"]
    assert peak["kernel"] == kernel and peak["threads"] == 1 == data["run"]["threads"]
    assert peak["gemm_shape"] == bench.PEAK_GEMM_SHAPE.label
    assert data["run"]["peak"] is True
    assert set(peak["families"]) == {"float32", "float64", "int32"}
    usable = data["machine"]["usable_cpus"]
    cap = _runtime.thread_state()["max_per_call"]
    loop_counts = {"1"} | ({str(min(usable, cap))} if data["fastbmm"]["openmp"] else set())
    for family, family_peak in peak["families"].items():
        assert set(family_peak["fma_loop"]) == loop_counts
        for count, loop in family_peak["fma_loop"].items():
            assert loop["threads"] == int(count)
            assert loop["tasks"] == (1 if count == "1" else bench.PEAK_TASKS_PER_THREAD * int(count))
            assert loop["flops_per_step"] == 2 * _lanes_times_chains(kernel, family)
            assert loop["flops"] == loop["flops_per_step"] * loop["iters"] * loop["tasks"]
            assert len(loop["gflops_rounds"]) == 2
            assert loop["gflops"] == max(loop["gflops_rounds"]) > 0
        assert set(family_peak["gemm"]) == {"1"}
        gemm = family_peak["gemm"]["1"]
        # every library of the run, but NumPy's plain integer loop (5.7 s a call)
        skipped = {"numpy"} if family == "int32" else set()
        assert set(gemm["median_gflops"]) == set(data["libraries"]) - skipped
        assert gemm["library"] == max(gemm["median_gflops"], key=gemm["median_gflops"].get)
        assert gemm["gflops"] == gemm["median_gflops"][gemm["library"]]
        assert family_peak["practical_gflops"] == gemm["gflops"]

    # % of peak, recomputed from the JSON's own numbers
    factors = {"float32": 1, "float64": 1, "complex64": 4, "int32": 1}
    families = {"float32": "float32", "float64": "float64", "complex64": "float32",
                "int32": "int32"}
    for entry in data["results"]:
        assert entry["peak_family"] == families[entry["dtype"]]
        assert entry["real_ops_per_counted_op"] == factors[entry["dtype"]]
        for timing in entry["libraries"].values():
            if entry["peak_family"] is None:
                assert timing["percent_of_peak"] is None
                continue
            practical = peak["families"][entry["peak_family"]]["practical_gflops"]
            assert timing["percent_of_peak"] == pytest.approx(
                100 * timing["median_gflops"] * entry["real_ops_per_counted_op"] / practical)

    # the header and the table carry the same figures
    out = result.stdout
    assert f"CPU: {data['machine']['cpu_model']}" in out
    for family in ("float32", "float64", "int32"):
        assert f"peak {family}, kernel {kernel}'s multiply-add loop" in out
        assert f"peak {family}, practical (fastest 1x1024x1024x1024 product; median)" in out
    assert "fastbmm % of peak" in out
    rows = {line.split()[0] + "-" + line.split()[1]: line.split() for line in out.splitlines()
            if line.startswith(("2x3x5x4T ", "4x16x16x16 "))}
    for entry in data["results"]:
        row = rows[entry["label"].rsplit("-", 1)[0] + "-" + entry["dtype"]]
        assert row[3] == bench._format_percent(entry["libraries"]["fastbmm"]["percent_of_peak"])


def test_bench_no_peak_skips_the_peaks(tmp_path):
    path = tmp_path / "bench.json"
    result = _run_bench("--shapes", "2x3x5x4", "--dtypes", "f32", "--threads", "1",
                        "--rounds", "2", "--min-time", "0.001", "--no-peak", "--json", str(path))
    assert result.returncode == 0, result.stderr
    data = json.loads(path.read_text())
    assert data["peak"] is None and data["run"]["peak"] is False
    assert data["results"][0]["libraries"]["fastbmm"]["percent_of_peak"] is None
    assert "% of peak" not in result.stdout and "peak float32" not in result.stdout
    assert "peak:" not in result.stderr


def test_bench_dtypes_without_a_family_measure_no_peak(tmp_path):
    # int8 and int16 have no family (PEAK_FAMILY): nothing to measure, no column
    result = _run_bench("--shapes", "2x3x5x4", "--dtypes", "i8,i16", "--threads", "1",
                        "--rounds", "2", "--min-time", "0.001")
    assert result.returncode == 0, result.stderr
    assert "% of peak" not in result.stdout and "peak:" not in result.stderr


# --------------------------------------------------------------------------
# The shape set


def test_shape_set_has_the_shapes_users_meet():
    labels = {shape.label for shape in bench.SHAPES}
    assert {"2048x16x16x16", "512x24x40x56", "128x24x256x64", "16x197x64x197T",
            "128x64x64x1", "1024x48x48x48", "256x96x96x96"} <= labels
    assert len(labels) == len(bench.SHAPES)
    cases = {case.label for case in bench.benchmark_cases()}
    # float16 (and bfloat16) at 48 and 96 (those shapes run only them), the others in f32/f64
    assert {"1024x48x48x48-f16", "256x96x96x96-f16", "16x197x64x197T-f32",
            "16x197x64x197T-f64", "128x64x64x1-f32", "2048x16x16x16-f64"} <= cases
    assert not any(label.startswith(("1024x48x48x48-", "256x96x96x96-"))
                   and not label.endswith(("-f16", "-bf16")) for label in cases)
    # --quick keeps the small and medium ones, not the ~1.5 s-a-call numpy float16 one
    quick = {case.label for case in bench.benchmark_cases(quick=True)}
    assert "1024x48x48x48-f16" in quick and "16x197x64x197T-f32" in quick
    assert "256x96x96x96-f16" not in quick
    # a float16-only shape asked for in other dtypes runs none of them
    assert not [case for case in bench.benchmark_cases(dtypes=("f32", "i32"))
                if case.shape.dims in bench.ONLY_DTYPES]


def test_vit_shape_transposes_mat2():
    shape = bench.parse_shape("16x197x64x197T")
    assert shape in bench.SHAPES
    input, mat2 = bench.make_operands(bench.BenchCase(shape, "f32"))
    assert input.shape == (16, 197, 64) and mat2.shape == (16, 64, 197)
    assert not mat2.flags.c_contiguous and mat2.transpose(0, 2, 1).flags.c_contiguous


def test_peak_loop_on_threads_runs_through_the_fork_safe_helper():
    # torch loads its OpenMP runtime before fastbmm: then the initial thread
    # hands its parallel regions to fastbmm's helper thread (README, "fork"),
    # and the loop's team goes the same way (fbmm_run_tasks), never a region
    # of its own
    pytest.importorskip("torch")
    code = (
        "import torch, fastbmm\n"
        "from fastbmm import _runtime\n"
        "print(_runtime.thread_state()['regions_from_helper_thread'])\n"
        "print(*_runtime.peak_fma('float32', 4, threads=2, tasks=6))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=IMPORT_ROOT), timeout=120)
    assert result.returncode == 0, result.stderr
    delegated, counts = result.stdout.splitlines()
    values = _lanes_times_chains(_runtime.get_kernel(), "float32")
    assert counts.split() == [str(6 * 2 * values * 4), repr(6 * _loop_reference(values, 4))]
    # (whether regions were delegated depends on how torch was built: its pip
    # wheels share libgomp with fastbmm, and then they are)
    assert delegated in ("True", "False")
