"""Parallel CPU kernels (``prange`` over nets). They only loop and write into ``out``.

One net is computed start to finish by one thread, and every random number is
a function of its counter, so the output is bit-identical for any number of
threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .scalar import across_layer_variance, bias_draw, exact_layer_ratio, mean_square, row_dot


@njit(parallel=True, cache=True)
def fc_full(x, widths, scales, bias_sd, law, k0, k1, net0, out_lengths, out_fm2):
    """Forward passes of fully connected ReLU nets, weights drawn on the fly.

    Parameters
    ----------
    x : ndarray, shape (n_0,), float64
        Input, shared by all nets.
    widths : ndarray, shape (d + 1,), int64
    scales : ndarray, shape (d,), float64
        Weight standard deviation per layer, ``sqrt(c_j / n_{j-1})``.
    bias_sd : float
        Bias standard deviation (0 for none).
    law : int
        Weight-law code.
    k0, k1 : uint64
        Philox key.
    net0 : int
        Global index of the first net of this chunk.
    out_lengths : ndarray, shape (n, d + 1), float64
        Written: ``M_0..M_d`` of each net.
    out_fm2 : ndarray, shape (n,), float64
        Written: empirical variance of ``M_1..M_d`` of each net.
    """
    n = out_lengths.shape[0]
    d = widths.shape[0] - 1
    wmax = 0
    for j in range(d + 1):
        wmax = max(wmax, widths[j])
    m0 = mean_square(x, widths[0])
    for i in prange(n):
        net = np.uint64(net0 + i)
        z = np.zeros(wmax)
        znew = np.zeros(wmax)
        z[: widths[0]] = x
        out_lengths[i, 0] = m0
        for j in range(1, d + 1):
            layer = np.uint64(j)
            n_in = widths[j - 1]
            for r in range(widths[j]):
                row = np.uint64(r)
                pre = scales[j - 1] * row_dot(law, z, n_in, row, layer, net, k0, k1)
                if bias_sd > 0.0:
                    pre += bias_sd * bias_draw(law, row, layer, net, k0, k1)
                znew[r] = pre if pre > 0.0 else 0.0
            z, znew = znew, z
            out_lengths[i, j] = mean_square(z, widths[j])
        out_fm2[i] = across_layer_variance(out_lengths[i])


@njit(parallel=True, cache=True)
def fc_exact(m0, widths, cs, k0, k1, net0, out_lengths, out_fm2):
    """Exact Gaussian sampler: ``M_j = M_{j-1} (c_j/n_j) chi2(K_j)``, O(n_j/128 + 1) per layer.

    Parameters
    ----------
    m0 : float
        ``M_0`` of the input.
    widths : ndarray, shape (d + 1,), int64
    cs : ndarray, shape (d,), float64
        ``c_j`` per layer.
    k0, k1, net0, out_lengths, out_fm2
        As in :func:`fc_full`.
    """
    n = out_lengths.shape[0]
    d = widths.shape[0] - 1
    for i in prange(n):
        net = np.uint64(net0 + i)
        m = m0
        out_lengths[i, 0] = m
        for j in range(1, d + 1):
            if m > 0.0:
                m *= exact_layer_ratio(widths[j], cs[j - 1], np.uint64(j), net, k0, k1)
            out_lengths[i, j] = m
        out_fm2[i] = across_layer_variance(out_lengths[i])
