"""Orthogonal weights (``law="orthogonal"``): Haar matrices, exact samplers, the exact law and closed forms.

Statistical tests use fixed seeds and a bound of 5 standard errors computed from the sample (or, for
probabilities, from the binomial with the exact p); KS tests at a fixed seed require p > 1e-6, about 5 s.d.
"""

import math

import numpy as np
import pytest
from fmsim.orthogonal import haar_from_gaussian, orthogonal_weights
from fmsim.reference import reference_orthogonal_lengths
from fmsim.rng import seed_to_key
from scipy import stats

import fmsim
from fmsim import theory
from fmsim.config import Conv, FullyConnected, Init, Residual
from fmsim.running.simulate import check_backend, make_config, run_chunk

ORTH = Init.scheme("orthogonal")
Z = 5.0  # standard errors


def _within(sample_mean, sample_sd, n, exact, z=Z):
    se = sample_sd / math.sqrt(n)
    assert abs(sample_mean - exact) < z * se, f"{sample_mean} vs {exact}: {(sample_mean - exact) / se:+.2f} s.e."


# ------------------------------------------------------------------------------------------ Haar matrices
@pytest.mark.parametrize("shape", [(3, 7), (7, 3), (5, 5), (1, 4), (4, 1)])
def test_haar_from_gaussian_follows_pytorch_convention(shape):
    g = np.random.default_rng(1).standard_normal(shape)
    w = haar_from_gaussian(g)
    assert w.shape == shape
    if shape[0] < shape[1]:  # orthonormal rows; G^T = Q R with diag(R) > 0, W = Q^T
        np.testing.assert_allclose(w @ w.T, np.eye(shape[0]), atol=1e-13)
        r = w @ g.T
    else:  # orthonormal columns; G = Q R, W = Q
        np.testing.assert_allclose(w.T @ w, np.eye(shape[1]), atol=1e-13)
        r = w.T @ g
    np.testing.assert_allclose(np.tril(r, -1), 0.0, atol=1e-12)
    assert np.all(np.diag(r) > 0)


def test_haar_entries_have_the_haar_moments():
    # W (4 x 4) Haar: E[W_11^2] = 1/4, E[W_11^4] = 3/(4 * 6) = 1/8 (uniform unit vector in R^4)
    key = seed_to_key(5)
    w11 = np.array([orthogonal_weights(4, 4, key, 1, net)[0, 0] for net in range(20_000)])
    _within(np.mean(w11**2), np.std(w11**2), w11.size, 0.25)
    _within(np.mean(w11**4), np.std(w11**4), w11.size, 0.125)
    _within(np.mean(w11), np.std(w11), w11.size, 0.0)


# --------------------------------------------------------------------- full kernels against np.linalg.qr
@pytest.mark.parametrize("arch", [
    FullyConnected((6, 4, 9, 9, 3)),
    Residual(5, (0.7, 0.5, 1.0), (7, 3), "linear"),
    Residual(5, (0.7, 0.5), (), "relu", c_out=1.5),
    Residual(4, (0.9,), (9,), "relu"),
    Conv((2, 3, 5), (5, 4), 3),
    Conv((2, 4, 3), (8,), 3),
])
def test_full_kernels_equal_numpy_qr(arch):
    cfg = make_config(arch, ORTH, n_nets=9, seed=11, method="full", record="layers", chunk_size=1024)
    lengths, logs, _ = run_chunk(cfg, 0)
    ref = reference_orthogonal_lengths(cfg, range(9))
    np.testing.assert_allclose(lengths, ref, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(np.isneginf(logs), lengths == 0)


def test_full_does_not_depend_on_threads_or_chunks():
    import numba

    arch = FullyConnected((5, 7, 3, 6))
    runs = []
    for threads, chunk in ((1, 1024), (2, 2048), (2, 1024)):
        numba.set_num_threads(threads)
        runs.append(fmsim.simulate(arch, ORTH, 2100, 3, method="full", record="layers", chunk_size=chunk).lengths)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])


# ------------------------------------------------------------------------------- exact against full
@pytest.mark.parametrize("arch", [
    FullyConnected((6, 4, 9, 9, 3)),      # narrowing then widening
    FullyConnected((3, 8, 2, 5)),
    Residual(5, (0.7, 1.2, 0.5), (7, 3), "linear"),
    Residual(5, (0.7, 1.2), (), "linear"),
    Residual(4, (0.9, 0.6), (9,), "linear"),  # output layer 4 x 9 projects
    Residual(5, (0.7, 1.2), (7, 3), "relu"),
    Residual(4, (0.9, 0.6), (), "relu", c_out=1.0),
])
def test_exact_sampler_matches_full_ks(arch):
    n = 20_000
    x = np.linspace(-1.0, 2.0, arch.input_size)  # one input for both seeds: ReLU-ending laws depend on its direction
    exact = fmsim.simulate(arch, ORTH, n, 21, method="exact", record="layers", x=x).lengths
    full = fmsim.simulate(arch, ORTH, n, 22, method="full", record="layers", x=x).lengths
    for j in range(1, arch.depth + 1):
        p = stats.ks_2samp(exact[:, j], full[:, j]).pvalue
        assert p > 1e-6, f"layer {j}: KS p = {p}"


def test_exact_does_not_depend_on_chunks_and_resolves_from_auto():
    arch = FullyConnected((6, 4, 9, 9, 3))
    a = fmsim.simulate(arch, ORTH, 3000, 4, record="layers", chunk_size=1024)
    b = fmsim.simulate(arch, ORTH, 3000, 4, method="exact", record="layers", chunk_size=2048)
    assert a.config.method == "exact"
    np.testing.assert_array_equal(a.lengths, b.lengths)
    assert make_config(Conv((1, 2), (4,), 3), ORTH, 10, 1).method == "full"


# -------------------------------------------------------------------------- the law and closed forms
def test_law_cdf_and_p_dead_against_full_1e5_nets():
    arch = FullyConnected((6, 4, 9, 9, 3))
    n = 100_000
    final = fmsim.simulate(arch, ORTH, n, 3, method="full").final
    law = theory.length_law(arch.widths, 2.0, weights="orthogonal")
    for v in (0.05, 0.2, 0.5, 1.0, 2.0, 5.0):
        p = float(law.cdf(v))
        _within(np.mean(final <= v), math.sqrt(p * (1 - p)), n, p)
    _within(np.mean(final == 0), math.sqrt(law.p_dead * (1 - law.p_dead)), n, law.p_dead)


def test_law_quantiles_and_log_moments_against_exact_sampler():
    widths = (16, 8, 32, 32, 4, 16, 16)
    n = 200_000
    res = fmsim.simulate(FullyConnected(widths), Init("orthogonal", c=(2.0, 1.0, 2.0, 3.0, 2.0, 2.0)), n, 8)
    law = theory.length_law(widths, (2.0, 1.0, 2.0, 3.0, 2.0, 2.0), weights="orthogonal")
    final = res.final
    for q in (0.1, 0.5, 0.9):
        x = float(law.quantile(q))
        _within(np.mean(final <= x), math.sqrt(q * (1 - q)), n, q)
    alive = res.log_final[np.isfinite(res.log_final)]
    mean, var = law.log_mean_var()
    _within(alive.mean(), alive.std(), alive.size, mean)
    dev2 = (alive - alive.mean()) ** 2
    _within(dev2.mean(), dev2.std(), alive.size, var)


def test_law_moments_equal_closed_forms():
    for widths, c in [((6, 4, 9, 9, 3), 2.0), ((20,) * 11, 2.0), ((8, 32, 32, 5), (1.0, 2.0, 3.0))]:
        law = theory.length_law(widths, c, weights="orthogonal")
        for k in (1, 2, 3):
            assert law.moment(k) == pytest.approx(theory.orthogonal_moments(widths, k, c)[-1], rel=1e-10)
        np.testing.assert_allclose(theory.orthogonal_moments(widths, 1, c),
                                   theory.mean_length(widths, c, weights="orthogonal"), rtol=1e-12)
    # the numbers: square layers n = 20, d = 10
    assert theory.orthogonal_moments((20,) * 11, 2)[-1] == pytest.approx(np.prod([1 + 3 / 22] * 10), rel=1e-12)
    assert theory.orthogonal_moments((20,) * 11, 2)[-1] == pytest.approx(3.5907, abs=1e-4)
    assert theory.gaussian_moments((20,) * 11, 2)[-1] == pytest.approx(9.3132, abs=1e-4)


@pytest.mark.parametrize("method,n", [("exact", 400_000), ("full", 40_000)])
def test_second_moment_square_layers(method, n):
    widths = (20,) * 11
    final = fmsim.simulate(FullyConnected(widths), ORTH, n, 31, method=method).final
    _within(np.mean(final**2), np.std(final**2), n, theory.orthogonal_moments(widths, 2)[-1])
    _within(np.mean(final), np.std(final), n, 1.0)


@pytest.mark.parametrize("method,n", [("exact", 200_000), ("full", 20_000)])
def test_widening_layers_lose_length(method, n):
    # E[M_j]/M_{j-1} = (c/2) min(n_{j-1}, n_j)/n_j: 8 -> 32 keeps 1/4 under gain sqrt 2, He keeps all
    widths = (8, 32, 32, 16)
    res = fmsim.simulate(FullyConnected(widths), ORTH, n, 41, method=method, record="layers")
    exact = theory.mean_length(widths, 2.0, weights="orthogonal")
    np.testing.assert_allclose(exact, [1.0, 0.25, 0.25, 0.25])
    for j in (1, 2, 3):
        col = res.lengths[:, j]
        _within(col.mean(), col.std(), n, exact[j])


def test_deep_orthogonal_unit_in_log_space():
    widths = (30,) * 2001  # orthogonal_unit: E[M_d] = 2^-2000, far below float64; P(dead) = 1.9e-6
    n = 4096
    res = fmsim.simulate(FullyConnected(widths), Init.scheme("orthogonal_unit"), n, 5)
    law = theory.length_law(widths, 1.0, weights="orthogonal")
    assert law.log_moment(1) == pytest.approx(-2000 * math.log(2), rel=1e-12)
    alive = res.log_final[np.isfinite(res.log_final)]
    assert alive.size == n
    mean, var = law.log_mean_var()
    _within(alive.mean(), alive.std(), alive.size, mean)


# ---------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,match", [
    ({"law": "orthogonal", "bias_var": 0.1}, "bias_var and bias_c must be 0 for law='orthogonal'"),
    ({"law": "orthogonal", "c": 0.0}, "c must be > 0"),
    ({"law": "orthogonal", "c": -1.0}, "c must be > 0"),
    ({"law": "orthogonal", "fan": "avg"}, "fan must be 'in' for law='orthogonal'"),
    ({"law": "orthgonal"}, "law must be one of"),
])
def test_bad_init_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Init(**kwargs)


def test_bad_runs_are_refused_before_work():
    arch = FullyConnected((4, 4, 4))
    with pytest.raises(ValueError, match="precision='float64' only"):
        make_config(arch, ORTH, 10, 1, precision="float32")
    with pytest.raises(ValueError, match="exact_first"):
        make_config(arch, ORTH, 10, 1, method="exact_first")
    with pytest.raises(ValueError, match="largest here has"):
        make_config(FullyConnected((3000, 3000)), ORTH, 10, 1, method="full")
    with pytest.raises(ValueError, match="method='exact' needs law='gaussian' or 'orthogonal'"):
        make_config(arch, Init("uniform"), 10, 1, method="exact")
    with pytest.raises(ValueError, match="backend='cpu' only"):
        check_backend(make_config(arch, ORTH, 10, 1, method="full"), "cuda")
    with pytest.raises(ValueError, match="no entry law"):
        _ = ORTH.m4
    with pytest.raises(ValueError, match="weights must be"):
        theory.length_law((4, 4), weights="haar")


def test_schemes_and_law_cli(capsys):
    from fmsim.cli import main

    main(["schemes"])
    out = capsys.readouterr().out
    assert "orthogonal " in out and "orthogonal_unit" in out
    main(["law", "--widths", "8,32,32", "--scheme", "orthogonal", "--json"])
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["moments"]["1"] == pytest.approx(0.25, rel=1e-12)


# ------------------------------------------------------------------------------------------ training
def test_mlp_orthogonal_init_is_the_simulators_and_orthogonal():
    """Every layer of the MLP at init is the simulator's ``full`` net (the same Haar matrices, ReLU at every
    hidden layer), and each weight matrix is ``sqrt(c)`` times a matrix with orthonormal rows or columns."""
    from fmsim.mlp import MLP

    widths = (12, 8, 20, 9)
    mlp = MLP(widths + (3,), loss="mse")
    x = np.linspace(-1.0, 2.0, widths[0])
    res = fmsim.simulate(FullyConnected(widths), ORTH, n_nets=4, seed=77, method="full", record="layers", x=x)
    for net in range(4):
        theta = mlp.init_params(ORTH, seed=77, net=net, dtype=np.float64)
        fwd = mlp.forward(theta, x[None, :])
        m = [float(np.sum(h * h)) / h.size for h in fwd.post]  # M_0 .. M_{L-1}
        np.testing.assert_allclose(m, res.lengths[net], rtol=1e-12)
        for W, b in mlp.layers(theta):  # W is (n_in, n_out)
            small = min(W.shape)
            gram = W.T @ W if W.shape[1] == small else W @ W.T
            np.testing.assert_allclose(gram, 2.0 * np.eye(small), atol=1e-12)
            assert not np.any(b)
