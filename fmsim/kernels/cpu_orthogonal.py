"""Orthogonal weights (``law="orthogonal"``) on the CPU: Haar matrices by Householder QR, and the kernels.

``method="full"`` draws each layer's weight matrix whole, as
``nn.init.orthogonal_`` does: a Gaussian ``G`` (``out x in``; row ``r`` is the
Gaussian row ``r`` of the layer's stream, ``fmsim.laws``), transposed when
``out < in``, factored ``G = Q R`` by Householder reflections, with the columns
of ``Q`` multiplied by the signs of ``diag(R)`` so that ``Q`` is Haar
distributed (Mezzadri 2007), and transposed back. This costs O(out in
min(out, in)) per layer: ground truth, not speed. ``method="exact"`` samples
``M_j`` from its exact law instead (:mod:`fmsim.kernels.scalar`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..sampling.laws import GAUSSIAN, residual_layer, row_scratch, standard_row
from .cpu import conv_layer, conv_scratch, periodic_pad, record_and_renormalize
from .exact import fc_orthogonal_exact_trace, residual_orthogonal_exact_trace, residual_orthogonal_relu_exact_trace
from .over_nets import over_nets
from .scalar import RENORM_HIGH, RENORM_LOW, mean_square, record_length

__all__ = ["haar_matrix", "haar_scratch", "fc_orthogonal_full", "res_orthogonal_full", "conv_orthogonal_full",
           "fc_orthogonal_exact", "res_orthogonal_exact", "res_orthogonal_relu_exact"]


@njit(cache=True)
def haar_scratch(max_entries, max_side):
    """Scratch for :func:`haar_matrix` with matrices of up to ``max_entries`` entries and sides up to
    ``max_side``: ``(a, qt, tau, rdiag, words, slow, g)``."""
    words, slow, g, _ = row_scratch(max_side)
    return (np.empty(max_entries), np.empty(max_entries), np.empty(max_side), np.empty(max_side), words, slow, g)


@njit(inline="always", cache=True)
def _reflect(a, cj, j, m, tau_j, b, cb):
    """``b[cb + j : cb + m] -= tau_j (v . b) v`` with ``v = a[cj + j : cj + m]``: the Householder reflection
    ``H_j`` applied to one column stored from ``b[cb]``."""
    v = a[cj:]  # views indexed from 0 up: no negative-index check per element, so LLVM vectorizes the update
    col = b[cb:]
    s = 0.0
    for i in range(j, m):
        s += v[i] * col[i]
    s *= tau_j
    for i in range(j, m):
        col[i] -= s * v[i]


@njit(cache=True)
def haar_matrix(n_out, n_in, layer, net, k0, k1, a, qt, tau, rdiag, words, slow, g, out):
    """The ``n_out x n_in`` Haar-orthogonal weight matrix of a layer into ``out`` (row-major, ``out[r n_in + c]``).

    Rows orthonormal when ``n_out < n_in``, columns otherwise. ``G``'s row ``r`` is the Gaussian row
    ``(r, layer, net)`` of :func:`~fmsim.laws.standard_row`. With ``m = max(n_out, n_in)`` and
    ``k = min(n_out, n_in)``, ``A`` (``m x k``) is ``G`` or ``G^T``, stored by columns in ``a``
    (``a[j m + i] = A[i, j]``); it is reduced by Householder reflections ``H_j = I - tau_j v_j v_j^T``
    (``v_j`` overwrites column ``j`` from row ``j``; ``R_jj`` into ``rdiag``), and
    ``Q = H_0 ... H_{k-1} [I_k; 0]`` is formed column by column in ``qt``
    (``qt[l m + i] = Q[i, l]``), each column times ``sign(R_ll)``.

    Parameters
    ----------
    a, qt : ndarray, shape (>= n_out n_in,), float64
        Scratch.
    tau, rdiag : ndarray, shape (>= k,), float64
        Scratch.
    words, slow, g : ndarray
        Row scratch (:func:`~fmsim.laws.row_scratch`) for rows of ``n_in``.
    out : ndarray, shape (>= n_out n_in,), float64
        Written.
    """
    tall = n_out >= n_in
    m = n_out if tall else n_in
    k = n_in if tall else n_out
    for r in range(n_out):
        standard_row(GAUSSIAN, False, n_in, np.uint64(r), layer, net, k0, k1, words, slow, g)
        if tall:  # A = G: column c of A is entry c of every row
            for c in range(n_in):
                a[c * m + r] = g[c]
        else:  # A = G^T: column r of A is row r of G
            for c in range(n_in):
                a[r * m + c] = g[c]
    for j in range(k):
        cj = j * m
        norm2 = 0.0
        for i in range(j, m):
            norm2 += a[cj + i] * a[cj + i]
        x0 = a[cj + j]
        alpha = math.sqrt(norm2)
        if x0 > 0.0:
            alpha = -alpha  # v = x - alpha e_1 with alpha of the sign opposite x0: no cancellation
        rdiag[j] = alpha
        a[cj + j] = x0 - alpha
        vnorm2 = norm2 - x0 * x0 + a[cj + j] * a[cj + j]
        tau[j] = 2.0 / vnorm2 if vnorm2 > 0.0 else 0.0
        for col in range(j + 1, k):
            _reflect(a, cj, j, m, tau[j], a, col * m)
    for col in range(k):
        cl = col * m
        for i in range(m):
            qt[cl + i] = 0.0
        qt[cl + col] = 1.0
        for j in range(col, -1, -1):  # H_j for j > col leaves e_col unchanged
            _reflect(a, j * m, j, m, tau[j], qt, cl)
        if rdiag[col] < 0.0:
            for i in range(m):
                qt[cl + i] = -qt[cl + i]
    if tall:  # W = Q: W[r, c] = Q[r, c]
        for r in range(n_out):
            for c in range(n_in):
                out[r * n_in + c] = qt[c * m + r]
    else:  # W = Q^T: row r of W is column r of Q
        for i in range(n_out * n_in):
            out[i] = qt[i]


@njit(inline="always", cache=True)
def _dense_relu_layer(wm, z, n_out, n_in, gain, relu, out):
    """``out[r] = gain * sum_c wm[r n_in + c] z[c]``, through a ReLU if ``relu``."""
    for r in range(n_out):
        acc = 0.0
        row = r * n_in
        for c in range(n_in):
            acc += wm[row + c] * z[c]
        pre = gain * acc
        out[r] = pre if (pre > 0.0 or not relu) else 0.0


@over_nets(6)
def fc_orthogonal_full(x, x_shift, widths, gains, k0, k1, net0, out_lengths, out_log):
    """Forward passes of fully connected ReLU nets with Haar-orthogonal weights (:func:`haar_matrix`) times
    ``gains[j - 1] = sqrt(c_j)``, renormalized by powers of two as :func:`~fmsim.kernels.cpu.fc_full`.

    Parameters
    ----------
    x : ndarray, shape (n_0,), float64
        Input divided by ``2^x_shift``.
    x_shift : int
    widths : ndarray, shape (d + 1,), int64
    gains : ndarray, shape (d,), float64
    k0, k1, net0, out_lengths, out_log
        As in :func:`~fmsim.kernels.cpu.fc_full`.
    """
    n = out_lengths.shape[0]
    d = widths.shape[0] - 1
    wmax, emax = np.intp(0), np.intp(0)  # not literal 0s: numba would compile haar_scratch for them too
    for j in range(d + 1):
        wmax = max(wmax, widths[j])
        if j > 0:
            emax = max(emax, widths[j] * widths[j - 1])
    m0 = mean_square(x, widths[0])
    for i in range(n):
        net = np.uint64(net0 + i)
        z = np.zeros(wmax)
        znew = np.zeros(wmax)
        wm = np.empty(emax)
        a, qt, tau, rdiag, words, slow, g = haar_scratch(emax, wmax)
        z[: widths[0]] = x
        shift = x_shift
        record_length(m0, 2 * shift, 0, out_lengths[i], out_log[i])
        for j in range(1, d + 1):
            haar_matrix(widths[j], widths[j - 1], np.uint64(j), net, k0, k1, a, qt, tau, rdiag, words, slow, g, wm)
            _dense_relu_layer(wm, z, widths[j], widths[j - 1], gains[j - 1], True, znew)
            z, znew = znew, z
            shift = record_and_renormalize(z, widths[j], shift, j, RENORM_LOW, RENORM_HIGH, out_lengths[i],
                                           out_log[i])


@over_nets(9)
def res_orthogonal_full(x, x_shift, module_widths, etas, gain, out_gain, relu_end, k0, k1, net0, out_lengths, out_log):
    """Forward passes of residual nets with Haar-orthogonal weights: hidden layers times ``gain = sqrt(c)``, the
    output layer (``n x k_m``) times ``out_gain = sqrt(c_out)``; counter layers and renormalization as in
    :func:`~fmsim.kernels.cpu.res_full`.

    Parameters
    ----------
    x : ndarray, shape (n,), float64
    x_shift : int
    module_widths : ndarray, shape (m,), int64
    etas : ndarray, shape (L,), float64
    gain, out_gain : float
    relu_end : bool
    k0, k1, net0, out_lengths, out_log
        As in :func:`~fmsim.kernels.cpu.res_full`.
    """
    nets = out_lengths.shape[0]
    n = x.shape[0]
    m = module_widths.shape[0]
    L = etas.shape[0]
    kmax = n
    emax = np.intp(0)
    fan = n
    for j in range(m):
        kmax = max(kmax, module_widths[j])
        emax = max(emax, module_widths[j] * fan)
        fan = module_widths[j]
    emax = max(emax, n * fan)
    m0 = mean_square(x, n)
    for i in range(nets):
        net = np.uint64(net0 + i)
        y = x.copy()
        h = np.zeros(kmax)
        hnew = np.zeros(kmax)
        wm = np.empty(emax)
        a, qt, tau, rdiag, words, slow, g = haar_scratch(emax, kmax)
        shift = x_shift
        record_length(m0, 2 * shift, 0, out_lengths[i], out_log[i])
        for mod in range(L):
            h[:n] = y
            n_in = n
            for j in range(m):
                haar_matrix(module_widths[j], n_in, residual_layer(mod, m, j), net, k0, k1, a, qt, tau, rdiag, words,
                            slow,
                            g, wm)
                _dense_relu_layer(wm, h, module_widths[j], n_in, gain, True, hnew)
                h, hnew = hnew, h
                n_in = module_widths[j]
            haar_matrix(n, n_in, residual_layer(mod, m, m), net, k0, k1, a, qt, tau, rdiag, words, slow, g, wm)
            _dense_relu_layer(wm, h, n, n_in, out_gain, relu_end, hnew)
            for r in range(n):
                y[r] += etas[mod] * hnew[r]
            shift = record_and_renormalize(y, n, shift, mod + 1, RENORM_LOW, RENORM_HIGH, out_lengths[i], out_log[i])


@over_nets(10)
def conv_orthogonal_full(x, x_shift, channels, height, width, kh, kw, gains, k0, k1, net0, out_lengths, out_log):
    """Forward passes of periodic conv ReLU nets whose flattened kernels (``C_j x C_{j-1} kh kw``, ordered
    ``(c_in, ty, tx)``) are Haar-orthogonal (:func:`haar_matrix`) times ``gains[j - 1] = sqrt(c_j)``: PyTorch's
    ``orthogonal_`` on a conv weight. Convolution (:func:`~fmsim.kernels.cpu.conv_layer`) and renormalization as in
    :func:`~fmsim.kernels.cpu.conv_full`.

    Parameters
    ----------
    x : ndarray, shape (C_0 H W,), float64
    x_shift : int
    channels : ndarray, shape (d + 1,), int64
    height, width, kh, kw : int
    gains : ndarray, shape (d,), float64
    k0, k1, net0, out_lengths, out_log
        As in :func:`~fmsim.kernels.cpu.conv_full`.
    """
    nets = out_lengths.shape[0]
    d = channels.shape[0] - 1
    P = height * width
    taps = kh * kw
    cmax, emax, side = np.intp(0), np.intp(0), np.intp(0)
    for j in range(d + 1):
        cmax = max(cmax, channels[j])
        if j > 0:
            emax = max(emax, channels[j] * channels[j - 1] * taps)
            side = max(side, channels[j], channels[j - 1] * taps)
    m0 = mean_square(x, x.shape[0])
    for i in range(nets):
        net = np.uint64(net0 + i)
        z = np.zeros(cmax * P)
        znew = np.zeros(cmax * P)
        zpad, acc, wrow, wblock, offsets = conv_scratch(cmax, height, width, kh, kw, 0.0)
        wm = np.empty(emax)
        a, qt, tau, rdiag, words, slow, g = haar_scratch(emax, side)
        z[: x.shape[0]] = x
        shift = x_shift
        record_length(m0, 2 * shift, 0, out_lengths[i], out_log[i])
        for j in range(1, d + 1):
            c_in = channels[j - 1]
            fan = c_in * taps
            haar_matrix(channels[j], fan, np.uint64(j), net, k0, k1, a, qt, tau, rdiag, words, slow, g, wm)
            periodic_pad(z, c_in, height, width, kh, kw, zpad)
            conv_layer(GAUSSIAN, False, wm[:channels[j] * fan], zpad, c_in, channels[j], height, width, kh, kw,
                       gains[j - 1], 0.0, np.uint64(j), net, k0, k1, words, slow, wrow, wblock, offsets, acc, znew)
            z, znew = znew, z
            shift = record_and_renormalize(z, channels[j] * P, shift, j, RENORM_LOW, RENORM_HIGH, out_lengths[i],
                                           out_log[i])


@over_nets(6)
def fc_orthogonal_exact(m0, m0_shift, widths, cs, k0, k1, net0, out_lengths, out_log):
    """Exact sampler for fully connected nets with orthogonal weights, O(1 + n_j/128) per layer
    (:func:`~fmsim.kernels.exact.fc_orthogonal_exact_trace`). Arguments as :func:`~fmsim.kernels.cpu.fc_exact`
    without the bias."""
    for i in range(out_lengths.shape[0]):
        fc_orthogonal_exact_trace(m0, m0_shift, widths, cs, np.uint64(net0 + i), k0, k1, out_lengths[i], out_log[i])


@over_nets(9)
def res_orthogonal_exact(m0, m0_shift, n, module_widths, etas, c, c_out, k0, k1, net0, out_lengths, out_log):
    """Exact sampler for residual nets with linear-ending orthogonal modules, O(1 + k/128) per module
    (:func:`~fmsim.kernels.exact.residual_orthogonal_exact_trace`)."""
    for i in range(out_lengths.shape[0]):
        residual_orthogonal_exact_trace(m0, m0_shift, n, module_widths, etas, c, c_out, np.uint64(net0 + i), k0, k1,
                                        out_lengths[i], out_log[i])


@over_nets(8)
def res_orthogonal_relu_exact(x, x_shift, module_widths, etas, c, c_out, k0, k1, net0, out_lengths, out_log):
    """Sampler for residual nets with ReLU-ending orthogonal modules, O(n + k/128) per module
    (:func:`~fmsim.kernels.exact.residual_orthogonal_relu_exact_trace`)."""
    y = np.empty(x.shape[0])  # scratch, every entry written before it is read
    g = np.empty(x.shape[0])
    for i in range(out_lengths.shape[0]):
        residual_orthogonal_relu_exact_trace(x, x_shift, module_widths, etas, c, c_out, np.uint64(net0 + i), k0, k1,
                                             y, g, out_lengths[i], out_log[i])
