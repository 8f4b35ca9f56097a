import os
import subprocess
import sys

import numpy as np
import pytest

import fastbmm
import fastbmm._runtime as _runtime
from _helpers import REPO

KEYS = {"version", "openmp", "num_threads", "kernel", "available_kernels", "compiled_kernels", "cpu"}


def test_show_config_dicts_keys_and_types():
    cfg = fastbmm.show_config(mode="dicts")
    assert isinstance(cfg, dict)
    assert KEYS <= set(cfg), KEYS - set(cfg)
    assert isinstance(cfg["version"], str) and cfg["version"]
    assert isinstance(cfg["openmp"], bool)
    assert isinstance(cfg["num_threads"], int) and cfg["num_threads"] >= 1
    assert isinstance(cfg["kernel"], str)
    assert isinstance(cfg["cpu"], dict)
    assert list(cfg["available_kernels"]) and list(cfg["compiled_kernels"])


def test_show_config_dicts_consistent_with_api():
    cfg = fastbmm.show_config(mode="dicts")
    assert cfg["num_threads"] == fastbmm.get_num_threads()
    assert list(cfg["available_kernels"]) == list(_runtime.available_kernels())
    assert cfg["kernel"] in cfg["available_kernels"]
    assert cfg["kernel"] == _runtime.get_kernel()
    assert set(cfg["available_kernels"]) <= set(cfg["compiled_kernels"])
    if hasattr(fastbmm, "__version__"):
        assert cfg["version"] == fastbmm.__version__


def test_default_kernel_is_best_available():
    out = subprocess.run(
        [sys.executable, "-c",
         "import fastbmm, fastbmm._runtime as b; print(b.get_kernel(), b.available_kernels()[0])"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    kernel, best = out.stdout.split()
    assert kernel == best


def test_openmp_flag_matches_thread_control():
    cfg = fastbmm.show_config(mode="dicts")
    if not cfg["openmp"]:
        pytest.skip("built without OpenMP")
    previous = fastbmm.get_num_threads()
    try:
        fastbmm.set_num_threads(3)
        assert fastbmm.show_config(mode="dicts")["num_threads"] == 3
    finally:
        fastbmm.set_num_threads(previous)


def test_show_config_reports_forced_kernel(kernel):
    cfg = fastbmm.show_config(mode="dicts")
    assert cfg["kernel"] == kernel
    assert kernel in cfg["available_kernels"]


def test_show_config_stdout(capsys, kernel):
    ret = fastbmm.show_config()
    assert ret is None
    text = capsys.readouterr().out
    cfg = fastbmm.show_config(mode="dicts")
    assert cfg["version"] in text
    assert "openmp" in text.lower()
    assert str(cfg["num_threads"]) in text
    assert kernel in text
    assert "thread" in text.lower() and "kernel" in text.lower()


def test_set_kernel_rejects_unknown():
    previous = _runtime.get_kernel()
    with pytest.raises((ValueError, KeyError, RuntimeError)):
        _runtime.set_kernel("no-such-kernel")
    assert _runtime.get_kernel() == previous


def test_block_sizes_shape(kernel):
    bs = _runtime.block_sizes()
    assert isinstance(bs["small_max"], int) and bs["small_max"] >= 1
    assert isinstance(bs["small_max_complex"], int)
    assert 1 <= bs["small_max_complex"] <= bs["small_max"]
    for fam in ("f32", "f64", "u32", "u64"):
        for k in ("MR", "NR", "KC", "MC", "NC"):
            assert isinstance(bs[fam][k], int) and bs[fam][k] >= 1, (fam, k)
        assert bs[fam]["MC"] >= bs[fam]["MR"] and bs[fam]["NC"] >= bs[fam]["NR"]


def test_every_kernel_gives_the_same_integer_answer():
    """Forcing each kernel changes the code path, not the (exact) integer result."""
    from _helpers import random_values, reference_bmm

    rng = np.random.default_rng(3)
    a = random_values(rng, (3, 21, 35), np.dtype(np.int32))
    b = random_values(rng, (3, 35, 19), np.dtype(np.int32))
    expected = reference_bmm(a, b)
    previous = _runtime.get_kernel()
    try:
        for k in _runtime.available_kernels():
            _runtime.set_kernel(k)
            assert np.array_equal(fastbmm.bmm(a, b), expected), k
    finally:
        _runtime.set_kernel(previous)


def test_show_config_thread_state(capsys):
    """Where the thread count comes from, the per-call cap, and the fork state."""
    th = fastbmm.show_config(mode="dicts")["threads"]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert th["available_cpus"] == cpus
    assert th["max_per_call"] == max(8, 4 * cpus)
    # True when the OpenMP runtime was loaded before fastbmm (torch ships libgomp.so.1)
    assert th["regions_from_helper_thread"] == bool(th["helper_thread_reason"])
    previous = fastbmm.get_num_threads()
    try:
        fastbmm.set_num_threads(3)
        assert fastbmm.show_config(mode="dicts")["threads"]["setting"] == 3
        fastbmm.show_config()
        assert "set_num_threads(3)" in capsys.readouterr().out
        fastbmm.set_num_threads(None)
        th = fastbmm.show_config(mode="dicts")["threads"]
        assert th["setting"] is None and fastbmm.get_num_threads() == th["default"]
    finally:
        fastbmm.set_num_threads(previous)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_show_config_says_when_regions_run_on_a_helper_thread():
    code = (
        "import os, threading, fastbmm\n"
        "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
        "stop = threading.Event(); t = threading.Thread(target=stop.wait); t.start()\n"
        "pid = os.fork()\n"          # the parent has a second thread at fork()
        "if pid == 0:\n"
        "    fastbmm.show_config(); os._exit(0)\n"
        "os.waitpid(pid, 0); stop.set()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "helper thread" in out.stdout and "forked from one with several threads" in out.stdout


# fastbmm's CPU feature names -> the Linux kernel's flag names in /proc/cpuinfo
CPUINFO_FLAGS = {"avx2": "avx2", "fma": "fma", "f16c": "f16c", "avx512f": "avx512f",
                 "avx512bw": "avx512bw", "avx512bf16": "avx512_bf16", "amx-tile": "amx_tile",
                 "amx-bf16": "amx_bf16"}


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo") or "x86" not in os.uname().machine,
                    reason="the kernel's CPU flags: Linux on x86-64 only")
def test_cpu_features_agree_with_the_kernels_flags():
    # AVX512-BF16 and AMX are read from CPUID bits directly (src/dispatch.c);
    # the kernel decodes the same bits into /proc/cpuinfo's flags, and hides
    # the AVX-512 ones where the OS does not save the registers (fastbmm's
    # AVX-512 names check XCR0 too). A kernel older than AMX (5.16) does not
    # name its flags: for those, only "the kernel's flag => ours" is asked.
    with open("/proc/cpuinfo") as f:
        line = next(x for x in f if x.startswith("flags"))
    flags = set(line.split(":", 1)[1].split())
    ours = set(_runtime.cpu_features().split())
    for name, flag in CPUINFO_FLAGS.items():
        if name.startswith("amx"):
            assert flag not in flags or name in ours, (name, flag)
        else:
            assert (name in ours) == (flag in flags), (name, flag)
