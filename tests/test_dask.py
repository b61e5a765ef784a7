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
from fmsim.execution import ClusterError, close, connect
from fmsim.store import run_many_to_file, run_to_file

import fmsim
from fmsim import cli
from fmsim.running.simulate import make_config

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


def test_carried_vectors_on_a_cluster_equal_serial(client):
    arch, he, x = fmsim.FullyConnected((6, 5, 5, 5)), fmsim.Init.scheme("he"), np.linspace(0.5, 1.5, 6)
    for kwargs in ({"x": x, "tangents": np.eye(6)[:2], "method": "full"}, {"inputs": np.stack([x, x[::-1]])}):
        a = fmsim.simulate(arch, he, 3000, 3, chunk_size=1024, record="layers", **kwargs)
        b = fmsim.simulate(arch, he, 3000, 3, chunk_size=1024, record="layers", client=client, **kwargs)
        for name in ("gram_layers", "jvp_layers", "jacobian_entries"):
            if getattr(a, name) is not None:
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


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

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", preload=[str(preload)], silence_logs=50) as lc:
        with pytest.raises(ClusterError, match="cannot import fmsim"):
            connect(scheduler=lc.scheduler_address)
        path = tmp_path / "x.h5"
        assert cli.main(["simulate", "--depth", "3", "--nets", "1024", "--quiet", "--out", str(path),
                         "--scheduler", lc.scheduler_address]) == 2
        assert "cannot import fmsim" in capsys.readouterr().err
        assert not path.exists()


def test_fig1b_trainings_on_a_cluster_equal_serial(tmp_path):
    from fmsim.experiments import fig1b

    # One depth of each part, one run, two epochs: the nine jobs (five schemes, four profiles) once each
    small = ["--depths", "4", "--width", "24", "--fm2-depths", "4", "--betas", "1", "--runs", "1",
             "--max-epochs", "2", "--quiet"]
    fig1b.main([*small, "--out", str(tmp_path / "serial")])
    fig1b.main([*small, "--out", str(tmp_path / "dask"), "--workers", "2"])

    def results(path):
        return {k: v for k, v in _contents(path).items() if not k.endswith("@seconds")}
    assert results(tmp_path / "dask" / "fig1b.h5") == results(tmp_path / "serial" / "fig1b.h5")


# --- security: a local cluster stays on loopback; TLS to a running scheduler ---------------------------------------

def _listening(pids):
    """``{(pid, ip, port)}`` of the TCP sockets listening in these processes."""
    import psutil

    out = set()
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        out |= {(pid, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}
    return out


def test_every_socket_of_a_local_cluster_is_on_loopback():
    import ipaddress

    import psutil

    me = psutil.Process()
    before = _listening([me.pid])
    old_children = {p.pid for p in me.children(recursive=True)}
    c = connect(workers=2)
    try:
        new_children = [p.pid for p in me.children(recursive=True) if p.pid not in old_children]
        opened = (_listening([me.pid]) - before) | _listening(new_children)
        ports = {port for _, _, port in opened}
        # the scheduler, its dashboard, and for each of 2 workers a worker and a nanny: 6 sockets at least
        assert len(ports) >= 6, opened
        assert int(c.scheduler.address.rsplit(":", 1)[1]) in ports
        assert int(c.dashboard_link.split(":")[2].split("/")[0]) in ports
        exposed = [s for s in opened if not ipaddress.ip_address(s[1]).is_loopback]
        assert not exposed, f"listening beyond loopback: {exposed}"
    finally:
        close(c)


def test_dashboard_is_exposed_only_on_purpose():
    import psutil

    me = psutil.Process()
    before = _listening([me.pid])
    c = connect(workers=1, dashboard="0.0.0.0:0")
    try:
        port = int(c.dashboard_link.split(":")[2].split("/")[0])
        assert {(ip, p) for _, ip, p in _listening([me.pid]) - before if p == port} == {("0.0.0.0", port)}
    finally:
        close(c)


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A TLS LocalCluster (a self-signed certificate from Security.temporary()) and its PEM files."""
    pytest.importorskip("cryptography")  # Security.temporary() makes its certificate with it
    from distributed import LocalCluster
    from distributed.security import Security

    sec = Security.temporary()
    folder = tmp_path_factory.mktemp("tls")
    files = {}
    for name, pem in (("ca", sec.tls_ca_file), ("cert", sec.tls_client_cert), ("key", sec.tls_client_key)):
        files[name] = folder / f"{name}.pem"
        files[name].write_text(pem)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", security=sec, silence_logs=50) as lc:
        assert lc.scheduler_address.startswith("tls://")
        yield lc.scheduler_address, files


SERIAL_ARGS = ["simulate", "--widths", "12,30,30,30,30", "--law", "laplace", "--bias-var", "0.1", "--nets",
               str(24 * 1024), "--seed", "7", "--method", "full", "--record", "layers", "--chunk-size", "1024",
               "--quiet"]


def test_tls_cluster_run_equals_serial_run(tmp_path, serial_file, tls_cluster):
    address, pem = tls_cluster
    path = tmp_path / "tls.h5"
    assert cli.main([*SERIAL_ARGS, "--out", str(path), "--scheduler", address, "--tls-ca-file", str(pem["ca"]),
                     "--tls-cert", str(pem["cert"]), "--tls-key", str(pem["key"])]) == 0
    assert _contents(path) == _contents(serial_file)


def _fmsim(args, timeout=120):
    return subprocess.run([sys.executable, "-m", "fmsim.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_dask_tls_configuration_is_honoured(tmp_path, tls_cluster):
    """No --tls-* option: Dask's distributed.comm.tls settings (here from DASK_* variables) give the certificate."""
    address, pem = tls_cluster
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TLS__CA_FILE=str(pem["ca"]),
               DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT=str(pem["cert"]),
               DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY=str(pem["key"]))
    path = tmp_path / "x.h5"
    args = ["simulate", "--depth", "3", "--nets", "2048", "--chunk-size", "1024", "--quiet", "--out", str(path)]
    r = subprocess.run([sys.executable, "-m", "fmsim.cli", *args, "--scheduler", address], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert cli.main([*args[:-1], str(tmp_path / "serial.h5")]) == 0
    assert _contents(path) == _contents(tmp_path / "serial.h5")


def test_tls_scheduler_refuses_a_client_without_its_certificate(tmp_path, tls_cluster):
    from distributed.security import Security

    address, pem = tls_cluster
    path = tmp_path / "x.h5"
    base = ["simulate", "--depth", "3", "--nets", "1024", "--quiet", "--out", str(path), "--scheduler", address]
    # no certificate at all
    r = _fmsim(base)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "uses TLS, and no certificate is configured" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    # a certificate the scheduler does not trust (another self-signed one)
    other = Security.temporary()
    for name, text in (("ca", other.tls_ca_file), ("cert", other.tls_client_cert), ("key", other.tls_client_key)):
        (tmp_path / f"other_{name}.pem").write_text(text)
    r = _fmsim([*base, "--tls-ca-file", str(tmp_path / "other_ca.pem"), "--tls-cert", str(tmp_path / "other_cert.pem"),
                "--tls-key", str(tmp_path / "other_key.pem")])
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "TLS certificate" in r.stderr, r.stderr
    # plain tcp to a TLS scheduler
    r = _fmsim([*base[:-1], address.replace("tls://", "tcp://")])
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "tls://" in r.stderr, r.stderr
    assert not path.exists()


def test_tls_options_are_checked_before_anything_starts(tmp_path, capsys):
    path = tmp_path / "x.h5"
    pem = tmp_path / "cert.pem"
    pem.write_text("not used")
    base = ["simulate", "--depth", "3", "--nets", "1024", "--quiet", "--out", str(path)]
    cases = [
        (["--scheduler", "tls://127.0.0.1:9", "--tls-cert", str(pem)], "--tls-ca-file"),
        (["--scheduler", "tcp://127.0.0.1:9", "--tls-ca-file", str(pem), "--tls-cert", str(pem)], "tls://"),
        (["--scheduler", "tls://127.0.0.1:9", "--tls-ca-file", str(tmp_path / "absent.pem"), "--tls-cert",
          str(pem)], "--tls-ca-file"),
        (["--tls-ca-file", str(pem), "--tls-cert", str(pem)], "--scheduler"),
        (["--scheduler", "tcp://127.0.0.1:9", "--dashboard", ":8787"], "--dashboard"),
    ]
    for extra, named in cases:
        assert cli.main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and named in err, (extra, err)
        assert not path.exists()


def test_unusable_tls_files_and_a_closed_port_are_one_line_naming_them(tmp_path, tls_cluster):
    """Files that are not PEM, a key of another certificate, and a port nothing listens on: for a local cluster
    (--workers) and a running one (--scheduler), one line that names the option and the file, or the address."""
    from distributed.security import Security

    _, pem = tls_cluster
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    other_key = tmp_path / "other_key.pem"
    other_key.write_text(Security.temporary().tls_client_key)
    path = tmp_path / "x.h5"
    base = ["simulate", "--depth", "3", "--nets", "1024", "--quiet", "--out", str(path)]
    good = {"--tls-ca-file": str(pem["ca"]), "--tls-cert": str(pem["cert"]), "--tls-key": str(pem["key"])}
    cases = [
        ({"--tls-ca-file": str(junk)}, "--tls-ca-file " + str(junk)),
        ({"--tls-cert": str(junk)}, "--tls-cert " + str(junk)),
        ({"--tls-key": str(junk)}, str(junk)),
        ({"--tls-key": str(other_key)}, f"--tls-key {other_key}: this private key does not match"),
    ]
    for where in (["--workers", "1"], ["--scheduler", "tls://127.0.0.1:9"]):
        for change, named in cases:
            tls = [item for option, value in (good | change).items() for item in (option, value)]
            r = _fmsim([*base, *where, *tls])
            assert r.returncode == 2 and r.stderr.count("\n") == 1 and named in r.stderr, (where, change, r.stderr)
            assert "Traceback" not in r.stderr and "trust each other" not in r.stderr, r.stderr
    r = _fmsim([*base, "--scheduler", "tcp://127.0.0.1:9"])  # nothing listens on port 9
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "tcp://127.0.0.1:9" in r.stderr, r.stderr
    assert not path.exists()


@pytest.mark.parametrize("address, warned", [
    ("tcp://10.0.0.5:8786", True), ("10.0.0.5:8786", True), ("tcp://cluster-head.example:8786", True),
    ("tls://10.0.0.5:8786", False), ("tcp://127.0.0.1:8786", False), ("tcp://localhost:8786", False),
    ("tcp://[::1]:8786", False), ("inproc://10.0.0.5/1/2", False)])
def test_which_schedulers_are_warned_about(address, warned):
    from fmsim.execution import _insecure_warning

    message = _insecure_warning(address)
    assert (message is not None) == warned
    if warned:
        assert "TLS" in message and "--tls-ca-file" in message and "\n" not in message


def test_plain_tcp_scheduler_beyond_loopback_works_with_one_warning(tmp_path, capsys, monkeypatch, serial_file):
    """The scheduler is on loopback here (tests reach no other address), so loopback is declared foreign."""
    from distributed import LocalCluster

    from fmsim import execution

    monkeypatch.setattr(execution, "is_loopback", lambda host: False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", silence_logs=50) as lc:
        path = tmp_path / "tcp.h5"
        assert cli.main([*SERIAL_ARGS, "--out", str(path), "--scheduler", lc.scheduler_address]) == 0
        err = capsys.readouterr().err
        warnings_ = [line for line in err.splitlines() if line.startswith("fmsim: warning:")]
        assert len(warnings_) == 1 and "without TLS" in warnings_[0] and "--tls-cert" in warnings_[0], err
        with pytest.warns(execution.InsecureClusterWarning, match="without TLS"):
            close(connect(scheduler=lc.scheduler_address))
    assert _contents(path) == _contents(serial_file)
