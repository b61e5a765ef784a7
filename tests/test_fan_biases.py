"""Biases scaled by fan-in (``bias_c``), per-layer bias variances, and the frameworks' default schemes.

Monte Carlo against closed forms: fixed seeds, tolerance 5 standard errors computed from the sample
(``assert_within_se``). Kernels against the independent NumPy reference (``fmsim.reference``): the same
draws, so equal to float rounding.
"""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import assert_within_se
from fmsim.integrity import verify_run
from fmsim.reference import reference_conv_lengths, reference_lengths, reference_residual_lengths

import fmsim
from fmsim import theory
from fmsim.config import SCHEME_BIAS_C, RunConfig

LAWS = ["gaussian", "uniform", "rademacher", "laplace", "truncated_normal"]
WIDTHS = (12, 5, 17, 9, 4)  # unequal: a fan-scaled bias differs layer by layer
OLD_FILE = Path(__file__).parent / "data" / "fmsim-0.11-pytorch_default.h5"


# ----------------------------------------------------------------- what each layer gets

def test_layer_bias_var_divides_by_each_layers_fan_in():
    fc = fmsim.FullyConnected(WIDTHS)
    np.testing.assert_array_equal(fmsim.Init("uniform", 1 / 3, bias_c=1 / 3).layer_bias_var(fc),
                                  (1 / 3) / np.array(WIDTHS[:-1], dtype=float))
    per_layer = fmsim.Init("gaussian", 2.0, bias_c=(1.0, 2.0, 0.0, 4.0)).layer_bias_var(fc)
    np.testing.assert_array_equal(per_layer, [1 / 12, 2 / 5, 0.0, 4 / 9])
    np.testing.assert_array_equal(fmsim.Init("gaussian", 2.0, bias_var=(0.1, 0.2, 0.3, 0.4)).layer_bias_var(fc),
                                  [0.1, 0.2, 0.3, 0.4])
    conv = fmsim.Conv((3, 4, 2), (6, 5), 3)  # fan-in C_in k^2: 27, 36
    np.testing.assert_array_equal(fmsim.Init("gaussian", 2.0, bias_c=1.0).layer_bias_var(conv), [1 / 27, 1 / 36])
    res = fmsim.Residual(7, (0.5, 0.5), (3, 5))  # hidden fan-ins 7, 3; output fan-in 5
    np.testing.assert_array_equal(fmsim.Init("gaussian", 2.0, bias_c=(1.0, 2.0, 3.0)).layer_bias_var(res),
                                  [1 / 7, 2 / 3, 3 / 5])


@pytest.mark.parametrize("kwargs,match", [
    ({"bias_c": -0.1}, "bias_c"),
    ({"bias_c": (0.1, float("nan"))}, "bias_c"),
    ({"bias_c": 0.1, "bias_var": 0.1}, "not both"),
    ({"bias_var": (0.1, -1.0)}, "bias_var"),
])
def test_bad_bias_values_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fmsim.Init("gaussian", 2.0, **kwargs)


def test_a_per_layer_bias_of_the_wrong_length_is_refused_before_work():
    with pytest.raises(ValueError, match="bias_c has 2 values, but there are 4 layers"):
        fmsim.simulate(fmsim.FullyConnected(WIDTHS), fmsim.Init(bias_c=(1.0, 2.0)), 1024, seed=0)
    with pytest.raises(ValueError, match="bias_var has 2 values, but there are 3 layers of a residual module"):
        fmsim.simulate(fmsim.Residual(6, (0.5,), (4, 4)), fmsim.Init(bias_var=(0.1, 0.2)), 1024, seed=0)


def test_schemes_mean_what_the_frameworks_build():
    pt = fmsim.Init.scheme("pytorch_default")  # nn.Linear: weights and biases U(+-1/sqrt(fan_in))
    assert (pt.law, pt.c, pt.fan, pt.bias_c, pt.bias_var) == ("uniform", 1 / 3, "in", 1 / 3, 0.0)
    weights_only = fmsim.Init.scheme("pytorch_default_weights")
    assert (weights_only.law, weights_only.c, weights_only.has_bias) == ("uniform", 1 / 3, False)
    keras = fmsim.Init.scheme("keras_default")  # glorot_uniform: U(+-sqrt(6 / (fan_in + fan_out))), zero bias
    assert (keras.law, keras.c, keras.fan, keras.has_bias) == ("uniform", 1.0, "avg", False)
    flax = fmsim.Init.scheme("flax_default")  # lecun_normal: truncated normal, variance 1/fan_in, zero bias
    assert (flax.law, flax.c, flax.fan, flax.has_bias) == ("truncated_normal", 1.0, "in", False)
    assert set(SCHEME_BIAS_C) == {"pytorch_default"}
    with pytest.raises(ValueError, match="defines its biases"):
        fmsim.Init.scheme("pytorch_default", bias_var=0.1)


def test_uniform_law_bounds_equal_pytorchs_bounds():
    # U(+-a) has variance a^2/3: fmsim's uniform weights of variance c/n and biases of variance bias_c/n
    # with c = bias_c = 1/3 have the bound a = 1/sqrt(n) that nn.Linear's reset_parameters uses.
    init = fmsim.Init.scheme("pytorch_default")
    arch = fmsim.FullyConnected(WIDTHS)
    fan = np.array(WIDTHS[:-1], dtype=float)
    np.testing.assert_allclose(np.sqrt(3 * init.layer_c(arch) / fan), 1 / np.sqrt(fan), rtol=1e-15)
    np.testing.assert_allclose(np.sqrt(3 * init.layer_bias_var(arch)), 1 / np.sqrt(fan), rtol=1e-15)


# ------------------------------------------------------------ closed forms: E[M_j]

@pytest.mark.parametrize("law", LAWS)
def test_fully_connected_mean_with_fan_scaled_biases(law):
    arch = fmsim.FullyConnected(WIDTHS)
    init = fmsim.Init(law, c=(1 / 3, 1.0, 2.0, 0.5), bias_c=(1 / 3, 2.0, 0.5, 3.0))
    res = fmsim.simulate(arch, init, 60_000, seed=31, method="full")
    truth = theory.mean_length(arch.widths, init.layer_c(arch), m0=res.m0, bias_var=init.layer_bias_var(arch))
    assert_within_se(res.summary.mean[1:], truth[1:], res.summary.sem[1:], what=f"E[M_j] {law}")


@pytest.mark.parametrize("scheme", ["pytorch_default", "keras_default", "flax_default", "pytorch_default_weights"])
def test_scheme_means_match_the_closed_form(scheme):
    arch = fmsim.FullyConnected(WIDTHS)
    init = fmsim.Init.scheme(scheme)
    res = fmsim.simulate(arch, init, 60_000, seed=32, method="full")
    truth = theory.mean_length(arch.widths, init.layer_c(arch), m0=res.m0, bias_var=init.layer_bias_var(arch))
    assert_within_se(res.summary.mean[1:], truth[1:], res.summary.sem[1:], what=f"E[M_j] {scheme}")


def test_exact_sampler_takes_fan_scaled_biases():
    arch = fmsim.FullyConnected((30, 8, 25, 6, 40, 10))
    init = fmsim.Init("gaussian", c=1.0, bias_c=(1.0, 0.5, 2.0, 0.0, 1.0))
    res = fmsim.simulate(arch, init, 200_000, seed=33, method="exact")
    assert res.config.method == "exact"
    truth = theory.mean_length(arch.widths, 1.0, m0=res.m0, bias_var=init.layer_bias_var(arch))
    assert_within_se(res.summary.mean[1:], truth[1:], res.summary.sem[1:], what="E[M_j] exact sampler")


@pytest.mark.parametrize("law", ["gaussian", "uniform", "laplace"])
def test_residual_mean_with_fan_scaled_biases(law):
    # Linear ending: E[M_l] = E[M_{l-1}] + eta^2 (c_out R + sigma_out^2), R the last hidden layer's mean.
    arch = fmsim.Residual(9, (0.7, 0.4, 1.0), (5, 3), ending="linear", c_out=1.5)
    init = fmsim.Init(law, c=1.0, bias_c=(1.0, 2.0, 0.5))
    res = fmsim.simulate(arch, init, 60_000, seed=34, method="full")
    truth = theory.residual_mean_length(arch.etas, arch.module_widths, c=1.0, c_out=1.5, m0=res.m0,
                                        bias_var=init.layer_bias_var(arch))
    assert_within_se(res.summary.mean[1:], truth[1:], res.summary.sem[1:], what=f"E[M_l] residual {law}")


@pytest.mark.parametrize("spatial", [(7,), (5, 4)])
@pytest.mark.parametrize("law", ["gaussian", "uniform"])
def test_conv_mean_with_fan_scaled_biases(law, spatial):
    # Periodic padding: every position sees C_in k^dim inputs, so E[M_j] follows the fully connected recursion.
    arch = fmsim.Conv((2, 5, 3, 4), spatial, 3)
    init = fmsim.Init(law, c=(1 / 3, 1.0, 2.0), bias_c=1 / 3)
    res = fmsim.simulate(arch, init, 40_000, seed=35, method="full")
    truth = theory.mean_length(arch.channels, init.layer_c(arch), m0=res.m0, bias_var=init.layer_bias_var(arch))
    assert_within_se(res.summary.mean[1:], truth[1:], res.summary.sem[1:], what=f"E[M_j] conv {law} {spatial}")


def test_pytorch_default_settles_at_its_fixed_point():
    # E[M_j] = (E[M_{j-1}] + 1/n) / 6 at constant width n: M* = 1/(5n), where the weights alone vanish like 6^-j.
    n, depth = 16, 12
    arch = fmsim.FullyConnected.constant(depth=depth, width=n)
    truth = theory.mean_length(arch.widths, 1 / 3, bias_var=1 / (3 * n))
    fixed = theory.bias_fixed_point(1 / 3, 1 / (3 * n))
    assert fixed == pytest.approx(1 / (5 * n), rel=1e-15)
    # approached geometrically at the rate c/2 = 1/6: E[M_j] - M* = (M_0 - M*) 6^-j
    np.testing.assert_allclose(truth, fixed + (1 - fixed) * 6.0 ** -np.arange(depth + 1), rtol=1e-13)
    res = fmsim.simulate(arch, fmsim.Init.scheme("pytorch_default"), 60_000, seed=36, method="full")
    assert_within_se(res.summary.mean[1:], theory.mean_length(arch.widths, 1 / 3, m0=res.m0,
                                                              bias_var=1 / (3 * n))[1:],
                     res.summary.sem[1:], what="E[M_j] pytorch_default")
    assert theory.bias_fixed_point(2.0, 0.1) == np.inf


# ------------------------------------------------------------ NumPy reference

@pytest.mark.parametrize("scheme", ["pytorch_default", "keras_default", "flax_default"])
def test_schemes_equal_numpy_reference_on_unequal_widths(scheme):
    res = fmsim.simulate(fmsim.FullyConnected(WIDTHS), fmsim.Init.scheme(scheme), 1024, seed=37, method="full",
                         record="layers")
    nets = [0, 1, 500, 1023]
    np.testing.assert_allclose(res.lengths[nets], reference_lengths(res.config, nets), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("scheme", ["pytorch_default", "flax_default"])
@pytest.mark.parametrize("spatial", [(7,), (5, 4)])
def test_schemes_equal_numpy_reference_on_conv_nets(scheme, spatial):
    res = fmsim.simulate(fmsim.Conv((2, 5, 3), spatial, 3), fmsim.Init.scheme(scheme), 1024, seed=38,
                         method="full", record="layers")
    nets = [0, 3, 1023]
    np.testing.assert_allclose(res.lengths[nets], reference_conv_lengths(res.config, nets), rtol=1e-12, atol=1e-300)


def test_residual_per_layer_fan_scaled_biases_equal_numpy_reference():
    arch = fmsim.Residual(6, (0.5, 0.9), (4, 3), ending="relu")
    res = fmsim.simulate(arch, fmsim.Init("uniform", 1 / 3, bias_c=(1 / 3, 1.0, 2.0)), 1024, seed=39,
                         method="full", record="layers")
    nets = [0, 2, 1023]
    np.testing.assert_allclose(res.lengths[nets], reference_residual_lengths(res.config, nets), rtol=1e-12,
                               atol=1e-300)


def test_bias_c_and_the_same_absolute_bias_var_draw_the_same_bits():
    # bias_c / fan_in and bias_var = that value, layer by layer, are one net: equal bits.
    arch = fmsim.FullyConnected(WIDTHS)
    rel = fmsim.Init("laplace", 2.0, bias_c=(1.0, 2.0, 3.0, 4.0))
    absolute = fmsim.Init("laplace", 2.0, bias_var=tuple(rel.layer_bias_var(arch)))
    a = fmsim.simulate(arch, rel, 1024, seed=40, record="layers")
    b = fmsim.simulate(arch, absolute, 1024, seed=40, record="layers")
    np.testing.assert_array_equal(a.lengths, b.lengths)


# ------------------------------------------------------------ refusals

def test_the_exact_law_refuses_biased_nets(capsys):
    # fmsim law gives the law of M_d of nets without biases (a product of independent ratios); biased nets,
    # PyTorch's default among them, are refused with one line naming what to change.
    from fmsim import cli

    for argv in (["law", "--depth", "3", "--bias-var", "0.1"], ["law", "--depth", "3", "--scheme", "pytorch_default"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("--bias-var" in err or "uniform" in err), err


def test_orthogonal_weights_refuse_fan_scaled_biases():
    with pytest.raises(ValueError, match="bias_c"):
        fmsim.Init("orthogonal", 2.0, bias_c=0.5)


# ------------------------------------------------------------ files

def test_bias_c_is_recorded_and_read_back(tmp_path):
    path = tmp_path / "pt.h5"
    config = RunConfig(fmsim.FullyConnected(WIDTHS), fmsim.Init.scheme("pytorch_default"), 1024, 5)
    fmsim.store.run_to_file(config, path)
    back = fmsim.store.open_result(path)
    assert back.config.init == config.init and back.config.init.bias_c == pytest.approx(1 / 3)
    with h5py.File(path) as f:
        assert f.attrs["scheme"] == "pytorch_default" and f.attrs["bias_c"] == pytest.approx(1 / 3)
        np.testing.assert_array_equal(f.attrs["layer_bias_var"], (1 / 3) / np.array(WIDTHS[:-1], dtype=float))


def test_old_pytorch_default_files_keep_their_old_meaning(tmp_path):
    # Written by fmsim 0.11.0, whose pytorch_default drew the weights only: "finished" (2048 nets) and
    # "unfinished" (2 of 3 chunks).
    path = tmp_path / "old.h5"
    shutil.copy(OLD_FILE, path)
    finished = fmsim.store.open_result(path, "/finished")
    assert finished.config.init.name == "pytorch_default_weights" and not finished.config.init.has_bias
    new = fmsim.store.run_to_file(RunConfig(finished.config.arch, fmsim.Init.scheme("pytorch_default_weights"), 2048,
                                            11, method="full", record="layers", chunk_size=1024), tmp_path / "new.h5")
    np.testing.assert_array_equal(finished.final, new.final)  # (M_d in float64; the file's log M_j are float32)
    np.testing.assert_array_equal(finished.lengths, new.lengths)

    # Resumed under the name that now means what it meant then; the old one is refused, and told which to use.
    old_meaning = RunConfig(finished.config.arch, fmsim.Init.scheme("pytorch_default_weights"), 3072, 11,
                            method="full", record="layers", chunk_size=1024)
    new_meaning = RunConfig(finished.config.arch, fmsim.Init.scheme("pytorch_default"), 3072, 11,
                            method="full", record="layers", chunk_size=1024)
    with pytest.raises(fmsim.store.StoreError, match="pytorch_default_weights"):
        fmsim.store.run_to_file(new_meaning, path, "/unfinished")
    resumed = fmsim.store.run_to_file(old_meaning, path, "/unfinished")
    whole = fmsim.store.run_to_file(old_meaning, tmp_path / "whole.h5")
    np.testing.assert_array_equal(resumed.lengths, whole.lengths)
    with h5py.File(path) as f:  # every chunk checks out; the stored configuration itself is left as written
        assert verify_run(f["unfinished"]).ok and verify_run(f["finished"]).ok
        assert json.loads(f["unfinished"].attrs["config"])["init"]["name"] == "pytorch_default"


# ------------------------------------------------------------ PyTorch's own modules

def _torch_lengths(torch, layers, x, nets):
    out = np.empty((nets, len(layers) + 1))
    for i in range(nets):
        z = x
        out[i, 0] = float((z**2).mean())
        for j, make in enumerate(layers, start=1):
            z = torch.relu(make()(z))
            out[i, j] = float((z**2).mean())
    return out


def test_pytorch_default_is_what_nn_linear_builds():
    # E[M_j] of nets built by torch.nn.Linear itself (fixed seed), against the closed form for fmsim's
    # pytorch_default, at 5 standard errors of the torch sample; the weight-only scheme is far off.
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x = torch.ones(WIDTHS[0], dtype=torch.float64)
    layers = [lambda a=a, b=b: torch.nn.Linear(a, b, dtype=torch.float64) for a, b in zip(WIDTHS, WIDTHS[1:])]
    with torch.no_grad():
        m = _torch_lengths(torch, layers, x, 4000)
    arch, init = fmsim.FullyConnected(WIDTHS), fmsim.Init.scheme("pytorch_default")
    truth = theory.mean_length(WIDTHS, init.layer_c(arch), bias_var=init.layer_bias_var(arch))
    sem = m.std(axis=0, ddof=1) / np.sqrt(len(m))
    assert_within_se(m.mean(axis=0)[1:], truth[1:], sem[1:], what="E[M_j] of torch.nn.Linear nets")
    weights_only = theory.mean_length(WIDTHS, init.layer_c(arch))
    assert m.mean(axis=0)[-1] > 5 * weights_only[-1]


def test_pytorch_default_is_what_nn_conv2d_builds():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    channels, spatial, k = (2, 5, 3), (5, 4), 3
    x = torch.ones((1, channels[0]) + spatial, dtype=torch.float64)
    layers = [lambda a=a, b=b: torch.nn.Conv2d(a, b, k, padding=k // 2, padding_mode="circular",
                                               dtype=torch.float64) for a, b in zip(channels, channels[1:])]
    with torch.no_grad():
        m = _torch_lengths(torch, layers, x, 3000)
    arch, init = fmsim.Conv(channels, spatial, k), fmsim.Init.scheme("pytorch_default")
    truth = theory.mean_length(channels, init.layer_c(arch), bias_var=init.layer_bias_var(arch))
    sem = m.std(axis=0, ddof=1) / np.sqrt(len(m))
    assert_within_se(m.mean(axis=0)[1:], truth[1:], sem[1:], what="E[M_j] of torch.nn.Conv2d nets")
