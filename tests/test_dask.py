"""Dask distributed execution: files identical to serial runs for any number of workers, worker and
client faults, and clear errors for unusable clusters. LocalClusters of 2 processes, small sizes."""

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import fmsim
from fmsim import cli
from fmsim.execution import ClusterError, close, connect
from fmsim.simulate import make_config
from fmsim.store import run_many_to_file, run_to_file

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.timeout(300)

CFG = make_config(fmsim.FullyConnected((12, 30, 30, 30, 30)), fmsim.Init("laplace", 2.0, bias_var=0.1), 24 * 1024, 7,
                  method="full", record="layers", chunk_size=1024)


@pytest.fixture(scope="module")
def client():
    c = connect(workers=2)
    yield c
    close(c)


def _contents(path):
    """Every dataset and attribute of a file (fmsim_version aside), to compare files run by run."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            for k, v in obj.attrs.items():
                out[f"{name}@{k}"] = repr(v)
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                out[name] = (obj.dtype.str, obj.shape, data.tolist() if data.dtype == object else data.tobytes())
        f.visititems(visit)
        for k, v in f.attrs.items():
            out[f"/@{k}"] = repr(v)
    return out


@pytest.fixture(scope="module")
def serial_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("serial") / "serial.h5"
    run_to_file(CFG, path)
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_cluster_file_equals_serial_file(tmp_path, serial_file, workers):
    c = connect(workers=workers)
    try:
        path = tmp_path / "dask.h5"
        run_to_file(CFG, path, client=c)
    finally:
        close(c)
    assert _contents(path) == _contents(serial_file)


def test_simulate_and_sweep_on_a_cluster_equal_serial(tmp_path, client):
    arch = fmsim.FullyConnected((6, 5, 5, 5))
    a = fmsim.simulate(arch, fmsim.Init.scheme("he"), 5000, 3, chunk_size=1024, record="layers")
    b = fmsim.simulate(arch, fmsim.Init.scheme("he"), 5000, 3, chunk_size=1024, record="layers", client=client)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.summary.mean, b.summary.mean)
    runs = [(make_config(fmsim.FullyConnected.constant(d, 8), fmsim.Init.scheme(s), 3000, 1, chunk_size=1024),
             f"{s}/depth_{d}") for s in ("he", "he_uniform") for d in (2, 5)]
    run_many_to_file(runs, tmp_path / "serial.h5")
    run_many_to_file(runs, tmp_path / "dask.h5", client=client)
    assert _contents(tmp_path / "dask.h5") == _contents(tmp_path / "serial.h5")


def test_worker_killed_mid_run_is_rescheduled_and_file_equals_serial(tmp_path, serial_file, client):
    pids = list(client.run(os.getpid).values())
    killed = []

    def progress(n):
        progress.done += n
        if not killed and progress.done >= 4 * 1024:  # a few chunks in: kill one worker process
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
    progress.done = 0
    path = tmp_path / "dask.h5"
    run_to_file(CFG, path, progress=progress, client=client)
    assert killed
    assert _contents(path) == _contents(serial_file)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_killed_client_then_resume_equals_serial(tmp_path, serial_file):
    path = tmp_path / "killed.h5"
    args = [sys.executable, "-m", "fmsim.cli", "simulate", "--widths", "12,30,30,30,30", "--law", "laplace",
            "--bias-var", "0.1", "--nets", str(24 * 1024), "--seed", "7", "--method", "full", "--record", "layers",
            "--chunk-size", "1024", "--quiet", "--out", str(path), "--workers", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and done < 3:
        time.sleep(0.2)
        if path.exists():
            try:
                with h5py.File(path, "r", libver="latest", swmr=True, locking=False) as f:
                    done = int(f["chunks_done"][()])
            except (OSError, KeyError):
                pass
    os.killpg(proc.pid, signal.SIGKILL)  # the client and its local cluster
    proc.wait()
    assert 3 <= done < 24, done
    assert cli.main(args[3:-2] + []) == 0  # resume here, serially
    assert _contents(path) == _contents(serial_file)


def test_unreachable_scheduler_is_a_clear_error_and_creates_no_file(tmp_path, capsys):
    path = tmp_path / "x.h5"
    t0 = time.perf_counter()
    code = cli.main(["simulate", "--depth", "3", "--nets", "1024", "--quiet", "--out", str(path),
                     "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2
    assert time.perf_counter() - t0 < 30  # the stated timeout is 10 s
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler" in err and "127.0.0.1:9" in err
    assert not path.exists()
    assert cli.main(["simulate", "--depth", "3", "--out", str(path), "--workers", "0"]) == 2
    assert cli.main(["simulate", "--depth", "3", "--out", str(path), "--workers", "1", "--scheduler", "x"]) == 2
    assert not path.exists()


def test_workers_without_fmsim_are_a_clear_error_and_create_no_file(tmp_path, capsys):
    preload = tmp_path / "no_fmsim.py"
    preload.write_text("import sys\nsys.modules['fmsim'] = None  # this worker cannot import fmsim\n")
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                      preload=[str(preload)], silence_logs=50) as lc:
        with pytest.raises(ClusterError, match="cannot import fmsim"):
            connect(scheduler=lc.scheduler_address)
        path = tmp_path / "x.h5"
        assert cli.main(["simulate", "--depth", "3", "--nets", "1024", "--quiet", "--out", str(path),
                         "--scheduler", lc.scheduler_address]) == 2
        assert "cannot import fmsim" in capsys.readouterr().err
        assert not path.exists()


def test_fig1b_trainings_on_a_cluster_equal_serial(tmp_path):
    from fmsim.experiments import fig1b

    fig1b.main(["--quick", "--quiet", "--out", str(tmp_path / "serial")])
    fig1b.main(["--quick", "--quiet", "--out", str(tmp_path / "dask"), "--workers", "2"])

    def results(path):
        return {k: v for k, v in _contents(path).items() if not k.endswith("@seconds")}
    assert results(tmp_path / "dask" / "fig1b.h5") == results(tmp_path / "serial" / "fig1b.h5")
