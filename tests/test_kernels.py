"""Code paths that must agree: kernel vs NumPy reference, threads, chunks, record modes."""

import numba
import numpy as np
import pytest
from conftest import assert_within_se
from fmsim.reference import reference_lengths
from scipy import stats

import fmsim
from fmsim.kernels.exact import binomial_half, gamma_unit

LAWS = ["gaussian", "uniform", "rademacher", "laplace", "truncated_normal"]


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("bias_var", [0.0, 0.25])
def test_full_kernel_equals_numpy_reference(law, bias_var):
    arch = fmsim.FullyConnected((7, 5, 9, 3, 6))  # odd fan-ins exercise the half block
    init = fmsim.Init(law=law, c=(1.5, 2.0, 2.5, 2.0), bias_var=bias_var)
    res = fmsim.simulate(arch, init, 2048, seed=42, method="full", record="layers")
    nets = [0, 1, 777, 2047]
    ref = reference_lengths(res.config, nets)
    # Same draws, different summation order (dot loop vs BLAS): equal to float rounding.
    np.testing.assert_allclose(res.lengths[nets], ref, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("widths", [(40, 37, 33, 6), (300, 130, 9)])
def test_rademacher_tables_equal_numpy_reference(widths):
    # Rademacher rows add table entries of signed sums, four weights at a time (chunks past one
    # Philox block at fan-in 300); the reference multiplies the same signs with BLAS.
    init = fmsim.Init("rademacher", c=2.0, bias_var=0.1)
    res = fmsim.simulate(fmsim.FullyConnected(widths), init, 1024, seed=3, method="full", record="layers")
    np.testing.assert_allclose(res.lengths[:5], reference_lengths(res.config, range(5)), rtol=1e-12)


def test_user_input_is_used():
    x = np.arange(1.0, 8.0)
    res = fmsim.simulate(fmsim.FullyConnected((7, 5, 4)), fmsim.Init(), 1024, 3, method="full",
                         record="layers", x=x)
    np.testing.assert_allclose(res.lengths[:3], reference_lengths(res.config, [0, 1, 2]), rtol=1e-12)
    assert res.m0 == pytest.approx(x @ x / 7)


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("law,bias_var", [("gaussian", 0.0), ("rademacher", 0.3), ("truncated_normal", 0.0)])
def test_zero_inputs_draw_no_weights(law, bias_var, precision):
    # Layout 4: a row's stream gives the weights of the nonzero inputs only, in order. So zeros
    # spliced into the input, with c scaled to keep sqrt(c / n_0), leave M_1..M_d bit-identical.
    x = np.array([1.0, -2.0, 3.0, 0.5])
    spliced = np.array([0.0, 1.0, 0.0, -2.0, 0.0, 0.0, 3.0, 0.5])
    kw = dict(method="full", record="layers", precision=precision)
    a = fmsim.simulate(fmsim.FullyConnected((4, 6, 5)), fmsim.Init(law, (2.0, 2.0), bias_var), 1024, 8, x=x, **kw)
    b = fmsim.simulate(fmsim.FullyConnected((8, 6, 5)), fmsim.Init(law, (4.0, 2.0), bias_var), 1024, 8, x=spliced,
                       **kw)
    np.testing.assert_array_equal(a.lengths[:, 1:], b.lengths[:, 1:])
    assert np.count_nonzero(a.lengths[:, 1:] == 0.0) < a.lengths[:, 1:].size // 4  # the nets are alive


@pytest.mark.parametrize("law", ["laplace", "rademacher"])  # (Rademacher: an empty table)
def test_all_zero_input_leaves_the_bias(law):
    # No nonzero input: the first layer draws no weight, its pre-activations are the biases alone.
    res = fmsim.simulate(fmsim.FullyConnected((5, 4, 3)), fmsim.Init(law, 2.0, 0.5), 1024, 2, method="full",
                         record="layers", x=np.zeros(5))
    np.testing.assert_allclose(res.lengths[:4], reference_lengths(res.config, range(4)), rtol=1e-12)
    assert np.all(res.lengths[:, 0] == 0.0) and np.any(res.lengths[:, 1] > 0.0)


@pytest.mark.parametrize("method,precision", [("full", "float64"), ("exact", "float64"), ("full", "float32"),
                                              ("exact_first", "float64"), ("exact_first", "float32")])
def test_bit_identical_across_thread_counts_and_chunk_sizes(method, precision):
    arch = fmsim.FullyConnected((10, 8, 12, 8))
    init = fmsim.Init.scheme("he")
    kw = dict(method=method, precision=precision)
    base = fmsim.simulate(arch, init, 5000, seed=9, record="layers", chunk_size=4096, **kw)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = fmsim.simulate(arch, init, 5000, seed=9, record="layers", chunk_size=1024, **kw)
    finally:
        numba.set_num_threads(old)
    big = fmsim.simulate(arch, init, 5000, seed=9, record="summary", chunk_size=8192, **kw)
    np.testing.assert_array_equal(base.lengths, serial.lengths)
    np.testing.assert_array_equal(base.fm2, serial.fm2)
    np.testing.assert_array_equal(base.final, big.final)
    for field in ("mean", "var", "log_mean", "log_var", "n_zero"):
        np.testing.assert_array_equal(getattr(base.summary, field), getattr(serial.summary, field))
        np.testing.assert_array_equal(getattr(base.summary, field), getattr(big.summary, field))
    assert base.summary.fm2_mean == big.summary.fm2_mean


def test_streaming_summary_matches_numpy_on_the_traces():
    res = fmsim.simulate(fmsim.FullyConnected((6, 4, 4, 4)), fmsim.Init(), 3000, 5, method="full",
                         record="layers", chunk_size=1024)
    L = res.lengths
    np.testing.assert_allclose(res.summary.mean, L.mean(0), rtol=1e-12)
    np.testing.assert_allclose(res.summary.var, L.var(0, ddof=1), rtol=1e-10)
    assert res.summary.n_zero.tolist() == (L == 0).sum(0).tolist()
    logs = [np.log(col[col > 0]) for col in L.T]
    np.testing.assert_allclose(res.summary.log_mean, [v.mean() for v in logs], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.summary.log_var, [v.var(ddof=1) for v in logs], rtol=1e-9)
    np.testing.assert_allclose(res.fm2, L[:, 1:].var(1), rtol=1e-10, atol=1e-15)
    np.testing.assert_array_equal(res.final, L[:, -1])


def test_different_seeds_give_different_nets():
    a = fmsim.simulate(fmsim.FullyConnected((5, 5)), fmsim.Init(), 1024, 1, method="full")
    b = fmsim.simulate(fmsim.FullyConnected((5, 5)), fmsim.Init(), 1024, 2, method="full")
    assert not np.array_equal(a.final, b.final)


@pytest.mark.parametrize("n", [1, 31, 32, 33, 100, 128, 129, 1000])
def test_binomial_half_distribution(n):
    k0, k1 = np.uint64(11), np.uint64(12)
    draws = np.array([binomial_half(n, np.uint64(1), np.uint64(net), k0, k1) for net in range(20_000)])
    assert draws.min() >= 0 and draws.max() <= n
    # chi-square goodness of fit on the binomial pmf, bins with expected count >= 5
    ks = np.arange(n + 1)
    expected = stats.binom.pmf(ks, n, 0.5) * draws.size
    observed = np.bincount(draws, minlength=n + 1)
    keep = expected >= 5
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    exp *= obs.sum() / exp.sum()
    if len(exp) > 1:
        assert stats.chisquare(obs, exp).pvalue > 1e-3


@pytest.mark.parametrize("shape", [0.5, 1.0, 3.5, 50.0])
def test_gamma_matches_scipy(shape):
    k0, k1 = np.uint64(5), np.uint64(6)
    draws = np.array([gamma_unit(shape, np.uint64(2), np.uint64(net), k0, k1) for net in range(20_000)])
    assert stats.kstest(draws, stats.gamma(shape).cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    ("widths", "c", "bias_var"),
    [((6, 4, 5, 3), 2.0, 0.0), ((20, 10, 10, 10, 10, 10), 1.5, 0.0), ((50, 30, 30), 2.5, 0.0),
     ((8, 1, 2, 8), 2.0, 0.0), ((6, 4, 5, 3), 2.0, 0.5), ((8, 1, 2, 8), (1.0, 3.0, 2.0), 0.1),
     ((20, 10, 10, 10, 10, 10), 1.5, 2.0)],
)
def test_exact_and_full_agree_in_distribution(widths, c, bias_var):
    """Two-sample KS on every layer; with Gaussian biases the exact sampler draws
    M_j = (c_j M_{j-1} + bias_var)/n_j chi2(Bin(n_j, 1/2))."""
    arch = fmsim.FullyConnected(widths)
    init = fmsim.Init(c=c, bias_var=bias_var)
    full = fmsim.simulate(arch, init, 20_000, seed=101, method="full", record="layers")
    exact = fmsim.simulate(arch, init, 20_000, seed=202, method="exact", record="layers")
    for j in range(1, arch.depth + 1):
        assert stats.ks_2samp(full.lengths[:, j], exact.lengths[:, j]).pvalue > 1e-3, f"layer {j}"
    assert stats.ks_2samp(full.fm2, exact.fm2).pvalue > 1e-3


def test_float32_mode_agrees_with_the_float64_reference_to_the_documented_tolerance():
    """precision='float32': 32 bits per weight (stream layouts 2 and 3), float32 arithmetic. Documented tolerance
    (RunConfig): relative 1e-4 on M_j, against float64 arithmetic on the same weights, for nets up to
    depth = width = 100; measured here at depth = width = 40, three laws, bias."""
    for init in (fmsim.Init.scheme("he"), fmsim.Init("uniform", 2.0, bias_var=0.1), fmsim.Init("laplace", 2.0)):
        arch = fmsim.FullyConnected.constant(40, 40)
        r32 = fmsim.simulate(arch, init, 1024, seed=4, precision="float32", record="layers")
        assert r32.config.method == "full" and r32.config.precision == "float32"
        nets = [0, 1, 2, 3, 500, 1023]
        ref = reference_lengths(r32.config, nets)
        alive = ref > 0
        assert np.array_equal(alive, r32.lengths[nets] > 0)
        rel = np.abs(r32.lengths[nets][alive] / ref[alive] - 1)
        assert rel.max() < 1e-4
        assert rel.max() > 0  # it really is float32 arithmetic
    with pytest.raises(ValueError, match="precision='float32' exists for method='full'"):
        fmsim.simulate(fmsim.FullyConnected((4, 4)), fmsim.Init(), 10, 1, method="exact", precision="float32")
    with pytest.raises(ValueError, match="precision must be one of"):
        fmsim.simulate(fmsim.FullyConnected((4, 4)), fmsim.Init(), 10, 1, precision="float16")


def test_exact_sampler_with_bias_matches_the_mean_recursion():
    widths, init = (10, 6, 3, 8, 5), fmsim.Init(c=(1.0, 3.0, 2.0, 2.5), bias_var=0.4)
    res = fmsim.simulate(fmsim.FullyConnected(widths), init, 400_000, seed=8, method="exact")
    truth = fmsim.theory.mean_length(widths, init.c, m0=res.m0, bias_var=0.4)
    # 5 s.e. of the sample mean, s.e. from the sample
    assert_within_se(res.summary.mean, truth, res.summary.sem, what="E[M_j]")
