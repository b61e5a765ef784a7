"""The kernels' shared epilogue: per-net statistics computed from a net's trace once its layers are done.

The CPU runs :func:`statistics_pass` over a chunk's traces; the CUDA backend runs the same
:func:`net_statistics` as a device function, one thread per net. Each statistic has a row of the
output, in the order of the registry ``fmsim.running.statistics.STATISTICS``, which holds what
the rest of fmsim needs to know of it (its name, how it is stored and summarized). Adding a statistic
touches the registry and :func:`net_statistics`, nothing else.
"""

from __future__ import annotations

import math

from numba import njit

from .over_nets import run_spans

__all__ = ["FM2", "N_STATISTICS", "net_fm2", "net_statistics", "statistics_pass", "statistics_span"]

#: Row of each statistic in the epilogue's output (the registry's order).
FM2 = 0
N_STATISTICS = 1


@njit(inline="always", cache=True)
def net_fm2(lengths_row, log_row):
    """Empirical variance of ``M_1..M_d`` of one net (population form, two-pass; ``M_0`` excluded).

    From ``lengths_row`` (shape (d + 1,)) while every ``M_j`` is held in float64; from the logs
    ``log_row``, scaled by the largest ``M_j``, when one underflowed to 0 (a live net); inf when one
    overflowed (the variance does too: never nan from ``inf - inf``).
    """
    d = lengths_row.shape[0] - 1
    scaled = False
    for j in range(1, d + 1):
        if lengths_row[j] == math.inf:
            return math.inf
        if lengths_row[j] == 0.0 and log_row[j] > -math.inf:
            scaled = True
    p = -math.inf
    if scaled:
        for j in range(1, d + 1):
            p = max(p, log_row[j])
    mean = 0.0  # (Python floats under the CUDA simulator: an overflow to inf is the answer, not a warning)
    for j in range(1, d + 1):
        mean += math.exp(log_row[j] - p) if scaled else float(lengths_row[j])
    mean /= d
    ss = 0.0
    for j in range(1, d + 1):
        dev = (math.exp(log_row[j] - p) if scaled else float(lengths_row[j])) - mean
        ss += dev * dev
    return math.exp(2.0 * p) * (ss / d) if scaled else ss / d


@njit(inline="always", cache=True)
def net_statistics(lengths_row, log_row, out, i):
    """Every per-net statistic of net ``i`` from its trace ``M_0..M_d`` (``lengths_row``) and ``log M_0..log M_d``
    (``log_row``), both of shape (d + 1,), into column ``i`` of ``out`` (shape (N_STATISTICS, nets))."""
    out[FM2, i] = net_fm2(lengths_row, log_row)


@njit(nogil=True, cache=True)
def statistics_span(lengths, logs, out, start, stop):
    """:func:`net_statistics` of nets ``start .. stop - 1`` of a chunk (the arrays as in :func:`statistics_pass`)."""
    for i in range(start, stop):
        net_statistics(lengths[i], logs[i], out, i)


def statistics_pass(lengths, logs, out) -> None:
    """:func:`net_statistics` of every net of a chunk, the nets shared out among numba's threads
    (:func:`fmsim.kernels.over_nets.run_spans`).

    Parameters
    ----------
    lengths, logs : ndarray, shape (m, d + 1), float64
        ``M_0..M_d`` and ``log M_0..log M_d`` of each net.
    out : ndarray, shape (N_STATISTICS, m), float64
        Written.
    """
    run_spans(lengths.shape[0], lambda start, stop: statistics_span(lengths, logs, out, start, stop))
