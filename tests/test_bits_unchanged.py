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
