"""Files that analysis tools read directly: named dimensions for xarray/h5netcdf, tidy sweep tables."""

import numpy as np
import pytest

import fmsim
from fmsim import cli, theory
from fmsim.config import input_vector
from fmsim.running.simulate import make_config

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "sweep.h5"
    assert cli.main(["sweep", "--depths", "3,6", "--schemes", "he,lecun,he_uniform", "--nets", "3072",
                     "--chunk-size", "1024", "--record", "layers", "--quiet", "--out", str(path)]) == 0
    res = fmsim.Residual(6, (0.5, 0.5, 0.5), (), "linear")
    fmsim.run_to_file(make_config(res, fmsim.Init.scheme("he"), 2048, 3), path,
                      "resnet")
    return path


def test_plain_xarray_sees_named_dimensions_and_config_attributes(sweep_file):
    ds = xr.open_dataset(sweep_file, engine="h5netcdf", group="he/depth_3").load()
    ds.close()
    assert dict(ds.sizes) == {"net": 3072, "layer": 4}
    assert ds["log_lengths"].dims == ("net", "layer") and ds["final"].dims == ("net",)
    assert ds["log_final"].dims == ("net",)
    assert not any(str(d).startswith("phony_dim") for d in ds.dims)
    assert ds.attrs["scheme"] == "he" and ds.attrs["law"] == "gaussian" and ds.attrs["depth"] == 3
    np.testing.assert_array_equal(ds["widths"].values if "widths" in ds else ds.attrs["widths"], [3, 3, 3, 3])
    with xr.open_dataset(sweep_file, engine="h5netcdf", group="he/depth_3/summary") as summary:
        summary = summary.load()
    assert summary["moments"].dims == ("quantity", "moment")
    assert list(summary["moment"].values) == ["count", "mean", "M2", "log_count", "log_mean", "log_M2",
                                                "pivot"]
    with xr.open_datatree(sweep_file, engine="h5netcdf") as tree:
        for node in tree.subtree:
            assert not any(str(d).startswith("phony_dim") for d in node.dataset.dims), node.path
    res = fmsim.open(sweep_file, "he/depth_3")
    np.testing.assert_array_equal(ds["final"].values, res.final)


def test_open_dataset_equals_the_stored_run(sweep_file):
    ds = fmsim.open_dataset(sweep_file, "he/depth_6")
    res = fmsim.open(sweep_file, "he/depth_6")
    np.testing.assert_array_equal(ds["final"].values, res.final)
    np.testing.assert_array_equal(ds["lengths"].values, res.lengths)
    np.testing.assert_array_equal(ds["log_lengths"].values, res.log_lengths)
    np.testing.assert_array_equal(ds["log_final"].values, res.log_final)
    np.testing.assert_array_equal(ds["log_of_mean"].values, res.summary.log_of_mean)
    np.testing.assert_array_equal(ds["sem"].values, res.summary.sem)
    np.testing.assert_allclose(ds["exact_second_moment"].values, theory.gaussian_moments([6] * 7, 2, m0=res.m0),
                               rtol=1e-12)
    assert ds.attrs["n_nets"] == 3072 and ds["net"].values[-1] == 3071


def test_open_sweep_is_one_tidy_table_with_exact_columns(sweep_file):
    df = fmsim.open_sweep(sweep_file)
    assert len(df) == 4 + 7 + 4 + 7 + 4 + 7 + 4  # (run, layer) rows: three schemes at depths 3, 6, and the ResNet
    assert set(df["scheme"]) == {"he", "lecun", "he_uniform"}
    lecun = df[(df["run"] == "/lecun/depth_6")]
    np.testing.assert_allclose(lecun["exact_mean"], 0.5 ** np.arange(7) * lecun["mean"].iloc[0], rtol=1e-12)
    uni = df[(df["run"] == "/he_uniform/depth_3")]
    x = input_vector(fmsim.open(sweep_file, "he_uniform/depth_3").config)
    np.testing.assert_allclose(uni["exact_second_moment"], theory.second_moment(x, [3] * 4, 1.8), rtol=1e-12)
    resnet = df[df["run"] == "/resnet"]
    np.testing.assert_allclose(resnet["exact_mean"], theory.residual_mean_length((0.5,) * 3, m0=resnet["mean"].iloc[0]),
                               rtol=1e-12)
    # each row's simulation agrees with its exact mean within 5 s.e. (s.e. from the sample)
    rows = df[df["sem"] > 0]
    assert np.all(np.abs(rows["mean"] - rows["exact_mean"]) <= 5 * rows["sem"])
    ds = fmsim.open_sweep(sweep_file, as_xarray=True)
    assert ds["mean"].dims == ("run", "layer") and ds["scheme"].dims == ("run",)
    assert np.isnan(ds["mean"].sel(run="/he/depth_3", layer=6))  # shorter runs padded with nan


def test_pytorch_default_scheme_is_uniform_one_over_sqrt_fan_in(capsys):
    """nn.Linear's default: weights and biases U(+-1/sqrt(fan_in)), Var = 1/(3 fan_in)."""
    from fmsim.mlp import MLP

    mlp = MLP((784, 300, 10))
    theta = mlp.init_params(fmsim.Init.scheme("pytorch_default"), seed=4, net=0, dtype=np.float64)
    (w, b), _ = mlp.layers(theta)  # the first layer
    bound = 1 / np.sqrt(784)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    var, se = w.var(), w.var() * np.sqrt(0.8 / w.size)  # s.e. of the variance of a uniform sample (m4 = 1.8)
    assert abs(var - 1 / (3 * 784)) <= 5 * se
    assert b.shape == (300,) and np.abs(b).max() <= bound and np.abs(b).max() > 0.95 * bound
    var, se = b.var(), b.var() * np.sqrt(0.8 / b.size)
    assert abs(var - 1 / (3 * 784)) <= 5 * se
    weights_only = mlp.init_params(fmsim.Init.scheme("pytorch_default_weights"), seed=4, net=0, dtype=np.float64)
    (w0, b0), _ = mlp.layers(weights_only)
    np.testing.assert_array_equal(w0, w)  # the same weights; no bias
    assert not np.any(b0)
    assert cli.main(["schemes"]) == 0
    out = capsys.readouterr().out
    for name in fmsim.config.SCHEMES:
        assert name in out
    assert "pytorch_default          uniform" in out
