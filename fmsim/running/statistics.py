"""Per-net statistics: one registry, read by everything that computes, stores, summarizes or shows them.

A :class:`NetStatistic` declares its name and dtype, how it is computed from a net's trace (its row
of the kernels' shared epilogue, :func:`fmsim.kernels.epilogue.net_statistics`, which both backends
run after a chunk's layers), how it is stored (an HDF5 dataset of its name over ``net``, with its
long name) and how it is summarized (streaming moments of its values, or of their logs). The kernels,
:class:`~fmsim.running.simulate.Chunk`, :class:`~fmsim.SimulationResult`, the file layout, the
summary's moment table and the xarray reader all read :data:`STATISTICS` and name no statistic.

Adding a statistic: compute it in :func:`fmsim.kernels.epilogue.net_statistics` (a new row) and add
its entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import epilogue

__all__ = ["NetStatistic", "STATISTICS", "FM2", "names", "from_logs", "compute"]


@dataclass(frozen=True)
class NetStatistic:
    """One statistic of each net of a run.

    Attributes
    ----------
    name : str
        Its name: the dataset of the file, the key of ``SimulationResult.statistics``, the summary's label.
    row : int
        Its row in the output of :func:`fmsim.kernels.epilogue.net_statistics`.
    long_name : str
        What it is, stored as the dataset's ``long_name``.
    summarized_from_logs : bool
        Summarize the moments of ``log`` of the values with a pivot (for values beyond float64's range), as the
        lengths are; otherwise the moments of the values themselves.
    dtype : numpy dtype
        Its stored dtype.
    """

    name: str
    row: int
    long_name: str
    summarized_from_logs: bool = False
    dtype: np.dtype = np.dtype(np.float64)


FM2 = NetStatistic("fm2", epilogue.FM2, "variance of M_1..M_d across layers, per net (failure mode 2)")

#: Every per-net statistic, in the order of the epilogue's rows (and of the summary's rows after ``M_0..M_d``).
STATISTICS: tuple[NetStatistic, ...] = (FM2,)

assert [s.row for s in STATISTICS] == list(range(epilogue.N_STATISTICS)), "registry and epilogue rows disagree"


def names() -> tuple[str, ...]:
    """The statistics' names, in registry order."""
    return tuple(s.name for s in STATISTICS)


def from_logs() -> np.ndarray:
    """``summarized_from_logs`` of each statistic, shape (n_statistics,), bool: the summary kernels' input."""
    return np.array([s.summarized_from_logs for s in STATISTICS], dtype=np.bool_)


def compute(lengths: np.ndarray, log_lengths: np.ndarray) -> np.ndarray:
    """Every statistic of every net of a chunk on the CPU: shape (n_statistics, m), from traces of shape (m, d + 1)."""
    out = np.empty((len(STATISTICS), lengths.shape[0]))
    epilogue.statistics_pass(lengths, log_lengths, out)
    return out
