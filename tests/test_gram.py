"""The Gram chain: the exact samplers of tangents and of several inputs against an independent NumPy
reference (whole nets, NumPy's own weights) and the closed forms of :mod:`fmsim.theory.gram`.

Statistical checks use fixed seeds; a mean is held to 5 standard errors computed from the sample, and a law
to a two-sample KS test at p > 1e-3.
"""

import math

import gram_reference as ref
import numba
import numpy as np
import pytest
from scipy import integrate, stats

import fmsim
from fmsim.kernels.cpu import fc_exact
from fmsim.kernels.gram import psd_cholesky
from fmsim.kernels.scalar import mean_square
from fmsim.running.gram import exact_inputs, exact_tangents
from fmsim.running.launch import scaled_input
from fmsim.running.reference import reference_carried
from fmsim.running.simulate import make_config
from fmsim.sampling.rng import seed_to_key
from fmsim.theory import gram as theory
from fmsim.theory.closed_forms import mean_length

WIDTHS = [6, 9, 4, 7, 5]  # unequal widths, d = 4
CS = [2.0, 1.5, 2.5, 2.0]
X = np.array([1.0, -0.5, 2.0, 0.0, 0.3, 1.0])
U = np.array([[0.0, 1.0, 0.0, 2.0, 0.0, -1.0], [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])


def _within(sample: np.ndarray, expected: float, ses: float = 5.0) -> None:
    se = sample.std(ddof=1) / math.sqrt(sample.size)
    assert abs(sample.mean() - expected) < ses * se, (sample.mean(), expected, se)


# ---------------------------------------------------------------- tangents
def test_the_length_is_the_exact_sampler_bit_for_bit():
    for widths, seed, m0 in ([WIDTHS, 3, 1.0], [[4] + [3] * 2000, 11, 1.0], [[5, 2000, 2000], 7, 1e80]):
        x = np.full(widths[0], math.sqrt(m0))
        tr = exact_tangents(widths, 2.0, x, np.eye(widths[0])[:2], 300, seed)
        k0, k1 = (np.uint64(v) for v in seed_to_key(seed))
        lengths, logs = np.empty((300, len(widths))), np.empty((300, len(widths)))
        xs, shift = scaled_input(x)
        fc_exact(float(mean_square(xs, xs.size)), 2 * shift, np.asarray(widths, dtype=np.int64),
                 np.full(len(widths) - 1, 2.0), np.zeros(len(widths) - 1), k0, k1, 0, lengths, logs)
        np.testing.assert_array_equal(tr.lengths, lengths)
        np.testing.assert_array_equal(tr.log_lengths, logs)


def test_chunks_and_threads_do_not_change_a_bit():
    whole = exact_tangents(WIDTHS, CS, X, U, 400, 5)
    part = exact_tangents(WIDTHS, CS, X, U, 150, 5, net0=250)
    np.testing.assert_array_equal(whole.log_jvp[250:], part.log_jvp)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        serial = exact_tangents(WIDTHS, CS, X, U, 400, 5)
        serial_inputs = exact_inputs(WIDTHS, CS, np.stack([X, U[0]]), 100, 5)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(whole.log_jvp, serial.log_jvp)
    np.testing.assert_array_equal(exact_inputs(WIDTHS, CS, np.stack([X, U[0]]), 100, 5).gram, serial_inputs.gram)
    np.testing.assert_array_equal(exact_inputs(WIDTHS, CS, np.stack([X, U[0]]), 60, 5, net0=40).gram,
                                  serial_inputs.gram[40:])


def test_the_mean_jvp_follows_the_length_recursion_at_every_layer():
    tr = exact_tangents(WIDTHS, CS, X, U, 200_000, 21)
    for i in range(2):
        u_m0 = float(U[i] @ U[i]) / len(X)
        expected = theory.jvp_moments(WIDTHS, 1, CS, u_m0)
        np.testing.assert_allclose(expected, mean_length(WIDTHS, CS, u_m0))
        np.testing.assert_allclose(np.exp(tr.log_jvp[:, 0, i]), u_m0, rtol=1e-14)
        for j in range(1, len(WIDTHS)):
            _within(np.exp(tr.log_jvp[:, j, i]), expected[j])
        # The second moment: ||J u||^2 / n_d has the law of M_d started from ||u||^2 / n_0.
        _within(np.exp(2 * tr.log_jvp[:, -1, i]), theory.jvp_moments(WIDTHS, 2, CS, u_m0)[-1])


def test_the_jvp_law_and_its_joint_law_with_the_length_match_numpy_nets():
    n = 6000
    tr = exact_tangents(WIDTHS, CS, X, U, n, 8)
    ws = ref.weights(np.random.default_rng(8), n, WIDTHS, CS)
    lengths, jvps, _ = ref.tangents(ws, X, U)
    alive = tr.lengths[:, -1] > 0
    alive_ref = lengths[:, -1] > 0
    for i in range(2):
        assert stats.ks_2samp(tr.log_jvp[alive, -1, i], np.log(jvps[alive_ref, -1, i])).pvalue > 1e-3
        # The share of the tangent in the length's own chi-squares: a statistic of the joint law.
        assert stats.ks_2samp(tr.log_jvp[alive, -1, i] - tr.log_lengths[alive, -1],
                              np.log(jvps[alive_ref, -1, i] / lengths[alive_ref, -1])).pvalue > 1e-3
    # Two tangents at once: the Wishart step couples them.
    assert stats.ks_2samp(tr.log_jvp[alive, -1, 0] - tr.log_jvp[alive, -1, 1],
                          np.log(jvps[alive_ref, -1, 0] / jvps[alive_ref, -1, 1])).pvalue > 1e-3
    assert stats.ks_2samp(tr.lengths[:, -1], lengths[:, -1]).pvalue > 1e-3


def test_a_tangent_along_the_input_is_the_length():
    tr = exact_tangents(WIDTHS, CS, X, np.stack([3.0 * X, -X]), 500, 4)
    alive = tr.lengths[:, -1] > 0
    assert 400 < alive.sum() < 500
    np.testing.assert_allclose(tr.log_jvp[alive, :, 0] - tr.log_lengths[alive], math.log(9.0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(tr.log_jvp[alive, :, 1], tr.log_lengths[alive], rtol=0, atol=1e-12)
    assert np.all(tr.log_jvp[~alive, -1] == -np.inf)


def test_the_numpy_jvp_is_a_finite_difference_of_the_numpy_forward_pass():
    # The net is piecewise linear in its input: a central difference is exact unless a pre-activation changes
    # sign within eps. With eps = 1e-7 and pre-activations of order 1 that is rarer than 1e-5 per net; the
    # tolerance is rounding: f ~ 1 differenced over 2 eps loses about 1e-16 / 1e-7 = 1e-9, so 1e-6 relative.
    rng = np.random.default_rng(2)
    ws = ref.weights(rng, 50, WIDTHS, CS)
    _, jvps, ju = ref.tangents(ws, X, U)
    eps = 1e-7
    for i in range(2):
        plus = ref.forward(ws, np.broadcast_to((X + eps * U[i])[:, None], (50, len(X), 1)))[:, :, 0]
        minus = ref.forward(ws, np.broadcast_to((X - eps * U[i])[:, None], (50, len(X), 1)))[:, :, 0]
        fd = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(ju[:, :, i], fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
        np.testing.assert_allclose(jvps[:, -1, i], np.sum(fd**2, axis=1) / WIDTHS[-1], rtol=1e-5)


def test_jacobian_entries_match_numpy_nets_and_he_keeps_their_mean():
    n = 400_000
    widths, cs = [5, 8, 6, 7], [2.0, 1.5, 2.5]
    ws = ref.weights(np.random.default_rng(31), n, widths, cs)
    _, _, ju = ref.tangents(ws, np.array([1.0, 2.0, -1.0, 0.5, 0.0]), np.eye(5)[[1]])
    entry = ju[:, 3, 0] ** 2  # (J e_1)_3^2
    mean, square = theory.jacobian_entry_moments(widths, cs)
    _within(entry, mean)
    _within(entry**2, square)
    for widths in ([5, 8, 6, 7], [3] * 12, [10, 4, 30, 2]):  # He: flat mean, fourth moment 6 prod (1 + 5/n_j)
        mean, square = theory.jacobian_entry_moments(widths, 2.0)
        assert mean == pytest.approx(1.0 / widths[0], rel=1e-14)
        assert square / mean**2 == pytest.approx(6.0 * np.prod([1.0 + 5.0 / n for n in widths[1:-1]]), rel=1e-14)


# ---------------------------------------------------------------- inputs
def test_pairs_match_numpy_nets_in_law():
    n = 6000
    inputs = np.stack([X, U[1]])
    tr = exact_inputs(WIDTHS, CS, inputs, n, 13)
    grams = ref.pair_grams(ref.weights(np.random.default_rng(13), n, WIDTHS, CS), inputs)
    np.testing.assert_allclose(tr.gram[:, 0], np.broadcast_to(inputs @ inputs.T / len(X), (n, 2, 2)))
    for j in (1, 4):
        ok = np.all(tr.gram[:, j].diagonal(axis1=1, axis2=2) > 0, axis=1)
        ok_ref = np.all(grams[:, j].diagonal(axis1=1, axis2=2) > 0, axis=1)
        cos = tr.gram[ok, j, 0, 1] / np.sqrt(tr.gram[ok, j, 0, 0] * tr.gram[ok, j, 1, 1])
        cos_ref = grams[ok_ref, j, 0, 1] / np.sqrt(grams[ok_ref, j, 0, 0] * grams[ok_ref, j, 1, 1])
        assert stats.ks_2samp(cos, cos_ref).pvalue > 1e-3, j
        assert stats.ks_2samp(tr.gram[:, j, 1, 1], grams[:, j, 1, 1]).pvalue > 1e-3, j
        assert stats.ks_2samp(tr.gram[:, j, 0, 1], grams[:, j, 0, 1]).pvalue > 1e-3, j
    np.testing.assert_allclose(np.exp(tr.log_lengths), tr.gram.diagonal(axis1=2, axis2=3), rtol=1e-13)


def test_pair_means_follow_the_arc_cosine_kernel_and_the_length_recursion():
    inputs = np.stack([X, U[1]])
    tr = exact_inputs(WIDTHS, CS, inputs, 100_000, 17)
    g0 = inputs @ inputs.T / len(X)
    rho = g0[0, 1] / math.sqrt(g0[0, 0] * g0[1, 1])
    t = math.acos(rho)
    # One layer on, at any width: E[G_ab / n_1] = c sqrt(G_aa G_bb) (sin t + (pi - t) cos t) / (2 pi).
    expected = CS[0] * math.sqrt(g0[0, 0] * g0[1, 1]) * (math.sin(t) + (math.pi - t) * rho) / (2 * math.pi)
    _within(tr.gram[:, 1, 0, 1], expected)
    for a in range(2):
        for j, m in enumerate(mean_length(WIDTHS, CS, g0[a, a])[1:], start=1):
            _within(tr.gram[:, j, a, a], m)


def test_a_wide_net_follows_the_mean_field_cosine():
    # At width 2000 the cosine's spread and its 1/n bias are a few 1e-3; the map moves it by 0.04 to 0.1.
    inputs = np.array([[1.0, 0.0, 0.0], [0.2, 1.0, 0.0]])
    tr = exact_inputs([3, 2000, 2000, 2000], 2.0, inputs, 200, 3)
    mf = theory.mean_field_cosine(3, 0.2 / math.sqrt(1.04))
    np.testing.assert_allclose(np.nanmean(tr.cosine, axis=0), mf, atol=5e-3)
    assert np.all(np.diff(mf) > 0.03)


def test_the_cosine_map_is_the_gaussian_integral_and_tends_to_one_like_9_pi2_over_2_l2():
    for rho in (-0.9, -0.3, 0.0, 0.5, 0.99):
        def integrand(y, x, r=rho):
            h, g = x, r * x + math.sqrt(1 - r * r) * y
            return max(h, 0.0) * max(g, 0.0) * math.exp(-(x * x + y * y) / 2) / (2 * math.pi)
        value, _ = integrate.dblquad(integrand, -9, 9, -9, 9, epsabs=1e-11)
        assert theory.relu_cosine_map(rho) == pytest.approx(2 * value, abs=1e-8)  # E[relu(h)^2] = 1/2
    assert theory.relu_cosine_map(1.0) == 1.0
    rhos = theory.mean_field_cosine(20_000, 0.0)
    assert (1 - rhos[-1]) * 20_000**2 == pytest.approx(9 * math.pi**2 / 2, rel=0.01)
    with pytest.raises(ValueError, match="rho0"):
        theory.mean_field_cosine(3, 1.5)


# ---------------------------------------------------------------- pieces and input checks
def test_psd_cholesky_factors_singular_gram_matrices():
    rng = np.random.default_rng(0)
    for rank in (1, 2, 4):
        b = rng.standard_normal((4, rank))
        a = b @ b.T
        out = np.zeros((4, 4))
        psd_cholesky(a, out)
        np.testing.assert_allclose(out @ out.T, a, atol=1e-12)
        assert np.all(np.triu(out, 1) == 0.0)
    a = np.cov(rng.standard_normal((4, 10)))
    out = np.zeros((4, 4))
    psd_cholesky(a, out)
    np.testing.assert_allclose(out, np.linalg.cholesky(a), rtol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"x": np.zeros(6)}, "x must be"), ({"tangents": np.ones((2, 5))}, "tangents must"),
    ({"tangents": np.ones((33, 6))}, "tangents must"), ({"widths": [6]}, "widths"), ({"c": -1.0}, "c must"),
    ({"n_nets": 0}, "n_nets"),
])
def test_bad_input_is_refused_by_name(kwargs, match):
    args = {"widths": WIDTHS, "c": 2.0, "x": X, "tangents": U, "n_nets": 10, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        exact_tangents(**args)


# ---------------------------------------------------------------- fmsim.simulate(inputs=..., tangents=...)
ARCH = fmsim.FullyConnected(WIDTHS)
HE = fmsim.Init.scheme("he")


def test_simulate_with_tangents_keeps_the_lengths_and_adds_the_jvp():
    plain = fmsim.simulate(ARCH, HE, 3000, 9, x=X, record="layers", chunk_size=1024)
    res = fmsim.simulate(ARCH, HE, 3000, 9, x=X, tangents=U, record="layers", chunk_size=1024)
    np.testing.assert_array_equal(res.lengths, plain.lengths)
    np.testing.assert_array_equal(res.log_final, plain.log_final)
    np.testing.assert_array_equal(res.fm2, plain.fm2)
    np.testing.assert_array_equal(res.summary.mean, plain.summary.mean)
    assert res.jvp.shape == (3000, 2) and res.jvp_layers.shape == (3000, len(WIDTHS), 2)
    np.testing.assert_array_equal(res.jvp, exact_tangents(WIDTHS, 2.0, X, U, 3000, 9).jvp)
    one_chunk = fmsim.simulate(ARCH, HE, 3000, 9, x=X, tangents=U, chunk_size=4096)
    np.testing.assert_array_equal(one_chunk.jvp, res.jvp)
    assert one_chunk.jvp_layers is None and one_chunk.lengths is None
    seeded = fmsim.simulate(ARCH, HE, 50, 9, tangents=U)  # x: the seeded direction, as without tangents
    np.testing.assert_array_equal(seeded.final, fmsim.simulate(ARCH, HE, 50, 9).final)


def test_simulate_with_inputs_gives_the_gram_matrices():
    inputs = np.stack([X, U[1], U[0]])
    res = fmsim.simulate(ARCH, HE, 2000, 4, inputs=inputs, record="layers", chunk_size=1024)
    assert res.gram.shape == (2000, 3, 3) and res.gram_layers.shape == (2000, len(WIDTHS), 3, 3)
    np.testing.assert_array_equal(res.gram, exact_inputs(WIDTHS, 2.0, inputs, 2000, 4).gram[:, -1])
    np.testing.assert_array_equal(res.final, res.gram[:, 0, 0])
    np.testing.assert_array_equal(res.gram, np.swapaxes(res.gram, 1, 2))
    config = res.config
    assert fmsim.RunConfig.from_dict(config.to_dict()) == config
    assert "inputs" in config.to_dict() and "inputs" not in fmsim.RunConfig(ARCH, HE, 10, 1).to_dict()


@pytest.mark.parametrize("kwargs, match", [
    ({"inputs": np.stack([X, X]), "x": X}, "not both"),
    ({"inputs": X[None]}, "k >= 2"),
    ({"inputs": np.stack([X, X]), "tangents": U}, "not both"),
    ({"tangents": U, "method": "exact_first"}, "method='full' or 'exact'"),
    ({"tangents": U, "init": fmsim.Init(law="orthogonal"), "method": "full"}, "method='exact'"),
    ({"tangents": np.ones((4, 6)), "init": fmsim.Init(law="orthogonal")}, "at most 3 tangents"),
    ({"inputs": np.ones((5, 6)), "init": fmsim.Init(law="orthogonal")}, "at most 4 inputs"),
    ({"tangents": np.ones((2, 5))}, r"shape \(m, 6\)"),
    ({"tangents": U, "init": fmsim.Init(law="uniform"), "method": "exact"}, "gaussian"),
    ({"tangents": U, "init": fmsim.Init(law="gaussian", bias_var=0.1), "method": "exact"}, "no bias"),
    ({"tangents": np.ones((1, 6)), "x": np.ones(6), "arch": fmsim.Conv((1, 2), (6,), 3)},
     "fully connected and residual"),
    ({"tangents": U, "x": np.zeros(6)}, "nonzero"),
    ({"tangents": U, "backend": "cuda"}, "NVIDIA GPU"),  # (no GPU here: tests/test_cuda.py runs them)
])
def test_simulate_refuses_what_the_gram_chain_cannot_do_yet(kwargs, match):
    args = {"arch": ARCH, "init": HE, "n_nets": 10, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        fmsim.simulate(**args)


def test_auto_takes_the_exact_chain_where_it_holds_and_full_elsewhere():
    assert make_config(ARCH, HE, 10, 0, tangents=U).method == "exact"
    assert make_config(ARCH, fmsim.Init(law="gaussian", bias_var=0.1), 10, 0, tangents=U).method == "full"
    assert make_config(ARCH, fmsim.Init(law="laplace"), 10, 0, inputs=np.stack([X, X])).method == "full"



# ---------------------------------------------------------------- method="full": several vectors, one draw of weights
LAWS = [("gaussian", "float64"), ("uniform", "float32"), ("rademacher", "float64"), ("laplace", "float32"),
        ("truncated_normal", "float64")]


@pytest.mark.parametrize("law, precision", LAWS)
def test_full_tangents_leave_the_input_its_bits_and_match_numpy_on_the_same_weights(law, precision):
    # x has no zero entry, so the union of nonzero inputs is x's own (a tangent is zero wherever x's
    # activations are): the input keeps the weights and bits of a run without tangents.
    init = fmsim.Init(law=law, c=2.0, bias_c=0.2 if law == "uniform" else 0.0)
    x = X + (X == 0.0)
    res = fmsim.simulate(ARCH, init, 40, 6, x=x, tangents=U, method="full", record="layers", precision=precision)
    plain = fmsim.simulate(ARCH, init, 40, 6, x=x, method="full", record="layers", precision=precision)
    np.testing.assert_array_equal(res.lengths, plain.lengths)
    np.testing.assert_array_equal(res.log_lengths, plain.log_lengths)
    ref_grams = reference_carried(res.config, range(40))
    rtol = 1e-11 if precision == "float64" else 2e-4  # float32: the kernel's sums (the reference is float64)
    np.testing.assert_allclose(res.jvp_layers, np.diagonal(ref_grams, axis1=2, axis2=3)[:, :, 1:], rtol=rtol,
                               atol=1e-300)
    np.testing.assert_allclose(res.lengths, ref_grams[:, :, 0, 0], rtol=rtol)


@pytest.mark.parametrize("law, precision", LAWS[:2])
def test_full_inputs_match_numpy_on_the_same_weights(law, precision):
    inputs = np.stack([X, U[0], U[1]])  # U[0] has zeros where X has none: the union grows
    init = fmsim.Init(law=law, c=2.0, bias_var=0.1)
    res = fmsim.simulate(ARCH, init, 30, 2, inputs=inputs, method="full", record="layers", precision=precision)
    rtol = 1e-11 if precision == "float64" else 2e-4
    np.testing.assert_allclose(res.gram_layers, reference_carried(res.config, range(30)), rtol=rtol,
                               atol=1e-12 if precision == "float64" else 1e-5)


def test_full_carried_runs_do_not_depend_on_chunks_or_threads():
    whole = fmsim.simulate(ARCH, HE, 2100, 3, x=X, tangents=U, method="full", chunk_size=4096)
    chunked = fmsim.simulate(ARCH, HE, 2100, 3, x=X, tangents=U, method="full", chunk_size=1024)
    np.testing.assert_array_equal(whole.jvp, chunked.jvp)
    np.testing.assert_array_equal(whole.jacobian_entries, chunked.jacobian_entries)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        serial = fmsim.simulate(ARCH, HE, 2100, 3, x=X, tangents=U, method="full", chunk_size=1024)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(serial.jvp, whole.jvp)


def test_the_exact_gram_chain_agrees_with_full_nets():
    n = 8000
    full = fmsim.simulate(ARCH, HE, n, 12, x=X, tangents=U, method="full")
    exact = fmsim.simulate(ARCH, HE, n, 12, x=X, tangents=U, method="exact")
    for i in range(2):
        assert stats.ks_2samp(full.jvp[:, i], exact.jvp[:, i]).pvalue > 1e-3
        assert stats.ks_2samp(full.jvp[:, i] / np.maximum(full.final, 1e-300),
                              exact.jvp[:, i] / np.maximum(exact.final, 1e-300)).pvalue > 1e-3
    inputs = np.stack([X, U[1]])
    full = fmsim.simulate(ARCH, HE, n, 12, inputs=inputs, method="full")
    exact = fmsim.simulate(ARCH, HE, n, 12, inputs=inputs, method="exact")
    for a, b in ((0, 1), (1, 1), (0, 0)):
        assert stats.ks_2samp(full.gram[:, a, b], exact.gram[:, a, b]).pvalue > 1e-3


def test_full_jacobian_entries_follow_the_closed_form():
    widths = [5, 8, 6, 7]
    x = np.array([1.0, 2.0, -1.0, 0.5, 0.3])
    res = fmsim.simulate(fmsim.FullyConnected(widths), fmsim.Init(c=1.5), 200_000, 14, x=x, tangents=np.eye(5)[[1]],
                         method="full")
    mean, square = theory.jacobian_entry_moments(widths, 1.5)
    _within(res.jacobian_entries[:, 0], mean)
    _within(res.jacobian_entries[:, 0] ** 2, square)



# ---------------------------------------------------------------- orthogonal weights: the exact chain
def test_orthogonal_haar_reference_is_haar():
    # The reference's own check: orthonormal columns (or rows), and E[Q_11^2] = 1/max(n_out, n_in) at 5 s.e.
    q = ref.haar(np.random.default_rng(0), 40_000, 3, 5)
    np.testing.assert_allclose(q @ np.swapaxes(q, 1, 2), np.broadcast_to(np.eye(3), (40_000, 3, 3)), atol=1e-12)
    _within(q[:, 0, 0] ** 2, 1 / 5)
    q = ref.haar(np.random.default_rng(1), 40_000, 5, 3)
    np.testing.assert_allclose(np.swapaxes(q, 1, 2) @ q, np.broadcast_to(np.eye(3), (40_000, 3, 3)), atol=1e-12)


def test_orthogonal_tangents_match_numpy_haar_nets_in_law():
    n = 6000
    tr = exact_tangents(WIDTHS, CS, X, U, n, 3, orthogonal=True)
    lengths, jvps, _ = ref.tangents(ref.orthogonal_weights(np.random.default_rng(3), n, WIDTHS, CS), X, U)
    alive, alive_ref = tr.lengths[:, -1] > 0, lengths[:, -1] > 0
    assert stats.ks_2samp(tr.lengths[:, -1], lengths[:, -1]).pvalue > 1e-3
    for i in range(2):
        assert stats.ks_2samp(np.exp(tr.log_jvp[:, -1, i]), jvps[:, -1, i]).pvalue > 1e-3
        assert stats.ks_2samp(tr.log_jvp[alive, -1, i] - tr.log_lengths[alive, -1],
                              np.log(jvps[alive_ref, -1, i] / lengths[alive_ref, -1])).pvalue > 1e-3
    assert stats.ks_2samp(tr.log_jvp[alive, -1, 0] - tr.log_jvp[alive, -1, 1],
                          np.log(jvps[alive_ref, -1, 0] / jvps[alive_ref, -1, 1])).pvalue > 1e-3


def test_orthogonal_pairs_match_numpy_haar_nets_in_law():
    n = 6000
    inputs = np.stack([X, U[0], U[1]])
    tr = exact_inputs(WIDTHS, CS, inputs, n, 4, orthogonal=True)
    grams = ref.pair_grams(ref.orthogonal_weights(np.random.default_rng(4), n, WIDTHS, CS), inputs)
    for j in (1, 2, 4):
        for a, b in ((0, 0), (0, 1), (1, 2), (2, 2)):
            assert stats.ks_2samp(tr.gram[:, j, a, b], grams[:, j, a, b]).pvalue > 1e-3, (j, a, b)


def test_orthogonal_means_follow_the_closed_form():
    tr = exact_tangents(WIDTHS, CS, X, U, 100_000, 5, orthogonal=True)
    pairs = exact_inputs(WIDTHS, CS, np.stack([X, U[1]]), 50_000, 5, orthogonal=True)
    for j, m in enumerate(mean_length(WIDTHS, CS, float(X @ X) / 6, weights="orthogonal")[1:], start=1):
        _within(tr.lengths[:, j], m)
        _within(pairs.gram[:, j, 0, 0], m)
    for i in range(2):  # the tangents' mean has the length's recursion (the mask halves it by symmetry)
        expected = mean_length(WIDTHS, CS, float(U[i] @ U[i]) / 6, weights="orthogonal")
        for j in range(1, len(WIDTHS)):
            _within(np.exp(tr.log_jvp[:, j, i]), expected[j])


def test_simulate_runs_the_orthogonal_chain_and_keeps_its_bits_across_chunks():
    init = fmsim.Init(law="orthogonal", c=2.0)
    a = fmsim.simulate(ARCH, init, 2100, 8, x=X, tangents=U, chunk_size=1024, record="layers")
    b = fmsim.simulate(ARCH, init, 2100, 8, x=X, tangents=U, chunk_size=4096, record="layers")
    assert a.config.method == "exact"
    np.testing.assert_array_equal(a.jvp_layers, b.jvp_layers)
    c = fmsim.simulate(ARCH, init, 500, 8, inputs=np.stack([X, U[0]]), chunk_size=1024)
    np.testing.assert_array_equal(c.gram, exact_inputs(WIDTHS, 2.0, np.stack([X, U[0]]), 500, 8,
                                                       orthogonal=True).gram[:, -1])
