"""``python -m fmsim.running.probe_runs``: run chunk 0 of each pickled :class:`~fmsim.config.RunConfig` read from
stdin and discard the results. :mod:`fmsim.running.compile_ahead` starts it so that numba compiles (and caches)
the runs' kernels in this second process."""

from __future__ import annotations

import pickle
import sys

from .simulate import reduce_chunk


def main() -> None:
    for probe in pickle.load(sys.stdin.buffer):
        reduce_chunk(probe, 0, "cpu")


if __name__ == "__main__":
    main()
