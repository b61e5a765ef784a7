"""A drawn row's dot product in one vector register (``fmsim.kernels.partial_sums``) against the four scalar
partial sums it stands for, summed here one NumPy scalar operation at a time: the same bits."""

import numpy as np
import pytest
from numba import njit

from fmsim.kernels.carry import drawn_dot_pair
from fmsim.kernels.cpu import drawn_dot


@njit
def _dot(w, z, n):
    return drawn_dot(w, z, n)


@njit
def _dot_pair(w, a, b, n):
    return drawn_dot_pair(w, a, b, n)


def reference_dot(w, z, n):
    """Four partial sums over ``k mod 4`` from zero, each term a rounded product then a rounded sum, combined
    ``(s0 + s1) + (s2 + s3)``, in the precision of ``z``."""
    dtype = z.dtype.type
    s = [dtype(0.0)] * 4
    for k in range(n):
        s[k % 4] = dtype(s[k % 4] + dtype(w[k] * z[k]))
    return dtype(dtype(s[0] + s[1]) + dtype(s[2] + s[3]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_vector_partial_sums_are_the_scalar_ones_bit_for_bit(dtype):
    rng = np.random.default_rng(11)
    for n in [*range(0, 70), 100, 257]:
        # spread magnitudes: a different order of the sums, or a fused multiply-add, changes the last bits
        w = (rng.standard_normal(n + 3) * np.exp2(rng.integers(-20, 20, n + 3))).astype(dtype)
        a, b = (rng.standard_normal(n + 3).astype(dtype) for _ in range(2))
        want_a, want_b = reference_dot(w, a, n), reference_dot(w, b, n)
        got = _dot(w, a, n)  # a float32 sum comes back as a Python float: exact, and exact back
        assert np.array_equal(np.array([got], dtype=dtype), np.array([want_a])), n
        got_a, got_b = _dot_pair(w, a, b, n)
        assert np.array_equal(np.array([got_a, got_b], dtype=dtype), np.array([want_a, want_b])), n
