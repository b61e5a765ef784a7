"""Counter-based random numbers: Philox4x32-10 and the conversions fmsim uses.

Every random number in fmsim is a pure function of ``(key, counter)``: the key
comes from the user's seed, the counter names *what* the number is for (net,
layer, row, block of a row). Nothing is carried between draws, so a result
cannot depend on thread count, chunk size or backend.

All functions here are plain ``numba.njit`` scalar functions on ``uint64``
values that hold 32-bit words. They are called from the parallel CPU kernels
and, recompiled by numba-cuda, from the CUDA kernels. The Philox rounds are
written as LLVM IR (a numba ``@intrinsic``) and emitted straight into each
caller: LLVM still vectorizes a row's loop of Philox calls, and numba's own
passes never see the ten rounds (inlined by numba, they made each kernel's
first compile about 7 s longer). Two more intrinsics, :func:`philox4x32_x8`
and :func:`philox4x32_x32`, compute 8 and 32 blocks in vector lanes from the same rounds
(:func:`_philox_rounds`), for the CPU kernels' groups of rows.

Counter layout ``(c0, c1, c2, c3)`` used by the simulator:

========  ===================================================================
``c0``    block index along a row (one block = one Philox call = two
          weights) and stream id; see ``fmsim.laws``
``c1``    row (output unit) index
``c2``    layer index, 1..d (0 is the input vector)
``c3``    net index
========  ===================================================================

Reference: Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as
1, 2, 3", SC11. Known-answer vectors from Random123 ``kat_vectors``.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core.extending import intrinsic

from .llvm_vectors import splat

__all__ = [
    "philox4x32",
    "philox4x32_x8",
    "philox4x32_x32",
    "seed_to_key",
    "u01_from_words",
    "u01_open_from_words",
    "u01_mid_from_words",
]

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_SHIFT32 = np.uint64(32)

_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53
_TWO_M52 = 2.0 * _TWO_M53


def _philox_rounds(builder, c, k, mulhilo, keyed):
    """The ten rounds of Philox4x32 on the counter words ``c = (c0, c1, c2, c3)`` and the key words
    ``k = (k0, k1)`` (both i32): ``mulhilo(x, m)`` gives the high and low 32 bits of ``x m``, ``keyed(k)``
    the key word ``k`` as the counter words hold it. The scalar block (:func:`_philox4x32_ir`) and the 8-lane
    one (:func:`philox4x32_x8`) build their rounds here, and differ only in those two."""
    i32 = ir.IntType(32)
    m0, m1 = int(_M0), int(_M1)
    w0, w1 = ir.Constant(i32, int(_W0)), ir.Constant(i32, int(_W1))
    c0, c1, c2, c3 = c
    k0, k1 = k
    for r in range(10):
        hi0, lo0 = mulhilo(c0, m0)
        hi1, lo1 = mulhilo(c2, m1)
        c0, c1, c2, c3 = (builder.xor(builder.xor(hi1, c1), keyed(k0)), lo1,
                          builder.xor(builder.xor(hi0, c3), keyed(k1)), lo0)
        if r < 9:
            k0, k1 = builder.add(k0, w0), builder.add(k1, w1)
    return c0, c1, c2, c3


@intrinsic
def _philox4x32_ir(typingctx, c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 as LLVM IR, emitted straight into the caller's function (:func:`philox4x32`).

    Each round multiplies two 32-bit words into 64 bits (``zext``, ``mul``; the high and low halves by
    ``lshr`` and ``trunc``), so LLVM sees that the operands fit in 32 bits: a row's loop of calls compiles to
    ``vpmuludq`` on ``zmm`` with AVX-512 (18 in :func:`fmsim.laws.row_words`'s vector loop, as the
    numba-inlined rounds gave). Only the low 32 bits of each argument reach the output, as in the
    reference (Random123 ``philox4x32_R(10, ...)``)."""
    args = (c0, c1, c2, c3, k0, k1)
    if not all(isinstance(a, types.Integer) for a in args):
        return None
    sig = types.UniTuple(types.uint64, 4)(*args)

    def codegen(context, builder, signature, llargs):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        # the low 32 bits of each word: only those reach the output
        c0_, c1_, c2_, c3_, k0_, k1_ = (builder.trunc(context.cast(builder, v, t, types.uint64), i32)
                                        for v, t in zip(llargs, signature.args))
        shift = ir.Constant(i64, int(_SHIFT32))

        def mulhilo(x, m):
            p = builder.mul(builder.zext(x, i64), ir.Constant(i64, m))
            return builder.trunc(builder.lshr(p, shift), i32), builder.trunc(p, i32)

        out = _philox_rounds(builder, (c0_, c1_, c2_, c3_), (k0_, k1_), mulhilo, lambda k: k)
        words = [builder.zext(v, i64) for v in out]
        return context.make_tuple(builder, signature.return_type, words)

    return sig, codegen


#: Blocks per call of :func:`philox4x32_x8`.
X8_LANES = 8
#: Blocks per call of :func:`philox4x32_x32`.
X32_LANES = 32


def _philox_lanes_intrinsic(n_lanes: int):
    """The ``@intrinsic`` of Philox4x32-10 on ``n_lanes`` counters at once (:func:`philox4x32_x8`,
    :func:`philox4x32_x32`): the same rounds (:func:`_philox_rounds`) on LLVM vectors of ``n_lanes`` 64-bit lanes,
    which LLVM splits into as many registers as the target needs."""

    def philox_lanes(typingctx, table, c0_at, c1_at, c1_base, c2, c3, k0, k1, out, out_at):
        if not (isinstance(table, types.CPointer) and table.dtype == types.uint32
                and isinstance(out, types.CPointer) and out.dtype == types.uint32):
            return None
        u64, intp = types.uint64, types.intp
        sig = types.void(table, intp, intp, u64, u64, u64, u64, u64, out, intp)

        def codegen(context, builder, signature, llargs):
            table_p, c0_at_v, c1_at_v, c1_base_v, c2_v, c3_v, k0_v, k1_v, out_p, out_at_v = llargs
            i32, i64 = ir.IntType(32), ir.IntType(64)
            words_type = ir.VectorType(i32, n_lanes)
            lanes = ir.VectorType(i64, n_lanes)
            halves = ir.VectorType(i32, 2 * n_lanes)

            def table_lanes(at):
                address = builder.bitcast(builder.gep(table_p, [at]), words_type.as_pointer())
                return builder.zext(builder.load(address, align=4), lanes)

            low32 = ir.Constant(lanes, [0xFFFFFFFF] * n_lanes)
            swap = ir.Constant(halves, [i ^ 1 for i in range(2 * n_lanes)])

            def mulhilo(x, m):
                # the mask tells LLVM the operand fits in 32 bits: vpmuludq, with the mask dropped
                p = builder.mul(builder.and_(x, low32), ir.Constant(lanes, [m] * n_lanes))
                h = builder.bitcast(p, halves)
                return builder.bitcast(builder.shuffle_vector(h, h, swap), lanes), p

            c = (table_lanes(c0_at_v), builder.add(table_lanes(c1_at_v), splat(builder, c1_base_v, lanes)),
                 splat(builder, c2_v, lanes), splat(builder, c3_v, lanes))
            k = (builder.trunc(k0_v, i32), builder.trunc(k1_v, i32))
            out = [builder.trunc(x, words_type) for x in
                   _philox_rounds(builder, c, k, mulhilo, lambda kw: splat(builder, builder.zext(kw, i64), lanes))]
            # blocks in order, 4 words each: interleave (w0, w1) and (w2, w3), then the pairs
            pairs = ir.Constant(halves, [i for j in range(n_lanes) for i in (j, j + n_lanes)])
            quads = ir.Constant(ir.VectorType(i32, 4 * n_lanes),
                                [i for j in range(n_lanes) for i in (2 * j, 2 * j + 1, 2 * (n_lanes + j),
                                                                     2 * (n_lanes + j) + 1)])
            words = builder.shuffle_vector(builder.shuffle_vector(out[0], out[1], pairs),
                                           builder.shuffle_vector(out[2], out[3], pairs), quads)
            address = builder.bitcast(builder.gep(out_p, [out_at_v]),
                                      ir.VectorType(i32, 4 * n_lanes).as_pointer())
            builder.store(words, address, align=4)
            return context.get_dummy_value()

        return sig, codegen

    philox_lanes.__name__ = philox_lanes.__qualname__ = f"philox4x32_x{n_lanes}"
    return intrinsic(philox_lanes)


philox4x32_x8 = _philox_lanes_intrinsic(X8_LANES)
philox4x32_x8.__doc__ = """Philox4x32-10 on 8 counters at once, in LLVM vector lanes: block ``l`` (``0 <= l < 8``)
    has the counter ``(table[c0_at + l], c1_base + table[c1_at + l], c2, c3)`` and its 4 words go to
    ``out[out_at + 4 l:]``. The same words as :func:`philox4x32`, bit for bit (``tests/test_rng.py``).

    The kernels draw a group of rows' words with it and :func:`philox4x32_x32`
    (:func:`fmsim.sampling.row_groups.group_words`), where LLVM's own loop of :func:`philox4x32` ran 15% to 25%
    slower (docs, *Performance*). Each counter word sits in a 64-bit lane, whose high half is never read (the
    multiplies read the low 32 bits of each lane: ``vpmuludq``), and a product's high half comes down by a swap
    of the lane's two 32-bit halves (a shuffle, on a port that the multiplies share less than the shifts LLVM
    chooses).

    Parameters
    ----------
    table : CPointer(uint32)
        Counter words ``c0`` (8 from ``c0_at``) and row offsets (8 from ``c1_at``); ``data_pointer`` of an
        array (:mod:`fmsim.sampling.llvm_vectors`).
    c0_at, c1_at : int
        Where the 8 counter words ``c0`` and the 8 row offsets start in ``table``.
    c1_base, c2, c3 : uint64
        The rest of the counter (only the low 32 bits of ``c1_base + table[...]`` count, as in :func:`philox4x32`).
    k0, k1 : uint64
        The key.
    out : CPointer(uint32)
        Written: ``out[out_at : out_at + 32]``, block ``l``'s words at ``out_at + 4 l .. out_at + 4 l + 3``.
    out_at : int
        Where the 32 words start in ``out``.
    """
philox4x32_x32 = _philox_lanes_intrinsic(X32_LANES)
philox4x32_x32.__doc__ = """:func:`philox4x32_x8` on 32 counters at once (from ``table[c0_at:c0_at + 32]`` and
    ``table[c1_at:c1_at + 32]``; writes ``out[out_at : out_at + 128]``): the same words as :func:`philox4x32`.

    Four independent chains of rounds in flight instead of one: on an AMD Zen 5 a step of 8 blocks waits on the
    latency of its ten rounds (multiply, swap, xor), and 32 blocks a step ran 1.3x as many blocks a second
    with AVX-512, 1.1x without (docs, *Performance*).
    """


@njit(inline="always", cache=True)
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block function.

    Parameters
    ----------
    c0, c1, c2, c3 : uint64
        The four 32-bit counter words (values must be < 2**32).
    k0, k1 : uint64
        The two 32-bit key words.

    Returns
    -------
    tuple of 4 uint64
        Four independent 32-bit random words.
    """
    return _philox4x32_ir(c0, c1, c2, c3, k0, k1)


@njit(inline="always", cache=True)
def u01_from_words(a, b):
    """Uniform double in ``[0, 1)`` with 53 random bits from two 32-bit words."""
    hi = a >> np.uint64(5)  # 27 bits
    lo = b >> np.uint64(6)  # 26 bits
    return float(hi * np.uint64(67108864) + lo) * _TWO_M53


@njit(inline="always", cache=True)
def u01_mid_from_words(a, b):
    """Uniform double in ``(0, 1)``, symmetric about 1/2: ``(k + 1/2) 2^-52`` with 52 random bits ``k``
    (26 from each word). (On a 53-bit grid the top midpoint would round to 1.)"""
    k = (a >> np.uint64(6)) * np.uint64(67108864) + (b >> np.uint64(6))
    return (float(k) + 0.5) * _TWO_M52


@njit(inline="always", cache=True)
def u01_open_from_words(a, b):
    """Uniform double in ``(0, 1]``: safe to take the logarithm of."""
    return 1.0 - u01_from_words(a, b)


def seed_to_key(seed: int) -> tuple[int, int]:
    """Split a non-negative 64-bit seed into the two 32-bit Philox key words.

    Parameters
    ----------
    seed : int
        ``0 <= seed < 2**64``.

    Returns
    -------
    (int, int)
        Low and high 32-bit words.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int in [0, 2**64), got {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed & 0xFFFFFFFF, seed >> 32
