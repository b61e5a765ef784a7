"""What every fmsim command shares: list-valued options and one error policy.

Used by :mod:`fmsim.cli` and by the experiment scripts (which therefore do
not import the CLI). Exit statuses: 0 done, 2 bad input or an unusable file
(one line on stderr, no traceback), 130 interrupted (the file is resumable),
141 the reader of stdout went away (``fmsim info FILE | head -1``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext

from .files.h5io import StoreError
from .running.compile_notice import compile_notice
from .running.execution import ClusterError

__all__ = ["UsageError", "int_list", "float_list", "run_main", "add_cluster_options", "cluster_from_args",
           "cluster_argv"]

_TLS_OPTIONS = (("--tls-ca-file", "tls_ca_file"), ("--tls-cert", "tls_cert"), ("--tls-key", "tls_key"))


class UsageError(ValueError):
    """Raised for invalid command-line input (exit status 2)."""


def int_list(text: str) -> list[int]:
    """``"1,2, 3"`` -> ``[1, 2, 3]`` (an argparse type)."""
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def float_list(text: str) -> list[float]:
    """``"0.5,1"`` -> ``[0.5, 1.0]`` (an argparse type)."""
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    """``--workers N`` / ``--scheduler ADDRESS`` and TLS: run the work on a Dask cluster (``fmsim.execution``)."""
    g = p.add_argument_group("cluster (Dask distributed; pip install 'fmsim[dask]')")
    g.add_argument("--workers", type=int, help="start a local Dask cluster of N worker processes, listening on "
                                               "127.0.0.1 only")
    g.add_argument("--scheduler", help="use the running Dask cluster at this scheduler address (tls://host:8786)")
    g.add_argument("--dashboard", metavar="ADDRESS",
                   help="expose the local cluster's dashboard at ADDRESS (e.g. 0.0.0.0:8787); default: a free port "
                        "on 127.0.0.1")
    g.add_argument("--tls-ca-file", metavar="PEM", help="TLS: the certificate authority of the cluster")
    g.add_argument("--tls-cert", metavar="PEM", help="TLS: this client's certificate (may hold its key too)")
    g.add_argument("--tls-key", metavar="PEM", help="TLS: this client's private key")


def cluster_argv(args: argparse.Namespace, scheduler: str | None = None) -> list[str]:
    """The cluster options of ``args`` as argv, to hand on to another command.

    With ``scheduler``, the cluster is joined at that address (the TLS
    options, if any, go along) instead of started again.
    """
    out: list[str] = []
    if scheduler is not None:
        out += ["--scheduler", scheduler]
    else:
        for option, name in (("--workers", "workers"), ("--scheduler", "scheduler"), ("--dashboard", "dashboard")):
            if getattr(args, name, None) is not None:
                out += [option, str(getattr(args, name))]
    for option, name in _TLS_OPTIONS:
        if getattr(args, name, None) is not None:
            out += [option, getattr(args, name)]
    return out


def cluster_from_args(args: argparse.Namespace, quiet: bool = False):
    """The client of ``--workers`` / ``--scheduler`` as a context manager (``None``: run in this process)."""
    from .running.execution import cluster

    workers, scheduler = getattr(args, "workers", None), getattr(args, "scheduler", None)
    dashboard = getattr(args, "dashboard", None)
    tls = {name: getattr(args, name, None) for _, name in _TLS_OPTIONS}
    if workers is not None and scheduler is not None:
        raise UsageError("give --workers (a local cluster) or --scheduler (a running one), not both")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    if dashboard is not None and workers is None:
        raise UsageError("--dashboard applies to a local cluster (--workers N); a running scheduler has its own")
    security = None
    if any(v is not None for v in tls.values()):
        if workers is None and scheduler is None:
            raise UsageError("--tls-ca-file, --tls-cert and --tls-key need --scheduler tls://HOST:PORT or --workers N")
        if tls["tls_ca_file"] is None or tls["tls_cert"] is None:
            raise UsageError("TLS needs both --tls-ca-file and --tls-cert (and --tls-key unless the cert holds it)")
        if scheduler is not None and not scheduler.lower().startswith("tls://"):
            raise UsageError(f"--tls-* options need a tls:// scheduler address, got --scheduler {scheduler}")
        from .running.execution import tls_security

        security = tls_security(tls["tls_ca_file"], tls["tls_cert"], tls["tls_key"])
    return cluster(workers, scheduler, announce=None if quiet else (lambda msg: print(msg, file=sys.stderr)),
                   security=security, dashboard=dashboard,
                   warn=lambda msg: print(f"fmsim: warning: {msg}", file=sys.stderr))


def _interactive(stream) -> bool:
    """Whether ``stream`` is a terminal: numba's compilations are named there (first runs wait tens of seconds),
    not in logs or captured output."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run_main(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None,
             prog: str = "fmsim") -> int:
    """Run ``main(argv)`` under fmsim's error policy and return the exit status.

    Bad input (``UsageError``, ``ValueError``, ``TypeError``), an unusable
    file (:class:`~fmsim.files.h5io.StoreError`, ``FileNotFoundError``,
    ``IsADirectoryError``, ``PermissionError``), any other I/O error (``OSError``: a full disk
    while saving a figure) or cluster (:class:`~fmsim.execution.ClusterError`) print
    ``prog: error: ...`` on one line and give 2; Ctrl-C gives 130; a closed stdout pipe gives 141 quietly.
    Otherwise the status is what ``main`` returns where it returns an int (``fmsim report``), else 0.
    """
    try:
        with compile_notice() if _interactive(sys.stderr) else nullcontext():
            status = main(argv)
    except (UsageError, ValueError, TypeError, StoreError, ClusterError, FileNotFoundError, IsADirectoryError,
            PermissionError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except OSError as e:  # any other I/O error: a full disk while saving a figure, a file that cannot be read
        print(f"{prog}: error: {os_error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; the file is resumable: rerun the same command", file=sys.stderr)
        return 130
    try:
        sys.stdout.flush()  # a broken pipe may only show here, at the last write
    except BrokenPipeError:
        _silence_stdout()
        return 141
    return status if isinstance(status, int) else 0


def os_error_line(e: OSError) -> str:
    """``"fig1a.png: No space left on device"``: the file (if known) and what the OS said, on one line."""
    what = e.strerror or " ".join(str(e).split()) or type(e).__name__
    where = e.filename if e.filename is not None else None
    return f"{where}: {what}" if where else what


def _silence_stdout() -> None:
    """Point stdout at /dev/null so Python's exit-time flush raises nothing (Python docs, 'SIGPIPE')."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
