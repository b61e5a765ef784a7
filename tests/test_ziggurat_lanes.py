"""The ziggurat's first step in AVX-512 vector lanes against the scalar step: the same weights, bit for bit,
and the same slow list (``fmsim.sampling.ziggurat_lanes``)."""

import numpy as np
import pytest
from numba import njit

from fmsim.sampling import laws

pytestmark = pytest.mark.skipif(not laws.numba_compiles_avx512(),
                                reason="the vector-lane first step is compiled only where numba targets AVX-512")


@njit
def _lanes(words, n, bits32, kn9, wn9, table, scale, out, slow):
    return laws._ziggurat_fast_row_lanes(words, n, bits32, kn9, wn9, table, scale, out, slow)


@njit
def _scalar(words, n, bits32, kn9, wn9, table, scale, out, slow):
    return laws._ziggurat_fast_row_scalar(words, n, bits32, kn9, wn9, table, scale, out, slow)


def _words(rng, n_words, bits32):
    """Random words, a quarter of them with their magnitude bits set high, so that many lanes are rejected
    (every layer's threshold is below the top of the magnitude range)."""
    words = rng.integers(0, 2**32, size=n_words, dtype=np.uint64).astype(np.uint32)
    high = rng.random(n_words) < 0.25
    if bits32:
        words[high] |= np.uint32(0xFFFFF000)
    else:  # the magnitude's top bits are in the high word of each pair (even index)
        words[0::2][high[0::2]] |= np.uint32(0x1FFFFFFF)
    return words


@pytest.mark.parametrize("bits32", [False, True])
@pytest.mark.parametrize("law", [laws.GAUSSIAN, laws.LAPLACE, laws.TRUNCATED_NORMAL])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lanes_match_scalar_step(law, bits32, dtype):
    if bits32 and law != laws.TRUNCATED_NORMAL:
        pytest.skip("only the truncated normal has a 32-bit ziggurat")
    kn9, wn9, table = laws._ziggurat_tables.py_func(law, bits32)
    scale = laws._unit_scale.py_func(law)
    rng = np.random.default_rng(46 + law)
    rejected = 0
    for n in list(range(0, 41)) + [63, 64, 65, 100, 257]:
        for _ in range(20):
            words = _words(rng, 2 * n + 16, bits32)
            out_a, out_b = np.full(n + 16, np.nan, dtype), np.full(n + 16, np.nan, dtype)
            slow_a, slow_b = np.full(n + 8, -1, np.intp), np.full(n + 8, -1, np.intp)
            count_a = _scalar(words, n, bits32, kn9, wn9, table, scale, out_a, slow_a)
            count_b = _lanes(words, n, bits32, kn9, wn9, table, scale, out_b, slow_b)
            assert count_b == count_a
            np.testing.assert_array_equal(slow_b[:count_b], slow_a[:count_a])
            assert out_b[:n].tobytes() == out_a[:n].tobytes()
            groups = -(-n // 8) * 8  # the lanes write whole groups of 8, and nothing past them
            assert np.isnan(out_b[groups:]).all()
            rejected += count_a
    assert rejected > 1000  # the slow list was exercised (about a quarter of the lanes)


def test_pair_tables():
    for law in (laws.GAUSSIAN, laws.LAPLACE, laws.TRUNCATED_NORMAL):
        for bits32 in (False, True):
            kn9, wn9, table = laws._ziggurat_tables.py_func(law, bits32)
            pairs = laws._PAIR_TABLES[table]
            assert pairs[0::2].tobytes() == wn9.tobytes() and pairs[1::2].view(np.uint64).tobytes() == kn9.tobytes()


def test_pair_table_shape_is_checked():
    from fmsim.sampling.ziggurat_lanes import first_step_intrinsics

    with pytest.raises(ValueError, match="tables: expected shape"):
        first_step_intrinsics(np.zeros(1024))


def test_selected_step_is_the_lanes_one():
    assert laws._ziggurat_fast_row is laws._ziggurat_fast_row_lanes
