"""Shared helpers. Statistical tests use fixed seeds and a 5-standard-error band.

Tests never touch the network: MNIST comes from the repository's copy
(``FMSIM_MNIST``, inherited by every subprocess and Dask worker), fmsim's
data cache is a fresh temporary folder, and a connection to any address but
loopback raises ``OSError``.
"""

import atexit
import errno
import ipaddress
import os
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO_MNIST = Path(__file__).resolve().parents[1] / "data" / "mnist"
os.environ["FMSIM_MNIST"] = str(REPO_MNIST)
os.environ.pop("FMSIM_MNIST_URL", None)
_CACHE = tempfile.mkdtemp(prefix="fmsim-test-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ["FMSIM_DATA"] = _CACHE

_real_connect, _real_connect_ex = socket.socket.connect, socket.socket.connect_ex


def _refuse_off_loopback(sock: socket.socket, address) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:  # a host name other than localhost
            loopback = False
        if not loopback:
            raise OSError(errno.ENETUNREACH, f"tests never touch the network (connect to {host!r} refused)")


def _connect(self, address):
    _refuse_off_loopback(self, address)
    return _real_connect(self, address)


def _connect_ex(self, address):
    _refuse_off_loopback(self, address)
    return _real_connect_ex(self, address)


socket.socket.connect, socket.socket.connect_ex = _connect, _connect_ex

N_SIGMA = 5.0


def assert_within_se(estimate, truth, se, n_sigma=N_SIGMA, what=""):
    """|estimate - truth| <= n_sigma * se, elementwise, with a readable message."""
    estimate, truth, se = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (estimate, truth, se)))
    if np.any(se == 0):  # a degenerate sample (e.g. Rademacher w^2 == 1) must then be exact
        assert np.array_equal(estimate[se == 0], truth[se == 0]), f"{what}: {estimate} != {truth}"
        estimate, truth, se = estimate[se > 0], truth[se > 0], se[se > 0]
    z = (estimate - truth) / se
    assert np.all(np.abs(z) <= n_sigma), (
        f"{what}: z-scores {np.round(z, 2)} exceed {n_sigma} (est {estimate}, truth {truth})"
    )


def mean_and_se(values):
    """Sample mean and its standard error from the sample standard deviation."""
    values = np.asarray(values, dtype=float)
    return values.mean(), values.std(ddof=1) / np.sqrt(values.size)


@pytest.fixture
def within_se():
    return assert_within_se


# CI: under the CUDA simulator, FMSIM_CUDA_SIGNATURES=<file> records the argument types of every CUDA kernel
# the tests launch; .ci/cuda_ptx.py then compiles each to PTX with the real numba-cuda compiler (no GPU needed),
# which the simulator never does.
if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" and os.environ.get("FMSIM_CUDA_SIGNATURES"):
    import json

    import numba
    from numba.cuda.simulator import kernel as _sim_kernel

    _launched: dict[str, set[str]] = {}
    _sim_call = _sim_kernel.FakeCUDAKernel.__call__

    def _recording_call(self, *args):
        import fmsim.kernels.cuda as cuda_kernels

        for name, obj in vars(cuda_kernels).items():
            if obj is self:
                _launched.setdefault(name, set()).add(";".join(str(numba.typeof(a)) for a in args))
        return _sim_call(self, *args)

    _sim_kernel.FakeCUDAKernel.__call__ = _recording_call

    @pytest.hookimpl(tryfirst=True)  # a pytest-xdist worker writes its file before it reports that it is done
    def pytest_sessionfinish(session, exitstatus):
        path = os.environ["FMSIM_CUDA_SIGNATURES"]
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        if worker:  # each worker its own file; the main process merges them into ``path``
            path = f"{path}.{worker}"
        else:
            for part in Path(path).parent.glob(Path(path).name + ".gw*"):
                for name, sigs in json.loads(part.read_text()).items():
                    _launched.setdefault(name, set()).update(sigs)
                part.unlink()
        with open(path, "w") as f:
            json.dump({name: sorted(sigs) for name, sigs in sorted(_launched.items())}, f, indent=1)
