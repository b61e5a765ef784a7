"""Counter-based random numbers: Philox4x32-10 and the conversions fmsim uses.

Every random number in fmsim is a pure function of ``(key, counter)``: the key
comes from the user's seed, the counter names *what* the number is for (net,
layer, row, block of a row). Nothing is carried between draws, so a result
cannot depend on thread count, chunk size or backend.

All functions here are plain ``numba.njit`` scalar functions on ``uint64``
values that hold 32-bit words. They are called from the parallel CPU kernels
and, recompiled by numba-cuda, from the CUDA kernels.

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
from numba import njit

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
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)

_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53
_TWO_M52 = 2.0 * _TWO_M53


@njit(inline="always", cache=True)
def _round(c0, c1, c2, c3, k0, k1):
    # Truncating to uint32 first tells LLVM the operands fit in 32 bits: the GPU then
    # uses one 32x32->64 multiply (mul.wide.u32) instead of an emulated 64-bit one.
    p0 = _M0 * np.uint64(np.uint32(c0))
    p1 = _M1 * np.uint64(np.uint32(c2))
    hi0 = p0 >> _SHIFT32
    lo0 = p0 & _MASK32
    hi1 = p1 >> _SHIFT32
    lo1 = p1 & _MASK32
    return hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0


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
    for _ in range(9):
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return _round(c0, c1, c2, c3, k0, k1)


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
