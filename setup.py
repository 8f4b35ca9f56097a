"""Build of fastbmm's compiled core.

Six things happen here beyond a plain Cython build:

* The C engine's sources are generated from its two tables (tools/codegen.py):
  ``fastbmm/src/dtypes.def``, the dtype registry, and ``fastbmm/src/isa.def``,
  the ISA variants with their compiler flags, CPU features and block sizes.

* OpenMP is detected by compiling a test program with -fopenmp. Without it the
  package still builds, serially, with a warning (the Cython ``prange`` loops
  and the stand-ins in ``_openmp_helpers.pxd`` then compile to plain loops).
* Each ISA variant of the engine (``fastbmm/src/generated/engine_<isa>.c``) is
  compiled with that ISA's flags and no other file is. Test-only variants
  (isa.def's FBMM_ISA_TEST_ONLY rows) are built only with
  FASTBMM_TEST_VARIANTS=1 in the environment. The default build never uses
  -march=native; the variant is chosen at import time from the CPU's features.
  FASTBMM_MARCH_NATIVE=1 in the environment opts into -march=native for a
  private build. FASTBMM_RUNNABLE_VARIANTS_ONLY=1 (Linux) leaves out the
  variants whose CPU features this machine's /proc/cpuinfo lacks: a checking
  build (tools/sanitize.sh) whose tests cannot run them anyway.
* Variants the compiler cannot build are left out (and reported), so an old
  compiler still produces a working package with the baseline kernels.
* Debug information is left out (-g0): Python's own CFLAGS carry -g, which
  makes the modules three times larger. FASTBMM_KEEP_DEBUG=1 keeps it, and so
  does a -g option in the user's CFLAGS (a sanitizer or debugger build).
* The sources of one extension compile in parallel, two compiler processes
  per CPU (FASTBMM_BUILD_JOBS sets the number): the engine variants are all
  sources of fastbmm._runtime, and pip's build runs extensions one after
  another. The variants are few and long: with one process per CPU, three
  on two CPUs ended with the third compiling alone (4.1 min against 3.8).
"""

import os
import platform
import shlex
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from distutils.errors import CompileError, LinkError

X86_64 = platform.machine().lower() in ("x86_64", "amd64")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools"))
import codegen  # noqa: E402  (tools/codegen.py: dtypes.def and isa.def into C)

# isa.def's rows for this target: "any" everywhere, "x86_64" on x86-64. The
# test-only variants (FBMM_ISA_TEST_ONLY) only when asked for: CI sets
# FASTBMM_TEST_VARIANTS=1; a user's build and the wheels leave them out.
TEST_VARIANTS = os.environ.get("FASTBMM_TEST_VARIANTS") == "1"
ISAS = [isa for isa in codegen.isa_table()
        if (isa["arch"] == "any" or (isa["arch"] == "x86_64" and X86_64))
        and (TEST_VARIANTS or not isa["test_only"])]


def _cpu_flags():
    """The feature flags of /proc/cpuinfo's first processor, or None where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


# A checking build (tools/sanitize.sh) compiles only the variants this CPU can
# run: the rest would cost compile time (a third of the ASan build on an
# AVX2-only machine) for code no test reaches there.
if os.environ.get("FASTBMM_RUNNABLE_VARIANTS_ONLY") == "1":
    _flags = _cpu_flags()
    if _flags is None:
        sys.exit("setup.py: FASTBMM_RUNNABLE_VARIANTS_ONLY=1 needs /proc/cpuinfo (Linux)")
    ISAS = [isa for isa in ISAS if set(isa["features"]) <= _flags]
# engine variant -> the flags its generated source (and only it) is compiled with
ISA_FLAGS = {isa["name"]: isa["flags"] for isa in ISAS}

COMMON_FLAGS = ["-O3", "-fno-strict-aliasing"]

# Added to the variants compiled with -mavx2 (not -mavx512f) where the
# compiler takes them (GCC 12 and later). The trap: GCC's generic tuning
# expands a memcpy of 32 or 64 bytes in 16-byte pieces under -mavx2, and a
# 64-byte vector (two AVX2 registers: the 8x8 float64 tiny product's rows)
# leaves its registers through the stack to be stored so: 4096x8^3 float64
# ran at 24 GFLOP/s where whole 32-byte moves give 31 (Zen 3, 1 thread).
# Every CPU that runs AVX2 moves 32 unaligned bytes in one instruction; with
# -mavx512f GCC already moves 64.
AVX2_MOVE_FLAGS = ["-mmove-max=256", "-mstore-max=256"]


def _try_compile(compiler, code, flags, link=False, link_flags=()):
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=list(flags))
            if link:
                compiler.link_executable(objs, os.path.join(tmp, "probe"),
                                         extra_postargs=list(link_flags))
        except (CompileError, LinkError):
            return False
    return True


def _parallel_compile(self, sources, output_dir=None, macros=None, include_dirs=None,
                      debug=0, extra_preargs=None, extra_postargs=None, depends=None):
    """distutils' CCompiler.compile, with the sources of one extension compiled
    side by side. The engine variants are all sources of one extension
    (fastbmm._runtime): compiled one after another they made every build (pip's
    included) about twice as long as it needs to be on two cores.
    FASTBMM_BUILD_JOBS sets the number of compiler processes (default: twice
    the CPUs, so that the last long variant does not compile alone)."""
    from concurrent.futures import ThreadPoolExecutor

    macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
        output_dir, macros, include_dirs, sources, depends, extra_postargs)
    cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)
    todo = [(obj, *build[obj]) for obj in objects if obj in build]
    jobs = max(1, int(os.environ.get("FASTBMM_BUILD_JOBS") or 2 * (os.cpu_count() or 1)))
    with ThreadPoolExecutor(max_workers=min(jobs, max(1, len(todo)))) as pool:
        # list(): the first compiler error is raised here, after the others finished
        list(pool.map(lambda job: self._compile(job[0], job[1], job[2], cc_args,
                                                extra_postargs, pp_opts), todo))
    return objects


def _engine_name(src):
    """The variant a generated engine_<isa>.c builds, or None for another source."""
    name = os.path.basename(src)
    if os.path.basename(os.path.dirname(src)) == "generated" and name.startswith("engine_"):
        return name[len("engine_"):-len(".c")]
    return None


class BuildExt(build_ext):
    def build_extensions(self):
        cc = self.compiler
        if cc.compiler_type == "msvc":
            sys.exit("fastbmm needs GCC or Clang (its kernels use GCC/Clang vector extensions)")

        # the probe links with the user's LDFLAGS too (e.g. -fsanitize=...),
        # or a CFLAGS-only instrumentation would fail the link and silently
        # drop OpenMP
        openmp = _try_compile(
            cc, "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n",
            ["-fopenmp"], link=True,
            link_flags=["-fopenmp"] + shlex.split(os.environ.get("LDFLAGS", "")))
        if not openmp:
            print("WARNING: fastbmm: the compiler has no OpenMP; building a serial package",
                  file=sys.stderr)

        variants = {}
        for isa, flags in ISA_FLAGS.items():
            if _try_compile(cc, "int main(void){return 0;}\n", flags):
                variants[isa] = flags
                if ("-mavx2" in flags and "-mavx512f" not in flags and
                        _try_compile(cc, "int main(void){return 0;}\n", flags + AVX2_MOVE_FLAGS)):
                    variants[isa] = flags + AVX2_MOVE_FLAGS
            else:
                print(f"WARNING: fastbmm: compiler cannot build the {isa} kernels; left out",
                      file=sys.stderr)
        print(f"fastbmm: kernel variants: {', '.join(variants)}; OpenMP: {openmp}")

        native = os.environ.get("FASTBMM_MARCH_NATIVE") == "1"
        user_cflags = shlex.split(os.environ.get("CFLAGS", ""))
        keep_debug = (os.environ.get("FASTBMM_KEEP_DEBUG") == "1"
                      or any(f.startswith("-g") for f in user_cflags))
        # -g0 must come after sysconfig's -g: extra_compile_args are appended last.
        no_debug = [] if keep_debug else ["-g0"]
        # An optimisation level in CFLAGS (a sanitizer or debug build) wins.
        common = [f for f in COMMON_FLAGS
                  if not (f.startswith("-O") and "-O" in os.environ.get("CFLAGS", ""))]
        for ext in self.extensions:
            ext.extra_compile_args = common + no_debug + (["-fopenmp"] if openmp else []) + \
                (["-march=native"] if native else [])
            ext.extra_link_args = ["-fopenmp"] if openmp else []
            # a variant the compiler cannot build is left out of the link;
            # dispatch.c's weak references make its entry NULL
            ext.sources = [src for src in ext.sources
                           if not _engine_name(src) or _engine_name(src) in variants]

        # Per-file flags: wrap the compiler's single-file step.
        original = cc._compile

        def _compile(obj, src, ext, cc_args, extra_postargs, pp_opts):
            extra = variants.get(_engine_name(src), []) if _engine_name(src) else []
            return original(obj, src, ext, cc_args, list(extra_postargs) + extra, pp_opts)

        cc._compile = _compile
        cc.compile = _parallel_compile.__get__(cc)
        try:
            super().build_extensions()
        finally:
            cc._compile = original
            del cc.compile


SRC = "fastbmm/src"
engine_sources = [os.path.relpath(path) for path in codegen.generate(ISAS)] + [
    f"{SRC}/dispatch.c", f"{SRC}/dtypes.c", f"{SRC}/threads.c"]
# The kernels live in headers and .def tables included by every engine: a
# change to any of them must rebuild the extension.
engine_headers = sorted(str(p) for pattern in ("*.h", "*.def", "generated/*.h")
                        for p in __import__("pathlib").Path(SRC).glob(pattern))
numpy_macros = [("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")]

extensions = [
    Extension("fastbmm._runtime", ["fastbmm/_runtime.pyx"] + engine_sources,
              include_dirs=[np.get_include(), SRC], define_macros=numpy_macros,
              depends=engine_headers),
    Extension("fastbmm._dtypes", ["fastbmm/_dtypes.pyx", f"{SRC}/dtypes.c"],
              include_dirs=[np.get_include(), SRC], define_macros=numpy_macros,
              depends=[f"{SRC}/dtypes.def", f"{SRC}/fastbmm.h", f"{SRC}/elements.h"]),
    Extension("fastbmm._validation", ["fastbmm/_validation.pyx"],
              include_dirs=[np.get_include(), SRC], define_macros=numpy_macros),
    Extension("fastbmm._problem", ["fastbmm/_problem.pyx"],
              include_dirs=[np.get_include(), SRC], define_macros=numpy_macros),
    Extension("fastbmm._products", ["fastbmm/_products.pyx"],
              include_dirs=[np.get_include(), SRC], define_macros=numpy_macros),
]

setup(
    # each .pyx states its own directives in its first line
    ext_modules=cythonize(extensions, language_level=3),
    cmdclass={"build_ext": BuildExt},
)
