"""The four partial sums of a drawn row's dot product, in one vector register.

A row's dot product (:func:`fmsim.kernels.cpu.drawn_dot`) sums ``w[k] z[k]`` in four partial sums over
``k mod 4``, each from zero in the order of ``k``, combined ``(s0 + s1) + (s2 + s3)``: the order the CUDA
kernels' row sums keep too (:func:`fmsim.kernels.scalar.make_unit_preactivation`). numba compiles with LLVM's
SLP vectorizer off, and LLVM's loop vectorizer may not reorder floating-point sums, so the loop of four scalar
sums compiled to scalar multiplies and adds, one load of ``w`` and one of ``z`` per weight: at width 100, two
loads a cycle bound its time.

:func:`partial_sums` writes that loop in LLVM vector instructions: one ``<4 x double>`` (or ``<4 x float>``)
accumulator, whose lane ``j`` adds ``w[k] z[k]`` for ``k = j, j + 4, ...``, a multiply rounded then an add
rounded as the scalar loop does them (no fused multiply-add). So each lane is bitwise its scalar partial sum.
:func:`partial_sums_pair` does the same for two vectors against one row, loading the weights once
(:func:`fmsim.kernels.carry.drawn_dot_pair`).

CPU only: the CUDA kernels keep their scalar sums.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["partial_sums", "partial_sums_pair"]

#: Partial sums of a row's dot product (the vector lanes of the accumulator).
LANES = 4


def _vectors_of(w, zs) -> bool:
    arrays = (w, *zs)
    return (all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in arrays)
            and w.dtype in (types.float32, types.float64) and all(a.dtype == w.dtype for a in arrays))


def _partial_sums_codegen(n_vectors: int):
    """Code generator of the partial sums of one row ``w`` against ``n_vectors`` vectors."""

    def codegen(context, builder, signature, args):
        *arrays, m_v = args
        *array_types, m_t = signature.args
        fty = context.get_value_type(array_types[0].dtype)
        vty = ir.VectorType(fty, LANES)
        i32, i64 = ir.IntType(32), ir.IntType(64)
        align = context.get_abi_sizeof(fty)
        data = [context.make_array(t)(context, builder, v).data for t, v in zip(array_types, arrays)]
        steps = builder.udiv(context.cast(builder, m_v, m_t, types.int64), ir.Constant(i64, LANES))
        zero = ir.Constant(vty, [ir.Constant(fty, 0.0)] * LANES)
        slots = [cgutils.alloca_once_value(builder, zero) for _ in range(n_vectors)]
        with cgutils.for_range(builder, steps) as loop:
            k = builder.mul(loop.index, ir.Constant(i64, LANES))
            w, *zs = (builder.load(builder.bitcast(builder.gep(d, [k]), vty.as_pointer()), align=align)
                      for d in data)
            for slot, z in zip(slots, zs):
                builder.store(builder.fadd(builder.load(slot), builder.fmul(w, z)), slot)
        sums = []
        for slot in slots:
            acc = builder.load(slot)
            sums += [builder.extract_element(acc, ir.Constant(i32, j)) for j in range(LANES)]
        return context.make_tuple(builder, signature.return_type, sums)

    return codegen


@intrinsic
def partial_sums(typingctx, w, z, m):
    """``(s0, s1, s2, s3)``, ``s_j = sum_{k < m, k = j mod 4} w[k] z[k]``, each summed from zero in the order of
    ``k``, a rounded multiply then a rounded add per term.

    Parameters
    ----------
    w, z : ndarray, shape (>= m,), float32 or float64, C-contiguous
        The row's weights and the inputs, of one dtype (the sums' too).
    m : int
        A multiple of 4: the terms ``k < m`` (the caller adds a row's last ``n mod 4``).

    Returns
    -------
    tuple of 4 floats
    """
    if not (_vectors_of(w, (z,)) and isinstance(m, types.Integer)):
        return None
    return types.UniTuple(w.dtype, LANES)(w, z, m), _partial_sums_codegen(1)


@intrinsic
def partial_sums_pair(typingctx, w, a, b, m):
    """The :func:`partial_sums` of the row ``w`` against ``a`` and against ``b``, ``(a0, .., a3, b0, .., b3)``,
    with one load of each weight.

    Parameters
    ----------
    w, a, b : ndarray, shape (>= m,), float32 or float64, C-contiguous
    m : int
        A multiple of 4.

    Returns
    -------
    tuple of 8 floats
    """
    if not (_vectors_of(w, (a, b)) and isinstance(m, types.Integer)):
        return None
    return types.UniTuple(w.dtype, 2 * LANES)(w, a, b, m), _partial_sums_codegen(2)
