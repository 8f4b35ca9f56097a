"""Hypothesis: random dtypes, shapes, input layouts, out= layouts, kernels and thread
counts, checked against the reference. Profile via FASTBMM_HYPOTHESIS_PROFILE
(ci: 60 deterministic examples; long: 2000)."""

import numpy as np
from hypothesis import given, note
from hypothesis import strategies as st

import fastbmm
import fastbmm._runtime as _runtime

from _helpers import (
    INPUT_LAYOUTS,
    OUT_LAYOUTS,
    SUPPORTED_DTYPES,
    assert_bmm_close,
    make_input,
    make_out,
    native,
    random_values,
    reference_bmm,
    small_int_values,
    snapshot,
)

dims = st.one_of(st.integers(0, 12), st.integers(0, 40), st.integers(41, 100))


@st.composite
def problems(draw):
    dtype = draw(st.sampled_from(SUPPORTED_DTYPES))
    b = draw(st.integers(1, 5))  # b == 0 is covered by test_contract/test_values
    n, m, p = draw(dims), draw(dims), draw(dims)
    return {
        "dtype": dtype,
        "shape": (b, n, m, p),
        "la": draw(st.sampled_from(sorted(INPUT_LAYOUTS))),
        "lb": draw(st.sampled_from(sorted(INPUT_LAYOUTS))),
        "lo": draw(st.one_of(st.none(), st.sampled_from(sorted(OUT_LAYOUTS)))),
        "values": draw(st.sampled_from(["random", "small_ints"])),
        "kernel": draw(st.sampled_from(_runtime.available_kernels())),
        "threads": draw(st.sampled_from([1, 2, 3, 8])),
        "seed": draw(st.integers(0, 2 ** 32 - 1)),
    }


def _run(prob):
    note(repr(prob))
    dtype = prob["dtype"]
    b, n, m, p = prob["shape"]
    rng = np.random.default_rng(prob["seed"])
    gen = small_int_values if prob["values"] == "small_ints" else random_values
    x, ox = make_input(prob["la"], rng, (b, n, m), dtype, gen)
    y, oy = make_input(prob["lb"], rng, (b, m, p), dtype, gen)
    before = snapshot(ox, oy)
    ref = reference_bmm(x, y)

    out = parent = mask = None
    if prob["lo"] is not None:
        out, parent, mask = make_out(prob["lo"], (b, n, p), dtype)
        parent_before = parent.copy()

    prev_kernel, prev_threads = _runtime.get_kernel(), fastbmm.get_num_threads()
    _runtime.set_kernel(prob["kernel"])
    fastbmm.set_num_threads(prob["threads"])
    try:
        r = fastbmm.bmm(x, y, out=out)
    finally:
        _runtime.set_kernel(prev_kernel)
        fastbmm.set_num_threads(prev_threads)

    assert snapshot(ox, oy) == before, "an input was modified"
    if out is not None:
        assert r is out
        if mask is not None:
            assert np.array_equal(parent[~mask], parent_before[~mask]), "wrote outside out="
    else:
        assert r.flags.c_contiguous and r.dtype.isnative
    assert r.shape == (b, n, p) and native(r.dtype) == native(dtype)
    if prob["values"] == "small_ints":
        # Sums of small integers are exact in every supported float type here.
        assert np.array_equal(r.astype(native(dtype)), ref.astype(native(dtype)))
    else:
        assert_bmm_close(r, x, y, ref=ref)


@given(problems())
def test_bmm_matches_reference(prob):
    _run(prob)


ALIAS_LAYOUTS = ["C", "transposed", "fortran", "negative", "misaligned", "byteswapped",
                 "byteswapped_transposed"]


@given(
    dtype=st.sampled_from(SUPPORTED_DTYPES),
    b=st.integers(1, 3),
    n=st.one_of(st.integers(0, 12), st.integers(13, 60)),
    layout=st.sampled_from(ALIAS_LAYOUTS),
    mode=st.sampled_from(["x@x->x", "x@y->x", "y@x->x", "x@x.T->x"]),
    threads=st.sampled_from([1, 2, 8]),
    seed=st.integers(0, 2 ** 32 - 1),
)
def test_out_aliasing_an_input(dtype, b, n, layout, mode, threads, seed):
    """out= sharing memory with an input (any writable layout) gives the non-aliased answer."""
    rng = np.random.default_rng(seed)
    x, owner = make_input(layout, rng, (b, n, n), dtype)
    y, _ = make_input("C", rng, (b, n, n), dtype)
    x0 = np.array(x, copy=True)
    operands = {
        "x@x->x": (x, x), "x@y->x": (x, y), "y@x->x": (y, x),
        "x@x.T->x": (x, x.transpose(0, 2, 1)),
    }[mode]
    expected_operands = {
        "x@x->x": (x0, x0), "x@y->x": (x0, y), "y@x->x": (y, x0),
        "x@x.T->x": (x0, x0.transpose(0, 2, 1)),
    }[mode]
    prev = fastbmm.get_num_threads()
    fastbmm.set_num_threads(threads)
    try:
        r = fastbmm.bmm(*operands, out=x)
    finally:
        fastbmm.set_num_threads(prev)
    assert r is x
    assert_bmm_close(x, *expected_operands)
