"""Monte Carlo against closed forms. Fixed seeds; tolerance 5 standard errors of the sample
(or, for heavy-tailed second moments of the exact sampler, the exact standard error)."""

import math

import numpy as np
import pytest
from conftest import assert_within_se, mean_and_se

import fmsim
from fmsim import theory

LAWS = ["gaussian", "uniform", "rademacher", "laplace", "truncated_normal"]


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("bias_var", [0.0, 0.3])
def test_mean_length_any_law(law, bias_var):
    arch = fmsim.FullyConnected((12, 8, 10, 6, 9))
    c = (1.5, 2.5, 2.0, 1.8)
    res = fmsim.simulate(arch, fmsim.Init(law=law, c=c, bias_var=bias_var), 60_000, seed=1, method="full")
    truth = theory.mean_length(arch.widths, c, m0=res.m0, bias_var=bias_var)
    s = res.summary
    assert_within_se(s.mean[1:], truth[1:], s.sem[1:], what=f"E[M_j] {law}")


@pytest.mark.parametrize("c", [1.0, 2.0, 4.0])
def test_mean_length_exact_sampler_deep(c):
    # FM1: E[M_d] = (c/2)^d M_0; 40 layers of width 40.
    arch = fmsim.FullyConnected.constant(depth=40, width=40)
    res = fmsim.simulate(arch, fmsim.Init(c=c), 200_000, seed=2, method="exact")
    truth = theory.mean_length(arch.widths, c)
    assert_within_se(res.summary.mean[1:], truth[1:], res.summary.sem[1:], what=f"E[M_j] c={c}")


def test_gaussian_second_moment_exact_sampler():
    # E[M_d^2] = M_0^2 prod (c/2)^2 (1 + 5/n_j); s.e. from the exact E[M_d^4] (heavy tail).
    widths = (30, 10, 12, 8, 20, 10, 16)
    n = 1_000_000
    res = fmsim.simulate(fmsim.FullyConnected(widths), fmsim.Init(c=2.2), n, seed=3, method="exact",
                         record="layers")
    m2 = theory.gaussian_moments(widths, 2, c=2.2)
    m4 = theory.gaussian_moments(widths, 4, c=2.2)
    assert np.allclose(m2[1:] / m2[:-1], (1.1**2) * (1 + 5 / np.array(widths[1:])))
    se = np.sqrt((m4 - m2**2) / n)
    assert_within_se((res.lengths**2).mean(0)[1:], m2[1:], se[1:], what="E[M_j^2]")


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("spiky", [True, False])
def test_fourth_moment_recursion_any_law(law, spiky):
    # E[M_j^2] depends on the law through m4 and on x through ||x||_4 (section 4.3).
    n0 = 12
    x = np.zeros(n0)
    x[0] = 1.0
    if not spiky:
        x = np.linspace(-1.0, 2.0, n0)
    widths = (n0, 6, 6)
    init = fmsim.Init(law=law)
    res = fmsim.simulate(fmsim.FullyConnected(widths), init, 400_000, seed=4, method="full",
                         record="layers", x=x)
    truth = theory.second_moment(x, widths, init.m4)
    for j in (1, 2):
        est, se = mean_and_se(res.lengths[:, j] ** 2)
        assert_within_se(est, truth[j], se, what=f"E[M_{j}^2] {law} spiky={spiky}")


@pytest.mark.parametrize(("law", "bias_law_m4"), [("uniform", 1.8), ("gaussian", 3.0), ("laplace", 6.0)])
def test_second_moment_with_biases(law, bias_law_m4):
    x = np.zeros(5)
    x[0] = 3.0
    widths = (5, 7, 5)
    init = fmsim.Init(law=law, bias_var=0.3)
    res = fmsim.simulate(fmsim.FullyConnected(widths), init, 400_000, seed=5, method="full",
                         record="layers", x=x)
    truth = theory.second_moment(x, widths, init.m4, bias_var=0.3, bias_m4=bias_law_m4)
    est, se = mean_and_se(res.final**2)
    assert_within_se(est, truth[-1], se, what=f"E[M_d^2] with biases, {law}")


@pytest.mark.parametrize(("law", "c"), [("gaussian", 2.0), ("gaussian", 1.6), ("uniform", 2.0),
                                        ("rademacher", 2.0), ("laplace", 2.0)])
def test_expected_fm2(law, c):
    # E[empirical variance of M_1..M_d across layers] (section 4.4), exact.
    x = np.linspace(0.5, 1.5, 8)
    widths = (8,) + (8,) * 6
    init = fmsim.Init(law=law, c=c)
    res = fmsim.simulate(fmsim.FullyConnected(widths), init, 300_000, seed=6, method="full", x=x)
    truth = theory.expected_fm2(theory.second_moment(x, widths, init.m4, c=c), c=c)
    est, se = mean_and_se(res.fm2)
    assert_within_se(est, truth, se, what=f"E[fm2] {law} c={c}")
    assert res.summary.fm2_mean == pytest.approx(est, rel=1e-12)


def test_expected_fm2_exact_sampler_large():
    widths = (20,) + (20,) * 10
    res = fmsim.simulate(fmsim.FullyConnected(widths), fmsim.Init(), 1_000_000, seed=7, method="exact")
    truth = theory.expected_fm2(theory.gaussian_moments(widths, 2))
    est, se = mean_and_se(res.fm2)
    assert_within_se(est, truth, se, what="E[fm2] width 20 x 10")


@pytest.mark.parametrize("method", ["full", "exact"])
def test_dead_net_probability(method):
    widths = (4, 3, 2, 3)
    n = 200_000
    res = fmsim.simulate(fmsim.FullyConnected(widths), fmsim.Init(), n, seed=8, method=method)
    p = theory.dead_probability(widths)
    assert_within_se(res.summary.n_zero[-1] / n, p, np.sqrt(p * (1 - p) / n), what="P(M_d = 0)")


def test_closed_forms_against_independent_numpy_monte_carlo():
    # Theory checked without fmsim's sampler: dense Gaussian nets from NumPy's own generator.
    rng = np.random.default_rng(12345)
    widths = (10, 6, 9, 5)
    n = 40_000
    x = rng.standard_normal(widths[0])
    z = np.broadcast_to(x, (n, widths[0]))
    m = [z[0] @ z[0] / widths[0]]
    lengths = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        w = rng.standard_normal((n, n_out, n_in)) * np.sqrt(2.0 / n_in)
        z = np.maximum(np.einsum("bij,bj->bi", w, z), 0.0)
        lengths.append((z**2).mean(1))
    lengths = np.array(lengths).T
    m2 = theory.gaussian_moments(widths, 2, m0=m[0])
    for j in range(3):
        est, se = mean_and_se(lengths[:, j])
        assert_within_se(est, m[0], se, what="numpy E[M_j]")
        est, se = mean_and_se(lengths[:, j] ** 2)
        assert_within_se(est, m2[j + 1], se, what="numpy E[M_j^2]")


def test_fm2_limit_values():
    # Values quoted in hanin_rolnick.md section 4.4 (also an exponential-in-beta sanity check).
    assert theory.fm2_constant_width_limit(0.25) == pytest.approx(0.4046, abs=1e-4)
    assert theory.fm2_constant_width_limit(1.0) == pytest.approx(18.09, abs=1e-2)
    # The finite-depth exact value approaches the limit at rate O(1/d) ((1 + 5/d)^d -> e^5).
    limit = theory.fm2_constant_width_limit(1.0)
    err = {d: abs(theory.expected_fm2(theory.gaussian_moments((d,) * (d + 1), 2)) / limit - 1) for d in (100, 400)}
    assert err[400] < 0.05
    assert 3.0 < err[100] / err[400] < 5.0


def test_log_length_moments_match_monte_carlo_for_any_profile():
    """Exact E and Var of log M_j (alive nets) against the exact sampler, 5 s.e. from the sample."""
    from fmsim import width_profile

    for profile in ("constant", "alternating"):
        widths = (30,) + width_profile(profile, 12, 1.5)
        res = fmsim.simulate(fmsim.FullyConnected(widths), fmsim.Init.scheme("he"), 200_000, seed=21,
                             method="exact", record="layers")
        mean, var = fmsim.theory.gaussian_log_length_moments(widths, m0=res.m0)
        logs = np.log(res.lengths[res.lengths[:, -1] > 0])
        dev = logs - logs.mean(0)
        se_mean = logs.std(0, ddof=1) / np.sqrt(len(logs))
        se_var = np.sqrt(np.maximum((dev**4).mean(0) - dev.var(0) ** 2, 1e-300) / len(logs))
        assert_within_se(logs.mean(0)[1:], mean[1:], se_mean[1:], what=f"E log M_j {profile}")
        assert_within_se(logs.var(0, ddof=1)[1:], var[1:], se_var[1:], what=f"Var log M_j {profile}")


def test_dead_probability_keeps_its_digits_when_tiny():
    # P(dead) = 1 - prod_j (1 - 2^-n_j); for wide layers it is sum_j 2^-n_j to first order, and
    # 1 - prod(...) in floating point would round it to 0 below about 1e-16.
    widths = (100,) * 101
    expected = -math.expm1(100 * math.log1p(-(2.0**-100)))  # = 100 * 2^-100 (1 - O(2^-100))
    assert expected > 0
    assert theory.dead_probability(widths) == pytest.approx(expected, rel=1e-14)
    assert theory.length_law(widths, 2.0).p_dead == pytest.approx(expected, rel=1e-14)
    assert theory.dead_probability((3, 2, 2)) == pytest.approx(1 - 0.75**2, rel=1e-15)  # exact for small n


def test_var_log_length_tends_to_5_beta():
    """Var[log M_d] = sum_j (Var[log chi2_K_j] + Var[log K_j]) ~ sum_j (4 + 1)/n_j = 5 beta as the widths grow,
    as log E[M_d^2] ~ 5 beta; the 1/n_j^2 correction is about 20/n_j^2 per layer."""
    for n in (1000, 10000):
        _, var = theory.gaussian_log_length_moments((n,) * 11)
        beta = 10 / n
        assert abs(var[-1] / beta - 5.0) < 25.0 / n
