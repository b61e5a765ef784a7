"""Compile the ``full`` kernels of a multi-run call in a second process while this one runs the others.

A new install compiles each kernel the first time a process needs it: about 20 s for a ``full`` kernel,
2 to 3 s for an exact sampler. A call that runs both kinds, such as ``fmsim demo`` (exact samplers for
the Gaussian and orthogonal schemes, the full kernel for the truncated normal), can overlap them on a
machine with a spare core: a second process first compiles the reduction that ends every chunk (while this
one compiles its exact samplers), then runs two nets of each ``full`` run (which compiles its kernel and
writes it to numba's on-disk cache); this process runs the exact runs meanwhile, then waits for the second
process and loads the kernel from the cache. Once the kernels are cached, the second process only
loads them (a second or two on the spare core). Results do not change: every number is a function of the
seed and its counter, not of the order in which runs are computed.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Sequence

from numba.core import config as numba_config

from ..config import RunConfig
from .compile_notice import announce

__all__ = ["CompileAhead", "compile_ahead", "needs_full_kernel"]

#: Nets the second process runs of each ``full`` run: enough to call the kernel once with the run's types.
PROBE_NETS = 2


def needs_full_kernel(config: RunConfig) -> bool:
    """Whether the run draws weights (``method`` ``full`` or ``exact_first``): the kernels that take tens of
    seconds to compile."""
    return config.method != "exact"


def _probe(config: RunConfig) -> RunConfig:
    """``config`` with :data:`PROBE_NETS` nets: the same kernel and argument types, little work."""
    return dataclasses.replace(config, n_nets=PROBE_NETS)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class CompileAhead:
    """A second process that runs :data:`PROBE_NETS` nets of each given run, to compile their kernels into
    numba's on-disk cache; :meth:`wait` before running them here."""

    def __init__(self, configs: Sequence[RunConfig]) -> None:
        probes = [_probe(c) for c in configs]
        self._process = subprocess.Popen([sys.executable, "-m", f"{__package__}.probe_runs"], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._process.stdin.write(pickle.dumps(probes))
            self._process.stdin.close()
        except OSError:  # it died at start: this process compiles as it would have
            self.stop()

    @property
    def returncode(self) -> int | None:
        """The second process's exit status (None while it runs)."""
        return self._process.poll()

    def wait(self) -> None:
        """Wait for the second process (saying so on the terminal if the wait is long). Whatever its outcome,
        the runs go on here: a kernel it did not cache is compiled here, as without it."""
        if self._process.poll() is None:
            started = time.perf_counter()
            try:
                self._process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                announce("fmsim: the full kernel is compiling in a second process; waiting for it ...")
                self._process.wait()
                announce(f"fmsim: ... it is done (waited {time.perf_counter() - started:.1f} s)")

    def stop(self) -> None:
        """End the second process if it still runs (an interrupted or failed call)."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def compile_ahead(configs: Sequence[RunConfig], backend: str) -> CompileAhead | None:
    """Start a :class:`CompileAhead` for the ``full`` runs of ``configs`` if there is something to overlap them
    with: CPU backend, at least two usable cores, and at least one exact run to compute meanwhile. Else None."""
    full = [c for c in configs if needs_full_kernel(c)]
    if backend != "cpu" or len(full) == len(configs) or not full or _usable_cores() < 2:
        return None
    if numba_config.DISABLE_JIT:  # nothing here would load what the second process compiles
        return None
    keys, distinct = set(), []
    for c in full:  # one probe per kernel and argument types
        key = (type(c.arch), c.method, c.precision, c.init.law, c.record, c.x is None, c.inputs is None,
               c.tangents is None)
        if key not in keys:
            keys.add(key)
            distinct.append(c)
    try:
        return CompileAhead(distinct)
    except OSError:
        return None

