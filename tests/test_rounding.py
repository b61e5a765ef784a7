"""exp and log rounded correctly (fmsim.running.rounding): checked at 60 digits, and the summaries built on them."""

import decimal
import math

import numpy as np

from fmsim.running import rounding
from fmsim.running.summary import LayerSummary

_FINE = decimal.Context(prec=60, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _nearest(value: float, exact: decimal.Decimal) -> bool:
    """Whether ``value`` is the float64 nearest to ``exact``: ``exact`` lies within half an ulp of it."""
    half = decimal.Decimal(math.ulp(value)) / 2
    return abs(_FINE.subtract(exact, decimal.Decimal(value))) <= half


def test_log_is_the_nearest_float():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.random(300) * 10, np.exp(rng.uniform(-700, 700, 300)), [5e-324, 1.7e308, 1.0]])
    for v, r in zip(x, rounding.log(x)):
        assert _nearest(float(r), _FINE.ln(decimal.Decimal(float(v)))), v


def test_exp_is_the_nearest_float():
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.uniform(-30, 30, 300), rng.uniform(-700, 709, 300), [0.0, -744.0, 709.7]])
    for v, r in zip(x, rounding.exp(x)):
        assert _nearest(float(r), _FINE.exp(decimal.Decimal(float(v)))), v


def test_special_values():
    np.testing.assert_array_equal(rounding.log(np.array([0.0, -1.0, np.inf, np.nan, -np.inf])),
                                  [-np.inf, np.nan, np.inf, np.nan, np.nan])
    np.testing.assert_array_equal(rounding.exp(np.array([-np.inf, np.inf, np.nan, 710.0, -746.0, -745.0])),
                                  [0.0, np.inf, np.nan, np.inf, 0.0, 5e-324])


def test_summary_of_a_renormalized_net_uses_them():
    # one layer, 3 nets: columns n, mean, m2, n_log, log mean, log m2, pivot (fmsim.kernels.moments)
    moments = np.zeros((2, 7))
    moments[0] = [3, 1.25, 0.5, 3, 0.1, 0.2, 0.0]
    moments[1] = [3, 1.25, 0.5, 3, 0.1, 0.2, -400.0]
    s = LayerSummary.from_moments(np.vstack([moments, np.zeros((1, 7))]))  # and one statistic row (fm2)
    assert s.mean[0] == 1.25 and s.var[0] == 0.25
    assert s.log_of_mean[1] == -400.0 + rounding.log(np.array([1.25]))[0]
    assert s.mean[1] == rounding.exp(np.array([s.log_of_mean[1]]))[0]
    assert s.var[1] == rounding.exp(np.array([-800.0 + rounding.log(np.array([0.25]))[0]]))[0]
