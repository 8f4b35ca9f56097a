"""Out-of-core and distributed batched matrix products with Dask.

``fastbmm.dask`` runs fastbmm's kernels on every block of chunked
:mod:`dask.array` operands, so a stack of matrices larger than memory, or
spread over a cluster, is multiplied block by block. It is an optional extra::

    pip install ".[dask]"              # from the source tree: dask[array] and distributed

Both functions validate their operands eagerly, raising the same exception
classes with torch's messages as :func:`fastbmm.bmm` and :func:`fastbmm.matmul`
(before any block is computed), and return a lazy :class:`dask.array.Array`;
nothing is computed until ``.compute()`` (or ``.persist()``, ``da.store``, ...).

>>> import dask.array as da
>>> import fastbmm.dask
>>> x = da.ones((1000, 64, 32), chunks=(100, 64, 32), dtype="float32")
>>> y = da.ones((1000, 32, 16), chunks=(100, 32, 16), dtype="float32")
>>> z = fastbmm.dask.bmm(x, y)        # lazy: (1000, 64, 16), chunks (100, 64, 16)
>>> float(z[0, 0, 0].compute())
32.0

Any Dask scheduler runs the graph: the default threaded one, ``processes``,
or a ``dask.distributed`` cluster. To run on a cluster, connect a client
first; every later ``compute()`` goes to it::

    from dask.distributed import Client
    client = Client("tcp://scheduler:8786")      # or Client() for a local cluster
    z = fastbmm.dask.bmm(x, y).compute()          # blocks multiplied on the workers

The workers must be able to ``import fastbmm`` (install it in their
environment); nothing else is needed on them.

Threads: each task is one fastbmm call, which may itself run OpenMP threads.
``dask.distributed`` starts its worker processes with ``OMP_NUM_THREADS=1``, so
there every call is single-threaded and the parallelism is Dask's (workers x
threads per worker); for fewer, bigger tasks give each worker one thread and
let fastbmm use several: ``client.run(fastbmm.set_num_threads, 8)``. On the
threaded scheduler every Dask thread runs fastbmm's default thread count: call
``fastbmm.set_num_threads(1)`` there (or give Dask fewer threads) rather than
run cores x cores threads.

How the product is split
------------------------
With ``a`` of shape ``(b, n, m)`` split into blocks ``a[I, R, K]`` along the
batch (``I``), row (``R``) and inner (``K``) dimensions, and ``mat2`` into
``mat2[I, K, C]``, each output block is

.. math:: \\mathrm{out}[I, R, C] = \\sum_{K} a[I, R, K] \\; \\mathrm{mat2}[I, K, C]

Each term is one fastbmm call on one pair of blocks. With a single inner chunk
the sum has one term and the block is fastbmm's result itself. With several,
the partial products are summed by a tree reduction over ``K`` (as
:func:`dask.array.matmul` does), so no task ever holds a whole operand or a
whole row panel. The sums keep fastbmm's arithmetic: integers wrap around in the
operands' dtype exactly as one call over the whole inner dimension would (sums
modulo 2**bits do not depend on grouping), float16 partial products are formed
and summed in float32 and rounded to float16 once at the end, and floating-point
sums differ from the in-memory result only by the order of the additions.
"""

import math
from functools import partial

import numpy as np

try:
    import dask.array as da
    from dask.base import tokenize
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fastbmm.dask needs Dask: pip install '.[dask]' (from fastbmm's source tree) "
        "(or: pip install 'dask[array]' distributed)"
    ) from exc

import fastbmm as _fastbmm
from fastbmm import _dtypes, _errors, _validation

__all__ = ["bmm", "matmul"]

# float16 products are accumulated in float32 (fastbmm's contract); across
# inner-dimension chunks the partial sums stay float32 until the end.
_F32 = np.dtype(np.float32)
# dtypes summed in float32 and rounded once (dtypes.def's staged rows:
# float16, bfloat16), by name
_STAGED = frozenset(r.numpy_in for r in _dtypes.ROWS if r.staged)

# --------------------------------------------------------------------------
# Block functions (module level, so any scheduler can pickle them by name)


def _one(x):
    # A contracted index with concatenate=False hands over a list of blocks;
    # with a single inner chunk that list has one block (never concatenated).
    if isinstance(x, list):
        (x,) = x
    return x


def _bmm_blocks(x, y, upcast=None, partial_axis=False):
    """fastbmm.bmm of one pair of blocks (optionally cast first)."""
    x, y = _one(x), _one(y)
    if upcast is not None:
        x = x.astype(upcast, copy=False)
        y = y.astype(upcast, copy=False)
    r = _fastbmm.bmm(x, y)
    # A partial product keeps the inner axis (size 1) for the reduction.
    return r[:, :, np.newaxis, :] if partial_axis else r


def _matmul_nd(x, y):
    """x @ y for blocks of equal rank >= 3 whose batch dims broadcast."""
    f = getattr(_fastbmm, "matmul", None)
    if f is not None:
        return f(x, y)
    # fastbmm without matmul: fold the (broadcast) batch dims into one.
    batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    nb = math.prod(batch)
    x3 = np.broadcast_to(x, batch + x.shape[-2:]).reshape((nb,) + x.shape[-2:])
    y3 = np.broadcast_to(y, batch + y.shape[-2:]).reshape((nb,) + y.shape[-2:])
    r = _fastbmm.bmm(x3, y3)
    return r.reshape(batch + r.shape[-2:])


def _matmul_blocks(x, y, upcast=None, partial_axis=False):
    x, y = _one(x), _one(y)
    if upcast is not None:
        x = x.astype(upcast, copy=False)
        y = y.astype(upcast, copy=False)
    r = _matmul_nd(x, y)
    return r[..., np.newaxis, :] if partial_axis else r


def _sum_partials(x, axis=None, keepdims=False, dtype=None, computing_meta=False):
    """Chunk/combine/aggregate of the inner-dimension reduction.

    The partial products all have the same shape, with a size-1 reduction axis,
    so the reduction is an element-wise sum. ``np.add(..., dtype=dtype)`` keeps
    the dtype (np.sum would promote small integers to int64, not wrap them).
    The first addition makes a new array; the inputs are never written.
    """
    if isinstance(x, list):
        if len(x) == 1:
            out = x[0]
        else:
            out = np.add(x[0], x[1], dtype=dtype)
            for more in x[2:]:
                np.add(out, more, out=out, dtype=dtype)
    else:
        out = x
    if keepdims:
        return out
    return out.squeeze(axis[0] if isinstance(axis, tuple) else axis)


# --------------------------------------------------------------------------
# Operands


def _operand(x, fname, argname, position):
    """A dask Array, or the ndarray behind x as fastbmm's in-memory functions read it.

    Everything but a dask array goes through fastbmm's one operand intake, so
    a torch tensor's lazy negation/conjugation is resolved, and a tensor that
    requires grad or lives off the CPU is refused, exactly as by fastbmm.bmm.
    """
    if isinstance(x, da.Array):
        meta = getattr(x, "_meta", None)
        if isinstance(meta, np.ma.MaskedArray):
            raise _errors.masked_array(fname, argname)
        if meta is not None and not isinstance(meta, np.ndarray):
            raise TypeError(
                f"{fname}(): argument '{argname}' (position {position}) has blocks of type "
                f"{type(meta).__module__}.{type(meta).__name__}; fastbmm multiplies NumPy blocks "
                "only (convert with x.map_blocks(np.asarray))")
        return x
    return _validation.operand(x, argname, position, fname)


def _known_shape(x, fname, argname):
    if isinstance(x, da.Array) and any(math.isnan(s) for s in x.shape):
        raise ValueError(
            f"{fname}(): argument '{argname}' has unknown chunk sizes (shape {x.shape}); "
            "call x.compute_chunk_sizes() first")


def _wrap(x, chunks):
    """x as a dask Array: dask arrays as they are, ndarrays with these chunks."""
    if isinstance(x, da.Array):
        return x
    if x.size == 0:
        # Dask's "auto" sizing divides by the block size: an empty array is
        # one (empty) block along every dimension that is not matched.
        chunks = tuple(-1 if c == "auto" else c for c in chunks)
    return da.from_array(x, chunks=chunks)


def _result_dtype(fname, a_dtype, b_dtype, out_dtype):
    """The in-memory function's result dtype, found by a 1x1x1 call.

    This also raises fastbmm's own dtype errors (unsupported dtypes, mixed
    dtypes, a refused out_dtype=) with its exact messages.
    """
    func = getattr(_fastbmm, fname, None) or _fastbmm.bmm
    x = np.zeros((1, 1, 1), a_dtype)
    y = np.zeros((1, 1, 1), b_dtype)
    if out_dtype is None:
        return func(x, y).dtype
    try:
        return func(x, y, out_dtype=out_dtype).dtype
    except TypeError as exc:
        if "out_dtype" in str(exc) and "keyword" in str(exc):
            raise TypeError(
                f"out_dtype= needs a fastbmm whose {fname}() takes out_dtype=; "
                f"this one ({_fastbmm.__version__}) does not") from exc
        raise


def _plan(dtype, res_dtype, multi_k):
    """(upcast, accumulation dtype) for the block calls and partial sums."""
    if np.dtype(dtype).name in _STAGED and (multi_k or res_dtype == _F32):
        # float16 (bfloat16) operands: products and partial sums in float32, rounded
        # once at the end (or kept float32 for out_dtype=float32).
        return _F32, _F32
    return None, np.dtype(res_dtype)


def _contract(prefix, func, a, a_ind, b, b_ind, batch_ind, row, inner, col, upcast, acc):
    """Blockwise products over the inner chunks, summed if there are several."""
    nk = len(a.chunks[a_ind.index(inner)])
    name = f"{prefix}-{tokenize(func, a, a_ind, b, b_ind, upcast, acc)}"
    if nk <= 1:
        out_ind = batch_ind + (row, col)
        return da.blockwise(
            partial(func, upcast=upcast), out_ind, a, a_ind, b, b_ind, name=name,
            dtype=acc, concatenate=False, meta=np.empty((0,) * len(out_ind), acc))
    out_ind = batch_ind + (row, inner, col)
    partials = da.blockwise(
        partial(func, upcast=upcast, partial_axis=True), out_ind, a, a_ind, b, b_ind,
        name=name + "-partial",
        adjust_chunks={inner: 1}, dtype=acc, concatenate=False,
        meta=np.empty((0,) * len(out_ind), acc))
    axis = len(batch_ind) + 1
    return da.reduction(
        partials, _sum_partials, _sum_partials, combine=_sum_partials, axis=axis,
        dtype=acc, concatenate=False, meta=np.empty((0,) * (len(out_ind) - 1), acc),
        name=prefix + "-sum")


# --------------------------------------------------------------------------
# bmm


def bmm(input, mat2, *, out_dtype=None):
    """Batched matrix product of chunked arrays, block by block with fastbmm.

    For every batch index ``i``,

    .. math:: \\mathrm{out}_{i,r,c} = \\sum_{k=0}^{m-1}
              \\mathrm{input}_{i,r,k} \\, \\mathrm{mat2}_{i,k,c}

    computed as in :func:`fastbmm.bmm` (torch.bmm's contract). With the inner
    dimension split into chunks :math:`K_1, \\dots, K_q`, each output block is
    :math:`\\sum_j \\mathrm{input}[I, R, K_j] \\, \\mathrm{mat2}[I, K_j, C]`:
    one fastbmm call per pair of blocks, the partial products summed by a tree
    reduction (integers wrap in their dtype exactly as in one call; float16 is
    accumulated in float32 and rounded once).

    Parameters
    ----------
    input : dask.array.Array or ndarray, shape (b, n, m)
        Any chunking along any of the three dimensions. An ndarray (or an
        object with the array interface, or a CPU DLPack tensor) is wrapped with
        ``mat2``'s chunks along the shared dimensions (``auto`` chunks along the
        batch if both are ndarrays).
    mat2 : dask.array.Array or ndarray, shape (b, m, p)
        Same dtype as ``input`` (no promotion; see :func:`fastbmm.bmm` for the
        supported dtypes). Its batch and inner chunks are rechunked to match
        ``input``'s where they differ.
    out_dtype : dtype, optional
        As in :func:`fastbmm.bmm` (float16 operands with ``np.float32`` give a
        float32 result, never rounded to float16), where the installed
        fastbmm supports it.

    Returns
    -------
    dask.array.Array, shape (b, n, p)
        Lazy; chunked like ``input`` along the batch and rows and like
        ``mat2`` along the columns. Its dtype is the one fastbmm.bmm returns
        (the operands' dtype, in native byte order).

    Raises
    ------
    TypeError
        An argument is neither a dask array nor an ndarray (torch's message,
        as fastbmm.bmm's); a masked array; a dask array of non-NumPy blocks.
    ShapeError (RuntimeError, ValueError)
        ``"batch1 must be a 3D tensor"``, ``"batch2 must be a 3D tensor"``,
        ``"Expected size for first two dimensions of batch2 tensor to be:
        [b, m] but got: [b', m']."``: raised here, before any computation.
    DtypeError (RuntimeError, TypeError)
        ``"expected scalar type Float but found Double"`` and the like.
    UnsupportedDtypeError (NotImplementedError, TypeError)
        bool, unsigned 16/32/64-bit and NumPy-only dtypes.
    ValueError
        An operand with unknown chunk sizes (call ``compute_chunk_sizes()``).

    See Also
    --------
    fastbmm.bmm : the in-memory function applied to each pair of blocks.
    matmul : NumPy/torch.matmul semantics, with broadcast batch dimensions.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastbmm.dask
    >>> a = da.from_array(np.ones((4, 2, 6), np.float64), chunks=(2, 2, 3))
    >>> b = np.ones((4, 6, 5))
    >>> fastbmm.dask.bmm(a, b).compute()[0, 0]
    array([6., 6., 6., 6., 6.])
    """
    a = _operand(input, "bmm", "input", 1)
    b = _operand(mat2, "bmm", "mat2", 2)
    _validation.bmm_ranks(a.ndim, b.ndim)
    _known_shape(a, "bmm", "input")
    _known_shape(b, "bmm", "mat2")
    _validation.bmm_sizes(a.shape, b.shape)
    res_dtype = _result_dtype("bmm", a.dtype, b.dtype, out_dtype)

    if isinstance(a, da.Array):
        b = _wrap(b, (a.chunks[0], a.chunks[2], -1))
    elif isinstance(b, da.Array):
        a = _wrap(a, (b.chunks[0], -1, b.chunks[1]))
    else:
        a = _wrap(a, ("auto", -1, -1))
        b = _wrap(b, (a.chunks[0], -1, -1))
    if b.chunks[0] != a.chunks[0] or b.chunks[1] != a.chunks[2]:
        b = b.rechunk({0: a.chunks[0], 1: a.chunks[2]})

    multi_k = len(a.chunks[2]) > 1
    upcast, acc = _plan(a.dtype, res_dtype, multi_k)
    out = _contract("fastbmm-bmm", _bmm_blocks, a, ("b", "n", "m"), b, ("b", "m", "p"),
                    ("b",), "n", "m", "p", upcast, acc)
    if out.dtype != res_dtype:
        out = out.astype(res_dtype)
    return out


# --------------------------------------------------------------------------
# matmul


def _check_matmul(a, b):
    """Raise what fastbmm.matmul (and torch.matmul) raises for these operands.

    The checks are fastbmm.matmul's own, run on the shapes with empty
    stand-ins for the dtypes: nothing is computed. torch words some errors by
    an operand's layout: an ndarray's strides are its own, a dask array's are
    taken as C order (what its blocks are made in).
    """
    def strides(x):
        return None if isinstance(x, da.Array) else x.strides
    _validation.check_matmul(tuple(a.shape), tuple(b.shape), np.empty(0, a.dtype),
                             np.empty(0, b.dtype), strides_a=strides(a), strides_b=strides(b))


def matmul(input, other, *, out_dtype=None):
    """Matrix product with NumPy/torch.matmul semantics, block by block.

    For operands of rank >= 3, with batch dimensions broadcast
    (NumPy's rules: aligned from the right, size 1 stretches),

    .. math:: \\mathrm{out}[\\ldots, r, c] = \\sum_{k=0}^{m-1}
              \\mathrm{input}[\\ldots, r, k] \\, \\mathrm{other}[\\ldots, k, c]

    computed per block by :func:`fastbmm.matmul` (or, where the installed
    fastbmm has none, by :func:`fastbmm.bmm` on the blocks folded to 3-D), and
    summed over inner-dimension chunks as in :func:`bmm`. A 1-D ``input`` is
    treated as a row ``(1, m)`` and a 1-D ``other`` as a column ``(m, 1)``, the
    added dimension removed from the result; 2-D operands are single matrices.

    Parameters
    ----------
    input : dask.array.Array or ndarray, shape (..., n, m) or (m,)
    other : dask.array.Array or ndarray, shape (..., m, p) or (m,)
        Same dtype as ``input``. Batch dimensions (all but the last two) must
        be equal or 1 where they meet; a size-1 dimension is broadcast without
        copying. Any chunking; ``other``'s inner chunks, and its batch chunks
        where its sizes equal ``input``'s, are rechunked to match ``input``'s.
    out_dtype : dtype, optional
        As in :func:`fastbmm.bmm`.

    Returns
    -------
    dask.array.Array, shape (broadcast batch..., n, p)
        Lazy, of the operands' dtype (native byte order).

    Raises
    ------
    ShapeError, DtypeError, UnsupportedDtypeError, TypeError
        What torch.matmul raises for these shapes and dtypes (its texts differ
        by rank, e.g. ``"mat1 and mat2 shapes cannot be multiplied (2x3 and
        4x5)"``, ``"The size of tensor a (2) must match the size of tensor b
        (3) at non-singleton dimension 0"``), raised here, before computing.
    ValueError
        An operand with unknown chunk sizes.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastbmm.dask
    >>> a = da.ones((3, 1, 4, 5), chunks=(1, 1, 4, 5))
    >>> b = da.ones((2, 5, 6), chunks=(1, 5, 6))
    >>> fastbmm.dask.matmul(a, b).shape
    (3, 2, 4, 6)
    """
    a = _operand(input, "matmul", "input", 1)
    b = _operand(other, "matmul", "other", 2)
    _known_shape(a, "matmul", "input")
    _known_shape(b, "matmul", "other")
    _check_matmul(a, b)
    res_dtype = _result_dtype("matmul", a.dtype, b.dtype, out_dtype)

    # NumPy's promotions: 1-D operands become a row / a column, then both
    # are given the same rank with leading size-1 dimensions.
    a_vec, b_vec = a.ndim == 1, b.ndim == 1
    if a_vec:
        a = a[np.newaxis, :]
    if b_vec:
        b = b[:, np.newaxis]
    true_nd = max(a.ndim, b.ndim)
    nd = max(true_nd, 3)
    a = a[(np.newaxis,) * (nd - a.ndim)]
    b = b[(np.newaxis,) * (nd - b.ndim)]
    nbatch = nd - 2

    def chunks_like(x, other):
        # ndarray chunks: the dask operand's along shared dimensions.
        chunks = []
        for i in range(nbatch):
            if isinstance(other, da.Array) and other.shape[i] == x.shape[i]:
                chunks.append(other.chunks[i])
            elif x.shape[i] == 1:
                chunks.append(1)
            else:
                chunks.append("auto")
        return chunks

    if isinstance(a, da.Array) or not isinstance(b, da.Array):
        a = _wrap(a, tuple(chunks_like(a, b)) + (-1, -1))
        b = _wrap(b, tuple(chunks_like(b, a)) + (a.chunks[-1], -1))
    else:
        a = _wrap(a, tuple(chunks_like(a, b)) + (-1, b.chunks[-2]))

    want = {nd - 2: a.chunks[-1]}
    for i in range(nbatch):
        if a.shape[i] == b.shape[i] and a.shape[i] != 1 and a.chunks[i] != b.chunks[i]:
            want[i] = a.chunks[i]
    if b.chunks[-2] != a.chunks[-1] or len(want) > 1:
        b = b.rechunk(want)

    batch_ind = tuple(range(nbatch))
    row, inner, col = nbatch, nbatch + 1, nbatch + 2
    multi_k = len(a.chunks[-1]) > 1
    upcast, acc = _plan(a.dtype, res_dtype, multi_k)
    out = _contract("fastbmm-matmul", _matmul_blocks, a, batch_ind + (row, inner),
                    b, batch_ind + (inner, col), batch_ind, row, inner, col, upcast, acc)
    if out.dtype != res_dtype:
        out = out.astype(res_dtype)

    # Undo the promotions: the leading dims added to reach rank 3, then the
    # vector axes.
    out = out[(0,) * (nd - true_nd)]
    if a_vec:
        out = out[..., 0, :]
    if b_vec:
        out = out[..., 0]
    return out
