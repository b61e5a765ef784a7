"""The first layer's law (method="exact_first"): closed forms, the full simulation, the kernel vs NumPy."""

import math
import os
from fractions import Fraction

import numpy as np
import pytest
from fmsim.first_layer import first_layer_law, log_mgf, standard_cf
from fmsim.laws import LAW_M4, TRUNCATED_NORMAL_VARIANCE
from fmsim.reference import reference_lengths
from scipy import integrate, stats

import fmsim
from fmsim.config import input_vector
from fmsim.running.simulate import make_config

CONTINUOUS = ["gaussian", "uniform", "laplace", "truncated_normal"]
_TSD = math.sqrt(TRUNCATED_NORMAL_VARIANCE)
# The unit-variance weight laws as scipy distributions: an independent statement of each law.
SCIPY_LAWS = {
    "gaussian": stats.norm(),
    "uniform": stats.uniform(-math.sqrt(3), 2 * math.sqrt(3)),
    "laplace": stats.laplace(scale=1 / math.sqrt(2)),
    "truncated_normal": stats.truncnorm(-2, 2, scale=1 / _TSD),
}


def _random_input(n, seed=0):
    return np.random.default_rng(seed).standard_normal(n)


@pytest.mark.parametrize("law", CONTINUOUS)
def test_characteristic_function_and_mgf_match_quadrature(law):
    # Symmetric laws: E[cos(uW)] = 2 int_0^hi cos(uw) p(w) dw (QUADPACK's weighted rule for the oscillation).
    dist = SCIPY_LAWS[law]
    hi = dist.support()[1]
    for u in (0.3, 1.7, 5.0, 23.0):
        ref = 2.0 * integrate.quad(dist.pdf, 0.0, min(hi, 40.0), weight="cos", wvar=u, epsabs=1e-14)[0]
        assert standard_cf(law, u) == pytest.approx(ref, abs=1e-11)
    for th in (0.1, 0.7, 1.3):
        ref = integrate.quad(lambda w, th=th: np.exp(dist.logpdf(w) + th * w) + np.exp(dist.logpdf(w) - th * w),
                             0.0, hi, epsabs=1e-14)[0]
        assert float(np.exp(log_mgf(law, th))) == pytest.approx(ref, rel=1e-11)


def test_gaussian_weights_give_the_normal_law():
    table = first_layer_law("gaussian", _random_input(784))
    s = table.grid
    np.testing.assert_allclose(table.cdf[0], stats.norm.cdf(s), rtol=0, atol=1e-13)
    np.testing.assert_allclose(table.cdf[1], stats.norm.pdf(s), rtol=0, atol=1e-12)


def _irwin_hall_cdf(n, x):
    """P(U_1 + ... + U_n <= x), U_k ~ U(0, 1), in exact rational arithmetic."""
    x = Fraction(x)
    total = sum((-1) ** k * math.comb(n, k) * (x - k) ** n for k in range(0, min(n, math.floor(x)) + 1))
    return float(total / math.factorial(n))


def test_uniform_weights_equal_inputs_give_irwin_hall():
    # a_k = 1/sqrt(12), W_k = sqrt(3)(2 V_k - 1): S = V_1 + ... + V_12 - 6.
    table = first_layer_law("uniform", np.ones(12))
    s = np.linspace(-5.5, 5.5, 23)
    exact = [_irwin_hall_cdf(12, v + 6.0) for v in s]
    np.testing.assert_allclose(table.cdf_at(s), exact, rtol=0, atol=1e-11)


def test_laplace_weights_equal_inputs_give_a_gamma_difference():
    # a_k = 1/sqrt(8), W_k = (E_k - E'_k)/sqrt(2): S = (G - G')/4 with G, G' ~ Gamma(8).
    table = first_layer_law("laplace", np.ones(8))
    g = stats.gamma(8)
    for s in (-3.0, -1.0, -0.2, 0.0, 0.5, 1.5, 4.0):
        exact = integrate.quad(lambda v, s=s: g.cdf(v + 4 * s) * g.pdf(v), 0, np.inf, epsabs=1e-14, epsrel=1e-13)[0]
        assert table.cdf_at(s) == pytest.approx(exact, abs=1e-11)


@pytest.mark.parametrize("law", CONTINUOUS)
def test_table_moments_match_closed_forms(law):
    # E[S^2] = 1 and E[S^4] = 3 + (m4 - 3) sum_k a_k^4, by Simpson's rule on the tabulated density.
    x = _random_input(50, seed=3)
    a = x / np.linalg.norm(x)
    table = first_layer_law(law, x)
    s, f = table.grid, table.cdf[1]
    m2 = integrate.simpson(s**2 * f, x=s)
    m4 = integrate.simpson(s**4 * f, x=s)
    assert m2 == pytest.approx(1.0, abs=1e-9)
    assert m4 == pytest.approx(3.0 + (LAW_M4[law] - 3.0) * np.sum(a**4), abs=1e-8)


@pytest.mark.parametrize("law", CONTINUOUS)
def test_quantile_inverts_the_tabulated_cdf(law):
    table = first_layer_law(law, _random_input(784, seed=1))
    extremes = [2.0**-53, 1e-12, 1 - 1e-12, 1 - 2.0**-53]  # the first and last are the kernels' extremes
    u = np.sort(np.concatenate([np.random.default_rng(2).random(2000), extremes]))
    q = table.ppf(u)
    assert np.all(np.diff(q) >= 0.0)
    np.testing.assert_allclose(table.cdf_at(q), u, rtol=0, atol=2e-15)


def test_inputs_the_law_cannot_serve_are_refused():
    e1 = np.zeros(784)
    e1[0] = 1.0
    with pytest.raises(ValueError, match="concentrated"):
        first_layer_law("truncated_normal", e1)
    with pytest.raises(ValueError, match="continuous weight law"):
        first_layer_law("rademacher", _random_input(784))
    with pytest.raises(ValueError, match="not all zero"):
        first_layer_law("uniform", np.zeros(5))
    arch = fmsim.FullyConnected((784, 10, 10))
    # before any work: the config is refused, so no file is written
    with pytest.raises(ValueError, match="concentrated"):
        fmsim.simulate(arch, fmsim.Init("uniform"), 1024, 0, method="exact_first", x=e1)
    with pytest.raises(ValueError, match="fully connected"):
        fmsim.simulate(fmsim.Residual.scheduled(8, 2), fmsim.Init("uniform"), 1024, 0, method="exact_first")
    with pytest.raises(ValueError, match="backend='cpu' only"):
        fmsim.simulate(arch, fmsim.Init("uniform"), 1024, 0, method="exact_first", backend="cuda")


def test_refused_run_leaves_no_file(tmp_path):
    e1 = np.zeros(784)
    e1[0] = 1.0
    path = tmp_path / "run.h5"
    with pytest.raises(ValueError, match="backend='cpu' only"):
        config = make_config(fmsim.FullyConnected((784, 10)), fmsim.Init("laplace"), 1024, 0, "exact_first")
        fmsim.run_to_file(config, path, backend="cuda")
    assert not os.path.exists(path)


@pytest.mark.parametrize("law", ["uniform", "laplace", "truncated_normal"])
def test_first_layer_of_full_and_exact_first_follow_the_tabulated_law(law):
    # One unit in the first layer, input of size 784: M_1 = relu(sd S)^2. Given S > 0, sqrt(M_1) / sd has
    # the CDF 2 F(s) - 1. Both the full simulation (784 weights drawn per net) and exact_first are held
    # against it by a one-sample KS test at a fixed seed; p > 1e-5 is about a 4.4-sigma tolerance.
    arch = fmsim.FullyConnected((784, 1))
    init = fmsim.Init(law, c=2.0)
    sd = math.sqrt(2.0 / 784) * math.sqrt(784)  # the default input has ||x||^2 = n_0
    for method, seed in (("full", 11), ("exact_first", 12)):
        x = input_vector(make_config(arch, init, 1024, seed, "full"))
        table = first_layer_law(law, x)
        m1 = fmsim.simulate(arch, init, 40_000, seed, method=method, record="layers").lengths[:, 1]
        alive = np.sqrt(m1[m1 > 0]) / sd
        assert abs(alive.size - 20_000) < 5 * math.sqrt(40_000 / 4)  # P(S > 0) = 1/2, within 5 s.e.
        p = stats.kstest(alive, lambda s, t=table: 2.0 * t.cdf_at(s) - 1.0).pvalue
        assert p > 1e-5, (method, p)


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("law,bias_var", [("truncated_normal", 0.0), ("laplace", 0.2), ("gaussian", 0.0)])
def test_exact_first_kernel_equals_numpy_reference(law, bias_var, precision):
    arch = fmsim.FullyConnected((300, 7, 9, 5))
    init = fmsim.Init(law=law, c=(1.5, 2.0, 2.5), bias_var=bias_var)
    res = fmsim.simulate(arch, init, 2048, seed=5, method="exact_first", record="layers", precision=precision)
    nets = [0, 1, 1234, 2047]
    ref = reference_lengths(res.config, nets)
    # The same uniforms and table; bisection (reference) vs Newton (kernel) on the interpolated CDF.
    rtol = 1e-12 if precision == "float64" else 1e-5
    np.testing.assert_allclose(res.lengths[nets], ref, rtol=rtol, atol=1e-300)


def test_exact_first_file_round_trip(tmp_path):
    arch = fmsim.FullyConnected((100, 6, 6))
    config = make_config(arch, fmsim.Init.scheme("he_truncated_keras2018"), 3000, 4, "exact_first",
                               chunk_size=1024)
    res = fmsim.run_to_file(config, tmp_path / "r.h5")
    again = fmsim.run_to_file(config, tmp_path / "r.h5")  # finished: read back, nothing run
    direct = fmsim.simulate(arch, config.init, 3000, 4, method="exact_first")
    assert res.config == config == again.config
    np.testing.assert_array_equal(res.final, direct.final)
    np.testing.assert_array_equal(again.final, direct.final)
