"""A sum of squares whose rounding is the same on every machine: the norm of a run's seeded input.

fmsim 0.11.0 and earlier scaled the seeded input direction (:func:`fmsim.config.input_vector`) by
``sqrt(g @ g)``, NumPy's dot product, which calls the BLAS that NumPy ships (OpenBLAS). OpenBLAS picks its ``ddot``
kernel by CPU, and the kernels add the products in different orders, with or without fused multiply-adds: the
last bit of the norm, and so every bit of a run, depended on the machine. (On an AMD Zen 5 core, which
OpenBLAS 0.3.31 runs with its Haswell kernels, two of the bits-unchanged cases came out different; above 10000
entries the sum also depended on OpenBLAS's thread count.)

:func:`sum_of_squares` adds in one fixed order, with explicit fused multiply-adds
(:func:`fmsim.kernels.scalar.fused_multiply_add`, ``llvm.fma``: one rounding on every machine, in hardware or
in libm's software ``fma``). The order is that of OpenBLAS's
AVX-512 kernel, single-threaded (``kernel/x86_64/ddot.c`` with ``ddot_microk_skylakex-2.c``, OpenBLAS
0.3.31, compiled by GCC, which fuses ``acc += x * y``), the kernel that wrote fmsim's reference bits on the
Intel Xeon and AMD Zen 4 machines it was developed on, so that a seed keeps its input there:

* the first ``n1 = n - n % 16`` terms: the first ``n32 = n1 - n1 % 32`` in four accumulators of 8 lanes
  (term ``i`` in accumulator ``(i % 32) // 8``, lane ``i % 8``, fused), each folded to 4 lanes (lane ``l``
  plus lane ``l + 4``); then the terms up to ``n1`` in the four 4-lane accumulators (term ``i`` in
  accumulator ``(i % 16) // 4``, lane ``i % 4``, fused); the accumulators added, ``((a0 + a1) + a2) + a3``,
  then the lanes, ``(l0 + l2) + (l1 + l3)``;
* the last ``n % 16`` terms one by one, fused into that sum.

``tests/test_fixed_order.py`` checks the order against NumPy with OpenBLAS's AVX-512 kernel forced, where the
machine has AVX-512, and against exact rational arithmetic everywhere.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..kernels.scalar import fused_multiply_add

__all__ = ["sum_of_squares"]


@njit(cache=True)
def _sum_of_squares(x):
    n = x.shape[0]
    n1 = n - n % 16
    n32 = n1 - n1 % 32
    wide = np.zeros((4, 8))
    acc = np.zeros((4, 4))
    for i in range(0, n32, 32):
        for a in range(4):
            for lane in range(8):
                v = x[i + 8 * a + lane]
                wide[a, lane] = fused_multiply_add(v, v, wide[a, lane])
    for a in range(4):
        for lane in range(4):
            acc[a, lane] = wide[a, lane] + wide[a, lane + 4]
    for i in range(n32, n1, 16):
        for a in range(4):
            for lane in range(4):
                v = x[i + 4 * a + lane]
                acc[a, lane] = fused_multiply_add(v, v, acc[a, lane])
    total = np.empty(4)
    for lane in range(4):
        total[lane] = ((acc[0, lane] + acc[1, lane]) + acc[2, lane]) + acc[3, lane]
    dot = (total[0] + total[2]) + (total[1] + total[3])
    for i in range(n1, n):
        dot = fused_multiply_add(x[i], x[i], dot)
    return dot


def sum_of_squares(x: np.ndarray) -> float:
    """``sum(x**2)`` in the fixed order above: the same float on every machine.

    Parameters
    ----------
    x : ndarray, shape (n,), float64

    Returns
    -------
    float
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be 1-d, got shape {x.shape}")
    return float(_sum_of_squares(x))
