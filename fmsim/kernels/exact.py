"""Exact samplers: the law of ``M_j`` given ``M_{j-1}``, drawn in O(1 + n/128) per layer instead of a layer's
O(n^2) weights, for Gaussian and orthogonal weights (fully connected nets, and residual nets with either module
ending). Per-net functions that both backends compile (:mod:`fmsim.kernels.cpu`, :mod:`fmsim.kernels.cuda`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..sampling.laws import (
    GAUSSIAN,
    STREAM_CHI_SQUARE,
    STREAM_PROJECTION,
    STREAM_RELU_SHARE,
    STREAM_SIGN,
    residual_layer,
    standard_draw,
    ziggurat_draw,
)
from ..sampling.rng import philox4x32, u01_from_words
from .scalar import length_and_log, mean_square, renorm_shift, renormalized, scale_bias

_GAMMA_BOOST_ROW = np.uint64(0xFFFFFFFF)
_MAX_GAMMA_ATTEMPTS = 1000


# ------------------------------------------------------------ fully connected nets
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
def fc_exact_trace(m0, shift0, widths, cs, bias_vars, net, k0, k1, out, out_log):
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
        m = exact_layer(m, widths[j], cs[j - 1], scale_bias(bias_vars[j - 1], shift), np.uint64(j), net, k0, k1)
        out[j], out_log[j] = length_and_log(m, shift)
        m, shift = renormalized(m, shift)


# ------------------------------------------------------------ residual nets
@njit(cache=True)
def residual_exact_trace(m0, shift0, n, module_widths, etas, c, c_out, bias_vars, net, k0, k1, out, out_log):
    """``M_0..M_L`` of one residual net with linear-ending Gaussian modules, sampled exactly, into ``out``.

    Per module, given ``M``: the hidden lengths follow :func:`exact_layer` from
    ``M``, ending in ``R`` (``R = M`` without hidden layers); the output
    ``W_out h + b`` is ``N(0, a^2 I_n)`` with ``a^2 = c_out R + bias_vars[m]``, so
    ``n M' = (sqrt(n M) + eta a g)^2 + eta^2 a^2 chi2_{n-1}``.
    Module ``l`` (0-based) uses counter layers ``l (m + 1) + 1 + j`` for hidden layer ``j``
    and ``l (m + 1) + 1 + m`` for its output layer, as the ``full`` kernel does.
    ``M`` is carried as ``mm 2^shift`` (``shift`` even), as in :func:`fc_exact_trace`: the
    recursion is homogeneous in ``(M, bias_vars)``, so the scaling is exact. ``bias_vars`` (shape (m + 1,)): the
    bias variance of each hidden layer, then of the output layer.
    """
    m = module_widths.shape[0]
    zero = np.uint64(0)
    mm = m0
    shift = shift0
    out[0], out_log[0] = length_and_log(mm, shift)
    for mod in range(etas.shape[0]):
        r = mm
        for j in range(m):
            r = exact_layer(r, module_widths[j], c, scale_bias(bias_vars[j], shift), residual_layer(mod, m, j), net,
                            k0, k1)
        bv = scale_bias(bias_vars[m], shift)
        # (no bias: the operations of the bias-free sampler, so earlier files resume bit-identically)
        a2 = etas[mod] * etas[mod] * c_out * r if bias_vars[m] == 0.0 else etas[mod] * etas[mod] * (c_out * r + bv)
        if a2 > 0.0:  # else the module adds nothing: M stays exactly as it is
            layer = residual_layer(mod, m, m)
            w0, w1, _, _ = philox4x32(zero, zero, layer, net, k0, k1)
            g = standard_draw(GAUSSIAN, w0, w1, zero, 0, zero, layer, net, k0, k1)
            chi = 2.0 * gamma_unit(0.5 * (n - 1), layer, net, k0, k1) if n > 1 else 0.0
            s = math.sqrt(n * mm) + math.sqrt(a2) * g
            mm = (s * s + a2 * chi) / n
        out[mod + 1], out_log[mod + 1] = length_and_log(mm, shift)
        mm, shift = renormalized(mm, shift)


@njit(inline="always", cache=True)
def record_and_renormalize_stream(y, mm, zs, j, out, out_log):
    """After module ``j`` of a residual net whose stream is ``y 2^zs`` with ``mm`` the mean square of ``y``: write
    ``M_j`` and ``log M_j`` into ``out[j]``, ``out_log[j]``, then divide ``y`` by ``2^e`` where ``mm`` left the
    window (:func:`~fmsim.kernels.scalar.renorm_shift`). Returns the new ``mm`` and ``e`` (``zs`` grows by ``e``).
    (The CUDA kernels bind it to its device version: :func:`fmsim.kernels.cuda.device_function`.)"""
    out[j], out_log[j] = length_and_log(mm, 2 * zs)
    e = renorm_shift(mm)
    if e != 0:
        f = math.ldexp(1.0, -e)
        for i in range(y.shape[0]):
            y[i] *= f
        mm = math.ldexp(mm, -2 * e)
    return mm, e


@njit(cache=True)
def residual_relu_exact_trace(x, x_shift, module_widths, etas, c, c_out, bias_vars, net, k0, k1, y, out, out_log):
    """``M_0..M_L`` of one residual net with ReLU-ending Gaussian modules, O(n + m) per module, into ``out``.

    ``y_l = y_{l-1} + eta_l ReLU(W_out h + b)``. The hidden layers see the
    stream only through its length, so their lengths follow
    :func:`exact_layer` from ``M = |y|^2/n``, ending in ``R`` (``R = M``
    without hidden layers); given ``h``, the output pre-activations are
    i.i.d. ``N(0, c_out R + bias_vars[m])``, independent of ``y``, and are drawn
    directly: coordinate ``i`` is the standard normal of counter block
    ``i // 2``, slot ``i % 2``, row 0, layer ``l (m + 1) + 1 + m``.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Input (the stream at ``l = 0``) divided by ``2^x_shift``.
    x_shift : int
    bias_vars : ndarray, shape (m + 1,)
        The bias variance of each hidden layer, then of the output layer.
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
        r = mm
        for j in range(m):
            r = exact_layer(r, module_widths[j], c, scale_bias(bias_vars[j], 2 * zs), residual_layer(mod, m, j), net,
                            k0, k1)
        scale = etas[mod] * math.sqrt(c_out * r + scale_bias(bias_vars[m], 2 * zs))
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
        mm, e = record_and_renormalize_stream(y, mm, zs, mod + 1, out, out_log)
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
        mm, e = record_and_renormalize_stream(y, mm, zs, mod + 1, out, out_log)
        ss = math.ldexp(ss, -2 * e)
        zs += e
