"""The weight samplers against scipy's distributions (fixed seeds)."""

import math

import numpy as np
import pytest
from conftest import assert_within_se
from scipy import stats

from fmsim import laws
from fmsim.laws import (
    LAW_CODES,
    LAW_M4,
    TRUNCATED_NORMAL_VARIANCE,
    _fill_standard,
    _truncated_ziggurat_levels,
    draw_standard_array,
    standard_row,
)

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
    # standard_row (CPU kernels: Philox words first, then the law in branch-free passes) must give
    # exactly the weights of _fill_standard (CUDA kernels and the reference: one block at a time).
    k0, k1 = np.uint64(11), np.uint64(22)
    words, slow, out = np.empty(2 * 3000 + 2, np.uint32), np.empty(3000, np.intp), np.empty(3000)
    ref = np.empty(3000)
    for n in [*range(1, 40), 127, 128, 129, 255, 256, 2999]:
        for row in range(4):
            c = (np.uint64(row), np.uint64(3), np.uint64(9))
            standard_row(LAW_CODES[law], bits32, n, *c, k0, k1, words, slow, out)
            _fill_standard(LAW_CODES[law], bits32, k0, k1, *c, ref[:n])
            np.testing.assert_array_equal(out[:n].view(np.uint64), ref[:n].view(np.uint64))


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
