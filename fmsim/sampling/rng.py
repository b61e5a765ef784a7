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
first compile about 7 s longer).

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

__all__ = [
    "philox4x32",
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
        m0, m1 = ir.Constant(i64, int(_M0)), ir.Constant(i64, int(_M1))
        w0, w1 = ir.Constant(i32, int(_W0)), ir.Constant(i32, int(_W1))
        shift = ir.Constant(i64, int(_SHIFT32))
        for r in range(10):
            p0 = builder.mul(builder.zext(c0_, i64), m0)
            p1 = builder.mul(builder.zext(c2_, i64), m1)
            hi0, lo0 = builder.trunc(builder.lshr(p0, shift), i32), builder.trunc(p0, i32)
            hi1, lo1 = builder.trunc(builder.lshr(p1, shift), i32), builder.trunc(p1, i32)
            c0_, c1_, c2_, c3_ = (builder.xor(builder.xor(hi1, c1_), k0_), lo1,
                                  builder.xor(builder.xor(hi0, c3_), k1_), lo0)
            if r < 9:
                k0_, k1_ = builder.add(k0_, w0), builder.add(k1_, w1)
        words = [builder.zext(v, i64) for v in (c0_, c1_, c2_, c3_)]
        return context.make_tuple(builder, signature.return_type, words)

    return sig, codegen


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
