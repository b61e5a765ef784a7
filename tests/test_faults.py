"""No silent data loss: a full disk (for real on a tmpfs, and injected), EIO, flipped bytes, files held
open by xarray, partial reads of live runs, and requests refused before any file is touched.

Every fault test asserts: exit status 2 and one line on stderr; no file claims more chunks than it
holds (fmsim.integrity.verify_run); and the resumed file equals an uninterrupted run's, dataset by
dataset (HDF5 lays a recovered file out differently on disk, so bytes of the file itself may differ).
"""

import errno
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from fmsim.integrity import verify_run

import fmsim
from fmsim import cli, store
from fmsim.files.h5io import DamagedFileError, StoreError
from fmsim.files.layout import ATTRIBUTES_DIGEST, attributes_digest

pytestmark = pytest.mark.timeout(300)

# The run: 60 chunks of 1024 nets, with per-layer lengths (gzip): about 5.5 MB on disk
ARGS = ["simulate", "--depth", "20", "--width", "20", "--law", "uniform", "--nets", "61440", "--chunk-size", "1024",
        "--record", "layers", "--quiet"]
N_CHUNKS = 60


def _fmsim(args, cwd=None, **kw):
    return subprocess.run([sys.executable, "-m", "fmsim.cli", *args], capture_output=True, text=True, timeout=240,
                          cwd=cwd, **kw)


def _data(path, group="/"):
    """Every dataset of a run (HDF5 may lay a recovered file out differently; the data must be the same)."""
    out = {}
    with h5py.File(path, "r") as f:
        g = f[group]
        g.visititems(lambda name, obj: out.__setitem__(name, obj[()].tobytes() if obj.dtype.kind != "O"
                                                       else obj[()].tolist()) if isinstance(obj, h5py.Dataset)
                     else None)
        out["@config"] = g.attrs["config"]
    return out


def _chunks_done(path, group="/"):
    with h5py.File(path, "r", locking=False) as f:
        return int(f[group]["chunks_done"][()])


def _holds_what_it_claims(path, group="/"):
    with store.reading(path) as f:
        check = verify_run(f[group])
    assert check.ok, check.problems
    return check.chunks_done


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    path = tmp_path_factory.mktemp("clean") / "run.h5"
    assert cli.main([*ARGS, "--out", str(path)]) == 0
    return path


# ----------------------------------------------------------------------------- a full disk, for real
@pytest.fixture
def tiny_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_for_real_one_line_exit_2_then_resume_bit_identical(tiny_tmpfs, tmp_path, clean):
    out = tiny_tmpfs / "run.h5"
    r = _fmsim([*ARGS, "--out", str(out)])
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert r.stderr.count("\n") == 1, r.stderr[-2000:]
    assert "no space left on device while writing chunk" in r.stderr and "rerun the same command" in r.stderr
    done = _holds_what_it_claims(out)
    assert 0 < done < N_CHUNKS
    partial = fmsim.open(out, partial=True)
    full = fmsim.open(clean)
    assert partial.n_done == done * 1024 and not partial.complete
    np.testing.assert_array_equal(partial.log_lengths, full.log_lengths[:partial.n_done])
    # moved to a roomy disk: the same command resumes it
    moved = tmp_path / "moved.h5"
    shutil.copy(out, moved)
    assert _fmsim([*ARGS, "--out", str(moved)]).returncode == 0
    assert _data(moved) == _data(clean)
    # space freed where it is: the same command resumes it in place
    subprocess.run(["mount", "-o", "remount,size=32m", str(tiny_tmpfs)], check=True)
    r = _fmsim([*ARGS, "--out", str(out)])
    assert r.returncode == 0, r.stderr
    assert _data(out) == _data(clean)
    assert _fmsim(["verify", str(out)]).returncode == 0


# ----------------------------------------------------------------------------- faults by injection
def _inject(monkeypatch, point, code, after=0):
    """Raise OSError(code) at fault point ``point`` on its ``after``-th visit (0: the first)."""
    visits = {"n": 0}

    def fault(p):
        if p == point:
            visits["n"] += 1
            if visits["n"] > after:
                raise OSError(code, os.strerror(code))
    monkeypatch.setattr(store, "_inject", fault)


@pytest.mark.parametrize("point, after, code, text", [
    ("create", 0, errno.ENOSPC, "no space left on device while creating"),
    ("data", 5, errno.ENOSPC, "no space left on device while writing chunk 5 (chunks 0 to 59)"),
    ("summary", 5, errno.ENOSPC, "no space left on device while writing chunk 5 (chunks 0 to 59)"),
    ("counter", 5, errno.ENOSPC, "no space left on device while writing chunk 5 (chunks 0 to 59)"),
    ("data", 7, errno.EIO, "an I/O error (EIO) while writing chunk 7 (chunks 0 to 59)"),
    ("counter", 3, errno.EDQUOT, "the disk quota is exceeded while writing chunk 3 (chunks 0 to 59)"),
    ("close", 0, errno.ENOSPC, "no space left on device while closing the file"),
])
def test_injected_write_faults(tmp_path, monkeypatch, capsys, clean, point, after, code, text):
    path = tmp_path / "run.h5"
    _inject(monkeypatch, point, code, after)
    assert cli.main([*ARGS, "--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and text in err and "Traceback" not in err, err
    if point == "create":
        assert not path.exists()  # a new file that never held a run is removed
    elif point == "close":
        assert _holds_what_it_claims(path) == N_CHUNKS  # every chunk was written before the close failed
    else:
        assert _holds_what_it_claims(path) == after  # the failed chunk is not counted
    monkeypatch.setattr(store, "_inject", lambda p: None)
    assert cli.main([*ARGS, "--out", str(path)]) == 0
    assert _data(path) == _data(clean)


def test_fsync_failure_stops_the_run_before_the_counter(tmp_path, monkeypatch, capsys, clean):
    path = tmp_path / "run.h5"
    real = os.fsync
    calls = {"n": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > 4:  # the layout, then 3 chunks (one fsync each), then a failure
            raise OSError(errno.EIO, "Input/output error")
        real(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    assert cli.main([*ARGS, "--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "I/O error (EIO) while writing chunk" in err, err
    monkeypatch.setattr(os, "fsync", real)
    assert _holds_what_it_claims(path) < N_CHUNKS
    assert cli.main([*ARGS, "--out", str(path)]) == 0
    assert _data(path) == _data(clean)


# ----------------------------------------------------------------------------- flipped bytes
def _flip(path, dataset, chunk=0, offset=40):
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(chunk)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + min(offset, info.size - 5))
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0x04]))


@pytest.mark.parametrize("dataset, chunk", [("final", 7), ("fm2", 0), ("log_lengths", 59), ("summary/moments", 0),
                                            ("summary/mean", 0), ("summary/n_zero", 0)])
def test_a_flipped_byte_is_always_detected(tmp_path, clean, capsys, dataset, chunk):
    path = tmp_path / "flipped.h5"
    shutil.copy(clean, path)
    _flip(path, dataset, chunk)
    assert cli.main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{dataset} chunk {chunk}" in err and "fails its checksum" in err, err
    if dataset in ("final", "fm2", "log_lengths", "summary/moments"):  # what fmsim.open reads
        with pytest.raises(DamagedFileError, match=f"{dataset}.*chunk {chunk}.*fails its checksum"):
            fmsim.open(path)
    with pytest.raises(OSError):  # any HDF5 reader, not only fmsim, sees the damage
        with h5py.File(path, "r") as f:
            f[dataset][()]


def test_verify_says_ok_and_names_a_counter_that_claims_too_much(tmp_path, clean, capsys):
    assert cli.main(["verify", str(clean)]) == 0
    out = capsys.readouterr().out
    assert "ok (complete; 12 datasets checked chunk by chunk; coordinates and labels checked against the " \
           "configuration; attributes checked against their checksum)" in out, out
    path = tmp_path / "short.h5"
    assert cli.main([*ARGS[:-1], "--nets", str(4 * 1024), "--quiet", "--out", str(path)]) == 0
    # a file whose counter says 4 chunks while the data of chunk 3 was never written
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["config"])
        cfg["n_nets"] = 8 * 1024
        del f["log_lengths"], f["final"]
        f.create_dataset("final", (8 * 1024,), dtype="f8", chunks=(1024,), fletcher32=True)[:3 * 1024] = 1.0
        f.create_dataset("log_lengths", (8 * 1024, 21), dtype="f4", chunks=(1024, 21), fletcher32=True)
        f.attrs["config"] = json.dumps(cfg, sort_keys=True)
        f.attrs[ATTRIBUTES_DIGEST] = np.frombuffer(attributes_digest(f), dtype=np.uint8)  # as if written so
    assert cli.main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert "final chunk 3 was never written: the counter claims more than the file holds" in err, err


def test_files_without_checksums_still_open_and_verify_says_so(tmp_path, clean, capsys):
    """A file laid out as fmsim < 0.8 wrote it: contiguous datasets, no Fletcher-32."""
    path = tmp_path / "old.h5"
    shutil.copy(clean, path)
    with h5py.File(path, "r+") as f:
        for name in ("final", "fm2", "summary/moments"):
            data = f[name][()]
            attrs = dict(f[name].attrs)
            del f[name]
            f.create_dataset(name, data=data)
            for k, v in attrs.items():
                if k not in ("DIMENSION_LIST", "REFERENCE_LIST"):
                    f[name].attrs[k] = v
        f.attrs["schema_version"] = 2
        del f.attrs[ATTRIBUTES_DIGEST]  # (fmsim < 0.12 wrote none)
    res, ref = fmsim.open(path), fmsim.open(clean)
    np.testing.assert_array_equal(res.final, ref.final)
    assert cli.main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "final, fm2, summary/moments written without checksums (fmsim < 0.8)" in out, out


# ----------------------------------------------------------------------------- held open elsewhere
def test_a_file_held_open_by_xarray_opens_in_fmsim(clean, capsys):
    xr = pytest.importorskip("xarray")
    held = xr.open_dataset(clean, engine="h5netcdf")
    try:
        assert fmsim.open(clean).complete
        assert len(fmsim.open_sweep(clean)) == 21
        assert fmsim.open_dataset(clean).final.shape == (61440,)
        assert cli.main(["verify", str(clean)]) == 0
        assert cli.main(["info", str(clean)]) == 0
        np.testing.assert_array_equal(held.final.values, fmsim.open(clean).final)  # the first handle still reads
    finally:
        held.close()
    other = h5py.File(clean, "r", locking=True)  # h5py with locking on, then fmsim
    try:
        assert fmsim.open(clean).complete
    finally:
        other.close()


# ----------------------------------------------------------------------------- partial reads
def test_partial_reads_of_a_live_run_equal_the_finished_run(tmp_path):
    path = tmp_path / "live.h5"
    args = ["simulate", "--depth", "40", "--width", "60", "--law", "uniform", "--nets", str(24 * 1024),
            "--chunk-size", "1024", "--record", "layers", "--quiet", "--out", str(path)]
    proc = subprocess.Popen([sys.executable, "-m", "fmsim.cli", *args], stderr=subprocess.PIPE, text=True)
    reads = []
    try:
        deadline = time.time() + 200
        while proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
            if not path.exists():
                continue
            try:
                res = fmsim.open(path, partial=True)
            except StoreError:  # the layout is being created
                continue
            if 0 < res.n_done < res.config.n_nets:
                reads.append(res)
                try:
                    whole = fmsim.open(path)
                except StoreError as e:
                    assert re.search("being written by a live process.*partial=True", str(e)), e
                else:  # the writer finished its last chunk between the two reads: a race, not a fault
                    assert whole.complete
                ds = fmsim.open_dataset(path, partial=True)
                assert ds.sizes["net"] >= res.n_done
                # complete only if the writer finished its last chunk since the partial read (a race, not a fault)
                assert ds.attrs["complete"] == int(ds.sizes["net"] == res.config.n_nets)
    finally:
        _, err = proc.communicate(timeout=200)
        assert proc.returncode == 0, err
    assert len(reads) >= 2, "the run finished before it could be read while live"
    done = fmsim.open(path)
    for res in reads:
        assert res.n_done % 1024 == 0 and not res.complete and "unfinished" in repr(res)
        np.testing.assert_array_equal(res.final, done.final[:res.n_done])
        np.testing.assert_array_equal(res.log_lengths, done.log_lengths[:res.n_done])
        assert res.summary.count[0] == res.n_done  # the summary counts exactly the nets returned


# ----------------------------------------------------------------------------- refused before any file
def _no_gpu():
    from fmsim.running import cuda_backend

    return not cuda_backend.is_available()


@pytest.mark.parametrize("extra, text", [
    pytest.param(["--backend", "cuda"], "backend='cuda' needs an NVIDIA GPU",
                 marks=pytest.mark.skipif(not _no_gpu(), reason="this machine has a GPU")),
    (["--backend", "cuda", "--method", "exact_first"], "runs on backend='cpu' only"),
    (["--method", "exact", "--precision", "float32"], "precision='float32' exists for method='full'"),
])
def test_impossible_requests_are_refused_before_any_file(tmp_path, extra, text):
    out = tmp_path / "run.h5"
    base = ["simulate", "--nets", "1024", "--quiet", "--out", str(out)]
    base += [] if "--channels" in extra else ["--depth", "5", "--width", "5"]
    r = _fmsim([*base, *extra, "--workers", "2"])
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and text in r.stderr, r.stderr
    assert not out.exists()


def test_a_chunk_too_big_for_memory_is_refused_with_a_chunk_size_that_fits(tmp_path):
    """The issue's request under a 6 GB address-space limit: it needed 7.82 GiB and left a 21 MB file."""
    out = tmp_path / "run.h5"
    limit = 6 * 1024**3

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    r = _fmsim(["simulate", "--depth", "1000", "--width", "10", "--nets", "1048576", "--chunk-size", "1048576",
                "--record", "layers", "--out", str(out)], preexec_fn=cap)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "address-space limit" in r.stderr and "use --chunk-size" in r.stderr, r.stderr
    assert not out.exists()
    fits = int(r.stderr.split("use --chunk-size ")[1].split()[0])
    assert fits % 1024 == 0
    # the chunk size it names passes the same check under the same limit
    code = ("import fmsim; from fmsim.running.simulate import make_config, check_memory; "
            f"check_memory(make_config(fmsim.FullyConnected.constant(1000, 10), fmsim.Init.scheme('he'), 1048576, 0, "
            f"record='layers', chunk_size={fits}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, preexec_fn=cap)
    assert r.returncode == 0, r.stderr
