"""Streaming moments of a chunk, block by block: the summaries' kernels (the CPU's here; the CUDA twins in
:mod:`fmsim.kernels.cuda` compile :func:`welford_range` as a device function).
"""

from __future__ import annotations

import math

from numba import njit

from .over_nets import run_spans

__all__ = ["MOMENT_COLUMNS", "welford_range", "block_moments_pass", "block_moments_span"]

#: Names of the moment table's columns: count, mean and M2 of ``M e^-pivot``, count, mean and M2 of ``log M``
#: over ``M > 0``, and the pivot (0 for fm2, and in files of fmsim < 0.9, which had the first six).
MOMENT_COLUMNS = ("count", "mean", "M2", "log_count", "log_mean", "log_M2", "pivot")


@njit(inline="always", cache=True)
def welford_range(v, r0, r1, from_logs, out):
    """Welford moments of ``v[r0:r1]`` into ``out`` (7 entries, :data:`MOMENT_COLUMNS`): count, mean and M2 of
    the values ``M e^-p``; count, mean and M2 of ``log M`` over ``M > 0``; the pivot ``p``.

    ``from_logs``: ``v`` holds ``log M`` (``-inf`` for ``M = 0``) and ``p`` is its largest entry (``-inf`` when
    every ``M`` is 0), so no value leaves float64's range (the lengths). Else ``v`` holds ``M`` and ``p = 0``
    (fm2). Shared by the CPU reduction and the CUDA one.
    """
    p = -math.inf if from_logs else 0.0
    if from_logs:
        for r in range(r0, r1):
            if v[r] > p:
                p = v[r]
    cnt = 0.0
    mean = 0.0
    m2 = 0.0
    lcnt = 0.0
    lmean = 0.0
    lm2 = 0.0
    for r in range(r0, r1):
        if from_logs:
            lx = v[r]
            x = math.exp(lx - p) if lx > -math.inf else 0.0
        else:
            x = v[r]
            lx = math.log(x) if x > 0.0 else -math.inf
        cnt += 1.0
        dv = x - mean
        mean += dv / cnt
        m2 += dv * (x - mean)
        if lx > -math.inf:
            lcnt += 1.0
            dl = lx - lmean
            lmean += dl / lcnt
            lm2 += dl * (lx - lmean)
    out[0] = cnt
    out[1] = mean
    out[2] = m2
    out[3] = lcnt
    out[4] = lmean
    out[5] = lm2
    out[6] = p


@njit(nogil=True, cache=True)
def block_moments_span(logs, stats, stats_from_logs, block, out, start, stop):
    """The moments of items ``start .. stop - 1`` of :func:`block_moments_pass` (item ``t``: block
    ``t // n_cols``, column ``t % n_cols``, ``n_cols = d + 1 + s``); the arrays as there."""
    n, n_layers = logs.shape
    n_cols = n_layers + stats.shape[0]
    for t in range(start, stop):
        b = t // n_cols
        col = t % n_cols
        r0, r1 = b * block, min(n, (b + 1) * block)
        if col < n_layers:
            welford_range(logs[:, col], r0, r1, True, out[b, col])
        else:
            welford_range(stats[col - n_layers], r0, r1, stats_from_logs[col - n_layers], out[b, col])


def block_moments_pass(logs, stats, stats_from_logs, block, out) -> None:
    """Welford moments of each block of rows, per column (:func:`welford_range`): ``log M_0..log M_d``, then
    each per-net statistic (of its logs where ``stats_from_logs``, else of its values). The blocks' columns are
    shared out among numba's threads (:func:`fmsim.kernels.over_nets.run_spans`).

    Parameters
    ----------
    logs : ndarray, shape (n, d + 1), float64
        ``log M_j``.
    stats : ndarray, shape (s, n), float64
        The per-net statistics (``fmsim.running.statistics.STATISTICS``).
    stats_from_logs : ndarray, shape (s,), bool
    block : int
        Rows per block.
    out : ndarray, shape (n_blocks, d + 1 + s, 7), float64
        Written.
    """
    items = out.shape[0] * (logs.shape[1] + stats.shape[0])
    run_spans(items, lambda start, stop: block_moments_span(logs, stats, stats_from_logs, block, out, start, stop))
