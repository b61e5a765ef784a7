"""The Gram chain of residual nets (:func:`fmsim.running.gram.exact_residual`): in law against whole NumPy nets,
in mean against the closed forms, bit for bit across chunks and threads, and end to end through files and the
command line.

Statistical checks use fixed seeds; a mean is held to 5 standard errors computed from the sample, and a law to a
two-sample KS test at p > 1e-3.
"""

import math

import gram_reference as ref
import numba
import numpy as np
import pytest
from fmsim.store import run_to_file
from scipy import stats

import fmsim
from fmsim import cli
from fmsim.running.gram import exact_residual
from fmsim.running.simulate import make_config
from fmsim.theory.closed_forms import residual_mean_length

X = np.array([1.0, -0.5, 2.0, 0.0, 0.3, 1.0])
U = np.array([[0.0, 1.0, 0.0, 2.0, 0.0, -1.0], [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
VECTORS = np.stack([X, U[0], U[1]])  # three inputs, or the input X and two tangents
ETAS = [1.0, 0.6, 0.8, 0.4]
C = 1.7  # hidden layers' Var(W) = C / fan-in (not He: the closed forms keep their c)
C_OUT = 1.5


def _arch(module_widths, ending):
    return fmsim.Residual(6, ETAS, module_widths=module_widths, ending=ending, c_out=C_OUT)


def _within(sample: np.ndarray, expected: float, ses: float = 5.0) -> None:
    se = sample.std(ddof=1) / math.sqrt(sample.size)
    assert abs(sample.mean() - expected) < ses * se, (sample.mean(), expected, se)


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """KS p-value of two samples rounded to 10 decimals: nets whose module was dead (all hidden units off) keep
    their vectors, an atom of the law, which the two sides sum in different orders (last bits apart)."""
    return stats.ks_2samp(np.round(a, 10), np.round(b, 10)).pvalue


def _cosine(g: np.ndarray, a: int, b: int) -> np.ndarray:
    return g[..., a, b] / np.sqrt(g[..., a, a] * g[..., b, b])


MODULES = [((), "linear"), ((4, 7), "linear"), ((), "relu"), ((5, 3), "relu")]


@pytest.mark.parametrize("module_widths, ending", MODULES)
def test_inputs_match_numpy_residual_nets_in_law(module_widths, ending):
    n = 5000
    arch = _arch(module_widths, ending)
    tr = exact_residual(arch, C, VECTORS, n, 21)
    grams, _ = ref.residual_grams(np.random.default_rng(21), n, arch, C, VECTORS, False)
    np.testing.assert_allclose(tr.gram[:, 0], grams[:, 0], rtol=1e-13)
    for layer in (1, len(ETAS)):
        for a, b in ((0, 1), (1, 2)):
            assert _ks(_cosine(tr.gram[:, layer], a, b),
                                  _cosine(grams[:, layer], a, b)) > 1e-3, (layer, a, b)
        assert _ks(tr.gram[:, layer, 0, 2], grams[:, layer, 0, 2]) > 1e-3, layer
        assert _ks(tr.gram[:, layer, 1, 1], grams[:, layer, 1, 1]) > 1e-3, layer
    np.testing.assert_allclose(np.exp(tr.log_lengths), tr.gram.diagonal(axis1=2, axis2=3), rtol=1e-13)


@pytest.mark.parametrize("module_widths, ending", MODULES)
def test_tangents_match_numpy_residual_nets_in_law(module_widths, ending):
    n = 5000
    arch = _arch(module_widths, ending)
    tr = exact_residual(arch, C, VECTORS, n, 22, tangents=True)
    grams, _ = ref.residual_grams(np.random.default_rng(22), n, arch, C, VECTORS, True)
    jvps = grams.diagonal(axis1=2, axis2=3)[:, :, 1:]
    last = len(ETAS)
    assert _ks(tr.lengths[:, last], grams[:, last, 0, 0]) > 1e-3
    for i in range(2):
        assert _ks(tr.log_jvp[:, last, i], np.log(jvps[:, last, i])) > 1e-3, i
        assert _ks(tr.log_jvp[:, 1, i], np.log(jvps[:, 1, i])) > 1e-3, i
        # The tangent's share of the input's length: a statistic of their joint law.
        assert _ks(tr.log_jvp[:, last, i] - tr.log_lengths[:, last],
                              np.log(jvps[:, last, i] / grams[:, last, 0, 0])) > 1e-3, i
    assert _ks(tr.log_jvp[:, last, 0] - tr.log_jvp[:, last, 1],
                          np.log(jvps[:, last, 0] / jvps[:, last, 1])) > 1e-3


def test_the_numpy_residual_tangents_are_a_finite_difference_of_its_forward_pass():
    # The nets are piecewise linear in the input: a central difference at eps = 1e-7 is J u exactly, up to
    # rounding (about 1e-16 |y| / eps ~ 1e-9 relative), unless a unit's pre-activation changes sign within
    # x +- eps u, which these fixed seeds do not meet (the assertion would say so).
    arch, n, eps = _arch((5, 3), "relu"), 200, 1e-7
    _, y = ref.residual_grams(np.random.default_rng(3), n, arch, C, np.stack([X, U[0]]), True)
    _, plus = ref.residual_grams(np.random.default_rng(3), n, arch, C, np.stack([X + eps * U[0], X]), False)
    _, minus = ref.residual_grams(np.random.default_rng(3), n, arch, C, np.stack([X - eps * U[0], X]), False)
    np.testing.assert_allclose((plus[:, :, 0] - minus[:, :, 0]) / (2 * eps), y[:, :, 1], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(plus[:, :, 1], y[:, :, 0])


@pytest.mark.parametrize("module_widths", [(), (3,), (4, 7)])
def test_linear_ending_means_follow_the_closed_forms(module_widths):
    n = 100_000
    arch = _arch(module_widths, "linear")
    tangents = exact_residual(arch, C, VECTORS, n, 31, tangents=True)
    # E[||J_l u||^2 / n] follows the length's recursion from ||u||^2 / n: (1 + c_out eta_l^2 (c/2)^m) per module.
    for i in range(2):
        means = residual_mean_length(ETAS, module_widths, C, C_OUT, U[i] @ U[i] / 6)
        np.testing.assert_allclose(np.exp(tangents.log_jvp[:, 0, i]), means[0], rtol=1e-14)
        for layer in range(1, len(ETAS) + 1):
            _within(np.exp(tangents.log_jvp[:, layer, i]), means[layer])
    for layer, mean in enumerate(residual_mean_length(ETAS, module_widths, C, C_OUT, X @ X / 6)[1:], start=1):
        _within(tangents.lengths[:, layer], mean)
    if len(module_widths) == 1:  # one hidden layer: E[G_ab] one module on is G_ab + eta^2 c_out c k(G) (arc-cosine)
        inputs = exact_residual(arch, C, VECTORS[:2], n, 32)
        g0 = VECTORS[:2] @ VECTORS[:2].T / 6
        t = math.acos(g0[0, 1] / math.sqrt(g0[0, 0] * g0[1, 1]))
        kernel = math.sqrt(g0[0, 0] * g0[1, 1]) * (math.sin(t) + (math.pi - t) * math.cos(t)) / (2 * math.pi)
        _within(inputs.gram[:, 1, 0, 1], g0[0, 1] + ETAS[0] ** 2 * C_OUT * C * kernel)


def test_chunks_and_threads_do_not_change_a_bit_and_the_input_is_the_same_in_both_runs():
    arch = _arch((5, 3), "relu")
    whole = exact_residual(arch, C, VECTORS, 300, 5, tangents=True)
    part = exact_residual(arch, C, VECTORS, 100, 5, net0=200, tangents=True)
    np.testing.assert_array_equal(whole.log_jvp[200:], part.log_jvp)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        serial = exact_residual(arch, C, VECTORS, 300, 5, tangents=True)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(whole.log_jvp, serial.log_jvp)
    # Vector 0 meets the same draws whether the others are inputs or tangents.
    np.testing.assert_array_equal(exact_residual(arch, C, VECTORS, 300, 5).gram[:, :, 0, 0], whole.lengths)


def test_deep_residual_nets_leave_float64s_range_and_the_chain_stays_exact():
    # With ReLU endings, eta = 1 and c = c_out = 2, log M grows by about 0.84 per module: past 1e308 before
    # module 1000. The streams are held divided by powers of two, so inputs scaled by 2^-600 give the same held
    # numbers: every Gram matrix is the unscaled one times 2^-1200, exactly.
    arch = fmsim.Residual(6, [1.0] * 1000, ending="relu", c_out=2.0)
    tr = exact_residual(arch, 2.0, VECTORS, 4, 1)
    small = exact_residual(arch, 2.0, np.ldexp(VECTORS, -600), 4, 1)
    assert np.all(np.isfinite(tr.log_lengths)) and tr.log_lengths[:, -1].min() > math.log(1e308)
    assert np.isinf(tr.gram[:, -1].diagonal(axis1=1, axis2=2)).all()
    np.testing.assert_array_equal(np.ldexp(small.gram[:, 300], 1200), tr.gram[:, 300])
    # log M = log(held) + shift log 2, each side about 1e3 in size: a few ulps of 1e3 (2.3e-13 each) apart.
    np.testing.assert_allclose(small.log_lengths, tr.log_lengths - 1200 * math.log(2.0), rtol=0, atol=2e-12)


def test_simulate_carries_vectors_through_residual_nets_into_a_file_and_back(tmp_path):
    arch = _arch((4,), "relu")
    he = fmsim.Init(c=C)
    path = tmp_path / "res.h5"
    for group, kwargs in (("pair", dict(inputs=VECTORS)), ("grad", dict(x=X, tangents=U))):
        config = make_config(arch, he, 2500, 9, chunk_size=1024, record="layers", **kwargs)
        assert config.method == "exact"
        run_to_file(config, path, group)
        memory = fmsim.simulate(arch, he, 2500, 9, chunk_size=1024, record="layers", **kwargs)
        stored = fmsim.open(path, group)
        for name in ("gram", "gram_layers", "jvp", "jvp_layers"):
            if getattr(memory, name) is not None:
                np.testing.assert_array_equal(getattr(stored, name), getattr(memory, name), err_msg=name)
    assert fmsim.open(path, "pair").gram_layers.shape == (2500, len(ETAS) + 1, 3, 3)
    assert fmsim.open(path, "grad").jvp_layers.shape == (2500, len(ETAS) + 1, 2)
    assert cli.main(["verify", str(path)]) == 0


def test_the_command_line_carries_a_pair_through_a_residual_net(tmp_path, capsys):
    out = str(tmp_path / "cli.h5")
    base = ["simulate", "--width", "6", "--modules", "5", "--module-widths", "4", "--ending", "relu", "--nets",
            "1024", "--out", out]
    assert cli.main([*base, "--pair-angle", "60", "--group", "pair"]) == 0
    assert "cosine of the pair" in capsys.readouterr().out
    assert cli.main([*base, "--gradient", "--group", "grad"]) == 0
    assert fmsim.open(out, "grad").jvp.shape == (1024, 1)


@pytest.mark.parametrize("kwargs, match", [
    ({"init": fmsim.Init(law="laplace")}, "residual nets runs with method='exact'"),
    ({"init": fmsim.Init(bias_var=0.1)}, "no bias"),
    ({"init": fmsim.Init(law="orthogonal")}, "Gaussian weights"),
    ({"method": "full"}, "method='exact'"),
    ({"inputs": np.ones((2, 5))}, r"shape \(k, 6\)"),
])
def test_simulate_refuses_what_the_residual_chain_cannot_carry(kwargs, match):
    args = {"arch": _arch((4,), "relu"), "init": fmsim.Init(), "n_nets": 10, "seed": 0, "inputs": VECTORS} | kwargs
    with pytest.raises(ValueError, match=match):
        fmsim.simulate(**args)
