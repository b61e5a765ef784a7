"""Two builders of LLVM vector IR shared by fmsim's ``@intrinsic`` code generators (the conv block,
:mod:`fmsim.kernels.simd`; the ziggurat's first step, :mod:`fmsim.sampling.ziggurat_lanes`) and the
experiments in ``bench/``, and the intrinsic that hands an array's data to them as a pointer."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["data_pointer", "splat", "undef"]


def undef(ty: ir.Type) -> ir.Constant:
    """The undefined value of type ``ty``."""
    return ir.Constant(ty, ir.Undefined)


def splat(builder: ir.IRBuilder, x: ir.Value, vector_type: ir.VectorType) -> ir.Value:
    """``vector_type`` with ``x`` in every lane: an insert into lane 0, then a shuffle by the all-zero mask."""
    i32 = ir.IntType(32)
    zeros = ir.Constant(ir.VectorType(i32, vector_type.count), [0] * vector_type.count)
    return builder.shuffle_vector(builder.insert_element(undef(vector_type), x, ir.Constant(i32, 0)),
                                  undef(vector_type), zeros)


@intrinsic
def data_pointer(typingctx, array):
    """The address of ``array[0]`` (a 1-d C-contiguous array), as a ``CPointer`` of its dtype. A pointer counts
    no references: the array must outlive its uses. A called function that takes arrays takes and gives back
    a reference to each, by calls LLVM cannot remove (atomic ones unless the array is a borrowed view,
    :mod:`fmsim.kernels.borrowed`); one that takes pointers makes none."""
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C"):
        return None
    sig = types.CPointer(array.dtype)(array)

    def codegen(context, builder, signature, args):
        return context.make_array(signature.args[0])(context, builder, args[0]).data

    return sig, codegen
