"""Printed numbers never lie, and advice works when it is followed: no negative zero, no mean of a run without
nets, chunks counted from 0 everywhere, and a report that refuses before working."""

import os
import subprocess
import sys

import numpy as np

import fmsim
from fmsim import cli
from fmsim.running.simulate import make_config


def test_law_prints_no_negative_zero(capsys):
    assert cli.main(["law", "--widths", "3,200,200"]) == 0  # P(dead) = 2^-200 * ...: rounds to 0
    out = capsys.readouterr().out
    assert "-0 " not in out and "= -0" not in out, out
    law = fmsim.theory.length_law((3, 200, 200))
    assert np.copysign(1.0, law.p_dead) == 1.0


def test_info_of_a_run_without_nets_prints_no_mean(tmp_path, capsys):
    path = tmp_path / "empty.h5"
    cfg = make_config(fmsim.FullyConnected((3, 4)), fmsim.Init(), 4096, 1, chunk_size=1024)

    def stop(_):
        raise KeyboardInterrupt
    try:
        fmsim.run_to_file(cfg, path, progress=stop)  # stopped after its first chunk
    except KeyboardInterrupt:
        pass
    import h5py

    with h5py.File(path, "r+") as f:  # as if stopped before it: counter and summary of no chunk
        f["chunks_done"][()] = 0
        f["summary/moments"][:] = 0.0
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no nets written yet" in out and "E[M_d]" not in out, out


def test_chunk_numbers_count_from_0_in_verify_and_in_write_errors():
    from fmsim.files.store import write_error

    msg = str(write_error("run.h5", OSError(28, "No space left on device"), "writing chunk 0 (chunks 0 to 9)"))
    assert "chunk 0 (chunks 0 to 9)" in msg


def test_report_refuses_before_its_first_experiment_without_mnist(tmp_path):
    """Offline (tests never touch the network) and without MNIST: one line, exit 2, and no experiment started."""
    empty = tmp_path / "no-mnist"
    empty.mkdir()
    out = tmp_path / "report"
    env = dict(os.environ, FMSIM_MNIST=str(empty), FMSIM_MNIST_URL="http://127.0.0.1:9/")
    r = subprocess.run([sys.executable, "-m", "fmsim.cli", "report", "--quick", "--quiet", "--out", str(out)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "MNIST" in r.stderr, r.stderr
    assert not (out / "fig1a_report.h5").exists()
