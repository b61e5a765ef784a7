"""Lengths in log space: nets of any depth never underflow, overflow or die by rounding.

The kernels hold each net's activations divided by a power of two and carry
its exponent (fmsim.kernels.scalar.renorm_shift); the exact samplers carry
``M_j = m 2^shift`` the same way. Statistical checks use fixed seeds and
5 standard errors computed from the sample (N_SIGMA in conftest).
"""

import math

import numpy as np
import pytest
from conftest import N_SIGMA, assert_within_se
from fmsim.display import format_from_log, format_value
from fmsim.rng import seed_to_key

import fmsim
from fmsim import FullyConnected, Init, simulate, theory
from fmsim.kernels import cpu, exact, scalar
from fmsim.running import statistics
from fmsim.running.launch import FullyConnectedFull, plan, scaled_input
from fmsim.running.simulate import make_config


def _law(arch, init):
    return theory.length_law(arch.widths, init.layer_c(arch))


def _check_against_law(res, law, what):
    """Dead fraction against P(dead) (binomial z), mean and variance of log M_d against the exact law."""
    n = res.n_done
    s = res.summary
    dead = int(s.n_zero[-1])
    p = law.p_dead
    assert abs(dead - n * p) <= N_SIGMA * math.sqrt(n * p * (1 - p)) + 1, f"{what}: {dead} dead of {n}, P = {p:.3g}"
    mean, var = law.log_mean_var()
    alive = n - dead
    # log M_d is a sum of many independent layer terms, close to normal: Var of the sample variance ~ 2 var^2/(n-1)
    assert_within_se(s.log_mean[-1], mean, math.sqrt(var / alive), what=f"{what}: E[log M_d]")
    assert_within_se(s.log_var[-1], var, var * math.sqrt(2.0 / (alive - 1)), what=f"{what}: Var[log M_d]")
    logs = res.log_final
    assert np.all(np.isfinite(logs) | (logs == -np.inf))
    assert np.count_nonzero(logs == -np.inf) == dead
    for name in ("log_mean", "log_var", "log_of_mean", "log_of_var"):  # (layer 0: M_0 is one number, Var = 0)
        assert np.all(np.isfinite(getattr(s, name)[1:])), f"{what}: {name} has nan or inf"
    np.testing.assert_allclose(s.log_mean[-1], np.mean(logs[np.isfinite(logs)]), rtol=1e-12)


@pytest.mark.parametrize("scheme", ["lecun", "2x_he"])
@pytest.mark.parametrize("method", ["exact", "full"])
def test_depth_1100_width_50_agrees_with_the_exact_law(scheme, method):
    """LeCun: E[M_d] = 2^-1100 underflows float64 (fmsim 0.6 counted every net dead); 2x He overflows it."""
    arch, init = FullyConnected.constant(depth=1100, width=50), Init.scheme(scheme)
    res = simulate(arch, init, 2048, seed=4, method=method)
    _check_against_law(res, _law(arch, init), f"{scheme} {method} d=1100")
    if scheme == "lecun":  # log M_d about -819: M_d itself is beyond float64 (2x He: about +705, partly inside)
        assert np.all(res.final == 0.0)
    assert res.summary.n_zero[-1] == 0  # P(dead) = 1e-12: none of them is dead
    law_log_mean = _law(arch, init).log_moment(1.0)
    se = math.exp(0.5 * (res.summary.log_of_var[-1] - res.summary.log_of_mean[-1] * 2)) / math.sqrt(2048)
    if scheme == "lecun":  # E[M_d] = 2^-1100 M_0; the relative standard error of the sample mean is 'se'
        assert abs(math.expm1(res.summary.log_of_mean[-1] - law_log_mean)) <= N_SIGMA * se


@pytest.mark.parametrize("scheme", ["lecun", "2x_he"])
@pytest.mark.parametrize("method,nets", [("exact", 4096), ("full", 1024)])
def test_depth_10000_width_30_agrees_with_the_exact_law(scheme, method, nets):
    """P(dead) = 9.3e-6 at width 30 (at width 10 nearly every net dies); log M_d about -7000 or +6900."""
    arch, init = FullyConnected.constant(depth=10_000, width=30), Init.scheme(scheme)
    res = simulate(arch, init, nets, seed=5, method=method, chunk_size=1024)
    _check_against_law(res, _law(arch, init), f"{scheme} {method} d=10000")


def test_in_range_nets_keep_their_bits():
    """Renormalization divides by powers of two: a net that crosses the window but stays inside float64's range
    has, layer by layer, the bits of the same kernel run without renormalization (renorm_high = inf)."""
    cfg = make_config(FullyConnected.constant(depth=120, width=40), Init("uniform", 1.0, bias_var=1e-40), 64, 3,
                      method="full")
    c = plan(cfg, 0)
    assert type(c) is FullyConnectedFull and c.x_shift == 0
    outs = []
    for high in (scalar.RENORM_HIGH, np.inf):
        lengths, logs = np.empty((64, 121)), np.empty((64, 121))
        cpu.fc_full(c.x, c.x_shift, c.widths, c.scales, c.bias_sds, c.law, c.k0, c.k1, c.net0, 0.0, False,
                    *c.first_layer(), high, lengths, logs)
        outs.append((lengths, logs, statistics.compute(lengths, logs)))
    (lengths, logs, fm2), (plain, _, plain_fm2) = outs
    assert np.all(plain[:, -1] < 2.0**-64) and np.all(plain[:, -1] > 1e-200)  # renormalized, and in range
    np.testing.assert_array_equal(lengths, plain)
    np.testing.assert_array_equal(fm2, plain_fm2)
    np.testing.assert_allclose(logs, np.log(plain), rtol=1e-14)


def test_exact_sampler_keeps_its_bits_against_the_plain_product():
    """The exact sampler's M_j against the plain product (c/n) chi2(K) M_{j-1}, drawn by the same scalar
    functions in Python, without renormalization: bit-identical while in range."""
    arch = FullyConnected.constant(depth=100, width=20)
    res = simulate(arch, Init.scheme("lecun"), 8, seed=9, method="exact", record="layers")
    k0, k1 = (np.uint64(w) for w in seed_to_key(9))
    for net in range(8):
        m = res.lengths[net, 0]
        for j in range(1, 101):
            m = m * exact.exact_layer_ratio(20, 1.0, np.uint64(j), np.uint64(net), k0, k1)
            assert m == res.lengths[net, j]
    assert res.lengths[:, -1].max() < 2.0**-64  # (it crossed the window)


def test_record_layers_depth_300_2x_he_has_no_inf(tmp_path):
    """2x He at depth = width = 150 overflowed float32 traces from layer 122 (fmsim 0.6); logs do not."""
    arch = FullyConnected.constant(depth=300, width=150)
    path = tmp_path / "deep.h5"
    mem = simulate(arch, Init.scheme("2x_he"), 64, seed=1, record="layers", method="exact", chunk_size=1024)
    back = fmsim.run_to_file(make_config(arch, Init.scheme("2x_he"), 64, 1, method="exact", record="layers",
                                         chunk_size=1024), path)
    for logs in (mem.log_lengths, back.log_lengths):
        assert np.all(np.isfinite(logs))
    assert back.log_lengths.dtype == np.float32
    np.testing.assert_array_equal(back.log_lengths, mem.log_lengths.astype(np.float32))
    np.testing.assert_array_equal(back.log_final, mem.log_final)
    assert np.all(mem.log_lengths[:, -1] > 180)  # about 300 log 2 = 208: far beyond float32 (88.7)
    np.testing.assert_array_equal(back.summary.log_of_mean, mem.summary.log_of_mean)


def test_large_input_keeps_the_law_of_the_ratio():
    """||x||^2 overflows float64 for x = (1e300, 1e300, 0); M_d / M_0 does not depend on the scale of x."""
    arch, init = FullyConnected((3, 5, 5)), Init.scheme("he")
    big = simulate(arch, init, 1024, seed=2, x=[1e300, 1e300, 0.0], method="full")
    small = simulate(arch, init, 1024, seed=2, x=[1.0, 1.0, 0.0], method="full")
    log_m0 = math.log(2.0) + 600 * math.log(10.0) - math.log(3.0)
    np.testing.assert_allclose(big.summary.log_of_mean[0], log_m0, rtol=1e-14)
    assert np.isinf(big.summary.mean[0])  # beyond float64, and its log says how far
    alive = np.isfinite(small.log_final)
    np.testing.assert_array_equal(alive, np.isfinite(big.log_final))
    np.testing.assert_allclose(big.log_final[alive] - log_m0, small.log_final[alive] - math.log(2 / 3), atol=1e-9)
    xs, shift = scaled_input(np.array([1e300, 1e300, 0.0]))
    assert shift == 997 and np.all(np.ldexp(xs, shift) == [1e300, 1e300, 0.0])


def test_summary_of_logs_matches_numpy():
    """Summaries from log M_j (pivoted Welford, blocks merged) against NumPy on the same nets, in range."""
    res = simulate(FullyConnected.constant(depth=6, width=8), Init.scheme("he"), 5000, seed=3, record="layers",
                   chunk_size=2048)
    s = res.summary
    L = res.lengths
    np.testing.assert_allclose(s.mean, L.mean(0), rtol=1e-13)
    np.testing.assert_allclose(s.var[1:], L.var(0, ddof=1)[1:], rtol=1e-11)
    assert s.var[0] == 0.0 and s.mean[0] == L[0, 0]
    for j in range(7):
        alive = L[:, j] > 0
        np.testing.assert_allclose(s.log_mean[j], np.log(L[alive, j]).mean(), rtol=1e-12)
        assert s.n_zero[j] == np.count_nonzero(~alive)
    np.testing.assert_allclose(s.fm2_mean, res.fm2.mean(), rtol=1e-13)


def test_summary_does_not_depend_on_chunk_size():
    arch, init = FullyConnected.constant(depth=200, width=10), Init.scheme("lecun")
    a = simulate(arch, init, 5000, seed=1, chunk_size=1024, method="exact")
    b = simulate(arch, init, 5000, seed=1, chunk_size=4096, method="exact")
    for name in ("log_of_mean", "log_of_var", "log_mean", "log_var", "n_zero"):
        np.testing.assert_array_equal(getattr(a.summary, name), getattr(b.summary, name))
    np.testing.assert_array_equal(a.log_final, b.log_final)


def test_formatting_never_shows_zero_or_inf_for_a_number_that_is_neither():
    assert format_from_log(-1100 * math.log(2)) == "10^-331.13"
    assert format_from_log(math.log(0.25)) == "0.25"
    assert format_from_log(800.0) == "10^347.44"
    assert format_from_log(-math.inf) == "0" and format_from_log(math.inf) == "inf"
    assert format_value(0.0, -900.0) == "10^-390.87"
    assert format_value(3.0) == "3"


def test_cli_law_and_info_print_powers_of_ten(tmp_path, capsys):
    from fmsim import cli

    assert cli.main(["law", "--depth", "1100", "--width", "50", "--scheme", "lecun"]) == 0
    out = capsys.readouterr().out
    assert "E[M_d^1] = 10^-331.13" in out and "mean -819.37" in out
    assert " 0 " not in out.split("quantile")[1]  # no quantile printed as 0 (P(dead) = 1e-12)
    assert cli.main(["law", "--depth", "100000", "--width", "2", "--scheme", "he"]) == 0  # was an OverflowError
    out = capsys.readouterr().out
    assert "P(alive) = 10^-12493.87" in out
    path = str(tmp_path / "deep.h5")
    assert cli.main(["simulate", "--depth", "1100", "--width", "50", "--scheme", "lecun", "--nets", "1024",
                     "--method", "exact", "--out", path, "--quiet"]) == 0
    assert cli.main(["info", path]) == 0
    out = capsys.readouterr().out
    assert "E[M_d] = 10^-3" in out and "dead 0" in out, out


def test_files_of_schema_3_open_with_derived_logs_and_are_not_resumed(tmp_path):
    """A file laid out as fmsim 0.8 wrote it (lengths as float32 M, no log_final, six moment columns)."""
    import h5py
    from fmsim.store import StoreError

    arch, init = FullyConnected.constant(depth=100, width=8), Init.scheme("lecun")  # P(dead) = 0.32
    cfg = make_config(arch, init, 2048, 1, method="exact", record="layers", chunk_size=1024)
    path = tmp_path / "old.h5"
    new = fmsim.run_to_file(cfg, path)
    with h5py.File(path, "r+") as f:
        del f["log_final"], f["log_lengths"], f["summary/log_of_mean"], f["summary/log_of_var"]
        f.create_dataset("lengths", data=new.lengths.astype(np.float32))
        moments = f["summary/moments"][()][:, :6]
        moments[:-1, 1:3] = 0.0  # (stand-ins: 0.8 stored the mean and M2 of M itself)
        del f["summary/moments"], f["summary/moment"]
        f.create_dataset("summary/moments", data=moments)
        f.create_dataset("summary/moment", data=["count", "mean", "M2", "log_count", "log_mean", "log_M2"],
                         dtype=h5py.string_dtype())  # (six columns, no pivot)
        f.attrs["schema_version"] = 3
        del f.attrs["attributes_sha256"]  # (fmsim < 0.12 wrote none)
    old = fmsim.open(path)
    known = (old.final > 0) & np.isfinite(old.final)
    assert np.any(~known) and np.any(known)
    np.testing.assert_allclose(old.log_final[known], new.log_final[known], rtol=1e-14)
    assert np.all(np.isnan(old.log_final[~known]))  # 0: a dead net, or an underflow, cannot be told apart
    layers = old.lengths > 0  # (float32 M_j: more of them underflow)
    np.testing.assert_allclose(old.log_lengths[layers], np.log(new.lengths.astype(np.float32)[layers]), rtol=1e-6)
    assert np.all(np.isnan(old.log_lengths[~layers]))
    np.testing.assert_array_equal(old.summary.log_mean, new.summary.log_mean)
    with h5py.File(path, "r+") as f:
        f["chunks_done"][()] = 1
    with pytest.raises(StoreError, match="schema 3.*Finish it with the fmsim that started it"):
        fmsim.run_to_file(cfg, path)
