"""Where the work runs: in this process (the default) or on a Dask distributed cluster.

fmsim's units of work are pure functions of their arguments: a chunk of a
run (:func:`fmsim.running.simulate.reduce_chunk`, a function of the configuration
and the chunk index) and a training run. :func:`ordered_map` runs them one
after another, or on a ``dask.distributed.Client`` with a bounded window of
tasks in flight, and hands the results back in order, so only the calling
process writes files and the files are the same for any number of workers.
Dask reschedules the tasks of a worker that dies; fmsim adds no scheduler.

:func:`connect` makes the client: ``workers=N`` starts a LocalCluster of N
single-threaded processes; ``scheduler="tls://host:8786"`` joins an existing
cluster (for example one started by dask-jobqueue's ``SLURMCluster``).

Security. Whoever can reach a Dask scheduler can run code as its user (Dask
sends pickled functions). So a LocalCluster started here binds every socket,
its dashboard included, to 127.0.0.1 (``dashboard=`` exposes the dashboard on
purpose), and a remote scheduler is joined over TLS with
``security=distributed.security.Security(...)`` or Dask's own
``distributed.comm.tls`` configuration. A plain ``tcp://`` scheduler that is
not on loopback still works (many sites run Dask inside a trusted network),
with one :class:`InsecureClusterWarning`.
"""

from __future__ import annotations

import collections
import ipaddress
import socket
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["ClusterError", "InsecureClusterWarning", "connect", "cluster", "tls_security", "is_loopback",
           "ordered_map", "unordered_map", "default_window", "CONNECT_TIMEOUT", "LOCAL_HOST"]

CONNECT_TIMEOUT = 10.0
"""Seconds to reach a scheduler and hear back from its workers before giving up."""


LOCAL_HOST = "127.0.0.1"
"""The address every socket of a LocalCluster started by fmsim listens on (dashboard included)."""


class ClusterError(RuntimeError):
    """The Dask cluster cannot be used (unreachable, no workers, workers without fmsim, TLS refused)."""


class InsecureClusterWarning(UserWarning):
    """A scheduler joined over plain ``tcp://`` on an address that is not loopback."""


def tls_security(ca_file: str, cert: str, key: str | None = None) -> Any:
    """A ``distributed.security.Security`` for a TLS client (and the workers of a local cluster).

    Parameters
    ----------
    ca_file : str
        PEM file of the certificate authority that signed the scheduler's and workers' certificates.
    cert : str
        PEM file of this client's certificate (it may hold the private key too).
    key : str, optional
        PEM file of the private key, where ``cert`` does not hold it.

    Raises
    ------
    ValueError
        A file that does not exist, cannot be read or is not a PEM file of its kind, or a key that does not
        match its certificate: one line naming the option and the file. Checked here, before any cluster
        or connection.
    """
    for option, path in (("--tls-ca-file", ca_file), ("--tls-cert", cert), ("--tls-key", key)):
        if path is None:
            continue
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as e:
            raise ValueError(f"{option} {path}: cannot be read ({e.strerror or e})") from None
    _check_pem(ca_file, cert, key)
    from distributed.security import Security

    return Security(tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key, tls_worker_cert=cert,
                    tls_worker_key=key, tls_scheduler_cert=cert, tls_scheduler_key=key, require_encryption=True)


def _check_pem(ca_file: str, cert: str, key: str | None) -> None:
    """Load the certificate authority, the certificate and its key as TLS will, so that a file that is not PEM,
    or a key that does not match its certificate, is named now (not as a failed handshake, or a traceback
    from a starting cluster)."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=ca_file)
    except (ssl.SSLError, ValueError) as e:
        raise ValueError(f"--tls-ca-file {ca_file}: not a PEM certificate authority ({_ssl_reason(e)})") from None
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as e:
        if "KEY_VALUES_MISMATCH" in str(e):
            raise ValueError(f"--tls-key {key or cert}: this private key does not match the certificate in "
                             f"--tls-cert {cert}") from None
        what = f"--tls-cert {cert}" + (f" with --tls-key {key}" if key else " (no --tls-key: the key must be in it)")
        raise ValueError(f"{what}: not a PEM certificate and private key ({_ssl_reason(e)})") from None


def _ssl_reason(e: Exception) -> str:
    return getattr(e, "reason", None) or " ".join(str(e).split())


def _host_of(address: str) -> tuple[str, str]:
    """``"tcp://10.0.0.5:8786"`` -> ``("tcp", "10.0.0.5")``; a bare ``host:port`` is tcp."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    return scheme.lower(), host.strip("[]")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address or a name) is on loopback; a name that does not resolve is not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def _insecure_warning(scheduler: str) -> str | None:
    """The warning for a scheduler whose traffic is neither encrypted nor local, else ``None``."""
    scheme, host = _host_of(scheduler)
    if scheme in ("tls", "inproc") or is_loopback(host):
        return None
    return (f"the Dask scheduler {scheduler} is joined without TLS: anyone who can reach it can run code as you; "
            "use a tls:// scheduler with --tls-ca-file, --tls-cert and --tls-key (connect(security=...)), "
            "or Dask's distributed.comm.tls settings")


def _worker_fmsim_version() -> str:
    import fmsim

    return fmsim.__version__


def _check_workers(client: Any, timeout: float) -> None:
    """Every worker must import fmsim (of this version); fail fast and clearly otherwise."""
    from .. import __version__

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


def connect(workers: int | None = None, scheduler: str | None = None, timeout: float = CONNECT_TIMEOUT,
            security: Any = None, dashboard: str | None = None,
            warn: Callable[[str], None] | None = None) -> Any:
    """A ``dask.distributed.Client``: a new LocalCluster of ``workers`` processes, or ``scheduler``'s cluster.

    Parameters
    ----------
    workers : int, optional
        Start a LocalCluster of this many single-threaded worker processes.
        Its scheduler, workers, nannies and dashboard listen on 127.0.0.1 only.
    scheduler : str, optional
        Address of a running scheduler, e.g. ``"tls://10.0.0.5:8786"``.
    timeout : float
        Seconds to reach the scheduler and its workers.
    security : distributed.security.Security, optional
        TLS certificates (:func:`tls_security`, or ``Security.temporary()``
        for a local cluster). Without it, Dask's ``distributed.comm.tls``
        configuration applies.
    dashboard : str, optional
        Where a local cluster's dashboard (Dask's HTTP server) listens:
        ``None`` (the default) a free port on 127.0.0.1; an address such as
        ``":8787"`` or ``"0.0.0.0:8787"`` exposes it on purpose.
    warn : callable, optional
        Called with the one-line warning for a plain ``tcp://`` scheduler
        that is not on loopback; by default an :class:`InsecureClusterWarning`.

    Returns
    -------
    distributed.Client
        Close it (and its LocalCluster) with ``client.close()``; or use :func:`cluster`.

    Raises
    ------
    ClusterError
        Unreachable scheduler, no workers within ``timeout``, workers that
        cannot import fmsim, or TLS refused (no certificate, or one the
        scheduler does not trust). Raised before any work or file is started.
    ValueError
        Neither or both of ``workers`` and ``scheduler``, ``workers < 1``, or
        ``dashboard`` given for a remote scheduler.
    """
    if (workers is None) == (scheduler is None):
        raise ValueError("give exactly one of workers (a local cluster) and scheduler (an address)")
    if scheduler is not None and dashboard is not None:
        raise ValueError("dashboard applies to a local cluster (workers=N); a running scheduler has its own")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError("Dask distributed is not installed: pip install 'fmsim[dask]'") from None
    if workers is not None:
        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        dashboard_address = f"{LOCAL_HOST}:0" if dashboard is None else str(dashboard)
        lc = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, host=LOCAL_HOST,
                          dashboard_address=dashboard_address, silence_logs=50, security=security)
        client = Client(lc, security=security)
    else:
        message = _insecure_warning(scheduler)
        if message is not None:
            if warn is None:
                warnings.warn(message, InsecureClusterWarning, stacklevel=2)
            else:
                warn(message)
        client = _join(scheduler, timeout, security)
    try:
        _check_workers(client, timeout)
    except BaseException:
        close(client)
        raise
    return client


def _join(scheduler: str, timeout: float, security: Any) -> Any:
    """A client of the running scheduler at ``scheduler``; every failure is one :class:`ClusterError` line."""
    from distributed import Client

    scheme, _ = _host_of(scheduler)
    try:
        return Client(scheduler, timeout=f"{timeout}s", security=security)
    except TypeError as e:  # Dask: "TLS expects a `ssl_context` argument" -- no certificate configured
        if scheme != "tls":
            raise
        raise ClusterError(f"the Dask scheduler at {scheduler!r} uses TLS, and no certificate is configured: give "
                           "--tls-ca-file, --tls-cert and --tls-key (connect(security=...)), or set Dask's "
                           f"distributed.comm.tls settings ({' '.join(str(e).split())})") from None
    except (OSError, TimeoutError, ValueError) as e:
        text = " ".join(str(e).split())
        hint = ""
        if "certificate" in text.lower() or "ssl" in text.lower():
            hint = "; the scheduler and this client do not trust each other's TLS certificates"
        elif scheme != "tls":
            hint = "; if the scheduler uses TLS, give a tls:// address and its certificates"
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler!r} within {timeout:g} s: {text}{hint}") \
            from None


def close(client: Any) -> None:
    """Close a client from :func:`connect`, and its LocalCluster if it started one."""
    cluster_ = getattr(client, "cluster", None)
    client.close()
    if cluster_ is not None:
        cluster_.close()


@contextmanager
def cluster(workers: int | None = None, scheduler: str | None = None, announce: Callable[[str], None] | None = None,
            security: Any = None, dashboard: str | None = None, warn: Callable[[str], None] | None = None
            ) -> Iterator[Any]:
    """``with cluster(workers=2) as client:`` -- ``None`` when neither is given (run in this process).

    The other arguments are :func:`connect`'s; ``announce`` is called with a
    line naming the workers and the dashboard.
    """
    if workers is None and scheduler is None:
        yield None
        return
    client = connect(workers, scheduler, security=security, dashboard=dashboard, warn=warn)
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
