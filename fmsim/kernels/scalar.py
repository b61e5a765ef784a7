"""Target-agnostic per-net building blocks, shared by the CPU and CUDA kernels.

Plain ``numba.njit`` functions with no allocation and no target-specific code:
the CPU kernels call them inside ``prange`` loops and numba-cuda recompiles
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
    GAUSSIAN,
    RADEMACHER,
    STREAM_CHI_SQUARE,
    STREAM_PROJECTION,
    STREAM_RELU_SHARE,
    STREAM_SIGN,
    block_word,
    residual_layer,
    row_weight,
    standard_draw,
    weights_per_block,
    ziggurat_draw,
)
from ..sampling.rng import philox4x32, u01_from_words

_GAMMA_BOOST_ROW = np.uint64(0xFFFFFFFF)
_MAX_GAMMA_ATTEMPTS = 1000


def _make_row_dot(ftype):
    """``row_dot`` accumulating in ``ftype`` (weights rounded to ``ftype`` before the multiply).

    Float32 rows take 32 bits per weight (``bits32``; :mod:`fmsim.laws`).
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
                    lane = c & 3
                    if lane == 0:
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
    taking weight ``k`` of the row's stream (:mod:`fmsim.laws`, layout 4).
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
def scale_bias(bias_sd, shift):
    """``bias_sd 2^-shift``: a bias added to activations held divided by ``2^shift``."""
    return math.ldexp(bias_sd, -shift) if shift != 0 and bias_sd > 0.0 else bias_sd


# ------------------------------------------------------------ exact sampler
@njit(inline="always", cache=True)
def _popcount32(v):
    v = v - ((v >> np.uint64(1)) & np.uint64(0x55555555))
    v = (v & np.uint64(0x33333333)) + ((v >> np.uint64(2)) & np.uint64(0x33333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F)
    return np.intp(((v * np.uint64(0x01010101)) & np.uint64(0xFFFFFFFF)) >> np.uint64(24))


@njit(inline="always", cache=True)
def _masked_popcount(w, n_bits):
    if n_bits <= 0:
        return 0
    if n_bits < 32:
        w = w & ((np.uint64(1) << np.uint64(n_bits)) - np.uint64(1))
    return _popcount32(w)


@njit(cache=True)
def binomial_half(n, layer, net, k0, k1):
    """``K ~ Binomial(n, 1/2)`` as the popcount of ``n`` random bits (row 0 of the layer)."""
    k = 0
    zero = np.uint64(0)
    for blk in range((n + 127) // 128):
        w0, w1, w2, w3 = philox4x32(np.uint64(blk), zero, layer, net, k0, k1)
        base = 128 * blk
        k += _masked_popcount(w0, n - base)
        k += _masked_popcount(w1, n - base - 32)
        k += _masked_popcount(w2, n - base - 64)
        k += _masked_popcount(w3, n - base - 96)
    return k


@njit(cache=True)
def gamma_stream(shape, stream, layer, net, k0, k1):
    """``Gamma(shape, 1)`` by Marsaglia & Tsang (2000) from stream ``stream`` of the layer; shape >= 1/2.

    Attempt ``t`` uses counter ``(c0, c1) = (stream, 1 + t)`` of the layer; the
    ``shape < 1`` boost uses ``(stream, 2**32 - 1)``. Stream 0 is the Gaussian
    sampler's (:func:`gamma_unit`); the orthogonal samplers' Beta variates use
    streams 1 to 4.
    """
    a = shape if shape >= 1.0 else shape + 1.0
    dd = a - 1.0 / 3.0
    cc = 1.0 / math.sqrt(9.0 * dd)
    g = dd
    for t in range(_MAX_GAMMA_ATTEMPTS):
        row = np.uint64(1 + t)
        w0, w1, w2, w3 = philox4x32(stream, row, layer, net, k0, k1)
        x = ziggurat_draw(GAUSSIAN, w0, w1, stream, 0, row, layer, net, k0, k1)  # N(0, 1)
        v = 1.0 + cc * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = 1.0 - u01_from_words(w2, w3)
        x2 = x * x
        # Marsaglia & Tsang's squeeze: it accepts only points the logarithmic test accepts (and 98% of
        # all), so the two logarithms are skipped for them and the draws are those of the full test.
        if u < 1.0 - 0.0331 * x2 * x2 or math.log(u) < 0.5 * x2 + dd - dd * v + dd * math.log(v):
            g = dd * v
            break
    if shape < 1.0:
        w0, w1, _, _ = philox4x32(stream, _GAMMA_BOOST_ROW, layer, net, k0, k1)
        g *= math.pow(1.0 - u01_from_words(w0, w1), 1.0 / shape)
    return g


@njit(cache=True)
def gamma_unit(shape, layer, net, k0, k1):
    """``Gamma(shape, 1)`` from stream 0 of the layer (:func:`gamma_stream`): the Gaussian samplers' chi-squares."""
    return gamma_stream(shape, np.uint64(STREAM_CHI_SQUARE), layer, net, k0, k1)


@njit(cache=True)
def beta_pair(a, b, stream, layer, net, k0, k1):
    """``(X, 1 - X)`` for ``X ~ Beta(a, b)``, as ``(G_a, G_b) / (G_a + G_b)`` with ``G_a`` from stream ``stream``
    and ``G_b`` from ``stream + 1`` (:func:`gamma_stream`); ``(1, 0)`` when ``b = 0``. ``a, b`` are 0 or >= 1/2.
    Both parts are returned so that ``1 - X`` keeps its relative accuracy when ``X`` is near 1."""
    if b == 0.0:
        return 1.0, 0.0
    ga = gamma_stream(a, stream, layer, net, k0, k1)
    gb = gamma_stream(b, stream + np.uint64(1), layer, net, k0, k1)
    return ga / (ga + gb), gb / (ga + gb)


@njit(inline="always", cache=True)
def orthogonal_layer_ratio(n_in, n, c, layer, net, k0, k1):
    """``||ReLU(W z)||^2 / ||z||^2`` for ``W`` (``n x n_in``) Haar-orthogonal times ``sqrt(c)``: exact, O(1 + n/128).

    ``||W z||^2 = c ||z||^2 B`` with ``B = 1`` if ``n >= n_in``, else ``B ~ Beta(n/2, (n_in - n)/2)``
    (streams 3, 4), and ``W z`` has a uniform direction; given its ``K ~ Bin(n, 1/2)`` positive
    coordinates (row 0, as :func:`binomial_half`), the ReLU keeps the fraction
    ``Beta(K/2, (n - K)/2)`` (streams 1, 2) of its length. ``K = 0`` is a dead net (0).
    """
    k = binomial_half(n, layer, net, k0, k1)
    if k == 0:
        return 0.0
    kept, _ = beta_pair(0.5 * k, 0.5 * (n - k), np.uint64(STREAM_RELU_SHARE), layer, net, k0, k1)
    ratio = c * kept
    if n < n_in:
        b, _ = beta_pair(0.5 * n, 0.5 * (n_in - n), np.uint64(STREAM_PROJECTION), layer, net, k0, k1)
        ratio *= b
    return ratio


@njit(inline="always", cache=True)
def fc_orthogonal_exact_trace(m0, shift0, widths, cs, net, k0, k1, out, out_log):
    """``M_0..M_d`` of one fully connected net with orthogonal weights, sampled exactly, into ``out`` and their
    logs into ``out_log`` (shape (d + 1,) each): ``M_j = M_{j-1} (n_{j-1}/n_j) Y_j`` with ``Y_j`` from
    :func:`orthogonal_layer_ratio`. ``M`` is carried as ``m 2^shift``, as in :func:`fc_exact_trace`."""
    m = m0
    shift = shift0
    out[0], out_log[0] = length_and_log(m, shift)
    for j in range(1, widths.shape[0]):
        if m > 0.0:
            y = orthogonal_layer_ratio(widths[j - 1], widths[j], cs[j - 1], np.uint64(j), net, k0, k1)
            m = m * (y * widths[j - 1] / widths[j])
        out[j], out_log[j] = length_and_log(m, shift)
        m, shift = renormalized(m, shift)


@njit(inline="always", cache=True)
def orthogonal_output_gain(n, fan, c_out, layer, net, k0, k1):
    """``||W_out h||^2 / ||h||^2`` of an orthogonal residual module's output layer (``n x fan``, no ReLU):
    ``c_out B``, ``B ~ Beta(n/2, (fan - n)/2)`` (streams 3, 4) if ``n < fan``, else ``B = 1``."""
    if n >= fan:
        return c_out
    b, _ = beta_pair(0.5 * n, 0.5 * (fan - n), np.uint64(STREAM_PROJECTION), layer, net, k0, k1)
    return c_out * b


@njit(inline="always", cache=True)
def orthogonal_module_gain(alive, n, module_widths, c, c_out, mod, net, k0, k1):
    """``q = ||W_out h||^2 / ||y||^2`` of residual module ``mod`` (0-based) with orthogonal weights: the hidden
    layers' ratios (:func:`orthogonal_layer_ratio`), then the output layer's (:func:`orthogonal_output_gain`);
    0 for a dead stream (``alive`` False) or once a hidden layer dies. (The CUDA kernels bind it to its device
    version: :func:`fmsim.kernels.cuda.device_function`.)"""
    m = module_widths.shape[0]
    q = 1.0 if alive else 0.0
    fan = n
    for j in range(m):
        if q > 0.0:
            q *= orthogonal_layer_ratio(fan, module_widths[j], c, residual_layer(mod, m, j), net, k0, k1)
        fan = module_widths[j]
    if q > 0.0:
        q *= orthogonal_output_gain(n, fan, c_out, residual_layer(mod, m, m), net, k0, k1)
    return q


@njit(inline="always", cache=True)
def exact_layer_ratio(n, c, layer, net, k0, k1):
    """``M_j / M_{j-1} = (c/n) chi2(K)``, ``K ~ Bin(n, 1/2)``: exact for Gaussian weights."""
    k = binomial_half(n, layer, net, k0, k1)
    if k == 0:
        return 0.0
    return (c / n) * 2.0 * gamma_unit(0.5 * k, layer, net, k0, k1)


@njit(inline="always", cache=True)
def exact_layer(m, n, c, bias_var, layer, net, k0, k1):
    """``M_j`` given ``M_{j-1} = m``: ``(c m + bias_var)/n chi2(K)``, ``K ~ Bin(n, 1/2)``, Gaussian weights and biases.

    Given the previous layer, the pre-activations are i.i.d. ``N(0, c m + bias_var)``
    (``c m`` from ``w . z`` with ``Var(w) = c/n_{j-1}``, plus the bias), and ReLU
    keeps ``K`` of them. Without bias this is ``m`` times :func:`exact_layer_ratio`
    (the same floating-point operations as before biases were supported).
    """
    if bias_var == 0.0:
        return m * exact_layer_ratio(n, c, layer, net, k0, k1) if m > 0.0 else 0.0
    k = binomial_half(n, layer, net, k0, k1)
    if k == 0:
        return 0.0
    return ((c * m + bias_var) / n) * 2.0 * gamma_unit(0.5 * k, layer, net, k0, k1)


@njit(inline="always", cache=True)
def renormalized(m, shift):
    """``(m', shift')`` with ``m 2^shift = m' 2^shift'`` and ``m'`` inside the window (:func:`renorm_shift`);
    ``shift`` stays even, so square roots of ``m`` scale exactly too."""
    e = renorm_shift(m)
    if e == 0:
        return m, shift
    return math.ldexp(m, -2 * e), shift + 2 * e


@njit(inline="always", cache=True)
def fc_exact_trace(m0, shift0, widths, cs, bias_var, net, k0, k1, out, out_log):
    """``M_0..M_d`` of one fully connected net by the exact sampler, into ``out`` and their logs into ``out_log``
    (shape (d + 1,) each).

    ``M_j`` is carried as ``m 2^shift`` (``M_0 = m0 2^shift0``): each layer
    multiplies ``m`` (and the bias variance is divided by ``2^shift``), which
    is exact, so a net inside float64's range gets the same bits as the
    plain product; ``m`` is renormalized by a power of two when it leaves
    ``[2^-64, 2^64]``, so ``log M_j`` is exact at any depth.
    """
    m = m0
    shift = shift0
    out[0], out_log[0] = length_and_log(m, shift)
    for j in range(1, widths.shape[0]):
        m = exact_layer(m, widths[j], cs[j - 1], scale_bias(bias_var, shift), np.uint64(j), net, k0, k1)
        out[j], out_log[j] = length_and_log(m, shift)
        m, shift = renormalized(m, shift)


# ------------------------------------------------------------ residual nets
@njit(cache=True)
def residual_exact_trace(m0, shift0, n, module_widths, etas, c, c_out, bias_var, net, k0, k1, out, out_log):
    """``M_0..M_L`` of one residual net with linear-ending Gaussian modules, sampled exactly, into ``out``.

    Per module, given ``M``: the hidden lengths follow :func:`exact_layer` from
    ``M``, ending in ``R`` (``R = M`` without hidden layers); the output
    ``W_out h + b`` is ``N(0, a^2 I_n)`` with ``a^2 = c_out R + bias_var``, so
    ``n M' = (sqrt(n M) + eta a g)^2 + eta^2 a^2 chi2_{n-1}``.
    Module ``l`` (0-based) uses counter layers ``l (m + 1) + 1 + j`` for hidden layer ``j``
    and ``l (m + 1) + 1 + m`` for its output layer, as the ``full`` kernel does.
    ``M`` is carried as ``mm 2^shift`` (``shift`` even), as in :func:`fc_exact_trace`: the
    recursion is homogeneous in ``(M, bias_var)``, so the scaling is exact.
    """
    m = module_widths.shape[0]
    zero = np.uint64(0)
    mm = m0
    shift = shift0
    out[0], out_log[0] = length_and_log(mm, shift)
    for mod in range(etas.shape[0]):
        bv = scale_bias(bias_var, shift)
        r = mm
        for j in range(m):
            r = exact_layer(r, module_widths[j], c, bv, residual_layer(mod, m, j), net, k0, k1)
        # (no bias: the operations of the bias-free sampler, so earlier files resume bit-identically)
        a2 = etas[mod] * etas[mod] * c_out * r if bias_var == 0.0 else etas[mod] * etas[mod] * (c_out * r + bv)
        if a2 > 0.0:  # else the module adds nothing: M stays exactly as it is
            layer = residual_layer(mod, m, m)
            w0, w1, _, _ = philox4x32(zero, zero, layer, net, k0, k1)
            g = standard_draw(GAUSSIAN, w0, w1, zero, 0, zero, layer, net, k0, k1)
            chi = 2.0 * gamma_unit(0.5 * (n - 1), layer, net, k0, k1) if n > 1 else 0.0
            s = math.sqrt(n * mm) + math.sqrt(a2) * g
            mm = (s * s + a2 * chi) / n
        out[mod + 1], out_log[mod + 1] = length_and_log(mm, shift)
        mm, shift = renormalized(mm, shift)


@njit(cache=True)
def residual_relu_exact_trace(x, x_shift, module_widths, etas, c, c_out, bias_var, net, k0, k1, y, out, out_log):
    """``M_0..M_L`` of one residual net with ReLU-ending Gaussian modules, O(n + m) per module, into ``out``.

    ``y_l = y_{l-1} + eta_l ReLU(W_out h + b)``. The hidden layers see the
    stream only through its length, so their lengths follow
    :func:`exact_layer` from ``M = |y|^2/n``, ending in ``R`` (``R = M``
    without hidden layers); given ``h``, the output pre-activations are
    i.i.d. ``N(0, c_out R + bias_var)``, independent of ``y``, and are drawn
    directly: coordinate ``i`` is the standard normal of counter block
    ``i // 2``, slot ``i % 2``, row 0, layer ``l (m + 1) + 1 + m``.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Input (the stream at ``l = 0``) divided by ``2^x_shift``.
    x_shift : int
    y : ndarray, shape (n,)
        Scratch: the stream, held divided by a power of two (renormalized as in :func:`fc_exact_trace`).
    out, out_log : ndarray, shape (L + 1,)
        ``M_l`` and ``log M_l``.
    """
    n = x.shape[0]
    m = module_widths.shape[0]
    zero = np.uint64(0)
    for i in range(n):
        y[i] = x[i]
    mm = mean_square(x, n)
    zs = x_shift  # the stream is y 2^zs
    out[0], out_log[0] = length_and_log(mm, 2 * zs)
    for mod in range(etas.shape[0]):
        bv = scale_bias(bias_var, 2 * zs)
        r = mm
        for j in range(m):
            r = exact_layer(r, module_widths[j], c, bv, residual_layer(mod, m, j), net, k0, k1)
        scale = etas[mod] * math.sqrt(c_out * r + bv)
        if scale > 0.0:
            layer = residual_layer(mod, m, m)
            for blk in range((n + 1) // 2):
                block = np.uint64(blk)
                w0, w1, w2, w3 = philox4x32(block, zero, layer, net, k0, k1)
                g = standard_draw(GAUSSIAN, w0, w1, block, 0, zero, layer, net, k0, k1)
                if g > 0.0:
                    y[2 * blk] += scale * g
                if 2 * blk + 1 < n:
                    g = standard_draw(GAUSSIAN, w2, w3, block, 1, zero, layer, net, k0, k1)
                    if g > 0.0:
                        y[2 * blk + 1] += scale * g
            mm = mean_square(y, n)
        out[mod + 1], out_log[mod + 1] = length_and_log(mm, 2 * zs)
        e = renorm_shift(mm)
        if e != 0:
            f = math.ldexp(1.0, -e)
            for i in range(n):
                y[i] *= f
            mm = math.ldexp(mm, -2 * e)
            zs += e


@njit(cache=True)
def residual_orthogonal_exact_trace(m0, shift0, n, module_widths, etas, c, c_out, net, k0, k1, out, out_log):
    """``M_0..M_L`` of one residual net with linear-ending orthogonal modules, sampled exactly: O(1 + k/128) per module.

    With ``q = ||W_out h||^2 / ||y||^2`` (hidden layers by :func:`orthogonal_layer_ratio`, output layer by
    :func:`orthogonal_output_gain`) the output ``W_out h`` has a
    direction uniform on the sphere, whose cosine ``u`` with ``y`` has ``u^2 ~ Beta(1/2, (n - 1)/2)``
    (streams 1, 2 of the output layer) and a fair sign (bit 0 of word 0 of stream 5, row 0), so
    ``M' = M ((1 + eta sqrt(q) u)^2 + eta^2 q (1 - u^2))``. Counter layers as in the ``full`` kernel.
    """
    m = module_widths.shape[0]
    zero = np.uint64(0)
    mm = m0
    shift = shift0
    out[0], out_log[0] = length_and_log(mm, shift)
    for mod in range(etas.shape[0]):
        q = orthogonal_module_gain(mm > 0.0, n, module_widths, c, c_out, mod, net, k0, k1)
        a = etas[mod] * math.sqrt(q)
        if a > 0.0:  # else the module adds nothing: M stays exactly as it is
            layer = residual_layer(mod, m, m)
            u2, rest = beta_pair(0.5, 0.5 * (n - 1), np.uint64(STREAM_RELU_SHARE), layer, net, k0, k1)
            w0, _, _, _ = philox4x32(np.uint64(STREAM_SIGN), zero, layer, net, k0, k1)
            u = math.sqrt(u2) if w0 & np.uint64(1) else -math.sqrt(u2)
            s = 1.0 + a * u
            mm = mm * (s * s + a * a * rest)
        out[mod + 1], out_log[mod + 1] = length_and_log(mm, shift)
        mm, shift = renormalized(mm, shift)


@njit(cache=True)
def residual_orthogonal_relu_exact_trace(x, x_shift, module_widths, etas, c, c_out, net, k0, k1, y, g, out, out_log):
    """``M_0..M_L`` of one residual net with ReLU-ending orthogonal modules, O(n + k/128) per module.

    ``y_l = y_{l-1} + eta_l ReLU(W_out h)``: ``||W_out h||^2 = q ||y||^2``
    (as in :func:`residual_orthogonal_exact_trace`) and its direction ``g / ||g||`` is uniform on the sphere,
    independent of ``y``, with ``g_i`` the standard normal of counter block ``i // 2``, slot ``i % 2``, row 0 of
    the output layer (as :func:`residual_relu_exact_trace` draws its coordinates). ``y`` and ``g`` are scratch of shape
    (n,); the stream is held divided by a power of two, as there.
    """
    n = x.shape[0]
    m = module_widths.shape[0]
    zero = np.uint64(0)
    for i in range(n):
        y[i] = x[i]
    mm = mean_square(x, n)
    ss = mm * n
    zs = x_shift  # the stream is y 2^zs
    out[0], out_log[0] = length_and_log(mm, 2 * zs)
    for mod in range(etas.shape[0]):
        q = orthogonal_module_gain(mm > 0.0, n, module_widths, c, c_out, mod, net, k0, k1)
        if q > 0.0 and etas[mod] > 0.0:
            layer = residual_layer(mod, m, m)
            gg = 0.0
            for blk in range((n + 1) // 2):
                block = np.uint64(blk)
                w0, w1, w2, w3 = philox4x32(block, zero, layer, net, k0, k1)
                v = standard_draw(GAUSSIAN, w0, w1, block, 0, zero, layer, net, k0, k1)
                g[2 * blk] = v
                gg += v * v
                if 2 * blk + 1 < n:
                    v = standard_draw(GAUSSIAN, w2, w3, block, 1, zero, layer, net, k0, k1)
                    g[2 * blk + 1] = v
                    gg += v * v
            scale = etas[mod] * math.sqrt(q * ss / gg)
            for i in range(n):
                if g[i] > 0.0:
                    y[i] += scale * g[i]
            mm = mean_square(y, n)
            ss = mm * n
        out[mod + 1], out_log[mod + 1] = length_and_log(mm, 2 * zs)
        e = renorm_shift(mm)
        if e != 0:
            f = math.ldexp(1.0, -e)
            for i in range(n):
                y[i] *= f
            mm = math.ldexp(mm, -2 * e)
            ss = math.ldexp(ss, -2 * e)
            zs += e


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
