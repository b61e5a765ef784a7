"""Streaming per-layer summaries whose memory does not grow with the number of nets.

Nets are summarized in fixed blocks of :data:`~fmsim.config.SUMMARY_BLOCK`
consecutive net indices (Welford within a block), and blocks are merged in
net order (Chan et al.). Chunks are whole numbers of blocks, so the summary is
bit-identical for any chunk size and thread count.

The summaries are computed from ``log M_j``, so they hold at any depth:

- ``E[M_j]`` and ``Var[M_j]`` by Welford on ``M_j e^-p``, ``p`` the largest
  ``log M_j`` of the block (a log-sum-exp pivot), and blocks merged after
  rescaling to the larger pivot: no value leaves float64's range, and
  ``log E[M_j]`` is ``p + log(mean)``;
- ``log M_j`` by Welford over the nets with ``M_j > 0``; ``n_zero`` counts the
  dead ones (a net whose layer is all zeros stays dead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..config import SUMMARY_BLOCK
from ..kernels.moments import MOMENT_COLUMNS, block_moments_pass, welford_range
from . import rounding, statistics

__all__ = ["LayerSummary", "StatisticSummary", "SummaryAccumulator", "block_moments", "welford_range", "MOMENT_COLUMNS"]

# Columns of the per-block moment table, for each layer.
_N, _MEAN, _M2, _NLOG, _LMEAN, _LM2, _PIVOT = range(len(MOMENT_COLUMNS))


def block_moments(log_lengths: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Per-block moments of a chunk from its ``log M_j`` (n, d + 1) and per-net statistics (s, n): shape
    (n_blocks, d + 1 + s, 7), the statistics' rows last."""
    logs = np.ascontiguousarray(log_lengths)
    parts = np.empty((-(-logs.shape[0] // SUMMARY_BLOCK), logs.shape[1] + stats.shape[0], 7))
    block_moments_pass(logs, np.ascontiguousarray(stats), statistics.from_logs(), SUMMARY_BLOCK, parts)
    return parts


@njit(cache=True)
def _merge(acc, part):
    """Merge one block's moments ``part`` (L, 7) into ``acc`` (L, 7), in place.

    The values' moments are first brought to the larger pivot (a factor
    ``e^(p_old - p) <= 1`` on the mean, its square on M2); with equal pivots
    (fm2, or one block) the arithmetic is plain Chan et al.
    """
    for col in range(acc.shape[0]):
        if part[col, 0] == 0.0:
            continue
        if acc[col, 0] == 0.0:
            acc[col, _PIVOT] = part[col, _PIVOT]
        pa, pb = acc[col, _PIVOT], part[col, _PIVOT]
        p = max(pa, pb)
        if pa != p:
            f = math.exp(pa - p)
            acc[col, _MEAN] *= f
            acc[col, _M2] *= f * f
        fb = math.exp(pb - p) if pb != p else 1.0  # (a factor 1 leaves every bit as it is)
        acc[col, _PIVOT] = p
        for o in (_N, _NLOG):  # the values' moments, then the logs' (which need no pivot)
            nb = part[col, o]
            if nb == 0.0:
                continue
            f = fb if o == _N else 1.0
            na = acc[col, o]
            n = na + nb
            delta = part[col, o + 1] * f - acc[col, o + 1]
            acc[col, o + 1] += delta * nb / n
            acc[col, o + 2] += part[col, o + 2] * (f * f) + delta * delta * na * nb / n
            acc[col, o] = n


@dataclass(frozen=True)
class StatisticSummary:
    """Mean and (unbiased) variance across nets of one per-net statistic (:mod:`fmsim.running.statistics`)."""

    mean: float
    var: float


@dataclass(frozen=True)
class LayerSummary:
    """Per-layer summary of ``M_0..M_d`` across nets, plus each per-net statistic's (such as fm2).

    Attributes
    ----------
    count : ndarray, shape (d + 1,)
        Nets seen.
    mean, var : ndarray, shape (d + 1,)
        Mean and (unbiased) variance of ``M_j``, in float64: 0 or inf where they lie
        beyond its range (``log_of_mean`` and ``log_of_var`` hold them at any depth).
    n_zero : ndarray, shape (d + 1,)
        Nets with ``M_j == 0``: dead nets.
    log_mean, log_var : ndarray, shape (d + 1,)
        Mean and variance of ``log M_j`` over nets with ``M_j > 0``.
    statistics : dict of str to StatisticSummary
        Mean and variance across nets of each per-net statistic, by name (``fmsim.running.statistics.STATISTICS``).
    log_of_mean, log_of_var : ndarray, shape (d + 1,)
        ``log`` of ``mean`` and of ``var`` (``-inf`` for 0), computed without leaving float64's range.
    """

    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    n_zero: np.ndarray
    log_mean: np.ndarray
    log_var: np.ndarray
    statistics: dict[str, StatisticSummary]
    log_of_mean: np.ndarray | None = None
    log_of_var: np.ndarray | None = None

    @property
    def fm2_mean(self) -> float:
        """Mean across nets of fm2, the empirical variance of ``M_1..M_d``."""
        return self.statistics["fm2"].mean

    @property
    def fm2_var(self) -> float:
        """Variance across nets of fm2."""
        return self.statistics["fm2"].var

    @property
    def sem(self) -> np.ndarray:
        """Standard error of ``mean``, from the sample variance."""
        return np.sqrt(self.var / self.count)

    @property
    def log_of_sem(self) -> np.ndarray:
        """``log`` of :attr:`sem`, at any depth."""
        return 0.5 * (self.log_of_var - np.log(self.count))

    @classmethod
    def from_moments(cls, moments: np.ndarray) -> LayerSummary:
        """Build from the merged moment table, shape (d + 1 + s, 7) (or (d + 2, 6) from fmsim < 0.9: pivot 0);
        the last ``s`` rows are the per-net statistics, in registry order."""
        m = moments
        if m.shape[1] == 6:
            m = np.concatenate([m, np.zeros((m.shape[0], 1))], axis=1)
        pivot = m[:, _PIVOT]
        # exp and log correctly rounded (fmsim.running.rounding), not NumPy's, whose last bit depends on the CPU
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            raw_var = m[:, _M2] / (m[:, _N] - 1)
            log_of_mean = np.full(m.shape[0], -np.inf)
            positive = m[:, _MEAN] > 0
            log_of_mean[positive] = pivot[positive] + rounding.log(m[positive, _MEAN])
            log_of_var = np.where(m[:, _N] > 1, -np.inf, np.nan)
            positive = (m[:, _N] > 1) & (raw_var > 0)
            log_of_var[positive] = 2 * pivot[positive] + rounding.log(raw_var[positive])
            mean, var = m[:, _MEAN].copy(), raw_var.copy()
            shifted = pivot != 0
            mean[shifted] = rounding.exp(log_of_mean[shifted])
            var[shifted] = rounding.exp(log_of_var[shifted])
            lvar = m[:, _LM2] / (m[:, _NLOG] - 1)
            lmean = np.where(m[:, _NLOG] > 0, m[:, _LMEAN], np.nan)
        d1 = m.shape[0] - len(statistics.STATISTICS)  # rows of M_0..M_d
        return cls(
            count=m[:d1, _N].copy(), mean=mean[:d1], var=var[:d1],
            n_zero=(m[:d1, _N] - m[:d1, _NLOG]).astype(np.int64),
            log_mean=lmean[:d1], log_var=lvar[:d1],
            statistics={s.name: StatisticSummary(float(mean[d1 + k]), float(var[d1 + k]))
                        for k, s in enumerate(statistics.STATISTICS)},
            log_of_mean=log_of_mean[:d1], log_of_var=log_of_var[:d1],
        )


class SummaryAccumulator:
    """Accumulate chunks of ``(log lengths, statistics)`` in net order.

    Parameters
    ----------
    depth : int
        Net depth ``d``.
    """

    def __init__(self, depth: int) -> None:
        self.moments = np.zeros((depth + 1 + len(statistics.STATISTICS), 7))

    def add(self, log_lengths: np.ndarray, stats: np.ndarray) -> None:
        """Add a chunk: ``log M_j`` (n, d + 1) and the statistics (s, n), n a multiple of the block unless last."""
        self.add_moments(block_moments(log_lengths, stats))

    def add_moments(self, parts: np.ndarray) -> None:
        """Add a chunk already reduced to block moments, shape (n_blocks, d + 1 + s, 7), in net order."""
        for b in range(parts.shape[0]):
            _merge(self.moments, parts[b])

    def result(self) -> LayerSummary:
        return LayerSummary.from_moments(self.moments)
