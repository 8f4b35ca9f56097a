"""bfloat16: ml_dtypes arrays and torch bfloat16 tensors, summed in float32 and rounded once.

The exact reference of a bfloat16 product is the float32 sum rounded once to
bfloat16 with round-to-nearest-even (what torch does): the operands widen
exactly, so for small-integer operands whose sums float32 holds exactly, the
result is known to the last bit without any tolerance; for random operands the
float32 sums (``out_dtype=np.float32``) are checked against float64, and the
bfloat16 result against those sums rounded by ml_dtypes' own conversion.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastbmm
from _helpers import (KERNELS, assert_equal_values, check_torch, forced_variant_and_nest,
                      seeded_rng, variants_and_nests)
from fastbmm import _runtime

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)


@pytest.fixture(params=variants_and_nests(_runtime.bf16_kernels), ids="-".join)
def bf16_kernel(request):
    """Force each kernel variant and, in it, each bfloat16 nest it runs here (the
    avx512_emulated variant: models of AMX and vdpbf16ps, and widening)."""
    with forced_variant_and_nest(*request.param, _runtime.set_bf16_kernel,
                                 _runtime.get_bf16_kernel):
        yield request.param


# sizes around the paths: small (<= 8), the few-rows and few-columns ones, the
# packed nest's edges, several KC panels, more rows than one staged MC block
# (128 for AMX, 120 or 192 for the others); a last panel of depth 1 (513 =
# 2 * 256 + 1 or 512 + 1: one half-empty pair)
SHAPES = [(3, 2, 5, 3), (4, 8, 8, 8), (2, 1, 40, 33), (2, 37, 29, 2), (3, 19, 70, 45),
          (1, 200, 300, 70), (2, 13, 600, 17), (2, 45, 513, 37)]


def _bf16(x):
    return np.asarray(x, np.float32).astype(BF16)


def _operands(rng, shape, integers=False, transposed=False, a_transposed=False):
    b, n, m, p = shape
    if integers:
        a = _bf16(rng.integers(-8, 9, (b, m, n) if a_transposed else (b, n, m)))
        c = rng.integers(-8, 9, (b, p, m) if transposed else (b, m, p))
    else:
        a = _bf16(rng.standard_normal((b, m, n) if a_transposed else (b, n, m)))
        c = rng.standard_normal((b, p, m) if transposed else (b, m, p))
    c = _bf16(c)
    return (a.transpose(0, 2, 1) if a_transposed else a), (c.transpose(0, 2, 1) if transposed else c)


def _sums64(a, b):
    return np.matmul(a.astype(np.float64), b.astype(np.float64))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("transposed", [False, True], ids=["B", "BT"])
@pytest.mark.parametrize("a_transposed", [False, True], ids=["A", "AT"])
def test_exact_when_float32_sums_are_exact(bf16_kernel, shape, transposed, a_transposed):
    # |a|, |b| <= 8 and m <= 600: every partial sum is an integer below 2**24,
    # exact in float32 in any order, so the result is the sum rounded once
    rng = seeded_rng("bf16-exact", shape, transposed, a_transposed)
    a, b = _operands(rng, shape, integers=True, transposed=transposed, a_transposed=a_transposed)
    expected = _sums64(a, b).astype(np.float32).astype(BF16)
    got = fastbmm.bmm(a, b)
    assert got.dtype == BF16
    assert_equal_values(got.view(np.uint16), expected.view(np.uint16), what="fastbmm")


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_random_values_are_the_float32_sums_rounded_once(bf16_kernel, shape):
    rng = seeded_rng("bf16-random", shape)
    a, b = _operands(rng, shape)
    sums = fastbmm.bmm(a, b, out_dtype=np.float32)
    assert sums.dtype == np.float32
    ref = _sums64(a, b)
    bound = 4 * shape[2] * 2.0 ** -24 * _sums64(np.abs(a), np.abs(b))
    assert np.all(np.abs(sums - ref) <= bound)
    # the bfloat16 result is those float32 sums rounded once (ml_dtypes rounds)
    assert_equal_values(fastbmm.bmm(a, b).view(np.uint16), sums.astype(BF16).view(np.uint16),
                        what="fastbmm")


def test_rounding_is_to_nearest_even_once():
    # rows [x, y, z] @ [1, 1, 1]: float32 sums exactly halfway between two bfloat16
    # values (1 + 2**-8 lies between 1 and 1 + 2**-7) round to the even one;
    # a sum just past halfway rounds up; a float32 sum past bfloat16's largest
    # finite value rounds to infinity, as float32 -> bfloat16 does
    big = float(ml_dtypes.finfo(BF16).max)
    rows = [(1.0, 2.0 ** -8, 0.0), (1.0 + 2.0 ** -7, 2.0 ** -8, 0.0),
            (1.0, 2.0 ** -8, 2.0 ** -16), (-1.0, -(2.0 ** -8), 0.0), (big, big, 0.0),
            (2.0 ** -133, 0.0, 0.0), (3.0, -3.0, 0.0)]
    x = np.array(rows, np.float32).reshape(len(rows), 1, 3)
    a = x.astype(BF16)
    assert np.all(a.astype(np.float32) == x), "the operands are bfloat16 values"
    b = np.ones((len(rows), 3, 1), BF16)
    got = fastbmm.bmm(a, b)[:, 0, 0]
    with np.errstate(over="ignore"):     # big + big: infinity, on purpose
        want = (x.astype(np.float64).sum(axis=2)[:, 0]).astype(np.float32).astype(BF16)
    assert_equal_values(got.view(np.uint16), want.view(np.uint16), what="fastbmm")
    assert float(got[0]) == 1.0 and float(got[1]) == 1.0 + 2.0 ** -6 and float(got[2]) == 1.0 + 2.0 ** -7
    assert np.isinf(float(got[4]))


@pytest.mark.parametrize("path", ["small", "packed"])
def test_every_bfloat16_value_widens_and_rounds_back(path):
    # all 65536 bit patterns times 1: the widening is exact and the rounding of
    # a bfloat16 value is itself (NaN stays NaN; -0 + 0 sums to +0 in float32)
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    values = bits.view(BF16)
    if path == "small":
        a, b = values.reshape(8192, 8, 1), np.ones((8192, 1, 1), BF16)
    else:
        a, b = values.reshape(1, 65536, 1), np.ones((1, 1, 1), BF16)
    got = fastbmm.bmm(a, b).reshape(-1)
    with np.errstate(invalid="ignore"):  # NaN + 0
        want = (values.astype(np.float32) + np.float32(0)).astype(BF16)
    assert_equal_values(got.astype(np.float32), want.astype(np.float32), what="fastbmm")


def test_out_dtype_float32_and_out():
    rng = seeded_rng("bf16-out")
    a, b = _operands(rng, (2, 5, 30, 4))
    out = np.empty((2, 5, 4), np.float32)
    assert fastbmm.bmm(a, b, out_dtype=np.float32, out=out) is out
    assert_equal_values(out, fastbmm.bmm(a, b, out_dtype=np.float32), what="fastbmm")
    out16 = np.full((2, 5, 4), np.nan, BF16)
    assert fastbmm.bmm(a, b, out=out16) is out16
    assert_equal_values(out16.view(np.uint16), out.astype(BF16).view(np.uint16), what="fastbmm")


def test_errors_name_bfloat16_as_torch_does():
    a = np.ones((2, 3, 4), BF16)
    with pytest.raises(fastbmm.DtypeError, match="^expected scalar type BFloat16 but found Float$"):
        fastbmm.bmm(a, np.ones((2, 4, 5), np.float32))
    with pytest.raises(fastbmm.DtypeError, match="^expected scalar type Half but found BFloat16$"):
        fastbmm.bmm(np.ones((2, 3, 4), np.float16), np.ones((2, 4, 5), BF16))
    with pytest.raises(fastbmm.DtypeError, match="^Expected out tensor to have dtype "
                                                 "c10::BFloat16, but got float instead$"):
        fastbmm.bmm(a, np.ones((2, 4, 5), BF16), out=np.empty((2, 3, 5), np.float32))
    with pytest.raises(fastbmm.DtypeError, match="out_dtype=float64 is not supported"):
        fastbmm.bmm(a, np.ones((2, 4, 5), BF16), out_dtype=np.float64)


def test_baddbmm_in_float32_rounded_once():
    rng = seeded_rng("bf16-baddbmm")
    a, b = _operands(rng, (3, 6, 20, 5), integers=True)
    bias = _bf16(rng.integers(-4, 5, 5))
    got = fastbmm.baddbmm(bias, a, b, beta=2, alpha=0.5)
    # alpha = 0.5 and beta = 2 keep everything exact in float32
    want = (2.0 * bias.astype(np.float64) + 0.5 * _sums64(a, b)).astype(np.float32).astype(BF16)
    assert_equal_values(got.view(np.uint16), want.view(np.uint16), what="fastbmm")
    with pytest.raises(fastbmm.DtypeError, match="c10::BFloat16"):
        fastbmm.baddbmm(bias.astype(np.float32), a, b)


def test_baddbmm_through_the_packed_nest():
    # past the small path (n, p > 32), depth 75 (odd: a half-empty last pair):
    # alpha and beta applied once, in float32, to C's full tiles and edges
    rng = seeded_rng("bf16-baddbmm-packed")
    a, b = _operands(rng, (2, 50, 75, 45), integers=True)
    bias = _bf16(rng.integers(-4, 5, (2, 50, 45)))
    want = 2.0 * bias.astype(np.float64) + 0.5 * _sums64(a, b)
    got = fastbmm.baddbmm(bias, a, b, beta=2, alpha=0.5)
    assert_equal_values(got.view(np.uint16), want.astype(np.float32).astype(BF16).view(np.uint16),
                        what="fastbmm")


# ---------------------------------------------------------------------------
# The AVX512-BF16 and AMX nests (src/gemm_pairdot.h, src/gemm_amx.h): run by
# the avx512 variant where the CPU has them, modelled in avx512_emulated
# (which every x86-64 CPU runs in the tests).

def test_bf16_kernels_listed_and_reported(kernel):
    features = _runtime.cpu_features().split()
    nests = _runtime.bf16_kernels()
    # best first; the pair-dot nest (slower than widening where timed) only when forced
    assert _runtime.get_bf16_kernel() == nests[0] != "vdpbf16ps", "best first"
    assert nests[nests.index("widen") + 1:] in ([], ["vdpbf16ps"])
    emulated = kernel == "avx512_emulated"
    want = {"widen"}
    if emulated or (kernel == "avx512" and "avx512bf16" in features):
        want.add("vdpbf16ps")
    if emulated:
        want.add("amx")
    if kernel == "avx512" and "amx" in nests:      # and Linux granted the tile state
        assert {"amx-tile", "amx-bf16"} <= set(features)
        want.add("amx")
    assert set(nests) == want
    assert fastbmm.show_config(mode="dicts")["bf16_kernel"] == nests[0]
    with pytest.raises(ValueError, match="unknown bfloat16 kernel 'amx2'"):
        _runtime.set_bf16_kernel("amx2")
    if "amx" not in nests:
        with pytest.raises(RuntimeError, match="cannot run with kernel"):
            _runtime.set_bf16_kernel("amx")
        assert _runtime.get_bf16_kernel() == nests[0], "a refused nest changes nothing"


def test_show_config_names_the_bf16_nest(bf16_kernel, capsys):
    variant, nest = bf16_kernel
    fastbmm.show_config()
    line = next(x for x in capsys.readouterr().out.splitlines() if "bfloat16:" in x)
    name = {"amx": "AMX tiles", "vdpbf16ps": "pair dot products", "widen": "widened"}[nest]
    assert name in line
    assert ("modelled in software" in line) == (variant.endswith("_emulated") and nest != "widen")


T24 = 2.0 ** -24

# Rows of A (times a column of ones, 40 rows: the packed nest) whose float32
# sums tell the order of the additions apart, and each nest's sum:
#   - widen: depth order, one rounded add after another;
#   - vdpbf16ps: pair after pair, a pair's upper product first (the SDM);
#   - amx: per tdpbf16ps (16 pairs), the lower products summed in depth
#     order, the upper ones likewise, then lower + upper, then C + that
#     (measured on a Xeon, family 6 model 207; the SDM's pseudocode says
#     pair after pair, lower first, which is the widen column here).
PAIR_ORDER_PROBES = {
    # 1 + 2**-24 is a tie that rounds to 1
    "1,t,-1,t": ({0: 1.0, 1: T24, 2: -1.0, 3: T24}, 4,
                 {"widen": T24, "vdpbf16ps": 0.0, "amx": 2 * T24}),
    # C = 1 from the first 16 pairs, then t, t in the next: C + (t + t)
    "c=1;t,t": ({0: 1.0, 32: T24, 33: T24}, 34,
                {"widen": 1.0, "vdpbf16ps": 1.0, "amx": 1.0 + 2 * T24}),
    # the lower products one after another, not summed exactly: 1 + t + t = 1
    "1,_,t,_,t": ({0: 1.0, 2: T24, 4: T24}, 6, {"widen": 1.0, "vdpbf16ps": 1.0, "amx": 1.0}),
}


@pytest.mark.parametrize("probe", PAIR_ORDER_PROBES, ids=str)
def test_order_of_the_sums_in_each_nest(bf16_kernel, probe):
    variant, nest = bf16_kernel
    values, depth, sums = PAIR_ORDER_PROBES[probe]
    row = np.zeros(depth, np.float32)
    row[list(values)] = list(values.values())
    a = np.broadcast_to(row, (1, 40, depth)).astype(BF16)
    b = np.ones((1, depth, 1), BF16)
    want = {sums[nest]}
    if nest == "amx" and not variant.endswith("_emulated"):
        # another AMX generation may sum as the SDM's pseudocode has it
        want.add(sums["widen"])
    got = fastbmm.bmm(a, b, out_dtype=np.float32)
    assert len(set(got.ravel().tolist())) == 1 and float(got[0, 0, 0]) in want, got[0, :3, 0]
    # the bfloat16 result is that float32 sum rounded once
    assert float(fastbmm.bmm(a, b)[0, 0, 0]) == float(got[0, 0, 0].astype(BF16))


def _hardware_and_model(nest):
    """The (hardware variant, model variant) pair for nest, or a skip."""
    if "avx512_emulated" not in KERNELS or "avx512" not in KERNELS:
        pytest.skip("needs the avx512 variant and the test-only avx512_emulated one")
    previous = _runtime.get_kernel()
    try:
        _runtime.set_kernel("avx512")
        if nest not in _runtime.bf16_kernels():
            pytest.skip(f"this CPU (or OS) does not run the {nest} nest")
    finally:
        _runtime.set_kernel(previous)
    return "avx512", "avx512_emulated"


@pytest.mark.parametrize("nest", ["vdpbf16ps", "amx"])
def test_model_is_the_hardware_bit_for_bit(nest):
    # Where the CPU has the instruction, its software model (which the tests
    # run on every other CPU) must give the very same float32 sums: operands
    # over 60 binades, cancelling, with subnormals and exact zeros, so that
    # order, DAZ and FTZ all show. The guard sends blocks with tiny values to
    # the exact step, so half the batch stays above it (the instruction runs).
    rng = seeded_rng("bf16-model-vs-hardware", nest)
    b, n, m, p = 6, 37, 70, 45
    def operand(shape):
        x = rng.standard_normal(shape) * 2.0 ** rng.integers(-30, 30, shape)
        x[rng.random(shape) < 0.05] = 0.0
        return _bf16(x)
    a, c = operand((b, n, m)), operand((b, m, p))
    a[3:] *= _bf16(2.0 ** -100)                 # subnormal products: the guard's side
    results = []
    for variant in _hardware_and_model(nest):
        previous = _runtime.get_kernel()
        _runtime.set_kernel(variant)
        try:
            _runtime.set_bf16_kernel(nest)
            results.append(fastbmm.bmm(a, c, out_dtype=np.float32))
        finally:
            _runtime.set_bf16_kernel(None)
            _runtime.set_kernel(previous)
    assert_equal_values(results[0].view(np.uint32), results[1].view(np.uint32),
                        what=f"{nest}: hardware vs model")


def _scaled_integers(rng, shape, scale):
    """bfloat16 values scale * k, k an integer in [-8, 8] (exact for a power-of-two scale)."""
    return (rng.integers(-8, 9, shape).astype(np.float64) * scale).astype(np.float32).astype(BF16)


@pytest.mark.parametrize("case", ["subnormal-products", "subnormal-inputs", "one-tiny-block"])
def test_tiny_values_are_summed_exactly(bf16_kernel, case):
    # vdpbf16ps reads subnormal inputs as zero and flushes subnormal results
    # (DAZ, FTZ); the nest's guard must send such blocks to its exact step.
    # Every sum here is exact in float32 in any order (integer multiples of
    # one power of two, fewer than 2**24 of them), gradual underflow included,
    # so the float64 sums are the expected float32 values to the last bit.
    rng = seeded_rng("bf16-tiny", case)
    _, nest = bf16_kernel
    mc = 128 if nest == "amx" else _runtime.block_sizes()["f32"]["MC"]   # rows per A block
    b_, n, m, p = 2, mc + 56, 101, 40
    if case == "subnormal-products":      # products 2**-140 * k: float32 subnormals
        a = _scaled_integers(rng, (b_, n, m), 2.0 ** -70)
        b = _scaled_integers(rng, (b_, m, p), 2.0 ** -70)
    elif case == "subnormal-inputs":      # bfloat16 subnormals in A, normal products
        a = _scaled_integers(rng, (b_, n, m), 2.0 ** -133)
        b = _scaled_integers(rng, (b_, m, p), 2.0 ** 20)
    else:                                 # rows mc.. (the second MC block) tiny
        a = _scaled_integers(rng, (b_, n, m), 1.0)
        a[:, mc:] = _scaled_integers(rng, (b_, n - mc, m), 2.0 ** -70)
        b = _scaled_integers(rng, (b_, m, p), 2.0 ** -60)
    want = _sums64(a, b)
    assert np.all(want.astype(np.float32) == want), "the reference is exact in float32"
    sums = fastbmm.bmm(a, b, out_dtype=np.float32)
    assert_equal_values(sums, want.astype(np.float32), what="fastbmm")
    assert np.count_nonzero(sums) > sums.size // 2, "the sums are not flushed to zero"


@pytest.mark.parametrize("e", [-113, -112])
def test_guard_at_its_boundary(bf16_kernel, e):
    # x1 * y1 - x2 * y2 = 2**(e - 14) exactly, with x's of exponent e1 and y's
    # of e2 (e1 + e2 = e): the smallest nonzero sum such operands can make.
    # At e = -113 it is 2**-127, a float32 subnormal (vdpbf16ps would flush
    # it: the guard must refuse the instruction); at -112, 2**-126, normal.
    e1 = e // 2
    e2 = e - e1
    x1, x2 = (1 + 2.0 ** -7) * 2.0 ** e1, (1 + 2.0 ** -6) * 2.0 ** e1
    y1, y2 = (1 + 2.0 ** -7) * 2.0 ** e2, 2.0 ** e2
    a = np.broadcast_to(np.array([x1, -x2], np.float32), (1, 40, 2)).astype(BF16)
    b = np.array([[[y1], [y2]]], np.float32).astype(BF16)
    assert float(a[0, 0, 0]) == x1 and float(b[0, 0, 0]) == y1, "bfloat16 values"
    sums = fastbmm.bmm(a, b, out_dtype=np.float32)
    assert np.all(sums == np.float32(2.0 ** (e - 14))), sums[0, :3, 0]


def test_matmul_broadcasts_bfloat16():
    rng = seeded_rng("bf16-matmul")
    x = _bf16(rng.integers(-8, 9, (4, 1, 3, 16)))
    w = _bf16(rng.integers(-8, 9, (5, 16, 2)))
    got = fastbmm.matmul(x, w)
    assert got.shape == (4, 5, 3, 2) and got.dtype == BF16
    want = np.matmul(x.astype(np.float64), w.astype(np.float64)).astype(np.float32).astype(BF16)
    assert_equal_values(got.view(np.uint16), want.view(np.uint16), what="fastbmm")


def test_torch_bfloat16_tensors_in_place(torch):
    rng = seeded_rng("bf16-torch")
    a, b = _operands(rng, (3, 9, 40, 11))
    ta = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    tb = torch.from_numpy(np.ascontiguousarray(b).view(np.int16)).view(torch.bfloat16).transpose(1, 2)
    tb = tb.contiguous().transpose(1, 2)     # a strided view, read where it lies
    got = fastbmm.bmm(ta, tb)
    assert isinstance(got, np.ndarray) and got.dtype == BF16
    assert_equal_values(got.view(np.uint16), fastbmm.bmm(a, b).view(np.uint16), what="fastbmm")
    # torch, a second oracle: its float32 sums rounded once agree (it is reported, not a
    # failure, where it does not)
    expected = fastbmm.bmm(a, b, out_dtype=np.float32).astype(BF16)
    check_torch(lambda got, want: assert_equal_values(got.view(np.uint16), want.view(np.uint16),
                                                      what="torch.bmm"),
                lambda: torch.bmm(ta, tb).view(torch.int16).numpy(), expected,
                what="torch.bmm bfloat16")


def test_torch_bfloat16_errors_match_torch(torch):
    a = torch.ones((2, 3, 4), dtype=torch.bfloat16)
    b = torch.ones((2, 4, 5), dtype=torch.float32)
    with pytest.raises(RuntimeError) as want:
        torch.bmm(a.contiguous(), b.contiguous())
    with pytest.raises(fastbmm.DtypeError) as got:
        fastbmm.bmm(a, b)
    assert str(got.value) == str(want.value)


def test_refused_without_ml_dtypes_naming_the_extra(tmp_path):
    # a process where `import ml_dtypes` fails, as on an install without the extra
    shim = tmp_path / "ml_dtypes.py"
    shim.write_text("raise ImportError('ml_dtypes hidden by the test')\n")
    code = textwrap.dedent("""
        import numpy as np, fastbmm
        assert "bfloat16" not in [str(d) for d in fastbmm._dtypes.SUPPORTED]
        try:
            import torch
        except ImportError:
            print("no torch")
            raise SystemExit(0)
        t = torch.ones((1, 2, 2), dtype=torch.bfloat16)
        try:
            fastbmm.bmm(t, t)
        except fastbmm.UnsupportedDtypeError as e:
            print(e)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path)] + sys.path))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    if result.stdout.strip() != "no torch":
        assert result.stdout.strip() == (
            "bmm(): argument 'input' has torch dtype BFloat16, which NumPy holds only with the "
            'ml_dtypes package: pip install "fastbmm[bfloat16]" (or pip install ml_dtypes)')
