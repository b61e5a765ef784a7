"""The exact law of M_d against closed forms, quadrature and convolution, and the samplers against it."""

import math

import numpy as np
import pytest
from fmsim.exact_law import length_law, residual_length_law
from scipy import integrate, optimize, stats

import fmsim
from fmsim import theory


def _one_layer_alive_cdf(n, c, m):
    """``P(0 < M_1 <= m)`` for M_0 = 1: ``sum_{K >= 1} Bin(K) P(chi2_K <= m n / c)`` (closed form)."""
    k = np.arange(1, n + 1)
    p = stats.binom.pmf(k, n, 0.5)
    return stats.chi2.cdf(np.multiply.outer(m * n / c, np.ones(n)), k) @ p


def _one_layer_cdf(n, c, m):
    return 2.0**-n + _one_layer_alive_cdf(n, c, m)


def _one_layer_sf(n, c, m):
    k = np.arange(1, n + 1)
    p = stats.binom.pmf(k, n, 0.5)
    return stats.chi2.sf(np.multiply.outer(m * n / c, np.ones(n)), k) @ p


@pytest.mark.parametrize("n, c", [(1, 2.0), (3, 2.0), (12, 1.0), (200, 4.0)])
def test_one_layer_cdf_and_tails_against_chi2_mixture(n, c):
    law = length_law([7, n], c)
    m = np.geomspace(1e-12, 60.0, 300)
    f, err = law.cdf(m, return_error=True)
    exact = _one_layer_cdf(n, c, m)
    assert np.abs(f - exact).max() < 1e-12
    assert np.all(np.abs(f - exact) <= err + 1e-14)  # the error estimate covers the error
    np.testing.assert_allclose(law.sf(m), _one_layer_sf(n, c, m), rtol=0, atol=1e-12)
    # tails: where the exact probability is 1e-10, relative error below 1e-4
    alive = lambda x: _one_layer_alive_cdf(n, c, np.array([math.exp(x)]))[0] / (1 - 2.0**-n)
    right = lambda x: _one_layer_sf(n, c, np.array([math.exp(x)]))[0]
    for target in (1e-10, 1e-8):
        lo = optimize.brentq(lambda x, t=target: alive(x) / t - 1, -60, 5, xtol=1e-14)
        assert abs(law.log_cdf(lo) / target - 1) < 1e-4
        hi = optimize.brentq(lambda x, t=target: right(x) / t - 1, -5, 6, xtol=1e-14)
        assert abs(law.sf(np.exp(hi)) / target - 1) < 1e-4


def test_two_layers_against_direct_quadrature():
    """P(M_2 <= m) = p_dead + sum_{K1,K2 >= 1} p p E_U[F_chi2(K2)(m n2 / (c2 Y1))], integrated numerically."""
    n1, n2, c1, c2, m0 = 3, 4, 2.0, 1.5, 0.7
    law = length_law([5, n1, n2], [c1, c2], m0=m0)
    p1, p2 = stats.binom.pmf(np.arange(n1 + 1), n1, 0.5), stats.binom.pmf(np.arange(n2 + 1), n2, 0.5)
    for m in (1e-6, 0.01, 0.3, 1.0, 2.5, 9.0):
        total = 1 - (1 - p1[0]) * (1 - p2[0])
        for k1 in range(1, n1 + 1):
            for k2 in range(1, n2 + 1):
                # u = v^2 removes the u^{-1/2} singularity of the chi2_1 density at 0
                g = lambda v, k1=k1, k2=k2, m=m: (2 * v * stats.chi2.pdf(v * v, k1)
                                             * stats.chi2.cdf(m * n2 / (c2 * m0 * c1 / n1 * v * v), k2))
                val = sum(integrate.quad(g, a, b, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
                          for a, b in ((0, 1), (1, 5), (5, 40)))
                total += p1[k1] * p2[k2] * val
        assert abs(law.cdf(m) - total) < 1e-8, (m, law.cdf(m), total)


def test_deep_net_law_against_discrete_convolution():
    """Depth 6, width 5: the density of log M_d as the 6-fold convolution of one layer's density on a grid."""
    from scipy.signal import fftconvolve

    n, d = 5, 6
    law = length_law([n] * (d + 1))
    y = np.linspace(-45.0, 8.0, 2**14)  # one layer's log ratio lives here up to mass 1e-9
    dy = y[1] - y[0]
    k = np.arange(1, n + 1)
    q = stats.binom.pmf(k, n, 0.5) / (1 - 2.0**-n)
    shift = math.log(2 / n)  # log((2/n) chi2_K) = shift + log chi2_K
    u = np.exp(y - shift)
    layer = sum(qi * u * stats.chi2.pdf(u, ki) for qi, ki in zip(q, k))
    conv = layer
    for _ in range(d - 1):
        conv = fftconvolve(conv, layer) * dy
    grid = d * y[0] + dy * np.arange(conv.size)
    x = np.linspace(-20, 4, 97)
    np.testing.assert_allclose(law.log_pdf(x), np.interp(x, grid, conv), rtol=0, atol=1e-5)  # grid error ~dy^2
    xs = np.linspace(*law._window, 200001)
    assert np.trapezoid(law.log_pdf(xs), xs) == pytest.approx(1.0, abs=1e-9)


def test_moments_against_closed_forms_and_quadrature():
    widths, c = [9, 6, 4, 8, 3], [2.0, 1.0, 3.0, 2.5]
    law = length_law(widths, c, m0=1.3)
    for k in (1, 2, 3):
        assert law.moment(k) == pytest.approx(theory.gaussian_moments(widths, k, c, m0=1.3)[-1], rel=1e-11)
    assert law.moment(0) == 1.0
    assert law.p_dead == pytest.approx(theory.dead_probability(widths), abs=1e-15)
    assert law.moment(-0.3) == math.inf and law.moment(-0.5, given_alive=True) == math.inf
    one = length_law([4, 6], 2.0)
    for p in (0.5, 1.5, -0.1):  # quadrature of m^p against the density of the alive part
        # over [-70, 6]: outside it the integrand is below 1e-12 (for p = -0.1 it decays like e^{0.4 x}), and
        # inside M^p times the density's rounding error (1e-15) stays below 1e-11
        x = np.linspace(-70.0, 6.0, 40001)
        quad = np.trapezoid(np.exp(p * x) * one.log_pdf(x), x)
        assert one.moment(p, given_alive=True) == pytest.approx(quad, rel=1e-8)
    mean, var = theory.gaussian_log_length_moments(widths, c, m0=1.3)
    assert law.log_mean_var() == pytest.approx((mean[-1], var[-1]), rel=1e-12)
    x = np.linspace(*law._window, 40001)
    f = law.log_pdf(x)
    assert np.trapezoid(x * f, x) == pytest.approx(mean[-1], abs=1e-8)
    assert np.trapezoid((x - mean[-1]) ** 2 * f, x) == pytest.approx(var[-1], rel=1e-7)


def test_quantiles_density_and_cdf_agree():
    law = length_law([50] * 51)
    q = np.array([1e-10, 1e-3, 0.1, 0.5, 0.9, 0.999, 1 - 1e-9])
    m = law.quantile(q)
    assert np.all(np.diff(m) > 0)
    np.testing.assert_allclose(law.cdf(m[:4]), q[:4], rtol=1e-6)
    np.testing.assert_allclose(law.sf(m[4:]), 1 - q[4:], rtol=1e-6)
    x = np.log(m[2:5])
    h = 1e-5
    deriv = (law.log_cdf(x + h) - law.log_cdf(x - h)) / (2 * h)
    np.testing.assert_allclose(law.log_pdf(x), deriv, rtol=1e-6)
    narrow = length_law([3] * 31)  # 98% dead: quantiles below P(dead) are 0
    assert narrow.quantile([0.5])[0] == 0.0 and narrow.quantile([0.99])[0] > 0
    with pytest.raises(ValueError, match="q must lie in"):
        law.quantile([1.0])
    with pytest.raises(ValueError, match="widths"):
        length_law([5])
    with pytest.raises(ValueError, match="c must be"):
        length_law([5, 5], -1.0)


def test_residual_law_one_module_is_noncentral_chi2():
    n, eta, c_out = 6, 0.7, 2.0
    law = residual_length_law(n, [eta], c_out)
    s = eta**2 * c_out / n
    m = np.geomspace(1e-3, 30, 50)
    np.testing.assert_allclose(law.cdf(m), stats.ncx2.cdf(m / s, n, 1 / s), rtol=0, atol=1e-12)


def test_residual_law_moments_against_closed_forms():
    etas = fmsim.eta_schedule("1/l", 12, 1.0)
    law = residual_length_law(16, etas, 2.0)
    assert law.moment(1) == pytest.approx(theory.residual_mean_length(etas)[-1], rel=1e-11)
    assert law.moment(2) == pytest.approx(theory.residual_second_moment(16, etas)[-1], rel=1e-11)


# ---------------------------------------------------------------- samplers vs the exact law
def _ks_against_law(logs, law):
    """KS test of alive log M_d against the exact conditional CDF (interpolated on a 20001-point grid:
    interpolation error < 1e-8, far below the KS resolution 1/sqrt(n))."""
    grid = np.linspace(logs.min() - 1e-9, logs.max() + 1e-9, 20001)
    table = law.log_cdf(grid)
    return stats.kstest(logs, lambda v: np.interp(v, grid, table))


def _dead_count_z(final, law):
    n = final.size
    p = law.p_dead
    return ((final == 0).sum() - n * p) / math.sqrt(n * p * (1 - p)) if 0 < p < 1 else 0.0


@pytest.mark.parametrize("method, widths", [("exact", (30,) + (20,) * 20), ("exact", (4, 2, 3, 1, 5)),
                                            ("full", (5, 4, 3, 4))])
def test_sampler_against_exact_law_ks_1e6_nets(method, widths):
    arch = fmsim.FullyConnected(widths)
    res = fmsim.simulate(arch, fmsim.Init.scheme("he"), 1_000_000, seed=2026, method=method)
    law = length_law(widths, 2.0, m0=res.m0)
    # P-value > 1e-5, about 4.4 standard errors of a normal statistic; dead count within 5 s.e.
    ks = _ks_against_law(np.log(res.final[res.final > 0]), law)
    assert ks.pvalue > 1e-5, ks
    assert abs(_dead_count_z(res.final, law)) < 5


def test_residual_exact_sampler_against_residual_law():
    etas = fmsim.eta_schedule("1/sqrt(L)", 10, 1.0)
    arch = fmsim.Residual(8, etas, module_widths=(), ending="linear")
    res = fmsim.simulate(arch, fmsim.Init.scheme("he"), 1_000_000, seed=5, method="exact")
    law = residual_length_law(8, etas, 2.0, m0=res.m0)
    assert _ks_against_law(np.log(res.final), law).pvalue > 1e-5


# ---------------------------------------------------------------- the command line
def test_cli_law_prints_the_exact_law(capsys):
    import json

    from fmsim import cli

    assert cli.main(["law", "--depth", "20", "--width", "10", "--scheme", "he", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    law = length_law([10] * 21)
    assert out["p_dead"] == pytest.approx(theory.dead_probability([10] * 21), rel=1e-12)
    assert out["moments"]["2"] == pytest.approx(theory.gaussian_moments([10] * 21, 2)[-1], rel=1e-11)
    assert out["quantiles"]["0.5"][0] == pytest.approx(law.quantile([0.5])[0], rel=1e-12)
    assert cli.main(["law", "--widths", "784,100,10", "--scheme", "glorot"]) == 0
    text = capsys.readouterr().out
    assert "P(dead)" in text and "quantile of M_d" in text
    assert cli.main(["law", "--width", "16", "--modules", "8", "--schedule", "1/l"]) == 0
    assert "residual" in capsys.readouterr().out
    for bad in (["law", "--depth", "5", "--scheme", "he_uniform"], ["law", "--depth", "5", "--m0", "-1"],
                ["law", "--modules", "3"]):
        assert cli.main(bad) == 2
        assert capsys.readouterr().err.startswith("fmsim: error: ")
