"""Exception classes, and every message text of fastbmm's argument errors.

torch.bmm raises ``RuntimeError`` for both shape and dtype problems, while NumPy
code habitually catches ``ValueError`` (shapes) and ``TypeError`` (dtypes). Each
class here subclasses both, so either kind of caller catches fastbmm's errors the
way it already does.

The message builders run on the error path only: a successful call builds no
message. torch's dtype names come from the dtype registry (fastbmm._dtypes).
The runtime's own errors (thread counts, kernel variants, scratch) are worded
in ``_runtime``.
"""

import numpy as np

from ._dtypes import EXTRA_DTYPES_INSTALL, OPERAND_ROWS, SUPPORTED_NAMES

__all__ = ["ShapeError", "DtypeError", "UnsupportedDtypeError"]


class ShapeError(RuntimeError, ValueError):
    """Operands (or out=) whose shapes torch.bmm would refuse."""


class DtypeError(RuntimeError, TypeError):
    """Operands (or out=) whose dtypes do not match."""


class UnsupportedDtypeError(NotImplementedError, TypeError):
    """A dtype that torch.bmm does not implement, or that torch has no tensor for."""


# torch's dtypes that fastbmm refuses with torch's own "not implemented"
# error (torch has tensors of them, but no bmm kernel): their names in
# torch's messages. The dtypes fastbmm computes are dtypes.def's rows.
_REFUSED_TORCH_DTYPES = (
    # NumPy dtype, torch ScalarType name, torch's C++ type name
    ("bool", "Bool", "bool"),
    ("uint16", "UInt16", "short unsigned int"),
    ("uint32", "UInt32", "unsigned int"),
    ("uint64", "UInt64", "long unsigned int"),
)

# torch's scalar type names ("expected scalar type Float but found Double"),
# and the C++ type names torch prints for a wrong out= dtype ("Expected out
# tensor to have dtype float, but got double instead"), by dtype name
# (byte order is a storage detail: '>f4' is still torch's Float; and the
# names need no ml_dtypes import for bfloat16).
TORCH_SCALAR_NAMES = {r.numpy_in: r.torch for r in OPERAND_ROWS}
TORCH_CPP_NAMES = {r.numpy_in: r.torch_cpp for r in OPERAND_ROWS}
for _name, _torch, _cpp in _REFUSED_TORCH_DTYPES:
    TORCH_SCALAR_NAMES[_name] = _torch
    TORCH_CPP_NAMES[_name] = _cpp
del _name, _torch, _cpp


def _name(dtype):
    """The key of the name tables: the dtype's name, whatever its byte order."""
    return np.dtype(dtype).name


def scalar_name(dtype):
    """torch's name for ``dtype``, or NumPy's when torch has no such tensor type."""
    return TORCH_SCALAR_NAMES.get(_name(dtype), str(dtype))


def cpp_name(dtype):
    return TORCH_CPP_NAMES.get(_name(dtype), str(dtype))


def not_an_array(fname, argname, position, obj):
    return TypeError(
        f"{fname}(): argument '{argname}' (position {position}) must be ndarray, "
        f"not {type(obj).__name__}"
    )


def not_3d(which):
    return ShapeError(f"{which} must be a 3D tensor")


def batch2_size(a_shape, b_shape):
    return ShapeError(
        "Expected size for first two dimensions of batch2 tensor to be: "
        f"[{a_shape[0]}, {a_shape[2]}] but got: [{b_shape[0]}, {b_shape[1]}]."
    )


def dtype_mismatch(expected, found):
    return DtypeError(
        f"expected scalar type {scalar_name(expected)} but found {scalar_name(found)}"
    )


_SUPPORTED = ", ".join(SUPPORTED_NAMES)


def unsupported_dtype(fname, dtype):
    dtype = np.dtype(dtype)
    if _name(dtype) in TORCH_SCALAR_NAMES:
        # A dtype torch has a tensor for but no bmm kernel (bool, uint16/32/64).
        return UnsupportedDtypeError(
            f'"{fname}" not implemented for \'{scalar_name(dtype)}\''
        )
    return UnsupportedDtypeError(
        f"{fname}(): dtype {dtype!s} is not supported (torch has no tensor type for it); "
        f"supported: {_SUPPORTED}"
    )


def out_dtype(expected, got):
    return DtypeError(
        f"Expected out tensor to have dtype {cpp_name(expected)}, "
        f"but got {cpp_name(got)} instead"
    )


def out_shape(expected, got):
    return ShapeError(
        f"Expected out to have shape {tuple(expected)} but got {tuple(got)}: "
        "torch would resize out=, but a NumPy array cannot be resized in place"
    )


def not_on_cpu(fname, argname, device):
    """``device``: a DLPack (type, id) pair, or a device's name."""
    if isinstance(device, str):
        name = device
    else:
        kinds = {2: "cuda", 3: "cuda (pinned host)", 4: "opencl", 7: "vulkan", 8: "metal",
                 10: "rocm", 13: "cuda (managed)", 14: "oneapi"}
        kind = kinds.get(int(device[0]), f"DLPack device type {int(device[0])}")
        name = f"{kind}:{int(device[1])}"
    return TypeError(
        f"{fname}(): argument '{argname}' lives on {name}; fastbmm computes on "
        "the CPU: move it there first (e.g. tensor.cpu())")


def masked_array(fname, argname):
    return TypeError(
        f"{fname}(): argument '{argname}' is a masked array; fastbmm ignores no mask "
        "silently: pass x.filled(fill_value) or np.asarray(x) explicitly")


def dask_array(fname, argname, position, obj):
    chunked = (f"fastbmm.dask.{fname}(...) multiplies it block by block"
               if fname in ("bmm", "matmul") else "fastbmm.dask multiplies chunked arrays")
    return TypeError(
        f"{fname}(): argument '{argname}' (position {position}) is a {type(obj).__module__}."
        f"{type(obj).__name__}, a lazy chunked array; fastbmm.{fname} takes in-memory arrays: "
        f"{chunked} (or pass x.compute())")


def requires_grad(fname, argname):
    return TypeError(
        f"{fname}(): argument '{argname}' requires grad; fastbmm returns ndarrays, outside "
        "torch's autograd: pass tensor.detach() (or use torch's own function)")


# torch dtypes NumPy has an equal of (DLPack hands them over; bool and the wide
# unsigned types get torch's own "not implemented" errors later).
_TORCH_DTYPES_IN_NUMPY = frozenset(str(d) for d in TORCH_SCALAR_NAMES)

# torch's ScalarType names where they are not the dtype's name capitalised.
_TORCH_IRREGULAR_NAMES = {
    "float16": "Half", "float32": "Float", "float64": "Double", "bfloat16": "BFloat16",
    "complex32": "ComplexHalf", "complex64": "ComplexFloat", "complex128": "ComplexDouble",
    "int8": "Char", "uint8": "Byte", "int16": "Short", "int32": "Int", "int64": "Long",
}


def torch_dtype_name(dtype):
    """torch's ScalarType name of a ``torch.dtype``: 'BFloat16', 'Float8_e4m3fn', 'QUInt8', ..."""
    s = str(dtype)[len("torch."):]
    if s in _TORCH_IRREGULAR_NAMES:
        return _TORCH_IRREGULAR_NAMES[s]
    for prefix, name in (("quint", "QUInt"), ("qint", "QInt"), ("uint", "UInt")):
        if s.startswith(prefix):
            return name + s[len(prefix):]
    return s[0].upper() + s[1:]


def torch_dtype_without_numpy(dtype):
    """torch's name for ``dtype`` if it is a torch dtype NumPy has no equal of, else None.

    Recognised by its type alone, without importing torch.
    """
    if type(dtype).__module__ != "torch" or type(dtype).__name__ != "dtype":
        return None
    if str(dtype)[len("torch."):] in _TORCH_DTYPES_IN_NUMPY:
        return None
    return torch_dtype_name(dtype)


def needs_extra_dtypes(fname, argname, torch_name):
    """A dtype fastbmm computes but NumPy holds only with ml_dtypes, not installed."""
    return UnsupportedDtypeError(
        f"{fname}(): argument '{argname}' has torch dtype {torch_name}, which NumPy holds only "
        f"with the ml_dtypes package: {EXTRA_DTYPES_INSTALL}")


def unsupported_torch_dtype(fname, argname, dtype):
    return UnsupportedDtypeError(
        f"{fname}(): argument '{argname}' has torch dtype {torch_dtype_without_numpy(dtype)} "
        f"({dtype}), which NumPy cannot hold and fastbmm does not support; supported: "
        f"{_SUPPORTED}: convert it first (e.g. tensor.float())")


def bad_out_dtype(fname, operand_dtype, out_dtype):
    return DtypeError(
        f"{fname}(): out_dtype={np.dtype(out_dtype)} is not supported for {np.dtype(operand_dtype)} "
        "operands: use the operands' own dtype, or float32 for float16 operands")


def input_dtypes(fname, d_input, d_batch1, d_batch2):
    return DtypeError(
        f"Input dtypes must be the same, got: input {cpp_name(d_input)}, "
        f"batch1: {cpp_name(d_batch1)}, batch2: {cpp_name(d_batch2)}")


# The dtypes whose CPU tensors keep a legacy type name in torch's messages
# (torch.FloatTensor); every other one is printed as CPU<Name>Type.
_LEGACY_TENSOR_TYPES = frozenset(("Half", "Float", "Double", "Char", "Byte", "Short", "Int", "Long"))


def tensor_type_name(dtype):
    """How torch names a CPU tensor of ``dtype`` in expand()'s message."""
    name = scalar_name(np.dtype(dtype))
    if name in _LEGACY_TENSOR_TYPES:
        return f"torch.{name}Tensor"
    if _name(dtype) in TORCH_SCALAR_NAMES:
        return f"CPU{name}Type"
    return name                         # no torch tensor type: NumPy's name


def expand_rank(dtype, shape, target):
    return ShapeError(
        f"expand({tensor_type_name(dtype)}{{[{', '.join(map(str, shape))}]}}, "
        f"size=[{', '.join(map(str, target))}]): the number of sizes provided ({len(target)}) "
        f"must be greater or equal to the number of dimensions in the tensor ({len(shape)})")


def expand_size(want, have, dim, target, shape):
    return ShapeError(
        f"The expanded size of the tensor ({want}) must match the existing size ({have}) at "
        f"non-singleton dimension {dim}.  Target sizes: [{', '.join(map(str, target))}].  "
        f"Tensor sizes: [{', '.join(map(str, shape))}]")


# The C++ types torch converts alpha/beta to (float16's are held as float).
_SCALAR_CPP_NAMES = {r.numpy_in: r.scalar_cpp for r in OPERAND_ROWS}


def scalar_overflow(dtype):
    name = _SCALAR_CPP_NAMES.get(_name(dtype), str(dtype))
    return DtypeError(f"value cannot be converted to type {name} without overflow")


def scalar_not_a_number(value):
    return TypeError(f"baddbmm(): alpha and beta must be numbers, not {type(value).__name__}")


def dlpack_unreadable(fname, argname, error):
    return TypeError(f"{fname}(): argument '{argname}' exports DLPack memory that NumPy "
                     f"cannot read ({type(error).__name__}: {error})")


# --------------------------------------------------------------------------
# out= (fastbmm's own cases: torch resizes out=, and has no read-only or
# self-overlapping tensors)


def out_not_an_array(fname, out):
    return TypeError(f"{fname}(): argument 'out' must be ndarray, not {type(out).__name__}")


def out_read_only():
    return ValueError("out= is read-only")


def out_self_overlapping(strides):
    return ValueError(
        "out= has overlapping elements (a zero or overlapping stride, as from "
        f"np.broadcast_to or as_strided: strides {strides}); results written "
        "through it would clobber each other")


# --------------------------------------------------------------------------
# matmul: torch.matmul hands its operands to dot, mv (or mv on other's
# transpose: "mv_t"), mm or bmm, and each words its errors its own way


def matmul_0d(rank_a, rank_b):
    return ShapeError(
        f"both arguments to matmul need to be at least 1D, but they are {rank_a}D and {rank_b}D")


def broadcast_batch(size_a, size_b, dim):
    return ShapeError(
        f"The size of tensor a ({size_a}) must match the size of tensor b ({size_b}) "
        f"at non-singleton dimension {dim}")


def matmul_size(route, sa, sb, a2, b2, batch):
    """Sizes that do not multiply. ``sa``, ``sb``: the shapes; ``a2``, ``b2``:
    after 1-D promotion (a row, a column); ``batch``: the broadcast batch."""
    if route == "dot":
        return ShapeError(
            f"inconsistent tensor size, expected tensor [{sa[0]}] and src [{sb[0]}] to have the "
            f"same number of elements, but got {sa[0]} and {sb[0]} elements respectively")
    if route == "mv":
        rows = int(np.prod(a2[:-1]))
        return ShapeError(f"size mismatch, got input ({rows}), mat ({rows}x{a2[-1]}), vec ({sb[0]})")
    if route == "mv_t":
        # other.mT folded: (batch..., p) rows of other's inner size, times input
        rows = int(np.prod(sb[:-2])) * sb[-1]
        return ShapeError(f"size mismatch, got input ({rows}), mat ({rows}x{sb[-2]}), vec ({sa[0]})")
    if route == "mm":
        rows = int(np.prod(a2[:-1]))
        return ShapeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{a2[-1]} and {b2[-2]}x{b2[-1]})")
    nb = int(np.prod(batch))
    return ShapeError(
        "Expected size for first two dimensions of batch2 tensor to be: "
        f"[{nb}, {a2[-1]}] but got: [{nb}, {b2[-2]}].")


def _addmv_dtypes(result, mat, vec):
    return DtypeError(
        "addmv input tensors must have the same dtype, but got "
        f"{scalar_name(result)}, {scalar_name(mat)}, and {scalar_name(vec)}")


def matmul_out_dtype(route, result, da, db, dout):
    """out= of another dtype than ``result``, the dtype the route makes."""
    if route == "dot":
        return DtypeError(
            f"result dtype {scalar_name(dout)} does not match input dtype {scalar_name(da)}")
    if route in ("mv", "mv_t"):
        mat, vec = (db, da) if route == "mv_t" else (da, db)
        return _addmv_dtypes(dout, mat, vec)
    return out_dtype(result, dout)


def matmul_dtypes(route, da, db, dout=None):
    """Operands of different dtypes; ``dout``: out='s dtype (mv names it first), or None."""
    if route == "dot":
        return DtypeError(
            "dot : expected both vectors to have same dtype, but found "
            f"{scalar_name(da)} and {scalar_name(db)}")
    if route in ("mv", "mv_t"):
        # "got result, matrix, vector": mv's result is out=, else new of the vector's dtype
        mat, vec = (da, db) if route == "mv" else (db, da)
        return _addmv_dtypes(vec if dout is None else dout, mat, vec)
    if route == "mm":
        return DtypeError(
            f"expected m1 and m2 to have the same dtype, but got: {cpp_name(da)} != {cpp_name(db)}")
    return dtype_mismatch(da, db)


# the kernel whose "not implemented for" message each route gives
_MATMUL_KERNELS = {"dot": "dot", "mv": "addmv_impl_cpu", "mv_t": "addmv_impl_cpu",
                   "mm": "addmm_impl_cpu_", "bmm": "bmm"}


def matmul_unsupported_dtype(route, dtype):
    return unsupported_dtype(_MATMUL_KERNELS[route], dtype)


def too_many_batch_dims(limit):
    return ValueError(f"fastbmm: more than {limit} batch dimensions")
