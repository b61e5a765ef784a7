"""Target-agnostic per-net building blocks, shared by the CPU and CUDA kernels.

Plain ``numba.njit`` functions with no allocation and no target-specific code:
the CPU kernels call them in their loops over nets and numba-cuda recompiles
them as device functions.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload

from ..sampling.laws import (
    BIAS_BLOCK,
    RADEMACHER,
    block_word,
    row_weight,
    standard_draw,
    weights_per_block,
)
from ..sampling.rng import philox4x32


def _make_row_dot(ftype):
    """``row_dot`` accumulating in ``ftype`` (weights rounded to ``ftype`` before the multiply).

    Float32 rows take 32 bits per weight (``bits32``; ``fmsim.laws``).
    """
    bits32 = ftype == np.float32

    @njit(inline="always", cache=True)
    def row_dot(law, z, signs, n_in, row, layer, net, k0, k1):
        """``sum_k w[row, k] z[k]`` for unit-variance weights drawn on the fly, one Philox block at a time.

        Summed as four partial sums over ``k mod 4``, combined ``(s0 + s1) + (s2 + s3)``:
        the order of :func:`fmsim.kernels.cpu.drawn_dot`, whose partial sums
        LLVM keeps in one vector register. Rademacher rows (``law == RADEMACHER``) add instead
        one entry of ``signs`` per four weights (:func:`rademacher_chunk`): entry
        ``16 c + m`` for chunk ``c``, ``m`` its four sign bits, the four partial sums over ``c mod 4``.

        Parameters
        ----------
        law : int
        z : ndarray, shape (>= n_in,), float
            Previous layer's activations (the nonzero ones).
        signs : ndarray, shape (>= 4 n_in + 16,), float
            The layer's Rademacher table (read only when ``law == RADEMACHER``).
        n_in : int
            Fan-in.
        row, layer, net : uint64
            Counter words ``c1, c2, c3``.
        k0, k1 : uint64
            Philox key.

        Returns
        -------
        float (``ftype``)
        """
        a0 = ftype(0.0)  # four partial sums, over k = 0, 1, 2, 3 (mod 4): the CPU kernels' order
        a1 = ftype(0.0)
        a2 = ftype(0.0)
        a3 = ftype(0.0)
        if law == RADEMACHER:
            n_chunks = (n_in + 3) // 4
            for blk in range((n_in + 127) // 128):
                w0, w1, w2, w3 = philox4x32(np.uint64(blk), row, layer, net, k0, k1)
                for c in range(32 * blk, min(n_chunks, 32 * blk + 32)):
                    word = block_word((c >> 3) & 3, w0, w1, w2, w3)
                    t = signs[16 * c + np.intp((word >> np.uint64(4 * (c & 7))) & np.uint64(15))]
                    lane = c & 3  # (written out, not a helper: under the CUDA simulator a CPU-compiled helper
                    if lane == 0:  # would hand float32 sums back as Python floats)
                        a0 += t
                    elif lane == 1:
                        a1 += t
                    elif lane == 2:
                        a2 += t
                    else:
                        a3 += t
            return (a0 + a1) + (a2 + a3)
        per = weights_per_block(law, bits32)
        for blk in range((n_in + per - 1) // per):
            w0, w1, w2, w3 = philox4x32(np.uint64(blk), row, layer, net, k0, k1)
            for k in range(blk * per, min(n_in, (blk + 1) * per)):
                t = ftype(row_weight(law, bits32, k, w0, w1, w2, w3, row, layer, net, k0, k1)) * z[k]
                lane = k & 3
                if lane == 0:
                    a0 += t
                elif lane == 1:
                    a1 += t
                elif lane == 2:
                    a2 += t
                else:
                    a3 += t
        return (a0 + a1) + (a2 + a3)

    return row_dot


#: Float64 (the default) and float32 (``precision="float32"``) versions.
row_dot = _make_row_dot(np.float64)
row_dot_f32 = _make_row_dot(np.float32)


@njit(inline="always", cache=True)
def bias_draw(law, row, layer, net, k0, k1):
    """Unit-variance bias of one unit, from the row's reserved block ``BIAS_BLOCK``."""
    w0, w1, _, _ = philox4x32(BIAS_BLOCK, row, layer, net, k0, k1)
    return standard_draw(law, w0, w1, BIAS_BLOCK, 0, row, layer, net, k0, k1)


def make_unit_preactivation(ftype, dot, bias):
    """``scale * sum_k w[row, k] z[k] (+ bias)`` of one unit, in ``ftype``, before the nonlinearity.

    Returns a plain function over the given ``dot`` (:data:`row_dot` or
    :data:`row_dot_f32`) and ``bias`` (:func:`bias_draw`): the CUDA kernels build it
    over their device versions; the CPU kernels use the vectorized
    :func:`fmsim.kernels.cpu.row_preactivation`, which gives the same bits.
    """

    def unit_preactivation(law, z, signs, n_in, row, layer, net, scale, bias_sd, k0, k1):
        pre = ftype(scale) * dot(law, z, signs, n_in, row, layer, net, k0, k1)
        if bias_sd > 0.0:
            pre += ftype(bias_sd * bias(law, row, layer, net, k0, k1))
        return pre

    return unit_preactivation


@njit(inline="always", cache=True)
def nonzero_inputs(z, n, out):
    """The nonzero entries of ``z[:n]``, in order, into ``out``; returns how many.

    A weight that meets a zero input adds nothing, so it is never drawn: a
    unit's weights are drawn for the nonzero inputs only, the ``k``-th of them
    taking weight ``k`` of the row's stream (``fmsim.laws``, layout 4).
    After a ReLU about half the inputs are zero, which halves the draws.

    Parameters
    ----------
    z : ndarray, shape (>= n,), float
    n : int
    out : ndarray, shape (>= n,), dtype of ``z``
        Written: ``out[:count]``.
    """
    count = 0
    for k in range(n):
        v = z[k]
        out[count] = v  # written always, kept only when nonzero: no branch to mispredict
        if v != 0.0:
            count += 1
    return count


@njit(inline="always", cache=True)
def rademacher_chunk(z, n, c, signs):
    """Entries ``16 c .. 16 c + 15`` of a layer's Rademacher table: the 16 signed sums of chunk ``c``.

    With sign bit ``i`` of ``m`` for weight ``4 c + i`` (1: +1, 0: -1, as
    :func:`fmsim.laws.standard_row`), ``signs[16 c + m] = ((+-z[4c] +- z[4c+1]) +- z[4c+2]) +- z[4c+3]``
    (the last chunk has ``n - 4 c`` terms). A Rademacher row then costs one
    table read per four weights instead of four multiply-adds: the layer's
    ``16 n`` additions are shared by all its rows.

    Parameters
    ----------
    z : ndarray, shape (>= n,), float
        The layer's nonzero inputs.
    n : int
    c : int
        Chunk, ``0 <= c < ceil(n / 4)``.
    signs : ndarray, shape (>= 16 ceil(n / 4),), dtype of ``z``
        Written.
    """
    k = 4 * c
    terms = min(4, n - k)
    for m in range(16):
        t = z[k] if m & 1 else -z[k]
        for i in range(1, terms):
            v = z[k + i]
            t += v if (m >> i) & 1 else -v
        signs[16 * c + m] = t


def mean_square_body(z, n):
    """The body of :func:`mean_square`."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    m = n - n % 8
    for i in range(0, m, 8):
        v0, v1 = np.float64(z[i]), np.float64(z[i + 1])  # explicit: NumPy 2 would keep float32 (CUDA simulator)
        v2, v3 = np.float64(z[i + 2]), np.float64(z[i + 3])
        v4, v5 = np.float64(z[i + 4]), np.float64(z[i + 5])
        v6, v7 = np.float64(z[i + 6]), np.float64(z[i + 7])
        s0 += v0 * v0
        s1 += v1 * v1
        s2 += v2 * v2
        s3 += v3 * v3
        s4 += v4 * v4
        s5 += v5 * v5
        s6 += v6 * v6
        s7 += v7 * v7
    for i in range(m, n):  # the tail: lane i mod 8
        v = np.float64(z[i])
        lane = i - m
        if lane == 0:
            s0 += v * v
        elif lane == 1:
            s1 += v * v
        elif lane == 2:
            s2 += v * v
        elif lane == 3:
            s3 += v * v
        elif lane == 4:
            s4 += v * v
        elif lane == 5:
            s5 += v * v
        else:
            s6 += v * v
    return (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) / n


_mean_square_compiled = njit(cache=True)(mean_square_body)


def mean_square(z, n):
    """``||z[:n]||^2 / n``, summed in float64 whatever the dtype of ``z``: eight partial sums over ``i mod 8``,
    combined ``((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))`` (LLVM keeps them in vector registers; one
    serial chain of additions took a fifth of a conv layer's time).

    One function for every caller, so that every method and backend sums a stream alike: compiled code (CPU
    kernels, numba-cuda) call its overload; from Python it runs compiled on NumPy arrays and as Python on the CUDA
    simulator's arrays (which CPU-compiled functions cannot take).
    """
    if isinstance(z, np.ndarray):
        return _mean_square_compiled(z, n)
    return mean_square_body(z, n)


@overload(mean_square)  # (numba-level inlining of this body trips numba's SSA check; LLVM inlines it)
def _mean_square_jit(z, n):
    return mean_square_body


# ------------------------------------------------------------ fused multiply-add
def fused_multiply_add(a, b, c):
    """``a b + c`` rounded once (IEEE 754 fusedMultiplyAdd), in the precision of the operands.

    Compiled (CPU or CUDA), it is LLVM's ``llvm.fma``: one ``vfmadd`` on the CPU, ``fma.rn`` on a GPU, so
    both give the same bits. Called from Python (the CUDA simulator runs the device code so), it is this
    exact rational computation, correctly rounded to float64, or to float32 when an operand is float32.
    """
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)):
        return a * b + c
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    if not any(isinstance(v, np.float32) for v in (a, b, c)):
        return float(exact)
    near = np.float32(float(exact))  # within one float32 step of the correctly rounded value (double rounding)
    best = near
    for cand in (np.nextafter(near, np.float32(-np.inf)), np.nextafter(near, np.float32(np.inf))):
        if not math.isfinite(cand):
            continue
        dc, db = abs(Fraction(float(cand)) - exact), abs(Fraction(float(best)) - exact)
        if dc < db or (dc == db and int(cand.view(np.uint32)) % 2 == 0):
            best = cand
    return best


@intrinsic
def _llvm_fma(typingctx, a, b, c):
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


@overload(fused_multiply_add, inline="always")
def _fused_multiply_add_jit(a, b, c):
    if not (isinstance(a, types.Float) and a == b == c):
        raise TypeError(f"fused_multiply_add needs three operands of one float type, got {a}, {b}, {c}")
    return lambda a, b, c: _llvm_fma(a, b, c)


# ------------------------------------------------------------ log space
#: A net's activations are divided by a power of two when their mean square ``M`` (as held) leaves
#: ``[RENORM_LOW, RENORM_HIGH]``; the kernels carry the exponent. ``2^±64`` keeps every activation and
#: product far from float32's and float64's limits, and nets that stay inside never change a bit.
RENORM_LOW = 2.0**-64
RENORM_HIGH = 2.0**64
LN2 = math.log(2.0)


@njit(inline="always", cache=True)
def renorm_shift_within(ms, low, high):
    """The ``e`` to divide activations whose mean square is ``ms`` by ``2^e``: 0 inside ``[low, high]`` (and for 0).

    Else ``e = floor(log2(ms) / 2)`` from the binary exponent, which brings the
    mean square into ``[1, 4)``; dividing by a power of two is exact.
    """
    if ms == 0.0 or (ms >= low and ms <= high) or ms != ms or ms == math.inf:
        return 0
    _, e = math.frexp(ms)
    return (e - 1) // 2


@njit(inline="always", cache=True)
def renorm_shift(ms):
    """:func:`renorm_shift_within` the window ``[RENORM_LOW, RENORM_HIGH]``."""
    return renorm_shift_within(ms, RENORM_LOW, RENORM_HIGH)


@njit(inline="always", cache=True)
def length_and_log(ms, shift2):
    """``(M, log M)`` of ``M = ms 2^shift2``: ``M`` in float64 (exactly ``ms`` when ``shift2 = 0``; 0 or inf
    beyond float64's range), ``log M`` at any scale (``-inf`` only for ``ms = 0``)."""
    if shift2 == 0:
        length = ms
    elif shift2 > 2000:  # (ms < 2^70 is renormalized) beyond float64's range either way
        length = ms * math.inf
    elif shift2 < -2000:
        length = 0.0
    else:  # two exact powers of two (math.ldexp raises in Python, which the CUDA simulator runs)
        a = shift2 // 2
        length = (float(ms) * 2.0 ** a) * 2.0 ** (shift2 - a)
    return length, (math.log(ms) + shift2 * LN2 if ms > 0.0 else -math.inf)


@njit(inline="always", cache=True)
def record_length(ms, shift2, j, out_lengths, out_log):
    """Write :func:`length_and_log` into ``out_lengths[j]`` and ``out_log[j]`` (CPU kernels; scalar functions
    called from CUDA code take no arrays, for the CUDA simulator's sake)."""
    out_lengths[j], out_log[j] = length_and_log(ms, shift2)


@njit(inline="always", cache=True)
def renormalized(m, shift):
    """``(m', shift')`` with ``m 2^shift = m' 2^shift'`` and ``m'`` inside the window (:func:`renorm_shift`);
    ``shift`` stays even, so square roots of ``m`` scale exactly too."""
    e = renorm_shift(m)
    if e == 0:
        return m, shift
    return math.ldexp(m, -2 * e), shift + 2 * e


@njit(inline="always", cache=True)
def scale_bias(bias_sd, shift):
    """``bias_sd 2^-shift``: a bias added to activations held divided by ``2^shift``."""
    return math.ldexp(bias_sd, -shift) if shift != 0 and bias_sd > 0.0 else bias_sd


# ---------------------------------------------------------------- conv nets
@njit(inline="always", cache=True)
def conv_channel(w, z, c_in, height, width, kh, kw, scale, bias, r, out):
    """One output channel ``r`` of a periodic, stride-1 convolution followed by ReLU.

    ``w`` holds the channel's ``c_in kh kw`` weights ordered ``(c_in, ty, tx)``;
    ``z`` and ``out`` are ``(C, height, width)`` flattened. Tap ``(ty, tx)``
    reads position ``((py + ty - kh//2) mod height, (px + tx - kw//2) mod width)``.
    Each position sums its taps in ``(c_in, ty, tx)`` order by :func:`fused_multiply_add`, in the precision
    of ``scale`` and ``bias`` (which the caller gives in that of ``w``, ``z`` and ``out``); its pre-activation
    is ``fma(scale, sum, bias)``: bitwise the CPU kernel's (:func:`fmsim.kernels.cpu.conv_layer`).
    """
    zero = bias - bias
    for py in range(height):
        for px in range(width):
            acc = zero
            for ci in range(c_in):
                for ty in range(kh):
                    qy = (py + ty - kh // 2) % height
                    for tx in range(kw):
                        qx = (px + tx - kw // 2) % width
                        acc = fused_multiply_add(w[(ci * kh + ty) * kw + tx], z[(ci * height + qy) * width + qx], acc)
            pre = fused_multiply_add(scale, acc, bias)
            out[(r * height + py) * width + px] = pre if pre > 0.0 else zero
