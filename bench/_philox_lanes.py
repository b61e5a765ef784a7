"""An experiment kept for ``bench_row.py``: Philox4x32-10 on 8 consecutive blocks in LLVM vector lanes.

fmsim keeps :func:`fmsim.laws.row_words`, a loop of the scalar block function
that LLVM vectorizes itself, 4 blocks per ``ymm`` register (``bench_fc``'s SIMD
check counts its ``vpmuludq``). Here the rounds are written directly as LLVM
``<8 x i64>`` instructions: two ``ymm`` registers per counter word, two
independent chains for the multiplier (the operands are masked to 32 bits, so
the backend emits ``vpmuludq`` and drops the masks). The words are bitwise the
scalar function's (``bench_row.py`` checks that before timing). The module
exists so that the measurement behind keeping the 4-lane loop can be repeated.
"""

from __future__ import annotations

import numpy as np
from fmsim.rng import philox4x32
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from fmsim.sampling.llvm_vectors import splat

LANES = 8
_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85


@intrinsic
def _philox_lanes(typingctx, first_block, c1, c2, c3, k0, k1, words):
    """``words[4 b : 4 b + 4]`` for blocks ``b = first_block .. first_block + LANES - 1``."""
    if not (isinstance(words, types.Array) and words.dtype == types.uint32 and words.ndim == 1):
        return None
    u64 = types.uint64
    sig = types.void(u64, u64, u64, u64, u64, u64, words)

    def codegen(context, builder, signature, args):
        first, c1v, c2v, c3v, k0v, k1v, arr = args
        i32, i64 = ir.IntType(32), ir.IntType(64)
        vec = ir.VectorType(i64, LANES)

        def lanes(x):
            return splat(builder, x, vec)

        def const(x):
            return ir.Constant(vec, [x] * LANES)

        mask, shift = const(0xFFFFFFFF), const(32)
        x0 = builder.add(lanes(first), ir.Constant(vec, list(range(LANES))))
        x1, x2, x3 = lanes(c1v), lanes(c2v), lanes(c3v)
        key0, key1 = k0v, k1v
        for _ in range(10):
            p0 = builder.mul(builder.and_(x0, mask), const(_M0))
            p1 = builder.mul(builder.and_(x2, mask), const(_M1))
            x0, x1, x2, x3 = (builder.xor(builder.xor(builder.lshr(p1, shift), x1), lanes(key0)),
                              builder.and_(p1, mask),
                              builder.xor(builder.xor(builder.lshr(p0, shift), x3), lanes(key1)),
                              builder.and_(p0, mask))
            key0 = builder.and_(builder.add(key0, ir.Constant(i64, _W0)), ir.Constant(i64, 0xFFFFFFFF))
            key1 = builder.and_(builder.add(key1, ir.Constant(i64, _W1)), ir.Constant(i64, 0xFFFFFFFF))
        t = [builder.trunc(x, ir.VectorType(i32, LANES)) for x in (x0, x1, x2, x3)]
        pairs = ir.Constant(ir.VectorType(i32, 2 * LANES), [i for j in range(LANES) for i in (j, j + LANES)])
        order = [i for j in range(LANES) for i in (2 * j, 2 * j + 1, 2 * (LANES + j), 2 * (LANES + j) + 1)]
        quads = ir.Constant(ir.VectorType(i32, 4 * LANES), order)
        out = builder.shuffle_vector(builder.shuffle_vector(t[0], t[1], pairs),
                                     builder.shuffle_vector(t[2], t[3], pairs), quads)
        data = context.make_array(signature.args[6])(context, builder, arr).data
        dst = builder.gep(data, [builder.mul(first, ir.Constant(i64, 4))])
        builder.store(out, builder.bitcast(dst, ir.VectorType(i32, 4 * LANES).as_pointer())).align = 4
        return context.get_dummy_value()

    return sig, codegen


@njit(inline="always")
def row_words_lanes(n_blocks, c1, c2, c3, k0, k1, words):
    """As :func:`fmsim.laws.row_words`: whole groups of 8 blocks in vector lanes, the rest scalar."""
    n_vec = n_blocks - n_blocks % LANES
    for b in range(0, n_vec, LANES):
        _philox_lanes(np.uint64(b), c1, c2, c3, k0, k1, words)
    for b in range(n_vec, n_blocks):
        w0, w1, w2, w3 = philox4x32(np.uint64(b), c1, c2, c3, k0, k1)
        words[4 * b] = np.uint32(w0)
        words[4 * b + 1] = np.uint32(w1)
        words[4 * b + 2] = np.uint32(w2)
        words[4 * b + 3] = np.uint32(w3)
