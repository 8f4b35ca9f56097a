"""fastbmm.dask: chunked bmm/matmul on dask arrays, on the threaded scheduler and
on a real two-process ``distributed`` cluster.

Every value is compared with the in-memory fastbmm.bmm on the same operands and
with the independent reference of ``_helpers`` (integers exactly); every error
with fastbmm.bmm's (or torch.matmul's) exception class and exact text.
"""

import doctest
import logging
import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import fastbmm  # noqa: E402
import fastbmm.dask as fdask  # noqa: E402
from fastbmm import DtypeError, ShapeError, UnsupportedDtypeError  # noqa: E402

from _helpers import assert_bmm_close, random_values  # noqa: E402

HAS_MATMUL = hasattr(fastbmm, "matmul")


# --------------------------------------------------------------------------
# Schedulers


@pytest.fixture(scope="module", autouse=True)
def workers_import_fastbmm():
    """Worker processes (spawned, not forked) import fastbmm themselves: put
    this fastbmm's directory on their PYTHONPATH (a no-op when fastbmm is
    installed, as in CI, or the path is already there)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastbmm.__file__)))
    saved = os.environ.get("PYTHONPATH")
    parts = saved.split(os.pathsep) if saved else []
    if root not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([root] + parts)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def dask_client(workers_import_fastbmm):
    """A LocalCluster of two single-threaded worker processes, for this module."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True,
        dashboard_address=None, silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(params=["threads", "distributed"])
def compute(request):
    """compute(x) -> ndarray on the threaded scheduler or the process cluster."""
    if request.param == "threads":
        return lambda x: x.compute(scheduler="threads", num_workers=2)
    client = request.getfixturevalue("dask_client")
    return lambda x: client.compute(x, sync=True)


def test_cluster_workers_are_other_processes_with_fastbmm(dask_client):
    info = dask_client.run(lambda: (os.getpid(), fastbmm.__file__))
    assert len(info) == 2
    pids = {pid for pid, _ in info.values()}
    assert os.getpid() not in pids and len(pids) == 2
    assert {path for _, path in info.values()} == {fastbmm.__file__}


# --------------------------------------------------------------------------
# bmm: values

SHAPE_A, SHAPE_B = (6, 7, 9), (6, 9, 5)

# (a's chunks, b's chunks): b's batch/inner chunks differ from a's in the last
# rows, so bmm must rechunk b to a's layout.
CHUNKINGS = {
    "single-block": ((6, 7, 9), (6, 9, 5)),
    "batch": ((2, 7, 9), (2, 9, 5)),
    "batch-uneven": (((1, 4, 1), 7, 9), ((1, 4, 1), 9, 5)),
    "inner": ((6, 7, 4), (6, 4, 5)),
    "inner-single-columns": ((6, 7, 1), (6, 1, 5)),
    "rows-cols": ((6, 3, 9), (6, 9, 2)),
    "everything": ((2, 3, 4), (2, 4, 2)),
    "mismatched-batch": ((2, 7, 9), (3, 9, 5)),
    "mismatched-inner": ((6, 7, 4), (6, 2, 5)),
    "mismatched-all": (((1, 5), (3, 4), (2, 3, 4)), ((4, 2), 9, (1, 4))),
}


def _operands(rng, dtype, shape_a=SHAPE_A, shape_b=SHAPE_B):
    return random_values(rng, shape_a, dtype), random_values(rng, shape_b, dtype)


# Each chunking with one of the three dtypes in turn (the full grid costs too
# much cluster time); every dtype also meets the most-chunked layout below.
CHUNKING_DTYPES = [
    (name, ["float32", "float64", "int32"][i % 3]) for i, name in enumerate(CHUNKINGS)
] + [("everything", "float32"), ("everything", "float64"), ("mismatched-all", "int32")]


@pytest.mark.parametrize("chunking, dtype", CHUNKING_DTYPES)
def test_bmm_matches_fastbmm(compute, rng, chunking, dtype):
    a, b = _operands(rng, dtype)
    ca, cb = CHUNKINGS[chunking]
    z = fdask.bmm(da.from_array(a, chunks=ca), da.from_array(b, chunks=cb))
    assert isinstance(z, da.Array)
    assert z.shape == (6, 7, 5) and z.dtype == np.dtype(dtype)
    a_chunks = da.from_array(a, chunks=ca).chunks
    assert z.chunks[:2] == a_chunks[:2]          # batch and rows follow input
    got = compute(z)
    assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype)
    assert_bmm_close(got, a, b, what=f"dask {chunking}")
    expected = fastbmm.bmm(a, b)
    if np.dtype(dtype).kind == "i":
        np.testing.assert_array_equal(got, expected)    # wrapping sums: exact
    elif len(a_chunks[2]) == 1:
        np.testing.assert_array_equal(got, expected)    # one fastbmm call per block


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int64", "complex64", "complex128"])
def test_bmm_other_dtypes_inner_chunked(compute, rng, dtype):
    # Full-range integers: products and partial sums overflow and wrap; the sum
    # over inner chunks must wrap exactly as one call over the whole row does.
    a, b = _operands(rng, dtype, (4, 3, 40), (4, 40, 5))
    z = fdask.bmm(da.from_array(a, chunks=(2, 2, 7)), da.from_array(b, chunks=(2, 7, 3)))
    got = compute(z)
    assert got.dtype == np.dtype(dtype)
    assert_bmm_close(got, a, b)
    if np.dtype(dtype).kind in "iu":
        np.testing.assert_array_equal(got, fastbmm.bmm(a, b))


def test_bmm_integer_wraparound_across_chunks(compute):
    # int8: 100*3 + 100*3 = 600 -> 88 (mod 256), with each product in its own chunk.
    a = np.full((1, 1, 2), 100, np.int8)
    b = np.full((1, 2, 1), 3, np.int8)
    z = fdask.bmm(da.from_array(a, chunks=(1, 1, 1)), da.from_array(b, chunks=(1, 1, 1)))
    assert z.dtype == np.int8
    assert compute(z)[0, 0, 0] == 88 == fastbmm.bmm(a, b)[0, 0, 0]


def test_bmm_float16_accumulates_in_float32_across_chunks(compute):
    # 5000 ones: a float16 running sum would stall at 2048; fastbmm's float32
    # accumulation (kept across the inner chunks) gives 5000 exactly.
    a = np.ones((2, 1, 5000), np.float16)
    b = np.ones((2, 5000, 3), np.float16)
    z = fdask.bmm(da.from_array(a, chunks=(1, 1, 700)), da.from_array(b, chunks=(1, 700, 3)))
    assert z.dtype == np.float16
    got = compute(z)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, fastbmm.bmm(a, b))
    np.testing.assert_array_equal(got, np.full((2, 1, 3), 5000, np.float16))


def test_bmm_float16_random(compute, rng):
    a, b = _operands(rng, np.float16, (3, 4, 300), (3, 300, 6))
    single = compute(fdask.bmm(da.from_array(a, chunks=(1, 4, 300)), b))
    np.testing.assert_array_equal(single, fastbmm.bmm(a, b))
    chunked = compute(fdask.bmm(da.from_array(a, chunks=(1, 2, 64)), b))
    assert chunked.dtype == np.float16
    assert_bmm_close(chunked, a, b)


@pytest.mark.parametrize("which", ["input", "mat2", "both"])
def test_bmm_accepts_ndarrays(compute, rng, which):
    a, b = _operands(rng, np.float64)
    x = a if which in ("input", "both") else da.from_array(a, chunks=(2, 3, 4))
    y = b if which in ("mat2", "both") else da.from_array(b, chunks=(3, 2, 2))
    z = fdask.bmm(x, y)
    assert isinstance(z, da.Array)
    if which == "mat2":
        assert z.chunks[:2] == ((2, 2, 2), (3, 3, 1))
    if which == "input":
        # The ndarray takes the dask operand's chunks where they meet.
        assert z.chunks == ((3, 3), (7,), (2, 2, 1))
    assert_bmm_close(compute(z), a, b)


def test_bmm_accepts_cpu_tensors(torch, rng):
    # Objects exporting DLPack (a CPU torch tensor) are read like ndarrays.
    a, b = _operands(rng, np.float32)
    z = fdask.bmm(torch.from_numpy(a), da.from_array(b, chunks=(2, 3, 5)))
    assert z.chunks[0] == (2, 2, 2)
    assert_bmm_close(z.compute(scheduler="threads"), a, b)


def test_bmm_non_native_byte_order_and_strided_blocks(compute, rng):
    a, b = _operands(rng, np.float32, (4, 9, 5), (4, 5, 3))
    a_be = a.astype(">f4").transpose(0, 2, 1).copy().transpose(0, 2, 1)  # strided, big-endian
    x = da.from_array(a_be, chunks=(2, 3, 2))
    y = da.from_array(b[:, :, ::-1], chunks=(1, 5, 3))
    z = fdask.bmm(x, y)
    assert z.dtype == np.dtype("float32") and z.dtype.isnative
    assert_bmm_close(compute(z), a, b[:, :, ::-1])


@pytest.mark.parametrize("shape_a, shape_b, chunks_a", [
    ((0, 3, 4), (0, 4, 5), (1, 2, 2)),      # no batch
    ((3, 0, 4), (3, 4, 5), (1, 1, 2)),      # no rows
    ((3, 2, 4), (3, 4, 0), (1, 1, 2)),      # no columns
    ((3, 2, 0), (3, 0, 5), (1, 1, 1)),      # m == 0: zeros
    ((0, 3, 4), (0, 4, 5), None),           # ndarrays: no "auto" chunk sizing
    ((3, 0, 4), (3, 4, 5), None),
    ((3, 2, 0), (3, 0, 5), None),
])
def test_bmm_empty(compute, shape_a, shape_b, chunks_a):
    a = np.ones(shape_a, np.float32)
    b = np.ones(shape_b, np.float32)
    got = compute(fdask.bmm(a if chunks_a is None else da.from_array(a, chunks=chunks_a), b))
    expected = fastbmm.bmm(a, b)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_bmm_is_lazy():
    calls = []

    def spy(block):
        calls.append(block.shape)
        return block

    a = da.ones((4, 3, 6), chunks=(2, 3, 2), dtype=np.float32).map_blocks(
        spy, meta=np.empty((0, 0, 0), np.float32))
    b = da.ones((4, 6, 2), chunks=(2, 3, 2), dtype=np.float32)
    z = fdask.bmm(a, b)
    assert calls == []                      # building the graph computes nothing
    assert z.chunks == ((2, 2), (3,), (2,))
    np.testing.assert_array_equal(z.compute(scheduler="sync"), np.full((4, 3, 2), 6, np.float32))
    assert calls


def test_bmm_inner_chunks_never_concatenate_operands():
    # Inner-chunked: every fastbmm call sees one block of each operand, and the
    # partial products are reduced; no task concatenates operand blocks.
    a = da.ones((2, 3, 8), chunks=(1, 3, 2), dtype=np.float64)
    b = da.ones((2, 8, 4), chunks=(1, 2, 4), dtype=np.float64)
    z = fdask.bmm(a, b)
    graph = dict(z.__dask_graph__())
    assert not any("concatenate" in repr(task) for task in graph.values())
    partial = [k for k in graph if isinstance(k, tuple) and k[0].endswith("-partial")]
    assert len(partial) == 2 * 4            # batch blocks x inner blocks
    np.testing.assert_array_equal(z.compute(scheduler="sync"), np.full((2, 3, 4), 8.0))


def test_bmm_processes_scheduler(rng):
    a, b = _operands(rng, np.float64)
    z = fdask.bmm(da.from_array(a, chunks=(3, 7, 4)), da.from_array(b, chunks=(3, 4, 5)))
    assert_bmm_close(z.compute(scheduler="processes", num_workers=2), a, b)


def test_bmm_out_dtype(compute, rng):
    a, b = _operands(rng, np.float16, (2, 3, 50), (2, 50, 4))
    x = da.from_array(a, chunks=(1, 3, 20))
    try:
        fastbmm.bmm(a, b, out_dtype=np.float32)
    except TypeError:
        # This fastbmm has no out_dtype=: refused eagerly, with a clear message.
        with pytest.raises(TypeError, match="out_dtype"):
            fdask.bmm(x, b, out_dtype=np.float32)
        return
    z = fdask.bmm(x, b, out_dtype=np.float32)
    assert z.dtype == np.float32
    assert_bmm_close(compute(z), a, b, dtype=np.float32)
    with pytest.raises((TypeError, ValueError)):
        fdask.bmm(x, b, out_dtype=np.int8)


# --------------------------------------------------------------------------
# bmm: errors (same class and text as fastbmm.bmm, raised eagerly)

ERROR_CASES = [
    ((2, 1, 10), (3, 10, 4), "float32", "float32"),       # batch sizes
    ((2, 10, 1), (2, 10, 4), "float32", "float32"),       # inner sizes
    ((0, 1, 10), (2, 10, 4), "float32", "float32"),
    ((1, 2, 3), (4, 3, 2), "float32", "float32"),         # no batch broadcasting
    ((2, 3), (2, 3, 4), "float32", "float32"),            # ranks
    ((2, 3, 4), (4, 5), "float32", "float32"),
    ((1, 2, 3, 4), (1, 2, 4, 5), "float32", "float32"),
    ((2, 2, 3), (2, 3, 4), "float32", "float64"),         # dtypes
    ((2, 2, 3), (2, 3, 4), "int32", "int64"),
    ((2, 2, 3), (2, 3, 4), "float32", "bool"),
    ((2, 2, 3), (2, 3, 4), "bool", "bool"),
    ((2, 2, 3), (2, 3, 4), "uint16", "uint16"),
    ((2, 2, 3), (2, 3, 4), "uint64", "uint64"),
    ((2, 2, 3), (2, 3, 4), "object", "object"),
    ((2, 2, 3), (2, 3, 4), "datetime64[s]", "datetime64[s]"),
    ((2, 2, 3), (2, 3, 4), "bool", "float32"),
    ((2, 2, 3), (2, 4, 4), "float32", "float64"),         # size before dtype
]


def _error_of(f, *args, **kwargs):
    with pytest.raises(Exception) as info:
        f(*args, **kwargs)
    return info.value


@pytest.mark.parametrize("shape_a, shape_b, ta, tb", ERROR_CASES)
@pytest.mark.parametrize("kind", ["dask", "ndarray"])
def test_bmm_errors_match_fastbmm(shape_a, shape_b, ta, tb, kind):
    a, b = np.zeros(shape_a, ta), np.zeros(shape_b, tb)
    expected = _error_of(fastbmm.bmm, a, b)
    if kind == "dask":
        a, b = da.from_array(a, chunks=1), da.from_array(b, chunks=1)
    got = _error_of(fdask.bmm, a, b)
    assert type(got) is type(expected)
    assert str(got) == str(expected)


def test_bmm_error_classes():
    a = da.zeros((2, 2, 3), chunks=1, dtype=np.float32)
    with pytest.raises(ShapeError, match=r"^batch1 must be a 3D tensor$"):
        fdask.bmm(a[0], a)
    with pytest.raises(ValueError, match=r"\[2, 3\] but got: \[2, 2\]\.$"):
        fdask.bmm(a, a)
    with pytest.raises(DtypeError, match="^expected scalar type Float but found Double$"):
        fdask.bmm(a, da.zeros((2, 3, 4), dtype=np.float64))
    with pytest.raises(UnsupportedDtypeError, match="^\"bmm\" not implemented for 'Bool'$"):
        fdask.bmm(a.astype(bool), da.zeros((2, 3, 4), dtype=bool))


@pytest.mark.parametrize("bad, position", [([[[1.0]]], 1), (3.0, 2), ((1, 2), 1), (None, 2)])
def test_bmm_refuses_non_arrays(bad, position):
    ok = da.zeros((1, 1, 1), dtype=np.float64)
    args = (bad, ok) if position == 1 else (ok, bad)
    expected = _error_of(fastbmm.bmm, *(np.zeros((1, 1, 1)) if x is ok else x for x in args))
    got = _error_of(fdask.bmm, *args)
    assert type(got) is TypeError and str(got) == str(expected)


def test_bmm_refuses_masked():
    m = np.ma.zeros((1, 1, 1))
    with pytest.raises(TypeError, match="masked"):
        fdask.bmm(m, np.zeros((1, 1, 1)))
    with pytest.raises(TypeError, match="masked"):
        fdask.bmm(np.zeros((1, 1, 1)), da.from_array(m, chunks=1, asarray=False))


def test_bmm_unknown_chunk_sizes():
    x = da.ones((4, 2, 3), chunks=(2, 2, 3))
    x = x[x[:, 0, 0] > 0]                   # batch size unknown until computed
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        fdask.bmm(x, da.ones((4, 3, 2)))
    x.compute_chunk_sizes()
    assert fdask.bmm(x, da.ones((4, 3, 2))).compute(scheduler="sync").shape == (4, 2, 2)


# --------------------------------------------------------------------------
# matmul


MATMUL_CASES = [
    # shape_a, chunks_a, shape_b, chunks_b
    ((6, 4, 5), (2, 4, 5), (6, 5, 3), (3, 5, 3)),             # bmm-like, mismatched chunks
    ((3, 2, 4, 5), (1, 1, 2, 2), (3, 2, 5, 3), (3, 1, 3, 3)),  # two batch dims, inner chunked
    ((3, 1, 4, 5), (1, 1, 4, 5), (1, 2, 5, 3), (1, 1, 5, 3)),  # broadcast both ways
    ((4, 5), (2, 5), (3, 5, 6), (1, 5, 3)),                   # 2-D @ 3-D
    ((2, 4, 5), (1, 4, 2), (5, 6), (2, 3)),                   # 3-D @ 2-D
    ((5,), (2,), (2, 5, 6), (1, 2, 6)),                       # 1-D @ 3-D
    ((2, 4, 5), (1, 2, 5), (5,), (5,)),                       # 3-D @ 1-D
    ((4, 5), (2, 3), (5, 6), (3, 6)),                         # 2-D @ 2-D
    ((5,), (3,), (5,), (2,)),                                 # dot
    ((2, 1, 3, 4, 5), (1, 1, 3, 4, 2), (3, 5, 2), (1, 2, 2)),  # rank 5 @ rank 3
]


@pytest.mark.parametrize("shape_a, chunks_a, shape_b, chunks_b, dtype", [
    case + (["int32", "float64"][i % 2],) for i, case in enumerate(MATMUL_CASES)
] + [MATMUL_CASES[1] + ("int32",)])
def test_matmul_matches_numpy(compute, rng, shape_a, chunks_a, shape_b, chunks_b, dtype):
    a = random_values(rng, shape_a, dtype)
    b = random_values(rng, shape_b, dtype)
    z = fdask.matmul(da.from_array(a, chunks=chunks_a), da.from_array(b, chunks=chunks_b))
    expected = np.matmul(a, b)
    assert isinstance(z, da.Array)
    assert z.shape == expected.shape and z.dtype == expected.dtype
    got = compute(z)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if np.dtype(dtype).kind == "i":
        np.testing.assert_array_equal(got, expected)   # wraps like NumPy's int32 matmul
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    if HAS_MATMUL:
        np.testing.assert_allclose(got, fastbmm.matmul(a, b), rtol=1e-12, atol=1e-12)
    # ndarray operands are wrapped with the other's chunks.
    local = dict(scheduler="threads", num_workers=2)
    np.testing.assert_allclose(
        fdask.matmul(a, da.from_array(b, chunks=chunks_b)).compute(**local), expected, rtol=1e-12)
    np.testing.assert_allclose(fdask.matmul(a, b).compute(**local), expected, rtol=1e-12)


def test_matmul_without_fastbmm_matmul(monkeypatch, rng):
    # The fold-to-3-D fallback the blocks use where fastbmm has no matmul.
    a = random_values(rng, (3, 1, 4, 5), np.float64)
    b = random_values(rng, (1, 2, 5, 3), np.float64)
    if HAS_MATMUL:
        monkeypatch.delattr(fastbmm, "matmul")
    got = fdask.matmul(da.from_array(a, chunks=(1, 1, 2, 2)), b).compute(scheduler="sync")
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-12)


@pytest.mark.parametrize("shape_a, shape_b", [
    ((0, 3, 4), (1, 4, 5)), ((5, 0, 3, 4), (1, 4, 5)), ((2, 3, 0), (0, 5)), ((0,), (0,)),
])
def test_matmul_empty(shape_a, shape_b):
    a, b = np.ones(shape_a), np.ones(shape_b)
    expected = np.matmul(a, b)
    for x in (a, da.from_array(a, chunks=1)):
        got = fdask.matmul(x, b).compute(scheduler="threads")
        assert np.shape(got) == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_matmul_float16_inner_chunked(compute):
    a = np.ones((2, 1, 1, 5000), np.float16)
    b = np.ones((1, 3, 5000, 2), np.float16)
    z = fdask.matmul(da.from_array(a, chunks=(1, 1, 1, 900)), b)
    got = compute(z)
    assert got.dtype == np.float16 and got.shape == (2, 3, 1, 2)
    np.testing.assert_array_equal(got, np.full((2, 3, 1, 2), 5000, np.float16))


# torch 2.13's texts for each of torch.matmul's code paths (dot, mv, mm,
# folded mm, broadcast + bmm).
MATMUL_ERRORS = [
    ((), (3,), "f4", "f4", ShapeError,
     "both arguments to matmul need to be at least 1D, but they are 0D and 1D"),
    ((3,), (4,), "f4", "f4", ShapeError,
     "inconsistent tensor size, expected tensor [3] and src [4] to have the same number of "
     "elements, but got 3 and 4 elements respectively"),
    ((3,), (3,), "f4", "f8", DtypeError,
     "dot : expected both vectors to have same dtype, but found Float and Double"),
    ((3,), (4,), "f4", "f8", DtypeError,    # dot: dtype checked before size
     "dot : expected both vectors to have same dtype, but found Float and Double"),
    ((2, 3), (4,), "f4", "f4", ShapeError, "size mismatch, got input (2), mat (2x3), vec (4)"),
    ((2, 2, 3), (4,), "f4", "f4", ShapeError, "size mismatch, got input (4), mat (4x3), vec (4)"),
    ((2, 3), (3,), "f4", "f8", DtypeError,
     "addmv input tensors must have the same dtype, but got Double, Float, and Double"),
    ((2, 3), (4, 5), "f4", "f4", ShapeError, "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
    ((3,), (4, 5), "f4", "f4", ShapeError, "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x5)"),
    ((2, 2, 3), (4, 5), "f4", "f4", ShapeError,
     "mat1 and mat2 shapes cannot be multiplied (4x3 and 4x5)"),
    ((2, 3), (3, 4), "f4", "f8", DtypeError,
     "expected m1 and m2 to have the same dtype, but got: float != double"),
    ((2, 2, 3), (2, 4, 5), "f4", "f4", ShapeError,
     "Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [2, 4]."),
    ((3, 1, 2, 3), (1, 2, 4, 5), "f4", "f4", ShapeError,
     "Expected size for first two dimensions of batch2 tensor to be: [6, 3] but got: [6, 4]."),
    ((2, 2, 3), (3, 3, 4), "f4", "f4", ShapeError,
     "The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0"),
    ((2, 3, 1, 2, 3), (3, 2, 2, 3, 4), "f4", "f4", ShapeError,
     "The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 1"),
    ((2, 2, 3), (2, 3, 4), "f4", "f8", DtypeError, "expected scalar type Float but found Double"),
    ((2, 2, 3), (2, 3, 4), "?", "?", UnsupportedDtypeError, "\"bmm\" not implemented for 'Bool'"),
    ((2, 2, 3), (2, 3, 4), "?", "f4", UnsupportedDtypeError,   # before the mismatch
     "\"bmm\" not implemented for 'Bool'"),
    ((2, 3), (3, 4), "u2", "u2", UnsupportedDtypeError,
     "\"addmm_impl_cpu_\" not implemented for 'UInt16'"),
]


@pytest.mark.parametrize("shape_a, shape_b, ta, tb, cls, text", MATMUL_ERRORS)
def test_matmul_errors(shape_a, shape_b, ta, tb, cls, text):
    a = da.from_array(np.zeros(shape_a, ta), chunks=1)
    b = np.zeros(shape_b, tb)
    with pytest.raises(cls) as info:
        fdask.matmul(a, b)
    assert str(info.value) == text


@pytest.mark.skipif(not HAS_MATMUL, reason="this fastbmm has no matmul")
@pytest.mark.parametrize("shape_a, shape_b, ta, tb, cls, text", MATMUL_ERRORS)
def test_matmul_errors_match_fastbmm_matmul(shape_a, shape_b, ta, tb, cls, text):
    a, b = np.zeros(shape_a, ta), np.zeros(shape_b, tb)
    expected = _error_of(fastbmm.matmul, a, b)
    got = _error_of(fdask.matmul, da.from_array(a, chunks=1), b)
    assert (type(got), str(got)) == (type(expected), str(expected))


@pytest.mark.parametrize("shape_a, shape_b, ta, tb, cls, text", MATMUL_ERRORS)
def test_matmul_errors_are_torchs(torch, shape_a, shape_b, ta, tb, cls, text):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ta_, tb_ = (torch.from_numpy(np.zeros(s, t)) for s, t in ((shape_a, ta), (shape_b, tb)))
    expected = _error_of(torch.matmul, ta_, tb_)
    assert str(expected) == text


def test_matmul_refuses_non_arrays():
    with pytest.raises(TypeError, match=r"^matmul\(\): argument 'other' \(position 2\) "
                                        r"must be ndarray, not list$"):
        fdask.matmul(da.zeros((2, 2)), [[1.0]])


# --------------------------------------------------------------------------
# One operand intake with the in-memory functions (issue 9, item 5)


def _lazy_bit_tensor(torch, bit):
    """A torch tensor with the lazy conj / neg bit set, and the values it stands for."""
    c = torch.from_numpy(random_values(np.random.default_rng(9), (4, 3, 5), np.complex128))
    if bit == "conj":
        t = c.conj()
        assert t.is_conj()
        return t, np.conj(c.numpy())
    t = c.conj().imag
    assert t.is_neg()
    return t, -c.numpy().imag


@pytest.mark.parametrize("bit", ["conj", "neg"])
@pytest.mark.parametrize("fn", ["bmm", "matmul"])
def test_torch_lazy_bits_resolved(torch, fn, bit):
    # np.from_dlpack ignores torch's negation bit (signs flipped) and refuses the
    # conjugation bit (raw BufferError); fastbmm.bmm resolves both, and so must this.
    t, values = _lazy_bit_tensor(torch, bit)
    b = random_values(np.random.default_rng(10), (4, 5, 2), values.dtype)
    got = getattr(fdask, fn)(t, da.from_array(b, chunks=(2, 5, 2))).compute(scheduler="sync")
    np.testing.assert_allclose(got, np.matmul(values, b), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("fn", ["bmm", "matmul"])
def test_torch_intake_errors_are_fastbmm_s(torch, fn):
    # the same exception and text as the in-memory function: no raw BufferError
    ok = np.ones((1, 2, 2), np.float32)
    for bad in (torch.ones((1, 2, 2), requires_grad=True), torch.ones((1, 2, 2), dtype=torch.bfloat16),
                torch.ones((1, 2, 2), device="meta")):
        expected = _error_of(getattr(fastbmm, fn), bad, ok)
        got = _error_of(getattr(fdask, fn), bad, ok)
        assert type(got) is type(expected) and str(got) == str(expected)
        assert not isinstance(got, BufferError)


def _swapped(shape):
    """A (2, 3, 4)-shaped view whose last two axes are swapped in memory."""
    return np.zeros(shape[:-2] + (shape[-1], shape[-2]), np.float32).swapaxes(-1, -2)


@pytest.mark.parametrize("a, b", [
    (_swapped((2, 3, 4)), np.zeros(5, np.float32)),   # torch: bmm, not mv, for this batch
    (np.zeros(5, np.float32), _swapped((2, 3, 4))),   # torch: mv on other's transpose
], ids=["transposed_input", "transposed_other"])
def test_matmul_ndarray_errors_follow_layout_like_fastbmm(a, b):
    # an ndarray operand keeps its layout, which picks torch's wording (issue 9, item 9)
    expected = _error_of(fastbmm.matmul, a, b)
    got = _error_of(fdask.matmul, a, b)
    assert type(got) is type(expected) and str(got) == str(expected)
    # the same shapes in C order are worded otherwise: the layout is what decides
    c_order = _error_of(fastbmm.matmul, np.ascontiguousarray(a), np.ascontiguousarray(b))
    assert str(c_order) != str(expected)


# --------------------------------------------------------------------------
# Documentation


def test_module_doctests():
    result = doctest.testmod(fdask, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
