"""The data registry: download into the cache through pooch, checksums, offline messages, ``fmsim data``.

Mirrors are HTTP servers on loopback that serve the repository's copy of
MNIST (or a damaged one); no test reaches the network (see conftest).
"""

import http.server
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_MNIST
from fmsim.datasets import MNIST_FILES, DataUnavailableError, fetch_mnist_file, mnist_status, sha256_of
from fmsim.mnist import load_mnist

from fmsim import cli, datasets


@contextmanager
def mirror(folder: Path, damage: str | None = None):
    """Serve ``folder`` on 127.0.0.1; ``damage`` names a file served with one byte flipped. Yields (url, hits)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            name = self.path.rsplit("/", 1)[-1]
            hits.append(name)
            path = folder / name
            if not path.is_file():
                self.send_error(404)
                return
            body = bytearray(path.read_bytes())
            if name == damage:
                body[len(body) // 2] ^= 0x40
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(bytes(body))

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mnist/", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """No local copy, an empty cache, and no public mirror: only what a test serves."""
    monkeypatch.delenv("FMSIM_MNIST", raising=False)
    monkeypatch.delenv("FMSIM_MNIST_URL", raising=False)
    monkeypatch.setenv("FMSIM_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "MIRRORS", ())
    return tmp_path / "cache" / "mnist"


def _closed_port_url() -> str:
    """A loopback URL on which nothing listens (the port was just bound and released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def test_repository_copy_matches_the_registry():
    sums = dict(line.split()[::-1] for line in (REPO_MNIST / "SHA256SUMS").read_text().splitlines() if line)
    assert sums == MNIST_FILES
    for name, digest in MNIST_FILES.items():
        assert sha256_of(REPO_MNIST / name) == digest


def test_first_use_downloads_into_the_cache_and_later_uses_read_it(empty_cache, monkeypatch):
    with mirror(REPO_MNIST) as (url, hits):
        monkeypatch.setenv("FMSIM_MNIST_URL", url)
        data = load_mnist()
        assert sorted(hits) == sorted(MNIST_FILES)
        again = load_mnist()
        assert len(hits) == 4  # the second load read the cache
    assert data.x_train.shape == (60000, 784) and np.array_equal(data.y_test, again.y_test)
    for name in MNIST_FILES:
        assert sha256_of(empty_cache / name) == MNIST_FILES[name]
    assert sorted(p.name for p in empty_cache.iterdir()) == sorted(MNIST_FILES)  # no temporary left behind
    assert [s.state for s in mnist_status()] == ["ok"] * 4


def test_a_damaged_download_is_discarded_and_the_next_mirror_used(empty_cache, monkeypatch):
    name = "t10k-labels-idx1-ubyte.gz"
    with mirror(REPO_MNIST, damage=name) as (bad, bad_hits), mirror(REPO_MNIST) as (good, good_hits):
        monkeypatch.setattr(datasets, "MIRRORS", (bad, good))
        path = fetch_mnist_file(name, announce=False)
    assert bad_hits == [name] and good_hits == [name]
    assert sha256_of(path) == MNIST_FILES[name]


def test_a_damaged_file_in_the_cache_is_fetched_again(empty_cache, monkeypatch):
    name = "t10k-labels-idx1-ubyte.gz"
    empty_cache.mkdir(parents=True)
    raw = bytearray((REPO_MNIST / name).read_bytes())
    raw[100] ^= 1
    (empty_cache / name).write_bytes(bytes(raw))
    assert {s.name: s.state for s in mnist_status()}[name] == "damaged"
    with mirror(REPO_MNIST) as (url, hits):
        monkeypatch.setenv("FMSIM_MNIST_URL", url)
        fetch_mnist_file(name, announce=False)
    assert hits == [name] and sha256_of(empty_cache / name) == MNIST_FILES[name]


def test_offline_without_a_copy_is_one_line_that_says_what_to_do(empty_cache, monkeypatch):
    url = _closed_port_url()
    monkeypatch.setenv("FMSIM_MNIST_URL", url)
    with pytest.raises(DataUnavailableError) as info:
        load_mnist()
    msg = str(info.value)
    assert "\n" not in msg
    for needed in [*MNIST_FILES, str(empty_cache), url, "FMSIM_MNIST", "no connection"]:
        assert needed in msg, needed
    assert not empty_cache.exists() or not any(empty_cache.iterdir())


def test_cli_exits_2_with_one_line_when_data_cannot_be_had(empty_cache, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FMSIM_MNIST_URL", _closed_port_url())
    assert cli.main(["run", "hessian_init", "--quick", "--quiet", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fmsim run hessian_init: error: MNIST file") and "FMSIM_MNIST" in err[-1]
    assert len(err) == 2 and err[0].startswith("fmsim: downloading")  # the announcement, then the error
    assert cli.main(["data"]) == 2
    out, err = capsys.readouterr()
    assert out.count("missing") == 4 and "fmsim data --fetch" in err and len(err.strip().splitlines()) == 1


def test_fmsim_data_fetch_then_reports_ok(empty_cache, monkeypatch, capsys):
    with mirror(REPO_MNIST) as (url, hits):
        monkeypatch.setenv("FMSIM_MNIST_URL", url)
        assert cli.main(["data", "--fetch"]) == 0
        assert len(hits) == 4
        assert cli.main(["data"]) == 0
        assert len(hits) == 4
    out = capsys.readouterr().out
    assert str(empty_cache) in out and out.count(" ok ") == 8


def test_a_local_copy_is_read_as_is_and_never_replaced(tmp_path, monkeypatch, capsys):
    for name in MNIST_FILES:
        (tmp_path / name).write_bytes((REPO_MNIST / name).read_bytes())
    name = "train-labels-idx1-ubyte.gz"
    raw = bytearray((tmp_path / name).read_bytes())
    raw[-3] ^= 1
    (tmp_path / name).write_bytes(bytes(raw))
    monkeypatch.setenv("FMSIM_MNIST", str(tmp_path))
    with pytest.raises(DataUnavailableError, match=f"{name} in the folder named by FMSIM_MNIST has SHA-256"):
        load_mnist()
    assert (tmp_path / name).read_bytes() == bytes(raw)
    assert cli.main(["data"]) == 2
    out, err = capsys.readouterr()
    assert "FMSIM_MNIST" in out and out.count("damaged") == 1 and f"fix the files in {tmp_path}" in err


def test_version_is_the_package_version(capsys):
    import fmsim

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"fmsim {fmsim.__version__}"


def test_experiments_run_from_the_package(capsys):
    assert cli.main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.EXPERIMENTS:
        assert name in out
    assert cli.main(["run", "fig9"]) == 2
    assert "unknown experiment 'fig9'" in capsys.readouterr().err
