"""Weight laws: unit-variance symmetric samplers driven by Philox words.

Stream layout (version :data:`STREAM_LAYOUT`; stored with every run, and a
resume under another layout is refused). The weights of a row come from its
main stream: Philox block ``b`` (counter ``c0 = b``) gives four 32-bit words,
and the row's words are read in order, block after block. In fully connected
and residual nets a row's weights are drawn only for the layer's nonzero inputs
(a weight that meets a zero input adds nothing): weight ``k`` of the stream goes
to the ``k``-th nonzero input (:func:`fmsim.kernels.scalar.nonzero_inputs`).
A conv kernel's weights are shared by all positions, so all are drawn, weight
``k`` for tap ``k``. Each law takes the bits it needs (:func:`weights_per_block`):

==========================================  ============  =====================================
law (and precision)                         bits/weight   weight ``k`` of the row
==========================================  ============  =====================================
``rademacher``                              1             bit ``k % 32`` of word ``k // 32``
``gaussian`` in ``float32``                 32            words ``2j, 2j + 1`` give weights ``2j``,
                                                          ``2j + 1`` (Box-Muller, ``j = k // 2``)
``laplace`` in ``float32``                  32            word ``k`` (inverse CDF)
``uniform``; ``truncated_normal`` in        32            word ``k`` (32-bit ziggurat for the
``float32``                                               truncated normal)
``gaussian``, ``laplace``,                  64            words ``2k, 2k + 1`` (53-bit uniforms,
``truncated_normal`` in ``float64``                       61-bit ziggurat)
==========================================  ============  =====================================

The float32 Gaussian is a Box-Muller transform computed in float32 from
polynomials (:func:`gauss32_pair`: 30 bits of word ``2j`` make the radius,
``r <= 6.55``; 25 bits of word ``2j + 1`` the angle), within 10 float32 ulp of
the radius of the float64 transform of the same words; the float32 Laplace is
``+-(-ln u) / sqrt 2`` from the same logarithm (:func:`laplace32`: 30 bits for
``u``, ``|w| <= 15.2``, 1 for the sign). The CPU rows evaluate both 16 lanes
wide with AVX-512 (:mod:`fmsim.sampling.polynomial_lanes`), 8 with AVX2, the same values
(:func:`polynomial32_row`).

The other Gaussian, Laplace and truncated-normal weights come from 256-layer ziggurats
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
``method="exact_first"`` draws no first-layer weight; unit ``r`` of layer 1 reads
its uniform from words 0 and 1 of block 0 of its row (``fmsim.first_layer``).

Orthogonal weights (``law="orthogonal"``) are not drawn entry by entry. With
``method="full"`` row ``r`` of a layer's Gaussian matrix ``G`` (``out x in``) is
the ``gaussian`` row ``r`` above (all ``in`` weights, zero inputs included), and
the layer's weights are the Haar matrix made from ``G`` by Householder QR
(:func:`fmsim.kernels.cpu_orthogonal.haar_matrix`). The exact samplers draw, per
layer, ``K ~ Bin(n, 1/2)`` from row 0 (as the Gaussian sampler does) and each
Gamma variate of a Beta from counter rows ``1, 2, ...`` with ``c0`` = its stream
(:func:`fmsim.kernels.exact.gamma_stream`; the Gaussian sampler's own Gamma is
stream 0). They add streams and change none of the above.

History: layout 1 (fmsim 0.1) took 64 bits for every weight; layout 2 (0.2.0)
took 32 or 1 for ``uniform``, ``rademacher`` and ``precision="float32"``; layout 3
(0.3.0) samples ``truncated_normal`` with its own ziggurat instead of redrawing
normals beyond the cut, and ``laplace`` with the exponential ziggurat instead of
the inverse CDF (the same laws; other random numbers). The Gaussian, uniform and
Rademacher streams are those of layout 2. Layout 4 (0.4.0) keeps the samplers
and draws FC and residual weights for nonzero inputs only (about half the draws
after a ReLU): the same law of the whole net, other random numbers. Layout 5
(0.6.0) draws the float32 Gaussian by Box-Muller and the float32 Laplace by
inversion instead of their 32-bit ziggurats (the float64 streams and the other
float32 laws are layout 4's).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.core import config as numba_config
from numba.core.codegen import get_host_cpu_features

from .polynomial_lanes import LANES as POLYNOMIAL_LANES
from .polynomial_lanes import polynomial_intrinsics
from .rng import philox4x32, u01_from_words
from .ziggurat_lanes import LANES as ZIGGURAT_LANES
from .ziggurat_lanes import first_step_intrinsics, pair_table

__all__ = [
    "STREAM_LAYOUT",
    "GAUSSIAN",
    "UNIFORM",
    "RADEMACHER",
    "LAPLACE",
    "TRUNCATED_NORMAL",
    "INPUT_LAYER",
    "STREAM_CHI_SQUARE",
    "STREAM_RELU_SHARE",
    "STREAM_PROJECTION",
    "STREAM_SIGN",
    "residual_layer",
    "weights_per_block",
    "LAW_CODES",
    "LAW_M4",
    "BLOCK_BITS",
    "MAX_FAN_IN",
    "MAX_ORTHOGONAL_ENTRIES",
    "BIAS_BLOCK",
    "standard_draw",
    "draw_standard_array",
    "draw_standard_one",
    "standard_row",
    "row_from_words",
    "rows_from_words",
    "row_scratch",
    "draw_scratch",
    "row_weight",
    "draw32",
]

#: Version of the stream layout above (which Philox bits make which weight).
STREAM_LAYOUT = 5
#: The integer code the kernels take for each law.
GAUSSIAN, UNIFORM, RADEMACHER, LAPLACE, TRUNCATED_NORMAL = range(5)
LAW_CODES = {"gaussian": GAUSSIAN, "uniform": UNIFORM, "rademacher": RADEMACHER, "laplace": LAPLACE,
             "truncated_normal": TRUNCATED_NORMAL}
#: Counter layer of the seeded input direction (the net's layers are 1..d).
INPUT_LAYER = 0
#: Streams (counter word ``c0``) of the exact samplers' Gamma variates (:func:`fmsim.kernels.exact.gamma_stream`),
#: and of the sign of a residual module's cosine (bit 0 of word 0, row 0 of the output layer).
STREAM_CHI_SQUARE = 0  # the Gaussian samplers' chi-squares
STREAM_RELU_SHARE = 1  # and 2: the Beta share of a length that a ReLU keeps (orthogonal weights)
STREAM_PROJECTION = 3  # and 4: the Beta share that an orthogonal layer onto fewer units keeps
STREAM_SIGN = 5
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
#: Largest weight matrix (entries) that ``law="orthogonal"`` draws whole (``method="full"``).
MAX_ORTHOGONAL_ENTRIES = 1 << 22
_BLOCK_MASK = np.uint64((1 << BLOCK_BITS) - 1)
_STREAM_SHIFT = np.uint64(BLOCK_BITS)
_MAX_ATTEMPTS = 63  # retries of a slow draw (each fails with probability < 0.1)

# --------------------------------------------------------------- ziggurats
# Three 256-layer ziggurats, one per law code, share one word format (8 bits choose
# the layer, 1 the sign, 52 or 23 the magnitude), one first step and one slow path;
# they differ in their tables and their base layer:
#   0 Gaussian: Marsaglia & Tsang (2000) for exp(-x^2/2), tail beyond r = 3.654;
#   3 Laplace: their exponential ziggurat for exp(-x) (|w| sqrt 2 ~ Exp(1)), tail beyond r = 7.697;
#   4 truncated normal: exp(-x^2/2) on [0, 2], lowest layers flat under the curve, no tail.
# Widths x[0..256]: x[0] the base layer's (pseudo-)width, x[256] = 0; a candidate of
# layer i is x = u x[i], kept at once if x < x[i+1] (threshold kn, widths wn = x / 2^bits).


def _marsaglia_widths(f, f_inv, r: float, v: float) -> np.ndarray:
    """Widths ``x[0..256]`` of a Marsaglia-Tsang ziggurat of layer area ``v`` and base ``r`` for density ``f``."""
    x = np.empty(257)
    x[0] = v / f(r)
    x[1] = r
    for i in range(1, 255):
        x[i + 1] = f_inv(v / x[i] + f(x[i]))
    x[256] = 0.0
    return x


def _thresholds_and_widths(x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Fast-acceptance thresholds ``kn`` and scaled widths ``wn`` of the 256 layers for a ``bits``-bit magnitude."""
    scale = 2.0**bits
    kn = np.array([int(scale * x[i + 1] / x[i]) for i in range(256)], dtype=np.uint64)
    return kn, x[:256] / scale


# Gaussian
_ZIG_R = 3.6541528853610088
_ZIG_V = 0.00492867323399
_ZX = _marsaglia_widths(lambda x: math.exp(-0.5 * x * x), lambda y: math.sqrt(-2.0 * math.log(y)), _ZIG_R, _ZIG_V)
_ZK, _ZW = _thresholds_and_widths(_ZX, 52)
_ZF = np.array([math.exp(-0.5 * v * v) for v in _ZX])  # the wedge of layer i spans y in [_ZF[i], _ZF[i+1]]

# truncated normal
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


_TX, _TF = _truncated_ziggurat_levels()  # box widths and heights: the wedge of box i spans y in [_TF[i], _TF[i+1]]
_TK, _TW = _thresholds_and_widths(_TX, 52)
_TK32, _TW32 = _thresholds_and_widths(_TX, 23)

# Laplace
_EXP_R = 7.69711747013104972
_EXP_V = 3.949659822581572e-3
_EX = _marsaglia_widths(lambda x: math.exp(-x), lambda y: -math.log(y), _EXP_R, _EXP_V)
_EK, _EW = _thresholds_and_widths(_EX, 52)
_EF = np.exp(-_EX)

_MASK52 = np.uint64((1 << 52) - 1)


def _signed_tables(kn: np.ndarray, wn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The row path's tables, indexed by the word's low 9 bits (layer and sign): ``kn`` twice, and ``wn`` then
    ``-wn``. ``float(rabs) * -wn[i]`` is ``-(float(rabs) * wn[i])`` exactly, so the first step's sign costs a
    load, not a conversion, a subtraction and a multiplication."""
    return np.concatenate([kn, kn]), np.concatenate([wn, -wn])


_ZK9, _ZW9 = _signed_tables(_ZK, _ZW)
_EK9, _EW9 = _signed_tables(_EK, _EW)
_TK9, _TW9 = _signed_tables(_TK, _TW)
_TK32_9, _TW32_9 = _signed_tables(_TK32, _TW32)
# The same side by side, for the first step in vector lanes (fmsim.sampling.ziggurat_lanes): one row per
# table, in the order of the indices _ziggurat_tables returns.
_PAIR_TABLES = np.stack([pair_table(k, w) for k, w in ((_ZK9, _ZW9), (_EK9, _EW9), (_TK9, _TW9),
                                                      (_TK32_9, _TW32_9))])
first_step_lanes64, first_step_lanes32 = first_step_intrinsics(_PAIR_TABLES)


# Not inlined at numba level: each inlined copy would carry its own copy of the tables
# (on CUDA, constant memory is 64 KiB). LLVM still inlines it on the CPU.
@njit(cache=True)
def _candidate(law, a, b):
    """First step of the ziggurat of ``law`` (0, 3 or 4) from one 64-bit word pair: (signed x, layer, accepted)."""
    r = (a << np.uint64(32)) | b
    idx = np.intp(r & np.uint64(0xFF))
    rabs = (r >> np.uint64(9)) & _MASK52
    if law == GAUSSIAN:
        wn, kn = _ZW[idx], _ZK[idx]
    elif law == LAPLACE:
        wn, kn = _EW[idx], _EK[idx]
    else:
        wn, kn = _TW[idx], _TK[idx]
    x = float(rabs) * wn
    if (r >> np.uint64(8)) & np.uint64(1):
        x = -x
    return x, idx, rabs < kn


@njit(inline="always", cache=True)
def _candidate32(word):
    """As :func:`_candidate` for the truncated normal from one 32-bit word (23-bit magnitude): the float32
    Gaussian and Laplace come from polynomials (:func:`polynomial32_row`)."""
    idx = np.intp(word & np.uint64(0xFF))
    rabs = word >> np.uint64(9)
    wn, kn = _TW32[idx], _TK32[idx]
    x = float(rabs) * wn
    if (word >> np.uint64(8)) & np.uint64(1):
        x = -x
    return x, idx, rabs < kn


@njit(inline="always", cache=True)
def _stream_c0(block, lane, attempt):
    stream = np.uint64(1 + lane + 2 * attempt)
    return (block & _BLOCK_MASK) | (stream << _STREAM_SHIFT)


@njit(cache=True)
def _ziggurat_slow(law, x, idx, block, lane, c1, c2, c3, k0, k1):
    """The rejected candidate ``x`` of layer ``idx`` of the ziggurat of ``law``, finished from its retry streams.

    Base layer (``idx == 0``; never rejected in the truncated ziggurat, whose lowest
    layers are flat): the tail, Gaussian by Marsaglia's exact method (retried until it
    accepts), Laplace as ``r + Exp(1)`` from one uniform (loss of memory). Other layers:
    the wedge keeps ``x`` with the exact probability, else the draw restarts from fresh
    words. Retry ``attempt`` reads counter :func:`_stream_c0`.
    """
    for attempt in range(_MAX_ATTEMPTS):
        w0, w1, w2, w3 = philox4x32(_stream_c0(block, lane, attempt), c1, c2, c3, k0, k1)
        if idx == 0 and law == GAUSSIAN:
            xx = -math.log(1.0 - u01_from_words(w0, w1)) / _ZIG_R
            yy = -math.log(1.0 - u01_from_words(w2, w3))
            if yy + yy > xx * xx:
                return math.copysign(_ZIG_R + xx, x)
            continue
        if idx == 0 and law == LAPLACE:
            return math.copysign(_EXP_R - math.log(1.0 - u01_from_words(w0, w1)), x)
        done, value, x_new, idx_new = _wedge_attempt(law, x, idx, w0, w1, w2, w3)
        if done:
            return value
        x, idx = x_new, idx_new
    return x  # reached with probability < 1e-60


@njit(inline="always", cache=True)
def _wedge_attempt(law, x, idx, w0, w1, w2, w3):
    """One retry of the rejected candidate ``x`` of layer ``idx`` (not the base layer) from its words ``w0..w3``:
    ``(done, value, x_new, idx_new)``. The wedge keeps ``x`` with the exact probability (``w0, w1``); else the
    candidate of ``w2, w3`` is the draw if its first step accepts it (``done``), and the next retry's otherwise."""
    if law == GAUSSIAN:
        lo, hi, fx = _ZF[idx], _ZF[idx + 1], math.exp(-0.5 * x * x)
    elif law == LAPLACE:
        lo, hi, fx = _EF[idx], _EF[idx + 1], math.exp(-abs(x))
    else:
        lo, hi, fx = _TF[idx], _TF[idx + 1], math.exp(-0.5 * x * x)
    keep = lo + u01_from_words(w0, w1) * (hi - lo) < fx
    # the fresh words' candidate made either way, so that the wedge's coin (kept 50% to 56% of the time) picks a
    # value instead of a branch that was mispredicted about as often
    x_new, idx_new, ok = _candidate(law, w2, w3)
    return keep or ok, x if keep else x_new, x_new, idx_new


@njit(cache=True)
def _ziggurat_slow_pair(law, x_a, idx_a, block_a, lane_a, c1_a, x_b, idx_b, block_b, lane_b, c1_b, c2, c3, k0, k1):
    """Two slow draws at once: ``(a, b)``, each bitwise what :func:`_ziggurat_slow` gives it.

    A slow draw waits on the latency of its retry's Philox block, a chain of ten rounds of multiplies. Here the
    two first retries are computed side by side, so that their chains overlap (one core of the AMD Zen 4: 17.0
    against 24.6 ns a draw; docs, *Performance*). A draw its first retry does not finish (0.7% of them) or a
    base-layer draw is finished by :func:`_ziggurat_slow`, from its first retry again: the same words, the same
    value."""
    if idx_a != 0 and idx_b != 0:
        a0, a1, a2, a3 = philox4x32(_stream_c0(block_a, lane_a, 0), c1_a, c2, c3, k0, k1)
        b0, b1, b2, b3 = philox4x32(_stream_c0(block_b, lane_b, 0), c1_b, c2, c3, k0, k1)
        done_a, value_a, _, _ = _wedge_attempt(law, x_a, idx_a, a0, a1, a2, a3)
        done_b, value_b, _, _ = _wedge_attempt(law, x_b, idx_b, b0, b1, b2, b3)
        if done_a and done_b:
            return value_a, value_b
    else:
        done_a = done_b = False
        value_a = value_b = 0.0
    if not done_a:
        value_a = _ziggurat_slow(law, x_a, idx_a, block_a, lane_a, c1_a, c2, c3, k0, k1)
    if not done_b:
        value_b = _ziggurat_slow(law, x_b, idx_b, block_b, lane_b, c1_b, c2, c3, k0, k1)
    return value_a, value_b


@njit(inline="always", cache=True)
def ziggurat_draw(law, a, b, block, lane, c1, c2, c3, k0, k1):
    """Unscaled draw of the ziggurat of ``law`` (N(0, 1); standard Laplace, variance 2; N(0, 1) cut at +-2)."""
    x, idx, ok = _candidate(law, a, b)
    if ok:
        return x
    # lane as an intp, not the callers' literal 0 or 1: one compile of the slow path per law, not three
    return _ziggurat_slow(law, x, idx, block, np.intp(lane), c1, c2, c3, k0, k1)


@njit(inline="always", cache=True)
def _unit_scale(law):
    """Factor that gives the unscaled draw of the ziggurat of ``law`` (0, 3 or 4) unit variance (1 for the
    Gaussian: ``x * 1.0`` is ``x`` exactly)."""
    if law == GAUSSIAN:
        return 1.0
    return _INV_SQRT2 if law == LAPLACE else _TRUNC_INV_SD


# ------------------------------------------------------------ dispatcher
_SQRT3 = math.sqrt(3.0)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@njit(inline="always", cache=True)
def standard_draw(law, a, b, block, lane, c1, c2, c3, k0, k1):
    """One unit-variance weight of the given law.

    Parameters
    ----------
    law : int
        Code from ``LAW_CODES``.
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
    if law == UNIFORM:
        return _SQRT3 * (2.0 * u01_from_words(a, b) - 1.0)
    if law == RADEMACHER:
        return 1.0 if (a >> np.uint64(31)) else -1.0
    x = ziggurat_draw(law, a, b, block, lane, c1, c2, c3, k0, k1)
    return x * _unit_scale(law)


# ------------------------------------------------------ 32- and 1-bit weights
_TWO_M32 = 2.0**-32


@njit(inline="always", cache=True)
def _u01_32(word):
    """Midpoint uniform in ``(0, 1)`` from one 32-bit word: ``(word + 1/2) 2^-32``, exact in float64."""
    return (float(word) + 0.5) * _TWO_M32


# float32 Gaussian (layout 5): Box-Muller in float32, from branch-free polynomials (16 lanes wide in
# polynomial_lanes where numba targets AVX-512; elsewhere LLVM vectorizes the loop).
# Weights 2j and 2j + 1 of a row share the word pair (2j, 2j + 1):
#   u1 = t 2^-31, t = 2 (a >> 2) + 1 (30 bits of word a; odd, so u1 in (0, 1) and ln u1 is finite);
#   angle = q pi/2 + theta: q = b >> 30 the quadrant, theta in (-pi/4, pi/4) from bits 7-29 of word b;
#   w_2j = r cos(angle), w_2j+1 = r sin(angle), r = sqrt(-2 ln u1) <= sqrt(62 ln 2) = 6.55.
# ln, sin and cos are Cephes' logf, sinf and cosf polynomials (each within 2 float32 ulp on its range);
# against a float64 Box-Muller of the same u1 and angle they agree within 10 float32 ulp of r (tested).
_F32 = np.float32
_LN_P1, _LN_P2, _LN_P3 = _F32(7.0376836292e-2), _F32(-1.1514610310e-1), _F32(1.1676998740e-1)
_LN_P4, _LN_P5, _LN_P6 = _F32(-1.2420140846e-1), _F32(1.4249322787e-1), _F32(-1.6668057665e-1)
_LN_P7, _LN_P8, _LN_P9 = _F32(2.0000714765e-1), _F32(-2.4999993993e-1), _F32(3.3333331174e-1)
_SIN_P1, _SIN_P2, _SIN_P3 = _F32(-1.9515295891e-4), _F32(8.3321608736e-3), _F32(-1.6666654611e-1)
_COS_P1, _COS_P2, _COS_P3 = _F32(2.443315711809948e-5), _F32(-1.388731625493765e-3), _F32(4.166664568298827e-2)
_F32_HALF, _F32_ONE, _F32_TWO = _F32(0.5), _F32(1.0), _F32(2.0)
_F32_SQRT2 = _F32(math.sqrt(2.0))
_F32_INV_SQRT2 = _F32(1.0 / math.sqrt(2.0))
_F32_LN2 = _F32(math.log(2.0))
_F32_2M31 = _F32(2.0**-31)
_F32_ANGLE_STEP = _F32(0.5 * math.pi / 2**23)
_T_TOP = np.int32(math.ceil(math.sqrt(2.0) * 2**30))  # t above it: u1 > 1/sqrt 2, ln u1 from the exact u1 - 1
_MANTISSA_BITS, _ONE_BITS = np.int32(0x7FFFFF), np.int32(0x3F800000)


# The scalar steps of the float32 polynomial rows (_bm32_t, _exponent_mantissa_bits, _neg_log_u31, _bm32_pair,
# _laplace32_from) are plain functions, which LLVM inlines into the rows' vector loops, not numba-inlined ones:
# inlined by numba into every float32 kernel's parallel loop they made its first compile 1.4x longer (the FC
# kernel: 44 s against 31 s), for the same bits and speed.
@njit(cache=True)
def _bm32_t(a):
    """The odd ``t`` in ``[1, 2^31)`` of the radius uniform ``u1 = t 2^-31``, from word ``a`` (its bits 2-31)."""
    return np.int32(((np.uint32(a) >> np.uint32(2)) << np.uint32(1)) | np.uint32(1))


@njit(cache=True)
def _exponent_mantissa_bits(ft):
    """``(e, m)`` with ``ft = m 2^e``, ``m`` in ``[1, 2)``, for a positive normal float32 ``ft``: read from its
    bits (the CPU rows: vectorizes)."""
    bits = np.float32(ft).view(np.int32)
    m = np.int32((bits & _MANTISSA_BITS) | _ONE_BITS).view(np.float32)
    return np.int32((bits >> np.int32(23)) - np.int32(127)), m


@njit(inline="always", cache=True)
def _exponent_mantissa_frexp(ft):
    """As :func:`_exponent_mantissa_bits`, by ``math.frexp`` (one weight at a time: CUDA, the reference)."""
    m, e = math.frexp(float(ft))
    return np.int32(e - 1), _F32(2.0 * m)


@njit(cache=True)
def _neg_log_u31(t, e, m):
    """``-ln u1`` in float32 for ``u1 = t 2^-31`` with ``float32(t) = m 2^e`` (:func:`_bm32_t`)."""
    fold = m > _F32_SQRT2  # ln m on [1/sqrt 2, sqrt 2): m/2 - 1 and m - 1 are exact (Sterbenz)
    x = m * _F32_HALF - _F32_ONE if fold else m - _F32_ONE
    ef = np.int32(e + np.int32(1)) if fold else e
    top = t > _T_TOP  # u1 near 1: float32(t) has lost bits that ln u1 ~ u1 - 1 needs; x from the integer
    x = _F32(np.int32(np.int64(t) - np.int64(2**31))) * _F32_2M31 if top else x
    ef = np.int32(31) if top else ef  # now u1 = (1 + x) 2^(ef - 31)
    z = x * x
    z2 = z * z
    p = ((_LN_P9 + _LN_P8 * x) + (_LN_P7 + _LN_P6 * x) * z) + \
        (((_LN_P5 + _LN_P4 * x) + (_LN_P3 + _LN_P2 * x) * z) + _LN_P1 * z2) * z2
    ln1p = x + (x * z * p - _F32_HALF * z)  # ln(1 + x), Cephes' logf polynomial in Estrin's order
    return _F32(np.int32(np.int32(31) - ef)) * _F32_LN2 - ln1p  # (31 - ef) ln 2 - ln(1 + x)


@njit(cache=True)
def _bm32_pair(t, e, m, b):
    """The pair ``(r cos(angle), r sin(angle))`` in float32 from ``u1 = t 2^-31`` (``float32(t) = m 2^e``)
    and word ``b``."""
    r = math.sqrt(_F32_TWO * _neg_log_u31(t, e, m))  # float32 sqrt; numba-cuda has no np.sqrt on scalars
    q = np.uint32(b) >> np.uint32(30)
    th = (_F32(np.int32(np.int32((np.uint32(b) >> np.uint32(7)) & np.uint32(0x7FFFFF)) - np.int32(1 << 22))) +
          _F32_HALF) * _F32_ANGLE_STEP
    z = th * th
    s = ((_SIN_P1 * z + _SIN_P2) * z + _SIN_P3) * z * th + th
    c = ((_COS_P1 * z + _COS_P2) * z + _COS_P3) * z * z - _F32_HALF * z + _F32_ONE
    odd = (q & np.uint32(1)) != np.uint32(0)  # quadrants 1, 3: cos and sin swap
    u = s if odd else c
    v = c if odd else s
    neg_u = ((q ^ (q >> np.uint32(1))) & np.uint32(1)) != np.uint32(0)  # cos < 0 in quadrants 1, 2
    neg_v = q > np.uint32(1)  # sin < 0 in quadrants 2, 3
    return r * (-u if neg_u else u), r * (-v if neg_v else v)


@njit(inline="always", cache=True)
def polynomial32_blocks(n):
    """Philox blocks of a padded float32 polynomial row of ``n`` weights: ``32 ceil(n / 32)`` weights, one
    word each. A whole number of the vector loop's steps leaves no scalar remainder, which for rows of tens
    of weights cost more than the extra Philox words."""
    return 8 * ((n + 31) // 32)


@njit(inline="always", cache=True)
def gauss32_pair(a, b):
    """Float32 Gaussian weights ``2j`` and ``2j + 1`` of a row from its words ``a = 2j`` and ``b = 2j + 1``
    (one pair at a time: CUDA, the reference)."""
    t = _bm32_t(a)
    e, m = _exponent_mantissa_frexp(_F32(t))
    return _bm32_pair(t, e, m, b)


@njit(inline="always", cache=True)
def gauss32_row(n, c1, c2, c3, k0, k1, words, out):
    """The float32 Gaussian weights ``out[:n]`` of a row, bitwise :func:`gauss32_pair`'s, in one vectorized loop
    over the padded row (:func:`polynomial32_blocks`; ``out`` and ``words`` must hold ``32 ceil(n / 32)``)."""
    row_words(polynomial32_blocks(n), c1, c2, c3, k0, k1, words)
    gauss32_from_words(n, words, out)


@njit(inline="always", cache=True)
def _gauss32_from_words_loop(n, words, out):
    """:func:`gauss32_row` from the row's words (``words`` holds ``32 ceil(n / 32)``: where the row has fewer,
    the rest makes weights past ``n``, which no one reads), in a loop that LLVM vectorizes."""
    for j in range(16 * ((n + 31) // 32)):
        t = _bm32_t(words[2 * j])
        e, m = _exponent_mantissa_bits(_F32(t))
        x, y = _bm32_pair(t, e, m, words[2 * j + 1])
        out[2 * j] = x
        out[2 * j + 1] = y


@njit(cache=True)
def _laplace32_from(t, e, m, word):
    """``+-(-ln u) / sqrt 2`` for ``u = t 2^-31`` (``float32(t) = m 2^e``), the sign from bit 0 of ``word``."""
    v = _neg_log_u31(t, e, m) * _F32_INV_SQRT2
    return -v if np.uint32(word) & np.uint32(1) else v


@njit(inline="always", cache=True)
def laplace32(word):
    """Float32 Laplace weight (unit variance) from its word: ``+-(-ln u) / sqrt 2``, ``u = t 2^-31`` from bits
    2-31 (:func:`_bm32_t`), the sign from bit 0 (one weight at a time: CUDA, the reference)."""
    t = _bm32_t(word)
    e, m = _exponent_mantissa_frexp(_F32(t))
    return _laplace32_from(t, e, m, word)


@njit(inline="always", cache=True)
def laplace32_row(n, c1, c2, c3, k0, k1, words, out):
    """The float32 Laplace weights ``out[:n]`` of a row, bitwise :func:`laplace32`'s, in one vectorized loop
    over the padded row (:func:`polynomial32_blocks`)."""
    row_words(polynomial32_blocks(n), c1, c2, c3, k0, k1, words)
    laplace32_from_words(n, words, out)


@njit(inline="always", cache=True)
def _laplace32_from_words_loop(n, words, out):
    """:func:`laplace32_row` from the row's words (``words`` holds ``32 ceil(n / 32)``, as
    :func:`gauss32_from_words`), in a loop that LLVM vectorizes."""
    for k in range(32 * ((n + 31) // 32)):
        t = _bm32_t(words[k])
        e, m = _exponent_mantissa_bits(_F32(t))
        out[k] = _laplace32_from(t, e, m, words[k])


@njit(inline="always", cache=True)
def polynomial32(law, bits32):
    """Whether ``law`` is drawn by a float32 polynomial transform (:func:`polynomial32_row`): the float32
    Gaussian and Laplace."""
    return bits32 and (law == GAUSSIAN or law == LAPLACE)


@njit(inline="always", cache=True)
def polynomial32_row(law, n, c1, c2, c3, k0, k1, words, out):
    """The float32 Gaussian (``law`` 0) or Laplace (3) weights of a row: :func:`gauss32_row` or
    :func:`laplace32_row` (``out`` and ``words`` hold ``32 ceil(n / 32)``)."""
    if law == GAUSSIAN:
        gauss32_row(n, c1, c2, c3, k0, k1, words, out)
    else:
        laplace32_row(n, c1, c2, c3, k0, k1, words, out)


@njit(inline="always", cache=True)
def polynomial32_row_from_words(law, n, words, out):
    """:func:`polynomial32_row` from the row's words (:func:`gauss32_from_words`, :func:`laplace32_from_words`):
    ``out`` holds ``32 ceil(n / 32)``, and so does ``words`` (words past the row's own make weights past ``n``)."""
    if law == GAUSSIAN:
        gauss32_from_words(n, words, out)
    else:
        laplace32_from_words(n, words, out)


@njit(inline="always", cache=True)
def draw32(law, word, k, c1, c2, c3, k0, k1):
    """Weight ``k`` of a row from its 32-bit word (uniform; Laplace and truncated normal in float32), mean 0,
    variance 1. (The float32 Gaussian takes a pair of words: :func:`gauss32_pair`.)"""
    if law == UNIFORM:
        return _SQRT3 * (2.0 * _u01_32(word) - 1.0)
    if law == LAPLACE:
        return float(laplace32(word))
    x, idx, ok = _candidate32(word)
    if not ok:
        x = _ziggurat_slow(law, x, idx, np.uint64(k // 2), k % 2, c1, c2, c3, k0, k1)
    return x * _unit_scale(law)


@njit(inline="always", cache=True)
def weights_per_block(law, bits32):
    """Weights per Philox call in a row: 128 (Rademacher), 4 (uniform, or ``bits32``: precision float32) or 2."""
    if law == RADEMACHER:
        return 128
    if law == UNIFORM or bits32:
        return 4
    return 2


@njit(inline="always", cache=True)
def block_word(q, w0, w1, w2, w3):
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
        Code from ``LAW_CODES``.
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
        word = block_word(q >> 5, w0, w1, w2, w3)
        return 1.0 if (word >> np.uint64(q & 31)) & np.uint64(1) else -1.0
    if per == 4:
        if law == GAUSSIAN:  # float32 Gaussian: the block's word pair (0, 1) or (2, 3); cos for even k, sin for odd
            a, b = (w0, w1) if q < 2 else (w2, w3)
            x, y = gauss32_pair(a, b)
            return x if q % 2 == 0 else y
        return draw32(law, block_word(q, w0, w1, w2, w3), k, c1, c2, c3, k0, k1)
    a, b = (w0, w1) if q == 0 else (w2, w3)  # one call site: each inlined copy costs compile time
    return standard_draw(law, a, b, np.uint64(k // 2), q, c1, c2, c3, k0, k1)


@njit(cache=True)
def fill_standard(law, bits32, k0, k1, c1, c2, c3, out):
    """``out[k]`` = weight ``k`` of the row, one Philox block at a time (the CUDA kernels' and the reference's path)."""
    n = out.shape[0]
    per = weights_per_block(law, bits32)
    for blk in range((n + per - 1) // per):
        w0, w1, w2, w3 = philox4x32(np.uint64(blk), c1, c2, c3, k0, k1)
        for k in range(blk * per, min(n, (blk + 1) * per)):
            out[k] = row_weight(law, bits32, k, w0, w1, w2, w3, c1, c2, c3, k0, k1)


@njit(cache=True)
def fill_gaussian(k0, k1, c1, c2, c3, out):
    """:func:`fill_standard` of the 64-bit Gaussian, compiled alone: ``out[k]`` is the ziggurat's draw from the
    words ``(2 (k % 2), 2 (k % 2) + 1)`` of block ``k // 2``. It draws the seeded input direction, so a run
    without ``x`` does not compile every law's row for it (2.4 s against about 0.5 s on an AMD EPYC)."""
    n = out.shape[0]
    for blk in range((n + 1) // 2):
        block = np.uint64(blk)
        w0, w1, w2, w3 = philox4x32(block, c1, c2, c3, k0, k1)
        out[2 * blk] = ziggurat_draw(GAUSSIAN, w0, w1, block, 0, c1, c2, c3, k0, k1)
        if 2 * blk + 1 < n:
            out[2 * blk + 1] = ziggurat_draw(GAUSSIAN, w2, w3, block, 1, c1, c2, c3, k0, k1)


def draw_standard_array(law: str, n: int, key: tuple[int, int], row: int, layer: int, net: int,
                        precision: str = "float64") -> np.ndarray:
    """The ``n`` standardized weights of one row, as the kernels draw them.

    Parameters
    ----------
    law : str
        A name from ``LAW_CODES``.
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
    k0, k1, c1, c2, c3 = (np.uint64(v) for v in (key[0], key[1], row, layer, net))
    if law == "gaussian" and precision == "float64":  # compiled alone (the seeded input direction's draw)
        fill_gaussian(k0, k1, c1, c2, c3, out)
    else:
        fill_standard(LAW_CODES[law], precision == "float32", k0, k1, c1, c2, c3, out)
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
def residual_layer(module, n_hidden, j):
    """Counter layer of layer ``j`` of residual module ``module`` (0-based) with ``n_hidden`` hidden layers: ``j``
    is ``0..n_hidden - 1`` for a hidden layer, ``n_hidden`` for the module's output layer (``M_l`` of module
    ``l = module + 1`` is recorded after it). Modules take consecutive blocks of layers from 1 on."""
    return np.uint64(module * (n_hidden + 1) + 1 + j)


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
def _signed_candidate(words, k, bits32, wn9):
    """The ziggurat's first step for weight ``k`` of a row from its word(s), as :func:`_candidate`
    (64-bit: words ``2k, 2k+1``) or :func:`_candidate32` (``bits32``: word ``k``), with the signed widths ``wn9``
    (:func:`_signed_tables`): ``(x, rabs, i)``, ``x`` the signed candidate, ``rabs`` its magnitude bits and
    ``i`` the word's low 9 bits (the layer is ``i & 255``)."""
    if bits32:
        r = np.uint64(words[k])
        rabs = r >> np.uint64(9)
    else:
        r = (np.uint64(words[2 * k]) << np.uint64(32)) | np.uint64(words[2 * k + 1])
        rabs = (r >> np.uint64(9)) & _MASK52
    i = np.intp(r & np.uint64(0x1FF))
    return float(rabs) * wn9[i], rabs, i


@njit(inline="always", cache=True)
def _ziggurat_fast_row_scalar(words, n, bits32, kn9, wn9, table, scale, out, slow):
    """First ziggurat step of weights ``0..n-1`` (:func:`_signed_candidate`) with the thresholds ``kn9`` and
    signed widths ``wn9`` of the law's ziggurat (:func:`_signed_tables`), times ``scale``, into ``out``
    (float64, or float32: rounded once, from the float64 product); returns how many need the slow path,
    listed in ``slow``. (``table`` is not read: the signature is :func:`_ziggurat_fast_row_lanes`'s.)

    No branches: the slow cases are listed by always writing ``k`` and advancing by the test's outcome.
    (That list also keeps LLVM from vectorizing the loop with gathers of the tables, which are slower than
    scalar loads on the CPUs we measured: ``bench/_ziggurat_lanes.py``.)
    """
    n_slow = 0
    for k in range(n):
        x, rabs, i = _signed_candidate(words, k, bits32, wn9)
        out[k] = x * scale
        slow[n_slow] = k
        n_slow += rabs >= kn9[i]
    return n_slow


@njit(inline="always", cache=True)
def _ziggurat_fast_row_lanes(words, n, bits32, kn9, wn9, table, scale, out, slow):
    """:func:`_ziggurat_fast_row_scalar` in groups of 8 weights in AVX-512 vector lanes
    (:mod:`fmsim.sampling.ziggurat_lanes`, reading row ``table`` of ``_PAIR_TABLES``: ``kn9`` and ``wn9`` side
    by side, :func:`_ziggurat_tables`): the same weights and slow list. The last group runs past the row: it
    writes ``out`` up to ``n`` rounded up to 8 and ``slow`` up to 8 entries past the list, hence the slack of
    :func:`row_scratch`.

    One loop, no scalar remainder: each inlined copy of a loop lengthens the kernels' first compile (a scalar
    remainder loop beside this one cost the float64 FC kernel 2.2 to 2.7 s, about 12%; a call instead of
    inlining cost the demo's truncated-normal scheme 10% at widths up to 50)."""
    n_slow = 0
    for k in range(0, n, ZIGGURAT_LANES):
        if bits32:
            n_slow = first_step_lanes32(words, k, n, table, scale, out, slow, n_slow)
        else:
            n_slow = first_step_lanes64(words, k, n, table, scale, out, slow, n_slow)
    return n_slow


def numba_compiles_avx512() -> bool:
    """Whether numba compiles this process's kernels with AVX-512 (``avx512f``): its own choice of features
    (``NUMBA_CPU_FEATURES``, else the host's, less AVX if ``NUMBA_ENABLE_AVX=0``; empty where LLVM cannot
    tell); False where ``NUMBA_CPU_NAME`` sets the target (e.g. ``generic``)."""
    if numba_config.CPU_NAME is not None:
        return False
    features = numba_config.CPU_FEATURES if numba_config.CPU_FEATURES is not None else get_host_cpu_features()
    return "+avx512f" in features.split(",")


def _philox_vector_blocks() -> int:
    """Blocks per step of LLVM's vector loop in :func:`row_words` for the features numba compiles for
    (:func:`numba_compiles_avx512`): 8 with AVX-512 (64-bit lanes of a ``zmm``), else 4 (AVX2: a ``ymm``).
    (Where LLVM keeps an AVX-512 CPU to ``ymm``, as on some Intel cores, 8 costs an extra group of 4 in half the
    rows; it never changes a weight.)"""
    return 8 if numba_compiles_avx512() else 4


_VECTOR_BLOCKS = _philox_vector_blocks()
#: The first ziggurat step of a row, ``(words, n, bits32, kn9, wn9, table, scale, out, slow) -> n_slow``: in AVX-512
#: vector lanes where numba compiles with AVX-512, else one weight at a time (the same weights either way).
_ziggurat_fast_row = _ziggurat_fast_row_lanes if numba_compiles_avx512() else _ziggurat_fast_row_scalar

gauss32_lanes, laplace32_lanes = polynomial_intrinsics(
    {"LN_P1": _LN_P1, "LN_P2": _LN_P2, "LN_P3": _LN_P3, "LN_P4": _LN_P4, "LN_P5": _LN_P5, "LN_P6": _LN_P6,
     "LN_P7": _LN_P7, "LN_P8": _LN_P8, "LN_P9": _LN_P9, "SIN_P1": _SIN_P1, "SIN_P2": _SIN_P2, "SIN_P3": _SIN_P3,
     "COS_P1": _COS_P1, "COS_P2": _COS_P2, "COS_P3": _COS_P3, "HALF": _F32_HALF, "ONE": _F32_ONE, "TWO": _F32_TWO,
     "SQRT2": _F32_SQRT2, "INV_SQRT2": _F32_INV_SQRT2, "LN2": _F32_LN2, "TWO_M31": _F32_2M31,
     "ANGLE_STEP": _F32_ANGLE_STEP}, int(_T_TOP))


@njit(inline="always", cache=True)
def _gauss32_from_words_lanes(n, words, out):
    """:func:`_gauss32_from_words_loop` 16 pairs at a time in AVX-512 lanes (:mod:`fmsim.sampling.polynomial_lanes`):
    the same weights, bit for bit."""
    for j in range(0, 16 * ((n + 31) // 32), POLYNOMIAL_LANES):
        gauss32_lanes(words, j, out)


@njit(inline="always", cache=True)
def _laplace32_from_words_lanes(n, words, out):
    """:func:`_laplace32_from_words_loop` 16 weights at a time in AVX-512 lanes: the same weights, bit for bit."""
    for k in range(0, 32 * ((n + 31) // 32), POLYNOMIAL_LANES):
        laplace32_lanes(words, k, out)


# The float32 polynomial rows' transform: in explicit 512-bit lanes where numba compiles with AVX-512 (LLVM's own
# loop may run 256 bits wide there), else LLVM's loop.
if numba_compiles_avx512():
    gauss32_from_words, laplace32_from_words = _gauss32_from_words_lanes, _laplace32_from_words_lanes
else:
    gauss32_from_words, laplace32_from_words = _gauss32_from_words_loop, _laplace32_from_words_loop


@njit(inline="always", cache=True)
def whole_vector_blocks(n_blocks):
    """``n_blocks`` rounded up to whole steps of LLVM's vector loop in :func:`row_words` (:data:`_VECTOR_BLOCKS`:
    4 or 8 blocks): a block of the scalar remainder loop costs about as much as a whole vector step (an AVX-512
    AMD EPYC: 24 blocks 42 ns, 28 blocks 68 ns, 32 blocks 58 ns). The extra words are never read."""
    return (n_blocks + (_VECTOR_BLOCKS - 1)) & ~(_VECTOR_BLOCKS - 1)


@njit(inline="always", cache=True)
def blocks_read(law, bits32, n):
    """Philox blocks whose words a row of ``n`` weights reads: ``ceil(n / per)`` (``per`` from
    :func:`weights_per_block`), with no padding (the rows of :func:`fmsim.sampling.row_groups.group_words`)."""
    per = weights_per_block(law, bits32)
    return (n + per - 1) // per


@njit(inline="always", cache=True)
def row_blocks(law, bits32, n):
    """Philox blocks that :func:`standard_row` draws for a row of ``n`` weights: :func:`blocks_read`, rounded
    up to whole vector steps (:func:`whole_vector_blocks`) for every law but Rademacher. (The polynomial rows
    draw :func:`polynomial32_blocks`.)"""
    n_blocks = blocks_read(law, bits32, n)
    return n_blocks if law == RADEMACHER else whole_vector_blocks(n_blocks)


@njit(inline="always", cache=True)
def row_scratch(n_max):
    """The scratch ``(words, slow, out, out32)`` of :func:`standard_row` for rows of up to ``n_max`` weights.

    ``words`` holds a row's Philox words (at most ``2 n + 30``: two per weight at 64 bits, rounded up to a
    whole group of 8 blocks, :func:`whole_vector_blocks`; or ``32 ceil(n / 32)`` for :func:`polynomial32_row`);
    the rest is :func:`draw_scratch`'s.
    """
    slow, out, out32 = draw_scratch(n_max)
    return np.empty(2 * n_max + 32, dtype=np.uint32), slow, out, out32


@njit(inline="always", cache=True)
def draw_scratch(n_max):
    """The scratch ``(slow, out, out32)`` that turns the words of rows of up to ``n_max`` weights into weights
    (:func:`row_from_words`, :func:`polynomial32_row_from_words`): ``slow`` the columns that need a slow path
    and ``out`` the weights, each 8 entries longer than a row (the first step in vector lanes writes whole
    groups of 8: :func:`_ziggurat_fast_row_lanes`); ``out32`` the weights of a float32 run's rows
    (``32 ceil(n / 32)``: :func:`polynomial32_row` writes whole padded rows), in float32."""
    return np.empty(n_max + 8, dtype=np.intp), np.empty(n_max + 8), np.empty(n_max + 32, dtype=np.float32)


# Inlined into each kernel (numba-level), with the per-law passes below: called once per row,
# as up to 0.4.0, they took 11% to 33% of the FC kernels' time (bench/bench_row.py times both).
@njit(inline="always", cache=True)
def standard_row(law, bits32, n, c1, c2, c3, k0, k1, words, slow, out):
    """The ``n`` unit-variance weights of one row, into ``out[:n]``: bitwise :func:`row_weight`'s.

    Parameters
    ----------
    law : int
        Code from ``LAW_CODES``.
    bits32 : bool
        ``precision="float32"``: 32 bits per weight.
    n : int
        Row length.
    c1, c2, c3 : uint64
        Row, layer and net counter words.
    k0, k1 : uint64
        Philox key.
    words, slow : ndarray, uint32 and intp
        Scratch, from :func:`row_scratch`.
    out : ndarray, shape (>= n,), float64 or float32
        Written: each weight computed in float64, rounded once to ``out``'s type (float32 runs draw into
        float32 scratch).

    Not for the float32 Gaussian and Laplace (:func:`polynomial32` true): their rows come from
    :func:`polynomial32_row`, which the kernels call instead. (Handled here too, the polynomial
    loops were compiled into every kernel twice: the FC kernel's first compile took 3.6x longer.)
    """
    row_words(row_blocks(law, bits32, n), c1, c2, c3, k0, k1, words)
    row_from_words(law, bits32, n, c1, c2, c3, k0, k1, words, slow, out)


@njit(inline="always", cache=True)
def row_from_words(law, bits32, n, c1, c2, c3, k0, k1, words, slow, out):
    """:func:`standard_row` from the row's Philox words, drawn already into ``words`` (by
    :func:`row_words`, or for 8 rows at once by :func:`fmsim.sampling.row_groups.group_words`; the first step
    reads whole groups of 8 weights' words, past the row's own): :func:`rows_from_words` of one row."""
    rows_from_words(law, bits32, 1, n, n, c1, c2, c3, k0, k1, words, slow, out)


@njit(inline="always", cache=True)
def rows_from_words(law, bits32, n_rows, row_weights, n, c1, c2, c3, k0, k1, words, slow, out):
    """The weights of ``n_rows`` consecutive rows of ``n`` weights (rows ``c1 .. c1 + n_rows - 1``) at once,
    from their words drawn together, row after row (:func:`fmsim.sampling.row_groups.group_words`), each the
    weight :func:`row_from_words` gives that row alone.

    ``row_weights >= n`` is the weights a row's words hold (``nb`` blocks times :func:`weights_per_block`):
    row ``r``'s weights go to ``out[row_weights r : row_weights r + n]``, those between rows are written and
    never read. The transform runs once over all the rows' words, read as one long row; a ziggurat's slow
    path then finishes the listed weights that belong to a row, each from its own row's retry streams
    (:func:`_ziggurat_row`). ``slow`` holds ``n_rows row_weights + 8`` entries, ``out`` ``n_rows row_weights
    + 8``. Not for the float32 Gaussian and Laplace (:func:`polynomial32_row_from_words`).
    """
    # One pass per law, each its own loop: the law is switched per call, never inside a row's loops.
    if law == RADEMACHER:
        _rademacher_row(n_rows * row_weights, words, out)
    elif law == UNIFORM:
        _uniform_row(n_rows * row_weights, words, out)
    elif bits32:  # ziggurats; the literal True/False lets each inlined copy fold its word size away
        _ziggurat_row(law, True, n_rows, row_weights, n, c1, c2, c3, k0, k1, words, slow, out)
    else:
        _ziggurat_row(law, False, n_rows, row_weights, n, c1, c2, c3, k0, k1, words, slow, out)


@njit(inline="always", cache=True)
def _rademacher_row(n, words, out):
    # (Of the kernels, conv rows use it; FC and residual rows add table entries, kernels.scalar.rademacher_chunk.)
    for k in range(n):
        out[k] = 2.0 * float((words[k >> 5] >> np.uint32(k & 31)) & np.uint32(1)) - 1.0


@njit(inline="always", cache=True)
def _uniform_row(n, words, out):
    for k in range(n):
        out[k] = _SQRT3 * (2.0 * _u01_32(words[k]) - 1.0)


# A called function, not inlined: numba's parallel-loop analysis failed on global arrays
# inlined into a prange body (the kernels' loops until fmsim 0.12), so the kernels get the tables as
# this function's return values.
@njit(cache=True)
def _ziggurat_tables(law, bits32):
    """Thresholds ``kn9`` and signed scaled widths ``wn9`` (:func:`_signed_tables`) of the ziggurat of ``law``
    (0, 3 or 4) for the first step of :func:`_ziggurat_fast_row`: 52-bit magnitudes, or 23-bit ones if
    ``bits32`` (law 4); and ``table``, the row of ``_PAIR_TABLES`` that holds them side by side (the argument
    ``table`` of the first step's intrinsics, :mod:`fmsim.sampling.ziggurat_lanes`)."""
    if bits32:  # only the truncated normal has a 32-bit ziggurat
        return _TK32_9, _TW32_9, 3
    if law == GAUSSIAN:
        return _ZK9, _ZW9, 0
    if law == LAPLACE:
        return _EK9, _EW9, 1
    return _TK9, _TW9, 2


@njit(inline="always", cache=True)
def _ziggurat_row(law, bits32, n_rows, row_weights, n, c1, c2, c3, k0, k1, words, slow, out):
    """Gaussian (``law`` 0), Laplace (3) or truncated normal (4) weights of ``n_rows`` rows of ``n`` weights
    (rows ``c1 .. c1 + n_rows - 1``) whose words are drawn, each ``(x * s)`` in float64 (``x`` the ziggurat's
    draw, ``s`` the law's unit scale), stored in ``out``'s type: row ``r``'s weights at ``out[row_weights r:]``
    from its words at ``words[row_weights r:]`` (32-bit) or ``words[2 row_weights r:]`` (64-bit).

    One first step over all the rows' words, read as one long row, then the slow path of the listed weights
    that belong to a row (column ``k < n``; the ``row_weights - n`` between rows are written, never read),
    each from its own row's retry streams (counter ``c1 + r``, block and lane of its column ``k``): each row
    gets the weights it gets drawn alone (``n_rows = 1``, ``row_weights = n``). ``slow`` holds ``n_rows
    row_weights + 8`` entries."""
    kn9, wn9, table = _ziggurat_tables(law, bits32)
    scale = _unit_scale(law)
    n_slow = _ziggurat_fast_row(words, n_rows * row_weights, bits32, kn9, wn9, table, scale, out, slow)
    # the listed weights two at a time (_ziggurat_slow_pair), the one left over alone
    held = -1  # the listed weight waiting for a partner: its column in the rows, its x, layer, column, row
    x_held, idx_held, k_held, r_held = 0.0, np.intp(0), np.intp(0), np.intp(0)  # not literals: one compile
    for j in range(n_slow):
        kg = slow[j]
        r = kg // row_weights if n_rows > 1 else 0
        k = kg - r * row_weights
        if k < n:
            x, _, i = _signed_candidate(words, kg, bits32, wn9)
            if held < 0:
                held, x_held, idx_held, k_held, r_held = kg, x, i & 255, k, r
            else:
                value_held, value = _ziggurat_slow_pair(
                    law, x_held, idx_held, np.uint64(k_held // 2), k_held % 2, c1 + np.uint64(r_held),
                    x, i & 255, np.uint64(k // 2), k % 2, c1 + np.uint64(r), c2, c3, k0, k1)
                out[held] = value_held * scale
                out[kg] = value * scale
                held = -1
    if held >= 0:
        out[held] = _ziggurat_slow(law, x_held, idx_held, np.uint64(k_held // 2), k_held % 2, c1 + np.uint64(r_held),
                                   c2, c3, k0, k1) * scale
