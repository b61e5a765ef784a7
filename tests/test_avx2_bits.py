"""The AVX2 path gives the same bits: kernels compiled without AVX-512 draw the same weights and sum the same
convolutions.

Rows draw whole steps of LLVM's vector loop (8 Philox blocks with AVX-512, 4 without; fixed per process from the
features numba compiles for), and the conv micro-kernel sums blocks of 512-bit vectors with AVX-512, of 256-bit
ones without, so an AVX2 machine runs differently padded rows and other vector code.
Here a fresh process compiles fmsim for this CPU with AVX-512 switched off (``NUMBA_CPU_FEATURES``, an empty numba
cache) and runs in it the row test (every law, both precisions, slow paths included, against the
one-block-at-a-time reference), the float64 fully connected golden cases (five laws, biases) and the conv layer's
tests (the 256-bit blocks against the scalar conv, bit for bit). On a CPU without AVX-512 the process compiles for
the host's own features, as an AVX2 machine does.
"""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
LAWS = ("gaussian", "uniform", "rademacher", "laplace", "truncated_normal")


def _implies_avx512(feature: str) -> bool:
    name = feature[1:]
    return "avx512" in name or name.startswith("avx10") or name == "evex512"  # AVX10 brings 512-bit vectors back


def avx2_features() -> str:
    """numba's feature string for this CPU with every AVX-512 feature (and AVX10, which implies it) turned off."""
    from numba.core.codegen import get_host_cpu_features

    return ",".join("-" + f[1:] if f.startswith("+") and _implies_avx512(f) else f
                    for f in get_host_cpu_features().split(","))


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 only")
def test_rows_and_fc_kernel_compiled_without_avx512_give_the_same_bits(tmp_path):
    features = avx2_features()
    if "+avx2" not in features.split(","):
        pytest.skip("this CPU has no AVX2")
    env = dict(os.environ, NUMBA_CPU_FEATURES=features, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"),
               NUMBA_NUM_THREADS="2")
    env.pop("NUMBA_CPU_NAME", None)
    width = subprocess.run([sys.executable, "-c", "from fmsim.sampling import laws; print(laws._VECTOR_BLOCKS)"],
                           env=env, capture_output=True, text=True, timeout=120, check=True)
    assert width.stdout.strip() == "4", width  # the AVX2 padding: whole steps of 4 blocks
    selected = ["test_laws.py::test_vectorized_row_is_bitwise_the_per_block_row"] + \
        [f"test_bits_unchanged.py::test_file_bits_unchanged[fc-{law}-f64-bias]" for law in LAWS] + \
        ["test_conv_kernel.py"]
    for name in [k for k in env if k.startswith("PYTEST_XDIST")]:  # (this test may run in a pytest-xdist worker)
        env.pop(name)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-p",
                          "no:randomly", *selected], cwd=TESTS, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "54 passed" in run.stdout, run.stdout[-2000:]  # 10 row cases, 5 golden cases and 39 conv tests (the
    # layer with 256-bit blocks, test_block_positions), none skipped
