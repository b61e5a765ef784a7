"""CUDA backend against the CPU with the same seed.

Run in a separate process: ``NUMBA_ENABLE_CUDASIM=1 pytest -m cuda tests/test_cuda.py``
(the variable must be set before numba is imported), or on a real GPU. Under
the simulator the device code is the same Python run on the CPU, so results
are bit-identical; on a GPU, fused multiply-adds change the last bits, so the
comparison is to float64 rounding (rtol 1e-12).
"""

import os

import numpy as np
import pytest
from bits_cases import GOLDEN, device_cases, run_device_case

import fmsim
from fmsim.running import cuda_backend
from fmsim.running.simulate import make_config, reduce_chunk, run_chunk

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not cuda_backend.is_available(), reason="no CUDA device or simulator"),
]
SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
N = 1030 if SIM else 20_000  # tiny under the simulator: crosses one chunk boundary


def _compare(a, b, rtol=1e-12):
    if SIM:
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-300)


@pytest.mark.parametrize(
    ("widths", "init"),
    [((5, 4, 3, 6), fmsim.Init(c=2.3)), ((30, 20, 20, 20, 20), fmsim.Init(c=(1.0, 2.0, 3.0, 2.0))),
     ((5, 4, 3, 6), fmsim.Init(c=2.0, bias_var=0.3)),
     ((5, 4, 3, 6), fmsim.Init(c=1.0, bias_c=(1.0, 0.0, 2.5)))],  # fan-scaled, one per layer
)
def test_exact_cuda_equals_cpu(widths, init):
    cfg = make_config(fmsim.FullyConnected(widths), init, N, 7, method="exact", chunk_size=1024)
    for k in range(cfg.n_chunks) if SIM else (0, cfg.n_chunks - 1):
        cpu, gpu = run_chunk(cfg, k, "cpu"), run_chunk(cfg, k, "cuda")
        for a, b in zip(cpu, gpu):  # lengths, log lengths, fm2
            _compare(a, b)


@pytest.mark.parametrize(
    "init",
    [fmsim.Init(law="laplace", c=(1.5, 2.0, 2.5), bias_var=0.2), fmsim.Init(law="truncated_normal"),
     fmsim.Init(law="uniform"), fmsim.Init(law="rademacher", bias_var=0.1), fmsim.Init.scheme("pytorch_default"),
     fmsim.Init(law="gaussian", bias_var=(0.1, 0.0, 0.3))],
)
def test_full_cuda_equals_cpu(init):
    widths = (5, 4, 3, 6) if SIM else (33, 40, 17, 64)
    cfg = make_config(fmsim.FullyConnected(widths), init, N, 11, method="full", chunk_size=1024)
    cpu, gpu = run_chunk(cfg, 1, "cpu"), run_chunk(cfg, 1, "cuda")
    for a, b in zip(cpu, gpu):  # lengths, log lengths, fm2
        _compare(a, b)


def test_simulate_backend_cuda_and_auto():
    arch = fmsim.FullyConnected((6, 5, 5))
    cpu = fmsim.simulate(arch, fmsim.Init(), 2048, 3, method="exact", backend="cpu", record="layers")
    gpu = fmsim.simulate(arch, fmsim.Init(), 2048, 3, method="exact", backend="auto", record="layers")
    _compare(cpu.lengths, gpu.lengths)
    np.testing.assert_allclose(cpu.summary.mean, gpu.summary.mean, rtol=1e-12)


@pytest.mark.parametrize("arch,init,method", [
    (fmsim.Residual(5, (0.7, 1.2), (4,), "linear"), fmsim.Init.scheme("he"), "exact"),
    (fmsim.Residual(5, (0.7, 1.2), (), "linear"), fmsim.Init.scheme("he"), "exact"),
    (fmsim.Residual(5, (0.7, 1.2), (4,), "linear"), fmsim.Init("gaussian", 2.0, bias_var=0.2), "exact"),
    (fmsim.Residual(5, (0.7, 1.2), (4, 3), "relu"), fmsim.Init("gaussian", 2.0, bias_var=0.1), "exact"),
    (fmsim.Residual(5, (0.7, 1.2), (), "relu"), fmsim.Init.scheme("he"), "exact"),
    (fmsim.Residual(5, (0.7, 1.2), (4, 3), "relu"), fmsim.Init("uniform", 2.0, bias_var=0.1), "full"),
    (fmsim.Residual(9, (0.7, 1.2), (6,), "relu"), fmsim.Init("rademacher", 2.0), "full"),  # tables of signed sums
    (fmsim.Conv((2, 3, 2), (5,), 3), fmsim.Init("laplace", 2.0, bias_var=0.1), "full"),
    (fmsim.Conv((1, 2, 3), (3, 4), 2), fmsim.Init.scheme("he"), "full"),
    (fmsim.Conv((2, 3, 2), (4, 5), 4), fmsim.Init("uniform", 2.0), "full"),  # taps 3 at a time, then 1
    (fmsim.Conv((2, 3, 2), (4, 5), 3), fmsim.Init.scheme("pytorch_default"), "full"),  # fan-scaled biases
    (fmsim.Residual(5, (0.7, 1.2), (4, 3), "relu"), fmsim.Init("gaussian", 2.0, bias_c=(1.0, 0.5, 2.0)), "exact"),
    (fmsim.Residual(5, (0.7, 1.2), (4,), "linear"), fmsim.Init("gaussian", 2.0, bias_c=(0.5, 1.0)), "exact"),
    (fmsim.Residual(5, (0.7, 1.2), (4, 3), "relu"), fmsim.Init("laplace", 2.0, bias_c=(1.0, 0.5, 2.0)), "full"),
])
def test_residual_and_conv_cuda_equal_cpu(arch, init, method):
    n = 1030 if SIM else 5000
    cfg = make_config(arch, init, n, 13, method=method, chunk_size=1024)
    cpu, gpu = run_chunk(cfg, 1, "cpu"), run_chunk(cfg, 1, "cuda")
    for a, b in zip(cpu, gpu):  # lengths, log lengths, fm2
        _compare(a, b)


@pytest.mark.parametrize("arch,init", [
    (fmsim.Residual(5, (0.7, 1.2), (4, 3), "relu"), fmsim.Init("uniform", 2.0, bias_var=0.1)),
    (fmsim.Residual(9, (0.7, 1.2), (6,), "linear"), fmsim.Init.scheme("he")),  # float32 Box-Muller rows
    (fmsim.Residual(6, (0.5,), (5,), "relu"), fmsim.Init("rademacher", 2.0)),
    (fmsim.Conv((2, 3, 2), (5,), 3), fmsim.Init("laplace", 2.0, bias_var=0.1)),  # float32 inverse-CDF rows
    (fmsim.Conv((1, 5, 3), (3, 4), 2), fmsim.Init.scheme("he")),  # 5 channels: a partial tile of 4
    (fmsim.Conv((2, 3, 2), (4, 5), 4), fmsim.Init("truncated_normal", 2.0)),  # 32-bit ziggurat
])
def test_float32_residual_and_conv_cuda_equal_cpu(arch, init):
    """precision='float32' on residual and conv nets: bit-identical under the simulator (the conv sums are fused
    multiply-adds on both sides, exact rational ones in the simulator); on a GPU, the residual sums may fuse
    (relative 1e-4)."""
    n = 1030 if SIM else 5000
    cfg = make_config(arch, init, n, 17, method="full", chunk_size=1024, precision="float32")
    cpu, gpu = run_chunk(cfg, 1, "cpu"), run_chunk(cfg, 1, "cuda")
    for a, b in zip(cpu, gpu):
        _compare(a, b, rtol=1e-4)


@pytest.mark.parametrize("precision,init", [
    ("float32", fmsim.Init("uniform", 2.0, bias_var=0.1)),
    ("float32", fmsim.Init.scheme("he")),  # Box-Muller from float32 polynomials, a pair of words
    ("float32", fmsim.Init("laplace", 2.0)),  # inverse CDF from float32 polynomials
    ("float32", fmsim.Init("truncated_normal", 2.0)),  # 32-bit ziggurat
    ("float32", fmsim.Init("rademacher", 2.0)),
    ("float64", fmsim.Init("rademacher", 2.0, bias_var=0.1)),  # 1 bit per weight, fan-in past one block
])
def test_stream_layouts_cuda_equal_cpu(precision, init):
    """Every bit budget of the stream layout (fan-in 130 > 128 weights per Rademacher block): bit-identical
    under the simulator; on a GPU, fused multiply-adds change the last bits (float32: relative 1e-4)."""
    n = 1030 if SIM else 5000  # under the simulator, chunk 1 holds 6 nets
    cfg = make_config(fmsim.FullyConnected((130, 5, 4)), init, n, 5, method="full", chunk_size=1024,
                      precision=precision)
    cpu, gpu = run_chunk(cfg, 1, "cpu"), run_chunk(cfg, 1, "cuda")
    rtol = 1e-4 if precision == "float32" else 1e-12
    for a, b in zip(cpu, gpu):
        _compare(a, b, rtol=rtol)


@pytest.mark.parametrize("arch,method", [(fmsim.FullyConnected((6, 5, 7, 4)), "full"),
                                         (fmsim.FullyConnected((6, 5, 7, 4)), "exact"),
                                         (fmsim.Residual(4, (0.5, 0.8), (3,), "relu"), "full")])
def test_device_reduction_equals_cpu_reduction(arch, method):
    """The chunk reduced on the device (block moments, M_d, fm2) equals the CPU's; traces stay on the
    device unless asked for."""
    # under the simulator, full runs only a 6-net chunk (each simulated block is a Python thread group)
    n = (2500 if method == "exact" else 1030) if SIM else 50_000
    cfg = make_config(arch, fmsim.Init.scheme("he"), n, 3, method=method, chunk_size=1024)
    chunks = range(cfg.n_chunks) if (method == "exact" or not SIM) else [cfg.n_chunks - 1]
    for k in chunks:
        cpu, gpu = reduce_chunk(cfg, k, "cpu"), reduce_chunk(cfg, k, "cuda")
        assert gpu.lengths is None and gpu.moments.shape == cpu.moments.shape
        for field in ("final", "log_final", "stats", "moments"):
            _compare(getattr(cpu, field), getattr(gpu, field))
    kept = reduce_chunk(cfg, chunks[-1], "cuda", keep_lengths=True)
    _compare(kept.lengths, run_chunk(cfg, chunks[-1], "cpu")[0])
    _compare(kept.log_lengths, run_chunk(cfg, chunks[-1], "cpu")[1])


@pytest.mark.parametrize("arch,init,method,x", [
    (fmsim.FullyConnected.constant(depth=40, width=4), fmsim.Init("gaussian", 1e-8), "full", None),
    (fmsim.FullyConnected.constant(depth=40, width=4), fmsim.Init("gaussian", 1e8, bias_var=1e-3), "exact", None),
    (fmsim.FullyConnected((3, 4, 4)), fmsim.Init("uniform", 2.0, bias_var=0.1), "full", [1e300, 1e300, 0.0]),
    (fmsim.FullyConnected.constant(depth=40, width=4), fmsim.Init("gaussian", 1e8), "full", None),
    (fmsim.Residual(4, (1e10,) * 20, (3,), "relu"), fmsim.Init("uniform", 2.0, bias_var=0.1), "full", None),
    (fmsim.Residual(4, (1e10,) * 20, (3,), "linear"), fmsim.Init.scheme("he"), "exact", None),
    (fmsim.Residual(4, (1e10,) * 20, (), "relu"), fmsim.Init.scheme("he"), "exact", None),
    (fmsim.Conv((1,) + (2,) * 12, (3,), 3), fmsim.Init("gaussian", 1e-30), "full", None),
])
def test_renormalized_nets_cuda_equal_cpu(arch, init, method, x):
    """Nets that leave float64's range (renormalized by powers of two, log lengths carried): the same on both."""
    n = 1030 if SIM else 5000
    cfg = make_config(arch, init, n, 3, method=method, chunk_size=1024, x=x)
    cpu, gpu = run_chunk(cfg, 1, "cpu"), run_chunk(cfg, 1, "cuda")
    assert np.all(np.isfinite(cpu[1][:, -1]) | (cpu[1][:, -1] == -np.inf))
    assert np.any(~np.isfinite(cpu[0][:, -1]) | (cpu[0][:, -1] == 0.0))  # beyond float64: M_d is 0 or inf
    for a, b in zip(cpu, gpu):
        _compare(a, b)


@pytest.mark.parametrize("arch", [
    fmsim.FullyConnected((6, 4, 9, 9, 3)),  # narrowing (B ~ Beta) and widening layers
    fmsim.Residual(5, (0.7, 1.2), (7, 3), "linear"),
    fmsim.Residual(5, (0.7, 1.2), (), "linear"),
    fmsim.Residual(5, (0.7, 1.2), (7, 3), "relu"),
    fmsim.Residual(4, (0.7, 1.2), (9,), "relu", c_out=1.0),  # output layer 4 x 9: projects
])
def test_orthogonal_exact_cuda_equal_cpu(arch):
    n = 1030 if SIM else 5000
    cfg = make_config(arch, fmsim.Init.scheme("orthogonal"), n, 17, method="exact", chunk_size=1024)
    cpu, gpu = run_chunk(cfg, 1, "cpu"), run_chunk(cfg, 1, "cuda")
    for a, b in zip(cpu, gpu):  # lengths, log lengths, fm2
        _compare(a, b)


def test_orthogonal_full_refused_on_cuda():
    cfg = make_config(fmsim.FullyConnected((4, 4)), fmsim.Init.scheme("orthogonal"), 10, 1, method="full")
    from fmsim.running.simulate import check_backend
    with pytest.raises(ValueError, match="backend='cpu' only"):
        check_backend(cfg, "cuda")


@pytest.mark.parametrize(("name", "arguments"), device_cases(), ids=[n for n, _ in device_cases()])
def test_cuda_bits_unchanged(name, arguments):
    """The CUDA backend gives the bits fmsim 0.11.0 gave (tests/bits_cases.py): under the simulator exactly;
    on a GPU, where fused multiply-adds move last bits, this is checked against the CPU elsewhere."""
    if not SIM:
        pytest.skip("bit-exact only under the simulator")
    assert run_device_case(arguments, "cuda") == GOLDEN[name]


CARRY_X = np.array([1.0, -0.5, 2.0, 0.4, 0.3])
CARRY_U = np.array([[0.0, 1.0, 0.0, 2.0, 0.0], [1.0, 1.0, 1.0, 0.0, 0.0]])


@pytest.mark.parametrize(("init", "method", "precision", "kwargs"), [
    (fmsim.Init(c=2.0), "exact", "float64", {"x": CARRY_X, "tangents": CARRY_U}),
    (fmsim.Init(c=1.5), "exact", "float64", {"inputs": np.stack([CARRY_X, CARRY_U[0], CARRY_U[1]])}),
    (fmsim.Init(c=2.0, bias_var=0.2), "full", "float64", {"x": CARRY_X, "tangents": CARRY_U}),
    (fmsim.Init(law="uniform", bias_c=0.3), "full", "float32", {"x": CARRY_X, "tangents": CARRY_U[:1]}),
    (fmsim.Init(law="rademacher", bias_var=0.1), "full", "float64", {"inputs": np.stack([CARRY_X, CARRY_U[0]])}),
    (fmsim.Init(law="laplace"), "full", "float32", {"inputs": np.stack([CARRY_X, CARRY_U[1]])}),
    (fmsim.Init(law="orthogonal", c=2.0), "exact", "float64", {"x": CARRY_X, "tangents": CARRY_U}),
    (fmsim.Init(law="orthogonal", c=1.5), "exact", "float64", {"inputs": np.stack([CARRY_X, CARRY_U[0], CARRY_U[1]])}),
])
def test_carried_vectors_cuda_equal_cpu(init, method, precision, kwargs):
    widths = (5, 4, 3, 6) if SIM else (5, 40, 17, 64)
    cfg = make_config(fmsim.FullyConnected(widths), init, N, 5, method=method, chunk_size=1024, record="layers",
                      precision=precision, **{k: v for k, v in kwargs.items()})
    for k in (1,) if SIM else (0, 1):  # under the simulator chunk 1: its 6 nets (each a Python thread block)
        cpu, gpu = reduce_chunk(cfg, k, "cpu"), reduce_chunk(cfg, k, "cuda")
        for name in ("lengths", "log_lengths", "carried", "carried_layers", "entries", "stats"):
            a, b = getattr(cpu, name), getattr(gpu, name)
            assert (a is None) == (b is None), name
            if a is not None:
                _compare(a, b)


@pytest.mark.parametrize(("module_widths", "ending", "kwargs"), [
    ((4, 3), "linear", {"x": CARRY_X, "tangents": CARRY_U}),
    ((3,), "relu", {"inputs": np.stack([CARRY_X, CARRY_U[0], CARRY_U[1]])}),
    ((), "relu", {"x": CARRY_X, "tangents": CARRY_U[:1]}),
])
def test_residual_carried_vectors_cuda_equal_cpu(module_widths, ending, kwargs):
    arch = fmsim.Residual(5, [1.0, 0.5, 0.8], module_widths=module_widths if SIM else (40, 17), ending=ending,
                          c_out=1.5)
    cfg = make_config(arch, fmsim.Init(c=2.0), N, 5, chunk_size=1024, record="layers", **kwargs)
    for k in (1,) if SIM else (0, 1):
        cpu, gpu = reduce_chunk(cfg, k, "cpu"), reduce_chunk(cfg, k, "cuda")
        for name in ("lengths", "log_lengths", "carried", "carried_layers", "stats"):
            _compare(getattr(cpu, name), getattr(gpu, name))
