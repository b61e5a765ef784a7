"""``python -m fmsim.running.probe_runs``: compile the chunk reduction, then run chunk 0 of each pickled
:class:`~fmsim.config.RunConfig` read from stdin and discard the results. :mod:`fmsim.running.compile_ahead`
starts it so that numba compiles (and caches) the runs' kernels in this second process."""

from __future__ import annotations

import pickle
import sys

import numpy as np

from . import statistics
from .simulate import reduce_chunk
from .summary import block_moments


def compile_reduction() -> None:
    """Compile (or load from numba's cache) the reduction that ends every CPU chunk, exact or ``full``: each
    net's statistics (:func:`fmsim.running.statistics.compute`) and the block moments
    (:func:`fmsim.running.summary.block_moments`), here on a chunk of one net of depth 1 (the same argument
    types as any run's)."""
    lengths, logs = np.ones((1, 2)), np.zeros((1, 2))
    block_moments(logs, statistics.compute(lengths, logs))


def main() -> None:
    # First the reduction, before reading the probes (which a process started early sends later): the first
    # process builds its runs and compiles its exact samplers meanwhile, and finds the reduction cached after
    compile_reduction()
    for probe in pickle.load(sys.stdin.buffer):
        reduce_chunk(probe, 0, "cpu")


if __name__ == "__main__":
    main()
