"""precision='float32' on residual and conv nets, and the fused multiply-add the conv kernels sum with.

As FC float32 is tested (tests/test_kernels.py): the kernels against the float64 NumPy reference on the same
weights (the float32 stream layout), a distribution test per law, and bit-identical results for any thread
count and chunk size.
"""

import numba
import numpy as np
import pytest
from conftest import assert_within_se
from fmsim.reference import reference_conv_lengths, reference_residual_lengths
from numba import njit

import fmsim
from fmsim import Init, simulate, theory
from fmsim.config import Conv, Residual
from fmsim.kernels.scalar import fused_multiply_add

LAWS = ["gaussian", "uniform", "rademacher", "laplace", "truncated_normal"]


@njit(cache=True)
def _fma_compiled(a, b, c, out):
    for i in range(a.size):
        out[i] = fused_multiply_add(a[i], b[i], c[i])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_multiply_add_is_rounded_once_compiled_and_in_python(dtype):
    """The compiled llvm.fma and the exact rational one the CUDA simulator runs give the same bits, and differ
    from the twice-rounded a b + c: cancellation-heavy operands, c = -(a b) + small."""
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal(4000).astype(dtype) for _ in range(3))
    c = (-(a * b) + c * dtype(1e-5)).astype(dtype)
    out = np.empty_like(a)
    _fma_compiled(a, b, c, out)
    python = np.array([fused_multiply_add(x, y, z) for x, y, z in zip(a, b, c)], dtype=dtype)
    np.testing.assert_array_equal(out, python)
    assert np.count_nonzero(out != (a * b + c).astype(dtype)) > 1000
    # exact cases: 3 * 5 - 15 = 0, and 2^-30 survives where a b + c rounds it away in float32
    assert fused_multiply_add(np.float32(1 + 2**-12), np.float32(1 + 2**-12), np.float32(-1)) == np.float32(
        2**-11 + 2**-24)


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("arch", [Conv((2, 5, 3), (6, 5), 3), Conv((3, 6, 4), (9,), 5),
                                  Residual(7, (0.6, 1.1), (5, 4), "relu"), Residual(6, (0.8,), (), "linear")],
                         ids=["conv2d", "conv1d", "res-relu", "res-linear"])
def test_float32_kernels_agree_with_the_float64_reference_on_the_same_weights(arch, law):
    """Documented tolerance (RunConfig): relative 1e-4 on M_j against float64 arithmetic on the same weights."""
    res = simulate(arch, Init(law, 2.0, bias_var=0.1 if law == "uniform" else 0.0), 1024, seed=4, method="full",
                   record="layers", precision="float32")
    assert res.config.precision == "float32"
    nets = [0, 1, 2, 700, 1023]
    reference = reference_conv_lengths if isinstance(arch, Conv) else reference_residual_lengths
    ref = reference(res.config, nets)
    alive = ref > 0
    assert np.array_equal(alive, res.lengths[nets] > 0)
    rel = np.abs(res.lengths[nets][alive] / ref[alive] - 1)
    assert rel.max() < 1e-4
    assert rel.max() > 0  # it really is float32 arithmetic


@pytest.mark.parametrize("law", LAWS)
def test_float32_conv_mean_is_preserved_under_he(law):
    """E[M_j] = M_0 for every j (c = 2, any symmetric law): 5 s.e., s.e. from the sample."""
    res = simulate(Conv((3, 6, 6, 6), (8,), 3), Init(law, 2.0), 20_000, seed=6, precision="float32")
    assert_within_se(res.summary.mean[1:], res.m0, res.summary.sem[1:], what=f"E[M_j] float32 conv {law}")


@pytest.mark.parametrize("law", LAWS)
def test_float32_residual_mean_matches_closed_form(law):
    """E[M_l] of ReLU-less (linear-ending) residual modules, any law: 5 s.e., s.e. from the sample."""
    arch = Residual.scheduled(10, 6, "1/l", 1.0, module_widths=(8,))
    res = simulate(arch, Init(law, 2.0), 20_000, seed=5, method="full", precision="float32")
    truth = theory.residual_mean_length(arch.etas, arch.module_widths, m0=res.m0)
    assert_within_se(res.summary.mean[1:], truth[1:], res.summary.sem[1:], what=f"E[M_l] float32 residual {law}")


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("arch", [Conv((2, 5, 6), (5, 6), 3), Residual(8, (0.5, 0.9), (6,), "relu")],
                         ids=["conv", "residual"])
def test_bit_identical_across_thread_counts_and_chunk_sizes(arch, precision):
    init = Init.scheme("he")
    kw = dict(method="full", precision=precision)
    base = simulate(arch, init, 3000, seed=9, record="layers", chunk_size=2048, **kw)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = simulate(arch, init, 3000, seed=9, record="layers", chunk_size=1024, **kw)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(base.lengths, serial.lengths)
    np.testing.assert_array_equal(base.fm2, serial.fm2)
    for field in ("mean", "var", "log_mean", "log_var", "n_zero"):
        np.testing.assert_array_equal(getattr(base.summary, field), getattr(serial.summary, field))


def test_float32_is_refused_where_it_does_not_exist():
    with pytest.raises(ValueError, match="precision='float32' exists for method='full'"):
        simulate(Residual(4, (0.5,)), Init(), 10, 1, method="exact", precision="float32")
    with pytest.raises(ValueError, match="law='orthogonal' runs in precision='float64' only"):
        simulate(Conv((2, 3), (4,), 3), Init.scheme("orthogonal"), 10, 1, precision="float32")
    res = simulate(Residual(4, (0.5,)), Init(), 10, 1, precision="float32")  # auto: full in float32
    assert res.config.method == "full"


def test_float32_conv_runs_from_the_command_line_and_round_trips_through_hdf5(tmp_path):
    from fmsim.cli import main

    path = tmp_path / "conv32.h5"
    assert main(["simulate", "--channels", "2,3,3", "--spatial", "6", "--kernel", "3", "--nets", "2048",
                 "--seed", "3", "--precision", "float32", "--out", str(path)]) in (0, None)
    back = fmsim.open(path)
    assert back.config.precision == "float32" and back.config.method == "full"
    again = simulate(back.config.arch, back.config.init, 2048, seed=3, precision="float32")
    np.testing.assert_array_equal(back.summary.mean, again.summary.mean)


def test_the_bit_budget_is_recorded_in_the_file(tmp_path):
    """Attribute bits_per_weight: 32 for float32 Gaussian conv weights, 64 in float64, 32 uniform, 1 Rademacher."""
    import h5py
    from fmsim.store import run_to_file

    from fmsim.running.simulate import make_config

    cases = [(Conv((2, 3), (4,), 3), Init.scheme("he"), "float32", 32),
             (Conv((2, 3), (4,), 3), Init.scheme("he"), "float64", 64),
             (Residual(4, (0.5,), (3,), "relu"), Init("uniform", 2.0), "float64", 32),
             (Residual(4, (0.5,), (3,), "relu"), Init("rademacher", 2.0), "float32", 1)]
    for i, (arch, init, precision, bits) in enumerate(cases):
        path = tmp_path / f"run{i}.h5"
        run_to_file(make_config(arch, init, 1024, 1, method="full", precision=precision), path)
        with h5py.File(path, "r") as f:
            assert int(f.attrs["bits_per_weight"]) == bits and f.attrs["precision"] == precision


@pytest.mark.parametrize("precision,rtol", [("float64", 1e-12), ("float32", 1e-4)])
@pytest.mark.parametrize("spatial", [(50, 48), (2100,)], ids=["2d-two-passes", "1d-row-longer-than-a-pass"])
def test_conv_images_larger_than_one_pass_equal_the_reference(spatial, precision, rtol):
    """Images of more positions than a pass of the conv kernel holds (CONV_SPAN): 2D in passes of whole rows,
    1D with one row longer than a pass."""
    res = simulate(Conv((2, 5, 3), spatial, 3), Init("gaussian", 2.0, bias_var=0.2), 3, seed=8, method="full",
                   record="layers", precision=precision)
    np.testing.assert_allclose(res.lengths, reference_conv_lengths(res.config, range(3)), rtol=rtol)
