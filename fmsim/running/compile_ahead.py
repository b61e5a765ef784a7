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

import contextlib
import dataclasses
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar

from numba.core import config as numba_config

from ..config import Architecture, Init, RunConfig, resolve_method
from .compile_notice import announce

__all__ = ["CompileAhead", "compile_ahead", "compile_ahead_early", "mixes_exact_and_full", "needs_full_kernel"]

#: Nets the second process runs of each ``full`` run: enough to call the kernel once with the run's types.
PROBE_NETS = 2


def needs_full_kernel(config: RunConfig) -> bool:
    """Whether the run draws weights (``method`` ``full`` or ``exact_first``): the kernels that take tens of
    seconds to compile."""
    return config.method != "exact"


def mixes_exact_and_full(inits: Iterable[Init], method: str = "auto", arch: Architecture | None = None,
                         precision: str = "float64") -> bool:
    """Whether runs of ``inits`` under ``method`` on ``arch`` will mix exact samplers and ``full`` kernels, told
    before their configurations are built (:func:`fmsim.config.resolve_method`, as
    :func:`fmsim.running.simulate.make_config` resolves it; float32 runs are all ``full``): the calls that
    :func:`compile_ahead_early` helps.

    Parameters
    ----------
    inits : iterable of Init
        One per scheme of the runs.
    method : {"auto", "full", "exact", "exact_first"}
        The runs' method, as given to ``make_config``.
    arch : Architecture, optional
        Their architecture (a conv net is never exact); fully connected where not given.
    precision : {"float64", "float32"}
    """
    if precision == "float32":
        return False
    exact = {resolve_method(method, init, arch) == "exact" for init in inits}
    return len(exact) == 2


def _kernel_key(c: RunConfig) -> tuple:
    """What chooses a run's kernel and its argument types: runs with the same key share a compile."""
    return (type(c.arch), c.method, c.precision, c.init.law, c.record, c.x is None, c.inputs is None,
            c.tangents is None)


def _probe(config: RunConfig) -> RunConfig:
    """``config`` with :data:`PROBE_NETS` nets: the same kernel and argument types, little work."""
    return dataclasses.replace(config, n_nets=PROBE_NETS)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class CompileAhead:
    """A second process that compiles the chunk reduction, then runs :data:`PROBE_NETS` nets of each given run,
    to compile their kernels into numba's on-disk cache; :meth:`wait` before running them here.

    Without ``configs`` it starts at once and compiles the reduction while :meth:`send` is awaited (see
    :func:`compile_ahead_early`)."""

    def __init__(self, configs: Sequence[RunConfig] | None = None) -> None:
        self._process = subprocess.Popen([sys.executable, "-m", f"{__package__}.probe_runs"], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if configs is not None:
            self.send(configs)

    def send(self, configs: Sequence[RunConfig]) -> None:
        """Give the second process its runs (once): it probes them after the reduction, then exits."""
        try:
            self._process.stdin.write(pickle.dumps([_probe(c) for c in configs]))
            self._process.stdin.close()
        except OSError:  # it died: this process compiles as it would have
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
        if not self._process.stdin.closed:  # (a process started early and never sent its probes)
            with contextlib.suppress(OSError):  # (a pipe to a process that died: nothing left to flush to)
                self._process.stdin.close()


def _can_overlap(backend: str) -> bool:
    """Whether a second process could compile beside this one: the CPU backend, at least two usable cores, and
    the JIT on (with it off, nothing here would load what the second process compiles)."""
    return backend == "cpu" and _usable_cores() >= 2 and not numba_config.DISABLE_JIT


#: The second process that :func:`compile_ahead_early` started, until :func:`compile_ahead` takes it (a list of
#: at most one: taking it empties the list the block's end reads).
_started_early: ContextVar[list[CompileAhead] | None] = ContextVar("fmsim_compile_ahead_early", default=None)


@contextlib.contextmanager
def compile_ahead_early(backend: str) -> Iterator[None]:
    """Start the second process now, before the runs exist: a multi-run call that will mix exact and ``full``
    runs (``fmsim demo``) builds their configurations inside the block (on a new install, about 2 s of
    compiling the seeded input's draw and tabulating first-layer laws), while the second process compiles the
    chunk reduction. The first :func:`compile_ahead` inside the block gives it its probes; if none does, or
    none wants it, it is ended with the block. Nothing starts where no second process could overlap."""
    holder = []
    if _can_overlap(backend):
        try:
            holder.append(CompileAhead())
        except OSError:  # no second process: compile_ahead starts one later, or this process compiles
            pass
    token = _started_early.set(holder)
    try:
        yield
    finally:
        _started_early.reset(token)
        for ahead in holder:  # never taken
            ahead.stop()


def _take_early() -> CompileAhead | None:
    holder = _started_early.get()
    return holder.pop() if holder else None


def compile_ahead(configs: Sequence[RunConfig], backend: str) -> CompileAhead | None:
    """Start a :class:`CompileAhead` for the ``full`` runs of ``configs`` if there is something to overlap them
    with: CPU backend, at least two usable cores, and at least one exact run to compute meanwhile. Else None.
    It is also given the exact runs whose sampler is not the first exact run's: it compiles those first, and
    this process, which compiles the first one itself, then loads them from numba's cache.
    Inside :func:`compile_ahead_early`, the process it started gets the probes (or is ended, for None)."""
    early = _take_early()
    full = [c for c in configs if needs_full_kernel(c)]
    if len(full) == len(configs) or not full or not _can_overlap(backend):
        if early is not None:
            early.stop()
        return None
    exact = [c for c in configs if not needs_full_kernel(c)]
    # This process compiles the first exact run's sampler itself (while the second process compiles the
    # reduction); the second process compiles the other exact samplers before the full kernels, so that this
    # process finds them in numba's cache when it gets to their runs (fmsim demo: the orthogonal sampler).
    keys, distinct = {_kernel_key(exact[0])}, []
    for c in exact[1:] + full:  # one probe per kernel and argument types
        key = _kernel_key(c)
        if key not in keys:
            keys.add(key)
            distinct.append(c)
    if early is not None:
        early.send(distinct)
        return early
    try:
        return CompileAhead(distinct)
    except OSError:
        return None
