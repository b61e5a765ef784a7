"""The float32 polynomial rows (Box-Muller Gaussian, Laplace) in 16 AVX-512 lanes against the scalar steps: the
same weights, bit for bit (``fmsim.sampling.polynomial_lanes``)."""

import numpy as np
import pytest
from float32_edges import edge_words, gauss32_pairs, laplace32_each
from numba import njit

from fmsim.sampling import laws

pytestmark = pytest.mark.skipif(not laws.numba_compiles_avx512(),
                                reason="the vector-lane polynomial rows are compiled only where numba targets AVX-512")


def _compiled(transform):
    @njit
    def row(n, words, out):
        transform(n, words, out)
    return row


_gauss_lanes, _gauss_loop = _compiled(laws._gauss32_from_words_lanes), _compiled(laws._gauss32_from_words_loop)
_laplace_lanes, _laplace_loop = _compiled(laws._laplace32_from_words_lanes), _compiled(laws._laplace32_from_words_loop)


def _gauss_pairs(words, out):
    gauss32_pairs(words[0::2], words[1::2], out[0::2], out[1::2])


def _words() -> np.ndarray:
    """Every edge pair of the Gaussian's cases (t near powers of two and the u1 > 1/sqrt 2 switch, extreme
    uniforms, quadrant boundaries) and 2^20 random words, padded to a whole number of rows of 32."""
    a, b = edge_words()
    edges = np.stack([a, b], axis=1).reshape(-1)
    rng = np.random.default_rng(11)
    words = np.concatenate([edges, rng.integers(0, 2**32, size=2**20, dtype=np.uint64).astype(np.uint32)])
    return np.concatenate([words, np.zeros(-words.size % 32, np.uint32)])


@pytest.mark.parametrize("law", ["gaussian", "laplace"])
def test_lanes_are_bitwise_the_scalar_weights_and_the_loop(law):
    # The Gaussian against gauss32_pair pair by pair, the Laplace against laplace32 word by word (with both
    # signs of every word), and both against the loops that AVX2 machines run.
    words = _words()
    lanes_fn, loop_fn, scalar_fn = {"gaussian": (_gauss_lanes, _gauss_loop, _gauss_pairs),
                                    "laplace": (_laplace_lanes, _laplace_loop, laplace32_each)}[law]
    if law == "laplace":
        words = np.concatenate([words, words | np.uint32(1)])
    lanes, loop, scalar = (np.full(words.size, np.nan, np.float32) for _ in range(3))
    lanes_fn(words.size, words, lanes)
    loop_fn(words.size, words, loop)
    scalar_fn(words, scalar)
    np.testing.assert_array_equal(lanes.view(np.uint32), scalar.view(np.uint32))
    np.testing.assert_array_equal(loop.view(np.uint32), scalar.view(np.uint32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 15, 16, 31, 32, 33, 50, 64, 65, 100])
def test_rows_write_whole_steps_and_nothing_past_them(n, dtype):
    # A row of n weights writes 32 ceil(n / 32) of them (the polynomial rows' padding), all as the loop does, and
    # nothing past them; into float64 scratch, the float32 weights widened, as the loop stores them.
    words = _words()[:2 * 32 * ((n + 31) // 32) + 64]
    padded = 32 * ((n + 31) // 32)
    for lanes_fn, loop_fn in ((_gauss_lanes, _gauss_loop), (_laplace_lanes, _laplace_loop)):
        lanes, loop = np.full(padded + 64, np.nan, dtype), np.full(padded + 64, np.nan, dtype)
        lanes_fn(n, words, lanes)
        loop_fn(n, words, loop)
        np.testing.assert_array_equal(lanes[:padded], loop[:padded])
        assert np.array_equal(lanes[:padded].astype(np.float32).astype(dtype), lanes[:padded])
        assert np.isnan(lanes[padded:]).all()
