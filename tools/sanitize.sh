#!/usr/bin/env bash
# tools/sanitize.sh -- build fastbmm with AddressSanitizer + UndefinedBehaviorSanitizer
# in a scratch copy of the working tree and run the test suite against that build.
#
#   tools/sanitize.sh                 build + run tests/ (reduced Hypothesis profiles)
#   tools/sanitize.sh -k fuzz         extra arguments go to pytest
#   tools/sanitize.sh --selftest      prove that a report is caught (ASan and UBSan)
#
# The main tree's extension modules are never touched: the working tree (tracked and
# untracked-but-not-ignored files, uncommitted edits included) is copied to a temp dir
# and built there in place.
#
# Exit status: 0 clean; 1 a sanitizer report (ASan, UBSan, or one from a subprocess);
# 2 tests failed without a report; 3 build or setup problem; 124 time limit.
#
# Environment:
#   SANITIZE_KEEP=1         keep the scratch dir (default: removed when clean)
#   SANITIZE_HIDE_TORCH=1   run with torch hidden (a shim `torch` raising ImportError)
#   SANITIZE_TIMEOUT=540    seconds allowed for the pytest run
#   FASTBMM_FUZZ_PROFILE    default "asan" (100 examples per fuzz test, deterministic)
#   FASTBMM_HYPOTHESIS_PROFILE  default "ci" (the other test files' profile)
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
CC="${CC:-gcc}"
SAN_RT="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
SAN_FLAGS="$SAN_RT -fno-omit-frame-pointer -O1 -g"

LIBASAN="$("$CC" -print-file-name=libasan.so)"
LIBUBSAN="$("$CC" -print-file-name=libubsan.so)"
if [[ ! -e "$LIBASAN" || ! -e "$LIBUBSAN" ]]; then
    echo "sanitize: $CC has no libasan/libubsan ($LIBASAN, $LIBUBSAN)" >&2
    exit 3
fi

WORK="$(mktemp -d /tmp/fastbmm-sanitize.XXXXXX)"
LOGS="$WORK/sanitizer-logs"
mkdir -p "$LOGS"
echo "sanitize: scratch dir $WORK"

PRELOAD="$LIBASAN $LIBUBSAN"   # set only for the Python runs (not for git, tar, gcc)
# detect_leaks=0: CPython leaks at exit by design. allocator_may_return_null=1: the
# reliability tests ask for 4 TiB outputs on purpose and expect MemoryError, not an abort.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:allocator_may_return_null=1:detect_stack_use_after_return=0:log_path=$LOGS/asan:print_summary=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$LOGS/ubsan"

# ASan reports, from this process or a child (fork, subprocess tests), land in $LOGS.
# GCC's UBSan runtime ignores log_path and writes to stderr: pytest runs with
# --capture=sys, so C-level stderr reaches the tee'd log, which is scanned too.
PATTERN='ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer|ERROR: LeakSanitizer'
reports() {   # reports [stderr-log...]: print every report found; status 0 if any
    local f found=0
    for f in "$LOGS"/*; do
        # (allocator_may_return_null=1 leaves "WARNING: failed to allocate" notes: not reports)
        [[ -s "$f" ]] && grep -Eq "$PATTERN" "$f" || continue
        found=1
        echo "================ $(basename "$f") ================"
        head -n 80 "$f"
    done
    for f in "$@"; do
        if grep -Eq "$PATTERN" "$f"; then
            found=1
            echo "================ reports in $(basename "$f") ================"
            grep -En -A 25 "$PATTERN" "$f" | head -n 200
        fi
    done
    return $((1 - found))
}

finish() {
    local rc=$1
    if [[ $rc -eq 0 && "${SANITIZE_KEEP:-0}" != 1 ]]; then
        rm -rf "$WORK"
    else
        echo "sanitize: logs and build kept in $WORK"
    fi
    exit "$rc"
}

# ---------------------------------------------------------------------------
if [[ "${1:-}" == "--selftest" ]]; then
    # 1. ASan: an out-of-bounds memset through the preloaded runtime.
    LD_PRELOAD="$PRELOAD" "$PY" -c '
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
p = libc.malloc(16)
ctypes.memset(p + 16, 0, 8)  # heap-buffer-overflow
print("ASan missed the overflow")
' >/dev/null 2>&1
    if ! grep -qs "heap-buffer-overflow" "$LOGS"/*; then
        echo "sanitize --selftest: ASan report NOT caught" >&2; finish 3
    fi
    rm -f "$LOGS"/*
    # 2. UBSan: signed overflow in a tiny library built with the same flags.
    printf 'int fbmm_selftest(int x) { return x + 2147483647; }\n' > "$WORK/ub.c"
    "$CC" $SAN_FLAGS -shared -fPIC "$WORK/ub.c" -o "$WORK/ub.so" || finish 3
    LD_PRELOAD="$PRELOAD" "$PY" -c "import ctypes; ctypes.CDLL('$WORK/ub.so').fbmm_selftest(5)" \
        > "$WORK/ub.log" 2>&1
    if ! reports "$WORK/ub.log" | grep "signed integer overflow" >/dev/null; then
        echo "sanitize --selftest: UBSan report NOT caught" >&2; finish 3
    fi
    echo "sanitize --selftest: ASan and UBSan reports are caught"
    rm -f "$LOGS"/*
    finish 0
fi

# ---------------------------------------------------------------------------
# Copy the working tree (no build products: *.so and generated .c are ignored).
(cd "$REPO" && git ls-files -z -co --exclude-standard) |
    (cd "$REPO" && tar --null --ignore-failed-read -T - -cf -) | tar -C "$WORK" -xf - || {
    echo "sanitize: copying the tree failed" >&2; finish 3; }

echo "sanitize: building with $SAN_FLAGS"
# The sanitizer runtime flags go into CC as well: setup.py's OpenMP probe links an
# executable with the compiler driver alone (distutils applies no LDFLAGS there), and
# with -fsanitize only in CFLAGS that link fails and the package builds without OpenMP.
# setup.py appends -O3 after CFLAGS; a wrapper puts -O1 last so it wins (an -O3 build
# with ASan+UBSan of every kernel variant takes several times longer to compile).
# Only the variants this CPU runs are built (FASTBMM_RUNNABLE_VARIANTS_ONLY): the
# others' code is reached by no test here, and the avx512 engine was a third of
# the sanitized build on an AVX2 machine (CI's 20-minute budget).
printf '#!/bin/sh\nexec %s "$@" -O1\n' "$CC" > "$WORK/san-cc"
chmod +x "$WORK/san-cc"
t_build=$SECONDS
(
    cd "$WORK" &&
    env CC="$WORK/san-cc $SAN_RT" CFLAGS="$SAN_FLAGS" LDFLAGS="$SAN_FLAGS" \
        FASTBMM_RUNNABLE_VARIANTS_ONLY=1 "$PY" setup.py build_ext --inplace -j 2
) > "$WORK/build.log" 2>&1
if [[ $? -ne 0 ]]; then
    tail -n 40 "$WORK/build.log" >&2
    echo "sanitize: build failed (log: $WORK/build.log)" >&2
    finish 3
fi
echo "sanitize: built in $((SECONDS - t_build)) s"
for so in "$WORK"/fastbmm/*.so; do
    if ! nm -D "$so" 2>/dev/null | grep "__asan_init\|__asan_report" >/dev/null; then
        echo "sanitize: $so is not instrumented" >&2
        finish 3
    fi
done
rm -f "$LOGS"/*

SHIM=""
if [[ "${SANITIZE_HIDE_TORCH:-0}" == 1 ]]; then
    SHIM="$WORK/no-torch"
    mkdir -p "$SHIM"
    echo 'raise ImportError("torch hidden by tools/sanitize.sh")' > "$SHIM/torch.py"
fi

export PYTHONPATH="${SHIM:+$SHIM:}$WORK"
export PYTHONMALLOC=malloc          # Python objects on the instrumented heap too
export FASTBMM_FUZZ_PROFILE="${FASTBMM_FUZZ_PROFILE:-asan}"
export FASTBMM_HYPOTHESIS_PROFILE="${FASTBMM_HYPOTHESIS_PROFILE:-ci}"
export PYTHONFAULTHANDLER=1

where="$(cd "$WORK" && LD_PRELOAD="$PRELOAD" "$PY" -c 'import fastbmm; print(fastbmm.__file__)' 2>&1)"
if [[ "$where" != "$WORK"/* ]]; then
    echo "sanitize: the instrumented build does not import under the preload: $where" >&2
    finish 3
fi
# The threaded paths must be in the instrumented build whenever the normal one has them.
have_omp="$(cd "$WORK" && LD_PRELOAD="$PRELOAD" "$PY" -c 'import fastbmm._runtime as r; print(r.openmp_enabled())' 2>&1)"
if printf 'int main(void){return 0;}\n' | "$CC" -fopenmp -x c - -o "$WORK/omp-probe" 2>/dev/null &&
        [[ "$have_omp" != True ]]; then
    echo "sanitize: the instrumented build has no OpenMP though $CC has: see $WORK/build.log" >&2
    finish 3
fi

# Tests whose premise an instrumented process breaks (not checked here):
#  - RSS / tracemalloc leak checks: ASan's quarantine keeps freed memory resident, and
#    PYTHONMALLOC=malloc changes what tracemalloc counts (test_no_leaks_refcounts runs).
#  - peak-RSS checks: ASan's allocator and shadow memory change what ru_maxrss shows.
#  - the busy-core timing ratios: the instrumented child runs several times slower, and
#    its thread-count decisions are the same code the unsanitized run times.
DESELECT=(
    --deselect tests/robustness/test_reliability.py::test_no_leaks_rss
    --deselect tests/robustness/test_reliability.py::test_no_leaks_tracemalloc
    --deselect tests/robustness/test_reliability.py::test_broadcast_operand_is_not_materialised
    --deselect tests/robustness/test_reliability.py::test_busy_core_does_not_slow_the_default_thread_count
)

echo "sanitize: running pytest (LD_PRELOAD=$PRELOAD)"
(cd "$WORK" && LD_PRELOAD="$PRELOAD" timeout "${SANITIZE_TIMEOUT:-540}" \
    "$PY" -m pytest tests -q -p no:cacheprovider --capture=sys -o addopts="" -rfE \
    "${DESELECT[@]}" "$@") 2>&1 |
    tee "$WORK/pytest.log" | tail -n 60
rc=${PIPESTATUS[0]}

if reports "$WORK/pytest.log"; then
    echo "sanitize: SANITIZER REPORT(S) above (pytest exit $rc)" >&2
    finish 1
fi
if [[ $rc -eq 124 ]]; then
    echo "sanitize: pytest ran past ${SANITIZE_TIMEOUT:-540} s" >&2
    finish 124
fi
if [[ $rc -ne 0 ]]; then
    echo "sanitize: no sanitizer report, but pytest exited $rc" >&2
    finish 2
fi
echo "sanitize: clean (no ASan/UBSan report)"
finish 0
