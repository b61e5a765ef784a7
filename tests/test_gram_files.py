"""Runs that carry vectors, in files: the same bits as in memory, named dimensions for xarray and netCDF readers,
resumed bit for bit, every byte checked, and the command line's --pair-angle and --gradient."""

import shutil

import h5py
import numpy as np
import pytest
from fmsim.store import run_to_file
from test_storage_edges import _flip, _raw_span

import fmsim
from fmsim import cli
from fmsim.running.simulate import make_config

ARCH = fmsim.FullyConnected([6, 9, 4, 7, 5])
HE = fmsim.Init.scheme("he")
X = np.array([1.0, -0.5, 2.0, 0.4, 0.3, 1.0])
U = np.array([[0.0, 1.0, 0.0, 2.0, 0.0, -1.0], [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
CARRIED = ("gram", "gram_layers", "jvp", "jvp_layers", "jacobian_entries")
CASES = {
    "tangents_full": dict(x=X, tangents=U, method="full", record="layers"),
    "inputs_exact": dict(inputs=np.stack([X, U[0], U[1]]), record="layers"),
    "tangents_exact": dict(x=X, tangents=U),
}


def _config(case, n_nets=2500):
    return make_config(ARCH, HE, n_nets, 7, chunk_size=1024, **CASES[case])


@pytest.fixture(scope="module")
def carried_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("carried") / "carried.h5"
    for case in CASES:
        run_to_file(_config(case), path, case)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_a_file_holds_the_bits_of_the_run_in_memory(carried_file, case):
    stored = fmsim.open(carried_file, case)
    memory = fmsim.simulate(ARCH, HE, 2500, 7, chunk_size=1024, **CASES[case])
    held = [name for name in CARRIED if getattr(memory, name) is not None]
    assert held and held == [name for name in CARRIED if getattr(stored, name) is not None]
    for name in held:
        np.testing.assert_array_equal(getattr(stored, name), getattr(memory, name), err_msg=name)
    np.testing.assert_array_equal(stored.log_final, memory.log_final)


def test_xarray_and_netcdf_readers_see_named_dimensions(carried_file):
    ds = fmsim.open_dataset(carried_file, "inputs_exact")
    assert ds["gram"].dims == ("net", "input_a", "input_b")
    assert ds["gram_layers"].dims == ("net", "layer", "input_a", "input_b")
    np.testing.assert_array_equal(ds["input_a"], [0, 1, 2])
    ds = fmsim.open_dataset(carried_file, "tangents_full")
    assert ds["jvp_layers"].dims == ("net", "layer", "tangent")
    assert ds["jacobian_entries"].dims == ("net", "tangent")
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    with xr.open_dataset(carried_file, engine="h5netcdf", group="tangents_full", phony_dims="access") as raw:
        assert raw["jvp"].dims == ("net", "tangent")
        assert raw["jvp_layers"].dims == ("net", "layer", "tangent")
        np.testing.assert_array_equal(raw["jvp"].values, fmsim.open(carried_file, "tangents_full").jvp)


@pytest.mark.parametrize("case", ["tangents_full", "inputs_exact"])
def test_an_interrupted_run_resumes_to_the_same_bits(tmp_path, case):
    whole, part = tmp_path / "whole.h5", tmp_path / "part.h5"
    run_to_file(_config(case), whole)
    calls = []

    def stop_after_one(n):
        calls.append(n)
        if len(calls) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_to_file(_config(case), part, progress=stop_after_one)
    with h5py.File(part, "r") as f:
        assert f["chunks_done"][()] == 1
    run_to_file(_config(case), part)
    a, b = fmsim.open(whole), fmsim.open(part)
    for name in CARRIED:
        if getattr(a, name) is not None:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("group, name", [
    ("inputs_exact", "gram"), ("inputs_exact", "gram_layers"), ("inputs_exact", "input_a"),
    ("inputs_exact", "input_b"), ("tangents_full", "jvp"), ("tangents_full", "jvp_layers"),
    ("tangents_full", "jacobian_entries"), ("tangents_full", "tangent"),
])
def test_a_flipped_byte_in_a_carried_dataset_is_caught(carried_file, tmp_path, capsys, group, name):
    path = tmp_path / "flipped.h5"
    shutil.copy(carried_file, path)
    offset, size = _raw_span(path, f"{group}/{name}")
    _flip(path, offset + size // 2)
    assert cli.main(["verify", str(path), "--group", f"/{group}"]) == 2
    assert name in capsys.readouterr().err
    with pytest.raises(fmsim.store.DamagedFileError):
        fmsim.open(path, group)
    assert fmsim.open(path, "tangents_exact").jvp is not None  # the other runs of the file stay readable


def test_the_command_line_carries_a_pair_and_a_gradient(tmp_path, capsys):
    out = str(tmp_path / "cli.h5")
    base = ["simulate", "--widths", "6,9,4,7,5", "--nets", "2048", "--chunk-size", "1024", "--out", out]
    assert cli.main([*base, "--pair-angle", "60", "--group", "pair"]) == 0
    assert "cosine of the pair at layer d" in capsys.readouterr().out
    assert cli.main([*base, "--gradient", "--method", "full", "--group", "grad"]) == 0
    assert "E[(J e_0)_0^2]" in capsys.readouterr().out
    # Two inputs of M_0 = 1 at 60 degrees: sqrt(n_0) e_0 and sqrt(n_0) (cos 60 e_0 + sin 60 e_1).
    t = np.deg2rad(60.0)
    inputs = np.sqrt(6) * np.array([[1, 0, 0, 0, 0, 0], [np.cos(t), np.sin(t), 0, 0, 0, 0]])
    pair = fmsim.simulate(ARCH, HE, 2048, 0, chunk_size=1024, inputs=inputs, record="layers")
    np.testing.assert_allclose(pair.gram_layers[0, 0], [[1.0, 0.5], [0.5, 1.0]], atol=1e-12)
    np.testing.assert_array_equal(fmsim.open(out, "pair").gram, pair.gram)
    grad = fmsim.open(out, "grad")
    assert grad.jvp.shape == (2048, 1) and grad.jacobian_entries.shape == (2048, 1)


@pytest.mark.parametrize("extra, flag", [
    (["--channels", "2,3", "--spatial", "4", "--pair-angle", "60"], "--pair-angle"),
    (["--widths", "6,9", "--gradient", "--method", "exact_first"], "--gradient"),
    (["--widths", "6,9", "--gradient", "--scheme", "orthogonal", "--method", "full"], "--gradient"),
    (["--widths", "6,9", "--gradient", "--method", "exact", "--law", "uniform"], "--gradient"),
    (["--widths", "6,9", "--pair-angle", "200"], "--pair-angle"),
    (["--widths", "6,9", "--pair-angle", "30", "--gradient"], "--pair-angle"),
])
def test_the_command_line_refuses_what_it_cannot_carry_by_the_flag(tmp_path, capsys, extra, flag):
    out = tmp_path / "no.h5"
    assert cli.main(["simulate", "--nets", "1024", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert flag in err and err.count("\n") == 1, err
    assert not out.exists()
