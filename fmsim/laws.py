"""Weight laws: unit-variance symmetric samplers driven by Philox words.

Stream layout (version :data:`STREAM_LAYOUT`; stored with every run, and a
resume under another layout is refused). The weights of a row come from its
main stream: Philox block ``b`` (counter ``c0 = b``) gives four 32-bit words,
and the row's words are read in order, block after block. Each law takes the
bits it needs (:func:`weights_per_block`):

==========================================  ============  =====================================
law (and precision)                         bits/weight   weight ``k`` of the row
==========================================  ============  =====================================
``rademacher``                              1             bit ``k % 32`` of word ``k // 32``
``uniform``; every law in ``float32``       32            word ``k`` (32-bit ziggurat for normals)
``gaussian``, ``laplace``,                  64            words ``2k, 2k + 1`` (53-bit uniforms,
``truncated_normal`` in ``float64``                       61-bit ziggurat)
==========================================  ============  =====================================

Gaussian, Laplace and truncated-normal weights come from 256-layer ziggurats
(Marsaglia & Tsang 2000) read from the word(s): 8 bits choose the layer, 1 the
sign, the rest (52 or 23 bits) the magnitude. Laplace uses the exponential
ziggurat (``|w| sqrt 2 ~ Exp(1)``). The truncated normal (cut at +-2) has a
ziggurat of its own, built for the density on ``[0, 2]``: its lowest layers are
flat boxes under the curve and it has no tail, so no draw is ever thrown away
for landing beyond the cut.

The rare draws that need more randomness (a ziggurat's wedges and tail: 1.5%
of normal, 2.2% of Laplace and 1.2% of truncated-normal draws) take it from retry streams of the *same*
counter, so a weight is still a pure function of ``(key, net, layer, row,
column)``: ``c0`` bits 0-19 hold ``k // 2``, bits 20-31 the stream id
``1 + (k % 2) + 2*attempt``. Biases use the last block index, ``BIAS_BLOCK``,
which no weight reaches: one 64-bit draw (words 0 and 1) for every law and precision.

History: layout 1 (fmsim 0.1) took 64 bits for every weight; layout 2 (0.2.0)
took 32 or 1 for ``uniform``, ``rademacher`` and ``precision="float32"``; layout 3
(0.3.0) samples ``truncated_normal`` with its own ziggurat instead of redrawing
normals beyond the cut, and ``laplace`` with the exponential ziggurat instead of
the inverse CDF (the same laws; other random numbers). The Gaussian, uniform and
Rademacher streams are those of layout 2.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .rng import philox4x32, u01_from_words

__all__ = [
    "STREAM_LAYOUT",
    "weights_per_block",
    "LAW_CODES",
    "LAW_M4",
    "BLOCK_BITS",
    "MAX_FAN_IN",
    "BIAS_BLOCK",
    "standard_draw",
    "draw_standard_array",
    "draw_standard_one",
    "standard_row",
    "row_weight",
    "draw32",
]

#: Version of the stream layout above (which Philox bits make which weight).
STREAM_LAYOUT = 3
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
_MAX_ATTEMPTS = 63  # retries of a slow draw (each fails with probability < 0.1)

# ---------------------------------------------------------------- ziggurat
# Marsaglia & Tsang (2000) with 256 layers for f(x) = exp(-x^2/2), x >= 0.
# x[0] = v/f(r) is the base strip's pseudo-width, x[1] = r, x[256] = 0.
_ZIG_R = 3.6541528853610088
_ZIG_V = 0.00492867323399


def _ziggurat_tables(bits: int = 52) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Acceptance thresholds, widths and densities for a ``bits``-bit magnitude."""
    f = lambda x: math.exp(-0.5 * x * x)  # noqa: E731
    x = np.empty(257)
    x[0] = _ZIG_V / f(_ZIG_R)
    x[1] = _ZIG_R
    for i in range(1, 255):
        x[i + 1] = math.sqrt(-2.0 * math.log(_ZIG_V / x[i] + f(x[i])))
    x[256] = 0.0
    scale = 2.0**bits
    kn = np.array([int(scale * x[i + 1] / x[i]) for i in range(256)], dtype=np.uint64)
    wn = x[:256] / scale
    fn = np.array([f(v) for v in x])
    return kn, wn, fn


_ZK, _ZW, _ZF = _ziggurat_tables()
_ZK32, _ZW32, _ = _ziggurat_tables(23)  # 32-bit words: 8 bits layer, 1 sign, 23 magnitude
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
def _stream_c0(block, lane, attempt):
    stream = np.uint64(1 + lane + 2 * attempt)
    return (block & _BLOCK_MASK) | (stream << _STREAM_SHIFT)


@njit(cache=True)
def _normal_slow(x, idx, block, lane, c1, c2, c3, k0, k1):
    """Wedge/tail/restart part of the ziggurat (about 1.2% of draws)."""
    for attempt in range(_MAX_ATTEMPTS):
        w0, w1, w2, w3 = philox4x32(_stream_c0(block, lane, attempt), c1, c2, c3, k0, k1)
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
def _normal(a, b, block, lane, c1, c2, c3, k0, k1):
    x, idx, ok = _zig_candidate(a, b)
    if ok:
        return x
    return _normal_slow(x, idx, block, lane, c1, c2, c3, k0, k1)


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


_TRUNC_INV_SD = 1.0 / _TRUNC_SD


def _truncated_ziggurat_levels(a: float = _TRUNC, n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Box widths ``X[0..n]`` and heights ``Y[0..n]`` of an ``n``-layer ziggurat for ``exp(-x^2/2)`` on ``[0, a]``.

    Box ``i`` is ``[0, X[i]] x [Y[i], Y[i+1]]`` with ``X[i] = min(a, f^{-1}(Y[i]))``,
    ``Y[0] = 0``, ``Y[n] = f(0) = 1``, all of equal area ``v`` (found by bisection).
    The boxes cover the region under the curve; the lowest ones (``Y[i+1] <= f(a)``)
    lie entirely under it, so their points are always accepted. ``X[n] = 0``.
    """
    fa = math.exp(-0.5 * a * a)

    def levels(v: float) -> tuple[list[float], list[float]]:
        xs, ys = [], [0.0]
        for _ in range(n):
            y = ys[-1]
            if y >= 1.0:
                return xs, ys  # v too large: the boxes reach the top early
            xs.append(a if y <= fa else math.sqrt(-2.0 * math.log(y)))
            ys.append(y + v / xs[-1])
        return xs, ys

    lo, hi = 0.0, 1.0
    for _ in range(64):  # v is about 0.0047: 64 halvings of [0, 1] reach its last bit
        v = 0.5 * (lo + hi)
        xs, ys = levels(v)
        if len(xs) < n or ys[-1] > 1.0:
            hi = v
        else:
            lo = v
    xs, ys = levels(lo)
    assert len(xs) == n and abs(ys[-1] - 1.0) < 1e-12, "truncated ziggurat did not close"
    ys[-1] = 1.0
    return np.array(xs + [0.0]), np.array(ys)


def _truncated_ziggurat_tables(xs: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Acceptance thresholds and widths for a ``bits``-bit magnitude (as :func:`_ziggurat_tables`), from the box
    widths ``xs`` of :func:`_truncated_ziggurat_levels`."""
    scale = 2.0**bits
    kn = np.array([int(scale * xs[i + 1] / xs[i]) for i in range(256)], dtype=np.uint64)
    return kn, xs[:256] / scale


_TX, _TF = _truncated_ziggurat_levels()  # box widths and heights: the wedge of box i spans y in [_TF[i], _TF[i+1]]
_TK, _TW = _truncated_ziggurat_tables(_TX, 52)
_TK32, _TW32 = _truncated_ziggurat_tables(_TX, 23)


@njit(cache=True)
def _trunc_candidate(a, b):
    """First step of the truncated normal's ziggurat from one 64-bit word pair: (x, layer, accepted)."""
    r = (a << np.uint64(32)) | b
    idx = np.intp(r & np.uint64(0xFF))
    rabs = (r >> np.uint64(9)) & _MASK52
    x = float(rabs) * _TW[idx]
    if (r >> np.uint64(8)) & np.uint64(1):
        x = -x
    return x, idx, rabs < _TK[idx]


@njit(cache=True)
def _truncated_normal_slow(x, idx, block, lane, c1, c2, c3, k0, k1):
    """Wedge part of the truncated normal's ziggurat (no tail; a rejected point restarts)."""
    for attempt in range(_MAX_ATTEMPTS):
        w0, w1, w2, w3 = philox4x32(_stream_c0(block, lane, attempt), c1, c2, c3, k0, k1)
        y = _TF[idx] + u01_from_words(w0, w1) * (_TF[idx + 1] - _TF[idx])
        if y < math.exp(-0.5 * x * x):
            return x
        x, idx, ok = _trunc_candidate(w2, w3)
        if ok:
            return x
    return x  # reached with probability < 1e-60


@njit(inline="always", cache=True)
def _truncated_normal(a, b, block, lane, c1, c2, c3, k0, k1):
    """N(0, 1) cut at +-2, not rescaled, from one 64-bit word pair."""
    x, idx, ok = _trunc_candidate(a, b)
    if ok:
        return x
    return _truncated_normal_slow(x, idx, block, lane, c1, c2, c3, k0, k1)


# ---------------------------------------------------------------- Laplace
# |w| sqrt 2 ~ Exp(1): Marsaglia & Tsang's (2000) 256-layer exponential ziggurat, sign from its own bit.
_EXP_R = 7.69711747013104972
_EXP_V = 3.949659822581572e-3


def _exponential_ziggurat_tables(bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`_ziggurat_tables`, for ``f(x) = exp(-x)``: thresholds, widths, densities ``f(x_i)``."""
    x = np.empty(257)
    x[0] = _EXP_V / math.exp(-_EXP_R)
    x[1] = _EXP_R
    for i in range(1, 255):
        x[i + 1] = -math.log(_EXP_V / x[i] + math.exp(-x[i]))
    x[256] = 0.0
    scale = 2.0**bits
    kn = np.array([int(scale * x[i + 1] / x[i]) for i in range(256)], dtype=np.uint64)
    return kn, x[:256] / scale, np.exp(-x)


_EK, _EW, _EF = _exponential_ziggurat_tables(52)
_EK32, _EW32, _ = _exponential_ziggurat_tables(23)


@njit(cache=True)
def _exp_candidate(a, b):
    """First step of the exponential ziggurat from one 64-bit word pair: (signed x, layer, accepted)."""
    r = (a << np.uint64(32)) | b
    idx = np.intp(r & np.uint64(0xFF))
    rabs = (r >> np.uint64(9)) & _MASK52
    x = float(rabs) * _EW[idx]
    if (r >> np.uint64(8)) & np.uint64(1):
        x = -x
    return x, idx, rabs < _EK[idx]


@njit(cache=True)
def _exponential_slow(x, idx, block, lane, c1, c2, c3, k0, k1):
    """Wedge and tail of the exponential ziggurat: beyond ``r`` the magnitude is ``r + Exp(1)`` (no loss of
    memory), drawn exactly from one uniform; a wedge point is kept with the exact probability or restarts."""
    for attempt in range(_MAX_ATTEMPTS):
        w0, w1, w2, w3 = philox4x32(_stream_c0(block, lane, attempt), c1, c2, c3, k0, k1)
        if idx == 0:
            return math.copysign(_EXP_R - math.log(1.0 - u01_from_words(w0, w1)), x)
        y = _EF[idx] + u01_from_words(w0, w1) * (_EF[idx + 1] - _EF[idx])
        if y < math.exp(-abs(x)):
            return x
        x, idx, ok = _exp_candidate(w2, w3)
        if ok:
            return x
    return x  # reached with probability < 1e-60


@njit(inline="always", cache=True)
def _laplace_unscaled(a, b, block, lane, c1, c2, c3, k0, k1):
    """Standard Laplace (density ``exp(-|x|)/2``, variance 2) from one 64-bit word pair."""
    x, idx, ok = _exp_candidate(a, b)
    if ok:
        return x
    return _exponential_slow(x, idx, block, lane, c1, c2, c3, k0, k1)


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
        return _normal(a, b, block, lane, c1, c2, c3, k0, k1)
    if law == 1:
        return _SQRT3 * (2.0 * u01_from_words(a, b) - 1.0)
    if law == 2:
        return 1.0 if (a >> np.uint64(31)) else -1.0
    if law == 3:
        return _laplace_unscaled(a, b, block, lane, c1, c2, c3, k0, k1) * _INV_SQRT2
    return _truncated_normal(a, b, block, lane, c1, c2, c3, k0, k1) * _TRUNC_INV_SD


# ------------------------------------------------------ 32- and 1-bit weights
_TWO_M32 = 2.0**-32


@njit(inline="always", cache=True)
def _u01_32(word):
    """Midpoint uniform in ``(0, 1)`` from one 32-bit word: ``(word + 1/2) 2^-32``, exact in float64."""
    return (float(word) + 0.5) * _TWO_M32


@njit(inline="always", cache=True)
def _normal32(trunc, word, k, c1, c2, c3, k0, k1):
    """Standard normal (``trunc``: cut at +-2) from one 32-bit word (ziggurat, 23-bit magnitude);
    slow cases as :func:`_normal`'s (:func:`_truncated_normal`'s)."""
    idx = np.intp(word & np.uint64(0xFF))
    rabs = word >> np.uint64(9)
    x = float(rabs) * (_TW32[idx] if trunc else _ZW32[idx])
    if (word >> np.uint64(8)) & np.uint64(1):
        x = -x
    if rabs < (_TK32[idx] if trunc else _ZK32[idx]):
        return x
    if trunc:
        return _truncated_normal_slow(x, idx, np.uint64(k // 2), k % 2, c1, c2, c3, k0, k1)
    return _normal_slow(x, idx, np.uint64(k // 2), k % 2, c1, c2, c3, k0, k1)


@njit(inline="always", cache=True)
def _laplace32(word, k, c1, c2, c3, k0, k1):
    """Standard Laplace from one 32-bit word (exponential ziggurat, 23-bit magnitude); slow cases as
    :func:`_laplace_unscaled`'s."""
    idx = np.intp(word & np.uint64(0xFF))
    rabs = word >> np.uint64(9)
    x = float(rabs) * _EW32[idx]
    if (word >> np.uint64(8)) & np.uint64(1):
        x = -x
    if rabs < _EK32[idx]:
        return x
    return _exponential_slow(x, idx, np.uint64(k // 2), k % 2, c1, c2, c3, k0, k1)


@njit(inline="always", cache=True)
def draw32(law, word, k, c1, c2, c3, k0, k1):
    """Weight ``k`` of a row from its 32-bit word (laws other than Rademacher), mean 0, variance 1."""
    if law == 1:
        return _SQRT3 * (2.0 * _u01_32(word) - 1.0)
    if law == 3:
        return _laplace32(word, k, c1, c2, c3, k0, k1) * _INV_SQRT2
    if law == 0:
        return _normal32(False, word, k, c1, c2, c3, k0, k1)
    return _normal32(True, word, k, c1, c2, c3, k0, k1) * _TRUNC_INV_SD


@njit(inline="always", cache=True)
def weights_per_block(law, bits32):
    """Weights per Philox call in a row: 128 (Rademacher), 4 (uniform, or ``bits32``: precision float32) or 2."""
    if law == 2:
        return 128
    if law == 1 or bits32:
        return 4
    return 2


@njit(inline="always", cache=True)
def _word(q, w0, w1, w2, w3):
    if q == 0:
        return w0
    if q == 1:
        return w1
    if q == 2:
        return w2
    return w3


@njit(inline="always", cache=True)
def row_weight(law, bits32, k, w0, w1, w2, w3, c1, c2, c3, k0, k1):
    """Weight ``k`` of a row, given the four words ``w0..w3`` of its Philox block (see the layout above).

    Parameters
    ----------
    law : int
        Code from :data:`LAW_CODES`.
    bits32 : bool
        ``precision="float32"``: 32 bits per weight for every law.
    k : int
        Column of the weight; its block is ``k // weights_per_block(law, bits32)``.
    w0, w1, w2, w3 : uint64
        The block's main-stream words.
    c1, c2, c3, k0, k1 : uint64
        Row, layer, net and key, for the retry streams.

    Returns
    -------
    float
        A draw with mean 0 and variance 1.
    """
    per = weights_per_block(law, bits32)
    q = k % per
    if per == 128:
        word = _word(q >> 5, w0, w1, w2, w3)
        return 1.0 if (word >> np.uint64(q & 31)) & np.uint64(1) else -1.0
    if per == 4:
        return draw32(law, _word(q, w0, w1, w2, w3), k, c1, c2, c3, k0, k1)
    a, b = (w0, w1) if q == 0 else (w2, w3)  # one call site: each inlined copy costs compile time
    return standard_draw(law, a, b, np.uint64(k // 2), q, c1, c2, c3, k0, k1)


@njit(cache=True)
def _fill_standard(law, bits32, k0, k1, c1, c2, c3, out):
    """``out[k]`` = weight ``k`` of the row, one Philox block at a time (the CUDA kernels' and the reference's path)."""
    n = out.shape[0]
    per = weights_per_block(law, bits32)
    for blk in range((n + per - 1) // per):
        w0, w1, w2, w3 = philox4x32(np.uint64(blk), c1, c2, c3, k0, k1)
        for k in range(blk * per, min(n, (blk + 1) * per)):
            out[k] = row_weight(law, bits32, k, w0, w1, w2, w3, c1, c2, c3, k0, k1)


def draw_standard_array(law: str, n: int, key: tuple[int, int], row: int, layer: int, net: int,
                        precision: str = "float64") -> np.ndarray:
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
    precision : {"float64", "float32"}
        The run's precision: ``"float32"`` takes 32 bits per weight (the values
        are returned in float64, before the kernel rounds them to float32).

    Returns
    -------
    ndarray, shape (n,), float64
    """
    out = np.empty(n)
    _fill_standard(
        LAW_CODES[law], precision == "float32", np.uint64(key[0]), np.uint64(key[1]),
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


# ------------------------------------------------- rows in SIMD-friendly stages
# The CPU kernels draw a whole row at once, in passes that LLVM can vectorize:
# (1) the row's Philox words, a branch-free loop over blocks; (2) the law's fast
# path for every weight, branch-free (the ziggurat's first step: table lookups, a
# multiply, a sign, and the column listed if it is rejected); (3) the listed slow
# cases, one by one, from the same retry streams as :func:`standard_draw`. The weights are bitwise those of
# :func:`standard_draw` (tested), so the CUDA kernels, which draw one weight at a
# time, stay bit-identical.


@njit(inline="always", cache=True)
def row_words(n_blocks, c1, c2, c3, k0, k1, words):
    """``words[4 b : 4 b + 4]`` = the main-stream Philox words of blocks ``0..n_blocks-1`` of a row (uint32)."""
    for b in range(n_blocks):
        w0, w1, w2, w3 = philox4x32(np.uint64(b), c1, c2, c3, k0, k1)
        words[4 * b] = np.uint32(w0)
        words[4 * b + 1] = np.uint32(w1)
        words[4 * b + 2] = np.uint32(w2)
        words[4 * b + 3] = np.uint32(w3)


@njit(inline="always", cache=True)
def _ziggurat_fast_row(words, n, bits32, kn, wn, out, slow):
    """First ziggurat step of weights ``0..n-1``, as :func:`_zig_candidate` (64-bit: words ``2k, 2k+1``)
    or :func:`_normal32` (``bits32``: word ``k``), with the thresholds ``kn`` and widths ``wn`` of the
    law's ziggurat; returns how many need the slow path, listed in ``slow``.

    No branches: the sign multiplies (``x * -1.0`` is ``-x`` exactly) and the slow
    cases are listed by always writing ``k`` and advancing by the test's outcome.
    (That list also keeps LLVM from vectorizing the loop with gathers of the
    tables, which are slower than scalar loads on the CPUs we measured.)
    """
    n_slow = 0
    for k in range(n):
        if bits32:
            r = np.uint64(words[k])
            idx = np.intp(r & np.uint64(0xFF))
            rabs = r >> np.uint64(9)
            x = float(rabs) * wn[idx]
            reject = rabs >= kn[idx]
        else:
            r = (np.uint64(words[2 * k]) << np.uint64(32)) | np.uint64(words[2 * k + 1])
            idx = np.intp(r & np.uint64(0xFF))
            rabs = (r >> np.uint64(9)) & _MASK52
            x = float(rabs) * wn[idx]
            reject = rabs >= kn[idx]
        out[k] = x * (1.0 - 2.0 * float((r >> np.uint64(8)) & np.uint64(1)))
        slow[n_slow] = k
        n_slow += reject
    return n_slow


@njit(cache=True)
def standard_row(law, bits32, n, c1, c2, c3, k0, k1, words, slow, out):
    """The ``n`` unit-variance weights of one row, into ``out[:n]``: bitwise :func:`row_weight`'s.

    Parameters
    ----------
    law : int
        Code from :data:`LAW_CODES`.
    bits32 : bool
        ``precision="float32"``: 32 bits per weight.
    n : int
        Row length.
    c1, c2, c3 : uint64
        Row, layer and net counter words.
    k0, k1 : uint64
        Philox key.
    words : ndarray, shape (>= 2 n + 2,), uint32
        Scratch.
    slow : ndarray, shape (>= n,), intp
        Scratch (the columns that need a slow path).
    out : ndarray, shape (>= n,), float64
        Written.
    """
    per = weights_per_block(law, bits32)
    row_words((n + per - 1) // per, c1, c2, c3, k0, k1, words)
    # One compiled function per law (no law switch inside a row's loops; as one function,
    # LLVM's choices for the other laws' code cost the float32 Gaussian a third of its speed).
    if law == 2:
        _rademacher_row(n, words, out)
    elif law == 1:
        _uniform_row(n, words, out)
    elif bits32:  # Gaussian, Laplace, truncated normal: ziggurats
        _ziggurat_row(law, True, n, c1, c2, c3, k0, k1, words, slow, out)
    else:
        _ziggurat_row(law, False, n, c1, c2, c3, k0, k1, words, slow, out)


@njit(cache=True)
def _rademacher_row(n, words, out):
    n_full = n >> 5
    for q in range(n_full):  # whole words: a fixed 32-step inner loop with constant shifts, vectorized
        word = words[q]
        for b in range(32):
            out[32 * q + b] = 2.0 * float((word >> np.uint32(b)) & np.uint32(1)) - 1.0
    for k in range(32 * n_full, n):
        out[k] = 2.0 * float((words[k >> 5] >> np.uint32(k & 31)) & np.uint32(1)) - 1.0


@njit(cache=True)
def _uniform_row(n, words, out):
    for k in range(n):
        out[k] = _SQRT3 * (2.0 * _u01_32(words[k]) - 1.0)


@njit(cache=True)
def _ziggurat_row(law, bits32, n, c1, c2, c3, k0, k1, words, slow, out):
    """Gaussian (``law`` 0), Laplace (3) or truncated normal (4) weights of a row whose words are drawn."""
    if bits32:
        kn, wn = (_ZK32, _ZW32) if law == 0 else (_EK32, _EW32) if law == 3 else (_TK32, _TW32)
    else:
        kn, wn = (_ZK, _ZW) if law == 0 else (_EK, _EW) if law == 3 else (_TK, _TW)
    n_slow = _ziggurat_fast_row(words, n, bits32, kn, wn, out, slow)
    for i in range(n_slow):
        k = slow[i]
        # out[k] holds the candidate x; its layer is the low byte of the (last) word
        idx = np.intp(words[k if bits32 else 2 * k + 1] & np.uint32(0xFF))
        if law == 0:
            out[k] = _normal_slow(out[k], idx, np.uint64(k // 2), k % 2, c1, c2, c3, k0, k1)
        elif law == 3:
            out[k] = _exponential_slow(out[k], idx, np.uint64(k // 2), k % 2, c1, c2, c3, k0, k1)
        else:
            out[k] = _truncated_normal_slow(out[k], idx, np.uint64(k // 2), k % 2, c1, c2, c3, k0, k1)
    if law != 0:
        scale = _INV_SQRT2 if law == 3 else _TRUNC_INV_SD
        for k in range(n):
            out[k] *= scale
