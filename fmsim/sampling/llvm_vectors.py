"""Two builders of LLVM vector IR shared by fmsim's ``@intrinsic`` code generators (the conv block,
:mod:`fmsim.kernels.simd`; the ziggurat's first step, :mod:`fmsim.sampling.ziggurat_lanes`) and the
experiments in ``bench/``."""

from __future__ import annotations

from llvmlite import ir

__all__ = ["splat", "undef"]


def undef(ty: ir.Type) -> ir.Constant:
    """The undefined value of type ``ty``."""
    return ir.Constant(ty, ir.Undefined)


def splat(builder: ir.IRBuilder, x: ir.Value, vector_type: ir.VectorType) -> ir.Value:
    """``vector_type`` with ``x`` in every lane: an insert into lane 0, then a shuffle by the all-zero mask."""
    i32 = ir.IntType(32)
    zeros = ir.Constant(ir.VectorType(i32, vector_type.count), [0] * vector_type.count)
    return builder.shuffle_vector(builder.insert_element(undef(vector_type), x, ir.Constant(i32, 0)),
                                  undef(vector_type), zeros)
