"""Residual and convolutional nets: kernels vs plain NumPy, exact sampler vs full, closed forms."""

import numpy as np
import pytest
from conftest import assert_within_se
from fmsim.reference import conv_weights, reference_conv_lengths, reference_residual_lengths
from scipy import stats

import fmsim
from fmsim import FullyConnected, Init, simulate, theory
from fmsim.config import Conv, Residual, eta_schedule, input_vector
from fmsim.running.simulate import make_config


# ------------------------------------------------------------------ residual
@pytest.mark.parametrize("module_widths,ending,law,bias", [
    ((), "linear", "gaussian", 0.0), ((5,), "linear", "uniform", 0.0), ((4, 7), "relu", "gaussian", 0.2),
    ((6,), "relu", "laplace", 0.0),
])
def test_residual_kernel_equals_numpy_reference(module_widths, ending, law, bias):
    arch = Residual(6, (0.5, 1.0, 0.3), module_widths, ending)
    init = Init(law, 2.0, bias_var=bias)
    res = simulate(arch, init, n_nets=5, seed=3, method="full", record="layers")
    np.testing.assert_allclose(res.lengths, reference_residual_lengths(res.config, range(5)), rtol=1e-12)


def test_residual_mean_matches_closed_form_any_law():
    for law, schedule in (("uniform", "1/l"), ("rademacher", "1/sqrt(L)")):
        arch = Residual.scheduled(12, 8, schedule, 1.0, module_widths=(10,))
        res = simulate(arch, Init(law, 2.0), n_nets=20_000, seed=5, method="full")
        truth = theory.residual_mean_length(arch.etas, arch.module_widths, m0=res.m0)
        assert_within_se(res.summary.mean[1:], truth[1:], res.summary.sem[1:], what=f"E[M_l] {law}")


def test_residual_second_moment_matches_exact_recursion():
    arch = Residual(8, eta_schedule("1/l", 6, 1.0), module_widths=(5, 9), c_out=1.5)
    init = Init("gaussian", 2.5)
    for method, n in (("exact", 400_000), ("full", 20_000)):
        res = simulate(arch, init, n_nets=n, seed=8, method=method, record="layers")
        m2 = res.lengths[:, 1:] ** 2
        truth = theory.residual_second_moment(8, arch.etas, arch.module_widths, c=2.5, c_out=1.5, m0=res.m0)
        # 5 s.e. of the mean of M_l^2, s.e. from the sample
        assert_within_se(m2.mean(0), truth[1:], m2.std(0, ddof=1) / np.sqrt(n), what=f"E[M_l^2] {method}")
        mean = theory.residual_mean_length(arch.etas, arch.module_widths, c=2.5, c_out=1.5, m0=res.m0)
        assert_within_se(res.summary.mean[1:], mean[1:], res.summary.sem[1:], what=f"E[M_l] {method}")


@pytest.mark.parametrize("n,module_widths,ending,bias_var", [
    (1, (), "linear", 0.0), (5, (), "linear", 0.0), (6, (3,), "linear", 0.0), (10, (1, 12), "linear", 0.0),
    (6, (3,), "linear", 0.3), (1, (), "relu", 0.0), (5, (), "relu", 0.0), (6, (3,), "relu", 0.0),
    (10, (1, 12), "relu", 0.0), (7, (4,), "relu", 0.2),
])
def test_residual_exact_sampler_agrees_with_full_in_law(n, module_widths, ending, bias_var):
    arch = Residual(n, (0.9, 0.4, 1.3), module_widths, ending)
    init = Init("gaussian", 2.0, bias_var=bias_var)
    x = np.linspace(-1.0, 1.5, n)  # the same input for both seeds (dead modules leave atoms at M_0)
    full = simulate(arch, init, 20_000, seed=1, method="full", record="layers", x=x).lengths
    exact = simulate(arch, init, 20_000, seed=2, method="exact", record="layers", x=x).lengths
    for l in range(1, arch.depth + 1):  # noqa: E741
        assert stats.ks_2samp(full[:, l], exact[:, l]).pvalue > 1e-4, (n, module_widths, l)


def test_relu_ending_growth_is_between_first_and_second_order_bounds():
    """hanin_rolnick.md 4.6(a): (1 + eta^2) <= E[M_1]/M_0 <= (1 + eta)^2 for a nonnegative stream."""
    n = 10
    x = np.abs(np.linspace(-1, 2, n)) + 0.1
    for eta in (0.2, 0.5, 1.0):
        res = simulate(Residual(n, (eta,), (n,), "relu"), Init.scheme("he"), 40_000, seed=4, x=x)
        ratio, se = res.summary.mean[1] / res.m0, res.summary.sem[1] / res.m0
        assert ratio > 1 + eta**2 + 5 * se and ratio < (1 + eta) ** 2 - 5 * se, (eta, ratio)


def test_residual_results_do_not_depend_on_chunk_size():
    arch = Residual(7, (0.5, 0.5), (5,), "relu")
    a = simulate(arch, Init("uniform", 2.0), 3000, seed=9, chunk_size=1024, record="layers")
    b = simulate(arch, Init("uniform", 2.0), 3000, seed=9, chunk_size=4096, record="layers")
    assert np.array_equal(a.lengths, b.lengths)


def test_residual_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="etas must be >= 0"):
        Residual(4, (0.5, -1.0))
    with pytest.raises(ValueError, match="ending"):
        Residual(4, (0.5,), ending="tanh")
    with pytest.raises(ValueError, match=r"module_widths\[0\]"):
        Residual(4, (0.5,), (0,))
    with pytest.raises(ValueError, match="schedule"):
        eta_schedule("linear", 4)
    with pytest.raises(ValueError, match="exact"):
        make_config(Residual(4, (0.5,), ending="relu"), Init("uniform", 2.0), 10, 1, method="exact")
    with pytest.raises(ValueError, match="one value"):
        make_config(Residual(4, (0.5,)), Init(c=(2.0,)), 10, 1)


# ---------------------------------------------------------------- conv nets
@pytest.mark.parametrize("channels,spatial,kernel,law,bias", [
    ((2, 3, 4), (7,), 3, "gaussian", 0.0), ((3, 2, 2), (5, 4), 3, "uniform", 0.1),
    ((1, 4, 3), (6, 6), 2, "laplace", 0.0), ((2, 3), (4,), 4, "rademacher", 0.0),
])
def test_conv_kernel_equals_numpy_reference(channels, spatial, kernel, law, bias):
    arch = Conv(channels, spatial, kernel)
    res = simulate(arch, Init(law, 2.0, bias_var=bias), n_nets=4, seed=2, record="layers")
    np.testing.assert_allclose(res.lengths, reference_conv_lengths(res.config, range(4)), rtol=1e-12)


@pytest.mark.parametrize("spatial", [(5,), (3, 4)])
def test_constant_input_conv_is_the_fc_net_with_summed_taps(spatial):
    """A spatially constant input makes every position the FC net with weights sum_taps W (exact)."""
    channels = (3, 5, 4, 6)
    arch = Conv(channels, spatial, 3)
    P = int(np.prod(spatial))
    xc = np.array([0.3, -1.2, 0.8])
    x = np.repeat(xc, P)
    res = simulate(arch, Init.scheme("he"), n_nets=6, seed=11, x=x, record="layers")
    for net in range(6):
        z, m = xc, [np.mean(xc**2)]
        for j in range(1, arch.depth + 1):
            w = conv_weights(res.config, j, net).sum(axis=(2, 3))  # (C_j, C_{j-1})
            z = np.maximum(np.sqrt(2.0 / arch.fan_in(j)) * (w @ z), 0.0)
            m.append(np.mean(z**2))
        np.testing.assert_allclose(res.lengths[net], m, rtol=1e-12)


def test_constant_input_conv_has_the_fc_law():
    """In law: Gaussian taps sum to a Gaussian of variance c/C_in, so M_d ~ FC exact sampler (KS), and
    E[M_d^2] = M_0^2 prod (c^2/4)(1 + 5/C_j) (5 s.e.)."""
    channels, spatial = (2, 4, 3, 5), (4,)
    x = np.repeat([1.0, -0.5], 4)
    conv = simulate(Conv(channels, spatial, 3), Init.scheme("he"), 30_000, seed=1, x=x, record="layers").lengths
    fc = simulate(FullyConnected(channels), Init.scheme("he"), 30_000, seed=2, method="exact",
                  x=np.array([1.0, -0.5]), record="layers").lengths
    for j in range(1, 4):
        assert stats.ks_2samp(conv[:, j], fc[:, j]).pvalue > 1e-4
    m0 = np.mean(x**2)
    truth = theory.conv_second_moment_bounds(channels, 4, m0=m0)[1][-1]
    sq = conv[:, -1] ** 2
    assert_within_se(sq.mean(), truth, sq.std(ddof=1) / np.sqrt(sq.size), what="E[M_d^2], constant input")


@pytest.mark.parametrize("arch,law", [(Conv((3, 6, 6, 6), (8,), 3), "gaussian"),
                                      (Conv((2, 4, 4), (5, 5), 3), "uniform"),
                                      (Conv((2, 5, 5, 5), (6,), 2), "rademacher")])
def test_conv_mean_is_preserved_under_he(arch, law):
    res = simulate(arch, Init(law, 2.0), 20_000, seed=6)
    assert_within_se(res.summary.mean[1:], res.m0, res.summary.sem[1:], what=f"E[M_j] conv {law}")


def test_conv_second_moment_lies_between_the_bounds():
    """(c^2/4)(1 + 5/(C P)) <= E[M_j^2]/E[M_{j-1}^2] <= (c^2/4)(1 + 5/C) for j >= 2 (nonnegative inputs)."""
    channels, P = (2, 3, 3, 3), 6
    res = simulate(Conv(channels, (P,), 3), Init.scheme("he"), 100_000, seed=12, record="layers")
    sq = res.lengths**2
    lo, up = theory.conv_second_moment_bounds(channels, P)
    for j in range(2, 4):
        # ratio of means; s.e. by the delta method from the sample covariance
        a, b = sq[:, j], sq[:, j - 1]
        r = a.mean() / b.mean()
        cov = np.cov(a, b) / a.size
        ma, mb = a.mean(), b.mean()
        se = abs(r) * np.sqrt(cov[0, 0] / ma**2 + cov[1, 1] / mb**2 - 2 * cov[0, 1] / (ma * mb))
        assert lo[j] / lo[j - 1] - 5 * se <= r <= up[j] / up[j - 1] + 5 * se, (j, r, se)


def test_conv_bad_input():
    with pytest.raises(ValueError, match="kernel must be in"):
        Conv((2, 3), (4,), 5)
    with pytest.raises(ValueError, match="spatial"):
        Conv((2, 3), (4, 4, 4), 3)
    with pytest.raises(ValueError, match=r"x must have shape \(8,\)"):
        make_config(Conv((2, 3), (4,), 3), Init.scheme("he"), 10, 1, x=np.ones(4))
    with pytest.raises(ValueError, match="fan must be 'in'"):
        make_config(Conv((2, 3), (4,), 3), Init.scheme("glorot"), 10, 1)


def test_residual_and_conv_runs_round_trip_through_hdf5(tmp_path):
    for i, arch in enumerate((Residual(5, (0.5, 0.7), (4,), "relu"), Conv((2, 3, 3), (3, 3), 3))):
        cfg = make_config(arch, Init.scheme("he"), 2048, 4, record="layers", chunk_size=1024)
        fmsim.run_to_file(cfg, tmp_path / "r.h5", f"run{i}")
        back = fmsim.open(tmp_path / "r.h5", f"run{i}")
        mem = simulate(arch, Init.scheme("he"), 2048, 4, record="layers")
        assert back.config == cfg
        np.testing.assert_array_equal(back.final, mem.final)
        np.testing.assert_array_equal(back.log_lengths, mem.log_lengths.astype(np.float32))
    assert input_vector(cfg).shape == (18,)


@pytest.mark.parametrize("name,files,groups", [
    ("resnet_scaling", ("resnet_scaling.h5", "resnet_scaling.png"), 18),
    ("fm2_profiles", ("fm2_profiles.h5", "fm2_profiles.png"), 40),  # He and orthogonal: 2 x 20
])
def test_issue6_experiments_quick(tmp_path, name, files, groups):
    import importlib

    mod = importlib.import_module(f"fmsim.experiments.{name}")
    mod.main(["--quick", "--quiet", "--out", str(tmp_path)])
    assert (tmp_path / files[1]).stat().st_size > 10_000
    assert len(fmsim.store.list_runs(tmp_path / files[0])) == groups
    mod.main(["--quick", "--quiet", "--out", str(tmp_path)])  # resumes: every run already complete
