"""Long inner sums: operands whose exact product is known, and the error bound
of a sum cut into KC-deep panels.

Every engine path adds KC-deep partial sums into the result (the packed nest
by construction, the few-rows stream path since it was fixed). For unit
roundoff u this bounds the error of each element by

    (min(K, KC) + ceil(K / KC) + 2) * u * (|A| @ |B|)

(KC products summed, then ceil(K / KC) partials added, then slack), where
one accumulator over K only guarantees K * u * (|A| @ |B|).
"""

import math

import numpy as np


def kc_blocked_bound(u, K, kc, scale):
    """The bound above, elementwise over ``scale`` (|A| @ |B|)."""
    return (min(K, kc) + math.ceil(K / kc) + 2) * u * scale


def absorbing_operands(dtype, batch, n, K, p, acc_bits):
    """(a, b, exact): a (batch, n, K) and b (batch, K, p) of ``dtype``, and their
    exact product as int64.

    A[:, r, 0] * B[:, 0, j] = 2**acc_bits (acc_bits: the accumulator's mantissa
    bits + 1, 24 for float32) and every other product is 1 (even columns) or 2
    (odd columns). At 2**acc_bits the accumulator's spacing is 2: each +1 is a
    tie rounded to even and lost, so one accumulator over K loses about K per
    even column, a KC-blocked sum at most KC.
    """
    ha, hb = 2 ** (acc_bits // 2), 2 ** (acc_bits - acc_bits // 2)
    a = np.ones((batch, n, K), np.int64)
    b = np.ones((batch, K, p), np.int64)
    a[:, :, 0] = ha
    b[:, 0, :] = hb
    b[:, 1:, 1::2] = 2
    return a.astype(dtype), b.astype(dtype), np.matmul(a, b)
