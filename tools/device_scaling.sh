#!/usr/bin/env bash
# tools/device_scaling.sh -- a thread-scaling run on a many-core machine: build in
# place, run the kernel-variant tests on that CPU's own variants, then
# `python -m fastbmm.bench` at 1, 2, 4, 8 and 16 threads against numpy and torch.
# Writes into $OUT (default ./scaling-out): lscpu.txt, build.log, tests.log,
# bench-t<N>.txt (and bench-t<N>.json with JSON=1), bench-bf16-t<N>.txt.
set -uo pipefail
OUT="${OUT:-scaling-out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
SHAPES="${SHAPES:-4096x8x8x8,2048x16x16x16,1024x32x32x32,512x24x40x56,64x128x128x64,16x197x64x197T,256x1x512x512,32x256x256x256}"
lscpu > "$OUT/lscpu.txt" 2>&1
"$PY" -c "import numpy, torch; print('numpy', numpy.__version__, 'torch', torch.__version__)" >> "$OUT/lscpu.txt" 2>&1
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
t0=$SECONDS
FASTBMM_TEST_VARIANTS=1 "$PY" setup.py build_ext --inplace -j 4 > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 3; }
echo "build: $((SECONDS - t0)) s"
"$PY" -c "import fastbmm; fastbmm.show_config()"
[[ "${SKIP_TESTS:-0}" == 1 ]] || timeout "${TEST_TIMEOUT:-240}" "$PY" -m pytest -q -p no:cacheprovider -x -n 8 \
    tests/bmm/test_values.py tests/bmm/test_fuzz.py tests/engine/test_engine_paths.py \
    tests/engine/test_engine_accuracy.py tests/engine/test_engine_bounds.py tests/bmm/test_bfloat16.py \
    tests/baddbmm/test_baddbmm.py tests/cli/test_bench_peak.py \
    > "$OUT/tests.log" 2>&1
[[ "${SKIP_TESTS:-0}" == 1 ]] || echo "tests: exit $? ($(tail -1 "$OUT/tests.log"))"
# fastbmm sizes its team to the CPUs other processes leave free: let the load
# of the build and the tests die down first
sleep "${SETTLE:-20}"
for t in 1 2 4 8 16; do
    peak=--no-peak
    [[ $t == 1 || $t == 16 ]] && peak=
    timeout 150 "$PY" -m fastbmm.bench --threads "$t" --shapes "$SHAPES" --dtypes f32,f64 $peak \
        --rounds 3 --min-time 0.05 --markdown ${JSON:+--json "$OUT/bench-t$t.json"} > "$OUT/bench-t$t.txt" 2>&1
    echo "bench t=$t: exit $?"
done
# bfloat16 (where ml_dtypes is installed): 1 thread and all
for t in 1 16; do
    timeout 150 "$PY" -m fastbmm.bench --threads "$t" --dtypes bf16,f16,f32 --no-peak \
        --shapes 1024x32x32x32,1024x48x48x48,64x128x128x64,256x96x96x96,4x1024x1024x1024 \
        --rounds 3 --min-time 0.05 --markdown > "$OUT/bench-bf16-t$t.txt" 2>&1
    echo "bench bf16 t=$t: exit $?"
done
