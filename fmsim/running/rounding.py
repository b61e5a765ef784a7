"""``exp`` and ``log`` rounded correctly: the same floats on every machine, for the summaries a run stores.

NumPy's ``np.exp`` and ``np.log`` take a path chosen by the CPU: Intel's SVML in 512-bit vectors where the CPU
has AVX-512, the C library's functions elsewhere. The two round differently in the last bit (``np.exp`` on
2000 values in ``[0, 10]``: 77 differ from the correctly rounded value with SVML, 1 with glibc), so the
summaries of a deep net (``mean``, ``var``, ``log_of_mean``, ``log_of_var``: :meth:`LayerSummary.from_moments
<fmsim.running.summary.LayerSummary.from_moments>`) came out different on machines without AVX-512.
These compute in Python's :mod:`decimal` at 40 digits, whose ``exp`` and ``ln`` are correctly rounded, then
round to float64 once: about 20 and 40 microseconds a value, for arrays of a net's depth.
"""

from __future__ import annotations

import decimal

import numpy as np

__all__ = ["exp", "log"]

_CONTEXT = decimal.Context(prec=40, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
_OVERFLOW = 709.8  # exp(x) > 1.8e308 beyond: inf (the largest float64 is exp(709.78...))
_UNDERFLOW = -745.2  # exp(x) < 2^-1075 below: 0 (the smallest subnormal is exp(-744.44...))


def _rounded(operation, x: np.ndarray, special: dict[float, float], inside: np.ndarray) -> np.ndarray:
    """``operation`` (a method of :data:`_CONTEXT`) on the entries ``inside``, rounded once to float64;
    ``special`` maps the other entries' values to results; any entry left is ``nan``."""
    out = np.full(x.shape, np.nan)
    for value, result in special.items():
        out[x == value] = result
    out[inside] = [float(operation(decimal.Decimal(float(v)))) for v in x[inside]]
    return out


def log(x: np.ndarray) -> np.ndarray:
    """Natural logarithm of each entry, correctly rounded: ``-inf`` at 0, ``nan`` below 0 and at ``nan``.

    Parameters
    ----------
    x : array_like, float64
        The values whose logarithms are wanted (a summary's means and variances).

    Returns
    -------
    ndarray, float64, the shape of ``x``
    """
    x = np.asarray(x, dtype=np.float64)
    return _rounded(_CONTEXT.ln, x, {0.0: -np.inf, np.inf: np.inf}, (x > 0.0) & (x < np.inf))


def exp(x: np.ndarray) -> np.ndarray:
    """``e`` to the power of each entry, correctly rounded: 0 at ``-inf``, ``inf`` at ``inf``, ``nan`` at ``nan``.

    Parameters
    ----------
    x : array_like, float64
        The exponents (a summary's logarithms of means and variances).

    Returns
    -------
    ndarray, float64, the shape of ``x``: ``inf`` above 709.8, 0 below -745.2
    """
    x = np.asarray(x, dtype=np.float64)
    out = _rounded(_CONTEXT.exp, x, {}, (x >= _UNDERFLOW) & (x <= _OVERFLOW))
    out[x > _OVERFLOW] = np.inf
    out[x < _UNDERFLOW] = 0.0
    return out
