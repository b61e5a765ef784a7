"""An experiment kept for ``bench_row.py``: the ziggurat's first step in 8 vector lanes, with gathers.

fmsim's scalar first step (``fmsim.laws._ziggurat_fast_row_scalar``, the one AVX2 machines run): per
weight, a 64-bit word from two Philox words, its low 9 bits index the signed width ``wn9`` and the threshold
``kn9`` (tables of 512 entries), the candidate is ``float(rabs) * wn9[i] * scale``, and the rejected weights
are listed for the slow path. Here 8 weights are done in LLVM ``<8 x i64>`` / ``<8 x double>`` instructions:
one load of 16 words, two shuffles, the two table lookups as ``llvm.masked.gather`` (``vgatherqpd`` and
``vpgatherqq`` on AVX-512, two of each on AVX2), and an 8-bit mask of the rejected lanes, whose set bits are
listed. The weights and the list are bitwise the scalar loop's (``bench_row.py`` checks that before timing).
A 256-layer table cannot live in registers (a ``zmm`` permute covers 16 entries). fmsim's own vector step
(``fmsim.sampling.ziggurat_lanes``, AVX-512) reads the tables by scalar 16-byte loads put together into
vectors instead; this module keeps the gathers' measurement repeatable.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from fmsim import laws
from fmsim.sampling.llvm_vectors import splat, undef

LANES = 8
_MASK52 = (1 << 52) - 1


@intrinsic
def _first_step_lanes(typingctx, words, k, kn9, wn9, scale, out):
    """``out[k + l] = float(rabs_l) * wn9[i_l] * scale`` for ``l < LANES`` (the 64-bit words ``2k .. 2k + 15``);
    returns the mask of the lanes with ``rabs_l >= kn9[i_l]`` (bit ``l``)."""
    if not (isinstance(words, types.Array) and words.dtype == types.uint32 and out.dtype == types.float64
            and kn9.dtype == types.uint64 and wn9.dtype == types.float64):
        return None
    sig = types.uint64(words, k, kn9, wn9, scale, out)

    def codegen(context, builder, signature, args):
        words_v, k_v, kn_v, wn_v, scale_v, out_v = args
        wt, kt, knt, wnt, _, ot = signature.args
        i1, i32, i64, f64 = ir.IntType(1), ir.IntType(32), ir.IntType(64), ir.DoubleType()
        v2i32, vi32 = ir.VectorType(i32, 2 * LANES), ir.VectorType(i32, LANES)
        vi64, vf64 = ir.VectorType(i64, LANES), ir.VectorType(f64, LANES)
        const = lambda ty, v: ir.Constant(ty, [v] * LANES)  # noqa: E731

        data = {name: context.make_array(t)(context, builder, v).data
                for name, t, v in (("w", wt, words_v), ("kn", knt, kn_v), ("wn", wnt, wn_v), ("out", ot, out_v))}
        kk = context.cast(builder, k_v, kt, types.int64)
        src = builder.gep(data["w"], [builder.mul(kk, ir.Constant(i64, 2))])
        w16 = builder.load(builder.bitcast(src, v2i32.as_pointer()), align=4)
        hi = builder.shuffle_vector(w16, undef(v2i32), ir.Constant(vi32, list(range(0, 2 * LANES, 2))))
        lo = builder.shuffle_vector(w16, undef(v2i32), ir.Constant(vi32, list(range(1, 2 * LANES, 2))))
        r = builder.or_(builder.shl(builder.zext(hi, vi64), const(vi64, 32)), builder.zext(lo, vi64))
        rabs = builder.and_(builder.lshr(r, const(vi64, 9)), const(vi64, _MASK52))
        offset = builder.shl(builder.and_(r, const(vi64, 0x1FF)), const(vi64, 3))  # 8-byte entries

        def gather(ptr, vty, name):
            addresses = builder.inttoptr(builder.add(splat(builder, builder.ptrtoint(ptr, i64), vi64), offset),
                                         ir.VectorType(ptr.type, LANES))
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [addresses.type, i32, ir.VectorType(i1, LANES), vty]),
                f"llvm.masked.gather.v{LANES}{name}.v{LANES}p0")
            return builder.call(fn, [addresses, ir.Constant(i32, 8), const(ir.VectorType(i1, LANES), 1), undef(vty)])

        x = builder.fmul(builder.fmul(builder.sitofp(rabs, vf64), gather(data["wn"], vf64, "f64")),
                         splat(builder, scale_v, vf64))
        builder.store(x, builder.bitcast(builder.gep(data["out"], [kk]), vf64.as_pointer()), align=8)
        rejected = builder.icmp_unsigned(">=", rabs, gather(data["kn"], vi64, "i64"))
        return builder.zext(builder.bitcast(rejected, ir.IntType(LANES)), i64)

    return sig, codegen


@njit(inline="always")
def fast_row_lanes(words, n, kn9, wn9, scale, out, slow):
    """``fmsim.laws._ziggurat_fast_row`` (64-bit words, float64 ``out``) with whole groups of 8 weights in
    vector lanes and the rest scalar."""
    n_slow = 0
    n_lanes = n - n % LANES
    for k in range(0, n_lanes, LANES):
        mask = _first_step_lanes(words, k, kn9, wn9, scale, out)
        lane = 0
        while mask:
            if mask & np.uint64(1):
                slow[n_slow] = k + lane
                n_slow += 1
            mask >>= np.uint64(1)
            lane += 1
    for k in range(n_lanes, n):
        x, rabs, i = laws._signed_candidate(words, k, False, wn9)
        out[k] = x * scale
        slow[n_slow] = k
        n_slow += rabs >= kn9[i]
    return n_slow
