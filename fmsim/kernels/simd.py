"""The register-blocked micro-kernel of the CPU convolution, written in LLVM vector instructions.

numba compiles with LLVM's SLP vectorizer off and keeps its local arrays in memory, so a loop nest cannot hold
a block of accumulators in vector registers. :func:`conv_block` is an ``@intrinsic``: it emits the block's loop
itself, with ``CONV_BLOCK x 2`` vector accumulators that LLVM keeps in registers, and it is inlined into the
caller like any numba function. Per (input channel, tap) it loads 2 vectors of inputs (adjacent, or a stride
apart: in two rows of an image) and ``CONV_BLOCK`` weights, and makes ``2 CONV_BLOCK`` vector fused
multiply-adds; no accumulator touches memory until the block ends.

The vectors are 256-bit (:func:`conv_block_256`) or 512-bit (:func:`conv_block_512`); :func:`conv_block` is
the one :data:`VECTOR_BITS` chooses: 512-bit where numba compiles with AVX-512, else 256-bit. (LLVM's loop
vectorizer may prefer 256-bit vectors on AVX-512 machines, but it keeps vectors that the IR writes out at 512
bits.) On an AVX-512 AMD EPYC (Zen 4: two 256-bit FMA pipes, 16 float32 lanes per cycle in ``ymm`` and in
``zmm`` registers alike, ``bench/fma_peak.c``), the 512-bit block ran the 32-channel 32x32 float32 conv at 74%
of the FMA peak against 65%, with half the instructions per multiply-add. Cores with two 512-bit FMA units
(many Intel Xeons) have twice the lanes in ``zmm`` registers.

Each lane is one position and sums its taps in the order of ``offsets``, one ``llvm.fma`` after another from
zero: bitwise the scalar ``fma`` chain of :func:`fmsim.kernels.scalar.conv_channel`, whatever the block shape
or the vector width. (Any x86-64 CPU runs both widths: LLVM splits a vector wider than the machine's.)
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ..sampling.laws import numba_compiles_avx512
from ..sampling.llvm_vectors import splat

__all__ = ["CONV_BLOCK", "VECTOR_BITS", "block_positions", "conv_block", "conv_block_256", "conv_block_512"]

_AVX512 = numba_compiles_avx512()
#: Output channels per block. ``2 CONV_BLOCK`` accumulators, 2 input vectors and a broadcast weight must fit
#: the vector registers: 32 with AVX-512 (8 channels), 16 with AVX2 (6 channels).
CONV_BLOCK = 8 if _AVX512 else 6
#: Vectors of positions per block.
VECTORS = 2
#: Vector lanes per precision for each vector width.
LANES = {256: {types.float32: 8, types.float64: 4}, 512: {types.float32: 16, types.float64: 8}}
#: Width of :func:`conv_block`'s vectors, in bits: 512 where numba compiles with AVX-512, else 256.
VECTOR_BITS = 512 if _AVX512 else 256


def block_positions(x):
    """Positions per :func:`conv_block` for activations like ``x`` (an array or a scalar): ``2 x`` the lanes of
    a :data:`VECTOR_BITS` vector, 16 in float32 and 8 in float64 with 256-bit vectors, 32 and 16 with 512."""
    raise NotImplementedError("a numba kernel helper: see its overload")


@overload(block_positions, inline="always")
def _block_positions_jit(x):
    n = VECTORS * LANES[VECTOR_BITS][getattr(x, "dtype", x)]
    return lambda x: n


def _conv_block_intrinsic(bits: int):
    """The :func:`conv_block` intrinsic with ``bits``-wide vectors."""
    lanes_by_dtype = LANES[bits]

    def conv_block(typingctx, zpad, base, offsets, count, weights, acc, col, stride):
        """``acc[k, col + q] = sum_i weights[i CONV_BLOCK + k] zpad[base + q + offsets[i]]`` for ``k < CONV_BLOCK``
        and ``q = v stride + p``, ``v < 2`` and ``p <`` the lanes of a vector (``block_positions / 2``),
        ``i < count``, summed in the order of ``i`` by fused multiply-adds from zero. ``stride`` is the lanes for
        one run of ``block_positions`` positions, the padded row width for two rows' runs.

        ``zpad`` : 1D, C-contiguous, float32 or float64; ``offsets`` : 1D int64; ``weights`` : 1D, the dtype of
        ``zpad``, ``(count, CONV_BLOCK)`` flattened; ``acc`` : 2D, C-contiguous,
        ``(>= CONV_BLOCK, >= col + positions)``.
        Bounds are the caller's to keep: nothing is checked.
        """
        dtype = zpad.dtype
        if dtype not in lanes_by_dtype or weights.dtype != dtype or acc.dtype != dtype or offsets.dtype != types.int64:
            return None
        lanes = lanes_by_dtype[dtype]
        sig = types.void(zpad, base, offsets, count, weights, acc, col, stride)

        def codegen(context, builder, signature, args):
            zpad_v, base_v, offs_v, count_v, w_v, acc_v, col_v, stride_v = args
            zt, _, ot, _, wt, at, _, _ = signature.args
            fty = context.get_value_type(dtype)
            vty = ir.VectorType(fty, lanes)
            i64 = ir.IntType(64)
            align = context.get_abi_sizeof(fty)
            zdata = context.make_array(zt)(context, builder, zpad_v).data
            odata = context.make_array(ot)(context, builder, offs_v).data
            wdata = context.make_array(wt)(context, builder, w_v).data
            aarr = context.make_array(at)(context, builder, acc_v)
            adata = aarr.data
            row = cgutils.unpack_tuple(builder, aarr.shape, 2)[1]
            base_i = context.cast(builder, base_v, signature.args[1], types.int64)
            count_i = context.cast(builder, count_v, signature.args[3], types.int64)
            col_i = context.cast(builder, col_v, signature.args[6], types.int64)
            stride_i = context.cast(builder, stride_v, signature.args[7], types.int64)
            steps = [builder.mul(stride_i, ir.Constant(i64, v)) for v in range(VECTORS)]

            slots = [[cgutils.alloca_once_value(builder, ir.Constant(vty, None)) for _ in range(VECTORS)]
                     for _ in range(CONV_BLOCK)]
            zero_v = ir.Constant(vty, [ir.Constant(fty, 0.0)] * lanes)
            for per_k in slots:
                for s in per_k:
                    builder.store(zero_v, s)
            lane_bits = 32 if dtype == types.float32 else 64
            vfma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                                  f"llvm.fma.v{lanes}f{lane_bits}")
            with cgutils.for_range(builder, count_i) as loop:
                i = loop.index
                off = builder.load(builder.gep(odata, [i]))
                src = builder.gep(zdata, [builder.add(base_i, off)])
                xs = [builder.load(builder.bitcast(builder.gep(src, [steps[v]]), vty.as_pointer()), align=align)
                      for v in range(VECTORS)]
                wrow = builder.gep(wdata, [builder.mul(i, ir.Constant(i64, CONV_BLOCK))])
                for k in range(CONV_BLOCK):
                    wk = builder.load(builder.gep(wrow, [ir.Constant(i64, k)]))
                    wv = splat(builder, wk, vty)
                    for v in range(VECTORS):
                        builder.store(builder.call(vfma, [wv, xs[v], builder.load(slots[k][v])]), slots[k][v])
            for k in range(CONV_BLOCK):
                dst = builder.gep(adata, [builder.add(builder.mul(ir.Constant(i64, k), row), col_i)])
                for v in range(VECTORS):
                    ptr = builder.bitcast(builder.gep(dst, [steps[v]]), vty.as_pointer())
                    builder.store(builder.load(slots[k][v]), ptr, align=align)
            return context.get_dummy_value()

        return sig, codegen

    conv_block.__name__ = conv_block.__qualname__ = f"conv_block_{bits}"
    return intrinsic(conv_block)


#: :func:`conv_block` with 256-bit vectors: 16 float32 or 8 float64 positions per block.
conv_block_256 = _conv_block_intrinsic(256)
#: :func:`conv_block` with 512-bit vectors: 32 float32 or 16 float64 positions per block.
conv_block_512 = _conv_block_intrinsic(512)
#: The block of this machine's :data:`VECTOR_BITS`, ``block_positions`` positions wide.
conv_block = conv_block_512 if VECTOR_BITS == 512 else conv_block_256
