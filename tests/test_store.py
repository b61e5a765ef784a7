"""HDF5 store: round trip, resume, kill -9, refusal of other configs and second writers."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from fmsim.store import StoreError, run_to_file

import fmsim
from fmsim.running.simulate import make_config

ARCH = fmsim.FullyConnected((8, 6, 7, 6))


def _config(**kw):
    args = dict(arch=ARCH, init=fmsim.Init(law="uniform", bias_var=0.1), n_nets=6000, seed=3, method="full",
                record="layers", chunk_size=1024)
    args.update(kw)
    return make_config(**args)


def _datasets(path, group="/"):
    out = {}
    with h5py.File(path, "r") as f:
        f[group].visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def test_file_equals_memory_and_is_self_describing(tmp_path):
    cfg = _config()
    path = tmp_path / "run.h5"
    res = run_to_file(cfg, path)
    mem = fmsim.simulate(cfg.arch, cfg.init, cfg.n_nets, cfg.seed, method="full", record="layers",
                         chunk_size=2048)
    np.testing.assert_array_equal(res.final, mem.final)
    np.testing.assert_array_equal(res.fm2, mem.fm2)
    np.testing.assert_array_equal(res.log_lengths, mem.log_lengths.astype(np.float32))
    np.testing.assert_array_equal(res.log_final, mem.log_final)
    np.testing.assert_allclose(res.lengths, mem.lengths, rtol=1e-6)  # exp of float32 logs
    for name in ("mean", "var", "log_mean", "log_var", "n_zero", "log_of_mean", "log_of_var"):
        np.testing.assert_array_equal(getattr(res.summary, name), getattr(mem.summary, name))
    # readable without fmsim: plain h5py, config as JSON, dimension names
    with h5py.File(path, "r") as f:
        assert json.loads(f.attrs["config"])["arch"]["widths"] == list(ARCH.widths)
        assert f.attrs["schema_version"] == 4
        assert f["final"].dims[0].label == "net"
        assert list(f["log_lengths"].dims[1].keys()) == ["layer"]
        assert f["log_lengths"].dtype == np.float32 and f["log_lengths"].compression == "gzip"
        np.testing.assert_array_equal(f["log_final"][()], mem.log_final)
        np.testing.assert_array_equal(f["summary/mean"][()], mem.summary.mean)
    reopened = fmsim.open(path)
    assert reopened.config == cfg
    np.testing.assert_array_equal(reopened.final, mem.final)


def test_resume_after_partial_run_is_bit_identical(tmp_path):
    cfg = _config()
    whole = tmp_path / "whole.h5"
    part = tmp_path / "part.h5"
    run_to_file(cfg, whole)

    calls = []

    def stop_after_two(n):
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_to_file(cfg, part, progress=stop_after_two)
    with h5py.File(part, "r") as f:
        assert f["chunks_done"][()] == 2
    with pytest.raises(StoreError, match=r"unfinished \(2 of 6 chunks\).*partial=True"):
        fmsim.open(part)
    run_to_file(cfg, part)
    a, b = _datasets(whole), _datasets(part)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("counted", [1, 2])
def test_writer_killed_between_summary_and_counter_resumes_bit_identical(tmp_path, counted):
    # The torn state a kill -9 can leave: chunk `counted`'s data and summary are in the file, its
    # counter is not. Resuming must count that chunk, not merge its nets into the summary again.
    cfg = _config()
    whole, torn = tmp_path / "whole.h5", tmp_path / "torn.h5"
    run_to_file(cfg, whole)
    calls = []

    def stop(n):
        calls.append(n)
        if len(calls) == counted + 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_to_file(cfg, torn, progress=stop)
    with h5py.File(torn, "r+") as f:
        assert f["chunks_done"][()] == counted + 1
        f["chunks_done"][()] = counted  # the counter of the last chunk never reached the file
    run_to_file(cfg, torn)
    a, b = _datasets(whole), _datasets(torn)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_resume_under_another_stream_layout_is_refused_and_file_untouched(tmp_path):
    cfg = _config()
    part, done = tmp_path / "part.h5", tmp_path / "done.h5"
    run_to_file(cfg, done)
    calls = []

    def stop_after_one(n):
        calls.append(n)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_to_file(cfg, part, progress=stop_after_one)
    for path in (part, done):
        with h5py.File(path, "r+") as f:
            assert f.attrs["stream_layout"] == fmsim.laws.STREAM_LAYOUT
            f["/"].attrs["stream_layout"] = 1  # as if written by the fmsim of layout 1 (which wrote no digest)
            del f["/"].attrs["attributes_sha256"]
    before = part.read_bytes()
    with pytest.raises(StoreError, match="unfinished run drawn with random-stream layout 1"):
        run_to_file(cfg, part)
    assert part.read_bytes() == before
    res = run_to_file(cfg, done)  # a finished run is only read: nothing is drawn, nothing mixed
    assert res.final.shape == (cfg.n_nets,)
    assert fmsim.open(done).final.shape == (cfg.n_nets,)


def test_other_config_is_refused_and_file_untouched(tmp_path):
    path = tmp_path / "run.h5"
    run_to_file(_config(), path)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="different configuration"):
        run_to_file(_config(seed=4), path)
    assert path.read_bytes() == before
    run_to_file(_config(seed=4), path, group="other")  # another group of the same file is fine
    assert fmsim.store.list_runs(path) == ["/", "/other"]


def test_second_writer_is_refused(tmp_path):
    path = tmp_path / "run.h5"
    run_to_file(_config(), path)
    with h5py.File(path, "a"):  # a writer holds the file
        code = ("import fmsim, sys; from fmsim.running.simulate import make_config\n"
                "from fmsim.store import run_to_file\n"
                f"cfg = make_config(fmsim.FullyConnected({ARCH.widths}), fmsim.Init(law='uniform', bias_var=0.1), "
                "6000, 3, method='full', record='layers', chunk_size=1024)\n"
                f"run_to_file(cfg, {str(path)!r})")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "open for writing by another process" in proc.stderr


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fmsim.cli", *args], capture_output=True, text=True, **kw)


SIM_ARGS = ["simulate", "--widths", "10,40,40,40,40", "--law", "laplace", "--bias-var", "0.2", "--nets", "40960",
            "--seed", "11", "--method", "full", "--record", "layers", "--chunk-size", "1024", "--quiet"]


def _chunks_done(path):
    try:
        with h5py.File(path, "r", libver="latest", swmr=True, locking=False) as f:
            return int(f["chunks_done"][()]) if "chunks_done" in f else 0
    except (OSError, KeyError):
        return 0


def test_kill9_at_random_moments_then_resume_is_bit_identical(tmp_path):
    whole = tmp_path / "whole.h5"
    assert _cli(*SIM_ARGS, "--out", str(whole), timeout=600).returncode == 0
    killed = tmp_path / "killed.h5"
    rng = random.Random(2024)
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "fmsim.cli", *SIM_ARGS, "--out", str(killed)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = _chunks_done(killed)
        deadline = time.time() + 120
        while proc.poll() is None and _chunks_done(killed) <= before and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.15))  # now mid-run: kill at a random moment of a chunk
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills == 3
    assert 0 < _chunks_done(killed) < 40
    done = _cli(*SIM_ARGS, "--out", str(killed), timeout=600)
    assert done.returncode == 0, done.stderr
    a, b = _datasets(whole), _datasets(killed)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["simulate", "--depth", "0"], "depth must be >= 1"),
        (["simulate", "--depth", "3", "--nets", "0"], "n_nets must be in"),
        (["simulate", "--depth", "3", "--scheme", "he", "--c", "2"], "cannot be combined"),
        (["simulate", "--depth", "3", "--law", "gaussian", "--c", "-1"], "c must be > 0"),
        (["simulate", "--depth", "3", "--method", "exact", "--law", "uniform"], "method='exact' needs"),
        (["simulate", "--depth", "3", "--chunk-size", "100"], "chunk_size"),
        (["simulate", "--depth", "3", "--c", "1,2"], "depth 3"),
        (["sweep", "--depths", "2,3", "--schemes", "he,nope"], "unknown scheme"),
        (["simulate", "--modules", "3"], "needs --width"),
        (["simulate", "--width", "4", "--etas", "0.5,-1"], "etas must be >= 0"),
        (["simulate", "--width", "4", "--modules", "2", "--etas", "1,1,1"], "--modules 2 but --etas has 3"),
        (["simulate", "--channels", "2,3", "--spatial", "4", "--method", "exact"], "exact"),
        (["simulate", "--channels", "2,3", "--spatial", "3", "--kernel", "5"], "kernel must be in [1, 3]"),
        (["simulate", "--channels", "2,3"], "needs --spatial"),
    ],
)
def test_cli_bad_input_exit_2_and_no_file(tmp_path, args, match):
    out = tmp_path / "x.h5"
    proc = _cli(*args, "--out", str(out), timeout=300)
    assert proc.returncode == 2
    assert match in proc.stderr
    assert not out.exists()


def test_cli_bad_input_leaves_existing_file_untouched(tmp_path):
    out = tmp_path / "x.h5"
    assert _cli("simulate", "--depth", "2", "--nets", "2048", "--out", str(out), "--quiet").returncode == 0
    before = out.read_bytes()
    proc = _cli("simulate", "--depth", "2", "--nets", "2048", "--seed", "9", "--out", str(out))
    assert proc.returncode == 2 and "different configuration" in proc.stderr
    assert out.read_bytes() == before


def test_cli_sweep_and_info(tmp_path):
    out = tmp_path / "sweep.h5"
    proc = _cli("sweep", "--depths", "2,3", "--schemes", "he,lecun", "--nets", "2048", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    runs = fmsim.store.list_runs(out)
    assert runs == ["/he/depth_2", "/he/depth_3", "/lecun/depth_2", "/lecun/depth_3"]
    info = _cli("info", str(out))
    assert info.returncode == 0 and info.stdout.count("complete") == 4


def test_demo_quick_writes_h5_and_png(tmp_path):
    proc = _cli("demo", "--quick", "--out", str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fig1a.png").stat().st_size > 10_000
    assert len(fmsim.store.list_runs(tmp_path / "fig1a.h5")) == 21  # 7 schemes x 3 depths


def test_cli_residual_and_conv_runs(tmp_path):
    from fmsim.cli import main

    out = tmp_path / "rc.h5"
    assert main(["simulate", "--width", "6", "--modules", "4", "--schedule", "1/sqrt(L)", "--module-widths", "5,7",
                 "--nets", "2048", "--seed", "2", "--out", str(out), "--group", "res", "--quiet"]) == 0
    assert main(["simulate", "--channels", "2,3,3", "--spatial", "4,5", "--kernel", "3", "--law", "uniform",
                 "--nets", "1024", "--out", str(out), "--group", "conv", "--quiet"]) == 0
    res = fmsim.open(out, "res")
    assert res.config.arch == fmsim.Residual(6, fmsim.eta_schedule("1/sqrt(L)", 4), (5, 7))
    assert res.config.method == "exact"
    mem = fmsim.simulate(res.config.arch, fmsim.Init(), 2048, 2)
    np.testing.assert_array_equal(res.final, mem.final)
    conv = fmsim.open(out, "conv")
    assert conv.config.arch == fmsim.Conv((2, 3, 3), (4, 5), 3) and conv.config.init.law == "uniform"
