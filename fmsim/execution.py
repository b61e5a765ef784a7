"""Where the work runs: in this process (the default) or on a Dask distributed cluster.

fmsim's units of work are pure functions of their arguments: a chunk of a
run (:func:`fmsim.simulate.reduce_chunk`, a function of the configuration
and the chunk index) and a training run. :func:`ordered_map` runs them one
after another, or on a ``dask.distributed.Client`` with a bounded window of
tasks in flight, and hands the results back in order, so only the calling
process writes files and the files are the same for any number of workers.
Dask reschedules the tasks of a worker that dies; fmsim adds no scheduler.

:func:`connect` makes the client: ``workers=N`` starts a LocalCluster of N
single-threaded processes; ``scheduler="tcp://host:8786"`` joins an existing
cluster (for example one started by dask-jobqueue's ``SLURMCluster``).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["ClusterError", "connect", "cluster", "ordered_map", "unordered_map", "default_window",
           "CONNECT_TIMEOUT"]

CONNECT_TIMEOUT = 10.0
"""Seconds to reach a scheduler and hear back from its workers before giving up."""


class ClusterError(RuntimeError):
    """The Dask cluster cannot be used (unreachable, no workers, workers without fmsim)."""


def _worker_fmsim_version() -> str:
    import fmsim

    return fmsim.__version__


def _check_workers(client: Any, timeout: float) -> None:
    """Every worker must import fmsim (of this version); fail fast and clearly otherwise."""
    from . import __version__

    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception as e:  # TimeoutError, or the scheduler went away
        raise ClusterError(f"the Dask cluster has no workers after {timeout:g} s: {e}") from None
    try:
        versions = client.run(_worker_fmsim_version, on_error="return")
    except Exception as e:
        raise ClusterError(f"the Dask workers cannot run fmsim: {type(e).__name__}: {e}") from None
    bad = {w: v for w, v in versions.items() if not isinstance(v, str)}
    if bad:
        worker, err = next(iter(bad.items()))
        raise ClusterError(f"{len(bad)} of {len(versions)} Dask workers cannot import fmsim ({worker}: "
                           f"{type(err).__name__}: {err}); install fmsim on the workers "
                           "(pip install fmsim, or the same checkout)")
    other = {v for v in versions.values() if v != __version__}
    if other:
        raise ClusterError(f"the Dask workers run fmsim {sorted(other)}, this process {__version__}")


def connect(workers: int | None = None, scheduler: str | None = None, timeout: float = CONNECT_TIMEOUT) -> Any:
    """A ``dask.distributed.Client``: a new LocalCluster of ``workers`` processes, or ``scheduler``'s cluster.

    Parameters
    ----------
    workers : int, optional
        Start a LocalCluster of this many single-threaded worker processes.
    scheduler : str, optional
        Address of a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    timeout : float
        Seconds to reach the scheduler and its workers.

    Returns
    -------
    distributed.Client
        Close it (and its LocalCluster) with ``client.close()``; or use :func:`cluster`.

    Raises
    ------
    ClusterError
        Unreachable scheduler, no workers within ``timeout``, or workers that
        cannot import fmsim. Raised before any work or file is started.
    ValueError
        Neither or both of ``workers`` and ``scheduler``, or ``workers < 1``.
    """
    if (workers is None) == (scheduler is None):
        raise ValueError("give exactly one of workers (a local cluster) and scheduler (an address)")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError("Dask distributed is not installed: pip install -e '.[dask]'") from None
    if workers is not None:
        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        lc = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=50)
        client = Client(lc)
    else:
        try:
            client = Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError) as e:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler!r} within {timeout:g} s: {e}") \
                from None
    try:
        _check_workers(client, timeout)
    except BaseException:
        close(client)
        raise
    return client


def close(client: Any) -> None:
    """Close a client from :func:`connect`, and its LocalCluster if it started one."""
    cluster_ = getattr(client, "cluster", None)
    client.close()
    if cluster_ is not None:
        cluster_.close()


@contextmanager
def cluster(workers: int | None = None, scheduler: str | None = None, announce: Callable[[str], None] | None = None
            ) -> Iterator[Any]:
    """``with cluster(workers=2) as client:`` -- ``None`` when neither is given (run in this process)."""
    if workers is None and scheduler is None:
        yield None
        return
    client = connect(workers, scheduler)
    try:
        if announce is not None:
            link = getattr(client, "dashboard_link", None)
            n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            announce(f"Dask: {n} workers at {client.scheduler.address}" + (f"; dashboard {link}" if link else ""))
        yield client
    finally:
        close(client)


def default_window(client: Any) -> int:
    """Tasks in flight: twice the cluster's worker threads (at least 2)."""
    threads = sum(w.get("nthreads", 1) for w in client.scheduler_info(n_workers=-1).get("workers", {}).values())
    return max(2, 2 * threads)


def ordered_map(fn: Callable[..., Any], items: Iterable[tuple], client: Any = None, window: int | None = None
                ) -> Iterator[Any]:
    """``fn(*item)`` for every item, yielded in the order of ``items``.

    Without a client, one after another in this process. With one, at most
    ``window`` tasks are submitted ahead of the one being waited for, so
    memory stays bounded however long ``items`` is.
    """
    if client is None:
        for item in items:
            yield fn(*item)
        return
    window = window or default_window(client)
    pending: collections.deque = collections.deque()
    it = iter(items)
    for item in it:
        pending.append(client.submit(fn, *item, pure=True))
        if len(pending) >= window:
            break
    while pending:
        future = pending.popleft()
        result = future.result()
        future.release()
        for item in it:
            pending.append(client.submit(fn, *item, pure=True))
            break
        yield result


def unordered_map(fn: Callable[..., Any], items: Iterable[tuple], client: Any = None, window: int | None = None
                  ) -> Iterator[tuple[tuple, Any]]:
    """``(item, fn(*item))`` as each finishes (in order without a client); at most ``window`` in flight."""
    if client is None:
        for item in items:
            yield item, fn(*item)
        return
    from distributed import as_completed

    window = window or default_window(client)
    it = iter(items)
    futures = {}
    for item in it:
        futures[client.submit(fn, *item, pure=True)] = item
        if len(futures) >= window:
            break
    done = as_completed(list(futures))
    for future in done:
        item = futures.pop(future)
        result = future.result()
        future.release()
        for nxt in it:
            f = client.submit(fn, *nxt, pure=True)
            futures[f] = nxt
            done.add(f)
            break
        yield item, result
