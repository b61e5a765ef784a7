"""The ``full`` kernel that carries several vectors through the same drawn weights (CPU).

Fully connected nets. Each layer gathers the inputs where *any* carried vector is nonzero (the union), draws
each row's weights for them once (:func:`fmsim.kernels.cpu.row_preactivation`'s stages: the row's Philox words,
the law's transform) and sums them against every vector: the random numbers, which dominate the cost, are
shared. Weight ``k`` of a row's stream goes to the ``k``-th input of the union (stream layout 5, ``fmsim.laws``):
where the union is the first vector's own nonzero inputs, the first vector gets the weights, the sums and the
bits of a run that carries it alone.

Two modes:

* **inputs**: every vector is an input, with the ReLU and the bias of each unit applied to each.
* **tangents**: vector 0 is the input ``x``; vectors ``1..m`` are tangents ``v_j = D_j W_j v_{j-1}``, masked by
  ``x``'s pre-activations and given no bias (the forward-mode Jacobian-vector product at ``x``).

All vectors are held divided by one ``2^shift``, renormalized by vector 0's mean square exactly as
:func:`fmsim.kernels.cpu.fc_full` renormalizes its one vector.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..sampling.laws import RADEMACHER
from .borrowed import borrowed, keep_alive
from .cpu import (
    cast_like,
    divide_by_power_of_two,
    drawn_dot,
    drawn_row,
    layer_scratch,
    rademacher_dot,
    rademacher_table,
)
from .over_nets import over_nets
from .partial_sums import partial_sums_pair
from .scalar import bias_draw, length_and_log, mean_square, renorm_shift_within, scale_bias

__all__ = ["fc_full_carry", "drawn_dot_pair", "gather_union", "record_gram"]


@njit(inline="always", cache=True)
def gather_union(z, k, n, active):
    """``active[v, :count]`` = vector ``v``'s entries at the inputs where any of ``z[:k, :n]`` is nonzero, in order;
    returns ``count``. (For one vector: :func:`fmsim.kernels.scalar.nonzero_inputs`.)"""
    count = 0
    for i in range(n):
        hit = False
        for v in range(k):
            active[v, count] = z[v, i]  # written always, kept only where some vector is nonzero
            hit = hit or z[v, i] != 0.0
        if hit:
            count += 1
    return count


@njit(inline="always", cache=True)
def drawn_dot_pair(w, a, b, n_in):
    """:func:`fmsim.kernels.cpu.drawn_dot` of one drawn row against two vectors at once, each summed bitwise as
    that function sums it (four partial sums over ``k mod 4``, combined ``(s0 + s1) + (s2 + s3)``): the weights
    are loaded once for both (:func:`~fmsim.kernels.partial_sums.partial_sums_pair`)."""
    m = n_in - n_in % 4
    a0, a1, a2, a3, b0, b1, b2, b3 = partial_sums_pair(w, a, b, m)
    if m < n_in:
        a0 += w[m] * a[m]
        b0 += w[m] * b[m]
    if m + 1 < n_in:
        a1 += w[m + 1] * a[m + 1]
        b1 += w[m + 1] * b[m + 1]
    if m + 2 < n_in:
        a2 += w[m + 2] * a[m + 2]
        b2 += w[m + 2] * b[m + 2]
    return (a0 + a1) + (a2 + a3), (b0 + b1) + (b2 + b3)


@njit(inline="always", cache=True)
def record_gram(z, k, n, shift, j, out_log, out_gram):
    """Write layer ``j``'s ``log M`` of each vector and their Gram matrix over ``n`` (held divided by
    ``2^shift``); returns vector 0's mean square (as held), which sets the renormalization."""
    shift2 = 2 * shift
    ms0 = 0.0
    for a in range(k):
        ms = mean_square(z[a], n)
        if a == 0:
            ms0 = ms
        out_gram[j, a, a], out_log[j, a] = length_and_log(ms, shift2)
        for b in range(a):
            s = 0.0
            for i in range(n):
                s += np.float64(z[a, i]) * np.float64(z[b, i])
            s /= n
            g = length_and_log(abs(s), shift2)[0]
            out_gram[j, a, b] = g if s >= 0.0 else -g
            out_gram[j, b, a] = out_gram[j, a, b]
    return ms0


@over_nets(net0_at=8, outputs=3)
def fc_full_carry(xs, x_shift, widths, scales, bias_sds, law, k0, k1, net0, zero, bits32, tangents, renorm_high,
                  out_log, out_gram, out_first):
    """Forward passes of fully connected nets carrying ``k`` vectors through the same weights.

    Parameters
    ----------
    xs : ndarray, shape (k, n_0), float64
        The carried vectors at layer 0, divided by ``2^x_shift``: inputs, or (``tangents``) the input then the
        tangents.
    x_shift : int
    widths, scales, bias_sds, law, k0, k1, net0, zero, bits32, renorm_high
        As in :func:`fmsim.kernels.cpu.fc_full`.
    tangents : bool
        Vectors ``1..k-1`` are tangents at vector 0 (masked by its pre-activations, no bias).
    out_log : ndarray, shape (n, d + 1, k), float64
        Written: ``log(||v_j||^2 / n_j)`` of each vector at each layer (``-inf`` for a zero vector).
    out_gram : ndarray, shape (n, d + 1, k, k), float64
        Written: ``G_j / n_j`` (0 or inf beyond float64's range; ``out_log`` holds the diagonal at any depth).
    out_first : ndarray, shape (n, k), float64
        Written: each vector's first coordinate at the last layer, squared (for tangents ``e_p``: the entry
        ``(J e_p)_0^2`` of the input-output Jacobian; 0 or inf beyond float64's range).
    """
    n = out_log.shape[0]
    k = xs.shape[0]
    d = widths.shape[0] - 1
    renorm_low = 1.0 / renorm_high
    wmax = np.intp(0)
    for j in range(d + 1):
        wmax = max(wmax, widths[j])
    for i in range(n):
        net = np.uint64(net0 + i)
        planes = (np.full((k, wmax), zero), np.full((k, wmax), zero), np.full((k, wmax), zero),
                  np.full((k, 4 * wmax + 16), zero))
        pre_owned = np.full(k, zero)
        scratch = layer_scratch(wmax)
        # the layers see views that count no references (fmsim.kernels.borrowed), kept alive to the end
        z, znew, active, signs = borrowed(planes)
        pre = borrowed(pre_owned)
        words, lanes, slow, w, w32 = borrowed(scratch)
        for v in range(k):
            for c in range(widths[0]):
                z[v, c] = cast_like(xs[v, c], zero)
        shift = x_shift
        record_gram(xs, k, widths[0], shift, 0, out_log[i], out_gram[i])  # in float64, as fc_full records M_0
        for j in range(1, d + 1):
            layer = np.uint64(j)
            bias_j = scale_bias(bias_sds[j - 1], shift)
            n_active = gather_union(z, k, widths[j - 1], active)
            if law == RADEMACHER:
                for v in range(k):
                    rademacher_table(active[v], n_active, signs[v])
            for r in range(widths[j]):
                row = np.uint64(r)
                wz, rw = drawn_row(law, bits32, active[0], n_active, row, widths[j], layer, net, k0, k1, words, lanes,
                                   slow, w, w32)
                if law == RADEMACHER:
                    for v in range(k):
                        pre[v] = rademacher_dot(signs[v], n_active, rw)
                else:
                    for v in range(0, k - 1, 2):  # two vectors per pass over the row
                        pre[v], pre[v + 1] = drawn_dot_pair(wz, active[v], active[v + 1], n_active)
                    if k % 2:
                        pre[k - 1] = drawn_dot(wz, active[k - 1], n_active)
                bias = cast_like(bias_j * bias_draw(law, row, layer, net, k0, k1), zero) if bias_j > 0.0 else zero
                for v in range(k):
                    p = cast_like(scales[j - 1], zero) * pre[v]
                    if bias_j > 0.0 and (v == 0 or not tangents):
                        p += bias
                    pre[v] = p
                for v in range(k):
                    if tangents:
                        znew[v, r] = pre[v] if pre[0] > 0.0 else zero
                    else:
                        znew[v, r] = pre[v] if pre[v] > 0.0 else zero
            z, znew = znew, z
            ms0 = record_gram(z, k, widths[j], shift, j, out_log[i], out_gram[i])
            e = renorm_shift_within(ms0, renorm_low, renorm_high)
            if e != 0:
                for v in range(k):
                    divide_by_power_of_two(z[v], widths[j], e)
                shift += e
        for v in range(k):
            out_first[i, v] = length_and_log(np.float64(z[v, 0]) * np.float64(z[v, 0]), 2 * shift)[0]
        keep_alive(planes)
        keep_alive(pre_owned)
        keep_alive(scratch)
