"""Edge words of the float32 polynomial weights (Box-Muller Gaussian, Laplace), and the weights one pair or one
word at a time (the reference the rows are held to), shared by their tests."""

import numpy as np
from numba import njit

from fmsim.sampling import laws


def edge_ts() -> np.ndarray:
    """Odd t (u1 = t 2^-31) near powers of two, where float32(t) rounds up, and near the u1 > 1/sqrt 2 switch."""
    ts = [1, 3, 2**31 - 1, int(laws._T_TOP) - 2, int(laws._T_TOP) - 1, int(laws._T_TOP), int(laws._T_TOP) + 1]
    for k in range(1, 31):
        ts += [2**k + d for d in (-129, -127, -65, -63, -3, -1, 1, 3, 63, 65, 127, 129)]
    return np.array(sorted({v for v in ts if 1 <= v < 2**31 and v % 2 == 1}), dtype=np.uint64)


def edge_words() -> np.ndarray:
    """Words at the edges of the float32 Gaussian's cases: the t of :func:`edge_ts`, the extreme
    uniforms, quadrant boundaries."""
    a = ((edge_ts() - np.uint64(1)) // np.uint64(2)) << np.uint64(2)
    a = np.concatenate([a, a | np.uint64(3), [0, 2**32 - 1]])
    b = np.array([0, 1, 2**7 - 1, 2**7, 2**29, 2**30 - 1, 2**30, 2**31 - 1, 2**31, 3 * 2**30 - 1, 3 * 2**30,
                  2**32 - 2**7, 2**32 - 1], dtype=np.uint64)
    return np.array(np.meshgrid(a, b)).reshape(2, -1).astype(np.uint32)


@njit
def gauss32_pairs(a, b, x, y):
    """``(x[j], y[j]) = gauss32_pair(a[j], b[j])`` for every ``j``."""
    for j in range(a.shape[0]):
        x[j], y[j] = laws.gauss32_pair(a[j], b[j])


@njit
def laplace32_each(a, out):
    """``out[j] = laplace32(a[j])`` for every ``j``."""
    for j in range(a.shape[0]):
        out[j] = laws.laplace32(a[j])
