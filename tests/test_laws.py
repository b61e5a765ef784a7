"""The weight samplers against scipy's distributions (fixed seeds)."""

import math

import numpy as np
import pytest
from conftest import assert_within_se
from scipy import stats

from fmsim.laws import LAW_M4, TRUNCATED_NORMAL_VARIANCE, draw_standard_array

N = 400_000
SD_T = math.sqrt(TRUNCATED_NORMAL_VARIANCE)
SCIPY = {
    "gaussian": stats.norm(),
    "uniform": stats.uniform(-math.sqrt(3), 2 * math.sqrt(3)),
    "laplace": stats.laplace(scale=1 / math.sqrt(2)),
    "truncated_normal": stats.truncnorm(-2, 2, scale=1 / SD_T),
}


@pytest.mark.parametrize("law", sorted(SCIPY))
def test_law_matches_scipy_distribution(law):
    x = draw_standard_array(law, N, (2024, 11), row=3, layer=1, net=5)
    assert stats.kstest(x, SCIPY[law].cdf).pvalue > 1e-3


@pytest.mark.parametrize("law", sorted(LAW_M4))
def test_law_unit_variance_and_fourth_moment(law):
    x = draw_standard_array(law, N, (7, 99), row=0, layer=2, net=1)
    for power, truth in ((2, 1.0), (4, LAW_M4[law])):
        v = x**power
        assert_within_se(v.mean(), truth, v.std(ddof=1) / math.sqrt(N), what=f"{law} E[w^{power}]")


def test_rademacher_is_plus_minus_one():
    x = draw_standard_array("rademacher", 10_000, (1, 2), 0, 1, 0)
    assert set(np.unique(x)) == {-1.0, 1.0}


def test_gaussian_tails_and_wedges():
    # The ziggurat's slow paths (tail beyond r = 3.654, wedges) must give the right mass.
    x = draw_standard_array("gaussian", 4_000_000, (3, 4), 0, 1, 0)
    for t in (2.5, 3.654, 4.5):
        p = 2 * stats.norm.sf(t)
        se = math.sqrt(p * (1 - p) / x.size)
        assert_within_se(np.mean(np.abs(x) > t), p, se, what=f"P(|x| > {t})")


def test_rows_and_nets_are_different_streams():
    a = draw_standard_array("gaussian", 50_000, (5, 5), 0, 1, 0)
    for other in ((1, 1, 0), (0, 2, 0), (0, 1, 1)):
        b = draw_standard_array("gaussian", 50_000, (5, 5), *other)
        # correlation of independent samples has s.e. 1/sqrt(n)
        assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(a.size)
