"""The engine's shape-specific paths, at the boundaries where they take over.

* Matrix-vector stacks (p <= 4 columns, A's rows contiguous, float32/64,
  int32/64): dot products along the inner dimension, rows in groups of 4 (1-2
  columns) or 2 (3-4), the inner sum in KC-deep blocks with a vector tail.
* Edge tiles of an in-place A and B: 1..MR rows and whole-vector column edges
  run as their own register-tile shape, without packing.
* Small matrices (n, m, p <= the variant's small_max): B read in place (rows of
  whole, aligned vectors) or widened into a block,
  C in column blocks of 2 vectors (then 1) x 4 rows (then 2, 1); whole vectors
  stored straight to C, a partial one through a buffer; A in place or strided;
  the baddbmm epilogue per column block.
* Tiny matrices (m <= 8, rows of B and C of 16 or 32 bytes or narrower): B's
  rows in registers; where m = p and a row is 8 or 16 bytes, several rows of C
  (or several whole 2x2 matrices) a vector.

Every case is compared with the exact reference (NumPy in a wider type, or
modulo 2**64 for integers) on every kernel variant this CPU runs.
"""

import numpy as np
import pytest

import fastbmm
import fastbmm._runtime as _runtime
from _helpers import assert_bmm_close, make_input, random_values, seeded_rng, small_max
from test_baddbmm import check_baddbmm

GEMV_DTYPES = [np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64)]

# `kernel` (conftest.py): each runnable kernel variant in turn, restored afterwards.


def _blocking(dtype):
    """MR, NR, KC of the kernel in use for this dtype's accumulator family."""
    fam = {4: "32", 8: "64"}[dtype.itemsize]
    b = _runtime.block_sizes()[("f" if dtype.kind == "f" else "u") + fam]
    return b["MR"], b["NR"], b["KC"]


def _lanes(dtype):
    """Elements of `dtype` per vector of the kernel in use: float16 in float32's
    lanes, a complex element in two of its part's lanes."""
    if dtype.kind == "c":
        return _blocking(np.dtype(f"f{dtype.itemsize // 2}"))[1] // 4
    return _blocking(dtype if dtype.kind != "f" or dtype.itemsize >= 4
                     else np.dtype(np.float32))[1] // 2


def _inner_sizes(dtype):
    """K around the gemv loop's step (two vectors: NR), its scalar tail, and the KC block."""
    _, step, kc = _blocking(dtype)
    return sorted({1, step - 1, step, step + 1, kc - 1, kc, kc + 1, 2 * kc + step + 3})


@pytest.mark.parametrize("p", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("n", [5, 7, 8, 9, 13])
@pytest.mark.parametrize("dtype", GEMV_DTYPES, ids=str)
def test_matrix_vector_stacks(kernel, dtype, n, p):
    rng = seeded_rng("gemv", kernel, dtype.name, n, p)
    for m in _inner_sizes(dtype):
        a = random_values(rng, (3, n, m), dtype)
        b = random_values(rng, (3, m, p), dtype)
        assert_bmm_close(fastbmm.bmm(a, b), a, b)


@pytest.mark.parametrize("dtype", GEMV_DTYPES, ids=str)
def test_matrix_vector_strided_operands_and_out(kernel, dtype):
    """B's columns gathered from any strides; C written through its strides."""
    rng = seeded_rng("gemv-strided", kernel, dtype.name)
    a = random_values(rng, (4, 11, 300), dtype)
    bb = random_values(rng, (4, 3, 600), dtype).transpose(0, 2, 1)[:, ::2, :]   # (4, 300, 3)
    out = np.zeros((4, 11, 6), dtype)[:, :, ::2]
    assert fastbmm.bmm(a, bb, out=out) is out
    assert_bmm_close(out, a, bb)
    # a vector as the last column of a wider array, B broadcast over the batch
    v = np.broadcast_to(random_values(rng, (300, 5), dtype)[:, 4:], (4, 300, 1))
    assert_bmm_close(fastbmm.bmm(a, v), a, v)


@pytest.mark.parametrize("layout", ["C", "transposed", "negative", "misaligned", "broadcast_col"])
@pytest.mark.parametrize("dtype", GEMV_DTYPES, ids=str)
def test_matrix_vector_columns_in_place_or_gathered(kernel, dtype, layout):
    """B's columns are read where they lie when each is contiguous (a (b, m, 1)
    vector; a transposed view, attention's k.transpose, at any p) and gathered
    otherwise (misaligned, strided, broadcast); a plain result goes straight to
    C, a column with a row stride or an out of 3 columns included."""
    rng = seeded_rng("gemv-columns", kernel, dtype.name, layout)
    a = random_values(rng, (3, 13, 70), dtype)
    for p in (1, 2, 3, 4):
        b, _keep = make_input(layout, rng, (3, 70, p), dtype)
        assert_bmm_close(fastbmm.bmm(a, b), a, b)
        out = np.zeros((3, 13, 2 * p + 1), dtype)[:, :, 1::2]     # rows 2p+1 apart
        assert fastbmm.bmm(a, b, out=out) is out
        assert_bmm_close(out, a, b)


@pytest.mark.parametrize("dtype", GEMV_DTYPES, ids=str)
def test_matrix_vector_baddbmm_epilogue(kernel, dtype):
    rng = seeded_rng("gemv-badd", kernel, dtype.name)
    a = random_values(rng, (2, 9, 270), dtype)
    b = random_values(rng, (2, 270, 2), dtype)
    inp = random_values(rng, (9, 1), dtype)
    check_baddbmm(inp, a, b, beta=3, alpha=-2)


def test_matrix_vector_long_inner_dimension_accuracy(kernel):
    """A long K is summed in blocks: the error stays at the packed nest's level."""
    rng = seeded_rng("gemv-long", kernel)
    m = 200_000
    a = rng.uniform(0, 1, (1, 6, m)).astype(np.float32)
    b = rng.uniform(0, 1, (1, m, 1)).astype(np.float32)
    exact = np.matmul(a.astype(np.float64), b.astype(np.float64))
    rel = np.abs(fastbmm.bmm(a, b) - exact) / exact
    # sequential float32 summation of 2e5 positive terms drifts to ~1e-4;
    # blocked sums stay near KC * 2**-24 (the packed nest's level)
    assert rel.max() < 2e-5, rel.max()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64], ids=str)
def test_edge_tiles_in_place(kernel, dtype):
    """Every row count 1..MR+1 and column counts around one and two vectors."""
    dtype = np.dtype(dtype)
    mr, nr, _ = _blocking(dtype)
    vl = nr // 2
    rng = seeded_rng("edges", kernel, dtype.name)
    for n in range(1, mr + 2):
        for p in sorted({vl - 1, vl, vl + 1, nr - 1, nr, nr + vl, 2 * nr + 1}):
            if p <= 4:
                continue    # the matrix-vector path
            a = random_values(rng, (2, n + mr, 40), dtype)     # n + mr rows: full tiles, then an edge
            b = random_values(rng, (2, 40, p), dtype)
            assert_bmm_close(fastbmm.bmm(a, b), a, b, what=f"{kernel} n={n + mr} p={p}")



@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.float16], ids=str)
def test_packed_batches_past_l2(kernel, threads, dtype):
    """Batches whose A and B outgrow L2 (over 1 MiB): the packed nest fetches
    the next tile's operands during each microkernel's first k steps
    (next_fetch.h), which splits its k loop in two: depths across a KC block
    (the second panel shallower than the fetched column), a B read in place
    with a packed edge sliver, A's rows strided (a slice of wider rows), and
    matrices cut into tiles across threads. Also the regions the fetch walks:
    a transposed B (``k.transpose(0, 2, 1)``, its columns fetched as rows),
    operands whose rows lie back to back (one run of lines), and the next C,
    written in place and into a strided ``out=`` (every other column). A
    prefetch cannot change a result; these check that every such walk runs
    and leaves the product exact on every kernel."""
    dtype = np.dtype(dtype)
    _, _, kc = _blocking(dtype if dtype.itemsize >= 4 else np.dtype(np.float32))
    rng = seeded_rng("packed-next-fetch", kernel, dtype.name, threads)
    for batch, n, m, p, a_pad, b_t in [(40, 37, kc + 88, 45, 0, False),
                                       (600, 24, 40, 56, 0, False),
                                       (300, 40, 64, 72, 5, False),
                                       (7, 256, 160, 256, 0, False),
                                       (128, 40, 64, 72, 0, True),
                                       (96, 24, 256, 64, 0, True)]:
        assert batch * (n + p) * m * dtype.itemsize > 2 ** 20
        a = random_values(rng, (batch, n, m + a_pad), dtype)[:, :, :m]
        if b_t:
            b = random_values(rng, (batch, p, m), dtype).transpose(0, 2, 1)
        else:
            b = random_values(rng, (batch, m, p), dtype)
        what = f"{kernel} {dtype} {threads} threads {batch}x{n}x{m}x{p} a_pad={a_pad} b_t={b_t}"
        assert_bmm_close(fastbmm.bmm(a, b), a, b, what=what)
        wide = np.full((batch, n, 2 * p), 7, dtype)
        out = wide[:, :, ::2]
        assert fastbmm.bmm(a, b, out=out) is out
        assert_bmm_close(out, a, b, what=what + " out= every other column")
        assert np.all(wide[:, :, 1::2] == 7), what + ": out='s gaps written"


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.float16, np.complex64],
                         ids=lambda t: np.dtype(t).name)
def test_wide_tile_columns(kernel, dtype):
    """C's last three vectors of columns in a panel (gemm_template.h's
    microkernel_wide on 64-byte vectors: 8 rows x 3 vectors): three, five and
    seven vectors of columns, row counts with every edge of 8 rows, depths
    across a KC block, B in place or packed (rows longer than the in-place
    span), float16 through its staging rows, complex (two lanes an element),
    and baddbmm's alpha, beta and a bias D of every row and column."""
    dtype = np.dtype(dtype)
    vl = _lanes(dtype)
    _, _, kc = _blocking(dtype if dtype.kind != "f" or dtype.itemsize >= 4
                         else np.dtype(np.float32))
    n0 = small_max(_runtime.block_sizes(), dtype) + 1      # past the small path: the packed nest
    rng = seeded_rng("wide-tile", kernel, dtype.name)
    for p in (3 * vl, 5 * vl, 7 * vl):
        for n in (n0, n0 + 7, 8 * ((n0 + 8) // 8)):
            for m in (9, kc + 5):
                what = f"{kernel} {dtype} n={n} m={m} p={p}"
                a = random_values(rng, (2, n, m), dtype)
                b = random_values(rng, (2, m, p), dtype)
                assert_bmm_close(fastbmm.bmm(a, b), a, b, what=what)
        a = random_values(rng, (2, n0 + 3, 40), dtype)
        b = random_values(rng, (2, 40, p), dtype)
        check_baddbmm(random_values(rng, (2, n0 + 3, p), dtype), a, b, beta=2, alpha=3,
                      with_torch=False)

def _transposed_view(rng, shape, dtype, offset_bytes=0):
    """A (b, m, p) transposed view of a contiguous (b, p, m) array (attention's
    k.transpose(0, 2, 1)): columns contiguous, starting `offset_bytes` past an
    aligned buffer."""
    b, m, p = shape
    buf = np.zeros(b * p * m * dtype.itemsize + offset_bytes, np.uint8)
    base = np.ndarray((b, p, m), dtype, buffer=buf, offset=offset_bytes)
    base[...] = random_values(rng, (b, p, m), dtype)
    return base.transpose(0, 2, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.float16],
                         ids=lambda t: np.dtype(t).name)
def test_packed_transposed_b_blocks(kernel, dtype):
    """B a transposed view, packed by the nest in VL x VL blocks transposed in
    registers, the rest column by column: inner sizes around one and two
    vectors and across a KC block (a block starting mid-column), column counts
    around whole blocks, a partial sliver and a column remainder; columns
    aligned or not; float16 (widened: the column walk) beside them."""
    dtype = np.dtype(dtype)
    fam = dtype if dtype.itemsize >= 4 else np.dtype(np.float32)
    _, nr, kc = _blocking(fam)
    vl = nr // 2
    n = small_max(_runtime.block_sizes(), dtype) + 3      # past the small path: the packed nest
    rng = seeded_rng("packed-transposed-b", kernel, dtype.name)
    for m in sorted({1, vl - 1, vl, vl + 1, 2 * vl + 3, kc, kc + vl + 1} - {0}):
        for p in sorted({vl, nr - 1, nr + vl, nr + vl + 3, 3 * nr + 1} - {1, 2, 3, 4}):
            for offset in (0, 1):
                what = f"{kernel} {dtype} n={n} m={m} p={p} offset={offset}"
                a = random_values(rng, (2, n, m), dtype)
                b = _transposed_view(rng, (2, m, p), dtype, offset)
                assert_bmm_close(fastbmm.bmm(a, b), a, b, what=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.float16,
                                   np.complex64, np.complex128],
                         ids=lambda t: np.dtype(t).name)
def test_small_path_column_blocks(kernel, dtype):
    """Every column count around 1..4 vectors up to the small path's limit: whole
    column blocks, a 1-vector remainder block, a partial last vector; rows in
    blocks of 4, 2 and 1 (complex: 2 and 1); A contiguous or a transposed view
    (its own stride); C contiguous or strided; and the baddbmm epilogue (bias
    offset per block; complex: complex alpha and beta)."""
    dtype = np.dtype(dtype)
    S = small_max(_runtime.block_sizes(), dtype)
    vl = _lanes(dtype)
    ps = sorted({q for k in range(1, 5) for q in (k * vl - 1, k * vl, k * vl + 1) if 2 <= q <= S} | {S})
    rng = seeded_rng("small-blocks", kernel, dtype.name)
    for n in sorted({S, 7}):
        for m in sorted({1, S}):
            for p in ps:
                what = f"{kernel} {dtype} n={n} m={m} p={p}"
                a = random_values(rng, (2, n, m), dtype)
                at = np.ascontiguousarray(a.transpose(0, 2, 1)).transpose(0, 2, 1)  # A's own strides
                b = random_values(rng, (2, m, p), dtype)
                assert_bmm_close(fastbmm.bmm(a, b), a, b, what=what)
                out = np.zeros((2, n, 2 * p), dtype)[:, :, ::2]          # C through its strides
                assert fastbmm.bmm(at, b, out=out) is out
                assert_bmm_close(out, a, b, what=what + " (A transposed, C strided)")
                bt = np.ascontiguousarray(b.transpose(0, 2, 1)).transpose(0, 2, 1)  # B's columns
                assert_bmm_close(fastbmm.bmm(a, bt), a, b, what=what + " (B transposed)")
                inp = random_values(rng, (n, 2 * p), dtype)[:, ::2]     # the bias, strided
                if dtype.kind == "c":
                    check_baddbmm(inp, a, b, beta=2 - 1j, alpha=0.5 + 1.5j, with_torch=False)
                else:
                    check_baddbmm(inp, a, b, beta=3, alpha=-2 if dtype.kind != "f" else 0.5,
                                  with_torch=False)


def _b_at(rng, dtype, shape, offset, row_pad, batch_pad):
    """B of `shape` whose data starts `offset` bytes past a 64-byte boundary, with
    row_pad extra elements after each row and batch_pad extra bytes (a multiple
    of the itemsize) after each matrix: each matrix's alignment differs."""
    nb, m, p = shape
    isz = dtype.itemsize
    sr = (p + row_pad) * isz
    sb = m * sr + batch_pad
    raw = np.zeros(nb * sb + offset + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    b = np.ndarray(shape, dtype, buffer=raw, offset=start, strides=(sb, sr, isz))
    b[...] = random_values(rng, shape, dtype)
    return b


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.complex64,
                                   np.complex128], ids=str)
def test_small_path_b_in_place_or_copied(kernel, dtype):
    """The small path reads B in place when its rows are whole vectors at vector-
    aligned addresses (real kinds with vectors of up to 32 bytes: off that
    boundary too), else copies them (whole vectors, or padded): B at a vector
    boundary or off it by half a vector or one element, rows padded by a vector
    or by an element, and matrices of one call on different alignments."""
    dtype = np.dtype(dtype)
    S = small_max(_runtime.block_sizes(), dtype)
    vl = _lanes(dtype)
    vbytes = vl * dtype.itemsize
    rng = seeded_rng("small-b-in-place", kernel, dtype.name)
    ps = sorted({q for k in range(1, S // vl + 1) for q in (k * vl, k * vl - 1)} - {0})
    for p in ps:
        for offset in sorted({0, vbytes // 2, dtype.itemsize}):
            for row_pad, batch_pad in [(0, 0), (vl, 0), (1, 0), (0, dtype.itemsize)]:
                what = f"{kernel} {dtype} p={p} offset={offset} pads={row_pad},{batch_pad}"
                b = _b_at(rng, dtype, (3, S, p), offset, row_pad, batch_pad)
                a = random_values(rng, (3, 7, S), dtype)
                assert_bmm_close(fastbmm.bmm(a, b), a, b, what=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64], ids=str)
def test_tiny_matrices_rows_of_one_vector(kernel, dtype):
    """m <= 8 and rows of B and C of 16 or 32 bytes, one vector or two (4x4
    float32, 2x2, 4x4 and 8x8 float64, 8x8 float32 on AVX2), or narrower (2, 3
    and 5-7 float32, 3 and 5-7 float64): B's rows held in registers (a narrow
    row of a contiguous B loaded whole), one store a row of C (a narrow one in
    pieces). Every p from 2 to 9.
    Rows of B and C at any stride (reversed, every other), a broadcast B, and
    next to them the shapes one column off, which take the general small path."""
    dtype = np.dtype(dtype)
    vbytes = _blocking(dtype)[1] // 2 * dtype.itemsize
    widths = {w // dtype.itemsize for w in (16, 32, vbytes, 2 * vbytes) if w <= 2 * vbytes}
    rng = seeded_rng("tiny", kernel, dtype.name)
    around = {q + d for q in widths for d in (-1, 1) if q + d >= 1}
    for p in sorted(widths | set(range(2, 10)) | around):
        for m in range(1, 10):
            for n in (1, 3, 4, 9):
                what = f"{kernel} {dtype} n={n} m={m} p={p}"
                a = random_values(rng, (5, n, m), dtype)
                b = random_values(rng, (5, m, p), dtype)
                assert_bmm_close(fastbmm.bmm(a, b), a, b, what=what)
                bs = random_values(rng, (5, 2 * m, p), dtype)[:, ::-2]      # rows reversed, apart
                out = np.zeros((5, 2 * n, p), dtype)[:, ::2]                # C's rows apart
                assert fastbmm.bmm(a, bs, out=out) is out
                assert_bmm_close(out, a, bs, what=what + " (strided rows)")
                bb = np.broadcast_to(b[:1], b.shape)                        # one B for all
                assert_bmm_close(fastbmm.bmm(a, bb), a, bb, what=what + " (broadcast B)")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64], ids=str)
def test_tiny_matrices_several_rows_a_vector(kernel, dtype):
    """m = p with rows of 8 or 16 bytes, narrower than a vector (4x4 float32,
    2x2 float32 and float64 on AVX2): R = vector / row consecutive rows of C in
    one vector when R divides n; when n = m = p divides R (2x2), R / n whole
    matrices a vector if the batch is contiguous, the last ones (fewer than
    R / n) by rows. Every n around R, batches around the group size, and the
    layouts that must leave the packed form: A's or C's rows apart, B's rows
    apart, a reversed or every-other batch, a broadcast batch (matmul)."""
    dtype = np.dtype(dtype)
    vbytes = _blocking(dtype)[1] // 2 * dtype.itemsize
    rng = seeded_rng("rowpack", kernel, dtype.name)
    for rb in (8, 16):
        pc = rb // dtype.itemsize
        if pc < 2 or rb >= vbytes:
            continue
        rows = vbytes // rb
        for n in sorted({1, 2, 3, pc, rows - 1, rows + 1} | {k * rows for k in (1, 2, 3, 4)}):
            for batch in (1, 2, 3, 4, 5, 7, 9):
                what = f"{kernel} {dtype} n={n} m=p={pc} batch={batch}"
                a = random_values(rng, (batch, n, pc), dtype)
                b = random_values(rng, (batch, pc, pc), dtype)
                assert_bmm_close(fastbmm.bmm(a, b), a, b, what=what)
                out = np.zeros((batch, 2 * n, pc), dtype)[:, ::2]           # C's rows apart
                assert fastbmm.bmm(a, b, out=out) is out
                assert_bmm_close(out, a, b, what=what + " (C's rows apart)")
                a2 = random_values(rng, (batch, 2 * n, pc), dtype)[:, ::2]  # A's rows apart
                assert_bmm_close(fastbmm.bmm(a2, b), a2, b, what=what + " (A's rows apart)")
                b2 = random_values(rng, (batch, 2 * pc, pc), dtype)[:, ::-2]
                assert_bmm_close(fastbmm.bmm(a, b2), a, b2, what=what + " (B's rows apart)")
                ar, br = a[::-1], b[::-1]                                   # batch reversed
                assert_bmm_close(fastbmm.bmm(ar, br), ar, br, what=what + " (reversed batch)")
                a3 = random_values(rng, (2 * batch, n, pc), dtype)[::2]     # every other matrix
                assert_bmm_close(fastbmm.bmm(a3, b), a3, b, what=what + " (A every other)")
                out3 = np.zeros((2 * batch, n, pc), dtype)[::2]
                assert fastbmm.bmm(a, b, out=out3) is out3
                assert_bmm_close(out3, a, b, what=what + " (C every other)")
            a4 = random_values(rng, (3, 1, n, pc), dtype)
            b4 = random_values(rng, (1, 4, pc, pc), dtype)
            got = fastbmm.matmul(a4, b4)
            assert got.shape == (3, 4, n, pc)
            for i in range(3):
                assert_bmm_close(got[i], np.broadcast_to(a4[i], (4, n, pc)), b4[0],
                                 what=f"{kernel} {dtype} n={n} m=p={pc} broadcast batch")


# ----------------------------------------------------------------------------
# float16 conversions: F16C instructions in the avx2/avx512 variants, portable
# C in the baseline. Both must give NumPy's bits for every input.
# ----------------------------------------------------------------------------

ALL_HALVES = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16).view(np.float16)


def _same_value(got, expected):
    """Equal values (exact: float16 == float16), any NaN equal to any NaN. Not the
    bits: NaN payloads are not part of the contract, and a sum that starts from
    +0 turns a single -0 product into +0 (IEEE), as torch and BLAS do."""
    return (got == expected) | (np.isnan(got) & np.isnan(expected))


@pytest.mark.parametrize("shape", [(8192, 8, 1), (1, 65536, 1)], ids=["small", "packed"])
def test_every_float16_widens_exactly(kernel, shape):
    a = ALL_HALVES.reshape(shape)
    one = np.ones((shape[0], 1, 1), np.float16)
    got = fastbmm.bmm(a, one, out_dtype=np.float32)
    same = _same_value(got, a.astype(np.float32))
    assert same.all(), f"{np.count_nonzero(~same)} float16 values widened wrongly"


@pytest.mark.parametrize("scale", [1.0, 0.5, 3.0, 1 / 3, 2.0 ** -10, 2.0 ** 10, -65504.0])
def test_every_float16_product_rounds_to_nearest_even(kernel, scale):
    # x * s is exact in float32 (11 + 11 significant bits), so the result is
    # that product rounded once: NumPy's float32 -> float16 cast (RNE),
    # overflow to inf and gradual underflow to subnormals included.
    s = np.float16(scale)
    a = ALL_HALVES.reshape(8192, 8, 1)
    b = np.full((8192, 1, 1), s, np.float16)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = (a.astype(np.float32) * np.float32(s)).astype(np.float16)
    got = fastbmm.bmm(a, b)
    ok = _same_value(got, expected)
    assert ok.all(), (f"{np.count_nonzero(~ok)} products rounded wrongly, e.g. "
                      f"{a[~ok][:3]!r} * {s!r} -> {got[~ok][:3]!r}, expected {expected[~ok][:3]!r}")
