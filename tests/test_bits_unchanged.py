"""Bits unchanged: every dataset of a matrix of runs hashes to the value fmsim 0.11.0 wrote.

The cases (tests/bits_cases.py) cover every architecture, weight law, method and precision,
biases, an input outside the renormalization window and deep nets that renormalize. The same
table holds the small cases that tests/test_cuda.py runs under the CUDA simulator.
"""

import pytest
from bits_cases import GOLDEN, device_cases, file_cases, run_device_case, run_file_case


@pytest.mark.parametrize(("name", "arguments"), file_cases(), ids=[n for n, _ in file_cases()])
def test_file_bits_unchanged(name, arguments, tmp_path):
    assert run_file_case(arguments, tmp_path / "run.h5") == GOLDEN[name]


@pytest.mark.parametrize(("name", "arguments"), device_cases(), ids=[n for n, _ in device_cases()])
def test_in_memory_bits_unchanged_on_cpu(name, arguments):
    assert run_device_case(arguments, "cpu") == GOLDEN[name]


def test_bits_unchanged_on_the_paths_of_a_machine_without_avx512(tmp_path):
    """The cases that once followed the CPU give the same hashes with NumPy's AVX-512 paths off and OpenBLAS's
    Haswell kernels: the input's norm (BLAS ``ddot`` before fmsim.sampling.fixed_order) and a renormalized
    net's summary (NumPy's ``exp`` before fmsim.running.rounding)."""
    import os
    import subprocess
    import sys

    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from bits_cases import GOLDEN, device_cases, file_cases, run_device_case, run_file_case\n"
        "files, devices = dict(file_cases()), dict(device_cases())\n"
        "print(run_file_case(files['deep-fc-uniform-explodes'], sys.argv[2]) == GOLDEN['deep-fc-uniform-explodes'],\n"
        "      run_device_case(devices['cuda-deep-fc-explodes'], 'cpu') == GOLDEN['cuda-deep-fc-explodes'],\n"
        "      run_device_case(devices['cuda-fc-laplace-bias'], 'cpu') == GOLDEN['cuda-fc-laplace-bias'])\n"
    )
    # NumPy 2.x names its AVX-512 paths X86_V4, AVX512_ICL and AVX512_SPR; 1.x AVX512F and AVX512_SKX (names a
    # version lacks only warn, and a path the machine lacks is off already)
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512_SKX",
               OPENBLAS_CORETYPE="Haswell")
    tests = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", script, tests, str(tmp_path / "run.h5")], env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "True"], out.stdout + out.stderr
