"""The engine's summation over long inner dimensions, and its refusal of dtype codes.

The few-rows (stream) path once summed the whole inner dimension in one
accumulator: relative error 7.9e-5 at K = 10^6 in float32, against 1.5e-6 for
the same rows in a 5-row call (the packed nest, KC-deep panels). It now adds
KC-deep partial sums into the result as the packed nest does (_helpers.py
has the bound this gives).
"""

import numpy as np
import pytest

import fastbmm
import fastbmm._runtime as _runtime
import fastbmm._products as _products

from _helpers import absorbing_operands, kc_blocked_bound
from _helpers import assert_bmm_close, block_key, seeded_rng, stream_cols

#: the float dtypes of the few-rows path (float32, float64 with contiguous rows of B)
STREAM_FLOATS = [np.dtype(np.float32), np.dtype(np.float64)]


@pytest.mark.parametrize("dtype", STREAM_FLOATS, ids=str)
@pytest.mark.parametrize("blocks", ["one", "several"])
def test_few_rows_give_the_bits_of_a_packed_call(kernel, threads, dtype, blocks):
    """Rows 0..n-1 of a call with n <= 4 rows (the stream path) equal, bit for bit,
    the same rows of a 5-row call (the packed nest): the same KC-deep panels,
    summed in the same order. (With baddbmm's alpha, C += alpha * partial may
    be fused into one FMA on one path's store and not on the other's: there
    the two agree within rounding, and the bound test below applies.)
    Columns: one partial column block, or (for every n) whole blocks and a
    partial one."""
    p = 37 if blocks == "one" else stream_cols(dtype, 1) + 37
    rng = seeded_rng("stream-vs-packed", str(dtype), blocks)
    KC = _runtime.block_sizes()[block_key(dtype)]["KC"]
    K = 3001 if blocks == "one" else 2 * KC + 11   # > KC, not a multiple of it
    a = rng.uniform(-1, 1, (2, 5, K)).astype(dtype)
    b = rng.uniform(-1, 1, (2, K, p)).astype(dtype)
    packed = fastbmm.bmm(a, b)
    for n in range(1, 5):
        np.testing.assert_array_equal(fastbmm.bmm(a[:, :n], b), packed[:, :n], err_msg=f"n={n}")


@pytest.mark.parametrize("dtype", STREAM_FLOATS + [np.dtype(np.int32), np.dtype(np.int64)], ids=str)
@pytest.mark.parametrize("rows", ["forward", "reversed"])
def test_few_rows_with_rows_of_b_a_page_apart(kernel, dtype, rows):
    """Rows of B 4 KiB or more apart: the stream path reads 8 (1-2 rows of C)
    or 4 (3-4 rows) of them side by side, then one at a time for the last few
    of each KC panel; the bits of a 5-row (packed) call, and the exact values.
    Columns: for every n, whole column blocks, a partial one, and a vector tail."""
    p = stream_cols(dtype, 1) + 37
    rng = seeded_rng("stream-side-by-side", str(dtype), rows)
    K = 2 * _runtime.block_sizes()[block_key(dtype)]["KC"] + 11   # panels of 256, 256, 11
    if dtype.kind == "f":
        a = rng.uniform(-1, 1, (2, 5, K)).astype(dtype)
        b = rng.uniform(-1, 1, (2, K, p)).astype(dtype)
    else:
        a = rng.integers(-2**30, 2**30, (2, 5, K)).astype(dtype)
        b = rng.integers(-2**30, 2**30, (2, K, p)).astype(dtype)
    if rows == "reversed":
        b = b[:, ::-1]                             # a negative row stride
    packed = fastbmm.bmm(a, b)
    for n in range(1, 5):
        np.testing.assert_array_equal(fastbmm.bmm(a[:, :n], b), packed[:, :n], err_msg=f"n={n}")
    assert_bmm_close(packed, a, b, what=f"{kernel} {dtype} {rows}")


@pytest.mark.parametrize("dtype", STREAM_FLOATS, ids=str)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 9])   # stream path, then the packed nest
@pytest.mark.parametrize("op", ["bmm", "baddbmm"])
def test_long_sum_error_is_that_of_kc_panels(kernel, dtype, n, op):
    """bmm, and baddbmm with alpha = 0.5, beta = 1 (C = 0.5 * partial + D on the
    first panel, C += 0.5 * partial on the others: every scaling exact here)."""
    K, p = 20_000, 19
    finfo = np.finfo(dtype)
    a, b, exact = absorbing_operands(dtype, 1, n, K, p, finfo.nmant + 1)
    if op == "bmm":
        got2, exact2, scale = 2 * fastbmm.bmm(a, b), 2 * exact, exact
    else:   # compared doubled: 0.5 * exact may be a half-integer, 2 * got is an integer
        d = seeded_rng("bias", n).integers(0, 4, (1, n, p))
        got2 = 2 * fastbmm.baddbmm(d.astype(dtype), a, b, alpha=0.5, beta=1)
        exact2, scale = exact + 2 * d, 0.5 * exact + d
    err = np.abs(got2.astype(np.int64) - exact2).astype(np.float64) / 2   # exact: < 2**63
    kc = _runtime.block_sizes()[block_key(dtype)]["KC"]
    bound = kc_blocked_bound(float(finfo.eps) / 2, K, kc, scale.astype(np.float64))
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), (
        f"n={n}: error {err[worst]:.1f} > KC-blocked bound {bound[worst]:.1f} at {worst} "
        f"(one accumulator over K = {K} loses about K)")


# ---------------------------------------------------------------------------
# dtype codes: the planner refuses a code it has no kernel for


def test_every_dtype_code_has_a_kernel(kernel):
    """Each code of the engine's enum plans and runs: a 1x1x1 product of zero
    bytes (0 in every dtype) on 16-byte elements (in bounds for every code's
    element size) writes 0 over c's 0xFF bytes."""
    a = np.zeros((1, 1, 1), np.complex128)
    for code in range(_products._NUM_DTYPE_CODES):
        c = np.full((1, 1, 1), np.nan, np.complex128)
        c.view(np.uint8)[...] = 0xFF
        _products._bmm_with_code(code, a, a, c)
        assert c.view(np.uint8).ravel()[0] == 0, f"code {code} wrote nothing"


@pytest.mark.parametrize("code", [-1, "num_codes", 2 ** 31 - 1])
def test_unknown_dtype_code_raises_before_anything_runs(kernel, code):
    """A code the engine has no kernel for raises, with nothing written (it once
    fell through run_task's switch and returned np.empty's garbage)."""
    code = _products._NUM_DTYPE_CODES if code == "num_codes" else code
    a = np.ones((2, 3, 3), np.float64)
    c = np.full((2, 3, 3), -5.0)
    with pytest.raises(RuntimeError, match=f"no kernel for dtype code {code}"):
        _products._bmm_with_code(code, a, a, c)
    assert np.all(c == -5.0)
