"""Run a kernel over a chunk's nets on numba's thread count, from a pool of threads.

A kernel here computes nets ``net0 .. net0 + m - 1`` one after the other, each into its row of the outputs, in
compiled code that releases the GIL (``njit(nogil=True)``). :func:`run_over_nets` splits the ``m`` nets into
contiguous spans and calls the kernel on each span from a pool of :func:`numba.get_num_threads` threads, the
span's first net as ``net0`` and its rows of the outputs as the outputs. Every number of a net is a function of
its counter (seed, net, layer, row, column), so the results are bitwise those of one call over all the nets, for
any thread count and any split.

Why not numba's ``prange``: its parfor passes, and the gufunc they build and compile for the loop's body, took a
third of a kernel's first compile. The float64 truncated-normal ``full`` kernel of fully connected nets compiled in
7.1 s as a serial function against 9.3 s with ``prange`` (its callees compiled already; Intel Xeon), and runs as
fast over two threads (rows at widths 20 to 50 within the machine's noise; the documentation's *Performance*).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

__all__ = ["SPANS_PER_THREAD", "net_spans", "over_nets", "run_over_nets", "run_spans"]

#: Spans per thread: nets differ in cost (a dead net's rows have no inputs), so each thread takes several
#: spans in turn, not one share fixed in advance.
SPANS_PER_THREAD = 4


def net_spans(m: int, threads: int) -> list[tuple[int, int]]:
    """Contiguous spans ``[start, stop)`` that cover nets ``0 .. m - 1`` in order: ``SPANS_PER_THREAD`` per thread
    (fewer where there are fewer nets), of sizes that differ by at most one."""
    count = max(1, min(m, threads * SPANS_PER_THREAD))
    edges = [m * k // count for k in range(count + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


@functools.cache
def _pool(threads: int, pid: int) -> ThreadPoolExecutor:
    """The pool of ``threads`` threads of process ``pid`` (a forked child makes its own: threads do not survive
    a fork)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="fmsim-nets")


def run_spans(count: int, call: Callable[[int, int], None]) -> None:
    """``call(start, stop)`` for each span of :func:`net_spans` over ``count`` items, shared out among
    :func:`numba.get_num_threads` threads; on the calling thread, as one call over all the items, when there is
    one thread or fewer than two items (``count == 0``: one call with ``(0, 0)``).

    For kernels whose items are not a chunk's nets in the rows of their outputs (the per-net statistics, laid out
    by statistic, and the summaries' blocks): ``call`` runs the kernel on items ``start .. stop - 1``.
    """
    threads = numba.get_num_threads()
    if threads == 1 or count < 2:
        call(0, count)
        return
    pool = _pool(threads, os.getpid())
    for future in [pool.submit(call, start, stop) for start, stop in net_spans(count, threads)]:
        future.result()


def run_over_nets(kernel: Callable[..., None], args: Sequence, net0_at: int, outputs: int = 2) -> None:
    """``kernel(*args)``, its nets shared out among :func:`numba.get_num_threads` threads.

    Parameters
    ----------
    kernel : numba dispatcher
        Computes the nets of its outputs' rows in order, from net ``args[net0_at]`` on; compiled with
        ``nogil=True``, so that the threads run at once.
    args : sequence
        The kernel's arguments. Its last ``outputs`` are arrays of shape ``(m, ...)``: row ``i`` belongs to net
        ``args[net0_at] + i``.
    net0_at : int
        Position of the first net's index in ``args``.
    outputs : int
        How many of the last arguments hold the nets' rows.
    """
    args = list(args)
    net0 = args[net0_at]
    if isinstance(net0, bool) or not isinstance(net0, (int, np.integer)):
        raise TypeError(f"net0_at={net0_at}: the first net's index must be an integer, got {type(net0).__name__}")
    head, outs = args[:-outputs], args[-outputs:]

    def span(start: int, stop: int) -> None:
        call = list(head)
        call[net0_at] = type(net0)(int(net0) + start)  # its type kept, and the views' types: no other specialization
        kernel(*call, *(out[start:stop] for out in outs))

    run_spans(args[-1].shape[0], span)


def over_nets(net0_at: int, outputs: int = 2) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator of a kernel that loops over its nets: compiles it with ``njit(nogil=True, cache=True)`` and
    returns the function that runs it by :func:`run_over_nets` (the compiled kernel is its ``kernel``
    attribute; called directly, it runs every net on the calling thread).

    Parameters
    ----------
    net0_at, outputs : int
        As in :func:`run_over_nets`.
    """
    def decorate(body: Callable[..., None]) -> Callable[..., None]:
        kernel = njit(nogil=True, cache=True)(body)

        @functools.wraps(body)
        def run(*args) -> None:
            run_over_nets(kernel, args, net0_at, outputs)

        run.kernel = kernel
        return run

    return decorate
