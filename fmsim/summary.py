"""Streaming per-layer summaries whose memory does not grow with the number of nets.

Nets are summarized in fixed blocks of :data:`~fmsim.config.SUMMARY_BLOCK`
consecutive net indices (Welford within a block), and blocks are merged in
net order (Chan et al.). Chunks are whole numbers of blocks, so the summary is
bit-identical for any chunk size and thread count.

``log M_j`` is summarized over the nets with ``M_j > 0`` only; ``n_zero``
counts the dead ones (a net whose layer is all zeros stays dead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .config import SUMMARY_BLOCK

__all__ = ["LayerSummary", "SummaryAccumulator", "block_moments", "welford_range"]

# Columns of the per-block moment table, for each layer.
_N, _MEAN, _M2, _NLOG, _LMEAN, _LM2 = range(6)


@njit(inline="always", cache=True)
def welford_range(v, r0, r1, out):
    """Welford moments of ``v[r0:r1]``: count, mean, M2 of the values and of the log of the positive ones.

    Shared by the CPU reduction and the CUDA one (``out`` has 6 entries).
    """
    cnt = 0.0
    mean = 0.0
    m2 = 0.0
    lcnt = 0.0
    lmean = 0.0
    lm2 = 0.0
    for r in range(r0, r1):
        x = v[r]
        cnt += 1.0
        dv = x - mean
        mean += dv / cnt
        m2 += dv * (x - mean)
        if x > 0.0:
            lx = math.log(x)
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


@njit(parallel=True, cache=True)
def _block_moments(values, block, out):
    """Welford moments of each block of rows, per column.

    Parameters
    ----------
    values : ndarray, shape (n, L), float64
    block : int
        Rows per block.
    out : ndarray, shape (n_blocks, L, 6), float64
        Written: count, mean, M2 of the values and of the log of the positive values.
    """
    n, n_cols = values.shape
    n_blocks = out.shape[0]
    for t in prange(n_blocks * n_cols):
        b = t // n_cols
        col = t % n_cols
        welford_range(values[:, col], b * block, min(n, (b + 1) * block), out[b, col])


def block_moments(lengths: np.ndarray, fm2: np.ndarray) -> np.ndarray:
    """Per-block moments of a chunk: shape (n_blocks, d + 2, 6), the last column being fm2."""
    values = np.concatenate([lengths, fm2[:, None]], axis=1)
    parts = np.empty((-(-values.shape[0] // SUMMARY_BLOCK), values.shape[1], 6))
    _block_moments(values, SUMMARY_BLOCK, parts)
    return parts


@njit(cache=True)
def _merge(acc, part):
    """Merge one block's moments ``part`` (L, 6) into ``acc`` (L, 6), in place."""
    for col in range(acc.shape[0]):
        for o in (0, 3):
            nb = part[col, o]
            if nb == 0.0:
                continue
            na = acc[col, o]
            n = na + nb
            delta = part[col, o + 1] - acc[col, o + 1]
            acc[col, o + 1] += delta * nb / n
            acc[col, o + 2] += part[col, o + 2] + delta * delta * na * nb / n
            acc[col, o] = n


@dataclass(frozen=True)
class LayerSummary:
    """Per-layer summary of ``M_0..M_d`` across nets, plus the across-layer variance.

    Attributes
    ----------
    count : ndarray, shape (d + 1,)
        Nets seen.
    mean, var : ndarray, shape (d + 1,)
        Mean and (unbiased) variance of ``M_j``.
    n_zero : ndarray, shape (d + 1,)
        Nets with ``M_j == 0``.
    log_mean, log_var : ndarray, shape (d + 1,)
        Mean and variance of ``log M_j`` over nets with ``M_j > 0``.
    fm2_mean, fm2_var : float
        Mean and variance across nets of the empirical variance of ``M_1..M_d``.
    """

    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    n_zero: np.ndarray
    log_mean: np.ndarray
    log_var: np.ndarray
    fm2_mean: float
    fm2_var: float

    @property
    def sem(self) -> np.ndarray:
        """Standard error of ``mean``, from the sample variance."""
        return np.sqrt(self.var / self.count)

    @classmethod
    def from_moments(cls, moments: np.ndarray) -> LayerSummary:
        """Build from the merged moment table, shape (d + 2, 6); last row is fm2."""
        m = moments
        with np.errstate(invalid="ignore", divide="ignore"):
            var = m[:, _M2] / (m[:, _N] - 1)
            lvar = m[:, _LM2] / (m[:, _NLOG] - 1)
            lmean = np.where(m[:, _NLOG] > 0, m[:, _LMEAN], np.nan)
        return cls(
            count=m[:-1, _N].copy(), mean=m[:-1, _MEAN].copy(), var=var[:-1],
            n_zero=(m[:-1, _N] - m[:-1, _NLOG]).astype(np.int64),
            log_mean=lmean[:-1], log_var=lvar[:-1],
            fm2_mean=float(m[-1, _MEAN]), fm2_var=float(var[-1]),
        )


class SummaryAccumulator:
    """Accumulate chunks of ``(lengths, fm2)`` in net order.

    Parameters
    ----------
    depth : int
        Net depth ``d``.
    """

    def __init__(self, depth: int) -> None:
        self.moments = np.zeros((depth + 2, 6))

    def add(self, lengths: np.ndarray, fm2: np.ndarray) -> None:
        """Add a chunk: ``lengths`` (n, d + 1) and ``fm2`` (n,), n a multiple of the block unless last."""
        self.add_moments(block_moments(lengths, fm2))

    def add_moments(self, parts: np.ndarray) -> None:
        """Add a chunk already reduced to block moments, shape (n_blocks, d + 2, 6), in net order."""
        for b in range(parts.shape[0]):
            _merge(self.moments, parts[b])

    def result(self) -> LayerSummary:
        return LayerSummary.from_moments(self.moments)
