"""The seeded input's sum of squares: one fixed order, the same bits on every machine (fmsim.sampling.fixed_order)."""

import os
import subprocess
import sys
import textwrap
from fractions import Fraction

import numpy as np
import pytest

from fmsim.kernels.scalar import fused_multiply_add
from fmsim.sampling.fixed_order import sum_of_squares

SIZES = list(range(0, 70)) + [95, 96, 97, 127, 128, 129, 160, 191, 200, 513, 1000, 3072]


def _fma(a: float, b: float, c: float) -> float:
    """``a b + c`` rounded once: exact rationals, then Python's correctly rounded conversion."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def _reference(x: np.ndarray) -> float:
    """The order of the module docstring, in plain Python floats and exact fused multiply-adds."""
    x = [float(v) for v in x]
    n = len(x)
    n1 = n - n % 16
    n32 = n1 - n1 % 32
    wide = [[0.0] * 8 for _ in range(4)]
    for i in range(n32):
        a, lane = (i % 32) // 8, i % 8
        wide[a][lane] = _fma(x[i], x[i], wide[a][lane])
    acc = [[wide[a][lane] + wide[a][lane + 4] for lane in range(4)] for a in range(4)]
    for i in range(n32, n1):
        a, lane = (i % 16) // 4, i % 4
        acc[a][lane] = _fma(x[i], x[i], acc[a][lane])
    total = [((acc[0][lane] + acc[1][lane]) + acc[2][lane]) + acc[3][lane] for lane in range(4)]
    dot = (total[0] + total[2]) + (total[1] + total[3])
    for i in range(n1, n):
        dot = _fma(x[i], x[i], dot)
    return dot


def test_fused_multiply_add_rounds_once():
    from numba import njit

    fma = njit(lambda a, b, c: fused_multiply_add(a, b, c))
    rng = np.random.default_rng(11)
    for a, b, c in rng.standard_normal((500, 3)) * rng.choice([1.0, 1e-8, 1e8], (500, 3)):
        assert fma(a, b, c) == _fma(a, b, c)
    a = 1.0 + 2.0**-30  # a^2 - (1 + 2^-29) = 2^-60: lost if the product is rounded first
    assert fma(a, a, -(1.0 + 2.0**-29)) == 2.0**-60
    assert a * a - (1.0 + 2.0**-29) == 0.0


@pytest.mark.parametrize("n", SIZES)
def test_sum_of_squares_is_the_documented_order(n):
    rng = np.random.default_rng(n)
    for scale in (1.0, 1e-3, 1e5):
        x = rng.standard_normal(n) * scale
        assert sum_of_squares(x) == _reference(x)


def test_sum_of_squares_rejects_matrices():
    with pytest.raises(ValueError, match="x must be 1-d"):
        sum_of_squares(np.ones((2, 2)))


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _numpy_blas() -> str:
    return str(np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])


@pytest.mark.skipif(not {"avx512f", "avx512cd", "avx512dq", "avx512bw", "avx512vl"} <= _cpu_flags(),
                    reason="OpenBLAS's AVX-512 kernel needs an AVX-512 CPU (read from /proc/cpuinfo)")
@pytest.mark.skipif("openblas" not in _numpy_blas(), reason="NumPy's BLAS is not OpenBLAS")
def test_sum_of_squares_is_openblas_avx512_ddot():
    """Bit for bit NumPy's ``x @ x`` with OpenBLAS's AVX-512 ddot forced, single-threaded: the sums that fmsim
    0.11.0 used on the machines that wrote its reference bits (tests/bits_cases.py)."""
    script = textwrap.dedent(f"""
        import numpy as np
        from fmsim.sampling.fixed_order import sum_of_squares
        rng = np.random.default_rng(3)
        checked = differ = 0
        for n in {SIZES + [4097, 12288]!r}:
            for scale in (1.0, 1e-3, 1e5):
                for _ in range(4):
                    x = rng.standard_normal(n) * scale
                    checked += 1
                    differ += (x @ x) != sum_of_squares(x)
        print(checked, differ)
    """)
    env = dict(os.environ, OPENBLAS_CORETYPE="SkylakeX", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    checked, differ = map(int, out.stdout.split())
    assert checked == 12 * (len(SIZES) + 2)
    assert differ == 0
