"""int8, uint8 and int16 through each integer nest: widened to 32-bit lanes, and
vpdpwssd pairs (src/gemm_vnni.h; AVX512-VNNI's form in the avx512 variant,
AVX-VNNI's 256-bit one in the avx2 variant).

Both nests must give the exact result, bit for bit: the sums wrap mod 2**32
and the result mod 2**8 or 2**16, as torch's do. The reference is NumPy's
product in int64 (exact mod 2**64) cast to the dtype (``reference_bmm``).
The avx512 variant runs the instruction where the CPU reports avx512vnni, the
avx2 one where it reports avxvnni; the avx512_emulated one (built for the tests, runnable on any x86-64 CPU) runs a
software model of it, so the nest's packing, edges and odd depths are covered
on every CPU.
"""

import numpy as np
import pytest

import fastbmm
from _helpers import forced_variant_and_nest, reference_bmm, seeded_rng, variants_and_nests
from fastbmm import _runtime

DTYPES = [np.dtype(t) for t in (np.int8, np.uint8, np.int16)]


@pytest.fixture(params=variants_and_nests(_runtime.int_kernels), ids="-".join)
def int_kernel(request):
    """Force each kernel variant and, in it, each integer nest it runs here."""
    with forced_variant_and_nest(*request.param, _runtime.set_int_kernel,
                                 _runtime.get_int_kernel):
        yield request.param


# the small path (<= 16: the VNNI nest's crossover, FBMM_SMALL_MAX_VNNI), the
# VNNI nest below the small path's limit (17..32), the packed nest's edge
# tiles (rows past MR = 12, columns past NR = 32), odd depths (one half-empty
# pair), depth 1, several KC-deep panels (KC = 256 or 512: 513 leaves a last
# panel of depth 1), more rows than one MC block (120 on avx2, 192 on avx512),
# more columns than one NC = 3072 panel
SHAPES = [(3, 5, 7, 3), (4, 16, 16, 16), (3, 17, 17, 17), (2, 24, 31, 33), (2, 32, 32, 32),
          (2, 40, 1, 45), (2, 37, 29, 70), (1, 200, 300, 70), (2, 13, 513, 35),
          (1, 3, 7, 3100), (2, 45, 2, 37)]


def _full_range(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_full_range_values_are_exact(int_kernel, dtype, shape):
    """Values over the whole range: the sums overflow 32 bits (int16: 2 * 32768^2
    per pair) and the results wrap; every bit must match."""
    rng = seeded_rng("int-nests", str(dtype), shape)
    b, n, m, p = shape
    a, c = _full_range(rng, dtype, (b, n, m)), _full_range(rng, dtype, (b, m, p))
    np.testing.assert_array_equal(fastbmm.bmm(a, c), reference_bmm(a, c))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_extremes_every_product(int_kernel, dtype):
    """Every product of the extremes (min * min is 2**30 for int16, the largest
    a 16-bit pair product gets; min * max, max * max), in both halves of a pair."""
    info = np.iinfo(dtype)
    vals = np.array([info.min, info.max, -1 if info.min else 1, 0, 1, info.min + 1], dtype)
    m = 2 * len(vals) + 1                       # odd: a half-empty last pair
    a = np.resize(vals, (2, 36, m)).astype(dtype)
    c = np.resize(vals[::-1], (2, m, 40)).astype(dtype)
    np.testing.assert_array_equal(fastbmm.bmm(a, c), reference_bmm(a, c))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["AT", "BT", "A-strided", "B-strided", "reversed", "out-strided"])
def test_layouts(int_kernel, dtype, layout):
    """The packing's paths: unit columns read across (rows widened as runs, B's
    rows interleaved, the partial last sliver through copies) and any other
    stride element by element; a strided out= written tile by tile."""
    rng = seeded_rng("int-nests-layouts", str(dtype), layout)
    b, n, m, p = 2, 41, 67, 45
    if layout == "AT":
        a = _full_range(rng, dtype, (b, m, n)).transpose(0, 2, 1)
    elif layout == "A-strided":
        a = _full_range(rng, dtype, (b, n, 2 * m))[:, :, ::2]
    elif layout == "reversed":
        a = _full_range(rng, dtype, (b, n, m))[:, ::-1, ::-1]
    else:
        a = _full_range(rng, dtype, (b, n, m))
    if layout == "BT":
        c = _full_range(rng, dtype, (b, p, m)).transpose(0, 2, 1)
    elif layout == "B-strided":
        c = _full_range(rng, dtype, (b, m, 3 * p))[:, :, ::3]
    elif layout == "reversed":
        c = _full_range(rng, dtype, (b, m, p))[::-1, ::-1, ::-1]
    else:
        c = _full_range(rng, dtype, (b, m, p))
    want = reference_bmm(a, c)
    if layout == "out-strided":
        big = np.full((b, n, 2 * p), 7, dtype)
        out = big[:, :, ::2]
        assert fastbmm.bmm(a, c, out=out) is out
        np.testing.assert_array_equal(out, want)
        np.testing.assert_array_equal(big[:, :, 1::2], 7)   # nothing written between
    else:
        np.testing.assert_array_equal(fastbmm.bmm(a, c), want)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_baddbmm_epilogue(int_kernel, dtype):
    """beta * input + alpha * (a @ b), wrapping, through the nest's tile stores
    (several depth panels: the later ones add to C)."""
    rng = seeded_rng("int-nests-baddbmm", str(dtype))
    b, n, m, p = 2, 30, 300, 40
    bias = _full_range(rng, dtype, (b, 1, p))
    a, c = _full_range(rng, dtype, (b, n, m)), _full_range(rng, dtype, (b, m, p))
    got = fastbmm.baddbmm(bias, a, c, beta=3, alpha=5)
    prod = np.matmul(a.astype(np.int64), c.astype(np.int64))
    want = (3 * bias.astype(np.int64) + 5 * prod).astype(dtype)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_split_the_batch_and_the_matrix(int_kernel, threads):
    """Tasks over the batch and over tiles of one matrix, each with its scratch."""
    rng = seeded_rng("int-nests-threads", threads)
    previous = fastbmm.get_num_threads()
    fastbmm.set_num_threads(threads)
    try:
        for shape in [(8, 40, 50, 60), (1, 300, 100, 600)]:
            b, n, m, p = shape
            a = _full_range(rng, np.int8, (b, n, m))
            c = _full_range(rng, np.int8, (b, m, p))
            np.testing.assert_array_equal(fastbmm.bmm(a, c), reference_bmm(a, c))
    finally:
        fastbmm.set_num_threads(previous)


def test_int_kernels_listed_and_reported(kernel):
    features = _runtime.cpu_features().split()
    nests = _runtime.int_kernels()
    assert _runtime.get_int_kernel() == nests[0], "best first"
    want = {"widen"}
    if (kernel == "avx512_emulated" or (kernel == "avx512" and "avx512vnni" in features)
            or (kernel == "avx2" and "avxvnni" in features)):
        want.add("vpdpwssd")
    assert set(nests) == want
    assert nests[-1] == "widen"
    assert fastbmm.show_config(mode="dicts")["int_kernel"] == nests[0]
    with pytest.raises(ValueError, match="unknown integer kernel 'vnni2'"):
        _runtime.set_int_kernel("vnni2")
    if "vpdpwssd" not in nests:
        with pytest.raises(RuntimeError, match="cannot run with kernel"):
            _runtime.set_int_kernel("vpdpwssd")
        assert _runtime.get_int_kernel() == "widen", "a refused nest changes nothing"


def test_show_config_names_the_integer_nest(int_kernel, capsys):
    variant, nest = int_kernel
    fastbmm.show_config()
    line = next(x for x in capsys.readouterr().out.splitlines() if "int8/uint8/int16:" in x)
    assert {"vpdpwssd": "(vpdpwssd)", "widen": "widened"}[nest] in line
    assert ("modelled in software" in line) == (variant.endswith("_emulated") and nest != "widen")
