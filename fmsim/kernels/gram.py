"""Exact samplers of the Gram chain: several vectors carried through the same Gaussian net.

Fully connected nets, Gaussian weights with ``Var = c_j / n_{j-1}``, no bias, ReLU at every layer. Row ``i``
of ``W_j B`` (``B``: the ``n_{j-1} x k`` matrix of the carried vectors) is ``N(0, (c_j / n_{j-1}) B^T B)``,
independently over ``i``, so the Gram matrices ``G_j = B_j^T B_j`` form a Markov chain
(:mod:`fmsim.theory.gram` derives both samplers):

* **An input and tangents** (:func:`tangent_exact_trace`): write each tangent as ``v = beta z + v_perp`` with
  ``v_perp`` orthogonal to the input's activations ``z``, and ``P`` the Gram matrix of the ``v_perp`` divided by
  ``||z||^2``. Per layer, with ``K ~ Bin(n_j, 1/2)`` and ``chi2_K`` the length's own draws,

      ||z'||^2 = (c_j / n_{j-1}) ||z||^2 chi2_K,
      beta' = beta + L eta / sqrt(chi2_K),   P' = L T T^T L^T / chi2_K,

  with ``L L^T = P``, ``eta ~ N(0, I_m)`` and ``T T^T ~ Wishart_m(K - 1, I)`` (Bartlett). O(m^3) per layer,
  whatever the width, and the length is fmsim's exact sampler draw for draw: ``M_j`` is bitwise that of
  ``method="exact"`` (:func:`fmsim.kernels.exact.fc_exact_trace`).
* **Several inputs** (:func:`inputs_exact_trace`): ``G_j = sum_i relu(h_i) relu(h_i)^T`` over the ``n_j`` rows,
  ``h_i = L eta_i``, ``L L^T = (c_j / n_{j-1}) G_{j-1}``. O(n_j k^2) per layer, against O(n_j n_{j-1} k) for a
  forward pass.
* **Residual nets** (:func:`residual_carried_trace`), inputs or an input and tangents, either module ending: the
  hidden layers are the chain of several vectors, one unit at a time; the output layer's pre-activations are drawn
  coordinate by coordinate and added to the streams, which are carried explicitly (with a ReLU ending their new
  Gram matrix is not a function of the old one). O((n + k_1 + ... + k_m) k^2) per module, against
  O((n k_1 + k_1 k_2 + ... + k_m n) k) for a forward pass.

Random numbers (Philox counters ``(c0, c1, c2, c3) = (stream, row, layer, net)``, beside those of
:mod:`fmsim.sampling.laws`): the tangents' ``eta`` from stream :data:`STREAM_TANGENT_SHIFT` (normal ``r`` at row
``1 + r // 2``, lane ``r % 2``), Bartlett's normals below the diagonal from :data:`STREAM_BARTLETT_NORMAL`, its
``chi2_{K - 1 - i}`` from Gamma stream :data:`STREAM_BARTLETT_CHI` ``+ i``. The inputs' ``eta_i`` are the Gaussian
weights ``0..k-1`` of row ``i`` (:func:`fmsim.sampling.laws.standard_draw`, 64 bits each).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..sampling.laws import GAUSSIAN, residual_layer, ziggurat_draw
from ..sampling.rng import philox4x32
from .borrowed import borrowed, keep_alive
from .exact import binomial_half, gamma_stream, gamma_unit
from .over_nets import over_nets
from .scalar import length_and_log, renorm_shift, renormalized

__all__ = ["STREAM_TANGENT_SHIFT", "STREAM_BARTLETT_NORMAL", "STREAM_BARTLETT_CHI", "STREAM_ORTHOGONAL_CHI",
           "STREAM_ORTHOGONAL_NORMAL", "STREAM_ORTHOGONAL_WISHART", "psd_cholesky", "bartlett",
           "tangent_layer", "unit_normals", "tangent_exact", "inputs_exact", "tangent_exact_trace",
           "inputs_exact_trace", "orthogonal_tangent_layer", "forward_solve", "record_gram_layer", "add_unit",
           "average_units", "add_gram", "lower_product", "carried_activations", "carried_hidden_layer", "stream_gram",
           "residual_carried_trace", "residual_carried"]

#: Stream of the tangents' shift ``eta`` along the input's new direction.
STREAM_TANGENT_SHIFT = 6
#: Stream of the Bartlett factor's normals (below its diagonal).
STREAM_BARTLETT_NORMAL = 7
#: First Gamma stream of the Bartlett factor's diagonal (one stream per tangent).
STREAM_BARTLETT_CHI = 8
#: Orthogonal weights: Gamma streams of the squared norms of the frame's first vector on the active, the inactive
#: and the dropped coordinates (this stream and the next two).
STREAM_ORTHOGONAL_CHI = 40
#: Orthogonal weights: the normals ``a, b, b'`` (numbers ``0..3m-1``).
STREAM_ORTHOGONAL_NORMAL = 43
#: Orthogonal weights: the Bartlett normals of the three blocks' Wishart matrices (this stream and the next two);
#: their chi-squares from Gamma streams ``48 + 32 q + i`` for block ``q``.
STREAM_ORTHOGONAL_WISHART = 44
_ORTHOGONAL_BARTLETT_CHI = 48


@njit(inline="always", cache=True)
def log_or_minus_inf(v):
    """``log v`` for ``v > 0``, ``-inf`` for ``v = 0`` (without asking the log of 0, which Python refuses)."""
    return math.log(v) if v > 0.0 else -math.inf


@njit(inline="always", cache=True)
def normal_at(stream, r, layer, net, k0, k1):
    """Standard normal number ``r`` of ``stream`` in a layer: counter ``(stream, 1 + r // 2, layer, net)``, words
    ``(0, 1)`` or ``(2, 3)`` for ``r`` even or odd, by the 64-bit Gaussian ziggurat and its retry streams."""
    row = np.uint64(1 + r // 2)
    w0, w1, w2, w3 = philox4x32(stream, row, layer, net, k0, k1)
    if r % 2 == 0:
        return ziggurat_draw(GAUSSIAN, w0, w1, stream, 0, row, layer, net, k0, k1)
    return ziggurat_draw(GAUSSIAN, w2, w3, stream, 1, row, layer, net, k0, k1)


@njit(cache=True)
def psd_cholesky(a, out):
    """Lower-triangular ``out`` with ``out out^T = a`` for a symmetric positive semi-definite ``a`` (k x k).

    A pivot at or below ``1e-14`` times the largest diagonal entry (a direction ``a`` does not span, up to
    rounding) gives a zero column, so singular Gram matrices (parallel inputs, a tangent along the input) are
    factored too."""
    k = a.shape[0]
    big = 0.0
    for i in range(k):
        big = max(big, a[i, i])
    tiny = 1e-14 * big
    for j in range(k):
        s = a[j, j]
        for p in range(j):
            s -= out[j, p] * out[j, p]
        if s <= tiny:
            for i in range(k):
                out[i, j] = 0.0
            continue
        d = math.sqrt(s)
        out[j, j] = d
        for i in range(j + 1, k):
            t = a[i, j]
            for p in range(j):
                t -= out[i, p] * out[j, p]
            out[i, j] = t / d
        for i in range(j):
            out[i, j] = 0.0


@njit(inline="always", cache=True)
def bartlett(dof, normal_stream, chi_stream, layer, net, k0, k1, t):
    """``t`` (m x m, lower triangular) with ``t t^T ~ Wishart_m(dof, I)``: ``t[i, i] = sqrt(chi2_{dof - i})`` for
    ``i < dof`` (0 beyond; Gamma stream ``chi_stream + i``), normals below the diagonal of the first ``dof``
    columns (``normal_stream``), zeros elsewhere."""
    m = t.shape[0]
    r = 0
    for i in range(m):
        for j in range(m):
            t[i, j] = 0.0
        for j in range(min(i, dof)):
            t[i, j] = normal_at(normal_stream, r, layer, net, k0, k1)
            r += 1
        if i < dof:
            t[i, i] = math.sqrt(2.0 * gamma_stream(0.5 * (dof - i), np.uint64(chi_stream + i), layer, net, k0, k1))


@njit(inline="always", cache=True)
def add_gram(t, out):
    """``out += t t^T`` for a lower-triangular ``t`` (m x m): a Wishart draw from its Bartlett factor."""
    m = t.shape[0]
    for i in range(m):
        for j in range(m):
            s = 0.0
            for q in range(min(i, j) + 1):
                s += t[i, q] * t[j, q]
            out[i, j] += s


@njit(inline="always", cache=True)
def tangent_layer(k, chi2, beta, p, chol, eta, t, lt, layer, net, k0, k1):
    """One layer of the tangents' chain given ``K = k >= 1`` and the length's ``chi2_K``: ``beta`` and ``p``
    updated in place (scratch ``eta``: m; ``chol``, ``t``, ``lt``: m x m)."""
    m = beta.shape[0]
    psd_cholesky(p, chol)
    root = math.sqrt(chi2)
    for j in range(m):
        eta[j] = normal_at(np.uint64(STREAM_TANGENT_SHIFT), j, layer, net, k0, k1)
    for i in range(m):
        s = 0.0
        for j in range(i + 1):
            s += chol[i, j] * eta[j]
        beta[i] += s / root
    bartlett(k - 1, np.uint64(STREAM_BARTLETT_NORMAL), STREAM_BARTLETT_CHI, layer, net, k0, k1, t)
    for i in range(m):  # lt = chol t (both lower triangular)
        for j in range(m):
            s = 0.0
            for q in range(j, i + 1):
                s += chol[i, q] * t[q, j]
            lt[i, j] = s
    for i in range(m):  # p = lt lt^T / chi2
        for j in range(i + 1):
            s = 0.0
            for q in range(min(i, j) + 1):
                s += lt[i, q] * lt[j, q]
            p[i, j] = s / chi2
            p[j, i] = p[i, j]


@njit(inline="always", cache=True)
def tangent_exact_trace(orthogonal, m0, shift0, beta0, p0, widths, cs, net, k0, k1, beta, p, chol, vecs, mats,
                        out, out_log, out_jvp_log):
    """``M_0..M_d`` of one net and ``log(||J_j u||^2 / n_j)`` of its tangents at every layer, sampled exactly.

    Parameters
    ----------
    orthogonal : bool
        Haar-orthogonal weights (:func:`orthogonal_tangent_layer`), else Gaussian (:func:`tangent_layer`).
    m0, shift0 : float, int
        ``M_0 = m0 2^shift0``.
    beta0 : ndarray, shape (m,)
        ``<u_i, x> / ||x||^2`` of each tangent ``u_i``.
    p0 : ndarray, shape (m, m)
        Gram matrix of the tangents' parts orthogonal to ``x``, divided by ``||x||^2``.
    widths : ndarray, shape (d + 1,), int64
    cs : ndarray, shape (d,), float64
    net, k0, k1 : uint64
    beta, p, chol, vecs, mats : ndarray
        Scratch: shape (m,), (m, m), (m, m), (4, m) and (4, m, m).
    out, out_log : ndarray, shape (d + 1,)
        ``M_j`` and ``log M_j``; with Gaussian weights bitwise those of :func:`fmsim.kernels.exact.fc_exact_trace`
        without biases (orthogonal: the law of its orthogonal sampler, from other random numbers).
    out_jvp_log : ndarray, shape (d + 1, m)
        ``log(||J_j u_i||^2 / n_j) = log M_j + log(beta_i^2 + P_ii)`` (``-inf`` for a dead net).
    """
    m = beta.shape[0]
    for i in range(m):
        beta[i] = beta0[i]
        for j in range(m):
            p[i, j] = p0[i, j]
    mm = m0
    shift = shift0
    out[0], out_log[0] = length_and_log(mm, shift)
    for i in range(m):
        out_jvp_log[0, i] = out_log[0] + log_or_minus_inf(beta[i] * beta[i] + p[i, i])
    for j in range(1, widths.shape[0]):
        layer = np.uint64(j)
        if mm > 0.0 and orthogonal:
            ratio = orthogonal_tangent_layer(widths[j - 1], widths[j], cs[j - 1], beta, p, chol, vecs, mats, layer,
                                             net, k0, k1)
            mm = mm * (ratio * widths[j - 1] / widths[j])
        elif mm > 0.0:  # the floating-point steps of exact_layer_ratio, so M_j keeps its bits
            k = binomial_half(widths[j], layer, net, k0, k1)
            if k == 0:
                mm = 0.0
            else:
                g = gamma_unit(0.5 * k, layer, net, k0, k1)
                mm = mm * ((cs[j - 1] / widths[j]) * 2.0 * g)
                tangent_layer(k, 2.0 * g, beta, p, chol, vecs[0], mats[0], mats[1], layer, net, k0, k1)
        out[j], out_log[j] = length_and_log(mm, shift)
        for i in range(m):
            out_jvp_log[j, i] = out_log[j] + log_or_minus_inf(beta[i] * beta[i] + p[i, i]) if mm > 0.0 else -math.inf
        mm, shift = renormalized(mm, shift)


@over_nets(net0_at=9, outputs=3)
def tangent_exact(orthogonal, m0, m0_shift, beta0, p0, widths, cs, k0, k1, net0, out_lengths, out_log, out_jvp_log):
    """:func:`tangent_exact_trace` for nets ``net0 ..``: ``out_lengths``, ``out_log`` of shape (nets, d + 1) and
    ``out_jvp_log`` of shape (nets, d + 1, m)."""
    m = beta0.shape[0]
    scratch = (np.empty((5, m)), np.empty((6, m, m)))  # once per call: a net writes every entry before reading it
    vecs, mats = borrowed(scratch)  # views that count no references (fmsim.kernels.borrowed), as are the others
    beta0, p0, widths, cs, out_lengths, out_log, out_jvp_log = borrowed((beta0, p0, widths, cs, out_lengths, out_log,
                                                                          out_jvp_log))
    for i in range(out_lengths.shape[0]):
        tangent_exact_trace(orthogonal, m0, m0_shift, beta0, p0, widths, cs, np.uint64(net0 + i), k0, k1, vecs[4],
                            mats[4], mats[5], vecs[:4], mats[:4], out_lengths[i], out_log[i], out_jvp_log[i])
    keep_alive(scratch)


@njit(inline="always", cache=True)
def unit_normals(unit, layer, net, k0, k1, eta):
    """``eta[:k]`` = the Gaussian weights ``0..k-1`` of row ``unit`` (64 bits each, as ``method="full"`` draws a
    row)."""
    k = eta.shape[0]
    for blk in range((k + 1) // 2):
        w0, w1, w2, w3 = philox4x32(np.uint64(blk), unit, layer, net, k0, k1)
        eta[2 * blk] = ziggurat_draw(GAUSSIAN, w0, w1, np.uint64(blk), 0, unit, layer, net, k0, k1)
        if 2 * blk + 1 < k:
            eta[2 * blk + 1] = ziggurat_draw(GAUSSIAN, w2, w3, np.uint64(blk), 1, unit, layer, net, k0, k1)


@njit(inline="always", cache=True)
def add_unit(tangent, chol, eta, h, g):
    """One unit of a layer: its carried values from the pre-activations ``chol eta`` into ``h``
    (:func:`carried_activations`), and ``h h^T`` added to the lower triangle of ``g``."""
    k = g.shape[0]
    carried_activations(tangent, chol, eta, h)
    for a in range(k):
        if h[a] != 0.0:
            for b in range(a + 1):
                g[a, b] += h[a] * h[b]


@njit(inline="always", cache=True)
def average_units(g, n):
    """``g`` (its lower triangle summed over ``n`` units) divided by ``n`` and made symmetric."""
    k = g.shape[0]
    for a in range(k):
        for b in range(a + 1):
            g[a, b] = g[a, b] / n
            g[b, a] = g[a, b]


@njit(inline="always", cache=True)
def record_gram_layer(g, shift, j, out_log, out_gram):
    """Layer ``j``'s Gram matrix ``g 2^shift`` into ``out_gram[j]`` (0 or inf beyond float64's range) and its
    diagonal's logs into ``out_log[j]``; ``g`` renormalized by a power of two when its largest diagonal entry
    leaves the window. Returns the new shift."""
    k = g.shape[0]
    big = 0.0
    for a in range(k):
        big = max(big, g[a, a])
        out_log[j, a] = length_and_log(g[a, a], shift)[1]
        for b in range(k):
            out_gram[j, a, b] = length_and_log(g[a, b], shift)[0] if g[a, b] >= 0.0 else \
                -length_and_log(-g[a, b], shift)[0]
    e = renorm_shift(big)
    if e != 0:
        for a in range(k):
            for b in range(k):
                g[a, b] = math.ldexp(g[a, b], -2 * e)
        shift += 2 * e
    return shift


# ------------------------------------------------------------ orthogonal weights
# W = sqrt(c) Q with Q Haar (orthonormal rows or columns). Q maps the carried vectors' orthonormal frame to the
# first n_j coordinates of a uniform frame in R^N, N = max(n_{j-1}, n_j): the Gram-Schmidt frame of Gaussian
# columns [g, H]. Split the N coordinates into the active ones (A: g > 0 among the first n_j, K ~ Bin(n_j, 1/2)
# of them), the inactive ones (I) and the dropped ones (D, N - n_j); each block's part of H splits into its
# component along g's block (normals a, b, b') and the rest (Wishart matrices W_A, W_I, W_D). Theory page:
# "Orthogonal weights" under the Gram chain.


@njit(inline="always", cache=True)
def _chi2_or_zero(dof, stream, layer, net, k0, k1):
    """``chi2_dof`` from Gamma stream ``stream``; 0 for ``dof = 0``."""
    if dof <= 0:
        return 0.0
    return 2.0 * gamma_stream(0.5 * dof, np.uint64(stream), layer, net, k0, k1)


@njit(inline="always", cache=True)
def forward_solve(r, rhs, out):
    """``out`` with ``r out = rhs``, ``r`` lower triangular; a zero pivot gives 0 (a direction not spanned)."""
    m = rhs.shape[0]
    for i in range(m):
        s = rhs[i]
        for q in range(i):
            s -= r[i, q] * out[q]
        out[i] = s / r[i, i] if r[i, i] > 0.0 else 0.0


@njit(inline="always", cache=True)
def orthogonal_tangent_layer(n_in, n, c, beta, p, chol, vecs, mats, layer, net, k0, k1):
    """One orthogonal layer (``n x n_in``, gain ``sqrt(c)``) of the tangents' chain: ``beta`` and ``p`` updated in
    place; returns ``||z'||^2 / ||z||^2`` (0: the net dies).

    With ``s = (|g_A| a + |g_I| b + |g_D| b') / |g|`` and ``R R^T = a a^T + b b^T + b' b'^T + W_A + W_I + W_D -
    s s^T``: ``||z'||^2 / ||z||^2 = c |g_A|^2 / |g|^2``, ``beta' = beta + L R^{-1} (a - (|g_A| / |g|) s) |g| / |g_A|``
    and ``P' = L R^{-1} W_A R^{-T} L^T |g|^2 / |g_A|^2`` (``L L^T = P``). Scratch: ``vecs`` (4, m): ``a``, ``b``,
    ``b'`` and a solve; ``mats`` (4, m, m): ``R R^T``, ``R``, a Bartlett factor, and ``R^{-1} T_A`` then
    ``L R^{-1} T_A``.
    """
    m = beta.shape[0]
    big_n = max(n_in, n)
    k = binomial_half(n, layer, net, k0, k1)
    if k == 0:
        return 0.0
    g_a = _chi2_or_zero(k, STREAM_ORTHOGONAL_CHI, layer, net, k0, k1)
    g_i = _chi2_or_zero(n - k, STREAM_ORTHOGONAL_CHI + 1, layer, net, k0, k1)
    g_d = _chi2_or_zero(big_n - n, STREAM_ORTHOGONAL_CHI + 2, layer, net, k0, k1)
    total = g_a + g_i + g_d
    root_a, root_i, root_d, root = math.sqrt(g_a), math.sqrt(g_i), math.sqrt(g_d), math.sqrt(total)
    a, b, b2, y = vecs[0], vecs[1], vecs[2], vecs[3]
    gram, r, t, x = mats[0], mats[1], mats[2], mats[3]
    for q in range(m):
        a[q] = normal_at(np.uint64(STREAM_ORTHOGONAL_NORMAL), q, layer, net, k0, k1)
        b[q] = normal_at(np.uint64(STREAM_ORTHOGONAL_NORMAL), m + q, layer, net, k0, k1) if n - k > 0 else 0.0
        b2[q] = normal_at(np.uint64(STREAM_ORTHOGONAL_NORMAL), 2 * m + q, layer, net, k0, k1) if big_n > n else 0.0
    for q in range(m):  # y = s, the frame's first vector against H
        y[q] = (root_a * a[q] + root_i * b[q] + root_d * b2[q]) / root
    for i in range(m):
        for j in range(m):
            gram[i, j] = a[i] * a[j] + b[i] * b[j] + b2[i] * b2[j] - y[i] * y[j]
    for block in (2, 1, 0):  # the dropped, inactive, then active block's Wishart (the active one's factor kept)
        dof = (k, n - k, big_n - n)[block] - 1
        bartlett(max(dof, 0), np.uint64(STREAM_ORTHOGONAL_WISHART + block), _ORTHOGONAL_BARTLETT_CHI + 32 * block,
                 layer, net, k0, k1, t)
        add_gram(t, gram)
    psd_cholesky(gram, r)
    psd_cholesky(p, chol)
    for q in range(m):  # a - (|g_A| / |g|) s, solved against R into b (free now)
        b2[q] = a[q] - (root_a / root) * y[q]
    forward_solve(r, b2, b)
    for i in range(m):
        s = 0.0
        for q in range(i + 1):
            s += chol[i, q] * b[q]
        beta[i] += s * root / root_a
    for j in range(m):  # x = R^{-1} T_A, column by column
        for i in range(m):
            a[i] = t[i, j]
        forward_solve(r, a, y)
        for i in range(m):
            x[i, j] = y[i]
    for i in range(m):  # x = L x (row i needs rows q <= i of the old x: from the bottom up)
        ii = m - 1 - i
        for j in range(m):
            s = 0.0
            for q in range(ii + 1):
                s += chol[ii, q] * x[q, j]
            x[ii, j] = s
    for i in range(m):
        for j in range(i + 1):
            s = 0.0
            for q in range(m):
                s += x[i, q] * x[j, q]
            p[i, j] = s * total / g_a
            p[j, i] = p[i, j]
    return c * g_a / total


@njit(inline="always", cache=True)
def inputs_exact_trace(orthogonal, g0, shift0, widths, cs, net, k0, k1, g, cov, chol, frame, lg, t, eta, h, y,
                       out_log, out_gram):
    """The Gram chain of ``k`` inputs of one net, sampled exactly: O(n_j k^2) per layer.

    Gaussian weights: unit ``i``'s pre-activations are ``L eta_i`` with ``L L^T = (c_j / n_{j-1}) G_{j-1}`` and
    ``eta_i`` its normals (:func:`unit_normals`). Orthogonal weights, in two passes over the units: they are
    ``L Lg^{-1} eta_i`` with ``L L^T = c_j G_{j-1}`` and ``Lg Lg^T = sum_i eta_i eta_i^T + W_D`` the frame's Gram
    matrix (``W_D ~ Wishart_k(N - n_j)`` from the dropped coordinates, stream :data:`STREAM_ORTHOGONAL_WISHART`
    ``+ 2``).

    Parameters
    ----------
    orthogonal : bool
        Haar-orthogonal weights, else Gaussian.
    g0 : ndarray, shape (k, k)
        ``X X^T / n_0 = g0 2^shift0`` of the inputs ``X`` (k x n_0).
    shift0 : int
        Even.
    widths, cs, net, k0, k1
        As in :func:`tangent_exact_trace`.
    g, cov, chol, frame, lg, t : ndarray, shape (k, k)
        Scratch (``frame``, ``lg``, ``t``: orthogonal weights only).
    eta, h, y : ndarray, shape (k,)
        Scratch (``y``: orthogonal weights only).
    out_log : ndarray, shape (d + 1, k)
        ``log M_j`` of each input (``-inf``: that input's activations are zero).
    out_gram : ndarray, shape (d + 1, k, k)
        ``G_j / n_j``: ``M_j`` of each input on the diagonal, ``<z_j^a, z_j^b> / n_j`` off it (0 or inf beyond
        float64's range: the cosines ``G_ab / sqrt(G_aa G_bb)`` and ``out_log`` hold at any depth).
    """
    k = g.shape[0]
    for a in range(k):
        for b in range(k):
            g[a, b] = g0[a, b]  # held as G_j / n_j divided by 2^shift
    shift = shift0
    for j in range(widths.shape[0]):
        if j > 0:
            n_in = widths[j - 1]
            n = widths[j]
            layer = np.uint64(j)
            if not orthogonal:
                carried_hidden_layer(False, g, cov, chol, eta, h, n, cs[j - 1], layer, net, k0, k1)
            else:
                for a in range(k):  # the inputs' frame coordinates times sqrt(c): L L^T = c G
                    for b in range(k):
                        cov[a, b] = cs[j - 1] * n_in * g[a, b]
                        g[a, b] = 0.0
                        frame[a, b] = 0.0
                psd_cholesky(cov, chol)
                bartlett(max(n_in - n, 0), np.uint64(STREAM_ORTHOGONAL_WISHART + 2), _ORTHOGONAL_BARTLETT_CHI + 64,
                         layer, net, k0, k1, t)
                add_gram(t, frame)
                for i in range(n):
                    unit_normals(np.uint64(i), layer, net, k0, k1, eta)
                    for a in range(k):
                        for b in range(k):
                            frame[a, b] += eta[a] * eta[b]
                psd_cholesky(frame, lg)
                for i in range(n):
                    unit_normals(np.uint64(i), layer, net, k0, k1, eta)
                    forward_solve(lg, eta, y)
                    add_unit(False, chol, y, h, g)
                average_units(g, n)
        shift = record_gram_layer(g, shift, j, out_log, out_gram)


@over_nets(net0_at=7, outputs=2)
def inputs_exact(orthogonal, g0, shift0, widths, cs, k0, k1, net0, out_log, out_gram):
    """:func:`inputs_exact_trace` for nets ``net0 ..``: ``out_log`` (nets, d + 1, k), ``out_gram``
    (nets, d + 1, k, k)."""
    k = g0.shape[0]
    scratch = (np.empty((6, k, k)), np.empty((3, k)))  # once per call: a net writes every entry before reading it
    mats, vecs = borrowed(scratch)  # views that count no references (fmsim.kernels.borrowed), as are the others
    g0, widths, cs, out_log, out_gram = borrowed((g0, widths, cs, out_log, out_gram))
    for i in range(out_log.shape[0]):
        inputs_exact_trace(orthogonal, g0, shift0, widths, cs, np.uint64(net0 + i), k0, k1, mats[0], mats[1],
                           mats[2], mats[3], mats[4], mats[5], vecs[0], vecs[1], vecs[2], out_log[i], out_gram[i])
    keep_alive(scratch)


# ------------------------------------------------------------ residual nets
# y_l = y_{l-1} + eta_l F(y_{l-1}), F a module of m hidden ReLU layers and an output layer (linear or ReLU ending).
# The hidden layers see the carried streams only through their Gram matrix, so they are the chain above, one unit
# at a time; the output layer's pre-activations are, given the last hidden Gram matrix G_h, i.i.d. over coordinates
# N(0, c_out G_h / k_m) and independent of the streams. With a ReLU ending the stream's new Gram matrix depends on
# more than its old one (E[<y, ReLU(o)>] involves the sum of y's coordinates), so the streams are carried
# explicitly.


@njit(inline="always", cache=True)
def lower_product(chol, eta, h):
    """``h = chol eta`` for a lower-triangular ``chol`` (k x k)."""
    for a in range(h.shape[0]):
        t = 0.0
        for q in range(a + 1):
            t += chol[a, q] * eta[q]
        h[a] = t


@njit(inline="always", cache=True)
def carried_activations(tangent, chol, eta, h):
    """``h`` = one unit's carried values given its pre-activations ``chol eta`` (``chol``: k x k lower triangular):
    the ReLU of each for inputs; for an input and tangents (``tangent``), the input's ReLU and the tangents masked
    by the sign of the input's pre-activation."""
    lower_product(chol, eta, h)
    alive = h[0] > 0.0
    for a in range(h.shape[0]):
        if (tangent and not alive) or (not tangent and not h[a] > 0.0):
            h[a] = 0.0


@njit(inline="always", cache=True)
def carried_hidden_layer(tangent, g, cov, chol, eta, h, n, c, layer, net, k0, k1):
    """One Gaussian layer of width ``n`` and ``Var(W) = c / n_in``: ``g`` (``G / n_in`` of the carried vectors,
    k x k) becomes the layer's ``G / n``. Unit ``i``'s pre-activations are ``L eta_i``, ``L L^T = c g``, with
    ``eta_i`` its normals (:func:`unit_normals`), carried by :func:`add_unit`; scratch ``cov``, ``chol`` (k x k),
    ``eta``, ``h`` (k,)."""
    k = g.shape[0]
    for a in range(k):
        for b in range(k):
            cov[a, b] = c * g[a, b]
            g[a, b] = 0.0
    psd_cholesky(cov, chol)
    for i in range(n):
        unit_normals(np.uint64(i), layer, net, k0, k1, eta)
        add_unit(tangent, chol, eta, h, g)
    average_units(g, n)


@njit(inline="always", cache=True)
def stream_gram(y, g):
    """``g = y y^T / n`` of the carried streams ``y`` (k x n)."""
    k, n = y.shape
    for a in range(k):
        for b in range(a + 1):
            s = 0.0
            for i in range(n):
                s += y[a, i] * y[b, i]
            g[a, b] = s / n
            g[b, a] = g[a, b]


@njit(inline="always", cache=True)
def residual_carried_trace(tangent, relu_end, xs, x_shift, module_widths, etas, c, c_out, net, k0, k1, y, g, cov,
                           chol, eta, h, out_log, out_gram):
    """The Gram chain of ``k`` vectors carried through one Gaussian residual net without biases, sampled exactly.

    Module ``l`` (0-based): its hidden layers by :func:`carried_hidden_layer` from the streams' ``G / n``, with
    counter layers ``l (m + 1) + 1 + j`` as ``method="full"``; then output coordinate ``i``'s pre-activations
    ``L eta_i`` (``L L^T = c_out G_h / k_m``, ``eta_i`` the normals of unit ``i`` of layer ``l (m + 1) + 1 + m``),
    added to the streams times ``eta_l``: as they are (linear ending), or through the ReLU of each input, or the
    input's ReLU and the tangents masked by its sign (``relu_end``).

    Parameters
    ----------
    tangent : bool
        Vector 0 is the input and vectors ``1..k-1`` tangents at it (else ``k`` inputs).
    relu_end : bool
        ``F = ReLU(W_out h)``, else ``F = W_out h``.
    xs : ndarray, shape (k, n)
        The vectors at ``l = 0`` divided by ``2^x_shift``.
    x_shift : int
    module_widths : ndarray, shape (m,), int64
        ``k_1..k_m``, the hidden widths (``m = 0``: the output layer reads the stream).
    etas : ndarray, shape (L,)
    c, c_out : float
        ``Var(W) = c / fan-in`` in the hidden layers, ``c_out / k_m`` in the output layer.
    net, k0, k1 : uint64
    y : ndarray, shape (k, n)
        Scratch: the streams, held divided by a power of two.
    g, cov, chol : ndarray, shape (k, k)
    eta, h : ndarray, shape (k,)
        Scratch.
    out_log : ndarray, shape (L + 1, k)
        ``log(|y_l^a|^2 / n)`` of each vector (``-inf`` where it is zero).
    out_gram : ndarray, shape (L + 1, k, k)
        ``y_l^T y_l / n`` (0 or inf beyond float64's range).
    """
    k, n = xs.shape
    m = module_widths.shape[0]
    for a in range(k):
        for i in range(n):
            y[a, i] = xs[a, i]
    zs = x_shift  # the streams are y 2^zs
    stream_gram(y, g)
    for mod in range(etas.shape[0] + 1):
        if mod > 0:
            for j in range(m):
                carried_hidden_layer(tangent, g, cov, chol, eta, h, module_widths[j], c,
                                     residual_layer(mod - 1, m, j), net, k0, k1)
            for a in range(k):
                for b in range(k):
                    cov[a, b] = c_out * g[a, b]
            psd_cholesky(cov, chol)
            scale = etas[mod - 1]
            layer = residual_layer(mod - 1, m, m)
            for i in range(n):
                unit_normals(np.uint64(i), layer, net, k0, k1, eta)
                if relu_end:
                    carried_activations(tangent, chol, eta, h)
                else:
                    lower_product(chol, eta, h)
                for a in range(k):
                    y[a, i] += scale * h[a]
            stream_gram(y, g)
        shift = record_gram_layer(g, 2 * zs, mod, out_log, out_gram)
        if shift != 2 * zs:  # g was renormalized: the streams follow
            f = math.ldexp(1.0, zs - shift // 2)
            for a in range(k):
                for i in range(n):
                    y[a, i] *= f
            zs = shift // 2


@over_nets(net0_at=10, outputs=2)
def residual_carried(tangent, relu_end, xs, x_shift, module_widths, etas, c, c_out, k0, k1, net0, out_log,
                     out_gram):
    """:func:`residual_carried_trace` for nets ``net0 ..``: ``out_log`` (nets, L + 1, k), ``out_gram``
    (nets, L + 1, k, k)."""
    k, n = xs.shape
    scratch = (np.empty((k, n)), np.empty((3, k, k)), np.empty((2, k)))  # once per call: a net writes every entry
    # before it reads it
    y, mats, vecs = borrowed(scratch)  # views that count no references (fmsim.kernels.borrowed), as are the others
    xs, module_widths, etas, out_log, out_gram = borrowed((xs, module_widths, etas, out_log, out_gram))
    for i in range(out_log.shape[0]):
        residual_carried_trace(tangent, relu_end, xs, x_shift, module_widths, etas, c, c_out, np.uint64(net0 + i), k0,
                               k1, y, mats[0], mats[1], mats[2], vecs[0], vecs[1], out_log[i], out_gram[i])
    keep_alive(scratch)
