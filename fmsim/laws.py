"""Weight laws: unit-variance symmetric samplers driven by Philox words.

Each weight consumes one pair of 32-bit words from the main stream (a Philox
call yields two weights). The rare draws that need more randomness (the
ziggurat's wedge and tail, 1.2% of Gaussian draws; the truncated normal's
rejections) take it from retry streams of the *same* counter, so a weight is
still a pure function of ``(key, net, layer, row, column)``.

``c0`` layout for one weight: bits 0-19 block index along the row, bits 20-31
stream id. Stream 0 is the main stream; ``1 + lane + 2*attempt + 128*t`` is
retry ``attempt`` of draw ``t`` (``t >= 1`` only for truncation retries).
Biases use the last block index, ``BIAS_BLOCK``, which no weight reaches.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .rng import philox4x32, u01_from_words

__all__ = [
    "LAW_CODES",
    "LAW_M4",
    "BLOCK_BITS",
    "MAX_FAN_IN",
    "BIAS_BLOCK",
    "standard_draw",
    "draw_standard_array",
    "draw_standard_one",
]

#: Integer codes the kernels use for each law.
LAW_CODES = {"gaussian": 0, "uniform": 1, "rademacher": 2, "laplace": 3, "truncated_normal": 4}
#: Standardized fourth moment E[w^4]/Var(w)^2 of each (unit-variance) law.
LAW_M4 = {
    "gaussian": 3.0,
    "uniform": 1.8,
    "rademacher": 1.0,
    "laplace": 6.0,
    "truncated_normal": None,  # filled in below from the closed form
}

BLOCK_BITS = 20
#: Block index of a unit's bias: one past the last block any weight uses.
BIAS_BLOCK = np.uint64((1 << BLOCK_BITS) - 1)
#: Largest fan-in a row may have (two weights per block, bias block excluded).
MAX_FAN_IN = 2 * ((1 << BLOCK_BITS) - 1)
_BLOCK_MASK = np.uint64((1 << BLOCK_BITS) - 1)
_STREAM_SHIFT = np.uint64(BLOCK_BITS)
_MAX_ATTEMPTS = 63  # per draw; attempt 63 of draw t >= 1 holds its fresh candidate
_MAX_TRUNC_DRAWS = 16

# ---------------------------------------------------------------- ziggurat
# Marsaglia & Tsang (2000) with 256 layers for f(x) = exp(-x^2/2), x >= 0.
# x[0] = v/f(r) is the base strip's pseudo-width, x[1] = r, x[256] = 0.
_ZIG_R = 3.6541528853610088
_ZIG_V = 0.00492867323399


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = lambda x: math.exp(-0.5 * x * x)  # noqa: E731
    x = np.empty(257)
    x[0] = _ZIG_V / f(_ZIG_R)
    x[1] = _ZIG_R
    for i in range(1, 255):
        x[i + 1] = math.sqrt(-2.0 * math.log(_ZIG_V / x[i] + f(x[i])))
    x[256] = 0.0
    scale = 2.0**52
    kn = np.array([int(scale * x[i + 1] / x[i]) for i in range(256)], dtype=np.uint64)
    wn = x[:256] / scale
    fn = np.array([f(v) for v in x])
    return kn, wn, fn


_ZK, _ZW, _ZF = _ziggurat_tables()
_MASK52 = np.uint64((1 << 52) - 1)


# Not inlined at numba level: each inlined copy would carry its own copy of the tables
# (on CUDA, constant memory is 64 KiB). LLVM still inlines it on the CPU.
@njit(cache=True)
def _zig_candidate(a, b):
    """First ziggurat step from one 64-bit word pair: (x, layer, accepted)."""
    r = (a << np.uint64(32)) | b
    idx = np.intp(r & np.uint64(0xFF))
    rabs = (r >> np.uint64(9)) & _MASK52
    x = float(rabs) * _ZW[idx]
    if (r >> np.uint64(8)) & np.uint64(1):
        x = -x
    return x, idx, rabs < _ZK[idx]


@njit(inline="always", cache=True)
def _stream_c0(block, lane, attempt, t):
    stream = np.uint64(1 + lane + 2 * attempt + 128 * t)
    return (block & _BLOCK_MASK) | (stream << _STREAM_SHIFT)


@njit(cache=True)
def _normal_slow(x, idx, block, lane, t, c1, c2, c3, k0, k1):
    """Wedge/tail/restart part of the ziggurat (about 1.2% of draws)."""
    for attempt in range(_MAX_ATTEMPTS):
        w0, w1, w2, w3 = philox4x32(_stream_c0(block, lane, attempt, t), c1, c2, c3, k0, k1)
        if idx == 0:  # tail beyond r: Marsaglia's exact tail method
            xx = -math.log(1.0 - u01_from_words(w0, w1)) / _ZIG_R
            yy = -math.log(1.0 - u01_from_words(w2, w3))
            if yy + yy > xx * xx:
                return math.copysign(_ZIG_R + xx, x)
        else:
            y = _ZF[idx] + u01_from_words(w0, w1) * (_ZF[idx + 1] - _ZF[idx])
            if y < math.exp(-0.5 * x * x):
                return x
            x, idx, ok = _zig_candidate(w2, w3)  # restart from fresh words
            if ok:
                return x
    return x  # reached with probability < 1e-100


@njit(inline="always", cache=True)
def _normal(a, b, block, lane, t, c1, c2, c3, k0, k1):
    x, idx, ok = _zig_candidate(a, b)
    if ok:
        return x
    return _normal_slow(x, idx, block, lane, t, c1, c2, c3, k0, k1)


# ------------------------------------------------------- truncated normal
_TRUNC = 2.0
_TRUNC_MASS = math.erf(_TRUNC / math.sqrt(2.0))
_TRUNC_VAR = 1.0 - 2.0 * _TRUNC * math.exp(-0.5 * _TRUNC**2) / math.sqrt(2.0 * math.pi) / _TRUNC_MASS
_TRUNC_SD = math.sqrt(_TRUNC_VAR)
# E[x^4] of N(0,1) truncated to [-a, a]: 3 - (a^3 + 3a) phi(a) / (Phi(a) - 1/2) / 2
_TRUNC_M4_RAW = 3.0 - (_TRUNC**3 + 3 * _TRUNC) * 2.0 * math.exp(-0.5 * _TRUNC**2) / math.sqrt(
    2.0 * math.pi
) / _TRUNC_MASS
LAW_M4["truncated_normal"] = _TRUNC_M4_RAW / _TRUNC_VAR**2
#: Variance of N(0, 1) truncated to [-2, 2] (the 2018 Keras factor, 0.7737...).
TRUNCATED_NORMAL_VARIANCE = _TRUNC_VAR


@njit(cache=True)
def _truncated_normal_slow(block, lane, c1, c2, c3, k0, k1):
    for t in range(1, _MAX_TRUNC_DRAWS):
        a, b, _, _ = philox4x32(_stream_c0(block, lane, _MAX_ATTEMPTS, t), c1, c2, c3, k0, k1)
        x = _normal(a, b, block, lane, t, c1, c2, c3, k0, k1)
        if abs(x) <= _TRUNC:
            return x / _TRUNC_SD
    return 0.0  # reached with probability < 1e-20


# ------------------------------------------------------------ dispatcher
_SQRT3 = math.sqrt(3.0)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@njit(inline="always", cache=True)
def standard_draw(law, a, b, block, lane, c1, c2, c3, k0, k1):
    """One unit-variance weight of the given law.

    Parameters
    ----------
    law : int
        Code from :data:`LAW_CODES`.
    a, b : uint64
        The weight's pair of 32-bit words from the main stream.
    block, lane : uint64, int
        Block index along the row and position (0 or 1) inside the block.
    c1, c2, c3, k0, k1 : uint64
        The rest of the counter (row, layer, net) and the key, for retries.

    Returns
    -------
    float
        A draw with mean 0 and variance 1.
    """
    if law == 0:
        return _normal(a, b, block, lane, 0, c1, c2, c3, k0, k1)
    if law == 1:
        return _SQRT3 * (2.0 * u01_from_words(a, b) - 1.0)
    if law == 2:
        return 1.0 if (a >> np.uint64(31)) else -1.0
    if law == 3:
        # inverse CDF of Laplace(0, 1/sqrt 2); midpoint uniform in (0, 1)
        u = u01_from_words(a, b) + 5.551115123125783e-17
        if u < 0.5:
            return _INV_SQRT2 * math.log(2.0 * u)
        return -_INV_SQRT2 * math.log(2.0 - 2.0 * u)
    x = _normal(a, b, block, lane, 0, c1, c2, c3, k0, k1)
    if abs(x) <= _TRUNC:
        return x / _TRUNC_SD
    return _truncated_normal_slow(block, lane, c1, c2, c3, k0, k1)


@njit(cache=True)
def _fill_standard(law, k0, k1, c1, c2, c3, out):
    n = out.shape[0]
    for blk in range((n + 1) // 2):
        block = np.uint64(blk)
        w0, w1, w2, w3 = philox4x32(block, c1, c2, c3, k0, k1)
        out[2 * blk] = standard_draw(law, w0, w1, block, 0, c1, c2, c3, k0, k1)
        if 2 * blk + 1 < n:
            out[2 * blk + 1] = standard_draw(law, w2, w3, block, 1, c1, c2, c3, k0, k1)


def draw_standard_array(law: str, n: int, key: tuple[int, int], row: int, layer: int, net: int) -> np.ndarray:
    """The ``n`` standardized weights of one row, as the kernels draw them.

    Parameters
    ----------
    law : str
        A name from :data:`LAW_CODES`.
    n : int
        Row length (fan-in), ``1 <= n <= MAX_FAN_IN``.
    key : (int, int)
        Philox key, from :func:`fmsim.rng.seed_to_key`.
    row, layer, net : int
        Counter words ``c1, c2, c3``.

    Returns
    -------
    ndarray, shape (n,), float64
    """
    out = np.empty(n)
    _fill_standard(
        LAW_CODES[law], np.uint64(key[0]), np.uint64(key[1]),
        np.uint64(row), np.uint64(layer), np.uint64(net), out,
    )
    return out


@njit(cache=True)
def _one(law, k0, k1, block, lane, c1, c2, c3):
    w0, w1, w2, w3 = philox4x32(block, c1, c2, c3, k0, k1)
    if lane == 0:
        return standard_draw(law, w0, w1, block, 0, c1, c2, c3, k0, k1)
    return standard_draw(law, w2, w3, block, 1, c1, c2, c3, k0, k1)


def draw_standard_one(law: str, key: tuple[int, int], block: int, lane: int, row: int, layer: int,
                      net: int) -> float:
    """The single draw at ``(block, lane)`` of a row (e.g. a bias at ``BIAS_BLOCK``, lane 0)."""
    u = np.uint64
    return float(_one(LAW_CODES[law], u(key[0]), u(key[1]), u(block), lane, u(row), u(layer), u(net)))
