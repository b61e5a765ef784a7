"""The weight samplers against scipy's distributions (fixed seeds)."""

import math

import numpy as np
import pytest
from conftest import assert_within_se
from float32_edges import edge_ts, edge_words, gauss32_pairs, laplace32_each
from fmsim.laws import (
    LAW_CODES,
    LAW_M4,
    TRUNCATED_NORMAL_VARIANCE,
    _truncated_ziggurat_levels,
    draw_standard_array,
    fill_standard,
    standard_row,
)
from scipy import stats

from fmsim import laws

N = 400_000
SD_T = math.sqrt(TRUNCATED_NORMAL_VARIANCE)
SCIPY = {
    "gaussian": stats.norm(),
    "uniform": stats.uniform(-math.sqrt(3), 2 * math.sqrt(3)),
    "laplace": stats.laplace(scale=1 / math.sqrt(2)),
    "truncated_normal": stats.truncnorm(-2, 2, scale=1 / SD_T),
}


PRECISIONS = ["float64", "float32"]  # 64 and 32 random bits per weight (uniform: 32, rademacher: 1, in both)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("law", sorted(SCIPY))
def test_law_matches_scipy_distribution(law, precision):
    x = draw_standard_array(law, N, (2024, 11), row=3, layer=1, net=5, precision=precision)
    assert stats.kstest(x, SCIPY[law].cdf).pvalue > 1e-3


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("law", sorted(LAW_M4))
def test_law_unit_variance_and_fourth_moment(law, precision):
    x = draw_standard_array(law, N, (7, 99), row=0, layer=2, net=1, precision=precision)
    for power, truth in ((2, 1.0), (4, LAW_M4[law])):
        v = x**power
        assert_within_se(v.mean(), truth, v.std(ddof=1) / math.sqrt(N), what=f"{law} E[w^{power}]")


def test_rademacher_is_plus_minus_one_with_independent_signs():
    x = draw_standard_array("rademacher", 1_000_000, (1, 2), 0, 1, 0)
    assert set(np.unique(x)) == {-1.0, 1.0}
    # one bit per weight: neighbours (same word, adjacent bits) and weights 32 apart (same bit of the
    # next word) must be uncorrelated; each correlation has s.e. 1/sqrt(n), tolerance 5 s.e.
    for lag in (1, 31, 32, 128):
        assert abs(np.mean(x[:-lag] * x[lag:])) < 5 / math.sqrt(x.size - lag), lag
    assert abs(x.mean()) < 5 / math.sqrt(x.size)


@pytest.mark.parametrize("bits32", [False, True])
@pytest.mark.parametrize("law", sorted(LAW_CODES))
def test_vectorized_row_is_bitwise_the_per_block_row(law, bits32):
    # standard_row and polynomial32_row (CPU kernels: Philox words first, in whole vector steps of 4 or 8 blocks,
    # then the law in branch-free passes) give exactly the weights of fill_standard (CUDA kernels and the
    # reference: one block at a time), slow paths included (a row of 2999 weights takes tens of slow draws).
    k0, k1 = np.uint64(11), np.uint64(22)
    words, slow, out, out32 = laws.row_scratch(3000)
    ref = np.empty(3000)
    for n in [*range(1, 40), 127, 128, 129, 255, 256, 2999]:
        for row in range(4):
            c = (np.uint64(row), np.uint64(3), np.uint64(9))
            if laws.polynomial32(LAW_CODES[law], bits32):  # the kernels' float32 Gaussian and Laplace rows
                laws.polynomial32_row(LAW_CODES[law], n, *c, k0, k1, words, out32)
                out[:n] = out32[:n]
            else:
                standard_row(LAW_CODES[law], bits32, n, *c, k0, k1, words, slow, out)
                if bits32:  # float32 kernels draw these rows into float32 scratch: each weight rounded once
                    standard_row(LAW_CODES[law], bits32, n, *c, k0, k1, words, slow, out32)
                    np.testing.assert_array_equal(out32[:n], out[:n].astype(np.float32))
            fill_standard(LAW_CODES[law], bits32, k0, k1, *c, ref[:n])
            np.testing.assert_array_equal(out[:n].view(np.uint64), ref[:n].view(np.uint64))


def test_the_gaussian_fill_compiled_alone_is_bitwise_the_per_block_row():
    # fill_gaussian draws the seeded input direction without compiling every law's row; it must give
    # fill_standard's Gaussian weights, slow paths included (rows of 2999 weights take tens of slow draws).
    k0, k1 = np.uint64(5), np.uint64(77)
    ref, out = np.empty(3000), np.empty(3000)
    for n in [1, 2, 3, 7, 128, 2999]:
        for c in ((0, laws.INPUT_LAYER, 0), (3, 4, 2**32 - 1)):
            u = tuple(np.uint64(v) for v in c)
            fill_standard(LAW_CODES["gaussian"], False, k0, k1, *u, ref[:n])
            laws.fill_gaussian(k0, k1, *u, out[:n])
            np.testing.assert_array_equal(out[:n].view(np.uint64), ref[:n].view(np.uint64))
            np.testing.assert_array_equal(draw_standard_array("gaussian", n, (5, 77), *c), ref[:n])


@pytest.mark.parametrize("vector_blocks", [4, 8])
def test_padded_rows_fit_their_scratch(monkeypatch, vector_blocks):
    # Rows draw whole vector steps of Philox blocks (4 with AVX2, 8 with AVX-512, fixed per machine at import);
    # the kernels write those words unchecked, so the scratch must hold them for either width, whatever this
    # machine uses: every law, precision and row length up to 600.
    monkeypatch.setattr(laws, "_VECTOR_BLOCKS", vector_blocks)
    for n in range(1, 601):
        size = laws.row_scratch.py_func(n)[0].size
        for law in LAW_CODES.values():
            for bits32 in (False, True):
                if laws.polynomial32.py_func(law, bits32):
                    blocks = laws.polynomial32_blocks.py_func(n)
                else:  # laws.row_blocks, in pure Python: calling its py_func would compile (and cache) its callees
                    per = laws.weights_per_block.py_func(law, bits32)  # with the patched width frozen in
                    blocks = (n + per - 1) // per
                    if law != 2:
                        blocks = laws.whole_vector_blocks.py_func(blocks)
                        assert blocks % vector_blocks == 0
                assert 4 * blocks <= size, (law, bits32, n)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_gaussian_tails_and_wedges(precision):
    # The ziggurat's slow paths (tail beyond r = 3.654, wedges) must give the right mass.
    x = draw_standard_array("gaussian", 4_000_000, (3, 4), 0, 1, 0, precision=precision)
    for t in (2.5, 3.654, 4.5):
        p = 2 * stats.norm.sf(t)
        se = math.sqrt(p * (1 - p) / x.size)
        assert_within_se(np.mean(np.abs(x) > t), p, se, what=f"P(|x| > {t})")


def test_truncated_ziggurat_boxes_have_equal_area_and_cover_the_density():
    xs, ys = _truncated_ziggurat_levels()
    areas = xs[:-1] * np.diff(ys)
    np.testing.assert_allclose(areas, areas[0], rtol=1e-12)
    assert ys[0] == 0.0 and ys[-1] == 1.0 and xs[-1] == 0.0
    # box i spans y in [Y_i, Y_i+1]: it covers the curve if X_i >= min(2, f^-1(Y_i)), with equality by construction
    cover = np.minimum(2.0, np.sqrt(-2.0 * np.log(np.maximum(ys[:-1], 1e-300))))
    np.testing.assert_allclose(xs[:-1], cover, rtol=1e-14)
    # the boxes hold the region under the curve, so their total area exceeds it, by the wedges' rejections
    area = math.sqrt(math.pi / 2) * math.erf(math.sqrt(2))
    assert 1.0 < 256 * areas[0] / area < 1.01


@pytest.mark.parametrize("precision", PRECISIONS)
def test_truncated_normal_wedges_and_cut(precision):
    # The truncated normal's own ziggurat: flat boxes up to f(2), wedges above. The mass beyond each t
    # (in units of the unrescaled N(0, 1)) must be the truncated law's; tolerance 5 s.e. of a proportion.
    x = draw_standard_array("truncated_normal", 4_000_000, (3, 4), 0, 1, 0, precision=precision) * SD_T
    assert np.abs(x).max() <= 2.0
    for t in (0.05, 0.5, 1.0, 1.5, 1.9, 1.99):
        p = 2 * (stats.norm.cdf(2.0) - stats.norm.cdf(t)) / (2 * stats.norm.cdf(2.0) - 1.0)
        se = math.sqrt(p * (1 - p) / x.size)
        assert_within_se(np.mean(np.abs(x) > t), p, se, what=f"P(|x| > {t})")


@pytest.mark.parametrize("sampler,box", [*(("gaussian", i) for i in (1, 40, 100, 200, 254)),
                                         *(("truncated_normal", i) for i in (57, 60, 100, 200, 254)),
                                         *(("laplace", i) for i in (1, 40, 100, 200, 254))])
def test_ziggurat_wedge_accepts_with_the_exact_probability(sampler, box):
    # (Laplace: |w| sqrt 2 ~ Exp(1) from the exponential ziggurat.)
    # A candidate x in the wedge of box i (X_i+1 < x < X_i) is kept on the first retry with probability
    # (f(x) - Y_i) / (Y_i+1 - Y_i); any other outcome is a fresh draw, never x itself. Binomial test over
    # independent retry streams (one per block index), tolerance 5 s.e.
    law = LAW_CODES[sampler]
    widths, heights = {"gaussian": (laws._ZX, laws._ZF), "laplace": (laws._EX, laws._EF),  # Laplace: f(x) = exp(-x)
                       "truncated_normal": (laws._TX, laws._TF)}[sampler]
    x = 0.5 * (widths[box] + widths[box + 1])
    assert widths[box + 1] < widths[box]  # a box with a wedge (the truncated ziggurat's 57 lowest are flat)
    f = math.exp(-x) if sampler == "laplace" else math.exp(-0.5 * x * x)
    p = (f - heights[box]) / (heights[box + 1] - heights[box])
    u = np.uint64
    n = 20_000
    kept = sum(laws._ziggurat_slow(law, x, box, u(b), 0, u(1), u(2), u(3), u(4), u(5)) == x for b in range(n))
    assert_within_se(kept / n, p, math.sqrt(p * (1 - p) / n), what=f"P(keep x = {x:.4f} in box {box})")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_laplace_tail_and_wedges(precision):
    # |w| sqrt 2 ~ Exp(1): the mass beyond t, including the exponential ziggurat's tail beyond r = 7.697
    # (r + Exp(1), by loss of memory), must be exp(-t); tolerance 5 s.e. of a proportion.
    x = np.abs(draw_standard_array("laplace", 4_000_000, (3, 4), 0, 1, 0, precision=precision)) * math.sqrt(2)
    for t in (0.01, 1.0, 3.0, 6.0, 7.697, 9.0):
        p = math.exp(-t)
        se = math.sqrt(p * (1 - p) / x.size)
        assert_within_se(np.mean(x > t), p, se, what=f"P(|x| > {t})")


def test_rows_and_nets_are_different_streams():
    a = draw_standard_array("gaussian", 50_000, (5, 5), 0, 1, 0)
    for other in ((1, 1, 0), (0, 2, 0), (0, 1, 1)):
        b = draw_standard_array("gaussian", 50_000, (5, 5), *other)
        # correlation of independent samples has s.e. 1/sqrt(n)
        assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(a.size)


# ------------------------------------------------------------ float32 Gaussian (Box-Muller)
def _box_muller_reference(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The float32 Gaussian's pair in float64 from its words, by the formulas of fmsim.laws: (x, y, r)."""
    a, b = a.astype(np.uint64), b.astype(np.uint64)
    u1 = (2 * (a >> np.uint64(2)) + 1) / 2.0**31
    r = np.sqrt(-2.0 * np.log(u1))
    theta = (((b >> np.uint64(7)) & np.uint64(0x7FFFFF)).astype(np.float64) - 2**22 + 0.5) * (np.pi / 2) / 2**23
    angle = (b >> np.uint64(30)).astype(np.float64) * (np.pi / 2) + theta
    return r * np.cos(angle), r * np.sin(angle), r


def test_float32_gaussian_matches_float64_box_muller_of_the_same_words():
    # Cephes' float32 polynomials (each within 2 ulp) and the float32 rounding of the steps: documented
    # accuracy 10 float32 ulp of the radius, |w32 - w64| <= 10 * 2^-24 * r, on random and edge words (3.4 ulp
    # measured on 4M pairs).
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 2**32, size=(2, 1_000_000), dtype=np.uint64).astype(np.uint32)
    a, b = np.concatenate([a, edge_words()[0]]), np.concatenate([b, edge_words()[1]])
    x, y = np.empty(a.size, np.float32), np.empty(a.size, np.float32)
    gauss32_pairs(a, b, x, y)
    x64, y64, r = _box_muller_reference(a, b)
    assert np.abs(x - x64).max() <= 10 * 2.0**-24 * r.max()
    np.testing.assert_array_less(np.abs(x - x64), 10 * 2.0**-24 * r + 1e-30)
    np.testing.assert_array_less(np.abs(y - y64), 10 * 2.0**-24 * r + 1e-30)
    assert np.abs(np.hypot(x64, y64)).max() == pytest.approx(math.sqrt(62 * math.log(2)), rel=1e-12)


def test_float32_gaussian_exponent_and_mantissa_by_bits_and_by_frexp_agree():
    # The CPU rows read float32(t)'s exponent and mantissa from its bits, the per-weight path (CUDA, the
    # reference) from math.frexp: exactly the same numbers, also where float32(t) rounds up to 2^k.
    t = np.concatenate([edge_ts(), np.random.default_rng(1).integers(0, 2**30, 2000, dtype=np.uint64) * 2 + 1])
    assert np.all(laws._bm32_t.py_func(((t - np.uint64(1)) // np.uint64(2)) << np.uint64(2)) == t)
    bits = [laws._exponent_mantissa_bits(np.float32(v)) for v in t]
    frexp = [laws._exponent_mantissa_frexp(np.float32(v)) for v in t]
    assert bits == frexp
    assert {m for _, m in bits} <= set(np.arange(2**23, 2**24, dtype=np.float64) / 2**23)  # m in [1, 2)


def test_float32_gaussian_pairs_are_independent_normals():
    # Box-Muller: r^2 ~ Exp(mean 2) and the angle uniform, independent; so the pair's coordinates are
    # independent N(0, 1), E[x^2 y^2] = 1. KS at a fixed seed (p > 1e-3) and 5 s.e. of the sample mean.
    w = draw_standard_array("gaussian", 2 * N, (8, 1), row=2, layer=3, net=4, precision="float32")
    x, y = w[0::2], w[1::2]
    assert stats.kstest(x * x + y * y, stats.expon(scale=2.0).cdf).pvalue > 1e-3
    assert stats.kstest(np.arctan2(y, x), stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > 1e-3
    v = x * x * y * y
    assert_within_se(v.mean(), 1.0, v.std(ddof=1) / math.sqrt(v.size), what="E[x^2 y^2]")


def test_float32_laplace_matches_float64_inversion_of_the_same_words():
    # +-(-ln u) / sqrt 2 with u = t 2^-31 (bits 2-31) and the sign from bit 0; the float32 logarithm of the
    # Box-Muller radius, so the same documented accuracy: 10 float32 ulp of |w|, on random and edge words.
    rng = np.random.default_rng(6)
    a = np.concatenate([rng.integers(0, 2**32, size=1_000_000, dtype=np.uint64).astype(np.uint32),
                        edge_words()[0], edge_words()[0] | np.uint32(1)])
    w = np.empty(a.size, np.float32)
    laplace32_each(a, w)
    a64 = a.astype(np.uint64)
    ref = -np.log((2 * (a64 >> np.uint64(2)) + 1) / 2.0**31) / math.sqrt(2)
    ref = np.where(a64 & np.uint64(1), -ref, ref)
    np.testing.assert_array_less(np.abs(w - ref), 10 * 2.0**-24 * np.abs(ref) + 1e-30)
    assert np.abs(ref).max() == pytest.approx(31 * math.log(2) / math.sqrt(2), rel=1e-9)
