"""The command lines: ``python -m fastbmm`` and ``python -m fastbmm.bench``.

Each runs in a subprocess, as a user runs it, with the tiniest workload that
exercises the option (one small shape, two short rounds).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastbmm
from fastbmm import bench

PACKAGE_DIR = Path(fastbmm.__file__).parent
# the directory that holds the fastbmm being tested, so that the subprocess imports it
IMPORT_ROOT = str(PACKAGE_DIR.parent)


def run_module(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=IMPORT_ROOT)
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, env=env, cwd=cwd,
        timeout=300,
    )


def test_help_prints_usage_and_runs_nothing():
    result = run_module("fastbmm", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m fastbmm [-h] [--version]")
    assert "python -m fastbmm.bench" in result.stdout
    # the demo's output: neither the examples nor the configuration
    assert "seed example" not in result.stdout.split("usage:")[0]
    assert "kernel in use" not in result.stdout


def test_version_prints_the_package_version():
    result = run_module("fastbmm", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"fastbmm {fastbmm.__version__}\n"


def test_unknown_option_is_an_error():
    result = run_module("fastbmm", "--frobnicate")
    assert result.returncode == 2
    assert "unrecognized arguments: --frobnicate" in result.stderr


def test_bench_help_lists_the_options():
    result = run_module("fastbmm.bench", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--json", "--shapes", "--kernel", "--plot", "--threads", "--dtypes", "--timer",
                   "--bf16-kernel"):
        assert option in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--shapes", "2x1x10"], "is not of the form BxNxMxP"),
        (["--shapes", "2x0x10x4"], "every size must be >= 1"),
        (["--shapes", "2x1x10x4", "--quick"], "not allowed with argument"),
        (["--kernel", "no_such_kernel"], "invalid choice: 'no_such_kernel'"),
        (["--dtypes", "f128"], "unknown dtype(s) f128"),
        (["--timer", "thread", "--threads", "2"], "--timer thread needs --threads 1"),
        (["--kernel", "baseline", "--bf16-kernel", "amx"],
         "--bf16-kernel amx: kernel baseline runs widen on this CPU"),
        (["--bf16-kernel", "tiles"], "invalid choice: 'tiles'"),
    ],
)
def test_bench_refuses_bad_options(args, message):
    result = run_module("fastbmm.bench", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "timing" not in result.stderr


def test_bench_json_records_machine_settings_and_every_round(tmp_path):
    kernel = "baseline"
    path = tmp_path / "bench.json"
    result = run_module(
        "fastbmm.bench", "--shapes", "2x3x5x4T", "--dtypes", "f32,i32", "--threads", "1",
        "--kernel", kernel, "--rounds", "2", "--min-time", "0.001", "--timer", "thread",
        "--json", str(path),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(path.read_text())
    assert {"format", "date", "machine", "python", "fastbmm", "numpy", "torch", "run",
            "libraries", "results"} <= set(data)
    assert data["format"] == "fastbmm.bench/1"
    config = fastbmm.show_config(mode="dicts")
    assert {"platform", "machine", "cpu_model", "isa_flags", "logical_cpus"} <= set(data["machine"])
    assert data["machine"]["cpu_model"]
    assert data["machine"]["isa_flags"] == config["cpu"]["features"]
    assert data["fastbmm"]["version"] == fastbmm.__version__
    assert data["fastbmm"]["kernel"] == kernel
    assert data["fastbmm"]["num_threads"] == 1
    assert data["run"]["threads"] == 1 and data["run"]["rounds"] == 2
    assert data["run"]["timer"] == "thread"
    assert data["run"]["argv"][:3] == ["python", "-m", "fastbmm.bench"]
    assert data["numpy"]["version"] == np.__version__
    try:  # (tools/sanitize.sh can hide torch behind a module that raises ImportError)
        import torch  # noqa: F401
    except ImportError:
        torch_installed = False
    else:
        torch_installed = True
    assert (data["torch"] is not None) == torch_installed
    if torch_installed:
        assert data["torch"]["num_threads"] == 1
    assert data["libraries"][:2] == ["fastbmm", "numpy"]

    assert [entry["label"] for entry in data["results"]] == ["2x3x5x4T-f32", "2x3x5x4T-i32"]
    for entry in data["results"]:
        assert entry["shape"] == {"b": 2, "n": 3, "m": 5, "p": 4, "mat2_transposed": True}
        assert entry["flops"] == 2 * 2 * 3 * 5 * 4
        assert set(entry["libraries"]) == set(data["libraries"])
        for timing in entry["libraries"].values():
            samples = timing["seconds_per_call"]
            assert len(samples) == 2 and all(s > 0 for s in samples)
            assert timing["calls_per_sample"] >= 1
            assert timing["median_seconds"] == statistics.median(samples)
            assert timing["median_gflops"] == pytest.approx(
                entry["flops"] / timing["median_seconds"] / 1e9)
    # the table on stdout is the same run's
    assert "2x3x5x4T" in result.stdout
    assert "kernel baseline (bfloat16: widen, int8/uint8/int16: widen)" in result.stdout
    assert data["fastbmm"]["bf16_kernel"] == "widen"
    assert data["fastbmm"]["int_kernel"] == "widen"


@pytest.mark.skipif("avx512_emulated" not in fastbmm._runtime.available_kernels(),
                    reason="needs the test-only avx512_emulated variant (FASTBMM_TEST_VARIANTS=1)")
def test_bench_forces_a_bfloat16_nest(tmp_path):
    pytest.importorskip("ml_dtypes")
    path = tmp_path / "bench.json"
    result = run_module(
        "fastbmm.bench", "--shapes", "2x40x20x40", "--dtypes", "bf16", "--threads", "1",
        "--kernel", "avx512_emulated", "--bf16-kernel", "vdpbf16ps", "--rounds", "2",
        "--min-time", "0.001", "--no-peak", "--json", str(path),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(path.read_text())["fastbmm"]["bf16_kernel"] == "vdpbf16ps"
    assert "kernel avx512_emulated (bfloat16: vdpbf16ps," in result.stdout


@pytest.mark.skipif("avx512_emulated" not in fastbmm._runtime.available_kernels(),
                    reason="needs the test-only avx512_emulated variant (FASTBMM_TEST_VARIANTS=1)")
@pytest.mark.parametrize("nest", ["vpdpwssd", "widen"])
def test_bench_forces_an_integer_nest(tmp_path, nest):
    path = tmp_path / "bench.json"
    result = run_module(
        "fastbmm.bench", "--shapes", "2x40x20x40", "--dtypes", "i8", "--threads", "1",
        "--kernel", "avx512_emulated", "--int-kernel", nest, "--rounds", "2",
        "--min-time", "0.001", "--no-peak", "--json", str(path),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(path.read_text())["fastbmm"]["int_kernel"] == nest
    assert f"int8/uint8/int16: {nest})" in result.stdout


def test_bench_refuses_an_integer_nest_the_variant_cannot_run():
    result = run_module("fastbmm.bench", "--shapes", "2x4x4x4", "--dtypes", "i8",
                        "--kernel", "baseline", "--int-kernel", "vpdpwssd", "--no-peak")
    assert result.returncode != 0
    assert "--int-kernel vpdpwssd: kernel baseline runs widen on this CPU" in result.stderr


def test_bench_plot_has_spread_threads_and_cpu_in_title(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.container import BarContainer

    shape = bench.parse_shape("2x3x5x4")
    cases = [bench.BenchCase(shape, "f32"), bench.BenchCase(shape, "f64")]
    # seconds per call in three rounds; GFLOP/s = 240 flops / seconds / 1e9
    results = [
        {"fastbmm": bench.Timing([1e-6, 2e-6, 4e-6], 10), "numpy": bench.Timing([3e-6] * 3, 10)},
        {"fastbmm": bench.Timing([2e-6, 2e-6, 8e-6], 10), "numpy": bench.Timing([6e-6] * 3, 10)},
    ]
    info = {"machine": {"cpu_model": "Test CPU 9000", "isa_flags": ["avx2", "fma"]},
            "fastbmm": {"kernel": "avx2"}}
    title = bench.plot_title(info, ["fastbmm", "numpy"], 3)
    assert "Test CPU 9000" in title and "3 threads" in title and "kernel avx2" in title
    path = tmp_path / "plot.png"
    figure = bench.save_plot(str(path), cases, results, ["fastbmm", "numpy"], title)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axes = figure.axes[0]
    assert axes.get_title() == title
    fastbmm_bars = [c for c in axes.containers if isinstance(c, BarContainer)][0]
    assert fastbmm_bars.get_label() == "fastbmm"
    heights = [bar.get_height() for bar in fastbmm_bars.patches]
    assert heights == pytest.approx([240 / 2e-6 / 1e9, 240 / 2e-6 / 1e9])
    # whiskers from the slowest round to the fastest, in GFLOP/s
    segments = fastbmm_bars.errorbar.lines[2][0].get_segments()
    spans = sorted(y for seg in segments for y in (min(seg[:, 1]), max(seg[:, 1])))
    expected = sorted([240 / 4e-6 / 1e9, 240 / 1e-6 / 1e9, 240 / 8e-6 / 1e9, 240 / 2e-6 / 1e9])
    assert spans == pytest.approx(expected)


def test_import_from_an_unbuilt_source_tree_says_why(tmp_path):
    # a source tree without compiled modules (the .py files and a .pyx; an
    # installed wheel has no .pyx to copy), imported from its root
    tree = tmp_path / "fastbmm"
    tree.mkdir()
    for source in PACKAGE_DIR.glob("*.py"):
        shutil.copy(source, tree)
    (tree / "_runtime.pyx").write_text("# the Cython source of fastbmm._runtime\n")
    # -S: site-packages' .pth files are not run, so an editable install's
    # import hook (which would find the built package first) stays out, as with
    # a non-editable install; NumPy comes from PYTHONPATH, after the current
    # directory on sys.path.
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    result = subprocess.run(
        [sys.executable, "-S", "-c", "import fastbmm"], capture_output=True, text=True,
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=numpy_dir), timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.rstrip().endswith(
        f"ImportError: fastbmm's compiled modules are missing from {tree}: you are importing "
        "fastbmm from its source tree; run from another directory or pip install -e ."
    )


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads /proc/self/task")
def test_bench_settle_waits_for_a_spinning_thread_of_the_process():
    """`bench.settle` waits while another thread of this process runs (as
    OpenBLAS's workers spin 0.1 s after numpy.matmul), up to its timeout."""
    import threading
    import time

    assert bench.settle(timeout=5.0) < 1.0      # nothing of ours runs: a short wait at most
    stop_at = time.perf_counter() + 0.6

    def spin():                                  # the GIL released: a runnable thread
        x = np.ones(1 << 18)
        while time.perf_counter() < stop_at:
            np.sqrt(x, out=x)

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        time.sleep(0.02)
        bounded = bench.settle(timeout=0.05)
        waited = bench.settle(timeout=5.0)
    finally:
        thread.join()
    assert 0.05 <= bounded < 0.3, bounded
    assert 0.2 < waited < 4.0, waited
